"""Tests for nmt.data.batching: token-budget batches and padded Batch tensors."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.data.batching import make_batch, make_source_batch, pad, token_batches
from nmt.tokenization import BOS_ID, EOS_ID, PAD_ID


def random_lengths(n: int, seed: int = 0, lo: int = 2, hi: int = 40) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(lo, hi) for _ in range(n)]


@pytest.mark.parametrize("max_tokens, max_sentences", [(200, 64), (60, 3), (1000, 8), (41, 100)])
@pytest.mark.parametrize("seed", [None, 3])
def test_batches_respect_budgets_and_cover_each_index_once(
    max_tokens: int, max_sentences: int, seed: int | None
) -> None:
    lengths = random_lengths(500)
    batches = token_batches(lengths, max_tokens=max_tokens, max_sentences=max_sentences,
                            seed=seed, epoch=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for b in batches:
        assert b
        assert len(b) <= max_sentences
        assert max(lengths[i] for i in b) * len(b) <= max_tokens


def test_an_example_longer_than_the_budget_gets_its_own_batch() -> None:
    lengths = [5, 50, 5, 5]
    batches = token_batches(lengths, max_tokens=20, max_sentences=10, seed=1)
    assert [1] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_same_seed_and_epoch_give_the_same_batches() -> None:
    lengths = random_lengths(300)
    a = token_batches(lengths, max_tokens=150, max_sentences=32, seed=5, epoch=2)
    b = token_batches(list(lengths), max_tokens=150, max_sentences=32, seed=5, epoch=2)
    assert a == b


def test_epochs_and_seeds_change_the_batches() -> None:
    lengths = random_lengths(300)
    kwargs = {"max_tokens": 150, "max_sentences": 32}
    e0 = token_batches(lengths, seed=5, epoch=0, **kwargs)
    e1 = token_batches(lengths, seed=5, epoch=1, **kwargs)
    other = token_batches(lengths, seed=6, epoch=0, **kwargs)
    assert e0 != e1
    assert e0 != other


def test_batches_group_similar_lengths() -> None:
    # Bucketing keeps padding low compared with batches of random order.
    lengths = random_lengths(2000, hi=60)
    batches = token_batches(lengths, max_tokens=400, max_sentences=1000, seed=0, bucket_factor=10)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    assert padded < 1.3 * sum(lengths)


def test_without_seed_order_is_by_length() -> None:
    lengths = random_lengths(100)
    batches = token_batches(lengths, max_tokens=100, max_sentences=10, seed=None)
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_pad_shapes_and_affixes() -> None:
    out = pad([[5, 6], [7]], prefix=BOS_ID, suffix=EOS_ID)
    assert out.tolist() == [[BOS_ID, 5, 6, EOS_ID], [BOS_ID, 7, EOS_ID, PAD_ID]]
    assert pad([], suffix=EOS_ID).shape == (0, 1)


def test_make_batch_places_bos_eos_and_masks() -> None:
    src = [[5, 6, 7], [8]]
    tgt = [[9], [10, 11, 12, 13]]
    batch = make_batch(src, tgt)
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [4, 2]
    assert batch.src_lengths.device.type == "cpu"
    assert batch.src_mask.dtype == torch.bool
    assert batch.src_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert batch.tgt_in.shape == batch.tgt_out.shape == (2, 5)
    assert batch.tgt_in[:, 0].tolist() == [BOS_ID, BOS_ID]
    assert batch.tgt_in.tolist() == [[BOS_ID, 9, PAD_ID, PAD_ID, PAD_ID], [BOS_ID, 10, 11, 12, 13]]
    assert batch.tgt_out.tolist() == [[9, EOS_ID, PAD_ID, PAD_ID, PAD_ID], [10, 11, 12, 13, EOS_ID]]
    # tgt_out is tgt_in shifted left by one, with EOS where tgt_in had the last token
    shifted = batch.tgt_in[:, 1:] == batch.tgt_out[:, :-1]
    assert shifted.logical_or(batch.tgt_out[:, :-1] == EOS_ID).all()
    assert batch.num_tgt_tokens == 1 + 1 + 4 + 1
    assert len(batch) == 2


def test_source_batch_has_no_target_side() -> None:
    batch = make_source_batch([[5], [6, 7]])
    assert not hasattr(batch, "tgt_in") and not hasattr(batch, "num_tgt_tokens")
    assert batch.src.shape == (2, 3) and batch.src_lengths.tolist() == [2, 3]


def test_batch_to_keeps_lengths_on_cpu() -> None:
    batch = make_batch([[5, 6]], [[7]]).to("cpu")
    assert batch.src_lengths.device.type == "cpu"
    assert batch.tgt_out.tolist() == [[7, EOS_ID]]
