"""HTML with inline markup: whole sentences are translated, and inline tags follow their words.

An HTML fragment is cut into *blocks* at block-level tags (`<p>`, `<li>`, `<td>`, `<br>`, ...):
the text of a block, with its inline tags (`b i em strong a span code sup sub ...`) taken out, is
what the translator sees, so a tag no longer cuts a sentence apart. Each inline tag remembers
which source words it wrapped; after translation it wraps the output words aligned to them
(`Candidate.alignment`, from the attention). Markup outside the text (block tags, attributes,
comments, `<script>`, `<style>`, `<pre>`, entities) is copied as written; the content of inline
`<code>` is kept verbatim as a protected term.

Output is well-formed wherever the input was: a tag's output range is clamped inside its
parent's and kept apart from its siblings', and every tag appears exactly once.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

INLINE_TAGS = frozenset(
    "a abbr b bdi bdo cite code data dfn del em font i ins kbd mark q s samp small span strong "
    "sub sup time u var".split()
)
_RAW_TEXT_TAGS = frozenset({"script", "style", "pre", "textarea"})  # content is not prose
_VOID_TAGS = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()
)


@dataclass
class InlineTag:
    """An inline element of a block: it wrapped source words [start, end)."""

    open: str  # the start tag as written
    close: str  # "</b>", or "" when the source never closed it
    start: int
    end: int = -1
    parent: int | None = None  # index of the enclosing inline tag in `Block.tags`
    # The source had punctuation glued on outside the tag (`„<b>Hund</b>“`, `<a>Wiese</a>.`):
    # the output word's leading/trailing punctuation then goes outside the tag too.
    outer_lead: bool = False
    outer_trail: bool = False


@dataclass
class Block:
    """The translatable text between two block boundaries."""

    words: list[str] = field(default_factory=list)
    tags: list[InlineTag] = field(default_factory=list)
    markers: list[tuple[int, str]] = field(default_factory=list)  # (before word, markup)
    protected: list[str] = field(default_factory=list)  # inline <code> contents
    lead: str = ""  # whitespace before the first word, kept
    trail: str = ""  # whitespace after the last word, kept
    raw: str = ""  # the block as written, for blocks without words

    @property
    def text(self) -> str:
        return " ".join(self.words)

    def render(self, translation: str, alignment: Sequence[int] | None) -> str:
        """The block with `translation`'s words wrapped by the inline tags they align to."""
        if not self.words:
            return self.raw
        out_words = translation.split()
        if not out_words:
            return self.raw
        aligned = list(alignment) if alignment is not None else []
        if len(aligned) != len(out_words):  # no attention: spread source words evenly
            n = len(self.words)
            aligned = [j * n // len(out_words) for j in range(len(out_words))]
        ranges = self._ranges(aligned)
        opens: dict[int, list[str]] = {}
        closes: dict[int, list[str]] = {}
        empty: dict[int, list[str]] = {}
        split_lead: set[int] = set()
        split_trail: set[int] = set()
        for tag, (lo, hi) in zip(self.tags, ranges, strict=True):
            if hi < lo:  # nothing left to wrap: keep the element, empty, where it would be
                empty.setdefault(lo, []).append(tag.open + tag.close)
                continue
            opens.setdefault(lo, []).append(tag.open)
            closes.setdefault(hi, []).insert(0, tag.close)  # inner tags close first
            if tag.outer_lead:
                split_lead.add(lo)
            if tag.outer_trail:
                split_trail.add(hi)
        markers: dict[int, list[str]] = {}
        for at, markup in self.markers:
            target = next((j for j, a in enumerate(aligned) if a >= at), len(out_words))
            markers.setdefault(target, []).append(markup)
        parts = []
        for j, word in enumerate(out_words):
            parts.extend(markers.get(j, []))
            lead, core, trail = _punctuation(word, j in split_lead, j in split_trail)
            parts.append(
                "".join(empty.get(j, []))
                + html.escape(lead, quote=False)
                + "".join(opens.get(j, []))
                + html.escape(core, quote=False)
                + "".join(closes.get(j, []))
                + html.escape(trail, quote=False)
            )
        parts.extend(markers.get(len(out_words), []) + empty.get(len(out_words), []))
        return self.lead + " ".join(parts) + self.trail

    def _ranges(self, aligned: list[int]) -> list[tuple[int, int]]:
        """Output word range [lo, hi] per tag (hi < lo: empty), nested as in the source."""
        ranges: list[tuple[int, int]] = []
        last = len(aligned) - 1
        for tag in self.tags:
            hit = [j for j, a in enumerate(aligned) if tag.start <= a < tag.end]
            if not hit:  # nothing aligned to its words: the output word nearest to them
                nearest = min(range(len(aligned)), key=lambda j: (abs(aligned[j] - tag.start), j))
                hit = [nearest]
            lo, hi = min(hit), max(hit)
            if tag.parent is not None:
                plo, phi = ranges[tag.parent]
                lo, hi = max(lo, plo), min(hi, phi)
                if hi < lo:
                    lo, hi = plo, plo - 1
            for other, (olo, ohi) in zip(self.tags, ranges, strict=False):
                if other.parent == tag.parent and ohi >= olo and lo <= ohi and hi >= olo:
                    # Overlaps an earlier sibling: keep the part after it, or before it.
                    if hi > ohi:
                        lo = ohi + 1
                    else:
                        hi = olo - 1
            ranges.append((max(0, lo), min(hi, last)))
        return ranges


_LEAD_PUNCT = re.compile(r"^[^\w<]+")
_TRAIL_PUNCT = re.compile(r"[^\w>]+$")


def _punctuation(word: str, lead: bool, trail: bool) -> tuple[str, str, str]:
    """(leading punctuation, core, trailing punctuation) of a word, split only where asked."""
    head = _LEAD_PUNCT.match(word) if lead else None
    start = head.end() if head and head.end() < len(word) else 0
    tail = _TRAIL_PUNCT.search(word[start:]) if trail else None
    end = start + tail.start() if tail and tail.start() > 0 else len(word)
    return word[:start], word[start:end], word[end:]


@dataclass
class HtmlDocument:
    """A fragment as markup kept verbatim (str) and blocks to translate, in order."""

    items: list[str | Block]

    @property
    def blocks(self) -> list[Block]:
        return [b for b in self.items if isinstance(b, Block)]

    def render(self, translations: Sequence[tuple[str, Sequence[int] | None]]) -> str:
        """The fragment with each block's text replaced by (translation, alignment)."""
        it = iter(translations)
        out = []
        for item in self.items:
            if isinstance(item, Block):
                text, alignment = next(it)
                out.append(item.render(text, alignment))
            else:
                out.append(item)
        return "".join(out)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[str | Block] = []
        self.block = Block()
        self.raw: list[str] = []  # the current block's source, for blocks without words
        self.stack: list[int] = []  # open inline tags (indices into block.tags)
        self.raw_depth = 0
        self.code_depth = 0
        self.in_word = False
        self.code_text: list[str] = []
        self.closed_in_word: list[int] = []  # tags closed inside a word that may go on

    # ---------------------------------------------------------------- blocks
    def flush(self) -> None:
        block = self.block
        for i in self.stack:  # never closed in the source: it wraps to the end of the block
            block.tags[i].end = len(block.words)
        if block.words or block.tags or block.markers:
            block.raw = "".join(self.raw)
            self.items.append(block)
        elif self.raw:
            self.items.append("".join(self.raw))
        self.block, self.raw, self.stack, self.in_word = Block(), [], [], False

    def verbatim(self, markup: str) -> None:
        self.flush()
        self.items.append(markup)

    # ---------------------------------------------------------------- events
    def handle_starttag(self, tag: str, attrs: list) -> None:
        markup = self.get_starttag_text() or f"<{tag}>"
        if self.raw_depth or tag not in INLINE_TAGS:
            if tag in _VOID_TAGS and tag != "br" and not self.raw_depth and self.block.words:
                self.marker(markup)
                return
            self.verbatim(markup)
            if tag in _RAW_TEXT_TAGS:
                self.raw_depth += 1
            return
        self.raw.append(markup)
        block = self.block
        start = len(block.words) - (1 if self.in_word else 0)
        parent = self.stack[-1] if self.stack else None
        block.tags.append(InlineTag(markup, "", start, parent=parent, outer_lead=self.in_word))
        self.stack.append(len(block.tags) - 1)
        if tag == "code":
            self.code_depth += 1
            self.code_text = []

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        markup = self.get_starttag_text() or f"<{tag}/>"
        if tag == "br" or self.raw_depth or not self.block.words:
            self.verbatim(markup)
        else:
            self.marker(markup)

    def handle_endtag(self, tag: str) -> None:
        markup = f"</{tag}>"
        if tag in _RAW_TEXT_TAGS and self.raw_depth:
            self.raw_depth -= 1
            self.items.append(markup)
            return
        if self.raw_depth or tag not in INLINE_TAGS:
            self.verbatim(markup)
            return
        self.raw.append(markup)
        block = self.block
        match = next((i for i in reversed(self.stack) if block.tags[i].open[1:].split(">")[0]
                      .split()[0].lower() == tag), None)
        if match is None:  # a stray end tag: keep it where it was
            self.marker(markup)
            return
        while self.stack and self.stack[-1] != match:  # close what the source left open
            block.tags[self.stack.pop()].end = len(block.words)
        self.stack.pop()
        block.tags[match].close = markup
        block.tags[match].end = len(block.words)
        if self.in_word:
            self.closed_in_word.append(match)
        if tag == "code" and self.code_depth:
            self.code_depth -= 1
            code = " ".join("".join(self.code_text).split())
            if code:
                block.protected.append(code)

    def marker(self, markup: str) -> None:
        self.raw.append(markup)
        self.block.markers.append((len(self.block.words), markup))

    def handle_data(self, data: str) -> None:
        if self.raw_depth or self.cdata_elem is not None:
            self.items.append(data if self.cdata_elem is not None else html.escape(data, False))
            return
        self.raw.append(html.escape(data, quote=False))
        if self.code_depth:
            self.code_text.append(data)
        block = self.block
        if not block.words and not data.strip():
            block.lead += data
            return
        for char in data:
            if char.isspace():
                self.in_word = False
                if block.words:
                    block.trail += char  # between words it collapses to one space
                else:
                    block.lead += char
            elif self.in_word:
                block.words[-1] += char
            else:
                block.trail = ""
                block.words.append(char)
                self.in_word = True
                self.closed_in_word = []
            if not char.isspace() and self.closed_in_word and self.in_word:
                for i in self.closed_in_word:  # the word goes on after the tag closed
                    block.tags[i].outer_trail = True
                self.closed_in_word = []

    def handle_comment(self, data: str) -> None:
        markup = f"<!--{data}-->"
        if self.block.words:
            self.marker(markup)
        else:
            self.verbatim(markup)

    def handle_decl(self, decl: str) -> None:
        self.verbatim(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.verbatim(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.verbatim(f"<![{data}]>")


def parse_html(fragment: str) -> HtmlDocument:
    parser = _Parser()
    parser.feed(fragment)
    parser.close()
    parser.flush()
    return HtmlDocument(parser.items)
