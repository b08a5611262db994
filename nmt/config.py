"""Config: typed, frozen experiment settings loaded from one YAML file and validated once.

Defaults live in the dataclasses below and nowhere else. `load_config` rejects an unknown key,
a wrong type, a bad choice or an out-of-range value, naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from nmt.safe_yaml import safe_yaml_load

# PyYAML follows YAML 1.1, which reads `5e-4` (no dot) as a string; users mean a number.
_EXP_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the key."""


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    """Field metadata: inclusive numeric bounds checked by `load_config`."""
    return {"range": (lo, hi)}


BYTE_FALLBACK_MIN_VOCAB = 384  # 256 byte pieces, the specials, and room for real subwords
_TAG = re.compile(r"[A-Za-z0-9_-]{1,32}")


@dataclass(frozen=True)
class CorpusConfig:
    """One named parallel corpus: aligned files (`src` + `tgt`) or one TSV (`tsv`)."""

    name: str = ""
    src: str | None = None
    tgt: str | None = None
    tsv: str | None = None
    # Domain tag: the source gets the token `<tag>` in front, so one model can be asked for a
    # domain (`<caption>`, `<general>`) at translation time.
    tag: str | None = None


@dataclass(frozen=True)
class TrainCorpusConfig(CorpusConfig):
    # Per epoch the corpus contributes weight x its size in pairs: 2.0 shows every pair twice,
    # 0.5 a random half (drawn anew each epoch from the seed), as OpenNMT-py's and Marian's
    # corpus weights over- and under-sample.
    weight: float = field(default=1.0, metadata=_range(0.0, 100.0))


@dataclass(frozen=True)
class DataConfig:
    # Parallel text: either aligned files (`train_src` + `train_tgt`) or one TSV (`train_tsv`),
    # or a list of named, weighted, tagged `corpora` (and a list of `valid` sets).
    train_src: str | None = None
    train_tgt: str | None = None
    train_tsv: str | None = None
    valid_src: str | None = None
    valid_tgt: str | None = None
    valid_tsv: str | None = None
    src_lang: str = "src"
    tgt_lang: str = "tgt"
    max_len: int = field(default=100, metadata=_range(1, None))  # subwords, after tokenising
    max_ratio: float = field(default=3.0, metadata=_range(1.0, None))  # longer/shorter length
    # What to do with a line that is not valid UTF-8: "error" names file and line, "skip" counts.
    on_bad_line: Literal["error", "skip"] = "error"
    corpora: tuple[TrainCorpusConfig, ...] = ()
    valid: tuple[CorpusConfig, ...] = ()
    select_valid: str | None = None  # the valid set whose metric picks checkpoints; default first
    default_tag: str | None = None  # the domain a translation gets when the caller names none

    def train_corpora(self) -> tuple[TrainCorpusConfig, ...]:
        """The training corpora; a single-corpus config is one corpus named "train"."""
        if self.corpora:
            return self.corpora
        return (TrainCorpusConfig("train", self.train_src, self.train_tgt, self.train_tsv),)

    def valid_sets(self) -> tuple[CorpusConfig, ...]:
        """The validation sets, the one that picks checkpoints first; () when there are none."""
        if self.valid:
            chosen = self.select_valid or self.valid[0].name
            return tuple(sorted(self.valid, key=lambda v: v.name != chosen))
        if self.valid_src is None and self.valid_tsv is None:
            return ()
        return (CorpusConfig("valid", self.valid_src, self.valid_tgt, self.valid_tsv),)

    def tags(self) -> list[str]:
        """Domain tags the model knows, in corpus order."""
        return list(dict.fromkeys(c.tag for c in self.train_corpora() if c.tag))


@dataclass(frozen=True)
class TokenizerConfig:
    type: Literal["unigram", "bpe", "char"] = "unigram"
    vocab_size: int = field(default=8000, metadata=_range(8, None))  # ignored for char
    joint: bool = True  # one vocabulary for source and target
    character_coverage: float = field(default=1.0, metadata=_range(0.9, 1.0))
    # Unknown characters become their UTF-8 bytes (SentencePiece byte fallback): nothing is <unk>.
    byte_fallback: bool = False
    # Placeholders <x1>..<xN> for protected spans (numbers, URLs, ...): training pairs whose two
    # sides share such a span learn to copy them; translation masks spans with them.
    placeholders: int = field(default=0, metadata=_range(0, 99))
    # Where trained SentencePiece models are cached; relative paths are under the run directory.
    model_dir: str = "spm"


@dataclass(frozen=True)
class ModelConfig:
    cell: Literal["rnn", "gru", "lstm"] = "gru"
    emb_dim: int = field(default=256, metadata=_range(1, None))
    enc_hidden: int = field(default=256, metadata=_range(1, None))  # per direction
    enc_layers: int = field(default=1, metadata=_range(1, 16))
    bidirectional: bool = True
    dec_hidden: int = field(default=512, metadata=_range(1, None))
    dec_layers: int = field(default=1, metadata=_range(1, 16))
    attention: Literal["none", "bahdanau", "luong_dot", "luong_general"] = "bahdanau"
    attn_dim: int = field(default=256, metadata=_range(1, None))  # Bahdanau's hidden size
    # Input feeding feeds the previous attentional vector into the next step (Luong et al.).
    # Without it the decoder RNN runs over the whole target at once during training.
    input_feeding: bool = False
    dropout: float = field(default=0.3, metadata=_range(0.0, 0.95))
    emb_dropout: float = field(default=0.3, metadata=_range(0.0, 0.95))
    tie_output: bool = True  # target embedding shared with the output projection
    share_embeddings: bool = False  # source and target embeddings (needs a joint vocabulary)


@dataclass(frozen=True)
class LoopConfig:
    """What the one training loop reads (nmt.training.loop): optimiser, learning-rate schedule,
    budgets, validation cadence, early stopping, checkpoints and logging.

    `TrainConfig` and the LMs' `LMTrainConfig` extend it, so their YAML keys stay flat
    (`train.lr`); a task whose defaults differ re-declares just those fields.
    """

    seed: int = 1234
    epochs: int = field(default=30, metadata=_range(1, None))
    max_steps: int = field(default=0, metadata=_range(0, None))  # 0: no limit
    # Training time (optimizer steps, not validation); checked after each step. 0: no limit.
    max_minutes: float = field(default=0.0, metadata=_range(0.0, None))
    optimizer: Literal["adam", "adamw"] = "adam"
    lr: float = field(default=1e-3, metadata=_range(0.0, 10.0))
    weight_decay: float = field(default=0.0, metadata=_range(0.0, 1.0))
    adam_betas: tuple[float, float] = (0.9, 0.999)
    scheduler: Literal["plateau", "inverse_sqrt", "constant"] = "plateau"
    warmup_steps: int = field(default=0, metadata=_range(0, None))
    plateau_factor: float = field(default=0.5, metadata=_range(0.01, 0.99))
    plateau_patience: int = field(default=1, metadata=_range(0, None))
    min_lr: float = field(default=1e-5, metadata=_range(0.0, None))
    clip_norm: float = field(default=1.0, metadata=_range(0.0, None))  # 0: no clipping
    valid_every: int = field(default=0, metadata=_range(0, None))  # steps; 0: each epoch
    patience: int = field(default=8, metadata=_range(0, None))  # validations; 0: never stop early
    keep_last: int = field(default=3, metadata=_range(1, None))
    log_every: int = field(default=100, metadata=_range(1, None))
    num_threads: int = field(default=0, metadata=_range(0, None))  # CPU threads; 0: torch default


@dataclass(frozen=True)
class TrainConfig(LoopConfig):
    max_tokens: int = field(default=4000, metadata=_range(1, None))  # target tokens per batch
    max_sentences: int = field(default=512, metadata=_range(1, None))
    label_smoothing: float = field(default=0.1, metadata=_range(0.0, 0.99))
    scheduled_sampling: float = field(default=0.0, metadata=_range(0.0, 1.0))
    valid_metric: Literal["bleu", "loss"] = "bleu"
    valid_beam: int = field(default=1, metadata=_range(1, 64))
    average_last: int = field(default=0, metadata=_range(0, None))  # bundle averages last N ckpts
    bundle_dtype: Literal["float32", "float16"] = "float32"  # float16 halves the bundle's size
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    nan_policy: Literal["stop", "skip"] = "stop"
    # A bundle or checkpoint whose weights and SentencePiece models start this run (fine-tuning,
    # or continuing a run whose checkpoints are gone); optimizer and schedule start fresh.
    init_from: str | None = None


@dataclass(frozen=True)
class DecodeConfig:
    beam_size: int = field(default=5, metadata=_range(1, 128))
    length_penalty: float = field(default=1.0, metadata=_range(0.0, 10.0))  # GNMT alpha
    max_len_a: float = field(default=1.5, metadata=_range(0.0, None))  # max = a * src_len + b
    max_len_b: int = field(default=10, metadata=_range(0, None))
    min_len: int = field(default=0, metadata=_range(0, None))
    no_repeat_ngram: int = field(default=0, metadata=_range(0, None))
    batch_tokens: int = field(default=4000, metadata=_range(1, None))
    # Inputs longer than the model limit: split at sentence boundaries, or truncate (reported).
    long_input: Literal["split", "truncate"] = "split"


@dataclass(frozen=True)
class Config:
    name: str = "experiment"
    data: DataConfig = DataConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    decode: DecodeConfig = DecodeConfig()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate_semantics(self) -> None:
        """Checks that span several keys."""
        d = self.data
        tok = self.tokenizer
        if tok.byte_fallback and tok.type != "char" and tok.vocab_size < BYTE_FALLBACK_MIN_VOCAB:
            raise ConfigError(
                f"tokenizer.vocab_size: {tok.vocab_size} is too small for byte_fallback, which "
                f"takes 256 byte pieces; use at least {BYTE_FALLBACK_MIN_VOCAB}"
            )
        if d.corpora or d.valid:
            self._validate_corpora()
            return
        if d.select_valid is not None or d.default_tag is not None:
            key = "select_valid" if d.select_valid is not None else "default_tag"
            raise ConfigError(f"data.{key} needs a data.corpora / data.valid list")
        if d.train_tsv is None and (d.train_src is None or d.train_tgt is None):
            raise ConfigError("data: set train_src and train_tgt, or train_tsv")
        if d.train_tsv is not None and (d.train_src or d.train_tgt):
            raise ConfigError("data: set either train_tsv or train_src/train_tgt, not both")
        if (d.valid_src is None) != (d.valid_tgt is None):
            raise ConfigError("data: valid_src and valid_tgt must be set together")
        if self.model.share_embeddings and not self.tokenizer.joint:
            raise ConfigError("model.share_embeddings needs tokenizer.joint: true")

    def _validate_corpora(self) -> None:
        d = self.data
        if d.corpora and (d.train_src or d.train_tgt or d.train_tsv):
            raise ConfigError("data: set either data.corpora or train_src/train_tgt/train_tsv")
        if d.valid and (d.valid_src or d.valid_tgt or d.valid_tsv):
            raise ConfigError("data: set either data.valid or valid_src/valid_tgt/valid_tsv")
        if not d.corpora and d.train_tsv is None and (d.train_src is None or d.train_tgt is None):
            raise ConfigError("data: set data.corpora, or train_src and train_tgt, or train_tsv")
        for key, items in (("corpora", d.corpora), ("valid", d.valid)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                where = f"data.{key}[{i}]"
                if not item.name:
                    raise ConfigError(f"{where}.name: every corpus needs a name")
                if item.name in seen:
                    raise ConfigError(f"{where}.name: {item.name!r} is used twice in data.{key}")
                seen.add(item.name)
                if item.tsv is None and (item.src is None or item.tgt is None):
                    raise ConfigError(f"{where}: set src and tgt, or tsv")
                if item.tsv is not None and (item.src or item.tgt):
                    raise ConfigError(f"{where}: set either tsv or src/tgt, not both")
                if item.tag is not None and not _TAG.fullmatch(item.tag):
                    raise ConfigError(
                        f"{where}.tag: {item.tag!r} must be 1-32 letters, digits, _ or -"
                    )
        if d.corpora and sum(c.weight for c in d.corpora) <= 0:
            raise ConfigError("data.corpora: at least one corpus needs a weight above 0")
        tags = d.tags()
        for i, v in enumerate(d.valid):
            if v.tag is not None and v.tag not in tags:
                raise ConfigError(
                    f"data.valid[{i}].tag: {v.tag!r} is not the tag of any training corpus "
                    f"({tags or 'none has one'})"
                )
        if d.select_valid is not None and d.select_valid not in {v.name for v in d.valid}:
            raise ConfigError(
                f"data.select_valid: {d.select_valid!r} is not the name of a data.valid set"
            )
        if d.default_tag is not None and d.default_tag not in tags:
            raise ConfigError(
                f"data.default_tag: {d.default_tag!r} is not the tag of any training corpus "
                f"({tags or 'none has one'})"
            )
        if self.model.share_embeddings and not self.tokenizer.joint:
            raise ConfigError("model.share_embeddings needs tokenizer.joint: true")


def _coerce(key: str, value: Any, tp: Any, meta: dict[str, Any]) -> Any:
    """Checks `value` against the annotation `tp`; returns it converted where lossless."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(key, value, args[0], meta)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {list(allowed)}")
        return value
    if origin is tuple:
        items = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ConfigError(f"{key}: expected a list of {len(items)} numbers, got {value!r}")
        return tuple(
            _coerce(f"{key}[{i}]", v, a, {})
            for i, (v, a) in enumerate(zip(value, items, strict=True))
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str) and _EXP_FLOAT.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    lo, hi = meta.get("range", (None, None))
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: {value!r} is above the maximum {hi}")
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]}; allowed keys: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in raw.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        elif _list_of_dataclass(tp):
            item_cls = typing.get_args(tp)[0]
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{key}: expected a list of mappings, got {value!r}")
            kwargs[name] = tuple(_build(item_cls, v, f"{key}[{i}]") for i, v in enumerate(value))
        else:
            kwargs[name] = _coerce(key, value, tp, dict(fields[name].metadata))
    return cls(**kwargs)


def _list_of_dataclass(tp: Any) -> bool:
    args = typing.get_args(tp)
    return (
        typing.get_origin(tp) is tuple
        and len(args) == 2
        and args[1] is Ellipsis
        and dataclasses.is_dataclass(args[0])
    )


def _yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one line: the problem and where it is."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or " ".join(str(err).split())
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected section.key=value")
    key, text = item.split("=", 1)
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: invalid YAML value: {_yaml_problem(err)}") from err
    return key.strip().split("."), value


def build_config(cls: type[T], raw: dict[str, Any], overrides: Sequence[str] = ()) -> T:
    """Builds and validates a config dataclass (`Config`, or another with the same machinery)
    from a plain dict plus `a.b=value` overrides."""
    raw = _deep_copy(raw or {})
    for item in overrides:
        path, value = _parse_override(item)
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[path[-1]] = value
    cfg = _build(cls, raw, "")
    cfg.validate_semantics()
    return cfg


def read_yaml(path: str | Path) -> Any:
    """The parsed YAML file; unreadable files and bad YAML are ConfigErrors naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from err
    try:
        # Anchors and aliases are refused: a 400-byte "billion laughs" file would otherwise
        # expand to gigabytes when the config is copied.
        return safe_yaml_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_problem(err)}") from err


def config_from_dict(raw: dict[str, Any], overrides: Sequence[str] = ()) -> Config:
    """Builds and validates a Config from a plain dict plus `a.b=value` overrides."""
    return build_config(Config, raw, overrides)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Loads a YAML experiment file; relative data paths are kept as written (cwd-relative)."""
    raw = read_yaml(path)
    try:
        return config_from_dict(raw, overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


MAX_CONFIG_VALUES = 100_000  # far above any real config (a few hundred values)


def _deep_copy(raw: Any) -> Any:
    """A copy of nested dicts and lists, refusing more than MAX_CONFIG_VALUES values.

    The count is of the copy: a config read from a checkpoint may hold one list many times over
    (shared references), small on disk and billions of values once copied.
    """
    budget = [MAX_CONFIG_VALUES]

    def copy(node: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise ConfigError(f"the config holds more than {MAX_CONFIG_VALUES:,} values (counting "
                              "shared parts once per use); it is not a model config")
        if isinstance(node, dict):
            return {k: copy(v) for k, v in node.items()}
        if isinstance(node, list):
            return [copy(v) for v in node]
        return node

    return copy(raw)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")


__all__ = [
    "Config",
    "ConfigError",
    "CorpusConfig",
    "TrainCorpusConfig",
    "DataConfig",
    "DecodeConfig",
    "LoopConfig",
    "ModelConfig",
    "TokenizerConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
    "save_config",
]
