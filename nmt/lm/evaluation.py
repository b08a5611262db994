"""Language models: perplexity and bits per character over a text.

bpc = (summed negative log-likelihood in nats) / (characters) / ln 2. Characters are counted on
the text itself, each line plus its newline, so a character LM (one token per character) and a
subword LM (fewer, longer tokens) are measured on the same scale. Perplexity is per model token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nmt.lm.model import RecurrentLM
from nmt.lm.stream import IGNORE, layout, window_lengths, windows
from nmt.lm.vocab import Vocab, count_chars, encode_stream


@dataclass(frozen=True)
class LMScores:
    tokens: int  # predicted tokens (line separators included)
    chars: int  # characters of the text, one newline per line included
    nll: float  # summed negative log-likelihood, nats

    @property
    def nats_per_token(self) -> float:
        return self.nll / max(1, self.tokens)

    @property
    def ppl(self) -> float:
        return math.exp(min(50.0, self.nats_per_token))

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2)

    @property
    def bpc(self) -> float:
        return bits_per_character(self.nll, self.chars)

    def as_dict(self) -> dict[str, float]:
        return {"tokens": self.tokens, "chars": self.chars, "nll": self.nll,
                "ppl": self.ppl, "bits_per_token": self.bits_per_token, "bpc": self.bpc}


def bits_per_character(nll_nats: float, n_chars: int) -> float:
    """Mean nats per character divided by ln 2."""
    return nll_nats / max(1, n_chars) / math.log(2)


@torch.no_grad()
def stream_nll(model: RecurrentLM, ids: Sequence[int], *, separator: int, batch_size: int = 16,
               bptt: int = 200) -> tuple[float, int]:
    """Summed NLL (nats) of every token of the stream, and how many were scored.

    Rows carry their state from window to window; each of the B rows starts from zeros, so a
    larger B is faster and very slightly pessimistic at the B - 1 row starts.
    """
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        batch_size = max(1, min(batch_size, (len(ids) + 1) // 2))
        data = layout(ids, batch_size, separator=separator, pad=True).to(device)
        state = None
        total, count = 0.0, 0
        for win in windows(data, window_lengths(data.size(1), bptt)):
            logits, state = model(win.inputs, state)
            total += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(),
                                           win.targets.reshape(-1), ignore_index=IGNORE,
                                           reduction="sum"))
            count += int((win.targets != IGNORE).sum())
        return total, count
    finally:
        model.train(was_training)


def evaluate_lines(model: RecurrentLM, vocab: Vocab, lines: Sequence[str], *,
                   batch_size: int = 16, bptt: int = 200) -> LMScores:
    """Perplexity and bits per character of `lines` read as one stream."""
    ids = encode_stream(vocab, lines)
    if not ids:
        raise ValueError("no text to evaluate")
    nll, n = stream_nll(model, ids, separator=vocab.separator_id, batch_size=batch_size,
                        bptt=bptt)
    return LMScores(tokens=n, chars=count_chars(lines), nll=nll)
