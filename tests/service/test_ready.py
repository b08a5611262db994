"""/ready lists the bundles `nmt serve --skip-bad-models` left out (NMT_SKIPPED_MODELS)."""

from __future__ import annotations

import pytest

from service.settings import ServiceSettings


def test_ready_lists_skipped_bundles(serve_fakes) -> None:
    assert serve_fakes().client.get("/ready").json() == {"status": "ready"}
    why = {"bad-de-en": "bad-de-en/model.pt: config.model.emb_dim: 100000 is above the limit"}
    r = serve_fakes(skipped_models=why).client.get("/ready")
    assert r.status_code == 200 and r.json() == {"status": "ready", "skipped_models": why}


def test_skipped_models_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMT_SKIPPED_MODELS", '{"bad-de-en": "why"}')
    assert ServiceSettings().skipped_models == {"bad-de-en": "why"}
    monkeypatch.setenv("NMT_SKIPPED_MODELS", "{oops")
    with pytest.raises(ValueError, match="NMT_SKIPPED_MODELS: not a valid JSON object"):
        ServiceSettings()
