"""Reliability test fixtures: a tiny real bundle (random weights) and a live `nmt serve`."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fuzz_api import make_tiny_bundle


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A de->en bundle with random weights: translations are nonsense, but deterministic."""
    return make_tiny_bundle(tmp_path_factory.mktemp("models") / "tiny-de-en")
