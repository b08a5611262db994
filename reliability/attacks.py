"""Reliability: the attacks of issue 17 (D1-D8) at full size against a live `nmt serve`, while a
well-behaved client (the probe) sends one short request a second.

    python reliability/attacks.py --threads 1 --json attacks.json   # every attack, full size
    python reliability/attacks.py --only D2,D6 --scale 0.01 --idle-s 5 --window-s 5
    python reliability/attacks.py --server-cpus 0 --client-cpus 1   # attacker on its own core
    python reliability/attacks.py --only D4,D6 --through-nginx      # deploy/nginx.conf in front

The script starts its own servers on free ports (`--model`, repeatable; by default the shipped
multi30k-de-en and multi30k-en-de models), with `NMT_API_KEYS=probe-key,attacker-key` so that the
fair scheduler tells the two clients apart by key. The probe runs in its own process (the
attacker's event loop would otherwise delay it) and connects from 127.0.0.2, so per-address
limits (wrong-key attempts, D7) never count the attacker's requests against it. It first measures
an idle period, then every attack runs for its observation window, repeating its requests back
to back (at least once); the probe's p50/p99 and errors are taken over each window.

| id | attack |
|---|---|
| D1a-c | 4 x "a"*5000, beam 8, n-best 6; 4 natural texts of that size; 10 that hang up at 0.3 s |
| D2 | `q` = 5,000 x U+FDFA |
| D3 | 4 texts of 625 x `<b>a</b>`, format html |
| D4a-d | request heads with a 8 KB, 1 MB or 100 MB header (streamed), or 100,000 headers |
| D5a-e | 500 idle sockets, slow heads, slow bodies (a byte a second), never-ending chunked bodies |
| D6 | 100 clients that hang up mid-body on /translate and /detect |
| D7a-b | NMT_RATE_LIMIT_PER_MINUTE=20 with varied X-Forwarded-For; 9,000 wrong API keys |
| D8a-g | hostile bundles given to `nmt serve --model` |

Targets: the probe's p99 within 2x of its idle p99 and no probe error during each attack; no
500s or tracebacks; every limit answered as docs/service.md says. Exit status 1 when a check
failed. tests/reliability/test_attacks.py runs a few attacks at a tiny scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime
import json
import math
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

HOST = "127.0.0.1"
PROBE_ADDRESS = "127.0.0.2"  # the probe's own source address (all of 127/8 is loopback)
PROBE_KEY, ATTACKER_KEY = "probe-key", "attacker-key"
PROBE_TEXT = "Ein Hund rennt über die Wiese."
DEFAULT_MODELS = ("models/multi30k-de-en", "models/multi30k-en-de")
# Realistic sentences (the shipped models are caption models), repeated to 5,000 characters.
GERMAN = [
    "Ein Mann in einem blauen Hemd steht auf einer Leiter und streicht die Wand eines alten "
    "Hauses.",
    "Zwei kleine Kinder spielen am Nachmittag mit einem roten Ball auf der grünen Wiese im Park.",
    "Eine Frau mit einem großen Hut verkauft frisches Obst und Gemüse auf dem Markt in der Stadt.",
    "Eine Gruppe junger Leute sitzt am Abend um ein Lagerfeuer und singt gemeinsam ein Lied.",
    "Ein brauner Hund springt über einen Zaun, um den Ball zu fangen, den ein Junge geworfen hat.",
    "Ein älterer Herr liest an einem sonnigen Morgen auf einer Bank vor dem Bahnhof die Zeitung.",
    "Mehrere Arbeiter in orangefarbenen Westen reparieren die Straße vor einem großen Gebäude.",
    "Ein Mädchen mit langen Haaren fährt mit ihrem Fahrrad durch die engen Gassen der Altstadt.",
    "Ein Koch in weißer Kleidung bereitet in einer kleinen Küche ein Gericht für seine Gäste zu.",
    "Drei Männer in Anzügen unterhalten sich vor dem Eingang eines modernen Bürogebäudes.",
    "Eine Musikerin spielt auf einer Bühne Gitarre, während das Publikum begeistert zuhört.",
    "Ein Fischer zieht am frühen Morgen sein Netz aus dem Wasser, während die Sonne aufgeht.",
]
# The service's defaults (docs/service.md); a server started with other NMT_* values uses those.
DEFAULTS = {"NMT_KEEPALIVE_S": "5", "NMT_BODY_TIMEOUT_S": "20", "NMT_MAX_HEADER_BYTES": "16384",
            "NMT_AUTH_FAILURES_PER_MINUTE": "10", "NMT_MAX_BODY_BYTES": "1000000"}
JSON_HEADERS = {"Content-Type": "application/json"}


def scaled(value: float, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(value * scale))


def natural_text(chars: int, shift: int = 0) -> str:
    """Whole sentences of GERMAN, starting at `shift`, up to `chars` characters."""
    out, i = "", shift
    while True:
        sentence = GERMAN[i % len(GERMAN)]
        if out and len(out) + 1 + len(sentence) > chars:
            return out
        if not out and len(sentence) > chars:
            return sentence[:chars]
        out = f"{out} {sentence}" if out else sentence
        i += 1


# ---- the server ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def setting(self, name: str) -> float:
        return float(self.env.get(name, DEFAULTS[name]))

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def rss_kib(self) -> int | None:
        return proc_status(self.proc.pid, "VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of process `pid` so far (all its threads)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int, field_name: str) -> int | None:
    """A `kB` field of /proc/<pid>/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def parse_cpus(spec: str) -> set[int]:
    """A CPU list as taskset writes it: "0", "0,2", "1-3"."""
    cpus: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def _cpu_list(spec: str) -> str:
    """argparse's check of a --*-cpus value: a clear usage error, not a traceback."""
    try:
        cpus = parse_cpus(spec)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a CPU list (e.g. 0 or 0,2-3): {spec!r}") from None
    if not cpus <= os.sched_getaffinity(0):
        raise argparse.ArgumentTypeError(f"CPUs {spec} are not all on this machine "
                                         f"(it has {sorted(os.sched_getaffinity(0))})")
    return spec


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that puts a child (and what it starts) on `cpus`; None leaves it free."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def start_server(models: Sequence[str | Path], env: Mapping[str, str], *, threads: int,
                 log_path: Path, ready_timeout_s: float = 300.0,
                 cpus: set[int] | None = None) -> Server:
    """`nmt serve` on a free port (in its own session: Ctrl-C reaches only this script, which
    stops it), on `cpus` when given; returns once /ready answers 200."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "NMT_NUM_THREADS": str(threads), **env}
    args = [a for m in models for a in ("--model", str(m))]
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall the server
        proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", *args, "--port",
                                 str(port), "--log-level", "warning"], cwd=REPO, env=full_env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_pinned(cpus))
    server = Server(proc, port, log_path, dict(env))
    deadline = time.monotonic() + ready_timeout_s
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited ({proc.returncode}): "
                                   f"{server.log_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                    return server
            time.sleep(0.25)
        raise RuntimeError(f"server not ready within {ready_timeout_s:g} s")
    except BaseException:
        server.stop()
        raise


_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_total(text: str, name: str, **labels: str | Callable[[str], bool]) -> float:
    """The sum of the Prometheus samples `name` whose labels match (a value or a predicate)."""
    total = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group(1) != name:
            continue
        have = dict(_LABEL.findall(m.group(2) or ""))
        if all((want(have.get(k, "")) if callable(want) else have.get(k) == want)
               for k, want in labels.items()):
            total += float(m.group(3))
    return total


def _is_5xx(status: str) -> bool:
    return status.startswith("5")


async def fetch_metrics(url: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.get(f"{url}/metrics")).text


# ---- the probe: a well-behaved client in its own process -------------------------------------

def probe_worker(spec: dict[str, Any]) -> None:
    """Sends one short /translate every `interval_s` (a new connection each time) and prints a
    JSON line per request: its start (time.monotonic, system-wide), seconds, status, error.
    Stops when its stdin closes."""
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    headers = {"X-API-Key": spec["key"]} if spec.get("key") else {}
    transport = httpx.HTTPTransport(local_address=spec.get("local_address"), retries=0)
    body = {"q": PROBE_TEXT, "source": "de", "target": "en"}
    with httpx.Client(base_url=spec["url"], transport=transport, timeout=spec["timeout_s"],
                      headers=headers, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        next_at = time.monotonic()
        while not stop.wait(max(0.0, next_at - time.monotonic())):
            start = time.monotonic()
            status, error = None, None
            try:
                r = client.post("/translate", json=body)
                status = r.status_code
                if status != 200 or "translatedText" not in r.json():
                    error = f"HTTP {status}"
            except (httpx.HTTPError, ValueError) as err:
                error = type(err).__name__
            print(json.dumps({"t": start, "s": time.monotonic() - start, "status": status,
                              "error": error}), flush=True)
            next_at = max(next_at + spec["interval_s"], time.monotonic())


class Probe:
    """Runs `probe_worker` in a child process and collects its samples."""

    def __init__(self, url: str, *, key: str | None, interval_s: float = 1.0,
                 timeout_s: float = 60.0, local_address: str | None = PROBE_ADDRESS,
                 cpus: set[int] | None = None):
        spec = {"url": url, "key": key, "interval_s": interval_s, "timeout_s": timeout_s,
                "local_address": local_address}
        self.samples: list[dict[str, Any]] = []
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()),
                                      "--probe-worker", json.dumps(spec)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=_pinned(cpus))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append(json.loads(line))

    def stats(self, t0: float, t1: float) -> dict[str, Any]:
        """p50/p99 (nearest rank, over every request started in [t0, t1]) and errors."""
        window = [s for s in list(self.samples) if t0 <= s["t"] <= t1]
        seconds = sorted(s["s"] for s in window)
        errors = Counter(s["error"] for s in window if s["error"])
        return {"n": len(window), "p50_s": percentile(seconds, 50),
                "p99_s": percentile(seconds, 99), "max_s": seconds[-1] if seconds else None,
                "errors": sum(errors.values()), "error_kinds": dict(errors)}

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(70)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted `values` (with 20 samples, p99 is the maximum)."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))]


class RssSampler:
    """The server's VmRSS every 0.2 s, in a thread."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            rss = proc_status(self.pid, "VmRSS")
            if rss is not None:
                self.samples.append((time.monotonic(), rss))

    def window(self, t0: float, t1: float) -> dict[str, float] | None:
        before = [kib for t, kib in self.samples if t <= t0]
        during = [kib for t, kib in self.samples if t0 <= t <= t1]
        if not during:
            return None
        start = before[-1] if before else during[0]
        return {"start_mib": start / 1024, "max_mib": max(during) / 1024,
                "growth_mib": (max(during) - start) / 1024}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


# ---- what one attack found ----------------------------------------------------------------

@dataclass
class Outcome:
    """What the attacker sent and got; `times`: seconds until each of its requests was
    answered or its connection closed (per request or connection, or per round)."""

    what: str
    statuses: Counter[str] = field(default_factory=Counter)
    times: list[float] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    """The server an attack runs against, with what the attacks need to know about it; its
    requests go to `entry_port` (nginx in front, with --through-nginx), else to the server."""

    server: Server
    scale: float
    window_s: float
    key: str | None = ATTACKER_KEY
    entry_port: int | None = None

    @property
    def port(self) -> int:
        return self.entry_port or self.server.port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key} if self.key else {}


async def sustain(window_s: float, one_round: Callable[[], Awaitable[None]]) -> int:
    """Runs `one_round` back to back until `window_s` has passed (at least once)."""
    start, rounds = time.monotonic(), 0
    while True:
        await one_round()
        rounds += 1
        if time.monotonic() - start >= window_s:
            return rounds


async def post(client: httpx.AsyncClient, path: str, body: Any, out: Outcome,
               headers: Mapping[str, str] | None = None) -> httpx.Response | None:
    """POSTs JSON, records the status (or the error's name) and the time in `out`."""
    start = time.monotonic()
    try:
        r = await client.post(path, json=body, headers=dict(headers or {}))
    except httpx.HTTPError as err:
        out.statuses[type(err).__name__] += 1
        out.times.append(time.monotonic() - start)
        return None
    out.statuses[str(r.status_code)] += 1
    out.times.append(time.monotonic() - start)
    if r.status_code >= 400 and "first_error" not in out.notes:
        with contextlib.suppress(ValueError):
            out.notes["first_error"] = str(r.json().get("error", ""))[:200]
    return r


def _client(t: Target, timeout_s: float = 120.0, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=t.url, headers=t.headers, timeout=timeout_s,
                             **kwargs)


def _names_a_limit(out: Outcome) -> bool:
    return bool(re.search(r"NMT_MAX_\w+=\d+", out.notes.get("first_error", "")))


def _no_500(out: Outcome) -> bool:
    return not any(s.startswith("5") and s != "503" for s in out.statuses)


# ---- raw connections ------------------------------------------------------------------------

@dataclass
class Exchange:
    """One raw connection: the first response's status, and when the server closed it."""

    status: int | None = None
    answered_s: float | None = None
    closed_s: float | None = None  # the server closed (EOF) or reset the connection
    outcome: str = "open"  # answered+closed, closed, reset, hung up (by us), open (at give-up)
    sent: int = 0


async def exchange(chunks: AsyncGenerator[bytes, None], *, port: int, give_up_s: float,
                   hang_up_after_s: float | None = None) -> Exchange:
    """Sends `chunks` on a new connection while reading what the server answers, until the
    server closes it, `give_up_s` passes, or (with `hang_up_after_s`) that long after the last
    chunk, when this side closes it."""
    ex = Exchange()
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as err:
        ex.outcome = f"connect failed ({type(err).__name__})"
        return ex

    async def read() -> None:
        try:
            while data := await reader.read(65536):
                if ex.status is None:
                    ex.answered_s = time.monotonic() - start
                    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                    ex.status = int(m.group(1)) if m else -1
            ex.outcome = "answered+closed" if ex.status is not None else "closed"
        except (ConnectionError, OSError):
            ex.outcome = "reset"
        ex.closed_s = time.monotonic() - start

    async def send() -> None:
        try:
            async for chunk in chunks:
                if reading.done():
                    break
                writer.write(chunk)
                await writer.drain()
                ex.sent += len(chunk)
        except (ConnectionError, OSError):
            return
        if hang_up_after_s is not None:
            await asyncio.sleep(hang_up_after_s)
            if not reading.done():
                if ex.status is None:  # else it was answered and merely not closed yet
                    ex.outcome = "hung up"
                reading.cancel()

    reading = asyncio.ensure_future(read())
    sending = asyncio.ensure_future(send())
    try:
        await asyncio.wait([reading], timeout=give_up_s)
    finally:
        for task in (sending, reading):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await asyncio.gather(sending, reading, return_exceptions=True)
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        with contextlib.suppress(Exception):
            await chunks.aclose()
    return ex


def record(out: Outcome, exchanges: Sequence[Exchange]) -> None:
    """Each connection's status (or how it ended) and its time: until the answer, else until
    the server closed it."""
    for ex in exchanges:
        out.statuses[str(ex.status) if ex.status is not None else ex.outcome] += 1
        seconds = ex.answered_s if ex.answered_s is not None else ex.closed_s
        if seconds is not None:
            out.times.append(seconds)


def head(path: str, headers: Mapping[str, str], extra: bytes = b"") -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n").encode() + extra


async def chunks_of(*parts: bytes | Callable[[], AsyncIterator[bytes]]
                    ) -> AsyncGenerator[bytes, None]:
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            async for chunk in part():
                yield chunk


# ---- D1-D6: the main server ----------------------------------------------------------------

def d1_bodies(scale: float) -> tuple[dict[str, Any], dict[str, Any]]:
    n = scaled(5000, scale)
    refused = {"texts": ["a" * n] * 4, "source": "de", "target": "en", "beam_size": 8,
               "nbest": 6}
    natural = {**refused, "texts": [natural_text(n, shift) for shift in range(4)]}
    return refused, natural


async def d1a(t: Target) -> Outcome:
    body, _ = d1_bodies(t.scale)
    out = Outcome(f"/v1/translate 4 x 'a'*{len(body['texts'][0])}, beam 8, nbest 6 "
                  f"({len(json.dumps(body)) // 1000} KB), back to back")
    async with _client(t) as client:
        out.notes["rounds"] = await sustain(t.window_s, lambda: post(
            client, "/v1/translate", body, out))
    out.checks["refused (400/413)"] = set(out.statuses) <= {"400", "413"}
    out.checks["names the limit"] = _names_a_limit(out)
    return out


async def d1b(t: Target) -> Outcome:
    _, body = d1_bodies(t.scale)
    chars = sum(len(x) for x in body["texts"])
    out = Outcome(f"/v1/translate 4 natural German texts ({chars} chars), beam 8, nbest 6, "
                  "back to back")
    async with _client(t) as client:
        out.notes["rounds"] = await sustain(t.window_s, lambda: post(
            client, "/v1/translate", body, out))
    out.checks["no 500"] = _no_500(out)
    return out


async def d1c(t: Target) -> Outcome:
    """Clients that send a big accepted request and hang up after 0.3 s: their work must be
    dropped (client_gone in /metrics) and the model free again."""
    _, body = d1_bodies(t.scale)
    clients = scaled(10, t.scale)
    data = json.dumps(body).encode()
    request = head("/v1/translate", {**t.headers, **JSON_HEADERS,
                                     "Content-Length": str(len(data))}, b"\r\n" + data)
    out = Outcome(f"{clients} clients x the D1b request, hanging up 0.3 s after sending it")
    url = t.server.url
    gone0 = metric_total(await fetch_metrics(url), "nmt_rejected_requests_total",
                         reason="client_gone")
    dropped_s: list[float] = []
    follow_up = Outcome("follow-up")
    async with _client(t) as client:

        async def one_round() -> None:
            nonlocal gone0
            hung = await asyncio.gather(*(exchange(chunks_of(request), port=t.port,
                                                   give_up_s=60, hang_up_after_s=0.3)
                                          for _ in range(clients)))
            record(out, hung)
            hung_at = time.monotonic()
            expected = sum(ex.outcome == "hung up" for ex in hung)  # the others were answered
            gone = gone0
            while time.monotonic() - hung_at < 60:
                gone = metric_total(await fetch_metrics(url), "nmt_rejected_requests_total",
                                    reason="client_gone")
                if gone - gone0 >= expected:
                    break
                await asyncio.sleep(0.2)
            dropped_s.append(time.monotonic() - hung_at)
            out.notes.setdefault("client_gone", 0)
            out.notes["client_gone"] += int(gone - gone0)
            gone0 = gone
            # The model must be free at once: a short request of the attacker's own.
            await post(client, "/v1/translate", {"texts": [PROBE_TEXT], "source": "de",
                                                  "target": "en"}, follow_up)

        out.notes["rounds"] = await sustain(t.window_s, one_round)
    out.times = dropped_s
    out.notes["follow_up_s"] = [round(x, 3) for x in follow_up.times]
    out.notes["follow_up_statuses"] = dict(follow_up.statuses)
    sent = clients * out.notes["rounds"]
    out.checks["hung up before an answer"] = out.statuses.get("hung up", 0) == sent
    out.checks["client_gone counted for each"] = out.notes["client_gone"] >= sent
    out.checks["follow-up answered"] = follow_up.statuses == Counter({"200": len(follow_up.times)})
    return out


async def d2(t: Target) -> Outcome:
    n = scaled(5000, t.scale)
    body = {"q": "\ufdfa" * n, "source": "de", "target": "en"}
    out = Outcome(f"/translate q = {n} x U+FDFA, back to back")
    async with _client(t) as client:
        out.notes["rounds"] = await sustain(t.window_s, lambda: post(client, "/translate", body,
                                                                     out))
    out.checks["no 500"] = _no_500(out)
    if t.scale >= 1:
        out.checks["refused naming the limit"] = (set(out.statuses) == {"413"}
                                                  and _names_a_limit(out))
    return out


async def d3(t: Target) -> Outcome:
    n = scaled(625, t.scale)
    body = {"q": ["<b>a</b>" * n] * 4, "source": "de", "target": "en", "format": "html"}
    out = Outcome(f"/translate 4 x ({n} x <b>a</b>), format html, back to back")
    async with _client(t) as client:
        out.notes["rounds"] = await sustain(t.window_s, lambda: post(client, "/translate", body,
                                                                     out))
    out.checks["no 500"] = _no_500(out)
    return out


def _translate_head(t: Target) -> tuple[bytes, bytes]:
    """A short /translate request, cut where more headers can go in: the head's lines (each
    ending in CRLF), and the blank line ending the head with the body."""
    data = json.dumps({"q": PROBE_TEXT, "source": "de", "target": "en"}).encode()
    start = head("/translate", {**t.headers, **JSON_HEADERS, "Content-Length": str(len(data)),
                                "Connection": "close"})
    return start, b"\r\n" + data


def _stream(total: int, unit: bytes) -> Callable[[], AsyncIterator[bytes]]:
    """`total` bytes of `unit` repeated, 64 KB at a time (never all in memory)."""
    block = unit * max(1, 65536 // len(unit))

    async def gen() -> AsyncIterator[bytes]:
        left = total
        while left > 0:
            piece = block[:left]
            left -= len(piece)
            yield piece
            await asyncio.sleep(0)

    return gen


async def _d4(t: Target, what: str, parts: Callable[[], AsyncIterator[bytes]],
              expect_refused: bool) -> Outcome:
    out = Outcome(what + ", back to back")
    exchanges: list[Exchange] = []

    async def one_round() -> None:
        exchanges.append(await exchange(parts(), port=t.port, give_up_s=120))

    out.notes["rounds"] = await sustain(t.window_s, one_round)
    record(out, exchanges)
    # Bytes this side got into the socket before the server closed it (the kernel's buffers
    # take a few MB of them: not what the server read).
    out.notes["bytes_sent_max"] = max(ex.sent for ex in exchanges)
    if expect_refused:
        out.checks["431/400 or closed"] = all(ex.status in (400, 431) or ex.status is None
                                              and ex.outcome in ("closed", "reset")
                                              for ex in exchanges)
        out.checks["closed within 5 s"] = all(ex.closed_s is not None and ex.closed_s < 5
                                              for ex in exchanges)
    else:
        out.checks["answered 200"] = set(out.statuses) == {"200"}
    return out


async def d4a(t: Target) -> Outcome:
    return await _d4_header(t, scaled(8192, t.scale), expect_refused=False)


async def d4b(t: Target) -> Outcome:
    return await _d4_header(t, scaled(2**20, t.scale), expect_refused=True)


async def d4c(t: Target) -> Outcome:
    return await _d4_header(t, scaled(100 * 2**20, t.scale), expect_refused=True)


async def _d4_header(t: Target, size: int, *, expect_refused: bool) -> Outcome:
    start, end = _translate_head(t)
    return await _d4(t, f"/translate with one {_size(size)} header (streamed)",
                     lambda: chunks_of(start + b"X-Pad: ", _stream(size, b"a"), b"\r\n" + end),
                     expect_refused)


def _size(n: int) -> str:
    for unit, factor in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor:
            return f"{n / factor:.3g} {unit}"
    return f"{n} bytes"


async def d4d(t: Target) -> Outcome:
    start, end = _translate_head(t)
    count = scaled(100_000, t.scale)
    line = b"X-H: v\r\n"
    return await _d4(t, f"/translate with {count} headers (streamed)",
                     lambda: chunks_of(start, _stream(count * len(line), line), end), True)


async def _d5(t: Target, what: str, count: int, parts: Callable[[], AsyncIterator[bytes]], *,
              deadline_s: float, expect_status: set[int | None]) -> Outcome:
    """`count` connections at once, each sending `parts`; the server must close each within
    `deadline_s` (its timeout plus a margin)."""
    out = Outcome(f"{count} x {what}")
    exchanges: list[Exchange] = []

    async def one_round() -> None:
        exchanges.extend(await asyncio.gather(*(
            exchange(parts(), port=t.port, give_up_s=deadline_s + 30)
            for _ in range(count))))

    out.notes["rounds"] = await sustain(t.window_s, one_round)
    record(out, exchanges)
    closed = [ex.closed_s for ex in exchanges if ex.closed_s is not None]
    out.notes["closed_after_s"] = {"min": min(closed, default=None),
                                   "median": statistics.median(closed) if closed else None,
                                   "max": max(closed, default=None)}
    out.notes["ulimit_n"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    out.notes["server_max_open_files"] = _max_open_files(t.server.proc.pid)
    out.checks[f"all closed within {deadline_s:g} s"] = (
        len(closed) == len(exchanges) and max(closed) <= deadline_s)
    out.checks["status as documented"] = all(ex.status in expect_status for ex in exchanges)
    return out


def _max_open_files(pid: int) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def _slowly(data: bytes, every_s: float, size: int = 1) -> Callable[[], AsyncIterator[bytes]]:
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), size):
            yield data[i:i + size]
            await asyncio.sleep(every_s)

    return gen


def _forever(chunk: bytes, every_s: float) -> Callable[[], AsyncIterator[bytes]]:
    async def gen() -> AsyncIterator[bytes]:
        while True:
            yield chunk
            await asyncio.sleep(every_s)

    return gen


async def _nothing() -> AsyncIterator[bytes]:
    await asyncio.sleep(0)
    return
    yield b""  # an async generator that sends nothing


async def d5a(t: Target) -> Outcome:
    keepalive = t.server.setting("NMT_KEEPALIVE_S")
    return await _d5(t, "idle sockets (connect, send nothing)", scaled(500, t.scale),
                     _nothing, deadline_s=keepalive + 5, expect_status={None})


async def d5b(t: Target) -> Outcome:
    start, end = _translate_head(t)
    keepalive = t.server.setting("NMT_KEEPALIVE_S")
    return await _d5(t, "slow request heads (1 byte/s)", scaled(100, t.scale),
                     _slowly(start + end, 1.0), deadline_s=keepalive + 5,
                     expect_status={None, 408})


async def d5c(t: Target) -> Outcome:
    data = b'{"q": "' + b"a" * 1000 + b'", "source": "de", "target": "en"}'
    start = head("/translate", {**t.headers, **JSON_HEADERS, "Content-Length": str(len(data))},
                 b"\r\n")
    timeout = t.server.setting("NMT_BODY_TIMEOUT_S")
    return await _d5(t, "slow bodies (head at once, then 1 byte/s)", scaled(100, t.scale),
                     lambda: chunks_of(start, _slowly(data, 1.0)), deadline_s=timeout + 5,
                     expect_status={408})


async def d5d(t: Target) -> Outcome:
    start = head("/translate", {**t.headers, **JSON_HEADERS, "Transfer-Encoding": "chunked"},
                 b"\r\n")
    timeout = t.server.setting("NMT_BODY_TIMEOUT_S")
    return await _d5(t, "never-ending chunked bodies (10 bytes a second)", scaled(20, t.scale),
                     lambda: chunks_of(start, _forever(b"a\r\n" + b"x" * 10 + b"\r\n", 1.0)),
                     deadline_s=timeout + 5, expect_status={408})


async def d5e(t: Target) -> Outcome:
    start = head("/translate", {**t.headers, **JSON_HEADERS, "Transfer-Encoding": "chunked"},
                 b"\r\n")
    chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
    timeout = t.server.setting("NMT_BODY_TIMEOUT_S")
    return await _d5(t, "never-ending chunked bodies (64 KB chunks, full speed)",
                     scaled(20, t.scale), lambda: chunks_of(start, _forever(chunk, 0.0)),
                     deadline_s=timeout + 5,
                     # nginx's per-address rate (429) may come before its body limit (413).
                     expect_status={413, None} | ({429} if t.entry_port else set()))


async def d6(t: Target) -> Outcome:
    """Clients that hang up mid-body: 499s in /metrics, no 500s, no tracebacks."""
    count = scaled(100, t.scale, minimum=2)
    body = json.dumps({"q": " ".join(GERMAN[:3]), "source": "de", "target": "en"}).encode()
    requests = []
    for i in range(count):
        path = "/translate" if i % 2 == 0 else "/detect"
        requests.append((path, head(path, {**t.headers, **JSON_HEADERS,
                                           "Content-Length": str(len(body))},
                                    b"\r\n" + body[:len(body) // 2])))
    out = Outcome(f"{count} clients (half /translate, half /detect) hanging up mid-body")
    before = await fetch_metrics(t.server.url)

    async def one_round() -> None:
        record(out, await asyncio.gather(*(
            exchange(chunks_of(data), port=t.port, give_up_s=30, hang_up_after_s=0.1)
            for _, data in requests)))

    rounds = await sustain(t.window_s, one_round)
    expected = {path: rounds * sum(1 for p, _ in requests if p == path)
                for path in ("/translate", "/detect")}

    def closed(text: str) -> dict[str, int]:
        return {path: int(metric_total(text, "nmt_http_requests_total", route=path, status="499")
                          - metric_total(before, "nmt_http_requests_total", route=path,
                                         status="499")) for path in expected}

    # A busy server may still be reading the last hang-ups: wait until the counts are complete
    # or stop growing.
    counted, deadline = closed(await fetch_metrics(t.server.url)), time.monotonic() + 30
    while counted != expected and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = closed(await fetch_metrics(t.server.url))
        if now == counted:
            break
        counted = now
    out.notes["rounds"] = rounds
    for path, n in counted.items():
        out.notes[f"499 {path}"] = n
        if t.entry_port is None:  # behind nginx, a body that never ends never reaches the app
            out.checks[f"499 counted ({path})"] = n == expected[path]
    return out


async def d7b(t: Target) -> Outcome:
    """Wrong API keys from one address: 403 up to NMT_AUTH_FAILURES_PER_MINUTE, then 429 (for
    the right key too, from that address). Runs last on its server: the address stays blocked
    for a minute."""
    count = scaled(9000, t.scale, minimum=20)
    limit = int(t.server.setting("NMT_AUTH_FAILURES_PER_MINUTE"))
    out = Outcome(f"{count} x /translate with a wrong X-API-Key (8 connections)")
    body = {"q": PROBE_TEXT, "source": "de", "target": "en"}
    sent = iter(range(count))
    started = time.monotonic()
    cap_s = max(300.0, t.window_s)
    async with httpx.AsyncClient(base_url=t.url, timeout=60) as client:

        async def worker() -> None:
            for i in sent:
                if time.monotonic() - started > cap_s:
                    return
                await post(client, "/translate", body, out, {"X-API-Key": f"wrong-{i}"})

        await asyncio.gather(*(worker() for _ in range(8)))
        right = Outcome("right key after")
        await post(client, "/translate", body, right, {"X-API-Key": ATTACKER_KEY})
    out.notes["sent"] = sum(out.statuses.values())
    out.notes["seconds"] = round(time.monotonic() - started, 1)
    out.notes["right key afterwards"] = dict(right.statuses)
    out.notes["median_request_s"] = round(statistics.median(out.times), 4)
    out.times = [time.monotonic() - started]  # until the last of them was answered
    out.checks[f"403 x {limit}, then 429"] = (out.statuses.get("403") == limit and out.statuses
                                              .get("429") == out.notes["sent"] - limit)
    out.checks["the right key from that address: 429"] = right.statuses == Counter({"429": 1})
    return out


# ---- D7a: a server with a per-address rate limit ----------------------------------------------

async def d7a(t: Target) -> Outcome:
    """NMT_RATE_LIMIT_PER_MINUTE=20 without API keys (keyed on the address): a made-up
    X-Forwarded-For per request must not give fresh limits (no proxy is trusted), nor, when it
    names the probe's address, use up the probe's."""
    count = scaled(100, t.scale, minimum=30)
    body = {"q": PROBE_TEXT, "source": "de", "target": "en"}
    out = Outcome(f"{count} x /translate from 127.0.0.1, each with another X-Forwarded-For "
                  f"(every 5th {PROBE_ADDRESS}, the probe's), back to back")
    first_round: list[Counter[str]] = []
    async with _client(t) as client:

        async def one_round() -> None:
            round_out = Outcome("")
            for i in range(count):
                xff = PROBE_ADDRESS if i % 5 == 0 else f"10.{i // 250 % 250}.{i % 250}.1"
                await post(client, "/translate", body, round_out, {"X-Forwarded-For": xff})
            out.statuses.update(round_out.statuses)
            out.times.append(sum(round_out.times))
            first_round.append(round_out.statuses)

        out.notes["rounds"] = await sustain(t.window_s, one_round)
    out.checks["first round: 20 x 200, then 429"] = first_round[0] == Counter(
        {"200": 20, "429": count - 20})
    return out


# ---- D8: hostile bundles ------------------------------------------------------------------

def alias_bomb(levels: int = 9) -> str:
    """`levels` anchors, each nine aliases of the previous: 9^levels strings once expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for prev, name in zip(names[:levels - 1], names[1:levels], strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def shared_list(elements: float) -> list[Any]:
    """Three levels of one shared list: `elements` leaves, a few KB when pickled."""
    side = max(2, round(elements ** (1 / 3)))
    inner = [0] * side
    middle = [inner] * side
    return [middle] * side


def hostile_bundles(base: Path, out_dir: Path, scale: float,
                    only: Sequence[str] | None = None) -> dict[str, tuple[str, Path]]:
    """id -> (what, bundle directory): `base`'s model.pt with one hostile change each."""
    import torch
    import yaml

    obj = torch.load(base / "model.pt", map_location="cpu", weights_only=True)
    levels = max(2, min(9, 9 + round(math.log(max(scale, 1e-9), 9))))
    elements = 1e9 * scale
    bomb = alias_bomb(levels)

    def with_config(section: str | None, key: str, value: Any) -> Callable[[dict], None]:
        def mutate(o: dict) -> None:
            o["config"] = copy.deepcopy(o["config"])
            (o["config"] if section is None else o["config"][section])[key] = value
        return mutate

    def with_metadata(key: str, value: Any) -> Callable[[dict], None]:
        return lambda o: o.__setitem__("metadata", {**o.get("metadata", {}), key: value})

    def first_weight_as_string(o: dict) -> None:
        o["model"] = dict(o["model"])
        o["model"][next(iter(o["model"]))] = "0"

    cases: dict[str, tuple[str, Callable[[dict], None]]] = {
        "D8a": ("config model.emb_dim: 10000000", with_config("model", "emb_dim", 10_000_000)),
        "D8b": ("config decode.max_len_b: 1e9", with_config("decode", "max_len_b", 10**9)),
        "D8c": (f"config holding a YAML alias bomb ({len(bomb)} bytes of YAML, 9^{levels} "
                "strings, read with yaml.safe_load)", with_config(None, "notes",
                                                                  yaml.safe_load(bomb))),
        "D8d": (f"metadata holding a shared {elements:.0e}-element list",
                with_metadata("notes", shared_list(elements))),
        "D8e": (f"config holding a shared {elements:.0e}-element list",
                with_config("data", "notes", shared_list(elements))),
        "D8f": ("src_spm stored as a tensor", lambda o: o.__setitem__("src_spm",
                                                                      torch.zeros(3))),
        "D8g": ("a weight stored as a string", first_weight_as_string),
    }
    made = {}
    for case, (what, mutate) in cases.items():
        if only is not None and not any(case.startswith(s) for s in only):
            continue
        bundle = out_dir / f"hostile-{case.lower()}"
        bundle.mkdir(parents=True, exist_ok=True)
        changed = dict(obj)
        mutate(changed)
        torch.save(changed, bundle / "model.pt")
        if case == "D8c":
            (bundle / "config.yaml").write_text(bomb)
        size = (bundle / "model.pt").stat().st_size
        made[case] = (f"{what}; model.pt {size / 2**20:.1f} MiB", bundle)
    return made


def _limit_memory(limit_bytes: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return apply


def serve_bundle(bundle: Path, *, threads: int, timeout_s: float, memory_gib: float,
                 log_path: Path) -> Outcome:
    """`nmt serve --model bundle`: exit status, seconds, the first output line, peak RSS.
    Runs with an address-space cap (`memory_gib`) so that a bundle the checks miss cannot take
    the machine's memory, and is killed after `timeout_s`."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "NMT_NUM_THREADS": str(threads)}
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nmt", "serve", "--model", str(bundle),
                                 "--port", str(port), "--log-level", "warning"], cwd=REPO,
                                env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=_limit_memory(int(memory_gib * 2**30)))
    peak = 0
    served = False
    try:
        while proc.poll() is None and time.monotonic() - start < timeout_s:
            peak = max(peak, proc_status(proc.pid, "VmHWM") or 0)
            with contextlib.suppress(httpx.HTTPError):
                served = served or httpx.get(f"http://{HOST}:{port}/ready",
                                             timeout=0.5).status_code == 200
            if served:
                break
            time.sleep(0.2)
    finally:
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    seconds = time.monotonic() - start
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    status = ("served it" if served else f"killed after {timeout_s:g} s" if killed
              else f"exit {proc.returncode}")
    out = Outcome(f"nmt serve --model {bundle.name}")
    out.statuses[status] += 1
    out.times.append(seconds)
    out.notes.update({"first_line": lines[0][:300] if lines else "", "lines": len(lines),
                      "peak_rss_mib": round(peak / 1024), "exit": proc.returncode})
    tracebacks = sum("Traceback" in line for line in lines)
    out.checks["refused (exit != 0)"] = not served and not killed and proc.returncode != 0
    out.checks["one line, no traceback"] = len(lines) == 1 and tracebacks == 0
    out.checks["within 60 s"] = seconds < 60
    return out


# ---- running and reporting --------------------------------------------------------------------

@dataclass
class Row:
    id: str
    outcome: Outcome
    probe: dict[str, Any] | None = None
    idle_p99_s: float | None = None
    rss: dict[str, float] | None = None
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        p99 = (self.probe or {}).get("p99_s")
        return p99 / self.idle_p99_s if p99 is not None and self.idle_p99_s else None

    def probe_ok(self) -> bool | None:
        if self.probe is None or not self.probe["n"]:
            return None
        return self.probe["errors"] == 0 and self.ratio is not None and self.ratio <= 2.0

    def failed(self) -> list[str]:
        failed = [name for name, ok in self.outcome.checks.items() if not ok]
        failed += [name for name, ok in self.server.get("checks", {}).items() if not ok]
        if self.probe_ok() is False:
            failed.append("probe within 2x idle p99, 0 errors")
        return failed

    def to_json(self) -> dict[str, Any]:
        o = self.outcome
        return {"id": self.id, "what": o.what, "statuses": dict(o.statuses),
                "server_s": _summary(o.times), "notes": o.notes, "checks": o.checks,
                "probe": self.probe, "idle_p99_s": self.idle_p99_s, "ratio": self.ratio,
                "rss": self.rss, "server": self.server, "failed": self.failed()}


def _summary(times: Sequence[float]) -> dict[str, float] | None:
    if not times:
        return None
    return {"n": len(times), "median": round(statistics.median(times), 3),
            "max": round(max(times), 3)}


AttackFn = Callable[[Target], Awaitable[Outcome]]
MAIN_ATTACKS: dict[str, AttackFn] = {
    "D1a": d1a, "D1b": d1b, "D1c": d1c, "D2": d2, "D3": d3,
    "D4a": d4a, "D4b": d4b, "D4c": d4c, "D4d": d4d,
    "D5a": d5a, "D5b": d5b, "D5c": d5c, "D5d": d5d, "D5e": d5e,
    "D6": d6,
    "D7b": d7b,  # last: the attacker's address is blocked for a minute afterwards
}
ALL_IDS = [*MAIN_ATTACKS, "D7a", "D8a", "D8b", "D8c", "D8d", "D8e", "D8f", "D8g"]


def selected(ids: Sequence[str], only: Sequence[str] | None) -> list[str]:
    return [i for i in ids if only is None or any(i.startswith(s) for s in only)]


async def observe(target: Target, probe: Probe, rss: RssSampler, attack_id: str, fn: AttackFn,
                  idle_p99_s: float | None, settle_s: float) -> Row:
    """Runs one attack and takes the probe's figures, RSS, the server's own 5xx count and the
    tracebacks in its log over the attack's window."""
    server = target.server
    log_before = len(server.log_text())
    before = await fetch_metrics(server.url)
    cpu0 = cpu_seconds(server.proc.pid), os.times(), cpu_seconds(probe.proc.pid)
    t0 = time.monotonic()
    outcome = await fn(target)
    t1 = time.monotonic()
    cpu1 = cpu_seconds(server.proc.pid), os.times(), cpu_seconds(probe.proc.pid)
    await asyncio.sleep(settle_s)  # late samples of the window arrive; not counted after
    after = await fetch_metrics(server.url)
    fives = (metric_total(after, "nmt_http_requests_total", status=_is_5xx)
             - metric_total(before, "nmt_http_requests_total", status=_is_5xx))
    five_hundreds = (metric_total(after, "nmt_http_requests_total", status="500")
                     - metric_total(before, "nmt_http_requests_total", status="500"))
    tracebacks = server.log_text()[log_before:].count("Traceback")
    alive = server.proc.poll() is None
    # Where the window's CPU went: the server, this script (the attacker), the probe. On a
    # shared machine, what the attacker itself burns is taken from the server too.
    cpu = {"window_s": round(t1 - t0, 2),
           "server_s": _delta(cpu0[0], cpu1[0]),
           "attacker_s": round(cpu1[1].user + cpu1[1].system - cpu0[1].user - cpu0[1].system, 2),
           "probe_s": _delta(cpu0[2], cpu1[2])}
    info = {"5xx_in_metrics": int(fives), "tracebacks_in_log": tracebacks, "alive": alive,
            "cpu": cpu,
            "checks": {"no 500 in /metrics": five_hundreds == 0,
                       "no traceback in the log": tracebacks == 0, "server alive": alive}}
    row = Row(attack_id, outcome, probe.stats(t0, t1), idle_p99_s, rss.window(t0, t1), info)
    print(f"  {format_row(row)}", flush=True)
    return row


async def run_server_attacks(server: Server, ids: Sequence[str], *, probe_key: str | None,
                             probe_interval_s: float, idle_s: float, window_s: float,
                             settle_s: float, scale: float, attacker_key: str | None,
                             attacks: Mapping[str, AttackFn], probe_cpus: set[int] | None = None,
                             entry_port: int | None = None) -> tuple[dict[str, Any], list[Row]]:
    """The idle period, then each attack in `ids`, on one server with one probe; the probe's
    and the attacker's requests go to `entry_port` when given (nginx in front)."""
    entry_url = f"http://{HOST}:{entry_port}" if entry_port else server.url
    probe = Probe(entry_url, key=probe_key, interval_s=probe_interval_s, cpus=probe_cpus)
    rss = RssSampler(server.proc.pid)
    try:
        await asyncio.sleep(min(2.0, idle_s))  # the probe's first (warm-up) request
        t0 = time.monotonic()
        await asyncio.sleep(idle_s)
        idle = probe.stats(t0, time.monotonic())
        idle["rss_mib"] = (server.rss_kib() or 0) / 1024
        print(f"  idle {idle_s:g} s: probe n={idle['n']} p50={_ms(idle['p50_s'])} "
              f"p99={_ms(idle['p99_s'])} errors={idle['errors']}", flush=True)
        target = Target(server, scale, window_s, attacker_key, entry_port)
        rows = [await observe(target, probe, rss, i, attacks[i], idle["p99_s"], settle_s)
                for i in ids]
        return idle, rows
    finally:
        probe.stop()
        rss.stop()


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 2)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def format_statuses(statuses: Mapping[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items(), key=lambda kv: -kv[1]))


def format_row(row: Row) -> str:
    o = row.outcome
    times = _summary(o.times)
    server_s = (f"{times['median']:.2f} s (max {times['max']:.2f})" if times and times["n"] > 1
                else f"{times['max']:.2f} s" if times else "-")
    p = row.probe
    ratio = "-" if row.ratio is None else f"{row.ratio:.1f}x"
    probe = ("- | - | - | - | -" if p is None else
             f"{p['n']} | {_ms(p['p50_s'])} | {_ms(p['p99_s'])} | {ratio} | {p['errors']}")
    failed = row.failed()
    return (f"| {row.id} | {o.what} | {format_statuses(o.statuses)} | {server_s} | {probe} | "
            f"{'ok' if not failed else 'FAILED: ' + '; '.join(failed)} |")


TABLE_HEAD = ("| id | sent | attacker got | server time | probe n | p50 | p99 | vs idle p99 | "
              "probe errors | checks |\n|---|---|---|---|---|---|---|---|---|---|")


def machine() -> dict[str, Any]:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {"cpus": os.cpu_count(), "loadavg": [float(x) for x in load],
            "ulimit_n": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def start_nginx(server: Server, work: Path) -> Any:
    """Real nginx with deploy/nginx.conf in front of `server` (both of the config's upstream
    lines point at it), on this script's CPUs."""
    from benchmarks.topology import Nginx, find_program

    program = find_program("nginx")
    if program is None:
        raise SystemExit("--through-nginx: nginx is not installed (apt-get install nginx)")
    out_dir = work / "nginx"
    out_dir.mkdir(exist_ok=True)
    return Nginx(program, out_dir, upstreams=[server.port, server.port])


def run(args: argparse.Namespace) -> dict[str, Any]:
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    models = args.model or list(DEFAULT_MODELS)
    work = Path(tempfile.mkdtemp(prefix="nmt-attacks-"))
    report: dict[str, Any] = {"machine_before": machine(), "scale": args.scale,
                              "threads": args.threads, "models": models, "idle_s": args.idle_s,
                              "window_s": args.window_s, "logs": str(work), "rows": [],
                              "idle": {}}
    rows: list[Row] = []
    server_cpus = parse_cpus(args.server_cpus) if args.server_cpus else None
    if args.client_cpus:
        # The attacker on other cores than the server (a machine of its own, as far as the
        # server's CPU goes); the probe's one request a second runs beside the server.
        os.sched_setaffinity(0, parse_cpus(args.client_cpus))
    report["cpus"] = {"server_and_probe": args.server_cpus or "all",
                      "attacker": args.client_cpus or "all"}
    report["through_nginx"] = args.through_nginx
    print(TABLE_HEAD)
    main_ids = selected(list(MAIN_ATTACKS), only)
    if main_ids:
        print(f"server A: {', '.join(models)}, NMT_API_KEYS={PROBE_KEY},{ATTACKER_KEY}",
              flush=True)
        env = {"NMT_API_KEYS": f"{PROBE_KEY},{ATTACKER_KEY}", **args.env}
        if args.through_nginx:  # nginx passes on the peer's address: trust it from there
            env.setdefault("NMT_TRUSTED_PROXIES", HOST)
        server = start_server(models, env, threads=args.threads, log_path=work / "server-a.log",
                              cpus=server_cpus)
        nginx = None
        try:
            if args.through_nginx:
                nginx = start_nginx(server, work)
                print(f"nginx (deploy/nginx.conf) on port {nginx.port} in front of it",
                      flush=True)
            idle, found = asyncio.run(run_server_attacks(
                server, main_ids, probe_key=PROBE_KEY, probe_interval_s=1.0,
                idle_s=args.idle_s, window_s=args.window_s, settle_s=args.settle_s,
                scale=args.scale, attacker_key=ATTACKER_KEY, attacks=MAIN_ATTACKS,
                probe_cpus=server_cpus, entry_port=nginx.port if nginx else None))
            report["idle"]["A"] = idle
            rows += found
        finally:
            if nginx is not None:
                nginx.stop()
            server.stop()
    if selected(["D7a"], only):
        print("server B: no API keys, NMT_RATE_LIMIT_PER_MINUTE=20 (the probe: one request "
              "every 3.5 s, under its own limit)", flush=True)
        env = {"NMT_RATE_LIMIT_PER_MINUTE": "20", **args.env}
        server = start_server(models, env, threads=args.threads, log_path=work / "server-b.log",
                              cpus=server_cpus)
        try:
            idle, found = asyncio.run(run_server_attacks(
                server, ["D7a"], probe_key=None, probe_interval_s=3.5, idle_s=args.idle_s,
                window_s=args.window_s, settle_s=args.settle_s, scale=args.scale,
                attacker_key=None, attacks={"D7a": d7a}, probe_cpus=server_cpus))
            report["idle"]["B"] = idle
            rows += found
        finally:
            server.stop()
    bundle_ids = selected(ALL_IDS[-7:], only)
    if bundle_ids:
        print(f"hostile bundles (from {args.bundle_base or models[0]}; address space capped at "
              f"{args.bundle_memory_gib:g} GiB, killed after {args.bundle_timeout_s:g} s)",
              flush=True)
        made = hostile_bundles(Path(args.bundle_base or models[0]), work / "bundles",
                               args.scale, bundle_ids)
        for case, (what, bundle) in made.items():
            outcome = serve_bundle(bundle, threads=args.threads, timeout_s=args.bundle_timeout_s,
                                   memory_gib=args.bundle_memory_gib,
                                   log_path=work / f"{bundle.name}.log")
            outcome.what = what
            rows.append(Row(case, outcome))
            print(f"  {format_row(rows[-1])}\n    first line: {outcome.notes['first_line']}",
                  flush=True)
    print("\n" + TABLE_HEAD)
    for row in rows:
        print(format_row(row))
    report["rows"] = [r.to_json() for r in rows]
    report["machine_after"] = machine()
    report["failed"] = {r.id: r.failed() for r in rows if r.failed()}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe-worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", action="append", default=[], metavar="DIR",
                        help="a bundle to serve (repeatable; default: " + ", ".join(DEFAULT_MODELS)
                             + ")")
    parser.add_argument("--threads", type=int, default=1, help="NMT_NUM_THREADS (default: 1)")
    parser.add_argument("--only", help="comma-separated attacks, e.g. D1,D4 or D5a")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size of every attack (1.0: full size, as in issue 17)")
    parser.add_argument("--idle-s", type=float, default=20.0, help="idle period (default: 20)")
    parser.add_argument("--window-s", type=float, default=20.0,
                        help="each attack repeats for at least this long (default: 20)")
    parser.add_argument("--settle-s", type=float, default=2.0,
                        help="pause after each attack, not counted (default: 2)")
    parser.add_argument("--bundle-base", help="the bundle D8's hostile bundles are made from "
                                              "(default: the first --model)")
    parser.add_argument("--bundle-timeout-s", type=float, default=150.0)
    parser.add_argument("--bundle-memory-gib", type=float, default=6.0)
    parser.add_argument("--set", dest="env", action="append", default=[], metavar="NMT_X=V",
                        help="another setting for the servers (repeatable)")
    parser.add_argument("--server-cpus", metavar="LIST", type=_cpu_list,
                        help="run the server and the probe on these CPUs (taskset's list, e.g. 0)")
    parser.add_argument("--client-cpus", metavar="LIST", type=_cpu_list,
                        help="run this script, the attacker, on these CPUs (e.g. 1): on one "
                             "machine, the nearest thing to an attacker on another")
    parser.add_argument("--through-nginx", action="store_true",
                        help="the attacker and the probe reach server A through real nginx with "
                             "deploy/nginx.conf (nginx runs on --client-cpus)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.probe_worker:
        probe_worker(json.loads(args.probe_worker))
        return 0
    args.env = dict(item.split("=", 1) for item in args.env)
    # SIGTERM ends the run as Ctrl-C does (also where a background start ignored SIGINT): the
    # finally blocks stop the servers, probes and connections.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        report = run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: servers and probes stopped", file=sys.stderr)
        return 130
    print(f"\nload average before {report['machine_before']['loadavg']}, after "
          f"{report['machine_after']['loadavg']}; logs in {report['logs']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return 1 if report["failed"] else 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
