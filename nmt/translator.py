"""Translator: texts in, Translations out; the facade the CLI, evaluation, training and service use.

Inside: normalisation, SentencePiece, splitting or truncating over-long inputs, length-sorted
token-budget batches, greedy or beam search under `torch.inference_mode()`, and detokenisation.
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from nmt.checkpoint import load_model
from nmt.config import Config
from nmt.data.batching import make_batch, token_batches
from nmt.data.corpus import normalize
from nmt.decoding.beam import beam_search
from nmt.decoding.constraints import StepScorer
from nmt.decoding.greedy import greedy_search
from nmt.decoding.hypothesis import Hypothesis
from nmt.models.seq2seq import Seq2Seq
from nmt.runtime import set_threads
from nmt.text.protect import mask, unmask
from nmt.tokenization import Tokenizer

log = logging.getLogger(__name__)

QUANTIZE_MODES = ("int8",)
# A piece ending one of these (closing quotes and brackets aside), followed by a new word,
# ends a sentence; over-long inputs are split there.
_SENTENCE_END = tuple(".!?…。！？")
_CLOSERS = "\"'”’»)]"


class TranslatorError(ValueError):
    """Bad arguments to the translator (beam size, n-best, quantisation mode, device)."""


@dataclass(frozen=True)
class Candidate:
    text: str  # detokenised
    score: float  # log-prob after length penalty
    tokens: list[str]  # target subword pieces
    # (T, S): per target piece, weights over the source pieces (the source EOS column is left
    # out, so a row can sum to a little less than 1). Only when requested and available.
    attention: list[list[float]] | None


@dataclass(frozen=True)
class Translation:
    source: str  # the input as given
    source_tokens: list[str]  # source subword pieces (all of them, also when truncated)
    candidates: list[Candidate]  # n-best, best first; never empty

    @property
    def text(self) -> str:
        return self.candidates[0].text

    @property
    def score(self) -> float:
        return self.candidates[0].score


@dataclass(frozen=True)
class _Unit:
    """One decoding unit: a span [start, end) of one input's source ids."""

    text_index: int
    start: int
    end: int


def quantize_model(model: Seq2Seq, mode: str) -> Seq2Seq:
    """Dynamic int8 quantisation of the GRU/LSTM and Linear layers, for CPU inference.

    Weights become int8, activations are quantised on the fly. The tanh RNN cell (nn.RNN) has no
    dynamic-quantised version in torch, so for `cell: rnn` only the Linear layers are converted.
    A tied output layer gets its own Linear holding a copy of the target embedding, so the
    largest matrix product of a decoding step (H -> V) runs in int8 too; the embedding lookup
    itself stays float. The input model is left unchanged.
    """
    if mode not in QUANTIZE_MODES:
        raise TranslatorError(f"quantize must be one of {list(QUANTIZE_MODES)}, got {mode!r}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise TranslatorError("int8 quantisation runs on the CPU only; use --device cpu")
    layers: set[type[nn.Module]] = {nn.Linear, nn.GRU, nn.LSTM}
    if any(isinstance(m, nn.RNN) for m in model.modules()):
        log.info("int8: nn.RNN (tanh) cannot be dynamically quantised; quantising Linear layers")
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated; it is still the only CPU int8 path
        # for recurrent layers in this torch.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        model = copy.deepcopy(model)
        decoder = model.decoder
        if decoder.output is None:
            weight = decoder.embedding.weight
            decoder.output = nn.Linear(weight.size(1), weight.size(0), bias=False)
            decoder.output.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        return torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8,
                                                      inplace=True)


class Translator:
    """Translates lists of texts with one model; safe to call from one thread at a time.

    Args:
        model: a Seq2Seq (it is put in eval mode).
        src_tokenizer, tgt_tokenizer: the model's SentencePiece models.
        config: the model's resolved config; `config.decode` gives the defaults.
        metadata: free-form bundle metadata (reported by the service).
    """

    def __init__(self, model: Seq2Seq, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer,
                 config: Config, metadata: dict[str, Any] | None = None):
        self.model = model.eval()
        self.src_tokenizer = src_tokenizer
        self.tgt_tokenizer = tgt_tokenizer
        self.config = config
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.src_lang: str = config.data.src_lang
        self.tgt_lang: str = config.data.tgt_lang
        self.has_attention: bool = model.has_attention
        # Domain tags the model was trained with (a source-side token `<tag>`), and the default.
        self.domains: list[str] = config.data.tags()
        self.default_domain: str | None = config.data.default_tag
        self.placeholders: int = config.tokenizer.placeholders
        # One source position goes to the domain tag when the model has tags.
        self.max_input_tokens: int = config.data.max_len - (1 if self.domains else 0)
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu",
                        quantize: str | None = None, num_threads: int | None = None
                        ) -> Translator:
        """Loads a bundle directory or a checkpoint `.pt` (CheckpointError names a bad file)."""
        if quantize is not None and torch.device(device).type != "cpu":
            raise TranslatorError("int8 quantisation runs on the CPU only; use --device cpu")
        set_threads(num_threads)
        loaded = load_model(path, device=device)
        model = loaded.model if quantize is None else quantize_model(loaded.model, quantize)
        metadata = dict(loaded.metadata)
        if quantize is not None:
            metadata["quantized"] = quantize
        return cls(model, loaded.src_tokenizer, loaded.tgt_tokenizer, loaded.config, metadata)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Source subword counts (what `max_input_tokens` and batching are measured in)."""
        return [len(ids) for ids in self.src_tokenizer.encode([normalize(t) for t in texts])]

    def translate(self, texts: list[str], *, beam_size: int | None = None, nbest: int = 1,
                  length_penalty: float | None = None, batch_tokens: int | None = None,
                  max_sentences: int | None = None, return_attention: bool = False,
                  progress: bool = False, step_scorer: StepScorer | None = None,
                  domain: str | None = None) -> list[Translation]:
        """Translates `texts`, returning one Translation per text, in input order.

        Args:
            beam_size: 1 is greedy search; default `config.decode.beam_size`.
            nbest: candidates per text, at most `beam_size`.
            length_penalty: GNMT alpha; default `config.decode.length_penalty`.
            batch_tokens: source tokens per batch (before beams); default from the config.
            max_sentences: at most this many inputs (or split parts) per batch; default no cap.
            return_attention: fill `Candidate.attention` (when the model has attention).
            progress: a tqdm bar on stderr.
            domain: one of `self.domains` (default `self.default_domain`); models without
                domain tags take None only.
        """
        dec = self.config.decode
        beam_size = dec.beam_size if beam_size is None else beam_size
        alpha = dec.length_penalty if length_penalty is None else length_penalty
        batch_tokens = dec.batch_tokens if batch_tokens is None else batch_tokens
        if beam_size < 1:
            raise TranslatorError(f"beam size must be >= 1, got {beam_size}")
        if not 1 <= nbest <= beam_size:
            raise TranslatorError(f"nbest must be between 1 and the beam size ({beam_size}), "
                                  f"got {nbest}")
        if batch_tokens < 1:
            raise TranslatorError(f"batch_tokens must be >= 1, got {batch_tokens}")
        if max_sentences is not None and max_sentences < 1:
            raise TranslatorError(f"max_sentences must be >= 1, got {max_sentences}")
        prefix = self._domain_prefix(domain)
        masked = [mask(normalize(t), limit=self.placeholders) for t in texts]
        with self._lock:
            src_ids = self.src_tokenizer.encode([m.text for m in masked])
            units = self._units(src_ids)
            hyps = self._decode(src_ids, units, beam_size=beam_size, nbest=nbest, alpha=alpha,
                                batch_tokens=batch_tokens, max_sentences=max_sentences,
                                return_attention=return_attention, progress=progress,
                                step_scorer=step_scorer, prefix=prefix)
            parts: list[list[tuple[_Unit, list[Hypothesis]]]] = [[] for _ in texts]
            for unit, unit_hyps in zip(units, hyps, strict=True):
                parts[unit.text_index].append((unit, unit_hyps))
            return [self._assemble(text, ids, p, return_attention, m.originals, len(prefix))
                    for text, ids, p, m in zip(texts, src_ids, parts, masked, strict=True)]

    def _domain_prefix(self, domain: str | None) -> list[int]:
        """The source ids that go before every input: the domain tag, if the model has tags."""
        if domain is None:
            domain = self.default_domain
        if domain is None:
            if self.domains:
                domain = self.domains[0]
            else:
                return []
        if domain not in self.domains:
            known = ", ".join(self.domains) if self.domains else "none (the model has no tags)"
            raise TranslatorError(f"unknown domain {domain!r}; this model's domains: {known}")
        tag_id = self.src_tokenizer.piece_to_id(f"<{domain}>")
        if tag_id is None:
            raise TranslatorError(f"the model's vocabulary lacks the tag <{domain}>")
        return [tag_id]

    def _units(self, src_ids: list[list[int]]) -> list[_Unit]:
        """Cuts every non-empty input into spans of at most `max_input_tokens` ids."""
        limit = self.max_input_tokens
        units: list[_Unit] = []
        for i, ids in enumerate(src_ids):
            if len(ids) <= limit:
                if ids:
                    units.append(_Unit(i, 0, len(ids)))
                continue
            if self.config.decode.long_input == "truncate":
                log.warning("input %d has %d subwords, more than the model's limit of %d: "
                            "translating only the first %d", i, len(ids), limit, limit)
                units.append(_Unit(i, 0, limit))
                continue
            spans = self._split(ids)
            log.info("input %d has %d subwords (limit %d): translating it in %d parts",
                     i, len(ids), limit, len(spans))
            units.extend(_Unit(i, start, end) for start, end in spans)
        return units

    def _split(self, ids: list[int]) -> list[tuple[int, int]]:
        """Spans of at most `max_input_tokens` ids, cut at sentence ends where possible."""
        limit = self.max_input_tokens
        pieces = [self.src_tokenizer.id_to_piece(i) for i in ids]
        bounds = [0] + [j + 1 for j in range(len(ids) - 1)
                        if pieces[j].rstrip(_CLOSERS).endswith(_SENTENCE_END)
                        and pieces[j + 1].startswith("▁")] + [len(ids)]
        sentences = list(zip(bounds[:-1], bounds[1:], strict=True))
        spans: list[tuple[int, int]] = []
        for start, end in sentences:
            if spans and end - spans[-1][0] <= limit:
                spans[-1] = (spans[-1][0], end)  # pack consecutive sentences into one span
                continue
            if end - start > limit:
                log.warning("a sentence of %d subwords exceeds the model's limit of %d: "
                            "cutting it into pieces of %d", end - start, limit, limit)
            spans.extend((s, min(s + limit, end)) for s in range(start, end, limit))
        return spans

    def _decode(self, src_ids: list[list[int]], units: list[_Unit], *, beam_size: int,
                nbest: int, alpha: float, batch_tokens: int, max_sentences: int | None,
                return_attention: bool, progress: bool, step_scorer: StepScorer | None = None,
                prefix: Sequence[int] = ()) -> list[list[Hypothesis]]:
        dec = self.config.decode
        unit_ids = [list(prefix) + src_ids[u.text_index][u.start : u.end] for u in units]
        lengths = [len(ids) + 1 for ids in unit_ids]  # + EOS, as the encoder sees them
        batches = token_batches(lengths, max_tokens=batch_tokens,
                                max_sentences=max_sentences or max(1, len(units)), seed=None)
        out: list[list[Hypothesis]] = [[] for _ in units]
        with torch.inference_mode(), tqdm(total=len(units), disable=not progress, unit="sent",
                                          file=sys.stderr, leave=False) as bar:
            for indices in batches:
                batch = make_batch([unit_ids[i] for i in indices]).to(self.device)
                enc = self.model.encode(batch.src, batch.src_lengths)
                max_len = (dec.max_len_a * (batch.src_lengths - 1).float() + dec.max_len_b).long()
                if beam_size == 1:
                    results = greedy_search(
                        self.model, enc, max_len=max_len, length_penalty=alpha,
                        min_len=dec.min_len, no_repeat_ngram=dec.no_repeat_ngram,
                        return_attention=return_attention, step_scorer=step_scorer)
                else:
                    results = beam_search(
                        self.model, enc, max_len=max_len, beam_size=beam_size, nbest=nbest,
                        length_penalty=alpha, min_len=dec.min_len,
                        no_repeat_ngram=dec.no_repeat_ngram, return_attention=return_attention,
                        step_scorer=step_scorer)
                for i, hyps in zip(indices, results, strict=True):
                    out[i] = hyps
                bar.update(len(indices))
        return out

    def _assemble(self, source: str, ids: list[int], parts: list[tuple[_Unit, list[Hypothesis]]],
                  return_attention: bool, originals: tuple[str, ...] = (), offset: int = 0
                  ) -> Translation:
        """Joins the unit results of one input (one unit unless it was split), and puts the
        protected spans back where the model wrote their placeholders."""
        source_tokens = [self.src_tokenizer.id_to_piece(i) for i in ids]
        if not parts:
            return Translation(source, source_tokens, [Candidate("", 0.0, [], None)])
        n_cands = min(len(hyps) for _, hyps in parts)
        want_attn = return_attention and self.has_attention
        candidates = []
        for c in range(n_cands):
            texts: list[str] = []
            pieces: list[str] = []
            rows: list[Tensor] = []
            score = 0.0
            for unit, hyps in parts:
                hyp = hyps[c]
                texts.append(self.tgt_tokenizer.decode(hyp.tokens))
                pieces.extend(self.tgt_tokenizer.id_to_piece(t) for t in hyp.tokens)
                score += hyp.score
                if want_attn and hyp.attention is not None:
                    rows.append(_place(hyp.attention[:, offset:], unit, len(ids)))
            attention = torch.cat(rows).tolist() if want_attn else None
            text = " ".join(t for t in texts if t)
            if originals:
                text, missing = unmask(text, originals)
                # A span the model left out is appended rather than lost.
                text = " ".join([text, *missing]) if missing else text
            candidates.append(Candidate(text, score, pieces, attention))
        return Translation(source, source_tokens, candidates)


def _place(attention: Tensor, unit: _Unit, width: int) -> Tensor:
    """(T, span + 1) weights of one unit -> (T, width) over the whole input, EOS column dropped."""
    out = attention.new_zeros((attention.size(0), width))
    out[:, unit.start : unit.end] = attention[:, : unit.end - unit.start]
    return out
