"""Tests for nmt.data.corpus: reading (gz, plain, TSV), normalisation, errors, counted filtering."""

from __future__ import annotations

import gzip
import unicodedata
from pathlib import Path

import pytest

from nmt.data.corpus import (
    DataError,
    ReadStats,
    filter_pairs,
    fingerprint,
    normalize,
    read_lines,
    read_parallel,
    read_tsv,
)

LINES = ["ein Hund rennt", "die Katze schläft", "Grüße aus Köln"]


def write(path: Path, data: bytes, *, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_reads_plain_and_gzip_alike(tmp_path: Path, gz: bool) -> None:
    # The format is sniffed from the content, not the file name.
    path = write(tmp_path / "text.txt", "\n".join(LINES).encode() + b"\n", gz=gz)
    assert read_lines(path) == LINES


def test_normalize_nfc_and_whitespace() -> None:
    decomposed = unicodedata.normalize("NFD", "Grüße")
    assert decomposed != "Grüße"
    assert normalize(f"  {decomposed}\t aus\u00a0\u00a0Köln \r\n") == "Grüße aus Köln"


def test_read_lines_normalises_and_strips_bom(tmp_path: Path) -> None:
    raw = "\ufeff  ein   Hund\r\n" + unicodedata.normalize("NFD", "Grüße") + "\t\n"
    path = write(tmp_path / "a.txt", raw.encode())
    assert read_lines(path) == ["ein Hund", "Grüße"]


def test_mismatched_line_counts_name_both_files(tmp_path: Path) -> None:
    src = write(tmp_path / "train.de", b"a\nb\nc\n")
    tgt = write(tmp_path / "train.en", b"a\nb\n")
    with pytest.raises(DataError) as info:
        read_parallel(src, tgt)
    message = str(info.value)
    assert "train.de" in message and "train.en" in message
    assert "3" in message and "2" in message


def test_invalid_utf8_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.txt", b"fine\nalso fine\nbroken \xff\xfe here\n")
    with pytest.raises(DataError, match=r"bad\.txt:3"):
        read_lines(path)


def test_invalid_utf8_skip_drops_the_pair_and_keeps_alignment(tmp_path: Path) -> None:
    src = write(tmp_path / "s.txt", b"s1\ns2 \xff\ns3\ns4\n")
    tgt = write(tmp_path / "t.txt", b"t1\nt2\nt3\nt4 \xc3\x28\n")
    with pytest.raises(DataError, match=r"s\.txt:2"):
        read_parallel(src, tgt)
    corpus = read_parallel(src, tgt, on_bad_line="skip")
    assert list(zip(corpus.src, corpus.tgt, strict=True)) == [("s1", "t1"), ("s3", "t3")]
    assert corpus.stats.counts["invalid UTF-8"] == 2
    assert len(corpus) + sum(corpus.stats.counts.values()) == 4


def test_missing_file_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.txt"):
        read_lines(tmp_path / "nope.txt")


def test_truncated_gzip_is_data_error(tmp_path: Path) -> None:
    data = gzip.compress(("\n".join(LINES * 50)).encode())
    path = write(tmp_path / "cut.gz", data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_lines(path)


@pytest.mark.parametrize("gz", [False, True])
def test_tsv_reads_pairs(tmp_path: Path, gz: bool) -> None:
    path = write(tmp_path / "p.tsv", b"ein  Hund\ta dog\r\nKatze\tcat\n", gz=gz)
    corpus = read_tsv(path)
    assert corpus.src == ["ein Hund", "Katze"]
    assert corpus.tgt == ["a dog", "cat"]


@pytest.mark.parametrize("line", [b"only one column", b"a\tb\tc"])
def test_tsv_wrong_column_count_names_file_and_line(tmp_path: Path, line: bytes) -> None:
    path = write(tmp_path / "p.tsv", b"x\ty\n" + line + b"\nz\tw\n")
    with pytest.raises(DataError, match=r"p\.tsv:2.*columns"):
        read_tsv(path)
    corpus = read_tsv(path, on_bad_line="skip")
    assert list(zip(corpus.src, corpus.tgt, strict=True)) == [("x", "y"), ("z", "w")]
    assert corpus.stats.counts["wrong column count"] == 1


def test_tsv_invalid_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "p.tsv", b"x\ty\n\xff\tq\n")
    with pytest.raises(DataError, match=r"p\.tsv:2"):
        read_tsv(path)
    corpus = read_tsv(path, on_bad_line="skip")
    assert corpus.src == ["x"] and corpus.stats.counts["invalid UTF-8"] == 1


def test_filter_counts_every_dropped_pair() -> None:
    ok = ([5, 6, 7], [8, 9])
    pairs = [
        ok,
        ([], [4]),  # empty source
        ([4], []),  # empty target
        ([4] * 11, [4] * 3),  # over max_len
        ([4] * 9, [4, 5]),  # ratio 4.5 > 3 with a side over 5 tokens
        ([4, 5, 6], [7]),  # ratio 3 but short: kept
        ([4] * 10, [4] * 10),  # exactly max_len: kept
    ]
    stats = ReadStats()
    kept = filter_pairs([p[0] for p in pairs], [p[1] for p in pairs], max_len=10, max_ratio=3.0,
                        stats=stats)
    assert kept == [0, 5, 6]
    assert stats.counts["empty side"] == 2
    assert stats.counts["longer than max_len=10"] == 1
    assert stats.counts["length ratio above 3.0"] == 1
    assert len(kept) + sum(stats.counts.values()) == len(pairs)


def test_fingerprint_depends_on_content_and_order() -> None:
    assert fingerprint(LINES) == fingerprint(list(LINES))
    assert fingerprint(LINES) != fingerprint(LINES[::-1])
    assert fingerprint(["ab", "c"]) != fingerprint(["a", "bc"])
