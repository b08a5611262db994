"""Decoding: batched greedy search (the argmax token is fed back at every step)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.decoding.constraints import StepScorer, constrained_step, resolve_max_len
from nmt.decoding.hypothesis import Hypothesis
from nmt.decoding.penalties import gnmt_length_penalty
from nmt.decoding.topk import best_tokens
from nmt.models.decoder import DecoderState
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq
from nmt.tokenization import BOS_ID, EOS_ID


@dataclass(frozen=True)
class _Live:
    """The N sentences still being decoded, row by row."""

    sent: Tensor  # (N,) original index of each live row
    max_lens: Tensor  # (N,)
    scores: Tensor  # (N,) summed log-probs
    tokens: Tensor  # (N, t)
    state: DecoderState
    enc: EncoderOutput
    attn_hist: Tensor  # (N, t, S); empty in t without attention

    def select(self, rows: Tensor) -> _Live:
        return _Live(self.sent[rows], self.max_lens[rows], self.scores[rows], self.tokens[rows],
                     self.state.select(rows), self.enc.select(rows), self.attn_hist[rows])


@torch.inference_mode()
def greedy_search(
    model: Seq2Seq,
    enc: EncoderOutput,
    *,
    max_len: int | Tensor,
    length_penalty: float = 0.0,
    min_len: int = 0,
    no_repeat_ngram: int = 0,
    return_attention: bool = True,
    step_scorer: StepScorer | None = None,
    drop: Callable[[Tensor], Tensor] | None = None,
) -> list[list[Hypothesis]]:
    """Greedy decoding of a whole batch; finished rows leave the batch as they end.

    Args:
        enc: the batch's encoder output, B sentences.
        max_len: maximum target tokens (EOS not counted), one int or a (B,) tensor; a row that
            reaches it is forced to end.
        length_penalty: GNMT alpha, only used to report the score (it cannot change an argmax).
        min_len: EOS is banned before this many tokens.
        no_repeat_ngram: ban repeating any n-gram of this size (0: off).
        return_attention: keep (T, S) attention when the model has attention.
        step_scorer: optional shallow-fusion hook, see `constraints.StepScorer`.
        drop: called before every step with the (N,) original batch indices of the live
            sentences; the (N,) bool it returns marks sentences to abandon. They leave the batch
            before that step runs and get an empty list; when none is left, decoding ends.

    Returns:
        One single-element n-best list per sentence, in batch order ([] for abandoned ones).
    """
    batch_size = enc.mask.size(0)
    device = enc.mask.device
    max_lens = resolve_max_len(max_len, batch_size, device)  # (N,) for the N live rows
    src_lengths = enc.mask.sum(dim=1).tolist()
    keep_attn = return_attention and model.has_attention
    prev = torch.full((batch_size,), BOS_ID, dtype=torch.long, device=device)
    live = _Live(
        sent=torch.arange(batch_size, device=device),
        max_lens=max_lens,
        scores=torch.zeros(batch_size, device=device),
        tokens=torch.empty((batch_size, 0), dtype=torch.long, device=device),
        state=model.init_state(enc),
        enc=enc,
        attn_hist=enc.mask.new_empty((batch_size, 0, enc.mask.size(1)), dtype=torch.float),
    )
    results: list[list[Hypothesis]] = [[] for _ in range(batch_size)]

    for step in range(int(max_lens.max()) + 1 if batch_size else 0):
        if drop is not None:
            gone = drop(live.sent)
            if bool(gone.any()):
                stay = (~gone).nonzero().squeeze(1)
                if stay.numel() == 0:
                    break
                live, prev = live.select(stay), prev[stay]
        log_probs, state, attn = constrained_step(
            model, prev, live.state, live.enc, step=step, tokens=live.tokens,
            at_max=live.max_lens <= step, min_len=min_len, no_repeat_ngram=no_repeat_ngram,
            step_scorer=step_scorer, sentence_ids=live.sent,
        )
        best, next_tokens = best_tokens(log_probs)  # (N,) each: log_probs.max(dim=1)
        live = dataclasses.replace(live, scores=live.scores + best, state=state)
        ended = next_tokens == EOS_ID
        if bool(ended.any()):
            penalty = gnmt_length_penalty(step + 1, length_penalty)
            idx = ended.nonzero().squeeze(1)
            for i, s, toks, score in zip(idx.tolist(), live.sent[idx].tolist(),
                                         live.tokens[idx].tolist(), live.scores[idx].tolist(),
                                         strict=True):
                att = live.attn_hist[i, :, : src_lengths[s]].clone() if keep_attn else None
                results[s] = [Hypothesis(tokens=toks, score=score / penalty, attention=att)]
            keep = (~ended).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            live, next_tokens = live.select(keep), next_tokens[keep]
            if keep_attn and attn is not None:
                attn = attn[keep]
        attn_hist = live.attn_hist
        if keep_attn and attn is not None:
            attn_hist = torch.cat([attn_hist, attn[:, None]], dim=1)
        live = dataclasses.replace(live, tokens=torch.cat([live.tokens, next_tokens[:, None]], 1),
                                   attn_hist=attn_hist)
        prev = next_tokens
    return results
