"""Tests for benchmarks/report.py: figures in RESULTS.md come from the stored results, never
from numbers typed into the renderer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import report
from benchmarks.training import parameter_count
from benchmarks.workspace import machine_info
from nmt.checkpoint import load_model


def render(tmp_path: Path, *, gpu: str, parameters: dict[str, int]) -> str:
    stages = {
        "setup": {"machine": {"cpu": "test cpu", "gpu": gpu}, "nmt_commit": "abc"},
        "models": {"budget_minutes": 1, "checkpoints": {
            system: {"path": f"/x/{system}.pt", "step": 3, "parameters": n}
            for system, n in parameters.items()}},
    }
    out = tmp_path / "RESULTS.md"
    report.write(out, stages, quick=True, elapsed=0)
    return out.read_text(encoding="utf-8")


def test_parameter_counts_are_the_stored_ones(tmp_path: Path) -> None:
    text = render(tmp_path, gpu="none", parameters={"nmt": 1_234_567, "opennmt-py": 89})
    assert "| nmt | 1,234,567 |" in text and "| OpenNMT-py | 89 |" in text
    assert "| JoeyNMT | - |" in text  # not measured: no figure rather than a typed-in one
    assert "7,248,640" not in text


@pytest.mark.parametrize("gpu, no_gpu_line", [("none", True), ("none (old results)", True),
                                              ("NVIDIA H200", False)])
def test_the_gpu_section_follows_the_machine(tmp_path: Path, gpu: str, no_gpu_line: bool) -> None:
    text = render(tmp_path, gpu=gpu, parameters={})
    assert ("No GPU on this machine" in text) is no_gpu_line
    if not no_gpu_line:
        assert f"This machine has a GPU ({gpu})" in text


def test_machine_info_reports_the_gpu_torch_sees(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert machine_info()["gpu"] == "none"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"GPU{i}")
    assert machine_info()["gpu"] == "GPU0, GPU1"


def test_nmt_parameters_are_counted_from_the_bundle(tiny_bundle: Path) -> None:
    model = load_model(tiny_bundle).model
    assert parameter_count("nmt", tiny_bundle) == sum(p.numel() for p in model.parameters())
