"""The micro-batcher: merging, option grouping, the bounded queue, timeouts, the off switch."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from service.batching import (
    Arrivals,
    ClientGone,
    DecodeOptions,
    MicroBatcher,
    QueueFull,
    TranslationTimeout,
)
from service.metrics import ServiceMetrics
from service.request_scope import current_gone


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


def test_a_large_request_shares_every_call_with_a_small_one(make_batcher):
    """Deficit round-robin: a 40-text request from one client and a 1-text request from another
    arriving behind it: the small one goes into the next call, not after the whole document."""
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=0.0, max_batch_tokens=100, slice_tokens=10)
    first = _hold_busy(rec, batcher)
    big = batcher.submit([f"d{i}" for i in range(40)], [5] * 40, DecodeOptions(), client="doc")
    small = batcher.submit(["hello"], [3], DecodeOptions(), client="chat")
    rec.gate.set()
    first.result(5)
    assert small.result(5).translations == ["hello/None"]
    assert big.result(5).translations == [f"d{i}/None" for i in range(40)]
    calls = [texts for texts, _ in rec.calls[1:]]
    assert calls[0] == ["d0", "d1", "hello"]  # one share (10 tokens) each, in one call
    assert all(len(c) <= 2 for c in calls[1:])  # shared mode: one share per call while shared
    assert [t for c in calls for t in c if t != "hello"] == [f"d{i}" for i in range(40)]


def test_a_lone_client_fills_whole_calls(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=0.0, max_batch_tokens=100, slice_tokens=10)
    batcher.shared_for_s = 0.0  # no other client seen recently
    first = _hold_busy(rec, batcher)
    big = batcher.submit([f"d{i}" for i in range(40)], [5] * 40, DecodeOptions())
    rec.gate.set()
    first.result(5)
    big.result(5)
    assert [len(texts) for texts, _ in rec.calls[1:]] == [20, 20]


def test_one_client_cannot_fill_the_queue(make_batcher):
    rec = Recorder()
    batcher = make_batcher(rec, max_queue=100, max_client_queue=3)
    _hold_busy(rec, batcher)
    batcher.submit(["a", "b"], [1, 1], DecodeOptions(), client="greedy")
    with pytest.raises(QueueFull, match="at most 3 per client"):
        batcher.submit(["c", "d"], [1, 1], DecodeOptions(), client="greedy")
    batcher.submit(["e", "f", "g"], [1, 1, 1], DecodeOptions(), client="polite")  # not refused
    rec.gate.set()


class Stepper:
    """A translate function that 'decodes' in steps of 10 ms, dropping abandoned texts at each
    step as the Translator does; records how many steps ran and for which texts."""

    def __init__(self, steps: int = 200):
        self.steps = steps
        self.ran: list[list[str]] = []
        self.call_times: list[float] = []  # when each call began

    def __call__(self, texts, options, abandoned=lambda: ()):
        live = list(range(len(texts)))
        self.call_times.append(time.perf_counter())
        for _ in range(self.steps):
            gone = set(abandoned())
            live = [i for i in live if i not in gone]
            if not live:
                break
            self.ran.append([texts[i] for i in live])
            time.sleep(0.01)
        return [f"{t}/done" for t in texts]


def test_a_timed_out_request_leaves_the_running_call_at_the_next_step(make_batcher):
    stepper = Stepper()
    batcher = make_batcher(stepper, max_wait_s=0.0)

    async def main():
        with pytest.raises(TranslationTimeout):
            await batcher.translate(["slow"], [1], DecodeOptions(), timeout_s=0.1)
        return time.perf_counter()

    gave_up = asyncio.run(main())
    # The worker is free at once: the next request starts without waiting out the 2 s call.
    stepper.steps = 1
    assert batcher.submit(["next"], [1], DecodeOptions()).result(5).translations == ["next/done"]
    assert stepper.call_times[1] - gave_up < 0.5
    assert 1 <= sum(1 for texts in stepper.ran if texts == ["slow"]) <= 15  # ~0.1 s of steps


def test_a_disconnected_client_leaves_the_call_and_the_others_continue(make_batcher):
    stepper = Stepper(steps=30)
    batcher = make_batcher(stepper, max_wait_s=0.1, arrivals=None)  # waits 0.1 s for company

    async def main():
        kept = batcher.submit(["kept"], [1], DecodeOptions(), client="a")
        gone = asyncio.Event()
        current_gone.set(gone)
        task = asyncio.ensure_future(batcher.translate(["left"], [1], DecodeOptions(),
                                                       timeout_s=30))
        while not stepper.ran:  # the shared call is running
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        gone.set()  # what RequestScopeMiddleware does when the client disconnects
        with pytest.raises(ClientGone):
            await task
        return kept

    kept = asyncio.run(main())
    assert kept.result(5).translations == ["kept/done"]
    assert ["kept", "left"] in stepper.ran  # they shared a call...
    assert stepper.ran[-1] == ["kept"]  # ...which went on without the one that left
    assert sum(1 for texts in stepper.ran if texts == ["kept"]) >= 10


def test_a_short_request_with_other_options_waits_for_at_most_one_long_call(make_batcher):
    """Long texts at beam 8 from one client, a short default-beam request from another: the
    short one's call comes next (it can pay for its slice, the long texts cannot yet), not
    after two of the long calls."""
    rec = Recorder()
    batcher = make_batcher(rec, max_wait_s=0.0, max_batch_tokens=4000, slice_tokens=64)
    first = _hold_busy(rec, batcher)
    long = batcher.submit([f"long{i}" for i in range(4)], [1020] * 4,
                          DecodeOptions(beam_size=8, nbest=6), client="attacker")
    short = batcher.submit(["short"], [3], DecodeOptions(), client="probe")
    rec.gate.set()
    first.result(5)
    short.result(5)
    long.result(5)
    calls = [texts for texts, _ in rec.calls[1:]]
    assert calls[0] == ["short"]  # it can pay for its slice now; the long texts cannot yet
    assert sorted(t for c in calls for t in c if t != "short") == [f"long{i}" for i in range(4)]
    assert all(len(c) == 1 for c in calls)  # a 1,020-subword text is one share's slice alone


class Gated:
    """A translate function that holds calls for texts starting with "hold" until released."""

    def __init__(self):
        self.release = threading.Event()
        self.holding = threading.Event()
        self.calls: list[list[str]] = []

    def __call__(self, texts, options, abandoned=lambda: ()):
        self.calls.append(list(texts))
        if any(t.startswith("hold") for t in texts):
            self.holding.set()
            self.release.wait(10)
        return [f"{t}/ok" for t in texts]


def test_a_second_lane_serves_another_client_while_a_long_call_runs(make_batcher):
    gated = Gated()
    batcher = make_batcher(gated, max_wait_s=0.0, lanes=2)
    long = batcher.submit(["hold: a long paragraph"], [900], DecodeOptions(), client="docs")
    assert gated.holding.wait(5)
    # Over NMT_SPARE_CALL_COST (512 subwords x beam): not a spare call, it waits for its lane.
    more_of_docs = batcher.submit(["docs again"], [600], DecodeOptions(), client="docs")
    short = batcher.submit(["short"], [3], DecodeOptions(), client="chat")
    assert short.result(5).translations == ["short/ok"]  # while the long call is still held
    time.sleep(0.2)
    assert not long.done() and not more_of_docs.done()  # one lane per client
    gated.release.set()
    assert long.result(5).translations == ["hold: a long paragraph/ok"]
    assert more_of_docs.result(5).translations == ["docs again/ok"]


def test_an_idle_lane_takes_a_busy_clients_short_work_as_a_spare_call(make_batcher):
    """One client alone (all traffic through one proxy address): its short texts do not wait
    for its long call; only short ones, and together at most the spare cost (beam included)."""
    gated = Gated()
    metrics = ServiceMetrics()
    batcher = MicroBatcher(gated, name="m", metrics=metrics, max_wait_s=0.0, lanes=2,
                           spare_cost=100, default_beam=5)
    try:
        long = batcher.submit(["hold: a paragraph"], [900], DecodeOptions(), client="proxy")
        assert gated.holding.wait(5)
        beam1 = DecodeOptions(beam_size=1)
        short = [batcher.submit([f"s{i}"], [40], beam1, client="proxy") for i in range(3)]
        # The model's default beam (5) x 30 subwords is over 100: no spare call for it.
        beam_default = batcher.submit(["b"], [30], DecodeOptions(), client="proxy")
        assert [f.result(5).translations for f in short] == [["s0/ok"], ["s1/ok"], ["s2/ok"]]
        assert not long.done() and not beam_default.done()
        # 100 subwords at beam 1: s0 and s1 in one spare call, s2 in the next.
        spare = [c for c in gated.calls if not c[0].startswith("hold")]
        assert spare == [["s0"], ["s1", "s2"]] or spare == [["s0", "s1"], ["s2"]], spare
        assert metrics.spare_calls.labels("m")._value.get() == len(spare)
        # A second client shows up: the free lane serves it at once, and is kept free for it
        # from then on (no spare calls while another client has had work within 2 s).
        assert batcher.submit(["c"], [3], beam1, client="chat").result(5).translations == ["c/ok"]
        later = batcher.submit(["s3"], [40], beam1, client="proxy")
        time.sleep(0.2)
        assert not later.done()
        gated.release.set()
        assert long.result(5).translations == ["hold: a paragraph/ok"]
        assert beam_default.result(5).translations == ["b/ok"]
        assert later.result(5).translations == ["s3/ok"]
    finally:
        gated.release.set()
        batcher.close()


def test_a_lane_gathering_a_call_keeps_its_client_from_the_other_lane(make_batcher):
    """While a lane waits for more requests (others are still being read), the client of its
    call counts as busy: the other lane does not take that client's long work meanwhile; it
    joins the gathering call."""
    arrivals = Arrivals()
    gated = Gated()
    batcher = make_batcher(gated, max_wait_s=0.5, lanes=2, arrivals=arrivals)
    on_its_way = contextvars.copy_context()
    on_its_way.run(arrivals.arrive)  # keeps the first lane gathering for up to 0.5 s
    first = batcher.submit(["a"], [600], DecodeOptions(), client="attacker")
    time.sleep(0.05)
    second = batcher.submit(["b"], [600], DecodeOptions(), client="attacker")
    assert (first.result(5).translations, second.result(5).translations) == (["a/ok"],
                                                                              ["b/ok"])
    assert gated.calls == [["a", "b"]]


def test_one_lane_runs_calls_one_after_another(make_batcher):
    gated = Gated()
    batcher = make_batcher(gated, max_wait_s=0.0, lanes=1)
    long = batcher.submit(["hold"], [900], DecodeOptions(), client="docs")
    assert gated.holding.wait(5)
    short = batcher.submit(["short"], [3], DecodeOptions(), client="chat")
    time.sleep(0.2)
    assert not short.done()
    gated.release.set()
    assert (long.result(5).translations, short.result(5).translations) == (["hold/ok"],
                                                                            ["short/ok"])
