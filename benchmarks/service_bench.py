"""Benchmarks: the service stage: start-up to /ready, peak RSS, and load with and without
micro-batching at concurrency 1, 8 and 32 (both servers up, taking turns, several rounds)."""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

from benchmarks.service_load import Server, load_test, load_tool
from benchmarks.workspace import ROOT, Workspace

CONCURRENCY = (1, 8, 32)


def default_bundles() -> list[Path]:
    """The shipped models under models/ (what `nmt serve` loads by default)."""
    return sorted(p for p in (ROOT / "models").glob("*") if (p / "model.pt").is_file())


def bundle_from_checkpoint(ckpt: str, out: Path) -> Path:
    """A servable bundle holding a training checkpoint's weights (float32)."""
    from nmt.checkpoint import export_bundle, safe_load
    from nmt.config import config_from_dict
    from nmt.tokenization import Tokenizer

    if (Path(ckpt) / "model.pt").is_file():  # already a bundle
        return Path(ckpt)
    if (out / "model.pt").exists():
        return out
    obj = safe_load(ckpt)
    export_bundle(out, config=config_from_dict(obj["config"]), state_dict=obj["model"],
                  src_tokenizer=Tokenizer(obj["src_spm"]), tgt_tokenizer=Tokenizer(obj["tgt_spm"]),
                  metadata={"note": "benchmark model (same training budget as the peers)"})
    return out


def run(ws: Workspace, args: argparse.Namespace, nmt_ckpt: str, *, log=print) -> dict:
    threads = args.threads
    bench_bundle = bundle_from_checkpoint(nmt_ckpt, ws.root / f"bundle-nmt-{Path(nmt_ckpt).stem}")
    defaults = [] if args.quick else default_bundles()
    logs = ws.root / "service"
    logs.mkdir(parents=True, exist_ok=True)
    out: dict = {"threads": threads, "seconds_per_cell": args.service_seconds,
                 "reps": args.reps, "load_tool": load_tool(),
                 "load_model": f"nmt's model of the translation benchmark ({Path(nmt_ckpt).name})"}

    # Start-up: launch to /ready, with the default models when shipped, else the bench model
    # (--quick: the batched load server's own start).
    startup_bundles = defaults or [bench_bundle]
    out["startup_models"] = [p.name for p in startup_bundles] if defaults else ["bench model"]
    times, peaks = [], []
    for rep in range(0 if args.quick else args.reps):
        server = Server(startup_bundles, threads=threads, batching=True,
                        log_path=logs / f"startup{rep}.log")
        times.append(server.start_seconds)
        peaks.append(server.rss_mib()["peak_rss"])
        server.stop()

    sentences = ws.text("test", "de").read_text(encoding="utf-8").splitlines()
    servers = _start_load_servers(bench_bundle, threads=threads, logs=logs)
    if not times:
        times, peaks = [servers[True].start_seconds], [servers[True].rss_mib()["peak_rss"]]
    out["startup_seconds"] = {"median": statistics.median(times), "min": min(times),
                              "max": max(times)}
    out["rss_after_load_mib"] = statistics.median(peaks)
    log(f"  start-up {statistics.median(times):.2f} s, RSS {statistics.median(peaks):.0f} MiB")
    # Beam 5 (the model's default, what LibreTranslate clients get) and greedy requests.
    cells: dict[str, dict[str, dict[str, list[dict]]]] = {}
    try:
        for rep in range(args.reps):
            for beam in (None,) if args.quick else (None, 1):
                label = "default" if beam is None else str(beam)
                for c in CONCURRENCY:
                    for b in ((True, False) if rep % 2 == 0 else (False, True)):
                        key = "batched" if b else "unbatched"
                        r = load_test(servers[b].url, sentences, concurrency=c,
                                      seconds=args.service_seconds, source="de", target="en",
                                      beam_size=beam)
                        cells.setdefault(label, {}).setdefault(key, {}).setdefault(
                            str(c), []).append(r)
                        log(f"  beam {label} {key} c={c}: {r['requests_per_s']:.1f} req/s, "
                            f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms")
        out["peak_rss_under_load_mib"] = servers[True].rss_mib()["peak_rss"]
    finally:
        for s in servers.values():
            s.stop()
    out["load"] = {
        label: {key: {c: {m: statistics.median(r[m] for r in runs)
                          for m in ("requests_per_s", "p50_ms", "p99_ms")}
                      | {"errors": sum(r["errors"] for r in runs),
                         "requests": sum(r["requests"] for r in runs)}
                      for c, runs in per_c.items()}
                for key, per_c in per_mode.items()}
        for label, per_mode in cells.items()}
    return out


def _start_load_servers(bundle: Path, *, threads: int, logs: Path) -> dict[bool, Server]:
    """The batched and the unbatched server, started at once (half the wait; start-up itself
    is measured alone above, except in --quick), or neither."""
    with ThreadPoolExecutor(2) as pool:
        futures = {b: pool.submit(Server, [bundle], threads=threads, batching=b,
                                  log_path=logs / f"load-{'batched' if b else 'unbatched'}.log")
                   for b in (True, False)}
        wait(futures.values())
    started = {b: f.result() for b, f in futures.items() if f.exception() is None}
    failed = [f.exception() for f in futures.values() if f.exception() is not None]
    if failed:
        for server in started.values():
            server.stop()
        raise failed[0]
    return started
