"""Decoding: batched beam search; all sentences x beams advance together as B*K rows.

Each step takes the 2K best (beam, token) extensions per sentence from the (K * V) candidates.
Those ending in EOS among the top K are finished hypotheses; the K best that do not end in EOS
stay active. A sentence is done once it has K finished hypotheses or reaches its maximum length,
and done sentences leave the batch, so the tensors shrink as decoding goes on. (fairseq's
SequenceGenerator works the same way.) A sentence starts with one beam (BOS), so the first step
runs B rows rather than B * K copies of the same one; its 2K extensions are distinct, so are the
K beams they give, and the n-best lists never hold duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.decoding.constraints import NEG_INF, StepScorer, constrained_step, resolve_max_len
from nmt.decoding.hypothesis import Hypothesis, best_first
from nmt.decoding.penalties import gnmt_length_penalty
from nmt.decoding.topk import top_extensions
from nmt.models.decoder import DecoderState
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq
from nmt.tokenization import BOS_ID, EOS_ID


@dataclass(frozen=True)
class _Beams:
    """The live part of the search: N sentences, N * k rows (k beams each: 1 before the first
    step, K after it; an empty beam, scored -inf, only when fewer than K extensions exist)."""

    sent: Tensor  # (N,) original batch index
    max_lens: Tensor  # (N,)
    n_finished: Tensor  # (N,) finished hypotheses so far
    scores: Tensor  # (N, k) summed log-probs
    tokens: Tensor  # (N * k, t)
    attn: Tensor | None  # (N * k, t, S)
    prev: Tensor  # (N * k,) last token
    state: DecoderState  # N * k rows
    enc: EncoderOutput  # N rows: the decoder serves a sentence's K beams from one copy


@dataclass(frozen=True)
class _Top:
    """The 2K best extensions of each live sentence at one step."""

    scores: Tensor  # (N, 2K), best first
    rows: Tensor  # (N, 2K) flat row (sentence * K + beam) each extends
    tokens: Tensor  # (N, 2K) the token each appends


@torch.inference_mode()
def beam_search(
    model: Seq2Seq,
    enc: EncoderOutput,
    *,
    max_len: int | Tensor,
    beam_size: int,
    length_penalty: float,
    nbest: int = 1,
    min_len: int = 0,
    no_repeat_ngram: int = 0,
    return_attention: bool = True,
    step_scorer: StepScorer | None = None,
    drop: Callable[[Tensor], Tensor] | None = None,
) -> list[list[Hypothesis]]:
    """Beam search over a batch.

    Args:
        enc: the batch's encoder output, B sentences (keys already projected by `encode`).
        max_len: maximum target tokens (EOS not counted), one int or a (B,) tensor.
        beam_size: K.
        length_penalty: GNMT alpha for finished hypotheses (0: raw log-probs).
        nbest: hypotheses returned per sentence, 1 <= nbest <= K.
        min_len: EOS is banned before this many tokens.
        no_repeat_ngram: ban repeating any n-gram of this size (0: off).
        return_attention: keep (T, S) attention when the model has attention.
        step_scorer: optional shallow-fusion hook, see `constraints.StepScorer`.
        drop: called before every step with the (N,) original batch indices of the live
            sentences; the (N,) bool it returns marks sentences to abandon. They leave the batch
            (all K beams) before that step runs and get an empty list, even if some of their
            hypotheses had finished; when none is left, decoding ends.

    Returns:
        Per sentence, its n-best list: distinct hypotheses, best score first ([] if abandoned).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest must be between 1 and the beam size {beam_size}, got {nbest}")
    batch_size = enc.mask.size(0)
    beams = _start(model, enc, resolve_max_len(max_len, batch_size, enc.mask.device),
                   keep_attn=return_attention and model.has_attention)
    src_lengths = enc.mask.sum(dim=1).tolist()
    finished: list[list[Hypothesis]] = [[] for _ in range(batch_size)]
    step = 0
    while beams.sent.numel() > 0:
        if drop is not None:
            beams = _drop(beams, drop(beams.sent), finished)
            if beams.sent.numel() == 0:
                break
        rows = beams.scores.size(1)  # per sentence: 1 at the first step, then K
        log_probs, state, attn = constrained_step(
            model, beams.prev, beams.state, beams.enc, step=step, tokens=beams.tokens,
            at_max=(beams.max_lens <= step).repeat_interleave(rows), min_len=min_len,
            no_repeat_ngram=no_repeat_ngram, step_scorer=step_scorer,
            sentence_ids=beams.sent.repeat_interleave(rows),
        )
        top = _top_extensions(beams.scores, log_probs, beam_size)
        attn_hist = None
        if beams.attn is not None and attn is not None:
            attn_hist = torch.cat([beams.attn, attn[:, None]], dim=1)  # (N * k, t + 1, S)
        n_new = _finish(beams, top, beam_size, step, length_penalty, finished, src_lengths)
        n_finished = beams.n_finished + n_new
        settled = _settled(finished, beams.sent, top, n_finished, beam_size, step,
                           length_penalty)
        beams = _advance(beams, top, state, attn_hist, n_finished, settled, beam_size, step)
        step += 1
    return [best_first(hyps, nbest) for hyps in finished]


def _start(model: Seq2Seq, enc: EncoderOutput, max_lens: Tensor, *, keep_attn: bool) -> _Beams:
    """One beam per sentence: BOS, score 0 (the first step's extensions make the K beams)."""
    batch_size, src_len = enc.mask.shape
    device = enc.mask.device
    return _Beams(
        sent=torch.arange(batch_size, device=device),
        max_lens=max_lens,
        n_finished=torch.zeros(batch_size, dtype=torch.long, device=device),
        scores=torch.zeros((batch_size, 1), device=device),
        tokens=torch.empty((batch_size, 0), dtype=torch.long, device=device),
        attn=torch.empty((batch_size, 0, src_len), device=device) if keep_attn else None,
        prev=torch.full((batch_size,), BOS_ID, dtype=torch.long, device=device),
        state=model.init_state(enc),
        enc=enc,
    )


def _drop(beams: _Beams, gone: Tensor, finished: list[list[Hypothesis]]) -> _Beams:
    """Removes the sentences marked in `gone` (N,) bool, all their K rows, and forgets their
    finished hypotheses: an abandoned sentence has no result."""
    if not bool(gone.any()):
        return beams
    k = beams.scores.size(1)
    for s in beams.sent[gone].tolist():
        finished[s] = []
    keep = (~gone).nonzero().squeeze(1)  # (N',)
    rows = (keep[:, None] * k + torch.arange(k, device=keep.device)).view(-1)  # (N' * K,)
    return _Beams(
        sent=beams.sent[keep],
        max_lens=beams.max_lens[keep],
        n_finished=beams.n_finished[keep],
        scores=beams.scores[keep],
        tokens=beams.tokens.index_select(0, rows),
        attn=None if beams.attn is None else beams.attn.index_select(0, rows),
        prev=beams.prev.index_select(0, rows),
        state=beams.state.select(rows),
        enc=beams.enc.select(keep),
    )


def _top_extensions(scores: Tensor, log_probs: Tensor, beam_size: int) -> _Top:
    """scores (N, k) + log_probs (N * k, V) -> the 2K best extensions per sentence (fewer when
    k * V < 2K).

    Ranked in two stages (`topk.top_extensions`): no (N, k * V) sum is ever made or ranked.
    """
    width = min(2 * beam_size, scores.size(1) * log_probs.size(1))
    values, rows, tokens = top_extensions(scores, log_probs, width)
    return _Top(scores=values, rows=rows, tokens=tokens)


def _finish(beams: _Beams, top: _Top, k: int, step: int, alpha: float,
            finished: list[list[Hypothesis]], src_lengths: list[int]) -> Tensor:
    """Moves EOS extensions ranked in the top K into `finished`; returns (N,) counts added."""
    ends = (top.tokens[:, :k] == EOS_ID) & (top.scores[:, :k] > NEG_INF)  # (N, K)
    if not bool(ends.any()):
        return torch.zeros_like(beams.n_finished)
    which, pos = ends.nonzero(as_tuple=True)
    rows = top.rows[which, pos]
    penalty = gnmt_length_penalty(step + 1, alpha)  # every hypothesis here has step + 1 tokens
    attn = None if beams.attn is None else beams.attn.index_select(0, rows)  # (F, step, S)
    for i, (s, toks, score) in enumerate(zip(beams.sent[which].tolist(),
                                             beams.tokens.index_select(0, rows).tolist(),
                                             top.scores[which, pos].tolist(), strict=True)):
        att = None if attn is None else attn[i, :, : src_lengths[s]].clone()
        finished[s].append(Hypothesis(tokens=toks, score=score / penalty, attention=att))
    return ends.sum(dim=1)


def _settled(finished: list[list[Hypothesis]], sent: Tensor, top: _Top, n_finished: Tensor,
             k: int, step: int, alpha: float) -> Tensor:
    """(N,) bool: sentences with K finished hypotheses that no live beam is expected to beat.

    Stopping at the K-th finished hypothesis alone can drop a better, longer one (even greedy's).
    A live beam's log-prob only falls as it grows, so with alpha = 0 the test below is exact; with
    alpha > 0 it scores the beam as if it ended at the next step, as common toolkits do.
    """
    out = (n_finished >= k).tolist()
    if not any(out):
        return torch.tensor(out, dtype=torch.bool, device=sent.device)
    live_best = top.scores.masked_fill(top.tokens == EOS_ID, NEG_INF).max(dim=1).values.tolist()
    penalty = gnmt_length_penalty(step + 2, alpha)
    for i, s in enumerate(sent.tolist()):
        if out[i]:
            kth = sorted((h.score for h in finished[s]), reverse=True)[k - 1]
            out[i] = live_best[i] / penalty <= kth
    return torch.tensor(out, dtype=torch.bool, device=sent.device)


def _advance(beams: _Beams, top: _Top, state: DecoderState, attn_hist: Tensor | None,
             n_finished: Tensor, settled: Tensor, k: int, step: int) -> _Beams:
    """Keeps the K best non-EOS extensions of every sentence that is not done yet."""
    live_scores = top.scores.masked_fill(top.tokens == EOS_ID, NEG_INF)
    # Fewer than K only when the first step has fewer than K tokens to choose from.
    scores, pos = live_scores.topk(min(k, live_scores.size(1)), dim=1)  # (N, K)
    rows, tokens = top.rows.gather(1, pos), top.tokens.gather(1, pos)
    done = settled | (beams.max_lens <= step)
    enc = beams.enc
    sent, max_lens = beams.sent, beams.max_lens
    if bool(done.any()):
        keep = (~done).nonzero().squeeze(1)
        sent, max_lens, n_finished = sent[keep], max_lens[keep], n_finished[keep]
        scores, rows, tokens = scores[keep], rows[keep], tokens[keep]
        enc = enc.select(keep)  # one row per sentence, whichever beams survive
    flat_rows, flat_tokens = rows.view(-1), tokens.view(-1)
    return _Beams(
        sent=sent,
        max_lens=max_lens,
        n_finished=n_finished,
        scores=scores,
        tokens=torch.cat([beams.tokens.index_select(0, flat_rows), flat_tokens[:, None]], dim=1),
        attn=None if attn_hist is None else attn_hist.index_select(0, flat_rows),
        prev=flat_tokens,
        state=state.select(flat_rows),
        enc=enc,
    )
