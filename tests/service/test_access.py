"""Failed API key attempts are rate-limited per client address: after N wrong keys in a minute,
429 with Retry-After, whatever key comes next; other addresses are not affected."""

from __future__ import annotations

import pytest

from service.access import AccessGuard
from service.errors import ApiError


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
