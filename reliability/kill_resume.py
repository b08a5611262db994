"""Reliability: training under `kill -9`. Trials kill `python -m nmt train` at random moments
(after a random delay, or the instant a checkpoint's temporary file appears, i.e. mid-write),
one or more times, then finish it with `nmt train --resume`, and compare the final bundle's
weights with an uninterrupted run (CPU, same seed).

    python reliability/kill_resume.py --trials 20        # records counts and outcomes as JSON

After every kill, each checkpoint file under its real name must load (no half-written file), and
after the last resume the bundle's weights must equal the reference to 1e-6.
tests/reliability/test_training_faults.py runs one trial of the same code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from nmt.checkpoint import CheckpointError, safe_load  # noqa: E402 - after the path set-up

FINISHED = "finished before the kill"
LEXICON = {"der": "the", "hund": "dog", "katze": "cat", "rennt": "runs", "schläft": "sleeps",
           "rot": "red", "blau": "blue", "groß": "big", "klein": "small", "vogel": "bird"}


def write_experiment(root: Path, *, seed: int = 0) -> Path:
    """Toy parallel data (target = words translated, reversed) and a seconds-long config."""
    rng = random.Random(seed)
    words = sorted(LEXICON)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 240), ("valid", 24)):
        pairs = []
        for _ in range(n):
            src = [rng.choice(words) for _ in range(rng.randint(2, 6))]
            pairs.append((" ".join(src), " ".join(LEXICON[w] for w in reversed(src))))
        (root / f"{split}.de").write_text("".join(s + "\n" for s, _ in pairs), encoding="utf-8")
        (root / f"{split}.en").write_text("".join(t + "\n" for _, t in pairs), encoding="utf-8")
    config = {
        "name": "tiny",
        "data": {"train_src": str(root / "train.de"), "train_tgt": str(root / "train.en"),
                 "valid_src": str(root / "valid.de"), "valid_tgt": str(root / "valid.en"),
                 "src_lang": "de", "tgt_lang": "en", "max_len": 40},
        "tokenizer": {"type": "unigram", "vocab_size": 40},
        "model": {"cell": "gru", "emb_dim": 16, "enc_hidden": 16, "dec_hidden": 16,
                  "attn_dim": 16, "dropout": 0.1, "emb_dropout": 0.1},
        "train": {"seed": 7, "max_tokens": 300, "max_sentences": 32, "epochs": 3, "lr": 0.01,
                  "valid_every": 4, "valid_metric": "loss", "log_every": 5, "keep_last": 2,
                  "label_smoothing": 0.1, "num_threads": 1, "patience": 0},
        "decode": {"beam_size": 2, "max_len_b": 5},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nmt", "train", *args]


def start(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log, "a") as handle:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT)


def bundle_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return safe_load(run_dir / "bundle" / "model.pt")["model"]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys(), "the bundles hold different tensors"
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def checkpoint_problems(run_dir: Path) -> list[str]:
    """Every checkpoint under its real name must load; temporary files are never loaded."""
    found = []
    for path in sorted((run_dir / "checkpoints").glob("*.pt")):
        try:
            safe_load(path)
        except CheckpointError as err:
            found.append(f"{path.name}: {err}")
    return found


def temp_files(run_dir: Path) -> list[Path]:
    ckpt_dir = run_dir / "checkpoints"
    return sorted(ckpt_dir.glob(".*.tmp")) if ckpt_dir.is_dir() else []


def kill_when(proc: subprocess.Popen, run_dir: Path, *, mode: str, delay_s: float,
              after_checkpoints: int) -> str:
    """SIGKILLs `proc`; returns where the kill landed.

    mode "delay": after `delay_s` seconds. mode "tmp": the moment a temporary checkpoint file
    appears once `after_checkpoints` step files exist (falls back to a random moment if the
    write is over before the poll sees it).
    """
    start_t = time.monotonic()
    ckpt_dir = run_dir / "checkpoints"
    while proc.poll() is None:
        elapsed = time.monotonic() - start_t
        if mode == "delay" and elapsed >= delay_s:
            break
        if mode == "tmp" and ckpt_dir.is_dir():
            names = os.listdir(ckpt_dir)
            steps = sum(n.startswith("step_") and n.endswith(".pt") for n in names)
            if steps >= after_checkpoints and any(n.endswith(".tmp") for n in names):
                break
            if steps >= after_checkpoints + 2:  # the poll missed a write: kill now anyway
                break
        if elapsed > 300:
            break
        time.sleep(0.0005 if mode == "tmp" else 0.01)
    if proc.poll() is not None:
        return FINISHED
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if temp_files(run_dir):
        return "during a checkpoint write"
    if not (ckpt_dir.is_dir() and any(ckpt_dir.glob("step_*.pt"))):
        return "before the first checkpoint"
    return "between checkpoints"


@dataclass
class TrialResult:
    kills: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    max_diff: float = float("nan")
    resumes: int = 0
    seconds: float = 0.0


def trial(config: Path, run_dir: Path, reference: dict[str, torch.Tensor], rng: random.Random,
          *, kills: int, log: Path, run_seconds: float = 10.0) -> TrialResult:
    """Trains with `kills` SIGKILLs and resumes; checks the files after each kill."""
    result = TrialResult()
    t0 = time.monotonic()
    args = train_command("--config", str(config), "--run-dir", str(run_dir))
    for _ in range(kills):
        proc = start(args, log)
        mode = rng.choice(["delay", "tmp"])
        where = kill_when(proc, run_dir, mode=mode, delay_s=rng.uniform(0.0, 0.7 * run_seconds),
                          after_checkpoints=rng.randint(0, 4))
        result.kills.append(where)
        result.problems += checkpoint_problems(run_dir)
        if where == FINISHED:
            break
        if (run_dir / "config.yaml").exists():
            args = train_command("--resume", str(run_dir))
            result.resumes += 1
    if not (run_dir / "bundle" / "model.pt").exists():
        proc = start(args, log)
        if proc.wait(600) != 0:
            result.problems.append(f"the last run exited with {proc.returncode}; see {log}")
            return result
    result.problems += checkpoint_problems(run_dir)
    if temp_files(run_dir):
        result.problems.append(f"temporary files left: {[p.name for p in temp_files(run_dir)]}")
    result.max_diff = max_difference(bundle_weights(run_dir), reference)
    result.seconds = time.monotonic() - t0
    return result


def reference_run(config: Path, run_dir: Path, log: Path) -> dict[str, torch.Tensor]:
    proc = start(train_command("--config", str(config), "--run-dir", str(run_dir)), log)
    if proc.wait(600) != 0:
        raise RuntimeError(f"the reference run failed; see {log}")
    return bundle_weights(run_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--max-kills", type=int, default=3, help="kills per trial: 1 to this")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = write_experiment(root / "data")
        log = root / "train.log"
        t0 = time.monotonic()
        reference = reference_run(config, root / "reference", log)
        run_seconds = time.monotonic() - t0
        results = []
        for i in range(args.trials):
            r = trial(config, root / f"trial-{i}", reference, rng,
                      kills=rng.randint(1, args.max_kills), log=log, run_seconds=run_seconds)
            results.append(r)
            print(f"trial {i}: kills {r.kills}, resumes {r.resumes}, max diff {r.max_diff:.2e}, "
                  f"problems {r.problems or 'none'}, {r.seconds:.0f} s", flush=True)
    summary = {
        "trials": len(results),
        "kills": sum(k != FINISHED for r in results for k in r.kills),
        "kills_by_moment": dict(Counter(k for r in results for k in r.kills if k != FINISHED)),
        "runs_that_finished_before_their_kill": sum(k == FINISHED for r in results
                                                    for k in r.kills),
        "resumes": sum(r.resumes for r in results),
        "trials_matching_reference": sum(r.max_diff <= 1e-6 and not r.problems for r in results),
        "largest_difference": max(r.max_diff for r in results),
        "problems": [p for r in results for p in r.problems][:20],
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    ok = summary["trials_matching_reference"] == len(results)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
