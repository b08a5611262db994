"""Benchmarks: decoding speed of fp32 and int8, greedy and beam 5, before and after a change.

Four persistent workers (two checkouts x fp32/int8), each with one torch thread, take turns
translating test_2016_flickr (1,000 sentences, batches of at most 64) in every round, the order
rotating each round; medians of CPU seconds (other jobs on a shared machine move them less than
wall seconds, which are reported too) and sacreBLEU of the last round's output:

  git worktree add --detach /tmp/before <commit>
  python benchmarks/decoder_step.py --before /tmp/before [--reps 5] [--searches "beam 5"]
      [--json out.json]

Prints markdown tables: sentences/s per checkout, precision and search; the int8/fp32 ratio of
each checkout and each precision's after/before ratio, both as a ratio of medians and as the
median and range of the ratios within a round (runs minutes apart see different loads).
`uptime` is read before and after.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "multi30k"
SEARCHES = {"greedy": 1, "beam 5": 5}
PRECISIONS = ("fp32", "int8")


def worker(repo: Path, model: Path, quantize: str | None, batch: int) -> None:
    """Loads the model from `repo`'s nmt, then answers {"src", "out", "beam"} lines on stdin with
    {"wall": s, "cpu": s}, translation only (after one untimed warm-up call per beam size)."""
    sys.path.insert(0, str(repo.resolve()))  # that checkout's nmt, not the installed one
    import nmt
    from nmt.translator import Translator

    if not Path(nmt.__file__).resolve().is_relative_to(repo.resolve()):
        raise SystemExit(f"nmt came from {nmt.__file__}, not from {repo}")
    translator = Translator.from_checkpoint(model, quantize=quantize, num_threads=1)
    warmed: set[int] = set()

    def run(lines: list[str], beam: int) -> list[str]:
        out = translator.translate(lines, beam_size=beam, batch_tokens=10**9, max_sentences=batch)
        return [t.text for t in out]

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        src = Path(req["src"]).read_text(encoding="utf-8").splitlines()
        beam = int(req["beam"])
        if beam not in warmed:  # first calls allocate memory and pick kernels: not timed
            run(src[:batch], beam)
            warmed.add(beam)
        wall, cpu = time.perf_counter(), time.process_time()
        hyps = run(src, beam)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        Path(req["out"]).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
        print(json.dumps({"wall": wall, "cpu": cpu}), flush=True)


@dataclass
class Worker:
    """One (checkout, precision) worker process and its timings per search."""

    name: str
    proc: subprocess.Popen
    cpu: dict[str, list[float]] = field(default_factory=dict)
    wall: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def start(cls, name: str, repo: Path, args: argparse.Namespace, precision: str) -> Worker:
        argv = [sys.executable, __file__, "--worker", "--repo", str(repo), "--model",
                str(args.model), "--batch", str(args.batch)]
        if precision == "int8":
            argv += ["--quantize", "int8"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                bufsize=1)
        w = cls(name, proc)
        w._recv()
        return w

    def _recv(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.name} exited ({self.proc.wait()})")
        return json.loads(line)

    def translate(self, search: str, src: Path, out: Path) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"src": str(src), "out": str(out),
                                          "beam": SEARCHES[search]}) + "\n")
        got = self._recv()
        self.cpu.setdefault(search, []).append(got["cpu"])
        self.wall.setdefault(search, []).append(got["wall"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(60)


def bleu(hyp: Path, ref: list[str]) -> float:
    import sacrebleu

    lines = hyp.read_text(encoding="utf-8").splitlines()
    return sacrebleu.corpus_bleu(lines, [ref]).score


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="checkout of the starting commit")
    parser.add_argument("--after", type=Path, default=ROOT, help="checkout of the change")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "multi30k-de-en")
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64, help="sentences per batch")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--searches", nargs="+", choices=list(SEARCHES), default=list(SEARCHES),
                        help="which searches to time (default: both)")
    parser.add_argument("--json", type=Path, help="also write the raw timings here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repo", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--quantize", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.repo, args.model, args.quantize, args.batch)
        return

    with gzip.open(DATA / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        src_lines = f.read().splitlines()[: args.sentences]
    with gzip.open(DATA / "test_2016_flickr.en.gz", "rt", encoding="utf-8") as f:
        ref = f.read().splitlines()[: args.sentences]
    checkouts = {"after": args.after} if args.before is None else {"before": args.before,
                                                                    "after": args.after}
    load_before = uptime()
    tmp = Path(tempfile.mkdtemp(prefix="decoder_step."))
    src = tmp / "src.de"
    src.write_text("".join(line + "\n" for line in src_lines), encoding="utf-8")
    workers = [Worker.start(f"{c} {p}", repo, args, p)
               for c, repo in checkouts.items() for p in PRECISIONS]
    try:
        for rep in range(args.reps):
            order = workers[rep % len(workers):] + workers[: rep % len(workers)]
            for search in args.searches:
                for w in order:
                    w.translate(search, src, tmp / f"{w.name}.{search}.txt".replace(" ", "_"))
                    print(f"round {rep + 1} {search:7s} {w.name:12s} cpu {w.cpu[search][-1]:6.2f} s"
                          f"  wall {w.wall[search][-1]:6.2f} s", file=sys.stderr, flush=True)
    finally:
        for w in workers:
            w.close()
    load_after = uptime()
    scores = {(w.name, s): bleu(tmp / f"{w.name}.{s}.txt".replace(" ", "_"), ref)
              for w in workers for s in args.searches}
    print(f"load before: `{load_before}`\nload after: `{load_after}`\n")
    print(report({w.name: w for w in workers}, list(checkouts), args.searches, len(src_lines),
                 scores))
    if args.json:
        args.json.write_text(json.dumps({
            "load_before": load_before, "load_after": load_after, "sentences": len(src_lines),
            "cpu": {w.name: w.cpu for w in workers}, "wall": {w.name: w.wall for w in workers},
            "bleu": {f"{k[0]} {k[1]}": v for k, v in scores.items()}}, indent=1) + "\n")


def report(workers: dict[str, Worker], checkouts: list[str], searches: list[str], n: int,
           scores: dict[tuple[str, str], float]) -> str:
    """The markdown tables: sentences/s (medians), then ratios of medians and, since load drifts
    between rounds, the median and range of the ratios within each round."""
    lines = ["| checkout | precision | search | sent/s (CPU s) | sent/s (wall) | BLEU |",
             "|---|---|---|---:|---:|---:|"]
    for name, w in workers.items():
        for s in searches:
            c, p = name.split()
            lines.append(f"| {c} | {p} | {s} | {n / statistics.median(w.cpu[s]):.1f} "
                         f"| {n / statistics.median(w.wall[s]):.1f} | {scores[(name, s)]:.2f} |")
    lines += ["", "| ratio | search | CPU s, of medians | CPU s, per round: median (min-max) "
              "| wall, of medians | BLEU change |", "|---|---|---:|---:|---:|---:|"]
    pairs = [(f"{c}: int8 / fp32", f"{c} int8", f"{c} fp32") for c in checkouts]
    if "before" in checkouts:
        pairs += [(f"{p}: after / before", f"after {p}", f"before {p}") for p in PRECISIONS]
    for label, a, b in pairs:
        for s in searches:
            fast, slow = workers[a], workers[b]
            cpu = statistics.median(slow.cpu[s]) / statistics.median(fast.cpu[s])
            wall = statistics.median(slow.wall[s]) / statistics.median(fast.wall[s])
            rounds = [y / x for x, y in zip(fast.cpu[s], slow.cpu[s], strict=True)]
            lines.append(f"| {label} | {s} | {cpu:.2f}x | {statistics.median(rounds):.2f}x "
                         f"({min(rounds):.2f}-{max(rounds):.2f}) | {wall:.2f}x "
                         f"| {scores[(a, s)] - scores[(b, s)]:+.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
