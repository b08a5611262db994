"""Documents: plain text (.txt): one unit per non-blank line; blank lines, each line's leading
and trailing whitespace and its line ending (\\n, \\r\\n) are kept."""

from __future__ import annotations

from nmt.documents.base import Document, Translated, decode_text, split_lines


def read_text(data: bytes) -> Document:
    text = decode_text(data, "txt")
    lines = split_lines(text)
    units = [i for i, (line, _) in enumerate(lines) if line.strip()]

    def render(translations: list[Translated]) -> bytes:
        out = [line + end for line, end in lines]
        for i, (translated, _) in zip(units, translations, strict=True):
            line, end = lines[i]
            lead = line[: len(line) - len(line.lstrip())]
            trail = line[len(line.rstrip()):]
            out[i] = lead + translated.strip() + trail + end
        return "".join(out).encode("utf-8")

    return Document("txt", [lines[i][0].strip() for i in units], render)
