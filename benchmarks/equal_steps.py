"""Benchmarks: decoding speed at equal steps: nmt and OpenNMT-py forced to one output length.

How fast a system decodes depends on how long its outputs are, so on how well it is trained.
Forced to exactly N decoder steps per sentence, both do the same work and the sentences/s ratio
compares the decoders alone. OpenNMT-py: `-min_length N -max_length N -max_length_ratio 0`;
nmt: `nmt_entry.py --equal-steps N` (decode.min_len N - 1, max_len_a 0, max_len_b N - 1, and a
step scorer that ends every row at step N; see there why). The natural-length rows of the same
models run in the same alternation, for reference. After the timed runs every worker translates
once more, untimed, with its decoder steps counted from its own search (see
entry/worker_protocol.py): every forced output must take exactly N steps.

    .venv/bin/python -m benchmarks.equal_steps --steps 20 --md /tmp/equal_steps_results.md
    .venv/bin/python -m benchmarks.equal_steps --render     # the stored run's section again

Needs OpenNMT-py and a model of its configuration, trained for any number of updates:
`python benchmarks/run.py setup --peer opennmt-py --out /tmp/R.md` and
`python benchmarks/run.py models --peer opennmt-py --updates 5 --out /tmp/R.md`. nmt decodes
with the shipped bundle models/multi30k-de-en. Figures: benchmarks/work/results/equal-steps.json.
"""

from __future__ import annotations

import argparse
import math
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks import peers
from benchmarks.decoding import BATCH, count_tokens, worker_argv
from benchmarks.measure import Stats, Worker, alternate
from benchmarks.run import git_commit, load_stage, log, models_for, other_load, store_stage
from benchmarks.systems import thread_env
from benchmarks.workspace import ROOT, WORK, Workspace, machine_info, prepare

STAGE = "equal-steps"
PEER = "opennmt-py"
NAMES = {"nmt": "nmt", PEER: "OpenNMT-py"}


def row_names(steps: int) -> dict[str, tuple[str, int]]:
    """Row name -> (system, forced steps; 0 for natural lengths), natural rows first."""
    return {"nmt": ("nmt", 0), PEER: (PEER, 0),
            f"nmt {steps} steps": ("nmt", steps), f"{PEER} {steps} steps": (PEER, steps)}


def step_summary(steps: list[int]) -> dict:
    """Decoder steps per output: histogram (steps -> outputs), min, max, mean."""
    return {"histogram": {str(k): v for k, v in sorted(Counter(steps).items())},
            "min": min(steps), "max": max(steps), "mean": sum(steps) / len(steps)}


def check_steps(counted: dict, *, steps: int, sentences: int, batch: int = BATCH) -> list[str]:
    """What is wrong with a forced row's counted steps ([] when all is right).

    Every one of `sentences` outputs must take exactly `steps` decoder steps, each input be
    one decoding unit, and the decoder run `steps` times per batch of at most `batch`.
    """
    problems = []
    histogram = counted["steps"]["histogram"]
    if histogram != {str(steps): sentences}:
        problems.append(f"steps per output {histogram}, not {sentences} x {steps}")
    if counted["units"] != sentences:
        problems.append(f"{counted['units']} decoding units for {sentences} inputs")
    calls = math.ceil(sentences / batch) * steps
    if counted["decoder_calls"] != calls:
        problems.append(f"{counted['decoder_calls']} decoder calls, not {calls} "
                        f"({math.ceil(sentences / batch)} batches x {steps})")
    return problems


def ratio(rows: dict, nmt_row: str, peer_row: str, figure: str = "median") -> float:
    """nmt's sentences/s over the peer's: their medians, or ("max") their best runs."""
    return rows[nmt_row]["sentences_per_s"][figure] / rows[peer_row]["sentences_per_s"][figure]


def round_ratios(rows: dict, nmt_row: str, peer_row: str) -> list[float]:
    """nmt's sentences/s over the peer's within each round: the two ran minutes apart at most
    (the forced rows one after the other), so a load that drifts between rounds cancels."""
    return [peer / own for own, peer in zip(rows[nmt_row]["seconds_per_round"],
                                            rows[peer_row]["seconds_per_round"], strict=True)]


def measure(ws: Workspace, models: dict[str, str], *, steps: int, beams: list[int], reps: int,
            threads: int, out_dir: Path, nmt_variant: str = "") -> dict[str, dict]:
    """{str(beam): {row name: figures}} for the natural and the forced rows, all alternating."""
    out_dir.mkdir(parents=True, exist_ok=True)
    src = ws.text("test", "de")
    lines = src.read_text(encoding="utf-8").splitlines(True)
    warm = out_dir / "warmup.de"
    warm.write_text("".join(lines[:BATCH]), encoding="utf-8")
    env = thread_env(threads)
    workers: list[Worker] = []
    results: dict[str, dict] = {}
    try:
        for name, (system, forced) in row_names(steps).items():
            log(f"starting {name} worker")
            argv = worker_argv(system, models[system], ws, out_dir=out_dir, steps=forced,
                               variant=nmt_variant if system == "nmt" else "")
            workers.append(Worker(name, argv, env, out_dir / f"{name}.log"))
        for beam in beams:
            log(f"beam {beam}: {', '.join(w.name for w in workers)}")
            beam_dir = out_dir / f"beam{beam}"
            beam_dir.mkdir(exist_ok=True)
            alt = alternate(workers, src, beam_dir, beam=beam, reps=reps, warmup_src=warm, log=log)
            rows: dict[str, dict] = {}
            for w in workers:
                hyps = (beam_dir / f"{w.name}.txt").read_text(encoding="utf-8").splitlines()
                tokens = count_tokens(ws, hyps)
                secs = alt.seconds[w.name]
                counted = w.count(src, beam_dir / f"{w.name}.counted.txt", beam)
                summary = step_summary(counted["steps"])
                rows[w.name] = {
                    "seconds": Stats(secs).to_dict(),
                    "seconds_per_round": secs,
                    "sentences_per_s": Stats([len(lines) / t for t in secs]).to_dict(),
                    "tokens_per_s": Stats([tokens / t for t in secs]).to_dict(),
                    "target_tokens": tokens,
                    "counted": {"steps": summary,
                                "decoder_calls": counted["decoder_calls"],
                                "units": counted["units"]},
                    "load_seconds": w.load_seconds,
                }
                log(f"  {w.name}: output lengths in steps {summary['histogram']}, "
                    f"{counted['decoder_calls']} decoder calls")
            results[str(beam)] = rows
        return results
    finally:
        for w in workers:
            w.close()


def top_lines() -> list[str]:
    """The first 15 lines of `top -bn1`: what else ran on the (shared) machine."""
    out = subprocess.run(["top", "-bn1"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[:15]


# ---------------------------------------------------------------- the markdown section
def _rate(row: dict) -> str:
    s = row["sentences_per_s"]
    return f"{s['median']:,.1f} ({s['spread']:.0%})"


def _per_round(rows: dict, a: str, b: str) -> str:
    if "seconds_per_round" not in rows[a]:  # runs stored before it was kept
        return "-"
    r = Stats(round_ratios(rows, a, b))
    return f"{r.median:.2f}x ({min(r.values):.2f}-{max(r.values):.2f})"


def _best(rows: dict, a: str, b: str) -> str:
    best = rows[a]["sentences_per_s"]["max"], rows[b]["sentences_per_s"]["max"]
    return f"{best[0]:,.1f} / {best[1]:,.1f} = {ratio(rows, a, b, 'max'):.2f}x"


def _steps(row: dict) -> str:
    c = row["counted"]["steps"]
    if c["min"] == c["max"]:
        return f"{c['min']} for all {sum(c['histogram'].values()):,}"
    return f"mean {c['mean']:.1f} ({c['min']}-{c['max']})"


def render(stage: dict) -> str:
    """A dated markdown section of one stored run: table, ratios, step-count check, load."""
    n = stage["steps"]
    names = row_names(n)
    natural, forced = list(names)[:2], list(names)[2:]
    m = stage["machine"]
    out = [f"## Equal-step decoding speed: nmt vs OpenNMT-py 3.5.1, N = {n} "
           f"({stage['finished']})", "",
           f"Machine: {m['cpu']}, {m['memory']}, torch {m['torch']}, {stage['threads']} torch "
           f"threads each; nmt commit `{stage['nmt_commit']}`. test_2016_flickr de->en "
           f"({stage['sentences']:,} sentences), batches of {BATCH} sentences, all four workers "
           f"taking turns, median of {stage['reps']} runs (spread: (max - min) / median); the "
           "ratio also per round, and of the best runs, since the machine is shared.", "",
           f"Command: `{stage['command']}` ({stage['wall_minutes']:.1f} minutes).", "",
           f"Models: nmt `{stage['models']['nmt']}`, decoding in "
           f"{stage.get('nmt_precision', 'fp32')}; OpenNMT-py `{stage['models'][PEER]}` "
           f"({stage.get('peer_updates', '?')} updates), fp32.", "",
           "| search | lengths | nmt sentences/s | OpenNMT-py sentences/s | nmt / OpenNMT-py "
           "| per round: median (range) | best runs: nmt / OpenNMT-py "
           "| output length in decoder steps: nmt | OpenNMT-py |",
           "|---|---|---|---|---|---|---|---|---|"]
    for beam, rows in stage["beams"].items():
        search = "greedy" if beam == "1" else f"beam {beam}"
        for label, (a, b) in ((f"forced, {n} steps", forced), ("natural", natural)):
            out.append(f"| {search} | {label} | {_rate(rows[a])} | {_rate(rows[b])} | "
                       f"{ratio(rows, a, b):.2f}x | {_per_round(rows, a, b)} | "
                       f"{_best(rows, a, b)} | {_steps(rows[a])} | {_steps(rows[b])} |")
    batches = math.ceil(stage["sentences"] / BATCH)
    out += ["", f"Step-count check (an untimed extra translation per worker; each output's length "
            f"in steps read from the system's own search, the decoder calls counted at its step "
            f"function, over {batches} batches). A forced row passes when every output took "
            f"exactly {n} steps and the decoder ran {n} times per batch, "
            f"{batches * n:,} in all:", ""]
    for beam, rows in stage["beams"].items():
        for name in names:
            c = rows[name]["counted"]
            if name in forced:
                problems = check_steps(c, steps=n, sentences=stage["sentences"])
                verdict = "**FAILED**: " + "; ".join(problems) if problems else "pass"
            else:  # a beam search may run on after its best output ended: calls tell the work
                verdict = "natural lengths"
            out.append(f"- beam {beam}, {name}: {verdict} ({c['units']:,} units, "
                       f"{c['decoder_calls']:,} decoder calls)")
    out += ["", "Machine load (other processes at 20% CPU or more):", ""]
    out.append("- at the start: " + "; ".join(stage["load_at_start"]))
    out.append("- at the end: " + "; ".join(stage["machine_load"]))  # stored by store_stage
    out += ["", "`top -bn1 | head -15` at the start:", "", "```", *stage["top_at_start"], "```",
            ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20, help="decoder steps per output, forced")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--reps", type=int, default=3, help="timed runs per figure (median)")
    p.add_argument("--threads", type=int, default=2, help="torch threads, the same for both")
    p.add_argument("--nmt-model", type=Path, default=ROOT / "models" / "multi30k-de-en")
    p.add_argument("--nmt-precision", choices=["fp32", "bf16"], default="fp32",
                   help="nmt's decoding precision (bf16: the matrix products in bfloat16; "
                        "OpenNMT-py decodes in fp32 either way)")
    p.add_argument("--work", type=Path, default=WORK, help="the benchmark workspace")
    p.add_argument("--md", type=Path, help="also write the markdown section here")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: print (and --md) the section of the stored run")
    args = p.parse_args(argv)
    if args.render:
        _write(render(load_stage(Workspace(args.work), STAGE) or {}), args.md)
        return
    if args.steps < 2:
        p.error(f"--steps: {args.steps} is below 2 (nmt's last step is its end of sentence)")
    if not peers.installed(PEER):
        raise SystemExit(f"{PEER} is not installed: run `python benchmarks/run.py setup "
                         f"--peer {PEER} --out /tmp/R.md`")
    ws = Workspace(args.work)
    prepare(ws, log=log)
    models = {"nmt": str(args.nmt_model.resolve()), **models_for(ws, [PEER])}
    # The code the workers load now is what is measured (others may commit meanwhile).
    start, top, load, commit = time.perf_counter(), top_lines(), other_load(), git_commit()
    beams = measure(ws, models, steps=args.steps, beams=args.beams, reps=args.reps,
                    threads=args.threads, out_dir=ws.root / "equal-steps",
                    nmt_variant=args.nmt_precision if args.nmt_precision != "fp32" else "")
    peer_ck = ((load_stage(ws, "models") or {}).get("checkpoints") or {}).get(PEER) or {}
    store_stage(ws, STAGE, {
        "steps": args.steps, "threads": args.threads, "reps": args.reps,
        "nmt_precision": args.nmt_precision,
        "sentences": len(ws.text("test", "de").read_text(encoding="utf-8").splitlines()),
        "models": models, "peer_updates": peer_ck.get("step"),
        "machine": machine_info(), "nmt_commit": commit,
        "command": shlex.join([Path(sys.executable).name, "-m", "benchmarks.equal_steps",
                               *(argv if argv is not None else sys.argv[1:])]),
        "wall_minutes": (time.perf_counter() - start) / 60,
        "load_at_start": load, "top_at_start": top, "beams": beams,
    })
    _write(render(load_stage(ws, STAGE) or {}), args.md)


def _write(text: str, md: Path | None) -> None:
    print(text)
    if md:
        md.write_text(text, encoding="utf-8")
        log(f"wrote {md}")


if __name__ == "__main__":
    main()
