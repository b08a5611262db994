"""Tests for `nmt train` (and the translate hand-off): user errors are one line and exit 2; a
character-level model trains and translates end to end through the command line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nmt.checkpoint import load_model
from nmt.cli import main
from nmt.tokenization import EOS_ID
from nmt.translator import Translator

REPO = Path(__file__).resolve().parents[3]


def run_cli(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "nmt", *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300)


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_bad_config_is_one_line_exit_2_no_traceback(tmp_path: Path, write_toy_corpus,
                                                    tiny_config) -> None:
    raw = tiny_config(write_toy_corpus(n_train=10, n_valid=0))
    raw["model"]["cell"] = "transformer"
    config = write_config(tmp_path / "bad.yaml", raw)
    result = run_cli(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")],
                     cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nmt train: error:")
    assert "model.cell" in lines[0] and "lstm" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.parametrize(
    "setup, extra, words",
    [
        ("missing", [], "cannot read config file"),
        ("invalid-yaml", [], "invalid YAML"),
        ("ok", ["--set", "train.lr=fast"], "train.lr"),
        ("ok", ["--set", "model.attention=cnn"], "bahdanau"),
        ("missing-data", [], "no such file"),
    ],
)
def test_user_errors_exit_2_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       write_toy_corpus, tiny_config, setup: str,
                                       extra: list[str], words: str) -> None:
    raw = tiny_config(write_toy_corpus(n_train=10, n_valid=0))
    config = tmp_path / "c.yaml"
    if setup == "invalid-yaml":
        config.write_text("train: [unclosed\n", encoding="utf-8")
    elif setup == "missing-data":
        raw["data"]["train_src"] = str(tmp_path / "nowhere.src")
        write_config(config, raw)
    elif setup == "ok":
        write_config(config, raw)
    with pytest.raises(SystemExit) as info:
        main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run"), *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("nmt train: error:")
    assert words in err


def test_resume_of_a_non_run_directory_exits_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--resume", str(tmp_path)])
    assert info.value.code == 2
    assert "config.yaml" in capsys.readouterr().err


def test_char_model_trains_and_translates_via_cli(tmp_path: Path, write_toy_corpus,
                                                  tiny_config) -> None:
    raw = tiny_config(write_toy_corpus(n_train=120, n_valid=8),
                      tokenizer={"type": "char"}, data={"max_len": 60},
                      train={"max_steps": 8, "valid_every": 4, "max_tokens": 800})
    config = write_config(tmp_path / "tiny.yaml", raw)
    run_dir = tmp_path / "run"
    result = run_cli(["train", "--config", str(config), "--run-dir", str(run_dir)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    bundle = run_dir / "bundle"
    assert f"model bundle: {bundle}" in result.stdout

    loaded = load_model(bundle)
    tok = loaded.tgt_tokenizer
    pieces = [tok.id_to_piece(i) for i in range(EOS_ID + 1, tok.vocab_size)]
    assert pieces and all(len(p) == 1 for p in pieces)  # a character vocabulary

    texts = ["der hund rennt", "katze blau", ""]
    translations = Translator.from_checkpoint(bundle).translate(texts, beam_size=2)
    assert len(translations) == len(texts)
    assert all(isinstance(t.text, str) for t in translations)
    assert set("".join(t.text for t in translations)) <= set(pieces) | {" "}

    # the same model through `nmt translate`, file in, file out
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    main(["translate", "--model", str(bundle), "--input", str(tmp_path / "in.txt"),
          "--output", str(out), "--beam", "2", "--quiet"])
    assert out.read_text(encoding="utf-8").split("\n")[:-1] == [t.text for t in translations]


def test_ctrl_c_says_where_training_stopped_and_which_checkpoint_holds_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch, write_toy_corpus,
        tiny_config) -> None:
    from nmt.training.trainer import Trainer

    real_step = Trainer.train_step

    def step_until_interrupted(self: Trainer, batch):
        if self.pos.step == 9:  # Ctrl-C during the 10th step, in the second epoch
            raise KeyboardInterrupt
        return real_step(self, batch)

    monkeypatch.setattr(Trainer, "train_step", step_until_interrupted)
    raw = tiny_config(write_toy_corpus(n_train=120, n_valid=8),
                      train={"valid_every": 4, "epochs": 50})
    config = write_config(tmp_path / "tiny.yaml", raw)
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["train", "--config", str(config), "--run-dir", str(run_dir)])
    assert info.value.code == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    newest = run_dir / "checkpoints" / "step_00000008.pt"
    assert newest.is_file()
    assert err.startswith("nmt train: SIGINT received: stopped at step 9 (epoch 2, ")
    assert f"the newest checkpoint is {newest} (step 8, 1 steps before that)" in err
    assert f"`nmt train --resume {run_dir}` continues from it" in err


def test_sigterm_stops_training_with_the_same_report(tmp_path: Path, write_toy_corpus,
                                                     tiny_config) -> None:
    raw = tiny_config(write_toy_corpus(n_train=120, n_valid=8),
                      train={"valid_every": 3, "epochs": 10_000})
    config = write_config(tmp_path / "tiny.yaml", raw)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nmt", "train", "--config", str(config),
                             "--run-dir", str(run_dir)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list((run_dir / "checkpoints").glob("step_*.pt")):
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint came"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    match = re.fullmatch(r"nmt train: SIGTERM received: stopped at step (\d+) \(epoch (\d+), "
                         r"\d+ batches into it\); the newest checkpoint is (\S+) \(step (\d+), "
                         r".*\): `nmt train --resume (\S+)` continues from it", last)
    assert match, last
    step, _, path, ckpt_step, resume_dir = match.groups()
    assert Path(path).is_file() and Path(path).parent == run_dir / "checkpoints"
    assert int(ckpt_step) <= int(step) and Path(resume_dir) == run_dir
    assert "Traceback" not in stderr
