"""Limits shared through a real Redis (NMT_REDIS_URL): two AccessGuards, or two apps, stand for
two workers or replicas. The limit holds across them; Redis keys hold no API key; and a Redis
killed mid-way never turns a request into a 500: each process counts alone (and says so once a
minute) until Redis is back."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from service.access import AccessGuard, RedisWindows
from service.deps import get_registry
from service.errors import ApiError
from service.main import create_app
from service.registry import ModelRegistry
from service.settings import ServiceSettings
from tests.service.conftest import FakeTranslator
from tests.support import system
from tests.support.system import RedisServer, require_program


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(require_program("redis"), tmp_path).start()
    yield server
    server.kill()


def _status(guard: AccessGuard, key: object, client: str = "10.0.0.1") -> int:
    try:
        guard.check(key, client)
    except ApiError as err:
        if err.status == 429:
            assert 1 <= int(err.headers["Retry-After"]) <= 60
        return err.status
    return 200


def _workers(url: str, n: int = 2, **limits: int) -> list[AccessGuard]:
    return [AccessGuard(["key-a", "key-b"], shared=RedisWindows(url), **limits) for _ in range(n)]


def test_the_rate_limit_holds_across_two_workers(redis_server: RedisServer) -> None:
    one, two = _workers(redis_server.url, rate_per_minute=3)
    statuses = [_status(guard, "key-a") for guard in (one, two, one, two, one, two)]
    assert statuses == [200, 200, 200, 429, 429, 429]
    with pytest.raises(ApiError) as info:
        two.check("key-a", "10.0.0.9")  # the key's limit, whatever the address
    assert info.value.message == "Slowdown: 3 per 1 minute"
    assert _status(one, "key-b") == 200  # another key has its own window


def test_failed_keys_count_across_workers(redis_server: RedisServer) -> None:
    one, two = _workers(redis_server.url, auth_failures_per_minute=2)
    assert [_status(one, "guess"), _status(two, "guess")] == [403, 403]
    assert [_status(one, "key-a"), _status(two, "key-a")] == [429, 429]
    assert _status(two, "key-a", client="10.0.0.2") == 200


def test_redis_keys_name_no_api_key(redis_server: RedisServer) -> None:
    one, two = _workers(redis_server.url, rate_per_minute=5, auth_failures_per_minute=5)
    _status(one, "key-a")
    _status(two, "wrong-key")
    keys = [k.decode() for k in redis.Redis.from_url(redis_server.url).keys("*")]
    assert len(keys) == 2 and all(k.startswith("nmt:") for k in keys), keys
    secrets = ["key-a", "wrong-key", hashlib.sha256(b"key-a").hexdigest()]
    assert not [k for k in keys for s in secrets if s in k], keys
    assert any("addr:10.0.0.1" in k for k in keys)  # the failures count per address


def test_a_lost_redis_falls_back_to_each_process_and_logs_once_a_minute(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    one, two = _workers(redis_server.url, rate_per_minute=4)
    assert [_status(one, "key-a"), _status(two, "key-a")] == [200, 200]
    redis_server.kill()
    for guard in (one, two):
        assert guard.shared is not None
        guard.shared.retry_s = 0.0  # try the dead Redis on every check
    caplog.set_level(logging.WARNING, logger="service")
    # Fail open to per-process windows: each worker now lets 4 through alone, never raising
    # anything but the 429.
    assert [_status(one, "key-a") for _ in range(6)] == [200] * 4 + [429] * 2
    assert [_status(two, "key-a") for _ in range(6)] == [200] * 4 + [429] * 2
    lost = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert len(lost) == 2, lost  # once per process, not once per request
    assert "NMT_REDIS_URL=redis://127.0.0.1:" in lost[0].getMessage()

    caplog.clear()
    redis_server.start()  # the same port: Redis is back, empty
    statuses = [_status(guard, "key-b") for guard in (one, one, one, two, two)]
    assert statuses == [200] * 4 + [429]  # shared again: 4 in all
    assert [r.getMessage() for r in caplog.records
            if "answers again" in r.getMessage()][:1], caplog.text


def _app_client(url: str, **settings: object) -> tuple[TestClient, ModelRegistry]:
    config = ServiceSettings(models_root="unused", redis_url=url, **settings)
    app = create_app(config)
    registry = ModelRegistry({"fake-de-en": FakeTranslator("de", "en")}, settings=config,
                             metrics=app.state.metrics, arrivals=app.state.arrivals)
    app.dependency_overrides[get_registry] = lambda: registry
    return TestClient(app, raise_server_exceptions=False), registry


def test_two_apps_share_the_limit_and_a_dead_redis_is_no_500(redis_server: RedisServer) -> None:
    made = [_app_client(redis_server.url, api_keys=["secret"], rate_limit_per_minute=3)
            for _ in range(2)]
    clients = [client for client, _ in made]
    try:
        body = {"q": "Ein Hund", "source": "de", "target": "en", "api_key": "secret"}
        answers = [clients[i % 2].post("/translate", json=body) for i in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[3].json() == {"error": "Slowdown: 3 per 1 minute"}
        assert 1 <= int(answers[3].headers["Retry-After"]) <= 60

        redis_server.kill()
        native = {"texts": ["Ein Hund"], "source": "de", "target": "en"}
        after = [clients[i % 2].post("/v1/translate", json=native, headers={"X-API-Key": "secret"})
                 for i in range(8)]
        assert {r.status_code for r in after} == {200, 429}, [r.text for r in after]
        assert all(r.status_code == 200 or r.json() == {"error": "Slowdown: 3 per 1 minute"}
                   for r in after)
    finally:
        for _, registry in made:
            registry.close()


def test_a_missing_program_skips_unless_nmt_require_names_it(monkeypatch) -> None:
    monkeypatch.setitem(system.PROGRAMS, "redis", ("redis-server-missing", "redis-server"))
    monkeypatch.setenv("NMT_REQUIRE", "browser")
    with pytest.raises(pytest.skip.Exception, match=r"redis-server-missing is not installed "
                                                    r"\(apt-get install redis-server\)"):
        require_program("redis")
    monkeypatch.setenv("NMT_REQUIRE", "browser,redis")
    with pytest.raises(pytest.fail.Exception, match="NMT_REQUIRE=redis: redis-server-missing"):
        require_program("redis")
