"""Service: `format=html`: translate an HTML fragment's text nodes, keep its tags as written."""

from __future__ import annotations

import html
from dataclasses import dataclass
from html.parser import HTMLParser

_RAW_TEXT_TAGS = {"script", "style", "code", "pre", "textarea"}  # their text is not prose


@dataclass(frozen=True)
class HtmlDocument:
    """An HTML fragment split into markup kept verbatim and text nodes to translate.

    `pieces[i]` is markup when `is_text[i]` is False; otherwise it is a text node with its
    surrounding whitespace removed (kept in `padding[i]`).
    """

    pieces: list[str]
    is_text: list[bool]
    padding: list[tuple[str, str]]

    @property
    def texts(self) -> list[str]:
        return [p for p, t in zip(self.pieces, self.is_text, strict=True) if t]

    def render(self, translations: list[str]) -> str:
        """The fragment with its text nodes replaced, in order, by `translations`."""
        out, it = [], iter(translations)
        for piece, is_text, (lead, trail) in zip(self.pieces, self.is_text, self.padding,
                                                 strict=True):
            out.append(lead + html.escape(next(it), quote=False) + trail if is_text else piece)
        return "".join(out)


class _Splitter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self.is_text: list[bool] = []
        self.padding: list[tuple[str, str]] = []
        self._raw_depth = 0

    def _markup(self, text: str) -> None:
        self.pieces.append(text)
        self.is_text.append(False)
        self.padding.append(("", ""))

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self._markup(self.get_starttag_text() or f"<{tag}>")
        if tag in _RAW_TEXT_TAGS:
            self._raw_depth += 1

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self._markup(self.get_starttag_text() or f"<{tag}/>")

    def handle_endtag(self, tag: str) -> None:
        self._markup(f"</{tag}>")
        if tag in _RAW_TEXT_TAGS and self._raw_depth:
            self._raw_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.cdata_elem is not None:  # <script>/<style> content arrives unparsed: keep it
            self._markup(data)
            return
        stripped = data.strip()
        if not stripped or self._raw_depth:
            self._markup(html.escape(data, quote=False))
            return
        start = data.index(stripped[0])
        end = start + len(stripped)
        self.pieces.append(stripped)
        self.is_text.append(True)
        self.padding.append((data[:start], data[end:]))

    def handle_comment(self, data: str) -> None:
        self._markup(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self._markup(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self._markup(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self._markup(f"<![{data}]>")


def parse_html(fragment: str) -> HtmlDocument:
    splitter = _Splitter()
    splitter.feed(fragment)
    splitter.close()
    return HtmlDocument(splitter.pieces, splitter.is_text, splitter.padding)
