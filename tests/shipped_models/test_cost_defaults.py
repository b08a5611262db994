"""The service's default cost limits (service/cost.py) let ordinary text through on every shipped
model: a 5,000-character paragraph at beam 8 (the largest a request may ask), and four of them
in one request, while one letter repeated 5,000 times is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nmt.translator import Translator
from service.cost import RequestBudget
from service.errors import ApiError
from service.settings import ServiceSettings

MODELS = Path(__file__).resolve().parents[2] / "models"
BUNDLES = sorted(p.name for p in MODELS.iterdir() if (p / "model.pt").is_file())
PROSE = {
    "de": "Die Stadtverwaltung hat am Dienstag angekündigt, dass die Brücke über den Fluss ab "
          "nächster Woche für drei Monate gesperrt wird. Pendler sollen auf Busse und Bahnen "
          "ausweichen, die in dieser Zeit häufiger fahren. Viele Geschäftsleute in der Altstadt "
          "befürchten weniger Kundschaft, während Anwohner sich über ruhigere Straßen freuen. ",
    "en": "The city council announced on Tuesday that the bridge across the river will be "
          "closed for three months from next week. Commuters are asked to take buses and "
          "trains, which will run more often during that time. Many shop owners in the old "
          "town fear fewer customers, while residents look forward to quieter streets. ",
}


@pytest.fixture(scope="module", params=BUNDLES)
def translator(request: pytest.FixtureRequest) -> Translator:
    return Translator.from_checkpoint(MODELS / request.param)


def _charge(translator: Translator, texts: list[str], beam: int) -> None:
    budget = RequestBudget(ServiceSettings(models_root="unused"), field="texts",
                           n_texts=len(texts))
    asyncio.run(budget.charge(translator, texts, indices=range(len(texts)), fmt="text",
                              beam_size=beam))


def test_ordinary_paragraphs_pass_the_default_limits(translator: Translator) -> None:
    prose = PROSE[translator.src_lang]
    paragraph = (prose * (5000 // len(prose) + 1))[:5000]
    max_beam = ServiceSettings(models_root="unused").max_beam
    _charge(translator, [paragraph], beam=max_beam)
    _charge(translator, [paragraph] * 4, beam=max_beam)


def test_a_repeated_letter_is_refused_by_default(translator: Translator) -> None:
    with pytest.raises(ApiError, match="NMT_MAX_TEXT_TOKENS=3000"):
        _charge(translator, ["a" * 5000], beam=5)
