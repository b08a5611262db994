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
    common = {"target": "en", "default": True, "domains": [], "default_domain": None,
              "scores": {"bleu": 12.5}, "size": {"file_bytes": None, "parameters": None},
              "max_input_tokens": 100, "metadata": {"valid_scores": {"bleu": 12.5}, "epochs": 3}}
    assert r.json() == [
        {"name": "fake-de-en", "source": "de", "has_attention": True, **common,
         "description": "German → English. The bundle has no model card and no domain tags, so "
                        "what it was trained for is not recorded."},
        {"name": "fake-fr-en", "source": "fr", "has_attention": False, **common,
         "description": "French → English. The bundle has no model card and no domain tags, so "
                        "what it was trained for is not recorded."},
    ]


# ---- several models per pair: `model` and `domain` ---------------------------------------------

@pytest.fixture
def two_de_en(serve_fakes, fake):
    """A caption model without tags beside a general one with two domains, and fr->en."""
    return serve_fakes({
        "caption-de-en": fake("de", "en"),
        "general-de-en": fake("de", "en", domains=("general", "caption"),
                              default_domain="general"),
        "fake-fr-en": fake("fr", "en"),
    })


def _translate(served, **fields):
    return served.client.post("/v1/translate", json={"texts": ["ein Hund"], "source": "de",
                                                     "target": "en", **fields})


def test_model_and_domain_select_the_translation(two_de_en):
    default = _translate(two_de_en).json()
    assert (default["model"], default["domain"]) == ("general-de-en", "general")
    assert default["results"][0]["text"] == "[en/general] Hund ein"
    caption = _translate(two_de_en, domain="caption").json()
    assert (caption["model"], caption["domain"]) == ("general-de-en", "caption")
    assert caption["results"][0]["text"] == "[en/caption] Hund ein"
    other = _translate(two_de_en, model="caption-de-en").json()
    assert other["model"] == "caption-de-en" and "domain" not in other
    assert other["results"][0]["text"] == "[en] Hund ein"
    calls = {name: [c["domain"] for c in t.calls] for name, t in two_de_en.translators.items()}
    assert calls == {"caption-de-en": [None], "general-de-en": ["general", "caption"],
                     "fake-fr-en": []}


def test_the_default_domain_is_the_first_when_the_model_names_none(serve_fakes, fake):
    served = serve_fakes({"g": fake("de", "en", domains=("news", "caption"))})
    assert _translate(served).json()["domain"] == "news"
    assert served.client.get("/v1/models").json()[0]["default_domain"] == "news"


@pytest.mark.parametrize(("fields", "message"), [
    ({"model": "nope"}, "model: no model named 'nope' is loaded (loaded: caption-de-en, "
                        "fake-fr-en, general-de-en; see /v1/models)"),
    ({"model": "fake-fr-en"}, "model: fake-fr-en translates fr->en, not de->en"),
    ({"domain": "legal"}, "domain: 'legal' is not a domain of model general-de-en; its domains: "
                          "general, caption"),
    ({"model": "caption-de-en", "domain": "caption"},
     "domain: 'caption' is not a domain of model caption-de-en; its domains: none"),
])
def test_unknown_model_or_domain_is_400_naming_the_field(two_de_en, fields, message):
    r = _translate(two_de_en, **fields)
    assert r.status_code == 400
    assert r.json()["error"].startswith(message)
    assert all(t.calls == [] for t in two_de_en.translators.values())  # nothing was queued


@pytest.mark.parametrize("fields", [{"model": ""}, {"model": 3}, {"domain": ""},
                                    {"domain": "x" * 65}])
def test_malformed_model_or_domain_is_422(two_de_en, fields):
    r = _translate(two_de_en, **fields)
    assert r.status_code == 422
    assert list(fields)[0] in r.json()["error"]


def test_models_lists_every_model_with_its_pairs_default(two_de_en):
    body = two_de_en.client.get("/v1/models").json()
    assert [(m["name"], m["default"]) for m in body] == [
        ("general-de-en", True), ("caption-de-en", False), ("fake-fr-en", True)]
    general = body[0]
    assert (general["domains"], general["default_domain"]) == (["general", "caption"], "general")
    assert general["description"] == ("German → English for general-purpose text and short "
                                      "image captions (domains: general, caption).")


def test_default_models_setting_picks_the_default(serve_fakes, fake):
    served = serve_fakes({"caption-de-en": fake("de", "en"),
                          "general-de-en": fake("de", "en", domains=("general",))},
                         default_models={"de-en": "caption-de-en"})
    assert _translate(served).json()["model"] == "caption-de-en"
    assert [m["default"] for m in served.client.get("/v1/models").json()] == [True, False]


def test_warnings_are_reported_per_text(served):
    r = served.client.post("/v1/translate", json={"texts": ["a WARN", "b"], "source": "de",
                                                  "target": "en"})
    results = r.json()["results"]
    assert results[0]["warnings"] == ["the fake noticed WARN"]
    assert "warnings" not in results[1]


def test_protect_and_glossary_reach_the_translator(served):
    r = served.client.post("/v1/translate", json={
        "texts": ["Der Hund Fido rennt"], "source": "de", "target": "en",
        "protect": ["Fido"], "glossary": {"Hund": "DOG"}})
    assert r.status_code == 200
    assert r.json()["results"][0]["text"] == "[en] rennt Fido DOG Der"
    call = served.translators["fake-de-en"].calls[-1]
    assert call["terms"] == ["Fido"] and call["glossary"] == {"Hund": "DOG"}


@pytest.mark.parametrize("body, field", [
    ({"protect": [""]}, "protect"),
    ({"protect": ["x"] * 101}, "protect"),
    ({"glossary": {"": "y"}}, "glossary"),
    ({"format": "pdf"}, "format"),
    ({"format": "html", "return_attention": True}, "return_attention"),
])
def test_bad_protect_glossary_format_name_the_field(served, body, field):
    r = served.client.post("/v1/translate", json={"texts": ["a"], "source": "de",
                                                  "target": "en", **body})
    assert r.status_code in (400, 422)
    assert field in r.json()["error"]


def test_html_format_keeps_inline_tags(served):
    r = served.client.post("/v1/translate", json={
        "texts": ["<p>Ein <b>Hund</b> rennt</p>"], "source": "de", "target": "en",
        "format": "html", "nbest": 2})
    assert r.status_code == 200
    result = r.json()["results"][0]
    assert result["text"] == "<p>[en] rennt <b>Hund</b> Ein</p>"
    assert [c["text"] for c in result["candidates"]] == [
        "<p>[en] rennt <b>Hund</b> Ein</p>", "<p>[en] rennt <b>Hund</b> Ein #1</p>"]
    assert served.translators["fake-de-en"].calls[-1]["align"] is True
