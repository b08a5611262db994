"""Security: constant-time key checks, per-key rate limits, CORS off by default, no traces or
paths in error bodies, and a non-root Docker image whose user cannot change the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import service.access as access
from nmt.config import config_from_dict
from service.access import AccessGuard
from service.deps import get_registry
from service.errors import ApiError
from service.main import create_app
from service.registry import ModelRegistry
from service.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
SECRET = "/srv/secret/models/de-en/model.pt"


class BrokenTranslator:
    """Has the Translator's attributes; translating fails with a message holding a path."""

    src_lang, tgt_lang = "de", "en"
    domains: list[str] = []
    default_domain = None
    has_attention = True
    max_input_tokens = 100
    metadata: dict[str, Any] = {}
    config = config_from_dict({"data": {"train_src": "x", "train_tgt": "y"}})

    def __init__(self, fail_in: str = "translate"):
        self.fail_in = fail_in

    def count_tokens(self, texts: list[str]) -> list[int]:
        if self.fail_in == "count_tokens":
            raise ValueError(f"{SECRET}: tokenizer state corrupt")
        return [len(t.split()) for t in texts]

    def translate(self, texts: list[str], **kwargs: Any) -> list[Any]:
        raise RuntimeError(f"{SECRET}: CUDA error: device-side assert triggered")


def _serve(translator: Any, **settings: Any) -> TestClient:
    config = ServiceSettings(models_root="unused", **settings)
    app = create_app(config)
    registry = ModelRegistry({"broken": translator}, settings=config, metrics=app.state.metrics)
    app.dependency_overrides[get_registry] = lambda: registry
    return TestClient(app, raise_server_exceptions=False)


def _assert_clean_error(r: Any, status: int) -> None:
    assert r.status_code == status
    body = r.json()
    assert list(body) == ["error"] and body["error"]
    for leak in ("Traceback", "/srv", "secret", "model.pt", ".py", "RuntimeError", "ValueError"):
        assert leak not in r.text


@pytest.mark.parametrize("fail_in", ["translate", "count_tokens"])
def test_internal_errors_show_no_trace_or_path(fail_in: str) -> None:
    client = _serve(BrokenTranslator(fail_in))
    _assert_clean_error(client.post("/translate", json={"q": "a b", "source": "de",
                                                        "target": "en"}), 500)
    _assert_clean_error(client.post("/v1/translate", json={"texts": ["a b"], "source": "de",
                                                           "target": "en"}), 500)


def test_an_error_outside_translation_shows_no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    client = _serve(BrokenTranslator())

    def explode(self: Any, target: str | None = None) -> list[str]:
        raise KeyError(SECRET)

    monkeypatch.setattr(ModelRegistry, "source_languages", explode)
    _assert_clean_error(client.get("/languages"), 500)
    _assert_clean_error(client.post("/detect", json={"q": "ein hund"}), 500)


def test_every_key_is_compared_with_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = access.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(access.hmac, "compare_digest", spy)
    guard = AccessGuard(["first-key", "second-key", "third"])
    for given in ["first-key", "third", "wrong", "x" * 500, "", None, 42]:
        calls.clear()
        try:
            guard.check(given, "1.2.3.4")
        except ApiError as err:
            assert err.status == 403 and given not in ("first-key", "third")
        # Every configured key is compared, whichever matches, and the compared values have one
        # length: neither the matching key's position nor any key's length shows in the timing.
        assert len(calls) == 3
        assert {len(a) for a, _ in calls} | {len(b) for _, b in calls} == {32}


def test_rate_limit_is_per_key_with_retry_after() -> None:
    client = _serve(BrokenTranslator(), api_keys=["key-a", "key-b"], rate_limit_per_minute=3)
    # /languages needs no key; /detect counts against the key from the body or the header.
    for _ in range(3):
        assert client.post("/detect", json={"q": "ein hund", "api_key": "key-a"}).status_code == 200
    r = client.post("/detect", json={"q": "ein hund"}, headers={"X-API-Key": "key-a"})
    assert r.status_code == 429 and r.json()["error"].startswith("Slowdown")
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    r = client.post("/v1/translate", json={"texts": ["a"], "source": "de", "target": "en"},
                    headers={"Authorization": "Bearer key-a"})
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert client.post("/detect", json={"q": "a", "api_key": "key-b"}).status_code == 200
    assert client.post("/detect", json={"q": "a", "api_key": "key-c"}).status_code == 403


def test_cors_is_off_by_default() -> None:
    client = _serve(BrokenTranslator())
    origin = {"Origin": "https://evil.example"}
    preflight = client.options("/translate", headers={
        **origin, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code in (404, 405)
    r = client.get("/languages", headers=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers

    allowed = _serve(BrokenTranslator(), cors_origins=["https://app.example"])
    r = allowed.get("/languages", headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    r = allowed.get("/languages", headers=origin)
    assert "access-control-allow-origin" not in r.headers


def test_docker_user_is_the_unprivileged_one_and_models_are_root_owned() -> None:
    lines = [ln.strip() for ln in (REPO / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    user = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    created = [ln for ln in lines if "useradd" in ln]
    assert user and created
    uid = created[0].split("--uid")[1].split()[0]
    assert user[-1] == uid and uid not in ("0", "root")
    cmd = lines.index(next(ln for ln in lines if ln.startswith("CMD ")))
    assert lines.index(next(ln for ln in lines if ln.startswith("USER "))) < cmd
    # The models are copied owned by root: the service user can read but not replace them.
    assert any(ln.startswith("COPY --chown=root:root models") for ln in lines)
