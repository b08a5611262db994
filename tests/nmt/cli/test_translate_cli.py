import io
import subprocess
import sys

from nmt.translator import Translator
from tests.support.cli import write_lines
from tests.support.tiny import synthetic_lines

LINES = synthetic_lines(6, seed=9) + ["", "Ünïcödé 😀 漢字", "   "]


def test_stdin_to_stdout(nmt_cli, bundle, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("Ein Mann fährt Fahrrad.\n"
                                                                  .encode())))
    code, out, err = nmt_cli("translate", "--model", bundle, "--beam", "2")
    assert code == 0, err
    expected = Translator.from_checkpoint(bundle).translate(["Ein Mann fährt Fahrrad."],
                                                            beam_size=2)[0].text
    assert out == expected + "\n"


def test_file_to_file_keeps_one_line_per_input_line(nmt_cli, bundle, tmp_path):
    src = write_lines(tmp_path / "test.de", LINES)
    hyp = tmp_path / "hyp.en"
    code, out, err = nmt_cli("translate", "--model", bundle, "--input", src, "--output", hyp,
                             "--beam", "3", "--batch-tokens", "10", "--threads", "1")
    assert code == 0, err
    lines = hyp.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(LINES)
    expected = Translator.from_checkpoint(bundle).translate(LINES, beam_size=3)
    assert lines[:-1] == [t.text for t in expected]
    assert lines[6] == "" and lines[8] == "   "  # whitespace-only lines come back as they were


def test_nbest_tsv(nmt_cli, bundle, tmp_path):
    src = write_lines(tmp_path / "test.de", LINES)
    code, out, err = nmt_cli("translate", "-m", bundle, "-i", src, "--beam", "4", "--nbest", "3",
                             "--quiet")
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert all(len(r) == 3 for r in rows)
    indices = [int(r[0]) for r in rows]
    assert sorted(set(indices)) == list(range(len(LINES))) and indices == sorted(indices)
    for i in range(len(LINES)):
        scores = [float(r[1]) for r in rows if int(r[0]) == i]
        assert scores == sorted(scores, reverse=True) and 1 <= len(scores) <= 3
    assert sum(int(r[0]) == 0 for r in rows) == 3


def test_int8(nmt_cli, bundle, tmp_path):
    src = write_lines(tmp_path / "test.de", LINES[:3])
    code, out, err = nmt_cli("translate", "-m", bundle, "-i", src, "--quantize", "int8", "-q")
    assert code == 0, err
    assert len(out.splitlines()) == 3


def test_help_documents_the_nbest_format(nmt_cli):
    code, out, _ = nmt_cli("translate", "--help")
    assert code == 0 and "INDEX<TAB>SCORE<TAB>TEXT" in out


def test_clear_errors(nmt_cli, bundle, tmp_path):
    code, _, err = nmt_cli("translate", "-m", bundle, "-i", tmp_path / "missing.de")
    assert code == 2 and "missing.de: no such file" in err
    code, _, err = nmt_cli("translate", "-m", tmp_path / "nowhere", "-i", write_lines(
        tmp_path / "a.de", ["x"]))
    assert code == 2 and "nowhere" in err
    code, _, err = nmt_cli("translate", "-m", bundle, "--beam", "2", "--nbest", "3")
    assert code == 2 and "--nbest 3 is larger than --beam 2" in err
    (tmp_path / "latin1.de").write_bytes("größe\n".encode("latin-1"))
    code, _, err = nmt_cli("translate", "-m", bundle, "-i", tmp_path / "latin1.de")
    assert code == 2 and "latin1.de: line 1 is not valid UTF-8" in err


def test_python_dash_m_nmt(bundle):
    done = subprocess.run([sys.executable, "-m", "nmt", "translate", "--model", str(bundle),
                           "--beam", "1", "--threads", "1"], input="Der Hund rennt.\n\n",
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split("\n")) == 3 and done.stdout.endswith("\n\n")


def test_stream_answers_each_line_before_the_next_arrives(bundle) -> None:
    """Interactive mode (`--stream`): line N's answer comes back while line N+1 is unwritten."""
    import os
    import select
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "nmt", "translate", "-m", str(bundle), "--stream", "--beam", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for line in ("der hund rennt", "die katze schläft. der vogel"):
            proc.stdin.write((line + "\n").encode())
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no answer to {line!r} while stdin stayed open"
            answer = proc.stdout.readline().decode()
            assert answer.endswith("\n") and "\n" not in answer[:-1]
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert proc.stdout.read() == b""
    finally:
        proc.kill()
