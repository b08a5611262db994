"""Text plans: how one input text becomes model inputs, and how their outputs become one text.

A text is cut into lines and sentences (`nmt.text.segment`); separators are kept verbatim.
Every sentence becomes one or more *parts*: pieces of source text the model translates
(usually the whole sentence; clauses when it is too long) and, for models without placeholder
pieces, protected spans copied to the output verbatim. Models trained with placeholders see
their protected spans as `<x1>`, `<x2>`, ... instead, restored after decoding.

Nothing is dropped: every character of the input is either in a translated part, in a verbatim
part, or in a separator.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from nmt.data.corpus import normalize
from nmt.text.protect import PLACEHOLDER_RE, find_spans, mask
from nmt.text.segment import Segment, segment, split_clauses

_HAS_WORD = re.compile(r"\w")
_INLINE_KINDS = frozenset({"number", "handle", "hashtag"})


@dataclass(frozen=True)
class Part:
    """One piece of a sentence, in order.

    text: the model's input (normalised, masked), or the output itself when `verbatim`.
    glue: what joins this part to the previous one in the output ("" where the source had no
        space between them, else " ").
    """

    text: str
    verbatim: bool
    glue: str


@dataclass(frozen=True)
class SentencePlan:
    source: str  # the sentence as given
    parts: list[Part]
    originals: tuple[str, ...]  # what <x1>, <x2>, ... stand for in the output (glossary applied)
    clauses: int = 1  # > 1: the sentence was too long for the model and was cut into clauses
    required: tuple[str, ...] = ()  # spans left in the model's input that must come out verbatim


@dataclass(frozen=True)
class TextPlan:
    segments: list[Segment]
    sentences: list[SentencePlan]  # one per segment with translate=True, in order

    def render(self, sentence_outputs: Sequence[str]) -> str:
        """The text with each sentence replaced by its output and every separator kept."""
        outputs = iter(sentence_outputs)
        return "".join(next(outputs) if s.translate else s.text for s in self.segments)


def plan_text(
    text: str,
    lang: str,
    *,
    placeholders: int,
    fits: Callable[[str], bool],
    terms: Sequence[str] = (),
    glossary: Mapping[str, str] | None = None,
) -> TextPlan:
    """Cuts `text` into sentences and each sentence into model inputs.

    Args:
        lang: the source language (for the sentence segmenter).
        placeholders: how many placeholder pieces the model has (0: protected spans are cut
            out of the sentence and copied verbatim instead).
        fits: whether a (normalised, masked) string is short enough for the model.
        terms: caller's strings to keep verbatim.
        glossary: source term -> the fixed target text to put in its place.
    """
    glossary = dict(glossary or {})
    all_terms = list(dict.fromkeys([*terms, *glossary]))
    segments = segment(text, lang)
    sentences = [
        _plan_sentence(s.text, placeholders, fits, all_terms, glossary)
        for s in segments
        if s.translate
    ]
    return TextPlan(segments, sentences)


def _plan_sentence(
    sentence: str,
    placeholders: int,
    fits: Callable[[str], bool],
    terms: Sequence[str],
    glossary: Mapping[str, str],
) -> SentencePlan:
    if placeholders > 0:
        masked = mask(normalize(sentence), limit=placeholders, terms=terms)
        originals = tuple(glossary.get(o, o) for o in masked.originals)
        pieces = split_clauses(masked.text, fits)
        clause_parts = [Part(p, False, "" if i == 0 else " ") for i, p in enumerate(pieces)]
        return SentencePlan(sentence, clause_parts, originals, clauses=len(pieces))
    parts: list[_Piece] = []
    last = 0
    spans = find_spans(sentence, terms)
    # Numbers and @handles/#tags stay in the sentence: subword models copy them well, and a
    # sentence cut at each translates worse ("2 blonde Mädchen" -> "2 A group of blond girls").
    # They must still come out verbatim: `required` (appended if the model changed them).
    # URLs, e-mail addresses, code, emoji and the caller's terms (inline <code> among them;
    # glossary terms must become their fixed translation) are cut out and copied.
    inline = [s for s in spans if s.kind in _INLINE_KINDS and s.text not in glossary]
    required = tuple(dict.fromkeys(s.text for s in inline))
    for span in (s for s in spans if s not in inline):
        parts.extend(_text_parts(sentence[last : span.start], fits, glue_from=sentence, at=last))
        glue = " " if span.start > 0 and sentence[span.start - 1].isspace() else ""
        parts.append(_Piece(glossary.get(span.text, span.text), True, glue))
        last = span.end
    parts.extend(_text_parts(sentence[last:], fits, glue_from=sentence, at=last))
    if parts:
        parts[0] = _Piece(parts[0].text, parts[0].verbatim, "", parts[0].clause)
    clauses = 1 + sum(p.clause for p in parts)
    return SentencePlan(sentence, [Part(p.text, p.verbatim, p.glue) for p in parts], (),
                        clauses=max(1, clauses), required=required)


@dataclass(frozen=True)
class _Piece(Part):
    clause: int = 0  # 1 for each extra clause a too-long stretch was cut into


def _text_parts(chunk: str, fits: Callable[[str], bool], *, glue_from: str, at: int
                ) -> list[_Piece]:
    """The parts of a stretch of a sentence between protected spans."""
    stripped = chunk.strip()
    if not stripped:
        return []
    lead = chunk[: len(chunk) - len(chunk.lstrip())]
    glue = " " if lead or (at > 0 and glue_from[at - 1].isspace()) else ""
    if not _HAS_WORD.search(stripped):
        return [_Piece(stripped, True, glue)]  # punctuation between spans: nothing to translate
    pieces = split_clauses(normalize(stripped), fits)
    return [_Piece(p, False, glue if i == 0 else " ", int(i > 0)) for i, p in enumerate(pieces)]


def restore(word: str, originals: Sequence[str], used: set[int]) -> str:
    """One output word with its placeholders replaced by what they stand for (recorded in
    `used`); placeholders the source did not have are dropped."""

    def put_back(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        if 0 <= index < len(originals):
            used.add(index)
            return originals[index]
        return ""

    return PLACEHOLDER_RE.sub(put_back, word)
