"""LM test fixtures (helpers live in toy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def write_text(tmp_path: Path):
    def write(name: str, lines: list[str]) -> str:
        path = tmp_path / name
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return str(path)

    return write
