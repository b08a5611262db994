"""Shared test fixtures: toy parallel data, tiny configs and a tiny bundle, all seeded.

Helpers that tests import (rather than request as fixtures) live in tests/support/.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.support.tiny import write_tiny_bundle

# Every `nmt serve` the tests start (and the benchmarks' --quick runs) decodes in its own process
# unless the test asks for model worker processes: each worker is one more interpreter and torch
# to start, and most of those tests are about HTTP. tests/service/test_model_workers.py and
# tests/deploy/test_replicas.py ask for them.
os.environ.setdefault("NMT_MODEL_PROCESSES", "0")

# A toy "language pair": each source word has one target word, and the target reverses the order.
TOY_LEXICON = {
    "der": "the", "hund": "dog", "katze": "cat", "rennt": "runs", "schläft": "sleeps",
    "rot": "red", "blau": "blue", "groß": "big", "klein": "small", "vogel": "bird",
}


# Tests that skip themselves when a tool is missing, by the name NMT_REQUIRE uses for them. CI
# sets NMT_REQUIRE=browser,hadolint,redis,nginx,httperf,wrk (.ci/run): there each named test must
# run and pass, or the session fails, so a CI machine that lost chromium or hadolint cannot pass
# by skipping. (redis, nginx, httperf and wrk: tests/support/system.py also fails, not skips, any
# test that needs the missing program.)
REQUIRABLE = {
    "browser": "tests/service/test_web_page.py::",
    "hadolint": "tests/service/test_dockerfile.py::test_hadolint_is_clean",
    "redis": "tests/deploy/test_shared_limits.py::test_the_rate_limit_holds_across_two_workers",
    "nginx": "tests/deploy/test_configs.py::test_nginx_accepts_the_config",
    "httperf": "tests/benchmarks/test_open_loop.py::test_quick_run",
    "wrk": "tests/benchmarks/test_replicas.py::test_quick_run",
}


_PASSED: set[str] = set()  # node ids of tests that ran and passed in this session


def _required() -> dict[str, str]:
    names = [n.strip() for n in os.environ.get("NMT_REQUIRE", "").split(",") if n.strip()]
    unknown = sorted(set(names) - set(REQUIRABLE))
    if unknown:
        raise pytest.UsageError(f"NMT_REQUIRE: unknown test name(s) {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(REQUIRABLE))}")
    return {name: REQUIRABLE[name] for name in names}


def pytest_configure(config: pytest.Config) -> None:
    _required()  # an unknown name stops the run before any test


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        _PASSED.add(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if hasattr(session.config, "workerinput"):
        return  # a pytest-xdist worker sees only its share; the controller checks them all
    missing = [f"{name} ({prefix})" for name, prefix in _required().items()
               if not any(nodeid.startswith(prefix) for nodeid in _PASSED)]
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"NMT_REQUIRE: required tests skipped or not run: "
                                f"{', '.join(missing)} (their skip reasons are listed above)",
                                red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Tiny models run faster single-threaded, and two cores are shared by the whole suite.
    torch.set_num_threads(1)


def toy_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """`n` sentence pairs: 2-6 random source words, target = the words translated, reversed."""
    rng = random.Random(seed)
    words = sorted(TOY_LEXICON)
    pairs = []
    for _ in range(n):
        src = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        pairs.append((" ".join(src), " ".join(TOY_LEXICON[w] for w in reversed(src))))
    return pairs


def write_toy_files(data_dir: Path, *, n_train: int = 200, n_valid: int = 20, tsv: bool = False,
                    seed: int = 0) -> dict[str, str]:
    """Writes train (and valid) toy pairs into `data_dir` as aligned files or TSV; returns the
    data-config keys."""
    data_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for split, n, s in (("train", n_train, seed), ("valid", n_valid, seed + 1)):
        if n == 0:
            continue
        pairs = toy_pairs(n, s)
        if tsv:
            path = data_dir / f"{split}.tsv"
            path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
            out[f"{split}_tsv"] = str(path)
        else:
            for side, idx in (("src", 0), ("tgt", 1)):
                path = data_dir / f"{split}.{side}"
                path.write_text("".join(p[idx] + "\n" for p in pairs), encoding="utf-8")
                out[f"{split}_{side}"] = str(path)
    return out


@pytest.fixture
def write_toy_corpus(tmp_path: Path) -> Callable[..., dict[str, str]]:
    """`write_toy_files` into the test's tmp_path/data."""

    def write(**options: Any) -> dict[str, str]:
        return write_toy_files(tmp_path / "data", **options)

    return write


def tiny_config_dict(data_files: dict[str, str], /, **sections: dict[str, Any]) -> dict[str, Any]:
    """A config dict for a seconds-long CPU run; `sections` update the defaults per section."""
    raw: dict[str, Any] = {
        "name": "tiny",
        "data": {**data_files, "max_len": 40},
        "tokenizer": {"type": "unigram", "vocab_size": 40},
        "model": {"cell": "gru", "emb_dim": 16, "enc_hidden": 16, "dec_hidden": 16,
                  "attn_dim": 16, "dropout": 0.0, "emb_dropout": 0.0},
        "train": {"seed": 7, "max_tokens": 300, "max_sentences": 32, "epochs": 2, "lr": 0.01,
                  "valid_every": 0, "valid_metric": "loss", "log_every": 5, "keep_last": 2,
                  "label_smoothing": 0.0},
        "decode": {"beam_size": 2, "max_len_b": 5},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return raw


@pytest.fixture
def tiny_config() -> Callable[..., dict[str, Any]]:
    """Factory fixture for `tiny_config_dict`, so tests need not import this module."""
    return tiny_config_dict


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A de->en bundle with random weights: translations are nonsense, but deterministic."""
    return write_tiny_bundle(tmp_path_factory.mktemp("models") / "tiny-de-en")


@pytest.fixture
def toy_pairs_factory() -> Callable[[int, int], list[tuple[str, str]]]:
    return toy_pairs
