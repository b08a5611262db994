"""Reliability: load and soak. 32 concurrent clients for N minutes against `nmt serve` with a tiny
real bundle; reports throughput, latency percentiles, failures and the server's memory.

    nice -n 19 python reliability/soak.py                    # 10 minutes, concurrency 32
    python reliability/soak.py --minutes 1 --json soak.json  # a short run

Passes when no request fails except documented 503s (queue full, with Retry-After), and the
server's RSS grows less than 10% from minute 1 to the end. Then SIGTERM must stop the server
cleanly. Exit status 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from reliability.fuzz_api import make_tiny_bundle, start_server  # noqa: E402

TEXTS = ["ein hund rennt", "der mann schläft", "eine frau liest ein buch", "zwei katzen",
         "der hund und die katze spielen im garten", "ein kleiner vogel singt",
         "Zwei Männer spielen Fußball auf einer grünen Wiese.", "ein hund " * 20]


def request_for(rng: random.Random) -> tuple[str, dict[str, Any]]:
    texts = rng.sample(TEXTS, rng.randint(1, 3))
    if rng.random() < 0.5:
        return "/v1/translate", {"texts": texts, "source": "de", "target": "en",
                                 "beam_size": rng.choice([1, 2, 4]), "nbest": rng.choice([1, 2])}
    return "/translate", {"q": texts if len(texts) > 1 else texts[0], "source": "de",
                          "target": "en", "alternatives": rng.choice([0, 0, 1])}


async def client_loop(client: httpx.AsyncClient, rng: random.Random, stop_at: float,
                      latencies: list[float], statuses: Counter, failures: list[str]) -> None:
    while time.monotonic() < stop_at:
        path, body = request_for(rng)
        start = time.perf_counter()
        try:
            r = await client.post(path, json=body)
        except httpx.HTTPError as err:
            statuses["exception"] += 1
            failures.append(f"{path}: {type(err).__name__}: {err}")
            continue
        latencies.append(time.perf_counter() - start)
        statuses[r.status_code] += 1
        if r.status_code == 503 and "retry-after" in r.headers:
            await asyncio.sleep(float(r.headers["retry-after"]))  # documented back-pressure
        elif r.status_code != 200:
            failures.append(f"{path}: {r.status_code}: {r.text[:200]}")


async def sample_rss(proc: psutil.Process, stop_at: float, samples: list[tuple[float, int]],
                     every_s: float) -> None:
    t0 = time.monotonic()
    while time.monotonic() < stop_at:
        rss = sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
        samples.append((time.monotonic() - t0, rss))
        await asyncio.sleep(every_s)


async def soak(url: str, pid: int, *, minutes: float, concurrency: int, seed: int
               ) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    failures: list[str] = []
    samples: list[tuple[float, int]] = []
    stop_at = time.monotonic() + minutes * 60
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(
            sample_rss(psutil.Process(pid), stop_at, samples, every_s=5.0),
            *(client_loop(client, random.Random(seed + i), stop_at, latencies, statuses,
                          failures) for i in range(concurrency)))
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    at_minute_1 = next((rss for t, rss in samples if t >= 60), samples[0][1])
    end = samples[-1][1]
    return {
        "minutes": minutes, "concurrency": concurrency, "requests": sum(statuses.values()),
        "requests_per_s": round(len(latencies) / (minutes * 60), 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "failures": len(failures), "failure_examples": failures[:10],
        "latency_ms": {"p50": round(q[49] * 1000, 1), "p95": round(q[94] * 1000, 1),
                       "p99": round(q[98] * 1000, 1), "max": round(max(latencies) * 1000, 1)},
        "rss_mib": {"start": round(samples[0][1] / 2**20, 1),
                    "minute_1": round(at_minute_1 / 2**20, 1), "end": round(end / 2**20, 1),
                    "max": round(max(r for _, r in samples) / 2**20, 1)},
        "rss_growth_from_minute_1_pct": round(100 * (end - at_minute_1) / at_minute_1, 2),
        "rss_mib_each_minute": [round(rss / 2**20, 1) for t, rss in samples
                                if int(t / 60) != int((t - 5.0) / 60) or t == 0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_tiny_bundle(Path(tmp) / "models" / "tiny-de-en")
        proc, url = start_server(bundle, Path(tmp) / "server.log", {})
        try:
            summary = asyncio.run(soak(url, proc.pid, minutes=args.minutes,
                                       concurrency=args.concurrency, seed=args.seed))
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            summary["sigterm_exit"] = code
        finally:
            if proc.poll() is None:
                proc.kill()
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    failed = sum(n for s, n in summary["statuses"].items() if s not in ("200", "503"))
    ok = (failed == 0 and summary["rss_growth_from_minute_1_pct"] < 10
          and summary["sigterm_exit"] in (0, -signal.SIGTERM))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
