"""Model worker processes (service/model_workers.py): the decoder runs outside the HTTP process,
with the same results, cancellation across the process boundary, and a dead worker replaced."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from nmt.translator import ABANDONED, Translator, TranslatorError
from service.batching import DecodeOptions, translate_with
from service.model_workers import ModelWorkerLost, ModelWorkerPool, WorkerSpec
from tests.service.conftest import _start_server, stop_server
from tests.support.tiny import write_tiny_bundle

TEXTS = ["ein hund rennt", "zwei männer spielen fußball im park", "eine frau", "ein kind lacht"]


@pytest.fixture(scope="module")
def long_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny model that decodes 1,000 steps: a call that takes a while."""
    return write_tiny_bundle(tmp_path_factory.mktemp("models") / "long-de-en",
                             decode={"max_len_a": 0.0, "max_len_b": 1000, "min_len": 999},
                             max_len=1000)


@pytest.fixture(scope="module")
def pool(tiny_bundle: Path, long_bundle: Path):
    restarts: list[int] = []
    pool = ModelWorkerPool(WorkerSpec({"tiny": tiny_bundle, "long": long_bundle},
                                      num_threads=1),
                           processes=2, on_restart=lambda: restarts.append(1)).start()
    pool.restarts = restarts  # type: ignore[attr-defined]
    yield pool
    pool.close()


@pytest.mark.parametrize("options", [
    DecodeOptions(beam_size=1),
    DecodeOptions(beam_size=3, nbest=2, return_attention=True),
    DecodeOptions(beam_size=2, align=True, terms=("park",)),
], ids=["greedy", "beam-nbest-attention", "align-terms"])
def test_a_worker_translates_exactly_as_this_process(pool, tiny_bundle, options) -> None:
    here = translate_with(Translator.from_checkpoint(tiny_bundle), TEXTS, options, lambda: ())
    assert pool.translate("tiny", TEXTS, options, lambda: ()) == here


def test_a_translator_error_reaches_the_caller_as_itself(pool) -> None:
    with pytest.raises(TranslatorError, match="beam"):
        pool.translate("tiny", TEXTS, DecodeOptions(beam_size=0), lambda: ())
    assert pool.translate("tiny", TEXTS[:1], DecodeOptions(), lambda: ())  # still serving


def test_abandoned_texts_leave_the_workers_call_at_its_next_step(pool) -> None:
    texts = ["ein hund rennt"] * 4
    options = DecodeOptions(beam_size=4)
    start = time.perf_counter()
    full = pool.translate("long", texts, options, lambda: ())
    full_s = time.perf_counter() - start
    assert all(len(tr.candidates[0].tokens) >= 999 for tr in full)

    gone = threading.Event()
    threading.Timer(full_s / 5, gone.set).start()
    start = time.perf_counter()
    cut = pool.translate("long", texts, options, lambda: {0, 1, 2, 3} if gone.is_set() else ())
    cut_s = time.perf_counter() - start
    assert all(ABANDONED in tr.warnings for tr in cut)
    assert cut_s < full_s / 2, (cut_s, full_s)


def test_only_the_abandoned_texts_stop(pool, long_bundle) -> None:
    texts = ["ein hund rennt", "eine frau"]
    threads = torch.get_num_threads()
    try:  # as many threads as the workers: 1,000 random steps amplify any rounding difference
        here = translate_with(Translator.from_checkpoint(long_bundle, num_threads=1), texts,
                              DecodeOptions(beam_size=1), lambda: {1})
    finally:
        torch.set_num_threads(threads)
    cut = pool.translate("long", texts, DecodeOptions(beam_size=1), lambda: {1})
    assert cut == here
    assert ABANDONED in cut[1].warnings and ABANDONED not in cut[0].warnings


def test_a_killed_worker_fails_its_call_and_is_replaced(pool) -> None:
    victim = pool.pids()[0]
    outcomes: list[BaseException | None] = []
    stop = threading.Event()

    def keep_calling() -> None:
        """Calls until told to stop (None) or until a call fails (its error)."""
        while not stop.is_set():
            try:
                pool.translate("long", ["ein hund rennt"] * 4, DecodeOptions(beam_size=4),
                               lambda: ())
            except BaseException as err:  # noqa: BLE001 - the test inspects it
                outcomes.append(err)
                return
        outcomes.append(None)

    # Two callers keep both workers busy; one worker is killed in the middle of a call.
    threads = [threading.Thread(target=keep_calling) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert sum(isinstance(o, ModelWorkerLost) for o in outcomes) == 1, outcomes
    assert outcomes.count(None) == 1
    assert victim not in pool.pids() and len(pool.pids()) == 2
    assert pool.restarts == [1]
    assert pool.translate("tiny", TEXTS, DecodeOptions(), lambda: ())


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_nmt_serve_decodes_in_worker_processes(tiny_bundle: Path, tmp_path: Path) -> None:
    """The default server: the HTTP process has two model worker processes and a pricing
    process (without torch) that measures long requests, answers as the translator does, and a
    worker killed with kill -9 costs one 503 at most, then is back."""
    proc, url = _start_server(tiny_bundle, tmp_path / "server.log", ready_s=120,
                              env={"NMT_MODEL_PROCESSES": "2"})  # the default on 2 cores
    try:
        spawned = [p for p in _children(proc.pid) if _is_spawned(p)]
        model_workers = [p for p in spawned if _has_torch(p)]
        pricing = [p for p in spawned if not _has_torch(p)]
        assert len(model_workers) == 2 and len(pricing) == 1, spawned
        body = {"texts": TEXTS, "source": "de", "target": "en", "beam_size": 2}
        answer = httpx.post(f"{url}/v1/translate", json=body, timeout=30)
        assert answer.status_code == 200
        translator = Translator.from_checkpoint(tiny_bundle)
        here = translator.translate(TEXTS, beam_size=2)
        assert [r["text"] for r in answer.json()["results"]] == [t.text for t in here]

        # Long requests (over 2,000 characters) are measured in the pricing process.
        before = _cpu_ticks(pricing[0])
        long_texts = ["Ein Hund rennt. " * 130] * 4  # 520 sentences, within the subword limits
        for _ in range(5):
            refused = httpx.post(f"{url}/v1/translate", timeout=30,
                                 json={"texts": long_texts, "source": "de", "target": "en"})
            assert refused.status_code == 413
        units = translator.count_units(long_texts)  # counted once the subwords passed
        assert refused.json() == {"error": f"texts: {units} model inputs (sentences and "
                                           "clauses) exceed NMT_MAX_REQUEST_UNITS=500 per "
                                           "request"}
        assert _cpu_ticks(pricing[0]) > before
        os.kill(model_workers[0], signal.SIGKILL)
        statuses = [httpx.post(f"{url}/v1/translate", json=body, timeout=60).status_code
                    for _ in range(4)]
        assert set(statuses) <= {200, 503} and statuses.count(503) <= 1 and statuses[-1] == 200
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{url}/metrics").text
            if re.search(r"^nmt_model_worker_restarts_total 1\.0$", metrics, re.M):
                break
            httpx.post(f"{url}/v1/translate", json=body, timeout=60)
            time.sleep(0.5)
        else:
            pytest.fail("no model worker restart counted")
        # Ctrl-C in a terminal: SIGINT to the server and every child of its process group.
        logged = len((tmp_path / "server.log").read_text())  # (the kill -9 logged a traceback)
        for pid in [proc.pid, *_children(proc.pid)]:
            os.kill(pid, signal.SIGINT)
        proc.wait(30)
    finally:
        stop_server(proc)
    log = (tmp_path / "server.log").read_text()
    assert proc.returncode == 0, log[-2000:]
    after_ctrl_c = log[logged:]
    assert "Traceback" not in after_ctrl_c and "KeyboardInterrupt" not in after_ctrl_c, log[-3000:]


def _is_spawned(pid: int) -> bool:
    """multiprocessing's spawn start runs `python -c 'from multiprocessing.spawn import
    spawn_main; ...'`; its resource tracker runs `... resource_tracker import main ...`."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return "spawn_main" in cmdline


def _has_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def _cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process, in clock ticks (/proc/PID/stat fields 14, 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
