"""Serving installs neither TensorBoard nor matplotlib: nothing it imports needs them, and the
code that does (training's log, report plots) says which extra to install when one is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmt.runtime import MissingDependency

REPO = Path(__file__).resolve().parents[2]


def test_serving_imports_neither_tensorboard_nor_matplotlib() -> None:
    code = ("import sys, service.main, nmt.translator, nmt.cli; "
            "nmt.cli.build_parser(); from service.main import create_app; create_app(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('matplotlib', 'tensorboard') or m == 'torch.utils.tensorboard'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.fixture
def without(monkeypatch):
    """Makes `import NAME` fail for the given top-level modules, as when they are not installed."""

    def hide(*names: str) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in names or name == "torch.utils.tensorboard":
                monkeypatch.delitem(sys.modules, name)
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)  # None: import raises ImportError
        if "tensorboard" in names:
            monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)

    return hide


def test_plots_without_matplotlib_name_the_report_extra(without, tmp_path: Path) -> None:
    from nmt.evaluation.plots import plot_attention

    without("matplotlib")
    with pytest.raises(MissingDependency, match=r"drawing report plots needs matplotlib.*"
                                                r"pip install 'nmt\[report\]'"):
        plot_attention(["a"], ["b"], [[1.0]], tmp_path / "a.png")


def test_logbook_without_tensorboard_names_the_train_extra(without, tmp_path: Path) -> None:
    from nmt.training.logbook import Logbook

    without("tensorboard")
    with pytest.raises(MissingDependency, match=r"tensorboard.*pip install 'nmt\[train\]'"):
        Logbook(tmp_path)


def test_nmt_train_without_tensorboard_is_one_line_before_any_work(
        without, tmp_path: Path, capsys: pytest.CaptureFixture[str], write_toy_corpus,
        tiny_config) -> None:
    import yaml

    from nmt.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config(write_toy_corpus(n_train=10, n_valid=0))))
    without("tensorboard")
    with pytest.raises(SystemExit) as info:
        main(["train", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert "nmt train: error: training's TensorBoard log needs tensorboard" in err
    assert not (tmp_path / "run").exists()  # failed before the run directory was made
    assert "pip install 'nmt[train]'" in err
