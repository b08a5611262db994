"""Benchmarks: Debian's httperf as an open-loop load generator for benchmarks/open_loop.py: the
--wsesslog session file of POST bodies, one run, and its output read, the latency percentiles
taken from its connection-lifetime histogram (`-v -v`, 1 ms bins).

httperf 0.9 prints only summaries; the histogram is the one per-request distribution it has, and
with one request per session (one connection each) a connection's lifetime is that request's
latency. Its --print-request does not print bodies, so tests/benchmarks/test_httperf.py checks
the session file's escaping against a stub server.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time

from benchmarks.service_load import Server

HTTPERF_TIMEOUT_S = 60.0  # above NMT_REQUEST_TIMEOUT_S (30): the app answers its own 504 first
MAX_SESSIONS = 1000  # httperf's limit on session templates in one --wsesslog file


def wsesslog(bodies: list[dict]) -> str:
    """An httperf --wsesslog file: one session per body, each a single POST /v1/translate.

    Inside contents='...' httperf reads a backslash as "take the next character as it is", so
    backslashes and single quotes are escaped; JSON's own escapes stay intact."""
    sessions = []
    for body in bodies[:MAX_SESSIONS]:
        text = json.dumps(body).replace("\\", "\\\\").replace("'", "\\'")
        sessions.append(f"/v1/translate method=POST contents='{text}'\n")
    return "\n".join(sessions)


def percentile(hist: dict[float, int], q: float) -> float:
    """The q-quantile (0-1) of a histogram {bin centre ms: count} of 1 ms bins: the upper edge
    of the bin where the count reaches q of the total."""
    total = sum(hist.values())
    need = max(1, -(-int(q * total * 1000) // 1000))  # ceil(q * total), robust to q * total
    seen = 0
    for centre in sorted(hist):
        seen += hist[centre]
        if seen >= need:
            return centre + 0.5
    raise ValueError("empty histogram")


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-int(q * len(ordered) * 1000) // 1000) - 1))]


def parse(out: str) -> dict:
    """The figures of one `httperf -v -v --print-reply=body` run."""
    hist: dict[float, int] = {}
    lines = out.splitlines()
    if "Connection lifetime histogram (time in ms):" in lines:
        for line in lines[lines.index("Connection lifetime histogram (time in ms):") + 1:]:
            if not line.strip():
                break
            if line.strip() != ":":
                centre, count = line.split()
                hist[float(centre)] = int(count)
    replies = {m[0]: int(m[1]) for m in re.findall(r"(\dxx)=(\d+)", _line(out, "Reply status:"))}
    errors = int(re.search(r"Errors: total (\d+)", out).group(1))  # type: ignore[union-attr]
    kinds = {kind: int(n) for line in out.splitlines() if line.startswith("Errors: ")
             for kind, n in re.findall(r"([a-z-]+) (\d+)", line.removeprefix("Errors: "))
             if kind != "total" and int(n)}
    total = re.search(r"Total: connections (\d+) requests (\d+) replies (\d+) "
                      r"test-duration ([\d.]+) s", out)
    assert total is not None, out[-2000:]
    cpu = re.search(r"CPU time \[s\]: user ([\d.]+) system ([\d.]+)", out)
    # The answers' bodies, "RB<serial>:<text>" (a body split over reads comes in several lines).
    bodies: dict[str, str] = {}
    for serial, text in re.findall(r"^RB(\d+):(.*)$", out, flags=re.M):
        bodies[serial] = bodies.get(serial, "") + text
    server_ms = []
    for text in bodies.values():
        try:
            server_ms.append(float(json.loads(text)["timing"]["total_ms"]))
        except (ValueError, KeyError, TypeError):
            pass  # an error answer has no timing
    duration = float(total.group(4))
    return {
        "sessions": int(total.group(1)),
        "replies": int(total.group(3)),
        "ok": replies.get("2xx", 0),
        "errors": errors + sum(n for code, n in replies.items() if code != "2xx"),
        "replies_by_status": {code: n for code, n in replies.items() if n},
        "errors_by_kind": kinds,  # httperf's: client-timo (no answer within its timeout), ...
        "duration_s": duration,
        "served_per_s": replies.get("2xx", 0) / duration if duration else 0.0,
        "arrivals_per_s": int(total.group(1)) / duration if duration else 0.0,
        "max_in_flight": int(re.search(r"<=(\d+) concurrent", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": percentile(hist, 0.50) if hist else None,
        "p99_ms": percentile(hist, 0.99) if hist else None,
        "max_ms": max(hist) + 0.5 if hist else None,
        "server_p50_ms": _nearest_rank(server_ms, 0.50) if server_ms else None,
        "server_p99_ms": _nearest_rank(server_ms, 0.99) if server_ms else None,
        "httperf_cpu_s": float(cpu.group(1)) + float(cpu.group(2)) if cpu else None,
    }


def _line(out: str, prefix: str) -> str:
    return next((x for x in out.splitlines() if x.startswith(prefix)), "")


def run(server: Server, bodies: list[dict], *, sessions: int, rate: float, nice: int) -> dict:
    """One httperf run of `sessions` single-request sessions: Poisson arrivals at `rate`
    per second, or one after another where `rate` is 0; with the server's answers by status."""
    before = server.answers()
    with tempfile.NamedTemporaryFile("w", suffix=".wsesslog", encoding="utf-8") as f:
        f.write(wsesslog(bodies))
        f.flush()
        argv = ["nice", "-n", str(nice), "httperf", "-v", "-v", "--hog", "--server", "127.0.0.1",
                "--port", str(server.port), "--add-header", "Content-Type: application/json\\n",
                f"--wsesslog={sessions},0,{f.name}", f"--timeout={HTTPERF_TIMEOUT_S:g}",
                "--print-reply=body"]
        if rate > 0:
            argv.append(f"--period=e{1.0 / rate:.6f}")
        # httperf waits for the last answers (bounded by its timeout): allow for that.
        limit_s = (sessions / rate if rate > 0 else sessions * 2.0) + 2 * HTTPERF_TIMEOUT_S
        done = subprocess.run(argv, capture_output=True, text=True, timeout=limit_s)
    if done.returncode != 0:
        raise RuntimeError(f"httperf exited with {done.returncode}: {done.stderr[-2000:]}")
    out = parse(done.stdout)
    # The app counts an answer once it is sent, so the last ones may not be counted yet.
    deadline = time.monotonic() + 5.0
    while sum((statuses := server.answers() - before).values()) < out["replies"]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return {**out, "offered_per_s": rate, "server_statuses": dict(sorted(statuses.items()))}
