"""Translator: texts in, Translations out; the facade the CLI, evaluation, training and service use.

Inside: normalisation, SentencePiece, splitting or truncating over-long inputs, length-sorted
token-budget batches, greedy or beam search under `torch.inference_mode()`, and detokenisation.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import sys
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from tqdm import tqdm

from nmt.checkpoint import load_model
from nmt.config import Config
from nmt.data.batching import make_source_batch, token_batches
from nmt.decoding.beam import beam_search
from nmt.decoding.constraints import StepScorer
from nmt.decoding.greedy import greedy_search
from nmt.decoding.hypothesis import Hypothesis
from nmt.models.attention import BahdanauAttention
from nmt.models.kernels import (
    bf16_products_supported,
    use_bf16_products,
    use_fast_cpu_kernels,
    use_torch_kernels,
)
from nmt.models.seq2seq import Seq2Seq
from nmt.runtime import set_threads
from nmt.source_side import SourceSide
from nmt.text.plan import TextPlan, restore
from nmt.tokenization import Tokenizer

log = logging.getLogger(__name__)

QUANTIZE_MODES = ("int8",)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
ABANDONED = "abandoned: its caller stopped waiting"  # the one warning of an abandoned text


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
    # Per whitespace-separated word of `text`, the index of the whitespace-separated word of the
    # source it translates (most attention); only when requested (`align=True`).
    alignment: list[int] | None = None


@dataclass(frozen=True)
class Translation:
    source: str  # the input as given
    source_tokens: list[str]  # source subword pieces (all of them, also when truncated)
    candidates: list[Candidate]  # n-best, best first; never empty
    # What the caller should know about this text (a sentence decoded again because its output
    # was far too short, a protected span the model left out, ...); empty when all went well.
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.candidates[0].text

    @property
    def score(self) -> float:
        return self.candidates[0].score


def quantize_model(model: Seq2Seq, mode: str) -> Seq2Seq:
    """Dynamic int8 quantisation of the GRU/LSTM and Linear layers, for CPU inference.

    Weights become int8, activations are quantised on the fly. The tanh RNN cell (nn.RNN) has no
    dynamic-quantised version in torch, so for `cell: rnn` only the Linear layers are converted.
    A tied output layer gets its own Linear holding a copy of the target embedding, so the
    largest matrix product of a decoding step (H -> V) runs in int8 too; the embedding lookup
    itself stays float. Bahdanau's score vector (A -> 1) stays float as well: in int8 each step
    would quantise its whole (B, K, S, A) input for a matrix-vector product, which measured 3x
    slower than the float product. The input model is left unchanged.
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
        model = use_torch_kernels(copy.deepcopy(model))  # quantize_dynamic matches exact types
        decoder = model.decoder
        if decoder.output is None:
            weight = decoder.embedding.weight
            decoder.output = nn.Linear(weight.size(1), weight.size(0), bias=False)
            decoder.output.weight = nn.Parameter(weight.detach().clone(), requires_grad=False)
        qconfig = torch.ao.quantization.default_dynamic_qconfig  # what a set of types gets
        spec: dict[type[nn.Module] | str, Any] = dict.fromkeys(layers, qconfig)
        if isinstance(decoder.attention, BahdanauAttention):
            spec["decoder.attention.v"] = None  # a module name overrides its type
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8,
                                                      inplace=True)


class TranslationModel(Protocol):
    """What the service (registry, micro-batcher) and its test fakes need of a translator: the
    `Translator` below, or anything with the same attributes and `translate` signature."""

    src_lang: str
    tgt_lang: str
    domains: list[str]
    default_domain: str | None
    config: Config
    metadata: dict[str, Any]
    has_attention: bool
    max_input_tokens: int

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    def count_units(self, texts: Sequence[str]) -> int: ...

    def translate(self, texts: list[str], *, beam_size: int | None = None, nbest: int = 1,
                  length_penalty: float | None = None, return_attention: bool = False,
                  domain: str | None = None, align: bool = False, terms: Sequence[str] = (),
                  glossary: Mapping[str, str] | None = None,
                  abandoned: Callable[[], Collection[int]] | None = None
                  ) -> list[Translation]: ...


class Translator:
    """Translates lists of texts with one model; safe to call from several threads at once
    (nothing in a call changes the Translator or its model: inference only).

    Args:
        model: a Seq2Seq (it is put in eval mode).
        src_tokenizer, tgt_tokenizer: the model's SentencePiece models.
        config: the model's resolved config; `config.decode` gives the defaults.
        metadata: free-form bundle metadata (reported by the service).
    """

    def __init__(self, model: Seq2Seq, src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer,
                 config: Config, metadata: dict[str, Any] | None = None,
                 precision: str = "fp32", fast_kernels: bool = True):
        if precision not in PRECISIONS:
            raise TranslatorError(f"precision must be one of {list(PRECISIONS)}, got "
                                  f"{precision!r}")
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
        self.source = SourceSide(src_tokenizer, self.src_lang, self.placeholders,
                                 self.max_input_tokens,
                                 truncate=config.decode.long_input == "truncate")
        param = next(model.parameters(), None)
        self.device = param.device if param is not None else torch.device("cpu")
        if fast_kernels and self.device.type == "cpu":
            use_fast_cpu_kernels(self.model)  # oneDNN products; `fast_kernels=False` compares
        if precision == "auto":
            precision = ("bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported()
                         else "fp32")
        if precision == "fp16" and self.device.type != "cuda":
            raise TranslatorError("precision fp16 needs a CUDA device; the CPU decodes in fp32 "
                                  "or bf16 (or int8 with --quantize)")
        if precision == "bf16" and self.device.type == "cpu":
            if not (fast_kernels and bf16_products_supported()):
                raise TranslatorError("precision bf16 on the CPU needs oneDNN's bfloat16 "
                                      "products (this torch build or CPU has none, or "
                                      "fast_kernels is off); use fp32")
            # The products in bfloat16 (AMX), the rest in float32: nmt.models.kernels.
            use_bf16_products(self.model)
        elif precision != "fp32" and self.device.type != "cuda":
            raise TranslatorError(f"precision {precision} is not available on "
                                  f"{self.device.type}; use fp32")
        # Decoding under autocast on CUDA: matrix products and the RNNs in bf16/fp16, while
        # log-softmax and the beam's score sums stay float32 (autocast's own policy).
        self.precision: str = precision

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu",
                        quantize: str | None = None, num_threads: int | None = None,
                        precision: str = "auto", fast_kernels: bool = True) -> Translator:
        """Loads a bundle directory or a checkpoint `.pt` (CheckpointError names a bad file).

        precision: "auto" (bf16 autocast on a CUDA device that supports it, else fp32),
        "fp32", "bf16" (on a CPU: the products in bfloat16, see nmt.models.kernels) or "fp16"
        (CUDA only). fast_kernels: False keeps torch's
        default CPU kernels (see nmt.models.kernels), for comparison.
        """
        if quantize is not None and torch.device(device).type != "cpu":
            raise TranslatorError("int8 quantisation runs on the CPU only; use --device cpu")
        if quantize is not None and precision not in ("auto", "fp32"):
            raise TranslatorError(f"int8 quantisation decodes in int8 and fp32; precision "
                                  f"{precision} does not combine with it")
        set_threads(num_threads)
        loaded = load_model(path, device=device)
        model = loaded.model if quantize is None else quantize_model(loaded.model, quantize)
        metadata = dict(loaded.metadata)
        if quantize is not None:
            metadata["quantized"] = quantize
        return cls(model, loaded.src_tokenizer, loaded.tgt_tokenizer, loaded.config, metadata,
                   precision="fp32" if precision == "auto" and torch.device(device).type != "cuda"
                   else precision, fast_kernels=fast_kernels)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Source subword counts (what `max_input_tokens` and batching are measured in)."""
        return self.source.count_tokens(texts)

    def translate(self, texts: list[str], *, beam_size: int | None = None, nbest: int = 1,
                  length_penalty: float | None = None, batch_tokens: int | None = None,
                  max_sentences: int | None = None, return_attention: bool = False,
                  progress: bool = False, step_scorer: StepScorer | None = None,
                  domain: str | None = None, terms: Sequence[str] = (),
                  glossary: Mapping[str, str] | None = None, align: bool = False,
                  abandoned: Callable[[], Collection[int]] | None = None
                  ) -> list[Translation]:
        """Translates `texts`, returning one Translation per text, in input order.

        Every text is cut into lines and sentences; each sentence is one decoding unit (clauses,
        if it is too long for the model), all units of all texts are batched together, and the
        outputs are put back between the text's separators, which are kept byte for byte.

        Args:
            beam_size: 1 is greedy search; default `config.decode.beam_size`.
            nbest: candidates per text, at most `beam_size`.
            length_penalty: GNMT alpha; default `config.decode.length_penalty`.
            batch_tokens: source tokens per batch (before beams); default from the config.
            max_sentences: at most this many units per batch; default no cap.
            return_attention: fill `Candidate.attention` (when the model has attention).
            progress: a tqdm bar on stderr.
            domain: one of `self.domains` (default `self.default_domain`); models without
                domain tags take None only.
            terms: strings to keep verbatim (besides URLs, numbers, e-mails, ... found anyway).
            glossary: source term -> the fixed target text it must become.
            align: fill `Candidate.alignment` (source word per output word).
            abandoned: the indices into `texts` whose caller has gone (a timeout, a closed
                connection); asked before each batch and at every decoding step, so it must be
                cheap. Their units are not encoded if their batch has not started, leave a
                running batch at the next step, and are never decoded again; the text gets no
                source tokens, one empty candidate scored -inf and the warning `ABANDONED`.
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
        encoded: dict[str, list[int]] = {}  # what planning tokenised, reused for decoding
        plans = self.plan(texts, terms=terms, glossary=glossary, encoded=encoded)
        units = [(t, s, k) for t, plan in enumerate(plans)
                 for s, sentence in enumerate(plan.sentences)
                 for k, part in enumerate(sentence.parts) if not part.verbatim]
        search = _Search(beam_size=beam_size, nbest=nbest, alpha=alpha, batch_tokens=batch_tokens,
                         max_sentences=max_sentences, step_scorer=step_scorer,
                         attention=(return_attention or align) and self.has_attention)
        callers = None if abandoned is None else _Callers(abandoned, [t for t, _, _ in units])
        unit_texts = [plans[t].sentences[s].parts[k].text for t, s, k in units]
        todo = [u for u in dict.fromkeys(unit_texts) if u not in encoded]
        encoded.update(zip(todo, self.src_tokenizer.encode(todo), strict=True))
        unit_ids = [list(encoded[u]) for u in unit_texts]
        truncated = [i for i, ids in enumerate(unit_ids) if len(ids) > self.max_input_tokens]
        for i in truncated:  # only with decode.long_input: truncate
            unit_ids[i] = unit_ids[i][: self.max_input_tokens]
        hyps = self._decode([prefix + ids for ids in unit_ids], search, progress=progress,
                            callers=callers)
        retried = self._lengthen_short(unit_ids, prefix, hyps, search, callers)
        gone = set() if callers is None else callers.gone()
        results: dict[tuple[int, int, int], tuple[list[int], list[Hypothesis]]] = {
            key: (ids, h) for key, ids, h in zip(units, unit_ids, hyps, strict=True)}
        retried_keys = {units[i] for i in retried}
        translations = [_abandoned(texts[t]) if t in gone else
                        self._assemble(texts[t], plan, t, results, retried_keys, len(prefix),
                                       return_attention=return_attention, align=align)
                        for t, plan in enumerate(plans)]
        for i in truncated:
            t, s, _ = units[i]
            if t in gone:
                continue
            translations[t].warnings.append(
                f"sentence {s + 1}: longer than the model's limit of {self.max_input_tokens} "
                "subwords; only its beginning was translated (decode.long_input: truncate)")
        return translations

    def plan(self, texts: Sequence[str], *, terms: Sequence[str] = (),
             glossary: Mapping[str, str] | None = None,
             encoded: dict[str, list[int]] | None = None) -> list[TextPlan]:
        """How each text is cut into sentences and model inputs (`SourceSide.plan`)."""
        return self.source.plan(texts, terms=terms, glossary=glossary, encoded=encoded)

    def count_units(self, texts: Sequence[str]) -> int:
        """How many model inputs `texts` become (sentences, clauses)."""
        return self.source.count_units(texts)

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

    def _decode(self, unit_ids: list[list[int]], search: _Search, *, progress: bool = False,
                min_len: int | None = None, callers: _Callers | None = None,
                units: Sequence[int] | None = None) -> list[list[Hypothesis]]:
        """Decodes every unit (source ids, tag included), in token-budget batches.

        callers: units of texts whose caller has gone are skipped or leave their batch (their
        result is []). units: the index in `callers.owners` of each of `unit_ids` (default:
        the same index).
        """
        dec = self.config.decode
        lengths = [len(ids) + 1 for ids in unit_ids]  # + EOS, as the encoder sees them
        batches = token_batches(lengths, max_tokens=search.batch_tokens,
                                max_sentences=search.max_sentences or max(1, len(unit_ids)),
                                seed=None)
        min_len = dec.min_len if min_len is None else min_len
        out: list[list[Hypothesis]] = [[] for _ in unit_ids]
        # On a CPU, bf16 is in the kernels (use_bf16_products), not autocast.
        autocast = (torch.autocast("cuda", dtype=_AUTOCAST[self.precision])
                    if self.precision != "fp32" and self.device.type == "cuda"
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast, tqdm(total=len(unit_ids), disable=not progress,
                                                    unit="sent", file=sys.stderr,
                                                    leave=False) as bar:
            for indices in batches:
                drop = None
                if callers is not None:
                    owners = [callers.owners[i if units is None else units[i]] for i in indices]
                    live = callers.live(owners)
                    if len(live) < len(indices):
                        bar.update(len(indices) - len(live))
                        indices, owners = [indices[j] for j in live], [owners[j] for j in live]
                    if not indices:
                        continue
                    drop = callers.drop(owners)
                batch = make_source_batch([unit_ids[i] for i in indices]).to(self.device)
                enc = self.model.encode(batch.src, batch.src_lengths)
                max_len = (dec.max_len_a * (batch.src_lengths - 1).float() + dec.max_len_b).long()
                max_len = torch.maximum(max_len, torch.full_like(max_len, min_len + 1))
                if search.beam_size == 1:
                    results = greedy_search(
                        self.model, enc, max_len=max_len, length_penalty=search.alpha,
                        min_len=min_len, no_repeat_ngram=dec.no_repeat_ngram,
                        return_attention=search.attention, step_scorer=search.step_scorer,
                        drop=drop)
                else:
                    results = beam_search(
                        self.model, enc, max_len=max_len, beam_size=search.beam_size,
                        nbest=search.nbest, length_penalty=search.alpha, min_len=min_len,
                        no_repeat_ngram=dec.no_repeat_ngram, return_attention=search.attention,
                        step_scorer=search.step_scorer, drop=drop)
                for i, hyps in zip(indices, results, strict=True):
                    out[i] = hyps
                bar.update(len(indices))
        return out

    def _lengthen_short(self, unit_ids: list[list[int]], prefix: list[int],
                        hyps: list[list[Hypothesis]], search: _Search,
                        callers: _Callers | None = None) -> list[int]:
        """Decodes again, with a minimum length, the units whose best output is far shorter
        than the model's own validation data would have it; returns their indices.

        "Far shorter": more than `GUARD_MARGIN` subwords fewer than `min_length_ratio` x the
        source subwords, for sources of at least `MIN_GUARD_SOURCE` subwords (the margin keeps
        the guard off good short outputs). The minimum length is `min_length_ratio` x source.
        Units of texts whose caller has gone (`callers`) are not decoded again.
        """
        ratio = self.min_length_ratio
        if ratio is None:
            return []
        gone = set() if callers is None else callers.gone()
        short = [i for i, ids in enumerate(unit_ids)
                 if len(ids) >= MIN_GUARD_SOURCE and hyps[i]
                 and len(hyps[i][0].tokens) < ratio * len(ids) - GUARD_MARGIN
                 and (callers is None or callers.owners[i] not in gone)]
        by_min: dict[int, list[int]] = {}
        for i in short:
            by_min.setdefault(math.ceil(ratio * len(unit_ids[i])), []).append(i)
        for min_len, indices in by_min.items():
            again = self._decode([prefix + unit_ids[i] for i in indices], search, min_len=min_len,
                                 callers=callers, units=indices)
            for i, h in zip(indices, again, strict=True):
                hyps[i] = h
        return short

    @property
    def min_length_ratio(self) -> float | None:
        """Output/source subword ratio below which an output counts as far too short: the 1st
        percentile over the validation pairs (bundle metadata), None when not recorded."""
        stats = self.metadata.get("length_ratio")
        value = stats.get("p01") if isinstance(stats, dict) else None
        return float(value) if isinstance(value, (int, float)) and value > 0 else None

    def _assemble(self, source: str, plan: TextPlan, t: int,
                  results: dict[tuple[int, int, int], tuple[list[int], list[Hypothesis]]],
                  retried: set[tuple[int, int, int]], offset: int, *, return_attention: bool,
                  align: bool) -> Translation:
        """Puts the unit outputs of text `t` back into its plan: one Translation."""
        source_tokens: list[str] = []
        columns: dict[tuple[int, int], int] = {}  # unit (sentence, part) -> first source column
        for s, sentence in enumerate(plan.sentences):
            for k, part in enumerate(sentence.parts):
                if not part.verbatim:
                    columns[(s, k)] = len(source_tokens)
                    source_tokens.extend(self.src_tokenizer.id_to_piece(i)
                                         for i in results[(t, s, k)][0])
        unit_hyps = [results[(t, s, k)][1] for s, k in columns]
        n_cands = min((len(h) for h in unit_hyps), default=1) or 1
        want_attn = return_attention and self.has_attention
        warnings: list[str] = []
        candidates = []
        for c in range(n_cands):
            outputs: list[str] = []
            pieces: list[str] = []
            rows: list[Tensor] = []
            alignment: list[int] = []
            score = 0.0
            for s, sentence in enumerate(plan.sentences):
                first_word = _count_words(source, plan, s)
                words: list[str] = []
                word_align: list[int] = []
                used: set[int] = set()
                masked_words = sum(_count(p.text) for p in sentence.parts)
                n_words = max(1, len(sentence.source.split()))
                masked_at = 0
                for k, part in enumerate(sentence.parts):
                    if part.verbatim:
                        new: list[tuple[str, int]] = [(part.text, masked_at)]
                    else:
                        ids, hyps = results[(t, s, k)]
                        hyp = hyps[c]
                        score += hyp.score
                        hyp_pieces = [self.tgt_tokenizer.id_to_piece(i) for i in hyp.tokens]
                        pieces.extend(hyp_pieces)
                        if want_attn and hyp.attention is not None:
                            rows.append(_place(hyp.attention[:, offset:], columns[(s, k)],
                                               len(ids), len(source_tokens)))
                        if align:
                            new = self._target_words(hyp, hyp_pieces, ids, offset, masked_at)
                        else:  # no alignment asked for: skip the per-word attention work
                            new = [(w, masked_at)
                                   for w in self.tgt_tokenizer.decode(hyp.tokens).split()]
                        if c == 0 and (t, s, k) in retried:
                            warnings.append(
                                f"sentence {s + 1}: the output was far shorter than the source; "
                                "it was decoded again with a minimum length")
                    for n, (word, at) in enumerate(new):
                        restored = restore(word, sentence.originals, used)
                        if not restored:
                            continue
                        glue = part.glue if n == 0 else " "
                        # Glued in the source ("11," or "5€"), but the model may have dropped
                        # the punctuation in between: two words never run together.
                        if words and glue == "" and not (restored[0].isalnum()
                                                         and words[-1][-1:].isalnum()):
                            words[-1] += restored
                        else:
                            words.append(restored)
                            at_word = at * n_words // max(1, masked_words)
                            word_align.append(first_word + min(n_words - 1, at_word))
                    masked_at += _count(part.text)
                if sentence.clauses > 1 and c == 0:
                    warnings.append(f"sentence {s + 1}: longer than the model's limit of "
                                    f"{self.max_input_tokens} subwords; translated in "
                                    f"{sentence.clauses} parts")
                missing = [o for i, o in enumerate(sentence.originals) if i not in used]
                produced = " ".join(words)
                missing += [r for r in sentence.required if r not in produced]
                if missing:
                    # A protected span the model left out is appended rather than lost.
                    words.extend(missing)
                    word_align.extend([first_word + n_words - 1] * len(missing))
                    if c == 0:
                        warnings.append(f"sentence {s + 1}: {len(missing)} protected span(s) "
                                        "were missing from the output and were appended")
                if not words and c == 0:
                    warnings.append(f"sentence {s + 1}: the model produced no output")
                outputs.append(" ".join(words))
                alignment.extend(_expand(words, word_align))
            text = plan.render(outputs)
            attention = torch.cat(rows).tolist() if want_attn and rows else None
            candidates.append(Candidate(text, score, pieces, attention,
                                        alignment if align else None))
        return Translation(source, source_tokens, candidates, warnings)

    def _target_words(self, hyp: Hypothesis, pieces: list[str], src_ids: list[int], offset: int,
                      masked_at: int) -> list[tuple[str, int]]:
        """A unit's output as words, each with the sentence-level masked source word it is
        aligned to (most attention over the word's pieces; in proportion without attention)."""
        groups: list[list[int]] = []
        for j, piece in enumerate(pieces):
            if piece.startswith("\u2581") or not groups:
                groups.append([j])
            else:
                groups[-1].append(j)
        src_pieces = [self.src_tokenizer.id_to_piece(i) for i in src_ids]
        src_word_of = list(itertools.accumulate(
            1 if p.startswith("\u2581") else 0 for p in src_pieces))
        src_word_of = [max(0, w - 1) for w in src_word_of]
        n_src_words = (src_word_of[-1] + 1) if src_word_of else 1
        words = []
        for g, group in enumerate(groups):
            text = self.tgt_tokenizer.decode_pieces([pieces[j] for j in group]).strip()
            if hyp.attention is not None and src_pieces:
                mass = hyp.attention[group, offset : offset + len(src_pieces)].sum(0)
                local = src_word_of[int(mass.argmax())]
            else:
                local = g * n_src_words // max(1, len(groups))
            words.append((text, masked_at + local))
        return words


@dataclass(frozen=True)
class _Search:
    """Decoding settings of one translate call."""

    beam_size: int
    nbest: int
    alpha: float
    batch_tokens: int
    max_sentences: int | None
    step_scorer: StepScorer | None
    attention: bool


class _Callers:
    """Which texts of one translate call have lost their caller, as decoding goes on.

    `abandoned()` may grow while decoding runs; the texts seen in it are remembered, so a text
    whose units were skipped or dropped is reported as gone even if it later left that set.
    """

    def __init__(self, abandoned: Callable[[], Collection[int]], owners: list[int]):
        self.abandoned = abandoned
        self.owners = owners  # the text index of each unit
        self._left: set[int] = set()

    def gone(self) -> set[int]:
        """Every text abandoned so far."""
        self._left.update(self.abandoned())
        return self._left

    def live(self, owners: list[int]) -> list[int]:
        """Positions in `owners` (text indices of a batch's units) whose caller still waits."""
        gone = self.gone()
        return [j for j, t in enumerate(owners) if t not in gone]

    def drop(self, owners: list[int]) -> Callable[[Tensor], Tensor]:
        """The search's `drop` hook for a batch whose unit b belongs to text `owners[b]`."""

        def drop(sent: Tensor) -> Tensor:  # (N,) batch indices -> (N,) bool
            gone = self.abandoned()
            if not gone:  # the usual case: no lookup per row, no device sync
                return torch.zeros(sent.shape, dtype=torch.bool, device=sent.device)
            # Membership tests only: `gone` is never iterated here, at every step.
            texts = [owners[b] for b in sent.tolist()]
            out = [t in gone for t in texts]
            self._left.update(t for t, o in zip(texts, out, strict=True) if o)
            return torch.tensor(out, dtype=torch.bool, device=sent.device)

        return drop


def _abandoned(source: str) -> Translation:
    """The stand-in Translation of a text whose caller has gone; nothing of it is assembled."""
    return Translation(source, [], [Candidate("", float("-inf"), [], None)], [ABANDONED])


MIN_GUARD_SOURCE = 6  # shorter sources have too noisy a length ratio for the short-output guard
GUARD_MARGIN = 3  # subwords below the 1st-percentile length before an output counts as dropped


def _count(text: str) -> int:
    return len(text.split())


def _count_words(source: str, plan: TextPlan, sentence_index: int) -> int:
    """How many whitespace-separated words of `source` come before sentence `sentence_index`."""
    before, seen = [], 0
    for segment_ in plan.segments:
        if segment_.translate:
            if seen == sentence_index:
                break
            seen += 1
        before.append(segment_.text)
    return len("".join(before).split())


def _expand(words: list[str], aligned: list[int]) -> list[int]:
    """One alignment entry per whitespace-separated output word (a restored span such as
    "Angela Merkel" is one entry in `words` but two words of the text)."""
    out = []
    for word, at in zip(words, aligned, strict=True):
        out.extend([at] * max(1, len(word.split())))
    return out


def _place(attention: Tensor, column: int, span: int, width: int) -> Tensor:
    """(T, span + 1) weights of one unit -> (T, width) over the whole text, EOS column dropped."""
    out = attention.new_zeros((attention.size(0), width))
    out[:, column : column + span] = attention[:, :span]
    return out
