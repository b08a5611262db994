"""Checkpoint: self-describing training checkpoints and model bundles, saved atomically, loaded
as data.

A checkpoint (one `.pt` file) and a bundle (a directory with `model.pt`) hold only tensors,
numbers, strings, bytes, lists and dicts: a format version, the resolved config, the
SentencePiece models as bytes, the weights and, for checkpoints, optimizer, scheduler, RNG and
data-position state. They are loaded with `torch.load(weights_only=True)`, which refuses any
pickled object that would run code.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.bundle_checks import bundle_data_problem, model_problem
from nmt.config import Config, ConfigError, config_from_dict
from nmt.models.seq2seq import Seq2Seq, build_model
from nmt.tokenization import Tokenizer, TokenizerError

FORMAT_VERSION = 1
BUNDLE_WEIGHTS = "model.pt"

# What each stored `kind` is, for messages; the loaders check it before anything else.
TRANSLATION_KINDS = ("bundle", "checkpoint")
LM_KINDS = ("lm", "lm-checkpoint")
TRAINING_CHECKPOINT_KINDS = ("checkpoint", "lm-checkpoint")
KIND_NAMES = {
    "bundle": "a translation model bundle",
    "checkpoint": "a translation training checkpoint",
    "lm": "a language-model bundle",
    "lm-checkpoint": "a language-model training checkpoint",
}
WHAT_A_BUNDLE_IS = (
    f"a model bundle is a directory holding {BUNDLE_WEIGHTS} (`nmt train` writes runs/<name>/"
    "bundle, `nmt export` writes one from checkpoints); a checkpoint is a .pt file under "
    "runs/<name>/checkpoints/"
)


class CheckpointError(ValueError):
    """A checkpoint or bundle is missing, corrupt, unsafe or incompatible; names the file."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then rename over `path`.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are ordinary data files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def safe_load(path: str | Path) -> dict[str, Any]:
    """Loads a `.pt` file as data only; any failure becomes a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    _check_torch_file(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = [line.strip() for line in str(err).splitlines() if "Unsupported" in line]
        raise CheckpointError(
            f"{path}: refused to load: the file contains Python objects other than plain data "
            f"(a checkpoint is data, never code){': ' + detail[0][:200] if detail else ''}"
        ) from err
    except Exception as err:  # unpickling garbage raises almost anything (KeyError, EOFError)
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt?): {first[:200]}"
        ) from err
    if not isinstance(obj, dict) or "format_version" not in obj:
        raise CheckpointError(f"{path}: not an nmt checkpoint (no format_version)")
    if obj["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {obj['format_version']} is not supported "
            f"(this nmt reads version {FORMAT_VERSION})"
        )
    return obj


def _check_torch_file(path: Path) -> None:
    """Refuses, by its first bytes, a file that `torch.save` did not write (a README, a
    SentencePiece model), before the unpickler reports a baffling "Unsupported operand"."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise CheckpointError(f"{path}: empty file, not an nmt checkpoint or bundle file")
    # torch.save writes a zip archive ("PK\x03\x04"); its legacy format starts with a pickle
    # protocol-2+ opcode (0x80).
    if head != b"PK\x03\x04" and head[0] != 0x80:
        raise CheckpointError(
            f"{path}: not an nmt checkpoint or bundle file (not written by torch.save; "
            f"expected a bundle's {BUNDLE_WEIGHTS} or a training checkpoint .pt)"
        )


def check_kind(obj: dict[str, Any], path: Path, *, expected: tuple[str, ...], needed_by: str,
               hint: str) -> None:
    """Raises a CheckpointError naming the file, the kind it holds and the kind expected.

    Args:
        expected: the `kind` values the caller reads.
        needed_by: who is loading, e.g. "translation (nmt translate, evaluate, serve)".
        hint: where the file's kind is read instead, e.g. "nmt lm sample/evaluate read LM
            bundles".
    """
    kind = obj.get("kind")
    if kind in expected:
        return
    wanted = " or ".join(KIND_NAMES.get(k, repr(k)) for k in expected)
    found = KIND_NAMES.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise CheckpointError(
            f"{path}: unknown kind {kind!r}; {needed_by} needs {wanted}"
        )
    raise CheckpointError(f"{path} is {found}; {needed_by} needs {wanted} ({hint})")


def training_checkpoint(
    *,
    kind: str,
    config: dict[str, Any],
    model: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    schedule: dict[str, Any],
    position: dict[str, Any],
    rng: dict[str, torch.Tensor],
    metadata: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict a training checkpoint file holds (what `--resume` reads back).

    Args:
        kind: "checkpoint" (translation) or "lm-checkpoint".
        position: the loop's Position as a dict (step, epoch, batch_in_epoch, ...).
        rng: generator states by name ("torch", "cuda", and the task's own, e.g. "sampling").
        extra: the task's own top-level entries (SentencePiece models, a vocabulary, the
            LM's carried state).
    """
    if kind not in TRAINING_CHECKPOINT_KINDS:
        raise ValueError(f"not a training checkpoint kind: {kind!r}")
    return {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config,
        "model": model,
        "optimizer": optimizer,
        "schedule": schedule,
        "position": position,
        "rng": rng,
        **(extra or {}),
        "metadata": metadata,
    }


@dataclass
class LoadedModel:
    """What translation needs from a checkpoint or bundle."""

    model: Seq2Seq
    config: Config
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    metadata: dict[str, Any]
    path: Path


def resolve_weights_path(path: str | Path) -> Path:
    """A bundle directory means its model.pt; a file is taken as it is."""
    path = Path(path)
    if path.is_dir():
        weights = path / BUNDLE_WEIGHTS
        if not weights.exists():
            inside = sorted(str(p) for p in path.iterdir() if (p / BUNDLE_WEIGHTS).is_file())
            hint = f"; bundles inside it: {', '.join(inside[:5])}" if inside else ""
            raise CheckpointError(
                f"{path}: not a model bundle (no {BUNDLE_WEIGHTS} inside){hint}; "
                f"{WHAT_A_BUNDLE_IS}"
            )
        return weights
    if not path.exists():
        raise CheckpointError(
            f"{path}: no such model directory or checkpoint file; {WHAT_A_BUNDLE_IS}"
        )
    return path


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Builds the model described by a checkpoint or bundle and loads its weights (in eval mode)."""
    weights_path = resolve_weights_path(path)
    obj = safe_load(weights_path)
    check_kind(
        obj,
        weights_path,
        expected=TRANSLATION_KINDS,
        needed_by="translation (nmt translate, evaluate, serve, export)",
        hint="`nmt lm sample`, `nmt lm evaluate` and `nmt translate --lm` read LM bundles",
    )
    if (problem := bundle_data_problem(obj)) is not None:
        raise CheckpointError(f"{weights_path}: {problem}")
    try:
        config = config_from_dict(obj["config"])
    except (ConfigError, KeyError, TypeError) as err:
        raise CheckpointError(f"{weights_path}: stored config is invalid: {err}") from err
    try:
        src_tok = Tokenizer(obj["src_spm"], origin=f"{weights_path}[src_spm]")
        tgt_tok = Tokenizer(obj["tgt_spm"], origin=f"{weights_path}[tgt_spm]")
    except (KeyError, TokenizerError) as err:
        raise CheckpointError(
            f"{weights_path}: SentencePiece model missing or invalid: {err}"
        ) from err
    if (problem := model_problem(config, obj["model"], src_vocab_size=src_tok.vocab_size,
                                 tgt_vocab_size=tgt_tok.vocab_size)) is not None:
        raise CheckpointError(f"{weights_path}: {problem}")
    model = build_model(
        config.model, src_vocab_size=src_tok.vocab_size, tgt_vocab_size=tgt_tok.vocab_size
    )
    state = {k: v.float() if v.is_floating_point() else v for k, v in obj["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()
        raise CheckpointError(
            f"{weights_path}: weights do not match the stored config and vocabularies "
            f"(src vocab {src_tok.vocab_size}, tgt vocab {tgt_tok.vocab_size}): "
            + " ".join(first[1:3])[:300]
        ) from err
    model.to(device).eval()
    return LoadedModel(
        model=model,
        config=config,
        src_tokenizer=src_tok,
        tgt_tokenizer=tgt_tok,
        metadata=dict(obj.get("metadata", {})),
        path=Path(path),
    )


def export_bundle(
    out_dir: str | Path,
    *,
    config: Config,
    state_dict: dict[str, torch.Tensor],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    metadata: dict[str, Any],
    half: bool = False,
) -> Path:
    """Writes a bundle directory: model.pt (the only file loading needs), plus readable copies."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu().clone())
        for k, v in state_dict.items()
    }
    atomic_save(
        {
            "format_version": FORMAT_VERSION,
            "kind": TRANSLATION_KINDS[0],
            "config": config.to_dict(),
            "model": weights,
            "src_spm": src_tokenizer.model_proto,
            "tgt_spm": tgt_tokenizer.model_proto,
            "metadata": metadata,
        },
        out_dir / BUNDLE_WEIGHTS,
    )
    src_tokenizer.save(out_dir / "src.spm.model")
    tgt_tokenizer.save(out_dir / "tgt.spm.model")
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
    atomic_write_text(out_dir / "metadata.json", json.dumps(metadata, indent=2) + "\n")
    return out_dir
