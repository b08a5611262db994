"""Decoding: one constrained decoder step shared by greedy and beam search.

Both searches take their next-token log-probs from `constrained_step`, so they ban the same
tokens and force EOS at the same step; that is what makes beam size 1 equal greedy exactly.
The helpers edit the freshly made log-prob tensor in place (it is never shared).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nmt.models.decoder import DecoderState
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq
from nmt.tokenization import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")

# Shallow-fusion hook: (tokens (R, t) generated so far, sentence index (R,)) -> (R, V) scores
# added to the model's log-probs before any constraint. A language model plugs in here.
StepScorer = Callable[[Tensor, Tensor], Tensor]


def resolve_max_len(max_len: int | Tensor, batch_size: int, device: torch.device) -> Tensor:
    """An int or a per-sentence tensor -> (B,) long tensor of maximum target lengths (no EOS)."""
    if isinstance(max_len, Tensor):
        if max_len.shape != (batch_size,):
            raise ValueError(f"max_len must have shape ({batch_size},), got {tuple(max_len.shape)}")
        out = max_len.to(device=device, dtype=torch.long)
    else:
        out = torch.full((batch_size,), int(max_len), dtype=torch.long, device=device)
    if bool((out < 0).any()):
        raise ValueError("max_len must be >= 0")
    return out


def ban_repeated_ngrams(log_probs: Tensor, tokens: Tensor, n: int) -> None:
    """Sets -inf on every token that would repeat an n-gram already in the row's history.

    Args:
        log_probs: (R, V), edited in place.
        tokens: (R, t) target ids generated so far (no BOS).
        n: n-gram size; 0 disables.
    """
    t = tokens.size(1)
    if n <= 0 or t < n:
        return
    windows = tokens.unfold(1, n, 1)  # (R, t - n + 1, n)
    prefix = tokens[:, t - n + 1 :]  # (R, n - 1): the n-gram the next token would complete
    match = (windows[:, :, :-1] == prefix[:, None, :]).all(dim=-1)  # (R, t - n + 1)
    # Non-matching windows point at PAD, which is banned anyway.
    banned = windows[:, :, -1].masked_fill(~match, PAD_ID)
    log_probs.scatter_(1, banned, NEG_INF)


def constrained_step(
    model: Seq2Seq,
    prev_tokens: Tensor,
    state: DecoderState,
    enc: EncoderOutput,
    *,
    step: int,
    tokens: Tensor,
    at_max: Tensor,
    min_len: int,
    no_repeat_ngram: int,
    step_scorer: StepScorer | None,
    sentence_ids: Tensor,
) -> tuple[Tensor, DecoderState, Tensor | None]:
    """One decoder step with every search constraint applied.

    Args:
        prev_tokens: (R,) last ids (BOS at step 0); R = sentences (greedy) or sentences * K.
        step: tokens generated so far (same for every row).
        tokens: (R, step) the rows' histories.
        at_max: (R,) bool, rows that reached their maximum length: only EOS is allowed.
        sentence_ids: (R,) original batch index of each row, for `step_scorer`.

    Returns:
        log-probs (R, V) float32, the next state, attention (R, S) or None.
    """
    log_probs, state, attn = model.decode_step(prev_tokens, state, enc)
    if step_scorer is not None:
        log_probs = log_probs + step_scorer(tokens, sentence_ids)
    forced = bool(at_max.any())
    eos = log_probs[:, EOS_ID].clone() if forced else None
    log_probs[:, PAD_ID] = NEG_INF
    log_probs[:, BOS_ID] = NEG_INF
    ban_repeated_ngrams(log_probs, tokens, no_repeat_ngram)
    if step < min_len:
        log_probs[:, EOS_ID] = NEG_INF
    if eos is not None:
        # max_len wins over min_len and n-gram bans: a row at its limit must end now.
        log_probs.masked_fill_(at_max[:, None], NEG_INF)
        log_probs[:, EOS_ID] = torch.where(at_max, eos, log_probs[:, EOS_ID])
    return log_probs, state, attn
