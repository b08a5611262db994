"""The cost model (service/cost.py): requests are priced in what the model will do, source
subwords, model inputs and decoding steps, and refused with a 413 naming the limit before
anything is queued."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nmt.translator import Translator
from service.cost import RequestBudget
from service.errors import ApiError
from service.settings import ServiceSettings


def _v1(client, texts, **fields):
    return client.post("/v1/translate", json={"texts": texts, "source": "de", "target": "en",
                                              **fields})


def test_subwords_per_text_and_per_request(serve_fakes) -> None:
    s = serve_fakes(max_text_tokens=5, max_request_tokens=12)
    fake = s.translators["fake-de-en"]
    r = _v1(s.client, ["a b c d e f"])  # the fake counts words + 1
    assert r.status_code == 413
    assert r.json() == {"error": "texts: 7 source subwords exceed NMT_MAX_TEXT_TOKENS=5"}
    r = _v1(s.client, ["a b", "a b c d e f"])
    assert r.json()["error"] == "texts[1]: 7 source subwords exceed NMT_MAX_TEXT_TOKENS=5"
    r = _v1(s.client, ["a b c d"] * 3)
    assert r.status_code == 413
    assert r.json()["error"] == ("texts: 15 source subwords exceed NMT_MAX_REQUEST_TOKENS=12 "
                                 "per request")
    assert fake.calls == []  # nothing was queued
    assert _v1(s.client, ["a b c", "d e f"]).status_code == 200


def test_model_inputs_per_request_count_sentences_and_html_blocks(serve_fakes) -> None:
    s = serve_fakes(max_request_units=2)
    r = _v1(s.client, ["Ein Hund. Eine Katze. Ein Kind."])
    assert r.status_code == 413
    assert r.json()["error"] == ("texts: 3 model inputs (sentences and clauses) exceed "
                                 "NMT_MAX_REQUEST_UNITS=2 per request")
    html = "<p>Ein Hund</p><p>Eine Katze</p><p>Ein Kind</p>"
    r = _v1(s.client, [html], format="html")
    assert r.status_code == 413 and "3 model inputs" in r.json()["error"]
    assert _v1(s.client, ["<p>Ein Hund</p><p>Eine Katze</p>"], format="html").status_code == 200
    assert s.translators["fake-de-en"].calls[0]["texts"] == ["Ein Hund", "Eine Katze"]


def test_decoding_steps_grow_with_the_beam(serve_fakes) -> None:
    # The fake's model: max_len_a 1.5, max_len_b 10, beam 2. "a b" is 3 subwords and one
    # input: an output cap of ceil(1.5 * 3 + 10) = 15 steps per beam.
    s = serve_fakes(max_decode_steps=29)
    r = _v1(s.client, ["a b"])
    assert r.status_code == 413
    assert r.json()["error"].startswith("texts: 30 decoding steps (output length caps x beam 2) "
                                        "exceed NMT_MAX_DECODE_STEPS=29 per request")
    assert _v1(s.client, ["a b"], beam_size=1).status_code == 200
    # n-best needs a beam of at least n: 3 candidates are priced with beam 3.
    r = _v1(s.client, ["a b"], beam_size=1, nbest=3)
    assert r.status_code == 413 and "45 decoding steps" in r.json()["error"]


def test_libretranslate_is_priced_too(serve_fakes) -> None:
    s = serve_fakes(max_text_tokens=5)
    r = s.client.post("/translate", json={"q": ["a", "a b c d e f"], "source": "de",
                                          "target": "en"})
    assert r.status_code == 413
    assert r.json() == {"error": "Invalid request: q[1]: 7 source subwords exceed "
                                 "NMT_MAX_TEXT_TOKENS=5"}
    r = s.client.post("/translate", data={"q": "a b c d e f", "source": "de", "target": "en"})
    assert r.json()["error"] == "Invalid request: q: 7 source subwords exceed NMT_MAX_TEXT_TOKENS=5"
    assert s.translators["fake-de-en"].calls == []


@pytest.fixture(scope="module")
def tiny_translator(tiny_bundle: Path) -> Translator:
    return Translator.from_checkpoint(tiny_bundle)


@pytest.mark.parametrize("text", ["a" * 5000, "\ufdfa" * 5000], ids=["repeated", "nfkc"])
def test_degenerate_texts_cost_their_subwords(serve_fakes, tiny_translator: Translator,
                                              text: str) -> None:
    # Both are within the 5,000-character limit. U+FDFA becomes 18 characters under NFKC.
    s = serve_fakes({"tiny-de-en": tiny_translator})
    subwords = tiny_translator.count_tokens([text])[0]
    assert subwords > 3000
    r = _v1(s.client, [text])
    assert r.status_code == 413
    assert r.json() == {"error": f"texts: {subwords} source subwords exceed "
                                 "NMT_MAX_TEXT_TOKENS=3000"}


def test_a_budget_spans_a_requests_model_calls(tiny_translator: Translator) -> None:
    settings = ServiceSettings(models_root="unused", max_request_units=3)
    budget = RequestBudget(settings, field="q", n_texts=2, prefix="Invalid request: ")
    text = "Ein Hund rennt. Der Mann schläft."
    units = tiny_translator.count_units([text])
    assert units == 2
    asyncio.run(budget.charge(tiny_translator, [text], indices=[0], fmt="text", beam_size=None))
    with pytest.raises(ApiError) as info:
        asyncio.run(budget.charge(tiny_translator, [text], indices=[1], fmt="text",
                                  beam_size=None))
    assert info.value.status == 413
    assert info.value.message.startswith("Invalid request: q: 4 model inputs")
    assert "NMT_MAX_REQUEST_UNITS=3" in info.value.message


def test_a_long_request_whose_client_has_gone_is_not_priced(tiny_translator: Translator,
                                                            monkeypatch) -> None:
    """Long requests wait for the one pricing thread; one whose client hung up meanwhile is
    dropped (499) without being priced. Short ones are priced at once, on the event loop."""
    from service import cost
    from service.request_scope import current_gone

    priced: list[int] = []
    counted: list[int] = []  # on_gone calls (the batcher's client_gone rejections)
    charge = RequestBudget._charge
    monkeypatch.setattr(RequestBudget, "_charge",
                        lambda self, tr, found, *a: priced.append(len(found.tokens)) or
                        charge(self, tr, found, *a))
    settings = ServiceSettings(models_root="unused")
    long_text = "Ein Hund rennt über die Wiese. " * (cost.INLINE_CHARS // 20)

    async def main() -> tuple[ApiError, list[int]]:
        gone = asyncio.Event()
        gone.set()  # the client has hung up already
        current_gone.set(gone)
        budget = RequestBudget(settings, field="texts", n_texts=1)
        with pytest.raises(ApiError) as info:
            await budget.charge(tiny_translator, [long_text], indices=[0], fmt="text",
                                beam_size=None, on_gone=lambda: counted.append(1))
        short = await budget.charge(tiny_translator, ["Ein Hund."], indices=[0], fmt="text",
                                    beam_size=None)
        return info.value, short

    refused, short = asyncio.run(main())
    assert refused.status == 499 and counted == [1]
    assert priced == [1] and short == tiny_translator.count_tokens(["Ein Hund."])
