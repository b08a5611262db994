"""Training: the run's checkpoint files: naming, keeping best and last K, finding the latest,
averaging."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch

from nmt.checkpoint import CheckpointError, atomic_save, safe_load

log = logging.getLogger(__name__)
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
BEST = "best.pt"


def step_path(ckpt_dir: Path, step: int) -> Path:
    return ckpt_dir / f"step_{step:08d}.pt"


def list_step_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) pairs, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for path in ckpt_dir.iterdir():
        match = _STEP_FILE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_step(obj: dict, ckpt_dir: Path, step: int, *, keep_last: int, is_best: bool) -> Path:
    path = step_path(ckpt_dir, step)
    # best.pt first: a crash between the two writes then leaves best.pt newer than the latest
    # step file, and the resumed run rewrites both identically. The other order could leave a
    # step file that says "I am the best" beside an older best.pt, which the bundle would use.
    if is_best:
        atomic_save(obj, ckpt_dir / BEST)
    atomic_save(obj, path)
    for _, old in list_step_checkpoints(ckpt_dir)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def remove_stale_temp_files(ckpt_dir: Path) -> None:
    """Deletes the temporary files of checkpoint writes a crash interrupted (never loaded)."""
    if not ckpt_dir.is_dir():
        return
    for path in ckpt_dir.glob(".*.tmp"):
        log.info("removing %s, left by an interrupted checkpoint write", path.name)
        path.unlink(missing_ok=True)


def load_latest(ckpt_dir: Path) -> dict | None:
    """The newest loadable step checkpoint; an unreadable newest one is reported and skipped."""
    for step, path in reversed(list_step_checkpoints(ckpt_dir)):
        try:
            return safe_load(path)
        except CheckpointError as err:
            log.warning("skipping unreadable checkpoint for step %d: %s", step, err)
    return None


def average_state_dicts(paths: list[Path]) -> dict[str, torch.Tensor]:
    """Element-wise mean of the model weights in `paths` (checkpoint averaging)."""
    total: dict[str, torch.Tensor] = {}
    for path in paths:
        weights = safe_load(path)["model"]
        for key, value in weights.items():
            if value.is_floating_point():
                total[key] = total.get(key, 0) + value.double()
            else:
                total[key] = value
    return {k: (v / len(paths)).float() if v.is_floating_point() else v for k, v in total.items()}
