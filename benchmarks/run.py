"""Benchmarks: nmt side by side with OpenNMT-py 3.5.1 and JoeyNMT 2.3.0; writes RESULTS.md.

    python benchmarks/run.py --all                       # everything (installs the peers first)
    python benchmarks/run.py translate --peer opennmt-py # nmt vs one peer, greedy and beam 5
    python benchmarks/run.py models --peer opennmt-py --continue-min 55   # a peer trains longer
    python benchmarks/run.py models --peer opennmt-py --updates 5   # for equal_steps.py only
    python benchmarks/run.py --all --quick --out /tmp/R.md   # tiny models, seconds; no peers
                                                         # unless already installed

Stages (each stores its figures in benchmarks/work/results/STAGE.json, and RESULTS.md is
rendered from all stored stages): setup (peers' venvs, shared data and SentencePiece model),
models (all systems trained for the same budget), translate, compute, train, service.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import decoding, peers, report, training  # noqa: E402
from benchmarks.compute import gemm_rate, greedy_flops  # noqa: E402
from benchmarks.systems import PEERS  # noqa: E402
from benchmarks.workspace import ROOT, WORK, Workspace, machine_info, prepare, save_json  # noqa: E402

STAGES = ("setup", "models", "translate", "compute", "train", "service")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def results_dir(ws: Workspace) -> Path:
    return ws.root / "results"


def load_stage(ws: Workspace, stage: str) -> dict | None:
    path = results_dir(ws) / f"{stage}.json"
    return json.loads(path.read_text()) if path.exists() else None


def store_stage(ws: Workspace, stage: str, data: dict) -> None:
    data = {**data, "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine_load": other_load()}
    save_json(results_dir(ws) / f"{stage}.json", data)


def other_load() -> list[str]:
    """Other busy processes while a stage ran (the machine is shared): 'pid %cpu command'."""
    out = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True,
                         text=True, check=False).stdout.splitlines()[1:]
    busy = []
    for line in out:
        pid, cpu, cmd = line.split(None, 2)
        if float(cpu) >= 20 and int(pid) != __import__("os").getpid() and "ps -eo" not in cmd:
            busy.append(f"{pid} {cpu}% {cmd[:100]}")
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    return ([f"load average {' '.join(load)} (1, 5, 15 min)"] if load else []) + busy[:6]


# ---------------------------------------------------------------- stages
def stage_setup(ws: Workspace, args: argparse.Namespace) -> list[str]:
    prepare(ws, log=log)
    ready = []
    for peer in args.peers:
        if args.quick and not peers.installed(peer):
            log(f"--quick: {peer} is not installed: skipped")
            continue
        peers.install(peer, log=log)
        ready.append(peer)
    store_stage(ws, "setup", {
        "machine": machine_info(),
        "peers": {p: peers.versions(p) for p in ready},
        "nmt_commit": git_commit(),
    })
    return ready


def git_commit() -> str:
    out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or "unknown"


def stage_models(ws: Workspace, args: argparse.Namespace, systems: list[str]) -> None:
    if args.nmt_bundle:
        record_nmt_bundle(ws, args.nmt_bundle)
        return
    if args.continue_min > 0:
        go_on = [s for s in systems if s != "nmt"]
        found = training.train_for_budget(ws, go_on, minutes=args.continue_min, threads=1,
                                          resume=True, log=log)
        record_continued(ws, found, args.continue_min)
        return
    if args.quick or args.updates:
        updates = args.updates or 4
        found = {}
        for system in systems:
            log(f"training {system} for {updates} updates ({args.threads} threads)")
            training.fresh_dir(ws.models(system))
            cmd = training.train_command(system, ws, threads=args.threads, max_steps=updates,
                                         log_every=2)
            subprocess.run(cmd.argv, env=cmd.env, check=True, capture_output=True)
            found[system] = training.latest_checkpoint(ws, system)
        stage = {"budget_minutes": 0, "updates": updates, "threads": args.threads,
                 "checkpoints": training.with_parameters(found)}
        if args.updates:
            stage["note"] = (
                f"Every system was trained for only {updates} updates (`python benchmarks/run.py "
                f"models --updates {updates}`): models for timing decoding at a forced length "
                "(benchmarks/equal_steps.py), where training does not matter; their natural "
                "lengths and BLEU mean nothing.")
        store_stage(ws, "models", stage)
        return
    found = training.train_for_budget(ws, systems, minutes=args.budget_min, threads=1, log=log)
    peers_in = [s for s in systems if s != "nmt"]
    if peers_in and args.peer_extra_min > 0:
        # The peers train slower per minute: they go on alone for extra minutes, so the
        # decoding comparison is not made against peers held back by their own speed.
        found.update(training.train_for_budget(ws, peers_in, minutes=args.peer_extra_min,
                                               threads=1, resume=True, log=log))
    if args.nmt_extra_min > 0:
        found.update(training.train_for_budget(ws, ["nmt"], minutes=args.nmt_extra_min,
                                               threads=1, resume=True, log=log))
    store_stage(ws, "models", {"budget_minutes": args.budget_min, "threads": 1,
                               "extra_peer_minutes": args.peer_extra_min if peers_in else 0,
                               "extra_nmt_minutes": args.nmt_extra_min,
                               "checkpoints": training.with_parameters(found)})


def record_continued(ws: Workspace, found: dict[str, dict], minutes: float) -> None:
    """Stores peers' newer checkpoints from `models --continue-min`, keeping the others."""
    stage = load_stage(ws, "models")
    if stage is None:
        raise SystemExit("no trained models to continue: run `python benchmarks/run.py models`")
    stage["checkpoints"].update(training.with_parameters(found))
    for system, ck in found.items():
        stage.setdefault("later_training", {})[system] = (
            f"went on from its newest checkpoint (weights and optimizer) for {minutes:g} more "
            f"minutes with 1 thread, to update {ck['step']} "
            f"(`python benchmarks/run.py models --peer {system} --continue-min {minutes:g}`).")
    store_stage(ws, "models", stage)


def record_nmt_bundle(ws: Workspace, bundle: Path) -> None:
    """Makes a trained nmt bundle (e.g. the shipped model) nmt's model for the decoding stages."""
    bundle = bundle.resolve()
    if not (bundle / "model.pt").is_file() or not (bundle / "metadata.json").is_file():
        raise SystemExit(f"--nmt-bundle {bundle}: not a model bundle (needs model.pt and "
                         "metadata.json, as `nmt export` writes)")
    meta = json.loads((bundle / "metadata.json").read_text())
    stage = load_stage(ws, "models")
    if stage is None:
        raise SystemExit("run `python benchmarks/run.py models` first (the peers' models)")
    stage["checkpoints"]["nmt"] = {"path": str(bundle), "step": meta.get("steps"),
                                   "parameters": training.parameter_count("nmt", bundle)}
    shown = bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle
    stage.setdefault("later_training", {})["nmt"] = (
        f"its budget model was replaced by the bundle `{shown}` "
        f"({meta.get('epochs')} epochs, {meta.get('steps')} updates; the same architecture, "
        f"sizes, data and SentencePiece model), so that its BLEU is not below the peers' "
        f"(`python benchmarks/run.py models --nmt-bundle {shown}`).")
    store_stage(ws, "models", stage)


def models_for(ws: Workspace, systems: list[str]) -> dict[str, str]:
    stage = load_stage(ws, "models") or {}
    ckpts = stage.get("checkpoints", {})
    missing = [s for s in systems if not ckpts.get(s)]
    if missing:
        raise SystemExit(f"no trained model for {', '.join(missing)}: run "
                         f"`python benchmarks/run.py models` first")
    return {s: ckpts[s]["path"] for s in systems}


def stage_translate(ws: Workspace, args: argparse.Namespace, systems: list[str]) -> None:
    models = models_for(ws, systems)
    entries = [(s, s, models[s]) for s in systems]
    # nmt's own variants ride in the same alternation: int8, and (not in --quick) torch's
    # default kernels, to show what nmt/models/kernels.py gains over them.
    entries.append(("nmt int8", "nmt", models["nmt"]))
    if not args.quick:
        entries.append(("nmt default-kernels", "nmt", models["nmt"]))
    beams = decoding.run_decoding(ws, entries, beams=args.beams, reps=args.reps,
                                  threads=args.threads, out_dir=ws.root / "translations",
                                  log=log)
    full = set(systems) == {"nmt", *args.peers} or args.quick
    store_stage(ws, "translate" if full else "translate-" + "-".join(systems[1:]),
                {"threads": args.threads, "reps": args.reps, "systems": systems,
                 "sentences": len(ws.text("test", "de").read_text().splitlines()),
                 "beams": beams})


def stage_compute(ws: Workspace, args: argparse.Namespace) -> None:
    from nmt.checkpoint import load_model
    from nmt.tokenization import Tokenizer

    loaded = load_model(models_for(ws, ["nmt"])["nmt"])
    m = loaded.config.model
    vocab = loaded.tgt_tokenizer.vocab_size
    tok = Tokenizer.from_file(ws.spm_model)
    src = ws.text("test", "de").read_text(encoding="utf-8").splitlines()
    hyp_path = ws.root / "translations" / "beam1" / "nmt.txt"
    if not hyp_path.exists():
        raise SystemExit("run the translate stage first (greedy output needed)")
    hyps = hyp_path.read_text(encoding="utf-8").splitlines()
    src_len = [len(ids) + 1 for ids in tok.encode(src)]
    tgt_len = [len(ids) for ids in tok.encode(hyps)]
    flops = greedy_flops(m, vocab, src_len, tgt_len)
    translate = load_stage(ws, "translate") or {}
    greedy = translate.get("beams", {}).get("1", {}).get("nmt")
    rates = gemm_rate(m, vocab, rows=64, threads=args.threads, seconds=0.5 if args.quick else 3)
    out = {"threads": args.threads, "flops_total": flops,
           "flops_per_target_token": flops / max(1, sum(tgt_len)), "gemm_gflops": rates}
    if greedy:
        achieved = flops / greedy["seconds"]["median"] / 1e9
        out.update(achieved_gflops=achieved, fraction_of_gemm=achieved / rates["onednn"])
    store_stage(ws, "compute", out)


def stage_train(ws: Workspace, args: argparse.Namespace, systems: list[str]) -> None:
    steps, every = (4, 2) if args.quick else (args.train_steps, 5)
    res = training.train_throughput(ws, systems, steps=steps, log_every=every,
                                    threads=args.threads, reps=max(1, args.reps - 1), log=log)
    store_stage(ws, "train", {"threads": args.threads, "steps": steps, "log_every": every,
                              "systems": res})


def stage_service(ws: Workspace, args: argparse.Namespace) -> None:
    from benchmarks import service_bench

    store_stage(ws, "service", service_bench.run(ws, args, models_for(ws, ["nmt"])["nmt"],
                                                 log=log))


# ---------------------------------------------------------------- command line
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", nargs="?", choices=[*STAGES, "report"],
                   help="run one stage (and re-render RESULTS.md)")
    p.add_argument("--all", action="store_true", help="run every stage")
    p.add_argument("--quick", action="store_true",
                   help="tiny models and data slices in a separate workspace: seconds")
    p.add_argument("--peer", action="append", choices=PEERS,
                   help="compare with this peer only (repeatable; default: both)")
    p.add_argument("--no-peers", action="store_true", help="nmt's own figures only")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    p.add_argument("--work", type=Path, help="workspace (default benchmarks/work, "
                                             "or a temp dir beside --out with --quick)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, the same for all")
    p.add_argument("--reps", type=int, default=3, help="repetitions per figure")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--budget-min", type=float, default=25.0,
                   help="training budget per system, minutes (all at once, 1 thread each)")
    p.add_argument("--peer-extra-min", type=float, default=22.0,
                   help="then the peers alone go on for this many more minutes")
    p.add_argument("--nmt-extra-min", type=float, default=10.0,
                   help="and then nmt alone for this many (its total stays below the peers')")
    p.add_argument("--continue-min", type=float, default=0.0,
                   help="models stage: the peers chosen with --peer go on from their newest "
                        "checkpoints for this many minutes (nmt's model is kept)")
    p.add_argument("--updates", type=int, default=0,
                   help="models stage: train every system for exactly this many updates instead "
                        "of a time budget (models for forced-length timing only)")
    p.add_argument("--nmt-bundle", type=Path,
                   help="models stage: use this trained nmt bundle (e.g. models/multi30k-de-en) "
                        "as nmt's model for translate and service")
    p.add_argument("--train-steps", type=int, default=10,
                   help="updates per training-throughput run (the first 5 are warm-up)")
    p.add_argument("--service-seconds", type=float, default=8.0,
                   help="seconds of load per (concurrency, batching) cell")
    args = p.parse_args(argv)
    if not args.all and not args.stage:
        p.error("give a stage or --all")
    if args.continue_min < 0:
        p.error(f"--continue-min: {args.continue_min:g} is negative")
    if args.updates < 0:
        p.error(f"--updates: {args.updates} is negative")
    if (args.nmt_bundle or args.continue_min or args.updates) and args.stage != "models":
        p.error("--nmt-bundle, --continue-min and --updates belong to the models stage")
    args.peers = [] if args.no_peers else (args.peer or list(PEERS))
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.quick:
        args.service_seconds = min(args.service_seconds, 1.0)
        args.reps = 1
    root = args.work or (args.out.parent / "bench-work" if args.quick else WORK)
    ws = Workspace(root, quick=args.quick)
    stages = STAGES if args.all else (args.stage,)
    start = time.perf_counter()
    ready = [p for p in args.peers if peers.installed(p)]
    for stage in stages:
        if stage == "report":
            break
        log(f"stage {stage}")
        if stage == "setup":
            ready = stage_setup(ws, args)
            continue
        prepare(ws, log=log)
        if not args.quick:
            for peer in args.peers:
                if not peers.installed(peer):
                    raise SystemExit(f"{peer} is not installed: run `benchmarks/run.py setup`")
        systems = ["nmt", *(p for p in args.peers if p in ready)]
        if stage == "models":
            stage_models(ws, args, systems)
        elif stage == "translate":
            stage_translate(ws, args, systems)
        elif stage == "compute":
            stage_compute(ws, args)
        elif stage == "train":
            stage_train(ws, args, systems)
        elif stage == "service":
            stage_service(ws, args)
    stored = {s: load_stage(ws, s) for s in (*STAGES, *(f"translate-{p}" for p in PEERS))}
    report.write(args.out, stored, quick=args.quick, elapsed=time.perf_counter() - start)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
