"""Tests for benchmarks/decoding.py: every worker's output files stay in the run's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.decoding import worker_argv
from benchmarks.workspace import Workspace


@pytest.mark.parametrize("system", ["nmt", "opennmt-py", "joeynmt"])
def test_worker_output_files_are_named_inside_the_out_dir(tmp_path: Path, system: str) -> None:
    out_dir = tmp_path / "decoding"
    argv = worker_argv(system, str(tmp_path / "model"), Workspace(tmp_path / "ws"),
                       out_dir=out_dir)
    if system == "opennmt-py":
        # OpenNMT-py opens -output (default "pred.txt" in the current directory) on start-up.
        output = Path(argv[argv.index("-output") + 1])
        assert output.is_absolute() and output.parent == out_dir
    assert "pred.txt" not in " ".join(argv)
