"""Benchmarks: where the server decodes, against the offline translator (issue 18's throughput).

Servers of the same model, all up at once and taking turns (an idle server takes no CPU):
- `processes-P`: model worker processes (NMT_MODEL_PROCESSES=P, the default is the cores): the
  HTTP process never runs the decoder;
- `threads`: the decoder in the HTTP process's lane threads (NMT_MODEL_PROCESSES=0);
- `unbatched`: like the default, but every request translated alone (NMT_BATCHING=false), the
  base of the micro-batching ratio.
Each gets single-sentence `POST /v1/translate` requests from test_2016_flickr, closed loop at
concurrency 32 (wrk, one thread, benchmarks/wrk/translate.lua), greedy and beam 5. In the same
run, between the load cells, the offline figure: `Translator.translate` of the same 1,000
sentences in batches of 64, in this process, with the torch threads the whole machine has.

    python -m benchmarks.serving_modes --model models/multi30k-de-en [--seconds 10 --reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from benchmarks.service_load import Server, load_test
from benchmarks.workspace import ROOT

TEST = ROOT / "data" / "multi30k" / "test_2016_flickr.de"


def _modes(processes: list[int]) -> dict[str, dict[str, str]]:
    modes = {f"processes-{p}": {"NMT_MODEL_PROCESSES": str(p)} for p in processes}
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
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    sentences = _read_lines(TEST)
    logs = Path("/tmp/nmt-serving-modes")
    logs.mkdir(exist_ok=True)
    print(f"load before: {os.getloadavg()}")
    servers = {}
    for name, env in _modes(args.processes).items():
        # One torch thread per model worker (or for the in-process lanes): the cores are shared.
        servers[name] = Server([args.model], threads=1, batching=env.get("NMT_BATCHING") != "false",
                               log_path=logs / f"{name}.log", env=env)
        print(f"{name}: ready in {servers[name].start_seconds:.1f} s")
    cells: dict[str, dict[str, list[float]]] = {}
    p99: dict[str, dict[str, list[float]]] = {}
    try:
        for rep in range(args.reps):
            for beam in args.beams:
                key = f"beam {beam}"
                order = list(servers) if rep % 2 == 0 else list(reversed(servers))
                offline = offline_sentences_per_s(args.model, sentences, beam, cores)
                cells.setdefault(key, {}).setdefault("offline", []).append(offline)
                print(f"rep {rep} {key} offline batch 64, {cores} threads: {offline:.1f} sent/s")
                for name in order:
                    r = load_test(servers[name].url, sentences, concurrency=args.concurrency,
                                  seconds=args.seconds, source="de", target="en", beam_size=beam)
                    cells[key].setdefault(name, []).append(r["requests_per_s"])
                    p99.setdefault(key, {}).setdefault(name, []).append(r["p99_ms"])
                    print(f"rep {rep} {key} {name}: {r['requests_per_s']:.1f} req/s, "
                          f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, "
                          f"errors {r['errors']}")
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
    if args.json:
        args.json.write_text(json.dumps({"requests_per_s": cells, "p99_ms": p99,
                                         "medians": medians}, indent=1))


if __name__ == "__main__":
    main()
