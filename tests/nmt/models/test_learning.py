"""Learning tests: a tiny model of each cell, with and without attention, learns to reverse
random token sequences, judged by exact match of the product's greedy search on held-out data."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.config import ModelConfig
from nmt.data.batching import make_batch, make_source_batch, token_batches
from nmt.decoding.greedy import greedy_search
from nmt.models.seq2seq import Seq2Seq, build_model
from nmt.tokenization import EOS_ID
from nmt.training.loss import sequence_loss

SYMBOLS = list(range(EOS_ID + 1, EOS_ID + 9))  # 8 ordinary token ids after the specials
VOCAB = SYMBOLS[-1] + 1
MIN_LEN, MAX_LEN = 3, 6


def random_sequences(n: int, rng: random.Random) -> list[list[int]]:
    return [[rng.choice(SYMBOLS) for _ in range(rng.randint(MIN_LEN, MAX_LEN))] for _ in range(n)]


def reverse_task(seed: int) -> tuple[list[list[int]], list[list[int]]]:
    """Training sequences, and held-out sequences that never occur in training."""
    rng = random.Random(seed)
    train = random_sequences(2000, rng)
    seen = {tuple(s) for s in train}
    held_out = [s for s in random_sequences(400, rng) if tuple(s) not in seen][:200]
    return train, held_out


def train_reverser(model: Seq2Seq, train: list[list[int]], *, steps: int, lr: float,
                   max_tokens: int, max_sentences: int) -> None:
    """Adam with a linear decay, on token-budget batches; no label smoothing."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.05, 1 - s / steps))
    lengths = [len(s) + 1 for s in train]
    model.train()
    step, epoch = 0, 0
    while step < steps:
        for indices in token_batches(lengths, max_tokens=max_tokens, max_sentences=max_sentences,
                                     seed=0, epoch=epoch):
            batch = make_batch([train[i] for i in indices], [train[i][::-1] for i in indices])
            loss, _ = sequence_loss(model(batch), batch.tgt_out, label_smoothing=0.0)
            optimizer.zero_grad()
            (loss / batch.num_tgt_tokens).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            decay.step()
            step += 1
            if step == steps:
                break
        epoch += 1


@torch.no_grad()
def exact_match(model: Seq2Seq, sequences: list[list[int]]) -> float:
    model.eval()
    batch = make_source_batch(sequences)
    enc = model.encode(batch.src, batch.src_lengths)
    nbest = greedy_search(model, enc, max_len=MAX_LEN + 3)
    hits = sum(n[0].tokens == s[::-1] for n, s in zip(nbest, sequences, strict=True))
    return hits / len(sequences)


# Attention makes reversal easy; a fixed-size context vector needs more units and data.
SETTINGS = {
    "bahdanau": {"hidden": 32, "steps": 160, "max_tokens": 512, "max_sentences": 64},
    "none": {"hidden": 64, "steps": 250, "max_tokens": 768, "max_sentences": 768},
}


@pytest.mark.parametrize("attention", ["none", "bahdanau"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_tiny_model_learns_to_reverse(cell: str, attention: str) -> None:
    torch.manual_seed(0)
    train, held_out = reverse_task(seed=0)
    size = SETTINGS[attention]
    cfg = ModelConfig(cell=cell, attention=attention, emb_dim=16,
                      enc_hidden=size["hidden"], dec_hidden=size["hidden"], attn_dim=size["hidden"],
                      dropout=0.0, emb_dropout=0.0, tie_output=False)
    model = build_model(cfg, src_vocab_size=VOCAB, tgt_vocab_size=VOCAB)
    assert exact_match(model, held_out) < 0.2  # it is not solved before training
    train_reverser(model, train, steps=size["steps"], lr=0.01, max_tokens=size["max_tokens"],
                   max_sentences=size["max_sentences"])
    accuracy = exact_match(model, held_out)
    print(f"exact match {cell}/{attention}: {accuracy:.3f}")
    assert accuracy >= 0.95
