"""Diagnostics: long inputs from real data: consecutive sentence pairs joined into S-token sources.

Multi30k captions are short (about 15 subwords), too short to show gradients vanishing over
time. Joining consecutive pairs, sources with sources and targets with targets, gives long
inputs that are still real text, like translating a paragraph at once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.config import Config
from nmt.data.batching import Batch, make_batch
from nmt.data.dataset import build_tokenizers, read_corpus, user_symbols


def joined_pairs(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], *,
                 src_len: int, tgt_len: int, count: int, seed: int
                 ) -> list[tuple[list[int], list[int]]]:
    """`count` examples, each from consecutive pairs starting at a random pair.

    Every source is exactly `src_len - 1` ids (its EOS makes `src_len`), cut inside the last
    sentence; the target holds the same sentences' translations, cut to `tgt_len - 1` ids.
    """
    if not src_ids:
        raise ValueError("no sentence pairs to build long inputs from")
    total = sum(len(s) for s in src_ids)
    if total < src_len:
        raise ValueError(f"the corpus has only {total} source tokens, fewer than src_len={src_len}")
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        i = rng.randrange(len(src_ids))
        src: list[int] = []
        tgt: list[int] = []
        while len(src) < src_len - 1:
            src.extend(src_ids[i % len(src_ids)])
            tgt.extend(tgt_ids[i % len(src_ids)])
            i += 1
        out.append((src[: src_len - 1], tgt[: tgt_len - 1]))
    return out


def long_batches(src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], *,
                 src_len: int, tgt_len: int, batch_size: int, n_batches: int, seed: int
                 ) -> list[Batch]:
    """`n_batches` batches of `batch_size` joined examples, every source exactly `src_len` long."""
    examples = joined_pairs(src_ids, tgt_ids, src_len=src_len, tgt_len=tgt_len,
                            count=batch_size * n_batches, seed=seed)
    return [make_batch([s for s, _ in chunk], [t for _, t in chunk])
            for chunk in (examples[k : k + batch_size]
                          for k in range(0, len(examples), batch_size))]


@dataclass(frozen=True)
class GradientData:
    """What the gradient report runs on: long batches of real data and the vocabulary sizes."""

    probe: Batch  # the fixed batch dL/dh_t is measured on
    train: list[Batch]  # one per training step
    src_vocab_size: int
    tgt_vocab_size: int
    description: str


def load_gradient_data(cfg: Config, spm_dir: Path, *, src_len: int, tgt_len: int,
                       batch_size: int, steps: int, seed: int) -> GradientData:
    """Tokenizers as `nmt train` builds them (cached in `spm_dir`), then long batches.

    Training batches come from the training split; the probe batch from the validation split
    when the config has one.
    """
    train_corpus = read_corpus(cfg.data.train_corpora()[0], cfg.data.on_bad_line)
    src_tok, tgt_tok = build_tokenizers(cfg.tokenizer, train_corpus, spm_dir, user_symbols(cfg))
    valid_sets = cfg.data.valid_sets()
    probe_corpus = (
        read_corpus(valid_sets[0], cfg.data.on_bad_line) if valid_sets else train_corpus
    )
    train_src, train_tgt = src_tok.encode(train_corpus.src), tgt_tok.encode(train_corpus.tgt)
    probe_src, probe_tgt = src_tok.encode(probe_corpus.src), tgt_tok.encode(probe_corpus.tgt)
    (probe,) = long_batches(probe_src, probe_tgt, src_len=src_len, tgt_len=tgt_len,
                            batch_size=batch_size, n_batches=1, seed=seed)
    train = long_batches(train_src, train_tgt, src_len=src_len, tgt_len=tgt_len,
                         batch_size=batch_size, n_batches=steps, seed=seed + 1)
    split = "validation" if probe_corpus is not train_corpus else "training"
    return GradientData(
        probe=probe, train=train, src_vocab_size=src_tok.vocab_size,
        tgt_vocab_size=tgt_tok.vocab_size,
        description=f"{len(probe)} probe inputs from the {split} split and {steps} training "
                    f"batches of {batch_size}: consecutive sentence pairs joined, sources cut "
                    f"to {src_len} subwords and targets to {tgt_len} (EOS included)",
    )
