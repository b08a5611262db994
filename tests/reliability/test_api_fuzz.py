"""API fuzzing, bounded and seeded: schemathesis over the app's OpenAPI schema and the hand-made
hostile requests of reliability/fuzz_api.py, through the real Translator with a tiny bundle.

No answer is a 5xx, every error is `{"error": "<message>"}` without a trace or a path, and the
service still translates correctly afterwards. reliability/fuzz_api.py runs the long version.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from schemathesis.python import asgi

from reliability.fuzz_api import (
    API_KEY,
    Tally,
    check_still_serving,
    expected_probe,
    hostile_requests,
    key_requests,
    run_hostile,
    run_schemathesis,
)
from service.main import create_app
from service.settings import ServiceSettings


def _sender(client: TestClient):
    def send(method: str, path: str, content: bytes | None, headers: dict[str, str]
             ) -> tuple[int, Any, bytes]:
        r = client.request(method, path, content=content, headers=headers)
        return r.status_code, r.headers, r.content

    return send


def test_schemathesis_finds_no_server_errors(tiny_bundle: Path) -> None:
    app = create_app(ServiceSettings(models=[str(tiny_bundle)], num_threads=1))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    tally = Tally()
    try:
        run_schemathesis(schema, examples=30, seed=0, tally=tally, call=lambda case: case.call())
    finally:
        asgi.shutdown_lifespans()  # stops the batcher threads the app's lifespan started
    operations = {v.split(":")[0] for v in tally.violations}
    assert tally.violations == [], operations
    assert tally.requests >= 150
    assert not any(status >= 500 for status in tally.statuses)
    assert 200 in tally.statuses and any(400 <= s < 500 for s in tally.statuses)


def test_hostile_requests_get_clear_client_errors(tiny_bundle: Path) -> None:
    tally = Tally()
    # The odd texts must translate, and "long-word" ("a" x 4000) is 4001 subwords: past the
    # default cost limits (tests/service/test_cost.py refuses such texts), alone and in a list.
    app = create_app(ServiceSettings(models=[str(tiny_bundle)], num_threads=1,
                                     max_text_tokens=5_000, max_request_tokens=20_000,
                                     max_decode_steps=1_000_000))
    with TestClient(app, raise_server_exceptions=False) as client:
        send = _sender(client)
        run_hostile(send, hostile_requests(random.Random(0)), tally)
        check_still_serving(send, expected_probe(tiny_bundle), tally)
    assert tally.violations == []
    assert tally.requests >= 150 and tally.statuses[200] >= 50


def test_missing_and_wrong_api_keys_are_403(tiny_bundle: Path) -> None:
    tally = Tally()
    # auth_failures_per_minute=0: this fuzzes the key checks; their rate limit is tested in
    # tests/service/test_access.py (past 10 wrong keys a minute every answer is a 429).
    app = create_app(ServiceSettings(models=[str(tiny_bundle)], num_threads=1,
                                     api_keys=[API_KEY], auth_failures_per_minute=0))
    with TestClient(app, raise_server_exceptions=False) as client:
        send = _sender(client)
        run_hostile(send, key_requests(random.Random(0)), tally)
        check_still_serving(send, expected_probe(tiny_bundle), tally, key=API_KEY)
    assert tally.violations == []
    assert tally.statuses[403] >= 20
