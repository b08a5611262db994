"""Measuring requests (service/pricing.py, nmt/source_side.py): the pricing process measures as
the Translator would, skips a request nobody waits for, and survives being killed."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nmt.translator import Translator
from service.pricing import NICENESS, Measure, PricingProcess, measure, model_inputs

# Sentences, a line break, a long run without punctuation (cut into clauses), markup.
TEXTS = ["Ein Hund rennt. Zwei Männer spielen im Park.\nEine Frau lacht.",
         "und dann " * 60 + "endlich",
         "<p>Ein <b>Kind</b> lacht.</p><p>Ein Hund.</p>"]
NO_LIMIT = {"max_text_tokens": 10**6, "max_total_tokens": 10**6}


@pytest.fixture(scope="module")
def translator(tiny_bundle: Path) -> Translator:
    return Translator.from_checkpoint(tiny_bundle)


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_a_pickled_source_side_measures_as_its_translator(translator: Translator,
                                                          fmt: str) -> None:
    source = pickle.loads(pickle.dumps(translator.source))
    found = measure(source, TEXTS, fmt, **NO_LIMIT)
    assert found == measure(translator, TEXTS, fmt, **NO_LIMIT)
    blocks = [model_inputs(t, fmt) for t in TEXTS]  # the text itself, or its HTML blocks
    assert found.tokens == [sum(translator.count_tokens(b)) for b in blocks]
    assert found.units is not None and found.units > len(TEXTS)  # sentences and clauses


def test_texts_over_a_subword_limit_are_not_planned(translator: Translator) -> None:
    tokens = translator.count_tokens(TEXTS)
    assert measure(translator, TEXTS, "text", max_text_tokens=max(tokens) - 1,
                   max_total_tokens=10**6) == Measure(tokens, None)
    assert measure(translator, TEXTS, "text", max_text_tokens=10**6,
                   max_total_tokens=sum(tokens) - 1) == Measure(tokens, None)


def test_the_source_side_needs_no_torch() -> None:
    """What the pricing process imports: torch stays out (it starts in a fraction of a second)."""
    probe = ("import sys, service.pricing, nmt.source_side; "
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "False"


def test_the_pricing_process_measures_skips_and_survives_a_kill(translator: Translator) -> None:
    process = PricingProcess({"tiny": translator.source}).start()
    expected = measure(translator, TEXTS, "text", **NO_LIMIT)

    async def ask(skip: bool = False) -> Measure | None:
        return await process.measure("tiny", TEXTS, "text", skip=lambda: skip, **NO_LIMIT)

    try:
        first = process.process_id()
        assert first != os.getpid()
        # Below the rest of the service: a shared core goes to decoding first.
        assert os.getpriority(os.PRIO_PROCESS, first) == min(
            19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
        assert asyncio.run(ask()) == expected
        assert asyncio.run(ask(skip=True)) is None  # its client left before its turn

        os.kill(first, signal.SIGKILL)
        assert asyncio.run(ask()) == expected  # measured here, a new process started
        assert asyncio.run(ask()) == expected
        assert process.process_id() != first
    finally:
        process.close()


def test_the_pricing_process_ends_when_the_server_is_killed() -> None:
    """kill -9 of the server (or the OOM killer) must not leave its pricing process behind."""
    server = subprocess.Popen(
        [sys.executable, "-c",
         "import time\nfrom service.pricing import PricingProcess\n"
         "p = PricingProcess({}).start()\nprint(p.process_id(), flush=True)\ntime.sleep(120)"],
        cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, text=True)
    child = None
    try:
        assert server.stdout is not None
        child = int(server.stdout.readline())
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        deadline = time.monotonic() + 10
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(child), f"pricing process {child} outlived its server"
    finally:
        if server.poll() is None:
            server.kill()
        if child is not None and _running(child):
            os.kill(child, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit is reaped by init, later)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
