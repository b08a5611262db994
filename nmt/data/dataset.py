"""Data: from a config to tokenizers and encoded, filtered training and validation sets.

SentencePiece models are trained on the training text on first use and cached next to the run;
the cache is keyed by the data fingerprint and tokenizer settings, so changing either retrains.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.config import Config, CorpusConfig, TokenizerConfig
from nmt.data.corpus import (
    ParallelCorpus,
    ReadStats,
    filter_pairs,
    fingerprint,
    read_parallel,
    read_tsv,
)
from nmt.text.protect import mask_pair, placeholder_symbols
from nmt.tokenization import Tokenizer, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class EncodedCorpus:
    src_text: list[str]
    tgt_text: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    stats: ReadStats

    def __len__(self) -> int:
        return len(self.src_ids)

    def length_ratio(self, *, min_source: int = 6, skip_first: int = 0) -> dict[str, float]:
        """Target/source subword ratios over pairs with at least `min_source` source subwords
        (`skip_first`: a domain tag not to count): their 1st percentile, median and mean.

        The Translator uses the 1st percentile to spot an output far shorter than its source.
        """
        ratios = sorted(
            len(t) / (len(s) - skip_first)
            for s, t in zip(self.src_ids, self.tgt_ids, strict=True)
            if len(s) - skip_first >= min_source
        )
        if not ratios:
            return {}
        return {
            "p01": round(ratios[int(0.01 * (len(ratios) - 1))], 4),
            "p50": round(ratios[len(ratios) // 2], 4),
            "mean": round(sum(ratios) / len(ratios), 4),
            "pairs": len(ratios),
        }

    def lengths(self) -> list[int]:
        """Longest side per pair, counting the EOS/BOS each side gets."""
        pairs = zip(self.src_ids, self.tgt_ids, strict=True)
        return [max(len(s), len(t)) + 1 for s, t in pairs]


@dataclass(frozen=True)
class CorpusPart:
    """Where one training corpus sits in the concatenated training set: pairs [start, end)."""

    name: str
    weight: float
    start: int
    end: int
    stats: ReadStats


@dataclass(frozen=True)
class ValidSet:
    name: str
    tag: str | None
    corpus: EncodedCorpus


@dataclass
class TrainingData:
    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    train: EncodedCorpus  # every training corpus, concatenated in config order
    valid_sets: list[ValidSet]  # the one that picks checkpoints first
    fingerprints: dict[str, str]
    parts: list[CorpusPart]

    @property
    def valid(self) -> EncodedCorpus | None:
        """The validation set that picks checkpoints."""
        return self.valid_sets[0].corpus if self.valid_sets else None

    def weights(self) -> list[tuple[int, int, float]] | None:
        """(start, end, weight) per corpus, or None when every weight is 1 (plain epochs)."""
        if all(p.weight == 1.0 for p in self.parts):
            return None
        return [(p.start, p.end, p.weight) for p in self.parts]


def read_corpus(corpus: CorpusConfig, on_bad_line: str) -> ParallelCorpus:
    if corpus.tsv is not None:
        return read_tsv(corpus.tsv, on_bad_line=on_bad_line)
    assert corpus.src is not None and corpus.tgt is not None  # Config.validate_semantics
    return read_parallel(corpus.src, corpus.tgt, on_bad_line=on_bad_line)


def tokenizers_of(path: str | Path) -> tuple[Tokenizer, Tokenizer]:
    """The source and target SentencePiece models stored in a bundle or checkpoint."""
    from nmt.checkpoint import CheckpointError, resolve_weights_path, safe_load

    weights = resolve_weights_path(path)
    obj = safe_load(weights)
    try:
        return (Tokenizer(obj["src_spm"], origin=f"{weights}[src_spm]"),
                Tokenizer(obj["tgt_spm"], origin=f"{weights}[tgt_spm]"))
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{weights}: no SentencePiece models inside ({err})") from err


def tag_token(tag: str) -> str:
    """The source-side token that names a domain."""
    return f"<{tag}>"


def user_symbols(cfg: Config) -> list[str]:
    """Pieces the SentencePiece model keeps whole: domain tags, then placeholders."""
    return [tag_token(t) for t in cfg.data.tags()] + placeholder_symbols(
        cfg.tokenizer.placeholders
    )


def with_placeholders(corpus: ParallelCorpus, limit: int) -> ParallelCorpus:
    """Pairs whose sides share protected spans (numbers, URLs, ...) get placeholders there."""
    if limit <= 0:
        return corpus
    src, tgt = list(corpus.src), list(corpus.tgt)
    for i, (s, t) in enumerate(zip(src, tgt, strict=True)):
        masked = mask_pair(s, t, limit=limit)
        if masked is not None:
            src[i], tgt[i] = masked
            corpus.stats.add("placeholders (kept, masked)")
    return ParallelCorpus(src, tgt, corpus.stats)


def build_tokenizers(
    cfg: TokenizerConfig, corpus: ParallelCorpus, cache_dir: Path, symbols: Sequence[str] = ()
) -> tuple[Tokenizer, Tokenizer]:
    """Trains (or reuses from `cache_dir`) the source and target SentencePiece models."""
    key = {
        "settings": {
            "type": cfg.type,
            "vocab_size": cfg.vocab_size,
            "joint": cfg.joint,
            "character_coverage": cfg.character_coverage,
            **({"byte_fallback": True} if cfg.byte_fallback else {}),
            **({"user_symbols": list(symbols)} if symbols else {}),
        },
        "src": fingerprint(corpus.src),
        "tgt": fingerprint(corpus.tgt),
    }
    names = ["joint"] if cfg.joint else ["src", "tgt"]
    key_file = cache_dir / "key.json"
    if key_file.exists() and all((cache_dir / f"{n}.model").exists() for n in names):
        if json.loads(key_file.read_text()) == key:
            log.info("reusing SentencePiece models in %s", cache_dir)
            toks = [Tokenizer.from_file(cache_dir / f"{n}.model") for n in names]
            return (toks[0], toks[0]) if cfg.joint else (toks[0], toks[1])

    def train(lines: list[str]) -> Tokenizer:
        return train_tokenizer(
            lines,
            model_type=cfg.type,
            vocab_size=cfg.vocab_size,
            character_coverage=cfg.character_coverage,
            byte_fallback=cfg.byte_fallback,
            user_symbols=symbols,
        )

    log.info(
        "training %s SentencePiece model(s) (%s)", cfg.type, "joint" if cfg.joint else "separate"
    )
    if cfg.joint:
        tokenizers = [train(corpus.src + corpus.tgt)]
    else:
        tokenizers = [train(corpus.src), train(corpus.tgt)]
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, tok in zip(names, tokenizers, strict=True):
        tok.save(cache_dir / f"{name}.model")
    key_file.write_text(json.dumps(key, indent=1))
    return (tokenizers[0], tokenizers[0]) if cfg.joint else (tokenizers[0], tokenizers[1])


def encode_corpus(
    corpus: ParallelCorpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    *,
    max_len: int | None,
    max_ratio: float | None,
    tag: str | None = None,
) -> EncodedCorpus:
    src_ids = src_tok.encode(corpus.src)
    tgt_ids = tgt_tok.encode(corpus.tgt)
    if tag is not None:
        # The tag is the first source token; the length filter counts it like any other.
        tag_id = src_tok.piece_to_id(tag_token(tag))
        assert tag_id is not None  # user_symbols put every tag into the vocabulary
        src_ids = [[tag_id, *ids] for ids in src_ids]
    stats = corpus.stats
    if max_len is None or max_ratio is None:
        keep = list(range(len(src_ids)))
    else:
        keep = filter_pairs(src_ids, tgt_ids, max_len=max_len, max_ratio=max_ratio, stats=stats)
    return EncodedCorpus(
        src_text=[corpus.src[i] for i in keep],
        tgt_text=[corpus.tgt[i] for i in keep],
        src_ids=[src_ids[i] for i in keep],
        tgt_ids=[tgt_ids[i] for i in keep],
        stats=stats,
    )


def load_training_data(cfg: Config, run_dir: Path) -> TrainingData:
    corpora = cfg.data.train_corpora()
    raw = [
        with_placeholders(read_corpus(c, cfg.data.on_bad_line), cfg.tokenizer.placeholders)
        for c in corpora
    ]
    everything = ParallelCorpus(
        [s for r in raw for s in r.src], [t for r in raw for t in r.tgt], ReadStats()
    )
    if cfg.train.init_from is not None:
        # The weights to start from only make sense with the vocabularies they were trained on.
        src_tok, tgt_tok = tokenizers_of(cfg.train.init_from)
    else:
        cache = Path(cfg.tokenizer.model_dir)
        cache = cache if cache.is_absolute() else run_dir / cache
        src_tok, tgt_tok = build_tokenizers(cfg.tokenizer, everything, cache, user_symbols(cfg))
    parts: list[CorpusPart] = []
    encoded: list[EncodedCorpus] = []
    start = 0
    for c, r in zip(corpora, raw, strict=True):
        enc = encode_corpus(
            r, src_tok, tgt_tok, max_len=cfg.data.max_len, max_ratio=cfg.data.max_ratio, tag=c.tag
        )
        encoded.append(enc)
        parts.append(CorpusPart(c.name, c.weight, start, start + len(enc), enc.stats))
        start += len(enc)
    total = ReadStats()
    for enc in encoded:
        total.counts.update(enc.stats.counts)
    train = EncodedCorpus(
        src_text=[x for e in encoded for x in e.src_text],
        tgt_text=[x for e in encoded for x in e.tgt_text],
        src_ids=[x for e in encoded for x in e.src_ids],
        tgt_ids=[x for e in encoded for x in e.tgt_ids],
        stats=total,
    )
    # Validation keeps every pair (no filtering): its scores must be comparable across runs.
    valid_sets = [
        ValidSet(
            v.name,
            v.tag,
            encode_corpus(
                read_corpus(v, cfg.data.on_bad_line),
                src_tok,
                tgt_tok,
                max_len=None,
                max_ratio=None,
                tag=v.tag,
            ),
        )
        for v in cfg.data.valid_sets()
    ]
    if len(corpora) == 1 and not cfg.data.corpora:
        fingerprints = {"train_src": fingerprint(raw[0].src), "train_tgt": fingerprint(raw[0].tgt)}
    else:
        fingerprints = {}
        for c, r in zip(corpora, raw, strict=True):
            fingerprints[f"{c.name}_src"] = fingerprint(r.src)
            fingerprints[f"{c.name}_tgt"] = fingerprint(r.tgt)
    return TrainingData(
        src_tokenizer=src_tok,
        tgt_tokenizer=tgt_tok,
        train=train,
        valid_sets=valid_sets,
        fingerprints=fingerprints,
        parts=parts,
    )


def validation_length_ratio(cfg: Config, src_tok: Tokenizer, tgt_tok: Tokenizer,
                            min_source: int) -> dict[str, float]:
    """`EncodedCorpus.length_ratio` of the config's checkpoint-picking validation set, read
    from its files ({} when the config has none)."""
    sets = cfg.data.valid_sets()
    if not sets:
        return {}
    encoded = encode_corpus(read_corpus(sets[0], cfg.data.on_bad_line), src_tok, tgt_tok,
                            max_len=None, max_ratio=None, tag=sets[0].tag)
    return encoded.length_ratio(min_source=min_source, skip_first=1 if sets[0].tag else 0)
