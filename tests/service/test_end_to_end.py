"""End to end: `nmt serve` (a real uvicorn process) with a tiny real bundle made here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from nmt.translator import Translator

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["ein hund", "der mann rennt", "eine katze liest", "zwei hunde schlafen",
         "die frau", "ein buch und ein hund", "der mann und die frau", "katzen"]


def test_concurrent_requests_match_the_translator_and_are_batched(live_server, tiny_bundle):
    translator = Translator.from_checkpoint(tiny_bundle)
    expected = [translator.translate([t], beam_size=2)[0].text for t in TEXTS]

    def native(text: str) -> str:
        r = httpx.post(f"{live_server}/v1/translate", timeout=30,
                       json={"texts": [text], "source": "de", "target": "en", "beam_size": 2})
        r.raise_for_status()
        return r.json()["results"][0]["text"]

    def libre(text: str) -> str:
        r = httpx.post(f"{live_server}/translate", timeout=30,
                       data={"q": text, "source": "de", "target": "en"})
        r.raise_for_status()
        return r.json()["translatedText"]

    with ThreadPoolExecutor(len(TEXTS)) as pool:
        assert list(pool.map(native, TEXTS)) == expected
        # /translate uses the model's default beam (2 here) and strips the text.
        assert list(pool.map(libre, TEXTS)) == expected

    metrics = httpx.get(f"{live_server}/metrics").text
    name = tiny_bundle.name
    batches = float(re.search(rf'nmt_batch_requests_count{{model="{name}"}} (\S+)', metrics)[1])
    singles = float(re.search(
        rf'nmt_batch_requests_bucket{{le="1.0",model="{name}"}} (\S+)', metrics)[1])
    assert batches < 2 * len(TEXTS)  # fewer model calls than requests
    assert singles < batches  # at least one call merged more than one request
    assert 'route="/v1/translate",status="200"' in metrics


def test_models_languages_and_attention(live_server):
    models = httpx.get(f"{live_server}/v1/models").json()
    assert models[0]["metadata"] == {"test_scores": {"bleu": 0.1}}
    assert httpx.get(f"{live_server}/languages").json()[0]["targets"] == ["en"]
    r = httpx.post(f"{live_server}/v1/translate", json={
        "texts": ["ein hund"], "source": "de", "target": "en", "nbest": 2,
        "return_attention": True}).json()
    att = r["results"][0]["attention"]
    assert len(att["weights"]) == len(att["target_tokens"])
    assert all(len(row) == len(att["source_tokens"]) for row in att["weights"])
    assert len(r["results"][0]["candidates"]) == 2


def test_serve_without_bundles_fails_clearly(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nmt", "serve", "--models-root", str(tmp_path)],
                       cwd=REPO, capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 2
    assert "no model bundles under" in r.stderr and "Traceback" not in r.stderr
