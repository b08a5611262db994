"""CLI smoke tests: `nmt lm train | sample | evaluate` on tiny configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nmt.cli import main
from tests.support.tiny_lm import caption_lines, tiny_lm_config


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def lm_config_file(tmp_path: Path, write_text) -> Path:
    cfg = tiny_lm_config(write_text("train.txt", caption_lines(80, 1)),
                         write_text("valid.txt", caption_lines(10, 2)),
                         train={"epochs": 1, "valid_every": 10, "max_steps": 20})
    path = tmp_path / "lm.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()), encoding="utf-8")
    return path


def test_train_sample_evaluate_resume(capsys, tmp_path: Path, lm_config_file: Path) -> None:
    run_dir = tmp_path / "run"
    code, out, err = run(capsys, "lm", "train", "--config", lm_config_file, "--run-dir", run_dir,
                         "--set", "model.cell=gru")
    assert code == 0, err
    assert f"LM bundle: {run_dir / 'bundle'}" in out
    assert (run_dir / "metrics.jsonl").exists() and (run_dir / "checkpoints" / "best.pt").exists()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"valid_ppl", "valid_bpc"} <= set(next(r for r in records if r["kind"] == "valid"))

    code, out, err = run(capsys, "lm", "sample", "--model", run_dir / "bundle", "--prompt",
                         "A man", "--length", "30", "--temperature", "0.8", "--seed", "3")
    assert code == 0, err
    assert out.startswith("A man") and len(out.rstrip("\n")) >= len("A man")
    again = run(capsys, "lm", "sample", "--model", run_dir / "bundle", "--prompt", "A man",
                "--length", "30", "--temperature", "0.8", "--seed", "3")[1]
    assert again == out

    text = tmp_path / "valid.txt"
    code, out, err = run(capsys, "lm", "evaluate", "--model", run_dir / "bundle", "--text", text,
                         "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert scores["tokens"] == scores["chars"] and 0 < scores["bpc"] < 8

    # Resume continues the finished run without error (no steps left).
    code, out, err = run(capsys, "lm", "train", "--resume", run_dir)
    assert code == 0, err


def test_user_errors_are_one_line(capsys, tmp_path: Path, lm_config_file: Path) -> None:
    code, _, err = run(capsys, "lm", "train", "--config", tmp_path / "missing.yaml")
    assert code == 2 and "missing.yaml" in err
    code, _, err = run(capsys, "lm", "train", "--config", lm_config_file, "--set", "model.cell=x")
    assert code == 2 and "model.cell" in err
    code, _, err = run(capsys, "lm", "sample", "--model", tmp_path / "nowhere")
    assert code == 2 and "nowhere" in err
    code, _, err = run(capsys, "lm", "train", "--config", "configs/multi30k-de-en.yaml")
    assert code == 2 and "nmt train" in err


def test_resume_continues_exactly(capsys, tmp_path: Path, lm_config_file: Path) -> None:
    """10 steps, then --resume to 20, ends with the same weights as 20 steps in one go."""
    import torch

    common = ["--set", "train.valid_every=5", "--set", "model.dropout=0.2"]
    assert run(capsys, "lm", "train", "--config", lm_config_file, "--run-dir", tmp_path / "a",
               *common, "--set", "train.max_steps=20")[0] == 0
    assert run(capsys, "lm", "train", "--config", lm_config_file, "--run-dir", tmp_path / "b",
               *common, "--set", "train.max_steps=10")[0] == 0
    code, _, err = run(capsys, "lm", "train", "--resume", tmp_path / "b", "--set",
                       "train.max_steps=20")
    assert code == 0, err
    a = torch.load(tmp_path / "a" / "checkpoints" / "step_00000020.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "checkpoints" / "step_00000020.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["carried_state"]["hidden"], b["carried_state"]["hidden"])


def test_ctrl_c_reports_where_lm_training_stopped(capsys, tmp_path: Path, lm_config_file: Path,
                                                  monkeypatch) -> None:
    """The shared loop's interrupt report, with the LM's resume command."""
    from nmt.lm.trainer import LMTrainer

    real_step = LMTrainer.train_step

    def step_until_interrupted(self: LMTrainer, win):
        if self.pos.step == 12:
            raise KeyboardInterrupt
        return real_step(self, win)

    monkeypatch.setattr(LMTrainer, "train_step", step_until_interrupted)
    run_dir = tmp_path / "run"
    code, _, err = run(capsys, "lm", "train", "--config", lm_config_file, "--run-dir", run_dir)
    assert code == 130
    newest = run_dir / "checkpoints" / "step_00000010.pt"
    assert newest.is_file()
    line = err.strip().splitlines()[-1]
    assert line.startswith("nmt lm: SIGINT received: stopped at step 12 (epoch 1, 12 ")
    assert f"the newest checkpoint is {newest} (step 10, 2 steps before that)" in line
    assert f"`nmt lm train --resume {run_dir}` continues from it" in line
