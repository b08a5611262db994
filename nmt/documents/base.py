"""Documents: the contract every format follows, and what the formats share.

A reader turns a file's bytes into a `Document`: the texts to translate (units), the strings the
translator must keep verbatim (terms), and a `render` function that takes one
(translation, alignment) per unit and returns the file's bytes with the same structure.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Translated = tuple[str, list[int] | None]  # (text, source word per output word, or None)


class DocumentError(ValueError):
    """A file that cannot be read as its format: the message names the problem (and the line)."""


class TranslateFn(Protocol):
    """Translates `texts` keeping `terms` verbatim; per text (translation, word alignment)."""

    def __call__(self, texts: list[str], terms: Sequence[str] = ()) -> list[Translated]: ...


class TranslatorLike(Protocol):
    def translate(self, texts: list[str], *, beam_size: int | None = ..., domain: str | None = ...,
                  align: bool = ..., terms: Sequence[str] = ...) -> list: ...


@dataclass
class Document:
    """A file read for translation: `render` takes exactly one Translated per text."""

    fmt: str
    texts: list[str]
    render: Callable[[list[Translated]], bytes]
    terms: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)  # what the reader left alone, for the user

    def characters(self) -> int:
        return sum(len(t) for t in self.texts)


def translator_function(translator: TranslatorLike, *, beam_size: int | None = None,
                        domain: str | None = None, progress: bool = False) -> TranslateFn:
    """A TranslateFn over a `nmt.translator.Translator` (word alignment always on)."""

    def translate(texts: list[str], terms: Sequence[str] = ()) -> list[Translated]:
        kwargs = {"progress": True} if progress else {}
        results = translator.translate(texts, beam_size=beam_size, domain=domain, align=True,
                                       terms=tuple(terms), **kwargs)
        return [(r.text, r.candidates[0].alignment) for r in results]

    return translate


_ZIP_MAGIC = b"PK\x03\x04"
_BINARY_MAGIC = {b"PK\x03\x04": "a zip archive (such as .docx or .odt)", b"%PDF": "a PDF file",
                 b"\xd0\xcf\x11\xe0": "an old Office file (.doc)", b"\x89PNG": "a PNG image",
                 b"\xff\xd8\xff": "a JPEG image", b"\x1f\x8b": "a gzip archive"}


def decode_text(data: bytes, fmt: str) -> str:
    """UTF-8 text of a text format (a BOM is dropped); DocumentError for binary content or
    invalid UTF-8, naming the line."""
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise DocumentError(f"not a {fmt} file: the content is {what}")
    if b"\x00" in data[:4096]:
        raise DocumentError(f"not a {fmt} file: the content is binary (it holds NUL bytes); "
                            "UTF-16 text is not supported, save it as UTF-8")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise DocumentError(f"line {line} is not valid UTF-8 (byte {err.start}); {fmt} files "
                            "must be UTF-8") from None
    return text.removeprefix("\ufeff")


def wrap_words(text: str, lines: int) -> list[str]:
    """`text`'s words over at most `lines` lines of similar length (never an empty line)."""
    words = text.split()
    if lines <= 1 or len(words) <= 1:
        return [" ".join(words)] if words else []
    lines = min(lines, len(words))
    out: list[str] = []
    rest = words
    for i in range(lines, 1, -1):
        remaining = sum(len(w) + 1 for w in rest) - 1
        target = remaining / i
        taken, length = 1, len(rest[0])
        # Take words while the line stays nearer the target, leaving a word for each line after.
        while taken < len(rest) - (i - 1) and abs(length + 1 + len(rest[taken]) - target) <= abs(
                length - target):
            length += 1 + len(rest[taken])
            taken += 1
        out.append(" ".join(rest[:taken]))
        rest = rest[taken:]
    out.append(" ".join(rest))
    return out


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)?")


def split_lines(text: str) -> list[tuple[str, str]]:
    """(line, line ending) pairs; the ending is "" only for a last line without one."""
    out = []
    for match in _LINE.finditer(text):
        chunk = match.group()
        if not chunk:
            continue
        body = chunk.rstrip("\r\n")
        out.append((body, chunk[len(body):]))
    return out
