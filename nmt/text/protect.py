"""Protected spans: URLs, e-mail addresses, numbers, emoji, @handles, #tags and `code` that a
translation must keep verbatim, swapped for numbered placeholders around decoding.

Models trained with `tokenizer.placeholders: N` have `<x1>` ... `<xN>` as single vocabulary
pieces and learned (from training pairs whose two sides share such a span) to copy them. At
translation time `mask` replaces each protected span of the source by the next placeholder and
`unmask` puts the original text back wherever the model wrote that placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

PLACEHOLDER = "<x{}>"
PLACEHOLDER_RE = re.compile(r"<x(\d{1,3})>")

# Order matters: earlier kinds win where matches overlap (a URL holds digits and slashes).
_KINDS: tuple[tuple[str, str], ...] = (
    ("code", r"`[^`\n]+`"),
    ("url", r"\b(?:https?://|ftp://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]}]"),
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
    ("handle", r"(?<![\w@])@\w{1,30}\b"),
    ("hashtag", r"(?<![\w#&])#\w*[^\W\d_]\w*"),
    # Times, dates and numbers with their separators: 12:30, 01.12.2026, 2026-12-01, 3,50,
    # 1.000.000, 0.5, 42. A separator only joins digit groups, so a sentence-final "42." keeps
    # its full stop outside the span.
    ("number", r"(?<![\w.,])\d+(?:[.,:/-]\d+)*(?![\w])"),
    (
        "emoji",
        "(?:[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\U0001F1E6-\U0001F1FF]"
        "[\uFE0F\u200D\U0001F3FB-\U0001F3FF]*)+",
    ),
)
_PATTERN = re.compile("|".join(f"(?P<{name}>{regex})" for name, regex in _KINDS))


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str  # one of the names in _KINDS, or "term" for a caller's protected term
    text: str


def find_spans(text: str, terms: Sequence[str] = (), *, builtin: bool = True) -> list[Span]:
    """Protected spans of `text`, left to right, not overlapping.

    `terms` are extra strings to keep verbatim (matched exactly, longest first); they win over
    the built-in kinds (used only when `builtin`) where they overlap.
    """
    spans: list[Span] = []
    taken = [False] * len(text)
    for term in sorted({t for t in terms if t}, key=len, reverse=True):
        for match in re.finditer(re.escape(term), text):
            if not any(taken[match.start() : match.end()]):
                spans.append(Span(match.start(), match.end(), "term", term))
                taken[match.start() : match.end()] = [True] * (match.end() - match.start())
    for match in _PATTERN.finditer(text) if builtin else ():
        if any(taken[match.start() : match.end()]):
            continue
        kind = match.lastgroup or "number"
        spans.append(Span(match.start(), match.end(), kind, match.group()))
    return sorted(spans, key=lambda s: s.start)


@dataclass(frozen=True)
class Masked:
    """A source with placeholders, and what each placeholder stands for (index 0 is `<x1>`)."""

    text: str
    originals: tuple[str, ...]


def mask(text: str, *, limit: int, terms: Sequence[str] = (), builtin: bool = True) -> Masked:
    """Replaces up to `limit` protected spans by `<x1>`, `<x2>`, ... (later spans stay as text).

    Repeats of the same span share one placeholder, so "5 mal 5" needs one.
    """
    if limit <= 0:
        return Masked(text, ())
    out: list[str] = []
    originals: list[str] = []
    last = 0
    for span in find_spans(text, terms, builtin=builtin):
        if span.text in originals:
            number = originals.index(span.text) + 1
        elif len(originals) < limit:
            originals.append(span.text)
            number = len(originals)
        else:
            continue
        out.append(text[last : span.start])
        out.append(_spaced(text, span, PLACEHOLDER.format(number)))
        last = span.end
    out.append(text[last:])
    return Masked("".join(out), tuple(originals))


def _spaced(text: str, span: Span, placeholder: str) -> str:
    """The placeholder, with a space where the span touched a letter (so "5€" masks as
    "<x1> €" and the model sees the same token shapes it was trained on)."""
    before = " " if span.start > 0 and text[span.start - 1].isalnum() else ""
    after = " " if span.end < len(text) and text[span.end].isalnum() else ""
    return before + placeholder + after


def unmask(translation: str, originals: Sequence[str]) -> tuple[str, list[str]]:
    """Restores the placeholders of `translation`.

    Returns the text and the originals the model did not reproduce (missing placeholders); a
    placeholder the source never had is dropped.
    """
    used: set[int] = set()

    def restore(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        if 0 <= index < len(originals):
            used.add(index)
            return originals[index]
        return ""

    text = PLACEHOLDER_RE.sub(restore, translation)
    text = re.sub(r" {2,}", " ", text).strip()
    missing = [originals[i] for i in range(len(originals)) if i not in used]
    return text, missing


def mask_pair(src: str, tgt: str, *, limit: int) -> tuple[str, str] | None:
    """A training pair with the spans both sides share (verbatim) replaced by placeholders,
    numbered in source order; None when the two sides share no protected span."""
    tgt_texts = {s.text for s in find_spans(tgt)}
    shared = []
    for span in find_spans(src):
        if span.text in tgt_texts and span.text not in shared:
            shared.append(span.text)
    shared = shared[:limit]
    if not shared:
        return None
    masked_src = mask(src, limit=limit, terms=shared, builtin=False)
    masked_tgt = mask(tgt, limit=limit, terms=shared, builtin=False)
    if masked_src.originals != masked_tgt.originals:
        # Terms are numbered in order of appearance on each side; re-number the target by the
        # source's order so <x1> means the same span on both sides.
        mapping = {orig: i + 1 for i, orig in enumerate(masked_src.originals)}
        rebuilt = PLACEHOLDER_RE.sub(
            lambda m: PLACEHOLDER.format(mapping[masked_tgt.originals[int(m.group(1)) - 1]]),
            masked_tgt.text,
        )
        return masked_src.text, rebuilt
    return masked_src.text, masked_tgt.text


def placeholder_symbols(count: int) -> list[str]:
    return [PLACEHOLDER.format(i) for i in range(1, count + 1)]
