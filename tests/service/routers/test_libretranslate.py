"""The LibreTranslate-compatible API, against fake translators."""

from __future__ import annotations

import pytest


def test_translate_json(served):
    r = served.client.post("/translate", json={"q": "Ein Hund rennt.", "source": "de",
                                               "target": "en"})
    assert r.status_code == 200
    assert r.json() == {"translatedText": "[en] rennt. Hund Ein"}


def test_translate_form_encoded(served):
    r = served.client.post("/translate", data={"q": "Ein Hund", "source": "de", "target": "en",
                                               "format": "text"})
    assert r.status_code == 200
    assert r.json()["translatedText"] == "[en] Hund Ein"


def test_translate_list_with_alternatives(served):
    r = served.client.post("/translate", json={"q": ["a b", "c"], "source": "de", "target": "en",
                                               "alternatives": 2})
    assert r.status_code == 200
    body = r.json()
    assert body["translatedText"] == ["[en] b a", "[en] c"]
    assert body["alternatives"] == [["[en] b a #1", "[en] b a #2"], ["[en] c #1", "[en] c #2"]]
    # Alternatives need beams: the beam is raised to the n-best size.
    assert served.translators["fake-de-en"].calls[-1]["beam_size"] >= 3


def test_auto_source_is_detected_among_loaded_languages(served):
    r = served.client.post("/translate", json={
        "q": ["Der Hund und die Katze schlafen.", "Le chien et la femme."],
        "source": "auto", "target": "en"})
    assert r.status_code == 200
    body = r.json()
    assert [d["language"] for d in body["detectedLanguage"]] == ["de", "fr"]
    assert all(0 < d["confidence"] <= 100 for d in body["detectedLanguage"])
    de_call = served.translators["fake-de-en"].calls[-1]
    assert de_call["texts"] == ["Der Hund und die Katze schlafen."]
    assert served.translators["fake-fr-en"].calls[-1]["texts"] == ["Le chien et la femme."]


def test_auto_source_with_one_candidate(serve_fakes):
    client = serve_fakes().client
    r = client.post("/translate", json={"q": "xyz", "source": "auto", "target": "en"})
    assert r.json()["detectedLanguage"] == {"language": "de", "confidence": 100.0}


def test_html_keeps_tags(served):
    r = served.client.post("/translate", json={
        "q": '<p class="x">Hallo <b>schöne Welt</b> &amp; mehr</p><script>a<b</script>',
        "source": "de", "target": "en", "format": "html"})
    assert r.status_code == 200
    # The block is one text for the model (the fake reverses its words); <b> wraps the output
    # words aligned to "schöne Welt".
    assert r.json()["translatedText"] == (
        '<p class="x">[en] mehr &amp; <b>Welt schöne</b> Hallo</p><script>a<b</script>')


def test_empty_text_in_list_is_kept_empty(served):
    r = served.client.post("/translate", json={"q": ["a", "  "], "source": "de", "target": "en"})
    assert r.json()["translatedText"] == ["[en] a", "  "]  # whitespace comes back as it was


@pytest.mark.parametrize("missing", ["q", "source", "target"])
def test_missing_parameter(served, missing):
    fields = {"q": "x", "source": "de", "target": "en"}
    del fields[missing]
    r = served.client.post("/translate", json=fields)
    assert r.status_code == 400
    assert r.json() == {"error": f"Invalid request: missing {missing} parameter"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"target": "zz"}, "zz is not supported"),
    ({"source": "zz"}, "zz is not supported"),
    ({"source": "en", "target": "de"}, "de is not supported"),
    ({"format": "pdf"}, "format"),
    ({"q": 5}, "q"),
    ({"alternatives": "many"}, "alternatives"),
    ({"alternatives": 9}, "alternatives"),
])
def test_bad_fields_are_400_naming_the_field(served, fields, message):
    r = served.client.post("/translate", json={"q": "x", "source": "de", "target": "en", **fields})
    assert r.status_code == 400
    assert message in r.json()["error"]


def test_unavailable_pair(serve_fakes, fake):
    client = serve_fakes({"a": fake("de", "en"), "b": fake("en", "fr")}).client
    r = client.post("/translate", json={"q": "x", "source": "de", "target": "fr"})
    assert r.status_code == 400
    assert r.json()["error"] == "French (fr) is not available as a target language from German (de)"


@pytest.mark.parametrize(("body", "ctype", "message"), [
    (b'{"q": "x", ', "application/json", "not valid JSON"),
    (b'["q"]', "application/json", "must be a JSON object"),
    (b'{"q": "\xff\xfe", "source": "de", "target": "en"}', "application/json", "UTF-8"),
])
def test_unparseable_bodies(served, body, ctype, message):
    r = served.client.post("/translate", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400
    assert message in r.json()["error"]


def _multipart(q: bytes) -> tuple[bytes, str]:
    boundary = "nmt-test-boundary"
    parts = [(b"q", q), (b"source", b"de"), (b"target", b"en")]
    body = b"".join(b"--" + boundary.encode() + b'\r\nContent-Disposition: form-data; name="'
                    + name + b'"\r\n\r\n' + value + b"\r\n" for name, value in parts)
    return body + b"--" + boundary.encode() + b"--\r\n", f"multipart/form-data; boundary={boundary}"


def test_multipart_form_with_invalid_utf8_is_refused(served):
    body, ctype = _multipart(b"der hund \xff\xfe rennt")
    r = served.client.post("/translate", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid request: a form field is not valid UTF-8"}


def test_multipart_form_keeps_a_replacement_character_the_client_sent(served):
    body, ctype = _multipart("der hund \ufffd rennt".encode())
    r = served.client.post("/translate", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 200 and r.json()["translatedText"]


def test_text_limits(serve_fakes):
    client = serve_fakes(max_texts=2, max_text_chars=10, max_request_chars=15).client
    cases = [(["a", "b", "c"], "3 texts exceed the limit of 2"),
             ("x" * 11, "q: 11 characters exceed the limit of 10 per text"),
             (["x" * 8, "y" * 8], "q: 16 characters exceed the limit of 15 per request")]
    for q, message in cases:
        r = client.post("/translate", json={"q": q, "source": "de", "target": "en"})
        assert r.status_code == 400
        assert message in r.json()["error"]


def test_api_keys(serve_fakes):
    client = serve_fakes(api_keys=["k1", "k2"]).client
    body = {"q": "x", "source": "de", "target": "en"}
    assert client.post("/translate", json=body).status_code == 403
    assert client.post("/translate", json={**body, "api_key": "nope"}).json() == {
        "error": "Invalid API key"}
    assert client.post("/translate", json={**body, "api_key": "k2"}).status_code == 200
    assert client.post("/translate", data={**body, "api_key": "k1"}).status_code == 200
    assert client.get("/frontend/settings").json()["keyRequired"] is True


def test_rate_limit(serve_fakes):
    client = serve_fakes(rate_limit_per_minute=2).client
    body = {"q": "x", "source": "de", "target": "en"}
    assert [client.post("/translate", json=body).status_code for _ in range(2)] == [200, 200]
    r = client.post("/translate", json=body)
    assert r.status_code == 429
    assert r.json() == {"error": "Slowdown: 2 per 1 minute"}
    assert 1 <= int(r.headers["Retry-After"]) <= 60


def test_translator_failure_is_500_without_details(serve_fakes, fake):
    client = serve_fakes({"x": fake(fail=True)}).client
    r = client.post("/translate", json={"q": "x", "source": "de", "target": "en"})
    assert r.status_code == 500
    assert r.json() == {"error": "Cannot translate text: internal error"}


def test_languages(served):
    r = served.client.get("/languages")
    assert r.json() == [
        {"code": "de", "name": "German", "targets": ["en"]},
        {"code": "en", "name": "English", "targets": []},
        {"code": "fr", "name": "French", "targets": ["en"]},
    ]


def test_detect(served):
    r = served.client.post("/detect", json={"q": "Le chat et le chien"})
    assert r.status_code == 200
    body = r.json()
    assert body[0]["language"] == "fr"
    assert {d["language"] for d in body} == {"de", "fr"}
    assert served.client.post("/detect", data={"q": "Der Hund"}).json()[0]["language"] == "de"
    r = served.client.post("/detect", json={})
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid request: missing q parameter"}


def test_frontend_settings(serve_fakes, fake):
    client = serve_fakes({"a": fake("de", "en"), "b": fake("fr", "en")}, max_beam=6,
                         max_alternatives=2).client
    body = client.get("/frontend/settings").json()
    assert body["charLimit"] == 20_000
    assert body["language"]["source"]["code"] == "de"
    assert body["keyRequired"] is False
    assert body["suggestions"] is False
    assert (body["maxBeam"], body["maxAlternatives"]) == (6, 2)


# ---- fields in the query string, as LibreTranslate reads request.values ---------------------

def test_translate_fields_in_the_query_string_with_an_empty_body(served):
    r = served.client.post("/translate?q=Ein%20Hund&source=de&target=en")
    assert r.status_code == 200, r.text
    assert r.json() == {"translatedText": "[en] Hund Ein"}
    r = served.client.post("/translate", params=[("q", "a b"), ("q", "c"), ("source", "de"),
                                                 ("target", "en"), ("alternatives", "1")])
    assert r.json() == {"translatedText": ["[en] b a", "[en] c"],
                        "alternatives": [["[en] b a #1"], ["[en] c #1"]]}


@pytest.mark.parametrize("send", ["json", "form", "multipart"])
def test_body_fields_win_over_query_fields(served, send):
    body = {"q": "aus dem Body", "target": "en"}
    query = {"q": "aus der URL", "source": "de", "target": "xx"}  # source only in the query
    if send == "json":
        r = served.client.post("/translate", params=query, json=body)
    elif send == "form":
        r = served.client.post("/translate", params=query, data=body)
    else:
        r = served.client.post("/translate", params=query, files={"q": (None, body["q"]),
                                                                  "target": (None, "en")})
    assert r.status_code == 200, r.text
    assert r.json() == {"translatedText": "[en] Body dem aus"}


def test_query_string_errors_are_400(served):
    r = served.client.post("/translate?q=%FF%FE&source=de&target=en")
    assert r.status_code == 400
    assert r.json() == {"error": "Invalid request: the query string is not valid UTF-8"}
    r = served.client.post("/translate?source=de&target=en")
    assert r.json() == {"error": "Invalid request: missing q parameter"}
    r = served.client.post("/translate?q=x&source=de&target=en&alternatives=lots")
    assert r.status_code == 400 and "alternatives" in r.json()["error"]


def test_api_key_in_the_query_string(serve_fakes):
    client = serve_fakes(api_keys=["k1"]).client
    assert client.post("/translate?q=x&source=de&target=en").status_code == 403
    assert client.post("/translate?q=x&source=de&target=en&api_key=k1").status_code == 200
    assert client.post("/detect?q=Hund&api_key=k1").status_code == 200


def test_detect_fields_in_the_query_string(served):
    r = served.client.post("/detect?q=Le%20chat%20et%20le%20chien")
    assert r.status_code == 200
    assert r.json()[0]["language"] == "fr"
    assert served.client.post("/detect?q=x", json={"q": "Der Hund und die Katze"}
                              ).json()[0]["language"] == "de"


# ---- /suggest, detection through the API ------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"json": {"q": "a", "s": "b", "source": "de",
                                                  "target": "en"}}, {"data": {"q": "a"}}])
def test_suggest_is_disabled_as_in_libretranslate(served, kwargs):
    r = served.client.post("/suggest", **kwargs)
    assert r.status_code == 403
    assert r.json() == {"error": "Suggestions are disabled on this server."}
    assert served.client.get("/frontend/settings").json()["suggestions"] is False


def test_detect_answers_among_loaded_languages_only(serve_fakes, fake):
    three = serve_fakes({"de-en": fake("de", "en"), "en-de": fake("en", "de"),
                         "fr-en": fake("fr", "en")}).client
    body = three.post("/detect", json={"q": "Hello handsome"}).json()
    assert body[0]["language"] == "en"
    assert body[0]["confidence"] > 2 * body[1]["confidence"]
    assert three.post("/detect", json={"q": "Guten Morgen"}).json()[0]["language"] == "de"
    for q in ["a", "?", "Der Hund is very happy aujourd'hui", ["Hund", "dog"]]:
        r = three.post("/detect", json={"q": q})
        assert r.status_code == 200
        assert {d["language"] for d in r.json()} == {"de", "en", "fr"}
        assert all(0 <= d["confidence"] <= 100 for d in r.json())
    two = serve_fakes({"de-en": fake("de", "en"), "fr-en": fake("fr", "en")}).client
    assert {d["language"] for d in two.post("/detect", json={"q": "Hello handsome"}).json()} == {
        "de", "fr"}


def test_translate_uses_the_pairs_default_model(serve_fakes, fake):
    served = serve_fakes({"caption-de-en": fake("de", "en"),
                          "general-de-en": fake("de", "en", domains=("general", "caption"))})
    r = served.client.post("/translate", json={"q": "ein Hund", "source": "de", "target": "en"})
    assert r.json() == {"translatedText": "[en/general] Hund ein"}
    assert served.translators["caption-de-en"].calls == []
