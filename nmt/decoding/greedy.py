"""Decoding: batched greedy search (the argmax token is fed back at every step)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nmt.decoding.constraints import StepScorer, constrained_step, resolve_max_len
from nmt.decoding.hypothesis import Hypothesis
from nmt.decoding.penalties import gnmt_length_penalty
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq
from nmt.tokenization import BOS_ID, EOS_ID


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
    sent = torch.arange(batch_size, device=device)  # (N,) original index of each live row
    state = model.init_state(enc)
    prev = torch.full((batch_size,), BOS_ID, dtype=torch.long, device=device)
    tokens = torch.empty((batch_size, 0), dtype=torch.long, device=device)  # (N, t)
    scores = torch.zeros(batch_size, device=device)  # (N,) summed log-probs
    attn_hist = enc.mask.new_empty((batch_size, 0, enc.mask.size(1)), dtype=torch.float)
    results: list[list[Hypothesis]] = [[] for _ in range(batch_size)]

    for step in range(int(max_lens.max()) + 1 if batch_size else 0):
        if drop is not None:
            gone = drop(sent)
            if bool(gone.any()):
                stay = (~gone).nonzero().squeeze(1)
                if stay.numel() == 0:
                    break
                sent, max_lens, scores = sent[stay], max_lens[stay], scores[stay]
                tokens, prev = tokens[stay], prev[stay]
                state, enc = state.select(stay), enc.select(stay)
                if keep_attn:
                    attn_hist = attn_hist[stay]
        log_probs, state, attn = constrained_step(
            model, prev, state, enc, step=step, tokens=tokens, at_max=max_lens <= step,
            min_len=min_len, no_repeat_ngram=no_repeat_ngram, step_scorer=step_scorer,
            sentence_ids=sent,
        )
        best, next_tokens = log_probs.max(dim=1)  # (N,)
        scores = scores + best
        ended = next_tokens == EOS_ID
        if bool(ended.any()):
            penalty = gnmt_length_penalty(step + 1, length_penalty)
            idx = ended.nonzero().squeeze(1)
            for i, s, toks, score in zip(idx.tolist(), sent[idx].tolist(),
                                         tokens[idx].tolist(), scores[idx].tolist(),
                                         strict=True):
                att = attn_hist[i, :, : src_lengths[s]].clone() if keep_attn else None
                results[s] = [Hypothesis(tokens=toks, score=score / penalty, attention=att)]
            keep = (~ended).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            sent, max_lens, scores = sent[keep], max_lens[keep], scores[keep]
            tokens, next_tokens = tokens[keep], next_tokens[keep]
            state, enc = state.select(keep), enc.select(keep)
            if keep_attn and attn is not None:
                attn_hist, attn = attn_hist[keep], attn[keep]
        tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)
        if keep_attn and attn is not None:
            attn_hist = torch.cat([attn_hist, attn[:, None]], dim=1)
        prev = next_tokens
    return results
