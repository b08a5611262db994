"""Tests for `nmt serve`'s checks before uvicorn starts (a busy port fails first, naming it; a
bad bundle is one line, or skipped) and the transport limits it hands uvicorn."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import uvicorn


@pytest.fixture
def uvicorn_calls(monkeypatch) -> Iterator[list[dict]]:
    """uvicorn.run, recorded instead of run; `nmt serve` also sets NMT_* variables in
    os.environ for the workers, which must not leak into later tests."""
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    saved = dict(os.environ)
    for name in ("NMT_MODELS", "NMT_SKIPPED_MODELS", "NMT_TRUSTED_PROXIES"):
        os.environ.pop(name, None)
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_uvicorn_gets_the_transport_limits(nmt_cli, uvicorn_calls, bundle: Path) -> None:
    from uvicorn.importer import import_from_string

    code, _, err = nmt_cli("serve", "--port", _free_port(), "--model", bundle,
                           "--max-header-bytes", "4096", "--keepalive-s", "2",
                           "--max-connections", "7", "--graceful-shutdown-s", "9",
                           "--body-timeout-s", "3")
    assert code == 0, err
    opts = uvicorn_calls[0]
    assert import_from_string(opts["http"]).__name__ == "HeadTimeoutH11Protocol"
    assert (opts["h11_max_incomplete_event_size"], opts["timeout_keep_alive"],
            opts["limit_concurrency"], opts["timeout_graceful_shutdown"]) == (4096, 2, 7, 9)
    assert os.environ["NMT_BODY_TIMEOUT_S"] == "3.0"
    # No proxy is trusted by default (uvicorn's own default trusts 127.0.0.1).
    assert opts["proxy_headers"] is False and opts["forwarded_allow_ips"] == []
    config = uvicorn.Config("service.main:create_app", **opts)
    assert config.proxy_headers is False


def test_trusted_proxies_come_from_the_option_or_the_environment(
        nmt_cli, uvicorn_calls, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMT_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.0/8")
    assert nmt_cli("serve", "--port", _free_port(), "--model", bundle)[0] == 0
    assert nmt_cli("serve", "--port", _free_port(), "--model", bundle,
                   "--forwarded-allow-ips", "192.0.2.7")[0] == 0
    assert [(c["proxy_headers"], c["forwarded_allow_ips"]) for c in uvicorn_calls] == [
        (True, ["10.0.0.1", "10.0.0.0/8"]), (True, ["192.0.2.7"])]


def test_a_bad_limit_in_the_environment_names_the_option(
        nmt_cli, uvicorn_calls, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMT_MAX_HEADER_BYTES", "lots")
    code, _, err = nmt_cli("serve", "--port", _free_port())
    assert code == 2 and "--max-header-bytes: expected a whole number, got 'lots'" in err


def _hostile_copy(bundle: Path, root: Path, name: str) -> Path:
    bad = root / name
    shutil.copytree(bundle, bad)
    obj = torch.load(bad / "model.pt", weights_only=True)
    obj["config"]["model"]["emb_dim"] = 100_000  # a tiny file claiming a huge model
    torch.save(obj, bad / "model.pt")
    return bad


def test_a_bad_bundle_is_one_line_and_nothing_starts(nmt_cli, uvicorn_calls, bundle: Path,
                                                     tmp_path: Path) -> None:
    bad = _hostile_copy(bundle, tmp_path, "bad-de-en")
    code, _, err = nmt_cli("serve", "--port", _free_port(), "--model", bundle, "--model", bad)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"cannot serve {bad}" in err and "config.model.emb_dim: 100000" in err
    assert uvicorn_calls == []


def test_skip_bad_models_serves_the_rest_and_tells_ready(nmt_cli, uvicorn_calls, bundle: Path,
                                                         tmp_path: Path) -> None:
    bad = _hostile_copy(bundle, tmp_path, "bad-de-en")
    code, _, err = nmt_cli("serve", "--port", _free_port(), "--model", bundle, "--model", bad,
                           "--skip-bad-models")
    assert code == 0 and err.count("\n") == 1 and f"skipping model bundle {bad}" in err, err
    assert json.loads(os.environ["NMT_MODELS"]) == [str(bundle.resolve())]
    skipped = json.loads(os.environ["NMT_SKIPPED_MODELS"])
    assert list(skipped) == ["bad-de-en"] and "emb_dim" in skipped["bad-de-en"]
    assert str(tmp_path) not in skipped["bad-de-en"]  # /ready shows it: no paths
    code, _, err = nmt_cli("serve", "--port", _free_port(), "--model", bad, "--skip-bad-models")
    assert code == 2 and "no model bundle could be loaded (1 skipped)" in err


def test_a_model_over_the_parameter_limit_is_refused(nmt_cli, uvicorn_calls,
                                                     bundle: Path) -> None:
    code, _, err = nmt_cli("serve", "--port", _free_port(), "--model", bundle,
                           "--max-model-parameters", "100")
    assert code == 2 and "parameters are above the limit of 100" in err
    assert "NMT_MAX_MODEL_PARAMETERS" in err and uvicorn_calls == []


def test_a_bad_setting_is_one_line_naming_the_variable(nmt_cli, uvicorn_calls, bundle: Path,
                                                       monkeypatch) -> None:
    monkeypatch.setenv("NMT_MAX_BEAM", "many")
    code, _, err = nmt_cli("serve", "--port", 0, "--model", bundle, "--model-processes", "1")
    assert code == 2 and err.count("\n") == 1, err
    assert "NMT_MAX_BEAM" in err and "integer" in err and uvicorn_calls == []
    monkeypatch.delenv("NMT_MAX_BEAM")
    code, _, err = nmt_cli("serve", "--port", 0, "--model", bundle, "--model-processes", "-1")
    assert code == 2 and "--model-processes" in err and uvicorn_calls == []
