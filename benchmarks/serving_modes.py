"""Benchmarks: where the server decodes, against the offline translator (issue 18's throughput).

Servers of the same model, all up at once and taking turns (an idle server takes no CPU):
- `processes-P`: model worker processes (NMT_MODEL_PROCESSES=P, the default is the cores): the
  HTTP process never runs the decoder;
- `threads`: the decoder in the HTTP process's lane threads (NMT_MODEL_PROCESSES=0);
- `uvicorn-N` (with `--uvicorn-workers N`): N uvicorn worker processes (NMT_WORKERS=N), each
  with its own batcher and the decoder in its own lane threads (NMT_MODEL_PROCESSES=0): the other
  way to take decoding off one event loop's core;
- `unbatched`: like the default, but every request translated alone (NMT_BATCHING=false), the
  base of the micro-batching ratio.
Each gets single-sentence `POST /v1/translate` requests from test_2016_flickr, closed loop at
concurrency 32 (wrk, one thread, benchmarks/wrk/translate.lua), greedy and beam 5. In the same
run, between the load cells, the offline figure: `Translator.translate` of the same 1,000
sentences in batches of 64, in this process, with the torch threads the whole machine has.

Beside each load cell: the mean texts per model call the server formed (its /metrics) and the
HTTP process's CPU per request (/proc). And the offline figure at the batch the service could
form: the same sentences in arrival order (no length sorting), in calls of that mean size, one
torch thread per process, in as many processes as the server had model workers, side by side.
A closed loop of 32 single-sentence clients never offers a call of 64 length-sorted sentences,
so this, not batch 64, is the offline speed that load can reach.

    python -m benchmarks.serving_modes --model models/multi30k-de-en [--seconds 10 --reps 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import statistics
import time
from pathlib import Path

import httpx

from benchmarks.service_load import Server, load_test
from benchmarks.workspace import ROOT

TEST = ROOT / "data" / "multi30k" / "test_2016_flickr.de"


def _modes(processes: list[int], uvicorn_workers: int | None = None
           ) -> dict[str, dict[str, str]]:
    modes = {f"processes-{p}": {"NMT_MODEL_PROCESSES": str(p)} for p in processes}
    if uvicorn_workers:
        modes[f"uvicorn-{uvicorn_workers}"] = {"NMT_WORKERS": str(uvicorn_workers),
                                               "NMT_MODEL_PROCESSES": "0"}
    modes["threads"] = {"NMT_MODEL_PROCESSES": "0"}
    modes["unbatched"] = {"NMT_BATCHING": "false"}
    return modes


def offline_sentences_per_s(model: Path, sentences: list[str], beam: int, threads: int) -> float:
    from nmt.translator import Translator

    translator = Translator.from_checkpoint(model, num_threads=threads)
    translator.translate(sentences[:64], beam_size=beam, max_sentences=64)  # warm-up
    start = time.perf_counter()
    translator.translate(sentences, beam_size=beam, batch_tokens=10**9, max_sentences=64)
    return len(sentences) / (time.perf_counter() - start)


def _arrival_order_share(job: tuple[str, list[str], int, int]) -> float:
    """One process's share of `offline_at_batch`: seconds to translate its sentences."""
    from nmt.translator import Translator

    model, sentences, beam, batch = job
    translator = Translator.from_checkpoint(model, num_threads=1)
    translator.translate(sentences[:batch], beam_size=beam)  # warm-up
    start = time.perf_counter()
    for i in range(0, len(sentences), batch):
        translator.translate(sentences[i:i + batch], beam_size=beam, batch_tokens=10**9,
                             max_sentences=batch)
    return time.perf_counter() - start


def offline_at_batch(model: Path, sentences: list[str], beam: int, batch: int,
                     processes: int) -> float:
    """Sentences/s of `processes` one-thread translators side by side, each translating its
    share in arrival order in calls of `batch` sentences."""
    shares = [sentences[k::processes] for k in range(processes)]
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        seconds = pool.map(_arrival_order_share,
                           [(str(model), share, beam, batch) for share in shares])
    return len(sentences) / max(seconds)


def _metric_sum(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(float(m) for m in re.findall(rf"^{name}{{[^}}]*}} ([0-9.e+]+)$", text, re.M))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_lines(path: Path) -> list[str]:
    if path.exists():
        return path.read_text(encoding="utf-8").splitlines()
    import gzip

    with gzip.open(path.with_name(path.name + ".gz"), "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "multi30k-de-en")
    p.add_argument("--seconds", type=float, default=10.0, help="per load cell")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--processes", type=int, nargs="+", default=[2, 1],
                   help="NMT_MODEL_PROCESSES values to compare")
    p.add_argument("--uvicorn-workers", type=int, metavar="N",
                   help="also a server of N uvicorn workers, each decoding in-process")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    sentences = _read_lines(TEST)
    logs = Path("/tmp/nmt-serving-modes")
    logs.mkdir(exist_ok=True)
    print(f"load before: {os.getloadavg()}")
    servers = {}
    for name, env in _modes(args.processes, args.uvicorn_workers).items():
        # One torch thread per model worker (or for the in-process lanes): the cores are shared.
        servers[name] = Server([args.model], threads=1, batching=env.get("NMT_BATCHING") != "false",
                               log_path=logs / f"{name}.log", env=env)
        print(f"{name}: ready in {servers[name].start_seconds:.1f} s")
    cells: dict[str, dict[str, list[float]]] = {}
    p99: dict[str, dict[str, list[float]]] = {}
    formed: dict[str, dict[str, list[float]]] = {}  # mean texts per model call
    http_cpu: dict[str, dict[str, list[float]]] = {}  # HTTP process ms CPU per request
    at_batch: dict[str, dict[str, list[float]]] = {}  # offline at the batch the server formed
    try:
        for rep in range(args.reps):
            for beam in args.beams:
                key = f"beam {beam}"
                order = list(servers) if rep % 2 == 0 else list(reversed(servers))
                offline = offline_sentences_per_s(args.model, sentences, beam, cores)
                cells.setdefault(key, {}).setdefault("offline", []).append(offline)
                print(f"rep {rep} {key} offline batch 64, {cores} threads: {offline:.1f} sent/s")
                for name in order:
                    server = servers[name]
                    before = [_metric_sum(server.url, f"nmt_batch_texts_{m}")
                              for m in ("sum", "count")] + [_cpu_seconds(server.proc.pid)]
                    r = load_test(server.url, sentences, concurrency=args.concurrency,
                                  seconds=args.seconds, source="de", target="en", beam_size=beam)
                    after = [_metric_sum(server.url, f"nmt_batch_texts_{m}")
                             for m in ("sum", "count")] + [_cpu_seconds(server.proc.pid)]
                    texts, calls, cpu = (a - b for a, b in zip(after, before, strict=True))
                    if name.startswith("uvicorn"):
                        cpu = float("nan")  # its HTTP processes are the workers, which decode
                    # load_test's warm-up second is in both deltas: per request, not per second.
                    cells[key].setdefault(name, []).append(r["requests_per_s"])
                    p99.setdefault(key, {}).setdefault(name, []).append(r["p99_ms"])
                    formed.setdefault(key, {}).setdefault(name, []).append(texts / max(calls, 1))
                    http_cpu.setdefault(key, {}).setdefault(name, []).append(
                        1000 * cpu / max(texts, 1))
                    print(f"rep {rep} {key} {name}: {r['requests_per_s']:.1f} req/s, "
                          f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
                          f"errors {r['errors']}; {texts / max(calls, 1):.1f} texts per call, "
                          f"HTTP process {1000 * cpu / max(texts, 1):.2f} ms CPU per request")
                    match = re.fullmatch(r"processes-(\d+)", name)
                    if match and calls:
                        batch = max(1, round(texts / calls))
                        same = offline_at_batch(args.model, sentences, beam, batch,
                                                int(match.group(1)))
                        at_batch.setdefault(key, {}).setdefault(name, []).append(same)
                        print(f"rep {rep} {key} offline in arrival order, calls of {batch}, "
                              f"{match.group(1)} one-thread processes: {same:.1f} sent/s")
    finally:
        for server in servers.values():
            server.stop()
    print(f"load after: {os.getloadavg()}")
    medians = {k: {n: statistics.median(v) for n, v in per.items()} for k, per in cells.items()}
    print("\n| requests | " + " | ".join(next(iter(medians.values()))) + " |")
    for key, per in medians.items():
        base = per["offline"]
        print(f"| {key} | " + " | ".join(
            f"{v:.1f}" + ("" if n == "offline" else f" ({v / base:.0%})") for n, v in per.items())
            + " |")
        if "unbatched" in per:
            best = max(v for n, v in per.items() if n not in ("offline", "unbatched"))
            print(f"  micro-batching: {best / per['unbatched']:.2f}x the unbatched server")
        for name, same in at_batch.get(key, {}).items():
            batch = statistics.median(formed[key][name])
            print(f"  {name}: {per[name]:.1f} req/s with {batch:.1f} texts per call = "
                  f"{per[name] / statistics.median(same):.0%} of offline in calls of that size "
                  f"({statistics.median(same):.1f} sent/s); HTTP process "
                  f"{statistics.median(http_cpu[key][name]):.2f} ms CPU per request")
    if args.json:
        args.json.write_text(json.dumps({"requests_per_s": cells, "p99_ms": p99,
                                         "texts_per_call": formed, "http_cpu_ms": http_cpu,
                                         "offline_at_batch": at_batch, "medians": medians},
                                        indent=1))


if __name__ == "__main__":
    main()
