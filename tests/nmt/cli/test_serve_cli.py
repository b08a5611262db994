"""Tests for `nmt serve`'s checks before uvicorn starts: a busy port fails first, naming it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn


@pytest.fixture
def uvicorn_calls(monkeypatch) -> Iterator[list[dict]]:
    """uvicorn.run, recorded instead of run; `nmt serve` also sets NMT_* variables in
    os.environ for the workers, which must not leak into later tests."""
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    saved = dict(os.environ)
    os.environ.pop("NMT_MODELS", None)
    yield calls
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_busy_port_fails_before_models_load_naming_host_and_port(nmt_cli, uvicorn_calls,
                                                                 busy_port: int,
                                                                 tmp_path: Path) -> None:
    # a missing --model would fail too: the port is checked first, before any bundle
    code, _, err = nmt_cli("serve", "--port", busy_port, "--model", tmp_path / "nowhere")
    assert code == 2 and err.count("\n") == 1, err
    assert f"cannot listen on 127.0.0.1:{busy_port}" in err and "already in use" in err
    assert "--port" in err and uvicorn_calls == []


def test_free_port_starts_uvicorn_there(nmt_cli, uvicorn_calls, bundle: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = nmt_cli("serve", "--port", port, "--model", bundle)
    assert code == 0, err
    assert [(c["host"], c["port"]) for c in uvicorn_calls] == [("127.0.0.1", port)]


def test_unresolvable_host_names_the_option(nmt_cli, uvicorn_calls) -> None:
    code, _, err = nmt_cli("serve", "--host", "no-such-host.invalid", "--port", "5999")
    assert code == 2 and "--host no-such-host.invalid: cannot resolve it" in err
    assert uvicorn_calls == []
