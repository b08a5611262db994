"""Service test fixtures: a FakeTranslator with the Translator's attributes, app factories, and
a real `nmt serve` process with a tiny bundle made here."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient

from nmt.checkpoint import export_bundle
from nmt.config import config_from_dict
from nmt.models.seq2seq import build_model
from nmt.tokenization import train_tokenizer
from nmt.translator import Candidate, Translation
from service.deps import get_registry
from service.main import create_app
from service.registry import ModelRegistry
from service.settings import ServiceSettings


class FakeTranslator:
    """Translates by reversing the words and tagging the target language: "[en] Hund Ein".

    Candidate k > 0 appends " #k". Attention and the word alignment are the (reversed) identity
    (the "[en]" tag aligns to the first source word); glossary terms are replaced. A model with
    domains tags the target with the domain too ("[en/caption] ..."), and a text holding "WARN"
    gets a warning. Every call is recorded.
    """

    def __init__(self, src: str = "de", tgt: str = "en", *, has_attention: bool = True,
                 delay_s: float = 0.0, fail: bool = False, domains: tuple[str, ...] = (),
                 default_domain: str | None = None):
        self.src_lang, self.tgt_lang = src, tgt
        self.domains = list(domains)
        self.default_domain = default_domain
        self.config = config_from_dict({"data": {"train_src": "x", "train_tgt": "y",
                                                 "src_lang": src, "tgt_lang": tgt},
                                        "decode": {"beam_size": 2}})
        self.metadata = {"valid_scores": {"bleu": 12.5}, "epochs": 3}
        self.has_attention = has_attention
        self.max_input_tokens = 100
        self.delay_s = delay_s
        self.fail = fail
        self.calls: list[dict[str, Any]] = []
        self.gate = threading.Event()  # tests may clear it to hold the model busy
        self.gate.set()

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 1 for t in texts]

    def count_units(self, texts: Sequence[str]) -> int:
        """One model input per "."-separated sentence that has words."""
        return sum(1 for t in texts for sentence in t.split(".") if sentence.split())

    def translate(self, texts: list[str], *, beam_size: int | None = None, nbest: int = 1,
                  length_penalty: float | None = None, batch_tokens: int | None = None,
                  return_attention: bool = False, progress: bool = False,
                  domain: str | None = None, align: bool = False, terms: Sequence[str] = (),
                  glossary: Mapping[str, str] | None = None,
                  abandoned: Callable[[], Collection[int]] | None = None) -> list[Translation]:
        self.calls.append({"texts": list(texts), "beam_size": beam_size, "nbest": nbest,
                           "return_attention": return_attention, "domain": domain,
                           "align": align, "terms": list(terms), "glossary": dict(glossary or {})})
        if domain is not None and domain not in self.domains:
            raise ValueError(f"unknown domain {domain!r}")  # the service must check first
        self.gate.wait(10)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("/secret/path/model.pt: CUDA exploded")
        out = []
        for text in texts:
            words = text.split()
            tokens = ["▁" + w for w in reversed(words)]
            n = len(words)
            attention = ([[1.0 if s == n - 1 - t else 0.0 for s in range(n)] for t in range(n)]
                         if return_attention and self.has_attention else None)
            tag = self.tgt_lang if domain is None else f"{self.tgt_lang}/{domain}"
            # Like the Translator, a text without words comes back as it was.
            best = f"[{tag}] " + " ".join(reversed(words)) if words else text
            for term, fixed in (glossary or {}).items():
                best = best.replace(term, fixed)
            alignment = ([0] * (best != "") + list(reversed(range(n)))) if align else None
            cands = [Candidate(best if k == 0 else f"{best} #{k}", -1.0 * (k + 1), tokens,
                               attention,
                               None if alignment is None else alignment + [0] * (k > 0))
                     for k in range(nbest)]
            warnings = ["the fake noticed WARN"] if "WARN" in words else []
            out.append(Translation(text, ["▁" + w for w in words], cands, warnings))
        return out


@pytest.fixture
def fake() -> type[FakeTranslator]:
    """The FakeTranslator class (a fixture, so test modules need not import a conftest)."""
    return FakeTranslator


@dataclass
class Served:
    client: TestClient
    registry: ModelRegistry
    translators: dict[str, FakeTranslator]
    app: Any


@pytest.fixture
def serve_fakes() -> Iterator[Callable[..., Served]]:
    """Builds an app serving fake translators: serve_fakes(translators=..., **settings)."""
    made: list[ModelRegistry] = []

    def make(translators: dict[str, FakeTranslator] | None = None, **settings: Any) -> Served:
        translators = translators or {"fake-de-en": FakeTranslator("de", "en")}
        config = ServiceSettings(models_root="unused", **settings)
        app = create_app(config)
        registry = ModelRegistry(translators, settings=config, metrics=app.state.metrics,
                                 arrivals=app.state.arrivals)
        made.append(registry)
        app.dependency_overrides[get_registry] = lambda: registry
        # No `with`: the lifespan does not run, nothing loads.
        client = TestClient(app, raise_server_exceptions=False)
        return Served(client, registry, translators, app)

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def served(serve_fakes: Callable[..., Served]) -> Served:
    """de->en (with attention) and fr->en (without)."""
    return serve_fakes({"fake-de-en": FakeTranslator("de", "en"),
                        "fake-fr-en": FakeTranslator("fr", "en", has_attention=False)})


REPO = Path(__file__).resolve().parents[2]
SENTENCES = ["ein hund rennt", "der mann schläft", "eine frau liest ein buch", "zwei katzen",
             "der hund und die katze", "a dog runs", "the man sleeps", "a woman reads a book"]


TINY_MODEL = {"cell": "gru", "emb_dim": 8, "enc_hidden": 8, "dec_hidden": 8, "attn_dim": 8,
              "dropout": 0.0, "emb_dropout": 0.0}
TINY_DECODE = {"beam_size": 2, "max_len_a": 1.0, "max_len_b": 3}


def _export_tiny(out_dir: Path, data: dict[str, Any], user_symbols: list[str],
                 metadata: dict[str, Any]) -> Path:
    torch.manual_seed(0)
    config = config_from_dict({"data": data, "model": TINY_MODEL, "decode": TINY_DECODE})
    tokenizer = train_tokenizer(SENTENCES * 20, vocab_size=40, user_symbols=user_symbols)
    model = build_model(config.model, src_vocab_size=tokenizer.vocab_size,
                        tgt_vocab_size=tokenizer.vocab_size)
    return export_bundle(out_dir, config=config, state_dict=model.state_dict(),
                         src_tokenizer=tokenizer, tgt_tokenizer=tokenizer, metadata=metadata)


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle with random weights: translations are nonsense, but deterministic."""
    return _export_tiny(tmp_path_factory.mktemp("models") / "tiny-de-en",
                        {"train_src": "x", "train_tgt": "y", "src_lang": "de", "tgt_lang": "en"},
                        [], {"test_scores": {"bleu": 0.1}})


@pytest.fixture(scope="session")
def tagged_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny de->en bundle with two domain tags (general, the default, and caption) and a
    model card."""
    corpora = [{"name": "web", "src": "x", "tgt": "y", "tag": "general"},
               {"name": "captions", "src": "x", "tgt": "y", "tag": "caption"}]
    bundle = _export_tiny(
        tmp_path_factory.mktemp("models") / "tiny-general-de-en",
        {"corpora": corpora, "src_lang": "de", "tgt_lang": "en", "default_tag": "general"},
        ["<general>", "<caption>"], {"valid_scores": {"bleu": 0.2}, "parameters": 1234})
    (bundle / "MODEL_CARD.md").write_text(
        "# Model card: tiny-general-de-en\n\nA tiny general-purpose test model.\n")
    return bundle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_server(proc: subprocess.Popen) -> None:
    """Ends a server started by `_start_server`: SIGTERM, then SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _start_server(bundle: Path | list[Path], log_path: Path, *extra: str,
                  env: Mapping[str, str] | None = None, ready_s: float = 60.0
                  ) -> tuple[subprocess.Popen, str]:
    """Runs `nmt serve` on a random port (with `env` added to the environment); returns once
    /ready answers 200 (within `ready_s`)."""
    port = _free_port()
    # Decoding in the server process unless a test asks for model workers (test_model_workers
    # does): each worker is one more interpreter to start, and these tests are about HTTP.
    env = {**os.environ, "NMT_NUM_THREADS": "1", "NMT_MODEL_PROCESSES": "0",
           "PYTHONPATH": str(REPO), **(env or {})}
    models = [a for b in (bundle if isinstance(bundle, list) else [bundle])
              for a in ("--model", str(b))]
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall the server
        proc = subprocess.Popen(
            [sys.executable, "-m", "nmt", "serve", *models, "--port", str(port),
             "--log-level", "warning", *extra],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not become ready within {ready_s:g} s")


@pytest.fixture(scope="session")
def live_server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`nmt serve --model <tiny bundle>` on a random 127.0.0.1 port; yields its base URL."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = _start_server(tiny_bundle, log_path, "--max-wait-ms", "50")
    yield url
    stop_server(proc)


@pytest.fixture(scope="session")
def live_multi_server(tiny_bundle: Path, tagged_bundle: Path,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`nmt serve` with two de->en models: tiny-de-en (no tags) and tiny-general-de-en (the
    pair's default: it has domains)."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = _start_server([tiny_bundle, tagged_bundle], log_path)
    yield url
    stop_server(proc)
