"""Benchmarks: open-loop latency of the REST service: p50 and p99 while requests arrive at a
fixed rate with Poisson (exponential) inter-arrival times, at 50% and 80% of the closed-loop
maximum, against the idle latency.

    python benchmarks/open_loop.py                     # full size: about 5 minutes
    python benchmarks/open_loop.py --quick --json /tmp/open_loop.json   # seconds
    python benchmarks/open_loop.py --set NMT_MODEL_LANES=1   # more server settings (repeatable)

`nmt serve` runs as a child process on a free 127.0.0.1 port with the shipped de->en model
(models/multi30k-de-en, `--model` for another), `--num-threads 1` (per model worker process
where the service runs them, NMT_MODEL_PROCESSES), micro-batching on, as
benchmarks/service_bench.py runs it; otherwise the service's defaults, and `--set` for more.
The requests are single-sentence `POST /v1/translate` bodies, the German side of Multi30k's
test_2016_flickr, greedy (`"beam_size": 1`) and beam 5 (the model's default). For each search,
on the same server:

1. the maximum throughput: closed loop, `wrk -t1 -c32` with benchmarks/wrk/translate.lua (32
   requests in flight, each connection sending its next as soon as the last one answers), as
   benchmarks/service_load.py measures it;
2. the idle latency: httperf sends one request at a time (no `--period`: at its default rate
   of 0 each session starts when the previous one has finished);
3. open loop: httperf at 50% and then 80% of that maximum for a fixed time,
   `--wsesslog=N,0,FILE --period=eT` (Poisson arrivals with mean gap T = 1 / rate), one request
   per session, so N = rate x seconds. httperf seeds its generator the same way on every run,
   so every run draws the same gaps, scaled to its rate: the rate that arrived (requests over
   the run's time) differs from the offered one by a few percent, and is reported beside it.

How p99 is obtained, and why it is honest. httperf prints only summaries, but with `-v -v` one
of them is the histogram of connection lifetimes at 1 ms resolution. Each session here is one
connection carrying one request, so a lifetime is one request's latency as its client sees it:
from the connect() at the session's start to the close after the whole reply, which includes the
TCP connect, uvicorn's accept queue, the service's queue and the model call. The percentiles are
read from that histogram, each as the upper edge of its 1 ms bin (rounded up, never down). There
is no coordinated omission: httperf starts every session at its own scheduled Poisson time,
from its timer, on a new connection, whether or not earlier requests have answered; a slow answer
never delays or drops the requests behind it, it only adds connections in flight (reported as
"max in flight"), so a server that falls behind shows it in the latencies, or in errors (the
app's 503 once NMT_MAX_QUEUE texts wait, its 504 after NMT_REQUEST_TIMEOUT_S, httperf's own
timeout), rather than by being sent less. Requests still in flight at the end are waited
for (up to the 60 s timeout), not dropped.

httperf polls its sockets without sleeping (a "CPU hog", its manual says): it holds one core
whenever it runs. On a small machine that would halve the CPU the server has, so httperf runs
under `nice -n 19`: it gets the cores the server leaves idle. The cost: while the server keeps
every core busy, httperf can be late, to start a session (its reported arrival rate then falls
below the offered one; both are reported) or to see an answer (the latency then reads high).
As a cross-check the table also gives the server's own p99 of `timing.total_ms` from the answers'
bodies (`--print-reply=body`): it covers only the time inside the app, so the client's p99 must
not be below it. Errors: every answer but a 200 (by status, from the server's /metrics) and
httperf's own (client-timo: no answer within its timeout; connection resets). Tests never time
things: tests/benchmarks/test_open_loop.py runs --quick and checks the figures are well formed.

Targets: p99 at 50% load at most 3x the idle p50, with no error.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import httperf  # noqa: E402
from benchmarks.service_load import Server, load_test  # noqa: E402
from benchmarks.workspace import DATA, ROOT, machine_info, read_gz, save_json  # noqa: E402

TARGET_RATIO = 3.0  # p99 at 50% load / idle p50
LOADS = (0.5, 0.8)
SEARCHES = {"greedy": 1, "beam 5": None}  # None: the model's default (5), as clients send it


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine_load() -> dict[str, Any]:
    """`uptime` and the head of `top` now: the machine is shared, so its load goes with the
    figures."""
    top = subprocess.run(["top", "-bn1"], capture_output=True, text=True, check=False).stdout
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return {"uptime": uptime.strip(), "top": "\n".join(top.splitlines()[:12]),
            "load_1min": os.getloadavg()[0], "cores": os.cpu_count() or 1}


def code_version() -> str:
    """The commit the figures come from, and whether nmt/ or service/ had changes beyond it."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", *argv], capture_output=True, text=True, cwd=ROOT,
                              check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--", "nmt", "service")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in nmt/ or service/"
                                                  if dirty else "")


def busy_note(before: dict) -> list[str]:
    """A warning line when other work already loaded the machine (1-minute load above a
    quarter of its cores) as the run began."""
    if before["load_1min"] <= 0.25 * before["cores"]:
        return []
    return [f"**The machine was busy** (load {before['load_1min']:.2f} on {before['cores']} "
            "cores before the run, from other work): these figures are to be re-run on a quiet "
            "machine.", ""]


def run_search(server: Server, sentences: list[str], beam: int | None,
               args: argparse.Namespace) -> dict:
    """Closed-loop maximum, idle latency, then the open-loop rates, for one search."""
    body = {"source": "de", "target": "en", "beam_size": beam, "return_scores": False}
    bodies = [{**body, "texts": [s]} for s in sentences]
    closed = load_test(server.url, sentences, concurrency=32, seconds=args.max_seconds,
                       source="de", target="en", beam_size=beam)
    out: dict = {"closed_loop": closed}
    log(f"closed loop: {closed['requests_per_s']:.1f} req/s")
    out["idle"] = httperf.run(server, bodies, sessions=args.idle_requests, rate=0.0,
                              nice=args.nice)
    for load in LOADS:
        rate = load * closed["requests_per_s"]
        out[f"{load:.0%}"] = httperf.run(server, bodies, nice=args.nice, rate=rate,
                                         sessions=max(1, round(rate * args.seconds)))
    idle_p50 = out["idle"]["p50_ms"]
    at_half = out[f"{LOADS[0]:.0%}"]
    out["ratio_p99_half_to_idle_p50"] = at_half["p99_ms"] / idle_p50 if idle_p50 else None
    out["target_met"] = (out["ratio_p99_half_to_idle_p50"] is not None
                         and out["ratio_p99_half_to_idle_p50"] <= TARGET_RATIO
                         and at_half["errors"] == 0)
    return out


def run(args: argparse.Namespace, command: str) -> dict:
    for program in ("httperf", "wrk"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is not installed (apt-get install {program})")
    sentences = read_gz(DATA / "test_2016_flickr.de.gz")
    report: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "code": code_version(), "machine": machine_info(),
        "load_before": machine_load(), "model": str(args.model), "threads": args.threads,
        "settings": args.env, "seconds_per_rate": args.seconds, "max_seconds": args.max_seconds,
        "idle_requests": args.idle_requests, "httperf_nice": args.nice, "searches": {}}
    with tempfile.TemporaryDirectory() as tmp:
        server = Server([args.model], threads=args.threads, batching=True,
                        log_path=Path(tmp) / "server.log", env=args.env)
        log(f"server ready in {server.start_seconds:.1f} s")
        try:
            for name in args.searches:
                report["searches"][name] = run_search(server, sentences, SEARCHES[name], args)
                log(f"{name}: {json.dumps(report['searches'][name])}")
        finally:
            server.stop()
    report["load_after"] = machine_load()
    return report


def _errors(r: dict) -> str:
    """The error count, with its kinds: non-200 answers by status (the server's count),
    httperf's own errors (client-timo: no answer within its timeout, ...)."""
    kinds = [f"{status} {n}" for status, n in r["server_statuses"].items() if status != "200"]
    kinds += [f"{kind} {n}" for kind, n in r["errors_by_kind"].items()]
    return f"{r['errors']} ({', '.join(kinds)})" if r["errors"] else "0"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def markdown(report: dict) -> str:
    """A dated section: machine, command, load, one table of figures and one of targets."""
    m = report["machine"]
    settings = " ".join(f"{k}={v}" for k, v in report["settings"].items()) or "none"
    lines = [
        f"## Open-loop latency ({report['date']})", "",
        f"Machine: {m['cpu']}, {m['memory']}, {m['os']}, Python {m['python']}, torch "
        f"{m['torch']}. Code: {report['code']}. Command: `{report['command']}`.", "",
        f"`nmt serve --model {Path(report['model']).name} --num-threads {report['threads']}` "
        f"on 127.0.0.1, micro-batching on, settings beyond the defaults: {settings}. "
        f"Closed-loop maximum: `wrk -t1 -c32`, {report['max_seconds']:g} s. Idle: "
        f"{report['idle_requests']} requests one at a time (httperf). Open loop: httperf "
        f"(`nice -n {report['httperf_nice']}`), Poisson arrivals at 50% and 80% of the maximum "
        f"for {report['seconds_per_rate']:g} s each, one request per connection. Latency: "
        "httperf's connection lifetimes (1 ms bins, upper edges); server p99: the app's own "
        "`timing.total_ms`.", "",
        f"Load before: `{report['load_before']['uptime']}`; after: "
        f"`{report['load_after']['uptime']}`.", "", *busy_note(report["load_before"]),
        "| search | load | offered req/s | arrived req/s | served req/s | requests | p50 ms | "
        "p99 ms | server p99 ms | max in flight | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in report["searches"].items():
        c = s["closed_loop"]
        lines.append(f"| {name} | closed loop, c=32 (wrk) | - | - | {c['requests_per_s']:.1f} | "
                     f"{c['requests']:,} | {_ms(c['p50_ms'])} | {_ms(c['p99_ms'])} | - | 32 | "
                     f"{c['errors']} |")
        for label in ("idle", *(f"{x:.0%}" for x in LOADS)):
            r = s[label]
            idle = label == "idle"  # one at a time (httperf counts the next one as it starts)
            offered = "sequential" if idle else f"{r['offered_per_s']:.1f}"
            lines.append(
                f"| {name} | {label} | {offered} | "
                f"{r['arrivals_per_s']:.1f} | {r['served_per_s']:.1f} | {r['sessions']:,} | "
                f"{_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | {_ms(r['server_p99_ms'])} | "
                f"{1 if idle else r['max_in_flight']} | {_errors(r)} |")
    lines += ["", "| search | p99 at 50% / idle p50 | errors at 50% | target | |",
              "|---|---|---|---|---|"]
    for name, s in report["searches"].items():
        ratio = s["ratio_p99_half_to_idle_p50"]
        lines.append(f"| {name} | {'-' if ratio is None else f'{ratio:.2f}x'} | "
                     f"{s['50%']['errors']} | <= {TARGET_RATIO:g}x, 0 errors | "
                     f"{'met' if s['target_met'] else 'missed'} |")
    lines += ["", "Machine before the run (`top -bn1 | head -12`):", "", "```",
              report["load_before"]["top"], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="seconds: greedy only, 1 s phases (what the test runs)")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "multi30k-de-en")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument("--seconds", type=float, default=45.0, help="open-loop time per rate")
    p.add_argument("--max-seconds", type=float, default=15.0, help="closed-loop (wrk) time")
    p.add_argument("--idle-requests", type=int, default=300)
    p.add_argument("--search", dest="searches", action="append", choices=sorted(SEARCHES),
                   help="greedy or 'beam 5' (repeatable; default: both)")
    p.add_argument("--nice", type=int, default=19, help="httperf's niceness (default: 19)")
    p.add_argument("--set", dest="env", action="append", default=[], metavar="NMT_X=V",
                   help="another setting for the server (repeatable)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--markdown", type=Path, help="also append the markdown section here")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.max_seconds, args.idle_requests = 1.5, 1.0, 10
        args.searches = args.searches or ["greedy"]
    args.searches = args.searches or list(SEARCHES)
    args.env = dict(item.split("=", 1) for item in args.env)
    command = shlex.join(["python", "benchmarks/open_loop.py", *(argv or sys.argv[1:])])
    start = time.perf_counter()
    report = run(args, command)
    report["wall_s"] = time.perf_counter() - start
    text = markdown(report)
    print(text)
    if args.json:
        save_json(args.json, report)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
