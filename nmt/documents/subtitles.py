"""Documents: subtitles (.srt, .vtt): cue numbers, timings and settings are kept byte for byte;
each cue's text is translated as one sentence and re-wrapped to the cue's line count.

A cue whose lines all start with "-" (two speakers) is translated line by line instead. WebVTT
header, NOTE, STYLE and REGION blocks are copied as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nmt.documents.base import Document, DocumentError, Translated, decode_text, wrap_words

_BLOCKS = re.compile(r"(?:\r?\n[ \t]*){2,}")  # cues are separated by blank lines
_SRT_TIME = r"\d{1,3}:[0-5]\d:[0-5]\d[,.]\d{1,3}"
_SRT_TIMING = re.compile(rf"\s*({_SRT_TIME})\s*-->\s*({_SRT_TIME})(?:\s+.*)?")
_VTT_TIME = r"(?:\d{1,3}:)?[0-5]\d:[0-5]\d\.\d{3}"
_VTT_TIMING = re.compile(rf"\s*({_VTT_TIME})\s*-->\s*({_VTT_TIME})(?:[ \t]+.*)?")


@dataclass
class _Cue:
    head: str  # number or identifier and timing lines, with their line endings
    lines: list[str]  # text lines
    newline: str


def _seconds(stamp: str) -> float:
    parts = re.split(r"[:,.]", stamp)
    *hms, ms = parts
    value = 0.0
    for p in hms:
        value = value * 60 + int(p)
    return value + int(ms) / 10 ** len(ms)


def read_subtitles(data: bytes, fmt: str = "srt") -> Document:
    text = decode_text(data, fmt)
    vtt = fmt == "vtt"
    if vtt and not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise DocumentError("not a WebVTT file: the first line must be WEBVTT")
    newline = "\r\n" if "\r\n" in text else "\n"
    items: list[str | _Cue] = []
    pos = 0
    line_no = 1
    for match in [*_BLOCKS.finditer(text), None]:
        end = match.start() if match else len(text)
        block = text[pos:end]
        core = block.strip("\r\n")
        if core.strip():
            lead = block[: block.index(core)]
            line_no += lead.count("\n")
            items += [lead, _cue(core, vtt=vtt, newline=newline, first=pos == 0,
                                 line_no=line_no), block[len(lead) + len(core):]]
            line_no += block.count("\n") - lead.count("\n")
        else:
            items.append(block)
            line_no += block.count("\n")
        if match:
            items.append(match.group())
            line_no += match.group().count("\n")
            pos = match.end()
    cues = [c for c in items if isinstance(c, _Cue)]
    if not vtt and not cues:
        raise DocumentError("not an SRT file: no cues (number, timing line, text) found")
    units: list[tuple[int, int | None]] = []  # (cue, line or None for the whole cue)
    texts = []
    for k, cue in enumerate(cues):
        if not cue.lines:
            continue
        if len(cue.lines) > 1 and all(line.lstrip().startswith("-") for line in cue.lines):
            for j, line in enumerate(cue.lines):
                units.append((k, j))
                texts.append(line.strip())
        else:
            units.append((k, None))
            texts.append(" ".join(line.strip() for line in cue.lines))

    def render(translations: list[Translated]) -> bytes:
        new_lines = [list(c.lines) for c in cues]
        for (k, j), (translated, _) in zip(units, translations, strict=True):
            if j is not None:
                new_lines[k][j] = translated.strip()
            else:
                new_lines[k] = wrap_words(translated, len(cues[k].lines)) or cues[k].lines
        done = iter(new_lines)
        out = []
        for item in items:
            if isinstance(item, _Cue):
                out.append(item.head + item.newline.join(next(done)))
            else:
                out.append(item)
        return "".join(out).encode("utf-8")

    return Document(fmt, texts, render)


def _cue(block: str, *, vtt: bool, newline: str, first: bool, line_no: int) -> _Cue | str:
    """One block between blank lines (no surrounding newlines); DocumentError names its line."""
    lines = block.split("\n")
    raw = [line.rstrip("\r") for line in lines]
    if vtt:
        if first or raw[0].startswith(("NOTE", "STYLE", "REGION")):
            return block  # header and metadata blocks are not cues
        at = next((i for i, line in enumerate(raw[:2]) if "-->" in line), None)
        timing = _VTT_TIMING
    else:
        at = 1
        if not raw[0].strip().isdigit():
            raise DocumentError(f"line {line_no}: expected a cue number, found {raw[0][:40]!r}")
        timing = _SRT_TIMING
    if at is None or at >= len(raw):
        raise DocumentError(f"line {line_no}: a cue without a timing line (START --> END)")
    match = timing.fullmatch(raw[at])
    if match is None:
        raise DocumentError(f"line {line_no + at}: broken timing {raw[at][:60]!r}; expected "
                            f"{'00:00:01.000' if vtt else '00:00:01,000'} --> "
                            f"{'00:00:02.500' if vtt else '00:00:02,500'}")
    if _seconds(match.group(1)) > _seconds(match.group(2)):
        raise DocumentError(f"line {line_no + at}: the cue ends ({match.group(2)}) before it "
                            f"starts ({match.group(1)})")
    head = "".join(line + "\n" for line in lines[: at + 1])
    return _Cue(head, raw[at + 1:], newline)
