"""Evaluation test fixtures: references and two imperfect systems, written to files."""

from __future__ import annotations

import random

import pytest

from tests.support.tiny import synthetic_lines


def perturb(lines: list[str], *, seed: int, rate: float) -> list[str]:
    """Drops or swaps words at `rate`, so scores land strictly between 0 and 100."""
    rng = random.Random(seed)
    out = []
    for line in lines:
        words = line.split()
        words = [w for w in words if rng.random() > rate] or words[:1]
        if len(words) > 2 and rng.random() < rate:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        out.append(" ".join(words))
    return out


@pytest.fixture(scope="session")
def refs() -> list[str]:
    return synthetic_lines(60, seed=11)


@pytest.fixture(scope="session")
def good(refs) -> list[str]:
    return perturb(refs, seed=1, rate=0.1)


@pytest.fixture(scope="session")
def bad(refs) -> list[str]:
    return perturb(refs, seed=2, rate=0.5)


@pytest.fixture
def write_lines(tmp_path):
    def write(name: str, lines: list[str]) -> str:
        path = tmp_path / name
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        return str(path)

    return write
