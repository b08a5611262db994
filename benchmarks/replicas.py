"""Benchmarks: deploy/'s topology on 127.0.0.1 (Debian's redis-server, two `nmt serve` replicas,
nginx with deploy/nginx.conf in front): requests/s through nginx to both replicas against one
replica alone, and a check that the per-key rate limit is exact across the replicas.

    python benchmarks/replicas.py                     # full size: about 3 minutes
    python benchmarks/replicas.py --quick --json /tmp/replicas.json   # seconds
    python benchmarks/replicas.py --set NMT_MODEL_LANES=1   # more replica settings (repeatable)

Throughput: both replicas run the shipped de->en model (models/multi30k-de-en, `--model` for
another) with `--num-threads 1` (per model worker process where the service runs them,
NMT_MODEL_PROCESSES), NMT_REDIS_URL and NMT_TRUSTED_PROXIES=127.0.0.1 as deploy/compose.yaml
sets them; otherwise the service's defaults, and `--set` for more. `wrk -t1 -c32` with
benchmarks/wrk/translate.lua (single-sentence `POST /v1/translate` bodies from Multi30k's
test_2016_flickr, closed loop, as benchmarks/service_load.py runs it) loads replica 1 directly,
then nginx, taking turns for a few rounds; greedy (`"beam_size": 1`) and beam 5 (the model's
default). Each replica's /metrics says
how nginx spread the requests. Decoding is CPU-bound: one replica (its model lanes or model
workers) can already use every core of a small machine, so a second replica on the same machine
adds requests/s only where cores are left over; these figures say what nginx and the second process
cost, not how a deployment over several machines scales.

Rate limit: the replicas restart with NMT_API_KEYS (two keys) and NMT_RATE_LIMIT_PER_MINUTE=L,
counting in the one Redis. Through nginx, 16 threads send 3L requests at once with key A and L + 5
with key B (well within one minute): exactly L of each key's requests must succeed and every
other one be a 429 "Slowdown: L per 1 minute", with both replicas having answered some of each
(without Redis each replica would count alone and let up to 2L through).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.open_loop import SEARCHES, busy_note, code_version, log, machine_load  # noqa: E402
from benchmarks.service_load import Server, load_test  # noqa: E402
from benchmarks.topology import Nginx, RedisServer, find_program  # noqa: E402
from benchmarks.workspace import DATA, ROOT, machine_info, read_gz, save_json  # noqa: E402

KEYS = ("bench-key-a", "bench-key-b")




@contextmanager
def topology(args: argparse.Namespace, tmp: Path, redis: RedisServer,
             env: dict[str, str]) -> Iterator[tuple[list[Server], Nginx]]:
    """Two replicas (started at once: half the wait) with `env`, and nginx in front."""
    env = {"NMT_REDIS_URL": redis.url, "NMT_TRUSTED_PROXIES": "127.0.0.1", **env, **args.env}
    replicas: list[Server] = []
    proxy = None
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(Server, [args.model], threads=args.threads, batching=True,
                                   log_path=tmp / f"nmt-{i}-{time.monotonic_ns()}.log", env=env)
                       for i in (1, 2)]
            for future in futures:
                replicas.append(future.result())
        log(f"replicas ready in {', '.join(f'{r.start_seconds:.1f} s' for r in replicas)}")
        proxy = Nginx(args.nginx, tmp, upstreams=[r.port for r in replicas])
        yield replicas, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        for replica in replicas:
            replica.stop()


def throughput(args: argparse.Namespace, replicas: list[Server], proxy: Nginx,
               sentences: list[str]) -> dict:
    """req/s, p50 and p99 of one replica directly and of nginx to both, per search (medians
    over rounds that alternate which goes first)."""
    out: dict = {}
    for name in args.searches:
        runs: dict[str, list[dict]] = {"one replica": [], "nginx, two replicas": []}
        for rep in range(args.reps):
            order = list(runs) if rep % 2 == 0 else list(reversed(runs))
            for target in order:
                url = replicas[0].url if target == "one replica" else proxy.url
                before = [r.answers() for r in replicas]
                r: dict[str, Any] = load_test(url, sentences, concurrency=32,
                                              seconds=args.seconds, source="de", target="en",
                                              beam_size=SEARCHES[name])
                r["per_replica_200"] = [x.answers()["200"] - b["200"]
                                        for x, b in zip(replicas, before, strict=True)]
                runs[target].append(r)
                log(f"{name}, {target}: {json.dumps(r)}")
        out[name] = {
            target: {m: statistics.median(r[m] for r in rs)
                     for m in ("requests_per_s", "p50_ms", "p99_ms")}
            | {"errors": sum(r["errors"] for r in rs), "requests": sum(r["requests"] for r in rs),
               "per_replica_200": [sum(r["per_replica_200"][i] for r in rs) for i in (0, 1)],
               "rounds": [r["requests_per_s"] for r in rs]}
            for target, rs in runs.items()}
        one, two = (out[name][t]["requests_per_s"] for t in runs)
        out[name]["ratio"] = two / one
    return out


def rate_limit(replicas: list[Server], proxy: Nginx, limit: int) -> dict:
    """Bursts through nginx with each key; what got through, what each replica answered."""
    body = {"texts": ["Ein Hund rennt."], "source": "de", "target": "en", "beam_size": 1}
    before = [r.answers() for r in replicas]
    sent = {KEYS[0]: 3 * limit, KEYS[1]: limit + 5}
    start = time.monotonic()
    with httpx.Client(base_url=proxy.url, timeout=60,
                      limits=httpx.Limits(max_connections=16)) as client:

        def send(key: str) -> tuple[int, str]:
            r = client.post("/v1/translate", json=body, headers={"X-API-Key": key})
            return r.status_code, r.text if r.status_code != 200 else ""

        with ThreadPoolExecutor(16) as pool:
            answers = {key: list(pool.map(send, [key] * n)) for key, n in sent.items()}
    elapsed = time.monotonic() - start
    refusal = {"error": f"Slowdown: {limit} per 1 minute"}
    per_key = {}
    for i, (key, results) in enumerate(answers.items()):
        statuses = Counter(status for status, _ in results)
        bodies_ok = all(json.loads(text) == refusal for status, text in results if status == 429)
        per_key[f"key {'AB'[i]}"] = {"sent": sent[key], "status": dict(sorted(statuses.items())),
                                     "exact": statuses[200] == limit
                                     and statuses[429] == sent[key] - limit and bodies_ok}
    # A replica counts an answer once it is sent, so the last ones may not be counted yet.
    deadline = time.monotonic() + 5.0
    while True:
        per_replica = [dict(sorted((r.answers() - b).items()))
                       for r, b in zip(replicas, before, strict=True)]
        if sum(n for p in per_replica for n in p.values()) >= sum(sent.values()) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return {"limit_per_minute": limit, "seconds": elapsed, "keys": per_key,
            "per_replica": per_replica,
            "both_replicas_answered": all(p.get("200") and p.get("429") for p in per_replica),
            "exact": elapsed < 60 and all(k["exact"] for k in per_key.values())}


def run(args: argparse.Namespace, command: str) -> dict:
    sentences = read_gz(DATA / "test_2016_flickr.de.gz")
    report: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command, "code": code_version(), "machine": machine_info(),
        "load_before": machine_load(), "model": str(args.model), "threads": args.threads,
        "settings": args.env,
        "seconds": args.seconds, "reps": args.reps}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        redis = RedisServer(args.redis, tmp).start()
        try:
            with topology(args, tmp, redis, {}) as (replicas, proxy):
                report["throughput"] = throughput(args, replicas, proxy, sentences)
            limits = {"NMT_API_KEYS": ",".join(KEYS),
                      "NMT_RATE_LIMIT_PER_MINUTE": str(args.limit)}
            with topology(args, tmp, redis, limits) as (replicas, proxy):
                report["rate_limit"] = rate_limit(replicas, proxy, args.limit)
                log(f"rate limit: {json.dumps(report['rate_limit'])}")
        finally:
            redis.kill()
    report["load_after"] = machine_load()
    return report


def markdown(report: dict) -> str:
    """A dated section: machine, command, load, the throughput table and the rate-limit one."""
    m = report["machine"]
    settings = " ".join(f"{k}={v}" for k, v in report["settings"].items()) or "none"
    lines = [
        f"## Two replicas behind nginx ({report['date']})", "",
        f"Machine: {m['cpu']}, {m['memory']}, {m['os']}, Python {m['python']}, torch "
        f"{m['torch']}. Code: {report['code']}. Command: `{report['command']}`.", "",
        f"Two `nmt serve --model {Path(report['model']).name} --num-threads "
        f"{report['threads']}` replicas on 127.0.0.1, micro-batching on, NMT_REDIS_URL (Debian's "
        f"redis-server), nginx with deploy/nginx.conf; settings beyond the defaults: "
        f"{settings}. Load: `wrk -t1 -c32`, {report['seconds']:g} s per cell, {report['reps']} "
        "rounds alternating the two targets; medians.", "",
        f"Load before: `{report['load_before']['uptime']}`; after: "
        f"`{report['load_after']['uptime']}`.", "", *busy_note(report["load_before"]),
        "| search | target | req/s | p50 ms | p99 ms | requests | 200s per replica (warm-up in) | "
        "errors | req/s each round |",
        "|---|---|---|---|---|---|---|---|---|"]
    for name, cells in report["throughput"].items():
        for target, c in cells.items():
            if target == "ratio":
                continue
            split = " / ".join(f"{n:,}" for n in c["per_replica_200"])
            rounds = ", ".join(f"{x:.1f}" for x in c["rounds"])
            lines.append(f"| {name} | {target} | {c['requests_per_s']:.1f} | {c['p50_ms']:,.0f} | "
                         f"{c['p99_ms']:,.0f} | {c['requests']:,} | {split} | {c['errors']} | "
                         f"{rounds} |")
        lines.append(f"| {name} | two / one | {cells['ratio']:.2f}x | | | | | | |")
    rl = report["rate_limit"]
    lines += ["", f"Rate limit NMT_RATE_LIMIT_PER_MINUTE={rl['limit_per_minute']} per API key, "
              f"through nginx, 16 requests at once, {rl['seconds']:.1f} s in all:", "",
              "| key | sent | answers | exact |", "|---|---|---|---|"]
    for key, k in rl["keys"].items():
        statuses = ", ".join(f"{n} x {s}" for s, n in k["status"].items())
        lines.append(f"| {key} | {k['sent']} | {statuses} | {'yes' if k['exact'] else 'NO'} |")
    for i, p in enumerate(rl["per_replica"], 1):
        lines.append(f"| replica {i} answered | | "
                     f"{', '.join(f'{n} x {s}' for s, n in sorted(p.items()))} | |")
    lines += ["", "Machine before the run (`top -bn1 | head -12`):", "", "```",
              report["load_before"]["top"], "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="seconds: greedy only, one 1 s round, a limit of 10 (what the test runs)")
    p.add_argument("--model", type=Path, default=ROOT / "models" / "multi30k-de-en")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each replica")
    p.add_argument("--seconds", type=float, default=15.0, help="wrk time per cell")
    p.add_argument("--reps", type=int, default=2, help="rounds per target")
    p.add_argument("--limit", type=int, default=100, help="NMT_RATE_LIMIT_PER_MINUTE to check")
    p.add_argument("--search", dest="searches", action="append", choices=sorted(SEARCHES),
                   help="greedy or 'beam 5' (repeatable; default: both)")
    p.add_argument("--set", dest="env", action="append", default=[], metavar="NMT_X=V",
                   help="another setting for the replicas (repeatable)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--markdown", type=Path, help="also append the markdown section here")
    args = p.parse_args(argv)
    if args.quick:
        args.seconds, args.reps, args.limit = 1.0, 1, 10
        args.searches = args.searches or ["greedy"]
    args.searches = args.searches or list(SEARCHES)
    args.env = dict(item.split("=", 1) for item in args.env)
    for attr, program in (("redis", "redis-server"), ("nginx", "nginx"), ("wrk", "wrk")):
        setattr(args, attr, find_program(program))
        if getattr(args, attr) is None:
            raise SystemExit(f"{program} is not installed (apt-get install {program})")
    command = shlex.join(["python", "benchmarks/replicas.py", *(argv or sys.argv[1:])])
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
    return 0 if report["rate_limit"]["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())
