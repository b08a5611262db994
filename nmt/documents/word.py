"""Documents: Word files (.docx) with python-docx: every paragraph of the body, its tables,
headers and footers is translated as a whole, and run formatting follows the words.

A paragraph's runs are grouped by formatting (the run properties, and the hyperlink they sit
in); every group but the most common one becomes an inline tag, the paragraph is translated
with word alignment, and new runs are built from the ranges the tags end up wrapping
(`nmt.text.markup`). Tabs, breaks, images, fields and bookmarks stay in place between the
words they followed. Footnotes, comments and text inside content controls are not translated.

Hostile files are refused before python-docx sees them: more than `MAX_ENTRIES` archive
members or `MAX_UNPACKED_BYTES` unpacked (a zip bomb), or any XML part with a DTD or entity
declarations (billion laughs, external entities).
"""

from __future__ import annotations

import copy
import html
import io
import re
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import defusedxml.ElementTree as SafeET
import docx
from defusedxml import DefusedXmlException
from docx.oxml.ns import qn
from lxml import etree  # python-docx's own XML library: its elements are lxml's

from nmt.documents.base import Document, DocumentError, Translated
from nmt.text.markup import HtmlDocument, parse_html

MAX_ENTRIES = 2_000
MAX_UNPACKED_BYTES = 200_000_000
_STORIES = re.compile(r"/word/(document|header\d*|footer\d*)\.xml")
_DROPPED = {qn("w:proofErr"), qn("w:rPr"), qn("w:pPr")}
_SEPARATORS = {qn("w:tab"), qn("w:br"), qn("w:cr"), qn("w:ptab")}  # they end a word


@dataclass
class _Paragraph:
    element: Any  # the w:p
    doc: HtmlDocument
    styles: list[tuple[int | None, Any]]  # per format group: (hyperlink index, w:rPr or None)
    base: int  # the group that needs no tag
    links: list[Any] = field(default_factory=list)  # empty copies of the w:hyperlink elements
    markers: list[Any] = field(default_factory=list)  # elements kept as they are
    separators: set[int] = field(default_factory=set)  # markers that end a word (tab, break)


def check_archive(data: bytes) -> None:
    """DocumentError unless `data` is a zip of bounded size holding a Word document whose XML
    parts declare no DTD or entities."""
    if not data.startswith(b"PK"):
        raise DocumentError("not a .docx file: the content is not a zip archive")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
        if len(members) > MAX_ENTRIES:
            raise DocumentError(f"refused: the archive holds {len(members)} files (the limit is "
                                f"{MAX_ENTRIES})")
        unpacked = sum(m.file_size for m in members)
        if unpacked > MAX_UNPACKED_BYTES:
            raise DocumentError(f"refused: the archive unpacks to {unpacked} bytes (the limit is "
                                f"{MAX_UNPACKED_BYTES}); a zip bomb?")
        names = {m.filename for m in members}
        if "word/document.xml" not in names or "[Content_Types].xml" not in names:
            raise DocumentError("not a .docx file: the archive holds no word/document.xml")
        for member in members:
            if member.filename.endswith((".xml", ".rels")):
                SafeET.fromstring(archive.read(member), forbid_dtd=True)
    except DefusedXmlException:
        raise DocumentError("refused: an XML part declares a DTD or entities") from None
    except SafeET.ParseError as err:
        raise DocumentError(f"not a readable .docx file: broken XML ({err})") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as err:
        raise DocumentError(f"not a readable .docx file: a broken zip archive ({err})") from None


def read_docx(data: bytes) -> Document:
    check_archive(data)
    try:
        package = docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises many kinds for a bad package
        raise DocumentError(f"not a readable .docx file ({type(err).__name__}: {err})") from None
    paragraphs = []
    for part in package.part.package.iter_parts():
        if _STORIES.fullmatch(str(part.partname)) and hasattr(part, "element"):
            for p in list(part.element.iter(qn("w:p"))):
                paragraph = _read_paragraph(p)
                if paragraph is not None:
                    paragraphs.append(paragraph)
    blocks = [(p, b) for p in paragraphs for b in p.doc.blocks]

    def render(translations: list[Translated]) -> bytes:
        done = iter(translations)
        for p in paragraphs:
            _write_paragraph(p, p.doc.render([next(done) for _ in p.doc.blocks]))
        out = io.BytesIO()
        package.save(out)
        return out.getvalue()

    return Document("docx", [b.text for _, b in blocks], render)


def _read_paragraph(p: Any) -> _Paragraph | None:
    pieces: list[tuple[str, int | None, Any] | Any] = []  # (text, link, rPr) or a marker element
    links: list[Any] = []
    for child in list(p):
        if child.tag == qn("w:r"):
            pieces += _run_pieces(child, None)
        elif child.tag == qn("w:hyperlink"):
            shell = copy.copy(child)
            for inner in list(shell):
                shell.remove(inner)
            links.append(shell)
            for run in child:
                pieces += _run_pieces(run, len(links) - 1) if run.tag == qn("w:r") else [run]
        elif child.tag not in _DROPPED:
            pieces.append(child)
    if not any(isinstance(x, tuple) and x[0].strip() for x in pieces):
        return None
    styles: list[tuple[int | None, Any]] = []
    keys: dict[tuple[int | None, bytes], int] = {}
    chars: dict[int, int] = {}
    items: list[tuple[str, int] | Any] = []
    for piece in pieces:
        if not isinstance(piece, tuple):
            items.append(piece)
            continue
        text, link, rpr = piece
        key = (link, b"" if rpr is None else _xml(rpr))
        if key not in keys:
            keys[key] = len(styles)
            styles.append((link, rpr))
        group = keys[key]
        chars[group] = chars.get(group, 0) + len(text.strip())
        items.append((text, group))
    base = max(chars, key=lambda g: (styles[g][0] is None, chars[g]))
    paragraph = _Paragraph(p, parse_html(""), styles, base, links)
    markup = []
    for item in items:
        if isinstance(item, tuple):
            text, group = item
            escaped = html.escape(text, quote=False)
            markup.append(escaped if group == base else f'<span data-g="{group}">{escaped}</span>')
        else:
            paragraph.markers.append(item)
            k = len(paragraph.markers) - 1
            if any(child.tag in _SEPARATORS for child in item):
                paragraph.separators.add(k)
                markup.append(f' <img data-m="{k}"> ')
            else:
                markup.append(f'<img data-m="{k}">')
    paragraph.doc = parse_html("".join(markup))
    return paragraph


def _xml(element: Any) -> bytes:
    return etree.tostring(element)


def _run_pieces(run: Any, link: int | None) -> list[tuple[str, int | None, Any] | Any]:
    """A run as text pieces and marker runs (tab, break, drawing, field, ...) in order."""
    rpr = run.find(qn("w:rPr"))
    pieces: list[tuple[str, int | None, Any] | Any] = []
    for child in run:
        if child.tag == qn("w:rPr"):
            continue
        if child.tag == qn("w:t"):
            if child.text:
                pieces.append((child.text, link, rpr))
            continue
        marker = run.makeelement(qn("w:r"), {})
        if rpr is not None:
            marker.append(copy.deepcopy(rpr))
        marker.append(child)  # moved: the caller rebuilds the paragraph from the pieces
        pieces.append(marker)
    return pieces


class _Segments(HTMLParser):
    """Rendered paragraph HTML -> (text, group) and marker index items, in order."""

    def __init__(self, base: int):
        super().__init__(convert_charrefs=True)
        self.stack = [base]
        self.items: list[tuple[str, int] | int] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "span":
            self.stack.append(int(values.get("data-g") or self.stack[0]))
        elif tag == "img":
            self.items.append(int(values.get("data-m") or 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and len(self.stack) > 1:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        last = self.items[-1] if self.items else None
        if isinstance(last, tuple) and last[1] == self.stack[-1]:
            self.items[-1] = (last[0] + data, last[1])
        else:
            self.items.append((data, self.stack[-1]))


def _write_paragraph(p: _Paragraph, rendered: str) -> None:
    segments = _Segments(p.base)
    segments.feed(rendered)
    segments.close()
    items = segments.items
    for i, item in enumerate(items):  # the spaces put around tabs and breaks go again
        if isinstance(item, tuple):
            text = item[0]
            if i + 1 < len(items) and items[i + 1] in p.separators:
                text = text.rstrip(" ")
            if i > 0 and items[i - 1] in p.separators:
                text = text.lstrip(" ")
            items[i] = (text, item[1])
    element = p.element
    for child in list(element):
        if child.tag != qn("w:pPr"):
            element.remove(child)
    open_link: tuple[int, Any] | None = None
    for item in items:
        if isinstance(item, tuple) and not item[0]:
            continue
        if isinstance(item, int):
            element.append(p.markers[item])
            open_link = None
            continue
        text, group = item
        link, rpr = p.styles[group]
        run = element.makeelement(qn("w:r"), {})
        if rpr is not None:
            run.append(copy.deepcopy(rpr))
        t = run.makeelement(qn("w:t"), {})
        t.text = text
        t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
        run.append(t)
        if link is None:
            element.append(run)
            open_link = None
            continue
        if open_link is None or open_link[0] != link:
            open_link = (link, copy.deepcopy(p.links[link]))
            element.append(open_link[1])
        open_link[1].append(run)
