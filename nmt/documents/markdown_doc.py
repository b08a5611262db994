"""Documents: Markdown (.md) parsed with markdown-it-py (CommonMark, tables, strikethrough).

Each inline run (a paragraph, heading, list item or table cell) is translated as a whole: its
emphasis and links become inline tags that follow their words (`nmt.text.markup`), inline code
and autolinks are protected terms, images and inline HTML are kept as they were. The
translation replaces the run's source lines in place: the block syntax around it (`#`, `>`,
list markers, indentation, table pipes, setext underlines) is copied byte for byte, and code
blocks, HTML blocks and everything else outside inline runs are never touched. A paragraph's
soft line breaks go; hard breaks are kept.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

from markdown_it import MarkdownIt
from markdown_it.token import Token

from nmt.documents.base import Document, Translated, decode_text, split_lines
from nmt.text.markup import HtmlDocument, parse_html

_EMPHASIS = {"*": "em", "_": "i", "**": "strong", "__": "b", "~~": "s"}
_DELIMITER = {tag: mark for mark, tag in _EMPHASIS.items()}
_HARD_BREAK = re.compile(r"(\\|[ \t]{2,})$")
_BLOCK_START = re.compile(r"^(#{1,6}(\s|$)|>|[-+*](\s|$)|\d{1,9}[.)](\s|$)|=+\s*$|-+\s*$|```|~~~)")


@dataclass
class _Run:
    """One inline token: where its content lines are in the source, and its markup."""

    lines: list[tuple[int, int, str]]  # (source line, column, content line)
    doc: HtmlDocument
    in_table: bool
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, title)
    kept: list[str] = field(default_factory=list)  # images, inline HTML: as written
    terms: dict[str, str] = field(default_factory=dict)  # code or URL text -> its markup


def _code_markup(content: str, fence: str) -> str:
    pad = " " if content.startswith(("`", " ")) or content.endswith(("`", " ")) else ""
    return f"{fence}{pad}{content}{pad}{fence}"


def _destination(href: str, title: str) -> str:
    dest = f"<{href}>" if re.search(r"[\s()<>]", href) else href
    return dest + (' "' + title.replace('"', '\\"') + '"' if title else "")


def _inline_html(children: list[Token], run: _Run) -> str:
    out = []
    it = iter(children)
    for tok in it:
        kind = tok.type
        if kind in ("text", "text_special"):
            out.append(html.escape(tok.content, quote=False))
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("<br>")
        elif kind == "code_inline":
            run.terms.setdefault(tok.content, _code_markup(tok.content, tok.markup))
            out.append(html.escape(tok.content, quote=False))
        elif kind in ("em_open", "strong_open", "s_open") and tok.markup in _EMPHASIS:
            out.append(f"<{_EMPHASIS[tok.markup]}>")
        elif kind in ("em_close", "strong_close", "s_close") and tok.markup in _EMPHASIS:
            out.append(f"</{_EMPHASIS[tok.markup]}>")
        elif kind == "link_open" and tok.markup == "autolink":
            url = ""
            for inner in it:
                if inner.type == "link_close":
                    break
                url += inner.content
            run.terms.setdefault(url, f"<{url}>")
            out.append(html.escape(url, quote=False))
        elif kind == "link_open":
            run.links.append((str(tok.attrs.get("href", "")), str(tok.attrs.get("title") or "")))
            out.append(f'<a data-k="{len(run.links) - 1}">')
        elif kind == "link_close":
            out.append("</a>")
        else:  # image, inline HTML, anything else: kept as written
            if kind == "image":
                title = str(tok.attrs.get("title") or "")
                markup = f"![{tok.content}]({_destination(str(tok.attrs.get('src', '')), title)})"
            else:
                markup = tok.content
            run.kept.append(markup)
            out.append(f'<img data-k="{len(run.kept) - 1}">')
    return "".join(out)


class _ToMarkdown(HTMLParser):
    """The rendered inline HTML of a run back to Markdown."""

    def __init__(self, run: _Run):
        super().__init__(convert_charrefs=True)
        self.run = run
        self.out: list[str] = []
        self.links: list[int] = []
        terms = sorted(run.terms, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, terms))) if terms else None
        self.used: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        key = int(dict(attrs).get("data-k") or 0)
        if tag in _DELIMITER:
            self.out.append(_DELIMITER[tag])
        elif tag == "a":
            self.links.append(key)
            self.out.append("[")
        elif tag == "img":
            self.out.append(self.run.kept[key])
        elif tag == "br":
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DELIMITER:
            self.out.append(_DELIMITER[tag])
        elif tag == "a" and self.links:
            href, title = self.run.links[self.links.pop()]
            self.out.append(f"]({_destination(href, title)})")

    def handle_data(self, data: str) -> None:
        pos = 0
        for match in self.pattern.finditer(data) if self.pattern else ():
            self.out.append(self._escape(data[pos:match.start()]))
            self.out.append(self.run.terms[match.group()])
            self.used.add(match.group())
            pos = match.end()
        self.out.append(self._escape(data[pos:]))

    def _escape(self, text: str) -> str:
        text = re.sub(r"([\\`*\[\]<])", r"\\\1", text)
        text = re.sub(r"(?<!\w)_|_(?!\w)", r"\\_", text)
        return text.replace("|", "\\|") if self.run.in_table else text

    def markdown(self, rendered: str) -> str:
        self.feed(rendered)
        self.close()
        missing = [self.run.terms[t] for t in self.run.terms if t not in self.used]
        return "".join(self.out + [" " + m for m in missing])  # a protected span never goes


def read_markdown(data: bytes) -> Document:
    source = decode_text(data, "md")
    src_lines = split_lines(source)
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    runs: list[_Run] = []
    cursor: dict[int, int] = {}
    tokens = parser.parse(source)
    for i, tok in enumerate(tokens):
        if tok.type != "inline" or tok.map is None or not tok.content.strip():
            continue
        placed = []
        for j, content in enumerate(tok.content.split("\n")):
            number = tok.map[0] + j
            if number >= len(src_lines):
                break
            column = src_lines[number][0].find(content, cursor.get(number, 0))
            if column < 0:
                break
            cursor[number] = column + len(content)
            placed.append((number, column, content))
        if len(placed) != tok.content.count("\n") + 1:
            continue  # content not found as written (tabs expanded, ...): left untranslated
        in_table = i > 0 and tokens[i - 1].type in ("th_open", "td_open")
        run = _Run(placed, parse_html(""), in_table)
        run.doc = parse_html(_inline_html(tok.children or [], run))
        runs.append(run)
    units = [(r, b) for r in runs for b in r.doc.blocks]
    terms = tuple(dict.fromkeys(t for r in runs for t in r.terms))

    def render(translations: list[Translated]) -> bytes:
        lines: list[str | None] = [line for line, _ in src_lines]
        done = iter(translations)
        for run in runs:
            rendered = run.doc.render([next(done) for _ in run.doc.blocks])
            _place(lines, run, _ToMarkdown(run).markdown(rendered))
        return "".join(line + end for line, (_, end) in zip(lines, src_lines, strict=True)
                       if line is not None).encode("utf-8")

    return Document("md", [b.text for _, b in units], render, terms)


def _place(lines: list[str | None], run: _Run, markdown: str) -> None:
    """Writes a run's Markdown over its content lines: one output line per hard break."""
    segments = markdown.split("\n")
    starts = [0]  # the content line each segment starts on
    for j, (_, _, content) in enumerate(run.lines[:-1]):
        if _HARD_BREAK.search(content) and len(starts) < len(segments):
            starts.append(j + 1)
    starts.append(len(run.lines))
    for k, segment in enumerate(segments[: len(starts) - 1]):
        first, last = run.lines[starts[k]], run.lines[starts[k + 1] - 1]
        source = lines[first[0]] or ""
        head = source[: first[1]]
        segment = segment.strip()
        if not run.in_table and not head.strip(" >-+*0123456789.)") and _BLOCK_START.match(
                segment):
            segment = "\\" + segment  # the translation must not start a new block
        if k < len(segments) - 1:
            brk = _HARD_BREAK.search(last[2])
            tail = brk.group() if brk else "\\"
        else:
            end_line = lines[last[0]] or ""
            tail = end_line[last[1] + len(last[2]):]
        if first[0] == last[0]:
            lines[first[0]] = head + segment + (tail if k < len(segments) - 1 else
                                                source[first[1] + len(first[2]):])
        else:
            lines[first[0]] = head + segment + tail
            for number, _, _ in run.lines[starts[k] + 1: starts[k + 1]]:
                lines[number] = None
