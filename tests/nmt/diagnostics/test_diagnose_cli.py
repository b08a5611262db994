"""CLI smoke test: `nmt diagnose gradients` on a tiny config writes its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nmt.cli import main


def test_diagnose_gradients_writes_report(capsys, tmp_path: Path, write_toy_corpus,
                                          tiny_config) -> None:
    raw = tiny_config(write_toy_corpus(n_train=60, n_valid=10))
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    report = tmp_path / "report"
    main(["diagnose", "gradients", "--config", str(config), "--cells", "rnn", "lstm",
          "--report", str(report), "--src-len", "30", "--tgt-len", "8", "--batch-size", "2",
          "--steps", "2"])
    out = capsys.readouterr().out
    assert "rnn" in out and "lstm" in out
    data = json.loads((report / "report.json").read_text())
    assert set(data["cells"]) == {"rnn", "lstm"}
    assert len(data["cells"]["rnn"]["step_grad_norms"]["untrained"]) == 30
    assert len(data["cells"]["lstm"]["train_grad_norms"]["unclipped"]) == 2
    assert data["model"]["bidirectional"] is False and data["model"]["attention"] == "none"
    assert (report / "gradient_per_step.png").stat().st_size > 0
    assert (report / "grad_norm_training.png").stat().st_size > 0


def test_diagnose_rejects_bad_arguments(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["diagnose", "gradients", "--config", str(tmp_path / "none.yaml"), "--report",
              str(tmp_path / "r")])
    assert exit_.value.code == 2
    assert "none.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["diagnose", "gradients", "--config", "configs/multi30k-de-en.yaml", "--report",
              str(tmp_path / "r"), "--src-len", "1"])
    assert exit_.value.code == 2
    assert "--src-len" in capsys.readouterr().err
