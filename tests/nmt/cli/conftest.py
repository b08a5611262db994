"""Fixtures shared by the translate and evaluate CLI tests: a tiny bundle and an in-process CLI."""

import pytest

from tests.support.cli import run_cli
from tests.support.tiny import write_tiny_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("cli") / "bundle", seed=3)


@pytest.fixture
def nmt_cli(capsys):
    return lambda *args: run_cli(capsys, *args)
