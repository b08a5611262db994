import json
import subprocess
import sys

from tests.support.cli import write_lines
from tests.support.tiny import synthetic_lines

REFS = synthetic_lines(30, seed=21)
SRCS = synthetic_lines(30, seed=22)


def _sacrebleu(ref, hyp) -> list[float]:
    done = subprocess.run([sys.executable, "-m", "sacrebleu", str(ref), "-i", str(hyp), "-m",
                           "bleu", "chrf", "ter", "-b"], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout)


def test_score_existing_outputs_like_sacrebleu(nmt_cli, tmp_path):
    ref = write_lines(tmp_path / "test.en", REFS)
    a = write_lines(tmp_path / "a.en", [" ".join(r.split()[:-1]) or r for r in REFS])
    b = write_lines(tmp_path / "b.en", [r.lower() for r in REFS])
    src = write_lines(tmp_path / "test.de", SRCS)
    code, out, err = nmt_cli("evaluate", "--hyp", a, b, "--ref", ref, "--src", src,
                             "--report", tmp_path / "compare", "--bootstrap", "100")
    assert code == 0, err
    report = json.loads((tmp_path / "compare" / "report.json").read_text())
    for system, hyp in zip(report["systems"], (a, b), strict=True):
        ours = [round(system["scores"][m]["score"], 1) for m in ("bleu", "chrf", "ter")]
        assert ours == _sacrebleu(ref, hyp)
        assert system["scores"]["bleu"]["ci_radius"] is not None
    assert report["significance"][0]["system"] == "b.en"
    assert report["length_basis"] == "source words"
    assert "| a.en |" in out
    assert (tmp_path / "compare" / "bleu_by_length.png").read_bytes()[:4] == b"\x89PNG"


def test_decode_and_report(nmt_cli, bundle, tmp_path):
    src, ref = write_lines(tmp_path / "test.de", SRCS), write_lines(tmp_path / "test.en", REFS)
    out_dir = tmp_path / "report"
    code, out, err = nmt_cli("evaluate", "--model", bundle, "--src", src, "--ref", ref,
                             "--beam", "1", "2", "--report", out_dir, "--bootstrap", "50",
                             "--attention-examples", "2", "--quiet")
    assert code == 0, err
    report = json.loads((out_dir / "report.json").read_text())
    assert [s["name"] for s in report["systems"]] == ["beam1", "beam2"]
    assert report["systems"][1]["settings"]["beam_size"] == 2
    assert report["model"]["src_lang"] == "de"
    for beam in (1, 2):
        hyp = out_dir / f"hyp.beam{beam}.en"
        assert len(hyp.read_text(encoding="utf-8").splitlines()) == len(SRCS)
    assert len(report["attention"]) == 2
    for name in ("attention_1.png", "attention_2.png", "bleu_by_length.png"):
        assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "beam2" in (out_dir / "report.md").read_text()


def test_clear_errors(nmt_cli, bundle, tmp_path):
    ref = write_lines(tmp_path / "test.en", REFS)
    short = write_lines(tmp_path / "short.en", REFS[:-1])
    code, _, err = nmt_cli("evaluate", "--hyp", short, "--ref", ref)
    assert code == 2 and "short.en has 29 lines but" in err and "test.en has 30" in err
    code, _, err = nmt_cli("evaluate", "--hyp", tmp_path / "none.en", "--ref", ref)
    assert code == 2 and "hypothesis file" in err and "none.en: no such file" in err
    write_lines(tmp_path / "empty.en", [])
    code, _, err = nmt_cli("evaluate", "--hyp", short, "--ref", tmp_path / "empty.en")
    assert code == 2 and "reference file" in err and "empty.en is empty" in err
    code, _, err = nmt_cli("evaluate", "--model", bundle, "--ref", ref)
    assert code == 2 and "--model needs --src" in err
    code, _, err = nmt_cli("evaluate", "--model", bundle, "--hyp", short, "--ref", ref)
    assert code == 2 and "either --model" in err
    code, _, err = nmt_cli("evaluate", "--model", tmp_path, "--src", ref, "--ref", ref)
    assert code == 2 and str(tmp_path) in err and "not a model bundle" in err
