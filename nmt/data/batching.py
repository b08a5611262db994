"""Data: padded `Batch` tensors and token-budget batches bucketed by length.

Batches are a pure function of (lengths, seed, epoch), so a resumed run sees exactly the batches
the interrupted run would have seen, and every DDP rank agrees on them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.tokenization import BOS_ID, EOS_ID, PAD_ID


@dataclass(frozen=True)
class SourceBatch:
    """What the encoder reads: padded source ids and their lengths (inference)."""

    src: Tensor  # (B, S) source ids + EOS, right-padded with PAD_ID
    src_lengths: Tensor  # (B,) on the CPU: pack_padded_sequence wants CPU lengths

    @property
    def src_mask(self) -> Tensor:
        """(B, S) bool, True at real tokens."""
        return self.src != PAD_ID

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device | str) -> SourceBatch:
        return SourceBatch(self.src.to(device, non_blocking=True), self.src_lengths)


@dataclass(frozen=True)
class Batch(SourceBatch):
    """A training batch: the source and the target, teacher-forced."""

    tgt_in: Tensor  # (B, T) BOS + target ids
    tgt_out: Tensor  # (B, T) target ids + EOS

    @property
    def num_tgt_tokens(self) -> int:
        return int((self.tgt_out != PAD_ID).sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            src=self.src.to(device, non_blocking=True),
            src_lengths=self.src_lengths,
            tgt_in=self.tgt_in.to(device, non_blocking=True),
            tgt_out=self.tgt_out.to(device, non_blocking=True),
        )


def pad(
    seqs: Sequence[Sequence[int]], *, prefix: int | None = None, suffix: int | None = None
) -> Tensor:
    """Right-pads id lists into a (N, L) long tensor, adding optional BOS/EOS."""
    extra = (prefix is not None) + (suffix is not None)
    width = max((len(s) for s in seqs), default=0) + extra
    out = torch.full((len(seqs), max(width, 1)), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids = ([prefix] if prefix is not None else []) + list(seq)
        if suffix is not None:
            ids.append(suffix)
        if ids:
            out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def make_source_batch(src: Sequence[Sequence[int]]) -> SourceBatch:
    """Pads sources; each gets EOS so the encoder sees where a sentence ends."""
    return SourceBatch(
        src=pad(src, suffix=EOS_ID),
        src_lengths=torch.tensor([len(s) + 1 for s in src], dtype=torch.long),
    )


def make_batch(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]]) -> Batch:
    """A training Batch: sources as `make_source_batch`, targets as BOS + ids / ids + EOS."""
    source = make_source_batch(src)
    return Batch(
        src=source.src,
        src_lengths=source.src_lengths,
        tgt_in=pad(tgt, prefix=BOS_ID),
        tgt_out=pad(tgt, suffix=EOS_ID),
    )


def token_batches(
    lengths: Sequence[int],
    *,
    max_tokens: int,
    max_sentences: int,
    seed: int | None,
    epoch: int = 0,
    bucket_factor: int = 100,
    indices: Sequence[int] | None = None,
) -> list[list[int]]:
    """Groups example indices into batches of at most `max_tokens` padded tokens.

    Examples are shuffled (when `seed` is given), cut into buckets of about `bucket_factor`
    batches, sorted by length inside each bucket so batches carry little padding, and the
    resulting batches are shuffled again. With `seed=None` the order is by length (inference).

    Args:
        lengths: per example, the longest side in tokens (including BOS/EOS).
        indices: the examples to batch (repeats allowed, see `weighted_epoch`); default all.
    """
    order = list(range(len(lengths))) if indices is None else list(indices)
    rng = random.Random(f"{seed}:{epoch}") if seed is not None else None
    if rng is not None:
        rng.shuffle(order)
        avg = max(1, sum(lengths[i] for i in order) // max(1, len(order)))
        bucket = max(1, bucket_factor * max(1, max_tokens // avg))
        chunks = [order[i : i + bucket] for i in range(0, len(order), bucket)]
    else:
        chunks = [order]
    batches: list[list[int]] = []
    for chunk in chunks:
        chunk.sort(key=lambda i: lengths[i])
        current: list[int] = []
        longest = 0
        for i in chunk:
            grown = max(longest, lengths[i])
            if current and (
                grown * (len(current) + 1) > max_tokens or len(current) >= max_sentences
            ):
                batches.append(current)
                current, grown = [], lengths[i]
            current.append(i)
            longest = grown
        if current:
            batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def weighted_epoch(parts: Sequence[tuple[int, int, float]], *, seed: int, epoch: int) -> list[int]:
    """The examples of one epoch when corpora are over- or under-sampled.

    Each part (start, end, weight) contributes every example floor(weight) times, plus a random
    round(fraction x size) of them drawn without replacement; the draw is a pure function of
    (seed, epoch), so resumed runs and every DDP rank see the same epoch.
    """
    rng = random.Random(f"{seed}:{epoch}:weights")
    chosen: list[int] = []
    for start, end, weight in parts:
        whole, fraction = int(weight), weight - int(weight)
        chosen.extend(i for _ in range(whole) for i in range(start, end))
        extra = round(fraction * (end - start))
        if extra:
            chosen.extend(sorted(rng.sample(range(start, end), extra)))
    return chosen
