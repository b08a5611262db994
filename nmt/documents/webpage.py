"""Documents: HTML pages (.html, .htm) through `nmt.text.markup`: inline tags follow their words;
`<title>`, `alt` and `title` attributes are translated too and `lang` attributes name the target
language; scripts, styles, `<pre>` and `<code>` are left as they are.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

from nmt.documents.base import Document, DocumentError, Translated, decode_text
from nmt.text.markup import parse_html

TRANSLATED_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")
_SKIP = frozenset({"script", "style", "pre", "code", "textarea"})


class _StartTags(HTMLParser):
    """Finds start tags with attributes to translate or set, outside raw-text elements."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[int, str, str, list[tuple[str, str | None]]]] = []
        self.depth = 0
        starts = [0]
        for line in source.splitlines(keepends=True):
            starts.append(starts[-1] + len(line))
        self._starts = starts
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        text = self.get_starttag_text() or ""
        if self.depth == 0 and any(k in TRANSLATED_ATTRIBUTES or k in ("lang", "xml:lang")
                                   for k, _ in attrs):
            line, col = self.getpos()
            self.tags.append((self._starts[line - 1] + col, text, tag, attrs))
        if tag in _SKIP:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.depth:
            self.depth -= 1


def _attribute_texts(source: str) -> list[str]:
    return list(dict.fromkeys(
        value.strip() for _, _, _, attrs in _StartTags(source).tags for k, value in attrs
        if k in TRANSLATED_ATTRIBUTES and value and value.strip()))


def _rewrite_tags(rendered: str, translated: dict[str, str], target_lang: str | None) -> str:
    """`rendered` with translated attribute values and `lang` set, tag by tag."""
    out, pos = [], 0
    for offset, text, tag, attrs in _StartTags(rendered).tags:
        if rendered[offset: offset + len(text)] != text:
            continue  # the parser's position did not match (should not happen); keep the tag
        parts = []
        for key, value in attrs:
            if key in TRANSLATED_ATTRIBUTES and value and value.strip() in translated:
                value = translated[value.strip()]
            elif key in ("lang", "xml:lang") and target_lang:
                value = target_lang
            parts.append(key if value is None else f'{key}="{html.escape(value, quote=True)}"')
        close = "/>" if text.rstrip().endswith("/>") else ">"
        out += [rendered[pos:offset], f"<{tag}{''.join(' ' + p for p in parts)}{close}"]
        pos = offset + len(text)
    out.append(rendered[pos:])
    return "".join(out)


def read_html(data: bytes, *, target_lang: str | None = None) -> Document:
    source = decode_text(data, "html")
    if "<" not in source:
        raise DocumentError("not an HTML file: it holds no tags")
    try:
        doc = parse_html(source)
        attributes = _attribute_texts(source)
    except (AssertionError, ValueError) as err:  # html.parser on a broken declaration
        raise DocumentError(f"not a readable HTML file ({err})") from None
    blocks = doc.blocks
    terms = tuple(dict.fromkeys(t for b in blocks for t in b.protected))

    def render(translations: list[Translated]) -> bytes:
        body = translations[: len(blocks)]
        names = {src: text.strip() for src, (text, _) in
                 zip(attributes, translations[len(blocks):], strict=True)}
        rendered = doc.render(body)
        return _rewrite_tags(rendered, names, target_lang).encode("utf-8")

    return Document("html", [b.text for b in blocks] + attributes, render, terms)
