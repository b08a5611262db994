"""Benchmarks: the REST service: start-up time, memory, and requests/s with p50/p99 latency.

`nmt serve` runs as a child process on 127.0.0.1. The load generator holds C requests in flight
(a closed loop: each of C connections sends its next single-sentence request as soon as the
previous one answers) for a fixed time, with micro-batching on and off (NMT_BATCHING=false). It is
`wrk` (C, one thread, so it takes little of the CPU the server needs) with
benchmarks/wrk/translate.lua when wrk is installed (Debian: `apt-get install wrk`), otherwise an
asyncio httpx client, which costs the machine about as much CPU per request as the server does.
Peak RSS is read from /proc (VmHWM) of the server process after the load.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import httpx

from benchmarks.workspace import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`nmt serve` in a child process (`env`: more NMT_* settings); `start_seconds` is the time
    from launch to /ready."""

    def __init__(self, bundles: list[Path], *, threads: int, batching: bool, log_path: Path,
                 timeout_s: float = 120.0, env: Mapping[str, str] | None = None):
        self.port = free_port()
        env = {**os.environ, "NMT_BATCHING": "true" if batching else "false",
               "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads), **(env or {})}
        argv = [sys.executable, "-m", "nmt", "serve", "--port", str(self.port),
                "--num-threads", str(threads), "--log-level", "warning"]
        for b in bundles:
            argv += ["--model", str(b)]
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in stop()
        start = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nmt serve exited ({self.proc.returncode}); see {log_path}")
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() - start > timeout_s:
                self.stop()
                raise RuntimeError(f"nmt serve not ready after {timeout_s:g} s")
            time.sleep(0.05)
        self.start_seconds = time.perf_counter() - start

    def rss_mib(self) -> dict[str, float]:
        """Current and peak resident memory of the server process, MiB."""
        out = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out["rss" if key == "VmRSS" else "peak_rss"] = int(value.split()[0]) / 1024
        return out

    def answers(self, route: str = "/v1/translate") -> Counter[str]:
        """The server's answers on `route` so far, by status, from its own /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        counts: Counter[str] = Counter()
        for status, count in re.findall(
                rf'^nmt_http_requests_total\{{(?=[^}}]*route="{re.escape(route)}")[^}}]*'
                r'status="(\d+)"[^}]*\} (\S+)$', text, flags=re.M):
            counts[status] += int(float(count))
        return counts

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


async def _load(url: str, sentences: list[str], *, concurrency: int, seconds: float,
                body: dict) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def user(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < stop_at:
                text = sentences[i % len(sentences)]
                i += concurrency
                t0 = time.perf_counter()
                r = await client.post("/v1/translate", json={**body, "texts": [text]})
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(user(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - start
    return latencies, errors, elapsed


WRK_SCRIPT = ROOT / "benchmarks" / "wrk" / "translate.lua"


def load_tool() -> str:
    """The load generator load_test will use: "wrk" when installed, else "httpx"."""
    return "wrk" if shutil.which("wrk") else "httpx"


def _wrk(url: str, bodies: list[dict], *, concurrency: int, seconds: float,
         warm_up: bool = False) -> dict[str, float] | None:
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8") as f:
        f.write("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bodies))
        f.flush()
        argv = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s",
                "--timeout", "60s", "-s", str(WRK_SCRIPT), url, "--", f.name]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    ok = r["requests"] - r["non_2xx"]
    if warm_up:  # wrk drops the requests still in flight at the end: a short run may count none
        return None
    if ok <= 0:
        raise RuntimeError(f"no successful request at concurrency {concurrency}:\n{out}")
    return {
        "requests_per_s": ok / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "requests": ok,
        "errors": r["non_2xx"] + r["socket_errors"],
    }


def load_test(url: str, sentences: list[str], *, concurrency: int, seconds: float,
              source: str, target: str, beam_size: int | None) -> dict[str, float]:
    body = {"source": source, "target": target, "beam_size": beam_size, "return_scores": False}
    if load_tool() == "wrk":
        bodies = [{**body, "texts": [text]} for text in sentences]
        _wrk(url, bodies, concurrency=concurrency, seconds=1.0, warm_up=True)
        for attempt in range(3):  # a very short run may end before any answer: run longer
            try:
                return _wrk(url, bodies, concurrency=concurrency, seconds=seconds * 2**attempt)
            except RuntimeError:
                if attempt == 2:
                    raise
    # A short untimed warm-up, so first-call costs are not in the figures.
    asyncio.run(_load(url, sentences, concurrency=concurrency, seconds=min(1.0, seconds / 4),
                      body=body))
    latencies, errors, elapsed = asyncio.run(
        _load(url, sentences, concurrency=concurrency, seconds=seconds, body=body))
    if not latencies:
        raise RuntimeError(f"no successful request at concurrency {concurrency}")
    lat = sorted(latencies)
    return {
        "requests_per_s": len(lat) / elapsed,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "requests": len(lat),
        "errors": errors,
    }
