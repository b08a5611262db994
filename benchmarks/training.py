"""Benchmarks: training: the same short budget for all three systems, and training throughput.

Full convergence of three systems on two CPU cores does not fit in a benchmark run, so every
system trains from scratch for the same wall-clock budget, all at once, one thread each (so they
share the machine alike), checkpointing every CKPT_EVERY updates; the newest checkpoint of each is
what the decoding benchmarks use, and RESULTS.md puts their validation scores side by side.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from benchmarks.systems import train_command
from benchmarks.workspace import Workspace


def train_for_budget(ws: Workspace, systems: list[str], *, minutes: float, threads: int = 1,
                     resume: bool = False, log=print) -> dict[str, dict]:
    """Trains each system for `minutes`, concurrently; returns what each reached.

    With `resume`, each goes on from its newest checkpoint (weights and optimizer state); a
    peer's is first copied out of its model directory (JoeyNMT empties it when it starts).
    """
    procs: dict[str, tuple[subprocess.Popen, object]] = {}
    for system in systems:
        resume_from = None
        if resume and system == "nmt":
            resume_from = str(ws.models(system))
        elif resume:
            latest = latest_checkpoint(ws, system)["path"]
            resume_from = str(ws.models(system).parent / f"{system}.resume{Path(latest).suffix}")
            shutil.copy(latest, resume_from)
        else:
            fresh_dir(ws.models(system))
        cmd = train_command(system, ws, threads=threads, resume_from=resume_from)
        out = ws.models(system)
        handle = open(out.parent / f"{system}.train.out", "w", encoding="utf-8")  # noqa: SIM115
        log(f"training {system} for {minutes:g} min ({threads} thread)")
        procs[system] = (subprocess.Popen(cmd.argv, env=cmd.env, stdout=handle,
                                          stderr=subprocess.STDOUT, start_new_session=True),
                         handle)
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline and any(p.poll() is None for p, _ in procs.values()):
        time.sleep(2)
    for proc, handle in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        handle.close()
    return {s: latest_checkpoint(ws, s) for s in systems}


# Counts the weights a checkpoint stores (each shared tensor once: nmt ties its output layer to
# the target embedding), in the system's own Python, since the peers' checkpoints unpickle their
# option objects. They are files this benchmark wrote, hence weights_only=False for the peers.
_COUNT_CODE = """
import sys, torch
path, system = sys.argv[1], sys.argv[2]
ck = torch.load(path, map_location="cpu", weights_only=system == "nmt")
seen = {}
for key in ("model", "generator", "model_state"):
    for value in (ck.get(key) or {}).values():
        if isinstance(value, torch.Tensor):
            seen[(value.untyped_storage().data_ptr(), value.storage_offset())] = value.numel()
print(sum(seen.values()))
"""


def parameter_count(system: str, path: str | Path) -> int:
    """Parameters of a trained model, counted from its checkpoint (a bundle for nmt)."""
    import sys

    from benchmarks.peers import venv_python

    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    python = sys.executable if system == "nmt" else str(venv_python(system))
    out = subprocess.run([python, "-c", _COUNT_CODE, str(path), system], capture_output=True,
                         text=True, check=True, timeout=300)
    return int(out.stdout.strip())


def with_parameters(found: dict[str, dict]) -> dict[str, dict]:
    """`found` (system -> {path, step}) with each checkpoint's parameter count added."""
    return {system: {**ck, "parameters": parameter_count(system, ck["path"])} if ck else ck
            for system, ck in found.items()}


def fresh_dir(path: Path) -> Path:
    """An empty directory at `path` (each training run starts from scratch)."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def latest_checkpoint(ws: Workspace, system: str) -> dict:
    """{'path': newest checkpoint, 'step': its update count}, or {} when there is none."""
    out = ws.models(system)
    patterns = {"nmt": (r"step_(\d+)\.pt$", out / "checkpoints"),
                "opennmt-py": (r"model_step_(\d+)\.pt$", out),
                "joeynmt": (r"^(\d+)\.ckpt$", out)}
    pattern, folder = patterns[system]
    found = []
    for path in Path(folder).glob("*") if Path(folder).exists() else []:
        m = re.search(pattern, path.name)
        if m:
            found.append((int(m.group(1)), path))
    if not found:
        return {}
    step, path = max(found)
    return {"path": str(path), "step": step}


# ---------------------------------------------------------------- throughput
LOG_PATTERNS = {
    # OpenNMT-py: "...; 1234/1187 tok/s; ..." (source/target non-pad tokens per second)
    "opennmt-py": re.compile(r"Step (\d+)/.*?(\d+)/\s*(\d+) tok/s"),
    # JoeyNMT: "Step: 10, ... Tokens per Sec: 1234," (target non-pad tokens per second)
    "joeynmt": re.compile(r"Step:\s+(\d+),.*Tokens per Sec:\s+(\d+)"),
}


def _rates(system: str, out: Path) -> list[tuple[int, float]]:
    """(step, target tokens/s) per logging interval, from the system's own log."""
    if system == "nmt":
        import json

        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["tokens_per_s"]) for r in rows if r["kind"] == "train"]
    # OpenNMT-py reports steps on stdout (captured beside `out`); JoeyNMT in its train.log.
    log_file = out.parent / f"{system}.out" if system == "opennmt-py" else out / "train.log"
    rates = []
    for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        m = LOG_PATTERNS[system].search(line)
        if m:
            rates.append((int(m.group(1)), float(m.group(m.lastindex))))
    return rates


def train_throughput(ws: Workspace, systems: list[str], *, steps: int, log_every: int,
                     threads: int, reps: int, log=print) -> dict[str, dict]:
    """Target tokens/s of training, each system in turn, `reps` rounds (order rotating).

    Each run trains from scratch for `steps` updates; the first logging interval (start-up,
    first allocations) is dropped and the rest is averaged. Peak RSS comes from wait4().
    """
    results: dict[str, dict] = {s: {"tokens_per_s": [], "peak_rss_mib": []} for s in systems}
    for rep in range(reps):
        order = systems[rep % len(systems):] + systems[: rep % len(systems)]
        for system in order:
            out = fresh_dir(ws.root / "throughput" / system)
            cmd = train_command(system, ws, threads=threads, max_steps=steps, out=out,
                                log_every=log_every)
            with open(out.parent / f"{system}.out", "w", encoding="utf-8") as handle:
                proc = subprocess.Popen(cmd.argv, env=cmd.env, stdout=handle,
                                        stderr=subprocess.STDOUT)
                _, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise RuntimeError(f"{system} training failed; see {out.parent}/{system}.out")
            rates = [r for s, r in _rates(system, out) if s > log_every]
            if not rates:
                raise RuntimeError(f"{system}: no throughput in its log ({out})")
            rate = sum(rates) / len(rates)
            results[system]["tokens_per_s"].append(rate)
            results[system]["peak_rss_mib"].append(usage.ru_maxrss / 1024)
            log(f"  {system}: {rate:.0f} target tokens/s")
    return results
