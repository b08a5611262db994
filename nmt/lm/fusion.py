"""Language models: shallow fusion of a target-language LM into greedy and beam search.

    score(y_t) = log p_TM(y_t | y_<t, x) + lm_weight * log p_LM(y_t | y_<t)

`LMScorer` is the batched, stateful scorer: `step(prev_tokens, state)` gives LM log-probs and the
next state, and the state's `select(indices)` follows beam reordering. `LMScorer.__call__` fits it
to nmt.decoding's stateless `step_scorer` hook, which passes each row's token history: the scorer
keeps the previous step's states keyed by history, so each step costs one LM step per row
instead of a re-run over the whole prefix. The LM state is a pure function of the history, so
rows that share a history may share a state.

A sentence starts after the line separator (EOS), exactly as lines follow each other in the
stream the LM was trained on.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from nmt.lm.bundle import load_lm
from nmt.lm.model import LMState, RecurrentLM
from nmt.lm.vocab import SubwordVocab, Vocab
from nmt.tokenization import EOS_ID, Tokenizer


class FusionError(ValueError):
    """The LM cannot be fused with this translation model (vocabularies differ, bad weight)."""


def check_fusable(lm_vocab: Vocab, tgt_tokenizer: Tokenizer) -> None:
    """The LM must use the very SentencePiece model of the translation model's target side."""
    if not isinstance(lm_vocab, SubwordVocab):
        raise FusionError(
            f"LM fusion needs a subword LM over the translation model's target SentencePiece "
            f"vocabulary; this LM is {lm_vocab.kind}-level (train one with tokenizer.type: spm "
            "and tokenizer.spm_model: <the translation bundle>)"
        )
    if lm_vocab.tokenizer.model_proto != tgt_tokenizer.model_proto:
        raise FusionError(
            f"the LM's SentencePiece model (vocab {lm_vocab.size}) is not the translation "
            f"model's target SentencePiece model (vocab {tgt_tokenizer.vocab_size}): their ids "
            "mean different pieces; retrain the LM with tokenizer.spm_model: <the translation "
            "bundle>"
        )


class LMScorer:
    """Adds `weight * log p_LM` to a search's log-probs.

    Args:
        lm: a RecurrentLM (put in eval mode).
        weight: lm_weight >= 0; 0 adds exactly nothing.
        start_token: the LM input that begins a sentence (its line separator).
    """

    def __init__(self, lm: RecurrentLM, *, weight: float, start_token: int = EOS_ID):
        if weight < 0:
            raise FusionError(f"lm_weight must be >= 0, got {weight}")
        self.lm = lm.eval()
        self.weight = float(weight)
        self.start_token = start_token
        # The previous step's states (R rows) and which row holds each history.
        self._state: LMState | None = None
        self._rows: dict[tuple[int, ...], int] = {}

    # ------------------------------------------------ batched, stateful interface
    def initial_state(self, batch_size: int, device: torch.device | str = "cpu") -> LMState:
        return self.lm.initial_state(batch_size, device)

    def start(self, batch_size: int, device: torch.device | str = "cpu"
              ) -> tuple[Tensor, LMState]:
        """LM log-probs (B, V) of the first target token, and the state after the start token."""
        prev = torch.full((batch_size,), self.start_token, dtype=torch.long, device=device)
        return self.step(prev, self.initial_state(batch_size, device))

    @torch.inference_mode()
    def step(self, prev_tokens: Tensor, state: LMState) -> tuple[Tensor, LMState]:
        """(B,) previous target ids and the state -> LM log-probs (B, V) and the next state."""
        return self.lm.step(prev_tokens, state)

    def fuse(self, tm_log_probs: Tensor, lm_log_probs: Tensor) -> Tensor:
        """(B, V) translation-model log-probs plus weight * LM log-probs."""
        if self.weight == 0.0:
            return tm_log_probs
        return tm_log_probs + self.weight * lm_log_probs

    # ------------------------------------------------ nmt.decoding's step_scorer hook
    @torch.inference_mode()
    def __call__(self, tokens: Tensor, sentence_ids: Tensor) -> Tensor:
        """(R, t) histories (no BOS) -> (R, V) scores `weight * log p_LM(next | history)`.

        At t = 0 a new search starts and the cache is reset; afterwards every row's history
        minus its last token is a history seen at the previous step.
        """
        rows, t = tokens.shape
        if self.weight == 0.0:
            return torch.zeros((rows, self.lm.embedding.num_embeddings), device=tokens.device)
        if t == 0:
            log_probs, self._state = self.start(1, tokens.device)
            self._rows = {(): 0}
            return self.weight * log_probs.expand(rows, -1)
        histories = [tuple(h) for h in tokens.tolist()]
        parents = [self._rows.get(h[:-1]) for h in histories]
        if self._state is None or any(p is None for p in parents):
            # Not a continuation of the previous call: score these histories from scratch.
            return self.weight * self._rescore(tokens, histories)
        state = self._state.select(torch.tensor(parents, device=tokens.device))
        log_probs, self._state = self.step(tokens[:, -1], state)
        self._rows = {h: i for i, h in enumerate(histories)}
        return self.weight * log_probs

    def _rescore(self, tokens: Tensor, histories: list[tuple[int, ...]]) -> Tensor:
        """(R, t) histories -> (R, V) LM log-probs of the next token, running the whole prefix."""
        start = torch.full((tokens.size(0), 1), self.start_token, dtype=torch.long,
                           device=tokens.device)
        logits, self._state = self.lm(torch.cat([start, tokens], dim=1))
        self._rows = {h: i for i, h in enumerate(histories)}
        return logits[:, -1].float().log_softmax(dim=-1)


def fusion_scorer(lm_path: str | Path, *, tgt_tokenizer: Tokenizer, weight: float,
                  device: str | torch.device = "cpu") -> LMScorer:
    """Loads an LM bundle for fusion with a translation model whose target side is `tgt_tokenizer`.

    Raises:
        CheckpointError: the bundle is missing, unsafe or not an LM.
        FusionError: the vocabularies differ, or the weight is negative.
    """
    loaded = load_lm(lm_path, device=device)
    check_fusable(loaded.vocab, tgt_tokenizer)
    return LMScorer(loaded.model, weight=weight)
