"""Documents: the formats by name and suffix, and a whole file through one translate call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nmt.documents.base import Document, DocumentError, Translated, TranslateFn
from nmt.documents.catalog import read_po
from nmt.documents.markdown_doc import read_markdown
from nmt.documents.plain import read_text
from nmt.documents.subtitles import read_subtitles
from nmt.documents.webpage import read_html
from nmt.documents.word import read_docx

FORMATS = ("txt", "html", "srt", "vtt", "docx", "md", "po")
SUFFIXES = {".txt": "txt", ".text": "txt", ".html": "html", ".htm": "html", ".xhtml": "html",
            ".srt": "srt", ".vtt": "vtt", ".docx": "docx", ".md": "md", ".markdown": "md",
            ".po": "po", ".pot": "po"}
MEDIA_TYPES = {
    "txt": "text/plain; charset=utf-8", "html": "text/html; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8", "vtt": "text/vtt; charset=utf-8",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "md": "text/markdown; charset=utf-8", "po": "text/x-gettext-translation; charset=utf-8",
}
SLICE = 32  # texts per translate call: a long document never holds the model for long


def format_for(filename: str, fmt: str | None = None) -> str:
    """`fmt` when given (checked), else the format of `filename`'s suffix; DocumentError else."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise DocumentError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(filename).suffix.lower()
    if suffix not in SUFFIXES:
        known = ", ".join(sorted(SUFFIXES))
        raise DocumentError(f"{Path(filename).name}: unknown file type {suffix or '(none)'}; "
                            f"supported: {known}")
    return SUFFIXES[suffix]


def suffix_for(fmt: str) -> str:
    return next(s for s, f in SUFFIXES.items() if f == fmt)


def read_document(data: bytes, fmt: str, *, target_lang: str | None = None) -> Document:
    """Parses a file of format `fmt` (see FORMATS); DocumentError names what is wrong."""
    readers: dict[str, Callable[[], Document]] = {
        "txt": lambda: read_text(data),
        "html": lambda: read_html(data, target_lang=target_lang),
        "srt": lambda: read_subtitles(data, "srt"),
        "vtt": lambda: read_subtitles(data, "vtt"),
        "docx": lambda: read_docx(data),
        "md": lambda: read_markdown(data),
        "po": lambda: read_po(data, target_lang=target_lang),
    }
    if fmt not in readers:
        raise DocumentError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt != "docx" and data.startswith(b"PK\x03\x04"):
        raise DocumentError(f"not a {fmt} file: the content is a zip archive (a .docx?)")
    try:
        return readers[fmt]()
    except RecursionError:
        raise DocumentError(f"not a readable {fmt} file: nested too deeply") from None


def translate_units(doc: Document, translate: TranslateFn, *, slice_size: int = SLICE
                    ) -> list[Translated]:
    """Every text of `doc` through `translate`, `slice_size` texts a call, in order."""
    out: list[Translated] = []
    for start in range(0, len(doc.texts), slice_size):
        part = doc.texts[start: start + slice_size]
        results = translate(part, doc.terms)
        if len(results) != len(part):
            raise ValueError(f"translate returned {len(results)} results for {len(part)} texts")
        out.extend(results)
    return out


def translate_document(data: bytes, fmt: str, translate: TranslateFn, *,
                       target_lang: str | None = None, slice_size: int = 10_000) -> bytes:
    """A file's bytes translated: same format, same structure. (The CLI's path; one call for
    the whole document unless it has more than `slice_size` units.)"""
    doc = read_document(data, fmt, target_lang=target_lang)
    return doc.render(translate_units(doc, translate, slice_size=slice_size))


def translate_file(src: Path, dst: Path | None, translate: TranslateFn, *,
                   fmt: str | None = None, target_lang: str | None = None) -> bytes:
    """Translates the file `src` into `dst` (None: returns the bytes only); the format comes
    from `fmt` or the suffix of `src`. OSError and DocumentError name the file."""
    fmt = format_for(src.name, fmt)
    data = src.read_bytes()
    try:
        out = translate_document(data, fmt, translate, target_lang=target_lang)
    except DocumentError as err:
        raise DocumentError(f"{src}: {err}") from None
    if dst is not None:
        tmp = dst.with_name(dst.name + ".part")
        tmp.write_bytes(out)
        tmp.replace(dst)
    return out
