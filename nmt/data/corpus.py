"""Data: reading parallel text (aligned files, gzip or plain, or one TSV), normalising and
filtering.

Every problem names the file and line. Nothing is dropped silently: filters return their counts.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

_SPACES = re.compile(r"\s+")


class DataError(ValueError):
    """Unreadable or inconsistent data; the message names file and line."""


def normalize(text: str) -> str:
    """Unicode NFC and whitespace clean-up (runs of any space become one ASCII space)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


@dataclass
class ReadStats:
    """What reading skipped, by reason, so reports can show it."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str, n: int = 1) -> None:
        self.counts[reason] += n


def open_bytes(path: Path):
    """Opens a file for binary reading, decompressing it when it is gzip (by its magic bytes)."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_lines(
    path: str | Path, *, on_bad_line: str = "error", stats: ReadStats | None = None
) -> list[str | None]:
    """Reads a UTF-8 text file (plain or gzip) into normalised lines.

    Returns:
        One entry per line; None where a line was not valid UTF-8 and `on_bad_line` is "skip"
        (so that aligned files stay aligned and the pair can be dropped as a whole).
    """
    path = Path(path)
    lines: list[str | None] = []
    try:
        with open_bytes(path) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    if on_bad_line == "skip":
                        lines.append(None)
                        if stats is not None:
                            stats.add("invalid UTF-8")
                        continue
                    raise DataError(
                        f"{path}:{number}: not valid UTF-8 (byte {err.start}: {err.reason})"
                    ) from err
                lines.append(normalize(text.lstrip("\ufeff") if number == 1 else text))
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such file") from err
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read ({err})") from err
    return lines


@dataclass
class ParallelCorpus:
    src: list[str]
    tgt: list[str]
    stats: ReadStats

    def __len__(self) -> int:
        return len(self.src)


def read_parallel(
    src_path: str | Path, tgt_path: str | Path, *, on_bad_line: str = "error"
) -> ParallelCorpus:
    """Reads two aligned files; different line counts are an error naming both files."""
    stats = ReadStats()
    src = read_lines(src_path, on_bad_line=on_bad_line, stats=stats)
    tgt = read_lines(tgt_path, on_bad_line=on_bad_line, stats=stats)
    if len(src) != len(tgt):
        raise DataError(
            f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
            "parallel files must be aligned line by line"
        )
    return _keep_complete_pairs(src, tgt, stats)


def read_tsv(path: str | Path, *, on_bad_line: str = "error") -> ParallelCorpus:
    """Reads `source<TAB>target` lines; a line without exactly one tab is an error (or skipped)."""
    stats = ReadStats()
    src: list[str | None] = []
    tgt: list[str | None] = []
    path = Path(path)
    try:
        with open_bytes(path) as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    text = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as err:
                    if on_bad_line == "error":
                        raise DataError(f"{path}:{number}: not valid UTF-8") from err
                    stats.add("invalid UTF-8")
                    continue
                parts = text.split("\t")
                if len(parts) != 2:
                    if on_bad_line == "error":
                        raise DataError(
                            f"{path}:{number}: expected 2 tab-separated columns, got {len(parts)}"
                        )
                    stats.add("wrong column count")
                    continue
                src.append(normalize(parts[0]))
                tgt.append(normalize(parts[1]))
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such file") from err
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read ({err})") from err
    return _keep_complete_pairs(src, tgt, stats)


def _keep_complete_pairs(
    src: Sequence[str | None], tgt: Sequence[str | None], stats: ReadStats
) -> ParallelCorpus:
    keep_src, keep_tgt = [], []
    for s, t in zip(src, tgt, strict=True):
        if s is None or t is None:
            continue
        keep_src.append(s)
        keep_tgt.append(t)
    return ParallelCorpus(keep_src, keep_tgt, stats)


def filter_pairs(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    *,
    max_len: int,
    max_ratio: float,
    stats: ReadStats,
) -> list[int]:
    """Indices of the pairs to train on; counts the others in `stats` by reason."""
    kept = []
    for i, (s, t) in enumerate(zip(src_ids, tgt_ids, strict=True)):
        if not s or not t:
            stats.add("empty side")
        elif len(s) > max_len or len(t) > max_len:
            stats.add(f"longer than max_len={max_len}")
        elif max(len(s), len(t)) > max_ratio * min(len(s), len(t)) and max(len(s), len(t)) > 5:
            # Very short pairs legitimately have large ratios ("Ja." -> "Yes, sir."), so the
            # ratio filter only applies once a side has more than 5 subwords.
            stats.add(f"length ratio above {max_ratio}")
        else:
            kept.append(i)
    return kept


def fingerprint(lines: Sequence[str]) -> str:
    """A short content hash, recorded in bundles so a model names the data it saw."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]
