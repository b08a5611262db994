"""The micro-batcher: merging, option grouping, the bounded queue, timeouts, the off switch."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from service.batching import (
    Arrivals,
    DecodeOptions,
    MicroBatcher,
    QueueFull,
    TranslationTimeout,
)
from service.metrics import ServiceMetrics


class Recorder:
    """A translate function that records its calls and can be held busy."""

    def __init__(self):
        self.calls: list[tuple[list[str], DecodeOptions]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def __call__(self, texts, options, abandoned=lambda: ()):
        self.calls.append((list(texts), options))
        self.started.set()
        self.gate.wait(10)
        return [f"{t}/{options.beam_size}" for t in texts]


@pytest.fixture
def make_batcher():
    made = []

    def make(fn, **kwargs):
        b = MicroBatcher(fn, name="m", metrics=ServiceMetrics(), **kwargs)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def _hold_busy(rec, batcher):
    """Starts one request and waits until the worker is inside the model with it."""
    rec.gate.clear()
    first = batcher.submit(["first"], [1], DecodeOptions())
    assert rec.started.wait(5)
    return first


def test_queued_requests_are_merged_by_options(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=0.0)
    first = _hold_busy(rec, batcher)
    a = batcher.submit(["a1", "a2"], [1, 1], DecodeOptions(beam_size=2))
    b = batcher.submit(["b"], [1], DecodeOptions(beam_size=5))
    c = batcher.submit(["c"], [1], DecodeOptions(beam_size=2))
    rec.gate.set()
    assert first.result(5).translations == ["first/None"]
    assert a.result(5).translations == ["a1/2", "a2/2"]
    assert c.result(5).translations == ["c/2"]
    assert b.result(5).translations == ["b/5"]
    assert [texts for texts, _ in rec.calls] == [["first"], ["a1", "a2", "c"], ["b"]]
    assert a.result().batch_texts == 3


def test_token_budget_splits_batches(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=0.0, max_batch_tokens=10)
    _hold_busy(rec, batcher)
    futures = [batcher.submit([f"t{i}"], [4], DecodeOptions()) for i in range(4)]
    rec.gate.set()
    for f in futures:
        f.result(5)
    assert [len(texts) for texts, _ in rec.calls[1:]] == [2, 2]


def test_disabled_batching_runs_each_request_alone(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, enabled=False)
    _hold_busy(rec, batcher)
    futures = [batcher.submit([f"t{i}"], [1], DecodeOptions()) for i in range(3)]
    rec.gate.set()
    for f in futures:
        f.result(5)
    assert [texts for texts, _ in rec.calls] == [["first"], ["t0"], ["t1"], ["t2"]]


def test_lone_request_does_not_wait_when_nothing_else_is_arriving(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=30.0, arrivals=Arrivals())
    start = time.perf_counter()
    assert batcher.submit(["alone"], [1], DecodeOptions()).result(10).translations == ["alone/None"]
    assert time.perf_counter() - start < 5.0  # not the 30 s timer


def test_worker_waits_for_requests_still_being_read(make_batcher):
    """Two requests arrive; the first is queued while the second is still being parsed: the
    worker holds the first until the second is queued, then runs both in one call."""
    arrivals = Arrivals()
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=30.0, arrivals=arrivals)
    first_request, second_request = contextvars.copy_context(), contextvars.copy_context()
    first_request.run(arrivals.arrive)
    second_request.run(arrivals.arrive)
    assert arrivals.pending == 2
    start = time.perf_counter()
    a = first_request.run(batcher.submit, ["a"], [1], DecodeOptions())
    assert arrivals.pending == 1
    time.sleep(0.2)
    assert not rec.calls  # held back: another request is on its way
    b = second_request.run(batcher.submit, ["b"], [1], DecodeOptions())
    assert (a.result(10).translations, b.result(10).translations) == (["a/None"], ["b/None"])
    assert [texts for texts, _ in rec.calls] == [["a", "b"]]
    assert arrivals.pending == 0 and time.perf_counter() - start < 10.0


def test_rejected_requests_do_not_count_as_arriving(serve_fakes):
    served = serve_fakes()
    bad = served.client.post("/v1/translate", content=b"{not json",
                              headers={"content-type": "application/json"})
    assert bad.status_code == 400 or bad.status_code == 422
    ok = served.client.post("/v1/translate", json={"texts": ["hallo"], "source": "de",
                                                  "target": "en"})
    assert ok.status_code == 200
    assert served.app.state.arrivals.pending == 0


def test_full_queue_refuses(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, max_queue=3)
    _hold_busy(rec, batcher)
    batcher.submit(["a", "b"], [1, 1], DecodeOptions())
    with pytest.raises(QueueFull):
        batcher.submit(["c", "d"], [1, 1], DecodeOptions())
    batcher.submit(["c"], [1], DecodeOptions())
    rec.gate.set()


def test_timeout_drops_the_waiting_request(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec)
    _hold_busy(rec, batcher)
    with pytest.raises(TranslationTimeout):
        asyncio.run(batcher.translate(["late"], [1], DecodeOptions(), timeout_s=0.05))
    rec.gate.set()
    batcher.submit(["next"], [1], DecodeOptions()).result(5)
    assert ["late"] not in [texts for texts, _ in rec.calls]


def test_model_failure_reaches_every_merged_request(make_batcher):
    def broken(texts, options, abandoned):
        raise RuntimeError("boom")

    batcher = make_batcher(broken)
    f = batcher.submit(["x"], [1], DecodeOptions())
    with pytest.raises(RuntimeError, match="boom"):
        f.result(5)


def test_concurrent_requests_via_the_api_are_merged(serve_fakes, fake):
    """Busy model + concurrent HTTP requests: they share one model call, results unchanged."""
    translator = fake()
    served = serve_fakes({"m": translator}, max_wait_ms=20)
    translator.gate.clear()
    results = {}

    def post(i):
        r = served.client.post("/v1/translate", json={"texts": [f"w{i} x"], "source": "de",
                                                       "target": "en"})
        results[i] = r.json()["results"][0]["text"]

    threads = [threading.Thread(target=post, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    while sum(len(c["texts"]) for c in translator.calls) < 1:
        threading.Event().wait(0.01)
    threading.Event().wait(0.2)  # the others queue up behind the busy model
    translator.gate.set()
    for t in threads:
        t.join(10)
    assert results == {i: f"[en] x w{i}" for i in range(5)}
    assert max(len(c["texts"]) for c in translator.calls) > 1
    metrics = served.client.get("/metrics").text
    assert 'nmt_batch_requests_bucket{le="1.0",model="m"}' in metrics
