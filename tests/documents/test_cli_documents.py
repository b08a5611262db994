"""`nmt translate --input FILE` on documents, with a tiny real bundle: the format comes from
the suffix (or --format), timings and code stay, and errors are one line."""

from __future__ import annotations

import pytest

from tests.support.cli import run_cli
from tests.support.tiny import write_tiny_bundle

SRT = ("1\n00:00:01,000 --> 00:00:02,500\nEin Mann fährt\nFahrrad.\n\n"
       "2\n00:00:03,000 --> 00:00:04,000\nDer Hund rennt.\n")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("models") / "tiny")


def test_srt_from_suffix_keeps_timings(bundle, tmp_path, capsys):
    src = tmp_path / "talk.de.srt"
    src.write_text(SRT)
    out = tmp_path / "talk.en.srt"
    code, _, err = run_cli(capsys, "translate", "--model", bundle, "--input", src,
                           "--output", out, "--quiet", "--beam", "1")
    assert code == 0, err
    lines, src_lines = out.read_text().split("\n"), SRT.split("\n")
    assert [lines[i] for i in (0, 1)] == [src_lines[i] for i in (0, 1)]
    assert out.read_text().count("-->") == 2 and "00:00:03,000 --> 00:00:04,000" in lines


def test_format_forces_markdown_and_keeps_code(bundle, tmp_path, capsys):
    src = tmp_path / "notes"
    src.write_text("# Der Hund\n\nEin Mann `pip install nmt` fährt.\n\n```\ncode bleibt\n```\n")
    code, out, err = run_cli(capsys, "translate", "--model", bundle, "--input", src,
                             "--format", "md", "--quiet")
    assert code == 0, err
    assert out.startswith("# ") and "`pip install nmt`" in out
    assert out.endswith("```\ncode bleibt\n```\n")


def test_broken_document_is_one_line_error(bundle, tmp_path, capsys):
    src = tmp_path / "bad.srt"
    src.write_text("1\n00:00:01 --> 00:00:02\nText\n")
    code, _, err = run_cli(capsys, "translate", "--model", bundle, "--input", src,
                           "--output", tmp_path / "o.srt")
    assert code == 2
    assert "bad.srt" in err and "line 2: broken timing" in err
    assert not (tmp_path / "o.srt").exists()
