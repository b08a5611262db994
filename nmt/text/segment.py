"""Text: faithful sentence segmentation, so that a translation keeps every separator of its input.

`segment` cuts a text into lines and each line into sentences; every byte that is not inside a
sentence comes back as a separator, verbatim. The sentence splitter is sentencex (Wikimedia): the
most accurate and by far the fastest of the libraries compared in docs/segmentation.md. Its
answer is mapped back onto exact offsets of the line and checked; a line it cannot be aligned on
is cut by a small conservative rule instead, so no text is ever lost. `split_clauses` cuts one
sentence that is too long for the model into clauses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import sentencex

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SURROGATE = re.compile("[\ud800-\udfff]")

# Cuts the splitter makes that are not sentence ends: the left sentence ends in an abbreviation
# that always has a continuation, or (German) in an ordinal after an article or a contracted
# preposition ("der 2. Platz", "im 19. Jahrhundert"); four-digit years are left alone ("im Jahr
# 2024. Vieles ..."). Only abbreviations that cannot end a sentence are listed: "usw." or "etc."
# can, and "No." is also a one-word answer.
_NO_END = {
    "de": re.compile(
        r"(?:(?<![\w.])(?:z\.\s?B|d\.\s?h|Dr|Prof|Nr|bzw|ca|inkl|vgl|ggf|evtl|gem|Abs)\."
        r"|\b(?:[Dd](?:er|ie|as|em|en|es)|[IiAa]m|[Zz]u[mr]|[Vv]om|[Bb]eim)\s+\d{1,3}\.)$"
    ),
    "en": re.compile(r"(?<![\w.])(?:e\.g|i\.e|Mr|Mrs|Ms|Dr|Prof|approx|vs)\.$"),
}

# The fallback's sentence end: terminal punctuation, closing quotes or brackets, whitespace, then
# a letter (after opening quotes) that must be uppercase. A full stop after one letter, digits or
# a dotted abbreviation ("U.S.") is no end, so the rule rather cuts too little than too much;
# known abbreviations are then merged back by _NO_END as for the splitter's cuts.
_RULE_END = re.compile(r"[.!?…]+[\"'”“»«’)\]]*(?=\s+[\"'„“«»(\[]*([^\W\d_]))")
_RULE_NO_END = re.compile(r"(?:(?<![\w.])\w|\d+|[A-Za-z]{1,4}\.[A-Za-z]{1,4})\.$")

_CONJUNCTIONS = (
    "und oder aber denn sondern weil dass ob wenn als während obwohl damit "  # German
    "and or but because which that while although when so whereas"  # English
).split()
# Where split_clauses may cut, best first; each pattern matches the whitespace run of a cut.
_CLAUSE_CUTS = (
    re.compile(r"(?<=[;:])\s+"),
    re.compile(rf"(?<=,)\s+(?=(?:{'|'.join(_CONJUNCTIONS)})\b)", re.IGNORECASE),
    re.compile(r"(?<=,)\s+"),
    re.compile(r"\s+"),
)


@dataclass(frozen=True)
class Segment:
    text: str
    translate: bool  # True: a sentence to translate; False: a separator kept verbatim


def segment(text: str, lang: str) -> list[Segment]:
    """Cuts `text` into sentences and the separators between them.

    Contract: `"".join(s.text for s in segment(t, lang)) == t` for every string t. Separators
    (translate=False) are line breaks (\\n, \\r\\n, \\r), blank lines, leading and trailing
    whitespace of each line and whitespace between sentences; neighbouring separators are merged
    into one, so no two separators are adjacent and no segment is empty. Sentences never start or
    end with whitespace (str.isspace) and never hold a line break.

    Args:
        text: any string, lone surrogates included.
        lang: ISO 639-1 code ("de", "en"; "de-CH" and "DE" mean "de"); languages the splitter does
            not know get English rules.
    """
    segments: list[Segment] = []
    start = 0
    for match in _LINE_BREAK.finditer(text):
        _add_line(segments, text[start : match.start()], lang)
        _add(segments, match.group(), translate=False)
        start = match.end()
    _add_line(segments, text[start:], lang)
    return segments


def sentence_spans(line: str, lang: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of one line (no line breaks), in order; each span
    is stripped and non-empty, and only whitespace lies between and around them."""
    code = lang.lower().replace("_", "-").split("-")[0]
    # The Rust extension takes only valid UTF-8: a lone surrogate becomes U+FFFD, one code point
    # for one, so offsets on the copy are offsets on the line.
    valid = _SURROGATE.sub("\ufffd", line)
    found = sentencex.get_sentence_boundaries(code, valid)
    spans = _align(valid, [b["text"] for b in found])
    if spans is None:
        spans = _rule_spans(line)
    spans = _split_missed_ends(line, spans, code)
    return _merge_false_ends(line, spans, _NO_END.get(code, _NO_END["en"]))


def split_clauses(sentence: str, fits: Callable[[str], bool]) -> list[str]:
    """Cuts a sentence too long for the model into pieces that each fit.

    Cuts go first after ';' and ':', then after ',' before a conjunction (German or English), then
    after any ',', then at any whitespace run (a hard cut, the last resort); a single word that
    does not fit is cut by characters. At each level neighbouring pieces are joined again while
    the result still fits, so a sentence gets as few cuts as its level allows. Pieces keep their
    punctuation and inner whitespace: `" ".join(pieces)` is the sentence with each cut's
    whitespace run replaced by one space (a character cut has an empty run, so the join adds a
    space there). No character but the cuts' whitespace is dropped.

    Args:
        sentence: one sentence without leading or trailing whitespace (as `segment` gives).
        fits: True if a piece is short enough for the model; assumed monotone (a prefix of a
            piece that fits also fits).

    Returns:
        `[sentence]` when it fits; otherwise the pieces, each of which fits unless it is a single
        character.
    """
    if fits(sentence):
        return [sentence]
    return _split(sentence, fits, level=0)


def _add(segments: list[Segment], text: str, *, translate: bool) -> None:
    if not text:
        return
    if not translate and segments and not segments[-1].translate:
        segments[-1] = Segment(segments[-1].text + text, translate=False)
    else:
        segments.append(Segment(text, translate))


def _add_line(segments: list[Segment], line: str, lang: str) -> None:
    cursor = 0
    for start, end in sentence_spans(line, lang):
        _add(segments, line[cursor:start], translate=False)
        _add(segments, line[start:end], translate=True)
        cursor = end
    _add(segments, line[cursor:], translate=False)


def _align(line: str, pieces: list[str]) -> list[tuple[int, int]] | None:
    """Finds each stripped piece in `line` after the previous one; None unless they are exact
    substrings in order with nothing but whitespace left between and around them."""
    spans, cursor = [], 0
    for piece in (p.strip() for p in pieces):
        if not piece:
            continue
        start = line.find(piece, cursor)
        if start < 0 or not _blank(line[cursor:start]):
            return None
        spans.append((start, start + len(piece)))
        cursor = start + len(piece)
    return spans if _blank(line[cursor:]) else None


def _blank(text: str) -> bool:
    return not text or text.isspace()


def _rule_spans(line: str) -> list[tuple[int, int]]:
    """Conservative fallback for lines the splitter cannot take or be aligned on."""
    spans, start = [], 0
    for match in _RULE_END.finditer(line):
        abbreviation = line[match.start()] == "." and _RULE_NO_END.search(
            line, 0, match.start() + 1)
        if abbreviation or not match.group(1).isupper():
            continue
        spans.append((start, match.end()))
        start = match.end()
    spans.append((start, len(line)))
    # Strip each span; a span of whitespace alone (a blank line's content) is no sentence.
    stripped = []
    for a, b in spans:
        text = line[a:b]
        if text.strip():
            a += len(text) - len(text.lstrip())
            stripped.append((a, a + len(text.strip())))
    return stripped


# An end the splitter misses in German: a plain word, full stop or ! ?, then a sentence that
# opens with a number and a word ("Er ist da. 3 Jungen stehen."). Not after a number ("am 3.
# 4 Leute": maybe an ordinal) nor after an abbreviation ("inkl. MwSt. 20 Euro").
_MISSED_END = re.compile(r"([^\W\d_]+)[.!?]\s+(?=\d+\s+[^\W\d_])")
_PLAIN_WORD = re.compile(r"[^\W\d_][^\W\d_A-ZÄÖÜ]+")
_ABBREVIATIONS = frozenset(
    "abs abt bd bzw ca chr dt etc evtl ff gem ggf hr hrn inkl jh jhd max min mio mrd nr rd std "
    "str tel usw vgl zb zzgl".split()
)


def _split_missed_ends(line: str, spans: list[tuple[int, int]], code: str
                       ) -> list[tuple[int, int]]:
    if code != "de":
        return spans
    out: list[tuple[int, int]] = []
    for start, end in spans:
        for match in _MISSED_END.finditer(line, start, end):
            word = match.group(1)
            if not _PLAIN_WORD.fullmatch(word) or word.lower() in _ABBREVIATIONS:
                continue
            cut = match.end(1) + 1
            out.append((start, cut))
            start = match.end()
        out.append((start, end))
    return out


def _merge_false_ends(line: str, spans: list[tuple[int, int]], no_end: re.Pattern[str]
                      ) -> list[tuple[int, int]]:
    """Joins each sentence to the previous one where that one ends in a `_NO_END` match."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        # The patterns match at most a few words before the end; searching only the tail keeps
        # long sentences cheap (lookbehinds still see the characters before it).
        if merged and no_end.search(line, max(merged[-1][0], merged[-1][1] - 32), merged[-1][1]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _split(text: str, fits: Callable[[str], bool], level: int) -> list[str]:
    """Pieces of `text` cut at `_CLAUSE_CUTS[level]`, neighbours rejoined while they fit; a piece
    that still does not fit is cut at the next level."""
    if level == len(_CLAUSE_CUTS):
        return _split_chars(text, fits)
    bounds = [0]
    for match in _CLAUSE_CUTS[level].finditer(text):
        bounds += [match.start(), match.end()]
    bounds.append(len(text))
    pieces = [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=True) if a < b]
    joined: list[tuple[int, int]] = []
    for start, end in pieces:
        # Rejoining takes the original text between pieces, so its whitespace stays as it was.
        if joined and fits(text[joined[-1][0] : end]):
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    out: list[str] = []
    for start, end in joined:
        piece = text[start:end]
        out += [piece] if fits(piece) else _split(piece, fits, level + 1)
    return out


def _split_chars(word: str, fits: Callable[[str], bool]) -> list[str]:
    """Longest prefixes that fit (at least one character each), found by bisection."""
    out = []
    while word:
        lo, hi = 1, len(word)  # the answer lies in [lo, hi]; one character is taken regardless
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(word[:mid]) else (lo, mid - 1)
        out.append(word[:lo])
        word = word[lo:]
    return out
