"""Benchmarks: measuring: persistent translate workers, alternating repetitions, median and spread.

Every figure compared across systems comes from one run in which the systems take turns (the
order rotates each repetition), so drifting load on a shared machine hits all of them alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Stats:
    """Repeated measurements of one figure."""

    values: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def spread(self) -> float:
        """(max - min) / median, as a fraction."""
        return (max(self.values) - min(self.values)) / self.median if self.median else 0.0

    def to_dict(self) -> dict:
        return {"median": self.median, "min": min(self.values), "max": max(self.values),
                "spread": self.spread, "n": len(self.values)}


class Worker:
    """One system's translate worker process (see entry/worker_protocol.py)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path):
        self.name = name
        self._log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        start = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, bufsize=1)
        ready = self._recv()
        self.start_seconds = time.perf_counter() - start
        self.load_seconds = float(ready["ready"])

    def _recv(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError(f"{self.name} worker exited ({self.proc.returncode}); "
                               f"see {self._log.name}")
        return json.loads(line)

    def translate(self, src: Path, out: Path, beam: int) -> float:
        """Translates the file `src` into `out`; returns the translation seconds."""
        return float(self._request({"src": str(src), "out": str(out), "beam": beam})["seconds"])

    def count(self, src: Path, out: Path, beam: int) -> dict:
        """Translates `src` with the decoder steps counted (untimed: the counting costs a little);
        returns {"steps": per output, "decoder_calls": n, ...}."""
        return self._request({"src": str(src), "out": str(out), "beam": beam, "count": True})

    def _request(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        return self._recv()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@dataclass
class Alternation:
    """Seconds per worker name over `reps` rounds, the order rotating each round."""

    seconds: dict[str, list[float]] = field(default_factory=dict)


def alternate(workers: list[Worker], src: Path, out_dir: Path, *, beam: int, reps: int,
              warmup_src: Path | None = None, log=print) -> Alternation:
    """Each round every worker translates `src` once; the last output of each is kept."""
    result = Alternation({w.name: [] for w in workers})
    if warmup_src is not None:  # first calls allocate memory and pick kernels: not timed
        for w in workers:
            w.translate(warmup_src, out_dir / f"{w.name}.warmup.txt", beam)
    for rep in range(reps):
        order = workers[rep % len(workers):] + workers[: rep % len(workers)]
        for w in order:
            seconds = w.translate(src, out_dir / f"{w.name}.txt", beam)
            result.seconds[w.name].append(seconds)
            log(f"  {w.name}: {seconds:.2f} s")
    return result
