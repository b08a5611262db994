"""The native API: POST /v1/translate and GET /v1/models, against fake translators."""

from __future__ import annotations

import pytest


def test_translate_batch_with_scores_nbest_and_attention(served):
    r = served.client.post("/v1/translate", json={
        "texts": ["Ein Hund", "rennt"], "source": "de", "target": "en",
        "beam_size": 3, "nbest": 2, "return_attention": True})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "fake-de-en"
    first = body["results"][0]
    assert first["text"] == "[en] Hund Ein"
    assert first["score"] == -1.0
    assert [c["text"] for c in first["candidates"]] == ["[en] Hund Ein", "[en] Hund Ein #1"]
    assert first["attention"] == {"source_tokens": ["▁Ein", "▁Hund"],
                                  "target_tokens": ["▁Hund", "▁Ein"],
                                  "weights": [[0.0, 1.0], [1.0, 0.0]]}
    assert set(body["timing"]) == {"queue_ms", "compute_ms", "total_ms", "batch_texts"}
    call = served.translators["fake-de-en"].calls[-1]
    assert (call["beam_size"], call["nbest"], call["return_attention"]) == (3, 2, True)


def test_defaults_and_no_scores(served):
    r = served.client.post("/v1/translate", json={"texts": ["a"], "source": "de", "target": "en",
                                                  "return_scores": False})
    result = r.json()["results"][0]
    assert result == {"text": "[en] a", "candidates": []}
    assert served.translators["fake-de-en"].calls[-1]["beam_size"] is None  # model's default


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"source": "de", "target": "en"}, 422, "texts: field required"),
    ({"texts": "a", "source": "de", "target": "en"}, 422, "texts"),
    ({"texts": [], "source": "de", "target": "en"}, 422, "texts"),
    ({"texts": [1], "source": "de", "target": "en"}, 422, "texts.0"),
    ({"texts": ["a"], "source": "de", "target": "en", "beam": 3}, 422, "beam"),
    ({"texts": ["a"], "source": "de", "target": "en", "beam_size": 0}, 422, "beam_size"),
    ({"texts": ["a"], "source": "de", "target": "en", "beam_size": 9}, 400,
     "beam_size: 9 exceeds the limit of 8"),
    ({"texts": ["a"], "source": "de", "target": "en", "nbest": 7}, 400, "nbest"),
    ({"texts": ["a"], "source": "de", "target": "xx"}, 400, "no model translates de->xx"),
    ({"texts": ["a"], "source": "fr", "target": "en", "return_attention": True}, 400,
     "return_attention"),
    ({"texts": ["a"] * 65, "source": "de", "target": "en"}, 400, "texts: 65 texts"),
    ({"texts": ["a" * 5001], "source": "de", "target": "en"}, 400, "texts: 5001 characters"),
])
def test_client_mistakes_name_the_field(served, body, status, message):
    r = served.client.post("/v1/translate", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_invalid_json_and_utf8(served):
    r = served.client.post("/v1/translate", content=b'{"texts": [', 
                           headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]
    r = served.client.post("/v1/translate", content=b'{"texts": ["\xff"]}',
                           headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500
    assert "error" in r.json()


def test_api_key_in_header(serve_fakes):
    client = serve_fakes(api_keys=["secret"]).client
    body = {"texts": ["a"], "source": "de", "target": "en"}
    assert client.post("/v1/translate", json=body).status_code == 403
    assert client.post("/v1/translate", json=body, headers={"X-API-Key": "secret"}
                       ).status_code == 200
    assert client.post("/v1/translate", json=body,
                       headers={"Authorization": "Bearer secret"}).status_code == 200


def test_failure_is_500_without_traceback_or_path(serve_fakes, fake):
    client = serve_fakes({"x": fake(fail=True)}).client
    r = client.post("/v1/translate", json={"texts": ["a"], "source": "de", "target": "en"})
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text


def test_models(served):
    r = served.client.get("/v1/models")
    assert r.status_code == 200
    assert r.json() == [
        {"name": "fake-de-en", "source": "de", "target": "en", "has_attention": True,
         "max_input_tokens": 100, "metadata": {"valid_scores": {"bleu": 12.5}, "epochs": 3}},
        {"name": "fake-fr-en", "source": "fr", "target": "en", "has_attention": False,
         "max_input_tokens": 100, "metadata": {"valid_scores": {"bleu": 12.5}, "epochs": 3}},
    ]
