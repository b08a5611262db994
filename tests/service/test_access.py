"""Failed API key attempts are rate-limited per client address: after N wrong keys in a minute,
429 with Retry-After, whatever key comes next; other addresses are not affected. And the settings
and start-up checks of shared limits (NMT_REDIS_URL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from service.access import AccessGuard, RedisWindows, SharedLimitsError, redacted_url
from service.errors import ApiError
from service.main import create_app
from service.settings import ServiceSettings
from tests.support.system import free_port

REPO = Path(__file__).resolve().parents[2]


def test_wrong_keys_from_one_address_are_cut_off_after_n() -> None:
    guard = AccessGuard(["right-key"], auth_failures_per_minute=3)
    for _ in range(3):
        with pytest.raises(ApiError) as info:
            guard.check("guess", "10.0.0.1")
        assert info.value.status == 403
    for key in ("guess", "right-key", None):  # blocked: a right key no longer tells anything
        with pytest.raises(ApiError) as info:
            guard.check(key, "10.0.0.1")
        assert info.value.status == 429
        assert info.value.message == "Too many failed API key attempts: 3 per 1 minute"
        assert 1 <= int(info.value.headers["Retry-After"]) <= 60
    guard.check("right-key", "10.0.0.2")  # another address


def test_successes_do_not_count_as_failures() -> None:
    guard = AccessGuard(["right-key"], auth_failures_per_minute=2)
    for _ in range(10):
        guard.check("right-key", "10.0.0.1")


def test_through_the_app(serve_fakes) -> None:
    s = serve_fakes(api_keys=["secret"], auth_failures_per_minute=2)
    body = {"q": "Ein Hund", "source": "de", "target": "en", "api_key": "wrong"}
    assert [s.client.post("/translate", json=body).status_code for _ in range(2)] == [403, 403]
    r = s.client.post("/translate", json={**body, "api_key": "secret"})
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert r.json() == {"error": "Too many failed API key attempts: 2 per 1 minute"}
    r = s.client.post("/v1/translate", json={"texts": ["x"], "source": "de", "target": "en"},
                      headers={"X-API-Key": "secret"})
    assert r.status_code == 429


# Shared limits (NMT_REDIS_URL): the checks that need no Redis. With a real redis-server:
# tests/deploy/test_shared_limits.py.

def test_redis_url_is_checked_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad, says in [("http://127.0.0.1:6379", "expected redis://HOST:PORT/DB"),
                      ("127.0.0.1:6379", "expected redis://HOST:PORT/DB"),
                      ("redis://127.0.0.1:port/0", "the port is not a number"),
                      ("redis:///0", "no host")]:
        monkeypatch.setenv("NMT_REDIS_URL", bad)
        with pytest.raises(ValidationError) as info:
            ServiceSettings()
        assert f"NMT_REDIS_URL: {says}" in str(info.value)
    monkeypatch.setenv("NMT_REDIS_URL", " redis://10.0.0.5:6379/2 ")
    assert ServiceSettings().redis_url == "redis://10.0.0.5:6379/2"
    monkeypatch.delenv("NMT_REDIS_URL")
    assert ServiceSettings().redis_url == ""  # the default: each process counts alone
    monkeypatch.setenv("NMT_REDIS_PREFIX", "nmt prod")
    with pytest.raises(ValidationError, match="NMT_REDIS_PREFIX: 'nmt prod' is not 1-64"):
        ServiceSettings()


def test_an_unreachable_redis_stops_the_app_with_one_line(capsys) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    with pytest.raises(SystemExit) as info:
        create_app(ServiceSettings(models_root="unused", redis_url=url, rate_limit_per_minute=5))
    assert info.value.code == 3  # uvicorn's start-up failure: `--workers N` stops too
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("nmt serve: error: NMT_REDIS_URL=redis://:***@127.0.0.1:")
    assert "cannot reach Redis" in err and "hunter2" not in err


def test_shared_limits_without_the_redis_extra_say_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "limits", None)  # as if not installed
    with pytest.raises(SharedLimitsError) as info:
        RedisWindows("redis://127.0.0.1:6379/0")
    assert "NMT_REDIS_URL is set, but limits is not installed" in str(info.value)
    assert "pip install 'nmt[redis]'" in str(info.value)


def test_redacted_url() -> None:
    assert redacted_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redacted_url("rediss://:pw@host/1") == "rediss://:***@host/1"
    assert redacted_url("redis://host:6379/0") == "redis://host:6379/0"


def test_nmt_serve_stops_with_one_line_when_redis_is_unreachable(tiny_bundle: Path,
                                                                tmp_path: Path) -> None:
    env = {**os.environ, "NMT_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "NMT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = subprocess.run([sys.executable, "-m", "nmt", "serve", "--model", str(tiny_bundle),
                           "--port", str(free_port()), "--log-level", "warning"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr  # the CLI checks Redis before anything loads
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("nmt serve: error: NMT_REDIS_URL=redis://127.0.0.1:")


def test_nmt_serve_checks_redis_before_starting_workers(tmp_path) -> None:
    """With --workers 2, uvicorn's supervisor would exit 0 after its workers fail: the check
    runs in `nmt serve` itself, first, with one line and status 2."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, "NMT_REDIS_URL": url, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "nmt", "serve", "--models-root", str(tmp_path),
                           "--workers", "2", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nmt serve: error: NMT_REDIS_URL={url}: "
                                                   "cannot reach Redis")
