"""Training: where metrics go: TensorBoard event files, metrics.jsonl and metrics.csv."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

from nmt.runtime import import_optional


def summary_writer_class() -> Any:
    """torch's TensorBoard SummaryWriter; TensorBoard is in the `train` extra, not in serving's.

    Raises:
        MissingDependency: TensorBoard is not installed.
    """
    tensorboard = import_optional("torch.utils.tensorboard", extra="train",
                                  needed_for="training's TensorBoard log")
    return tensorboard.SummaryWriter


class Logbook:
    """Appends one record per event; survives resume by appending to the same files."""

    CSV_FIELDS = [
        "time",
        "kind",
        "step",
        "epoch",
        "loss",
        "ppl",
        "lr",
        "tokens_per_s",
        "grad_norm",
        "bleu",
        "chrf",
        "valid_loss",
        "valid_ppl",
    ]

    def __init__(self, run_dir: Path):
        self.jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        csv_path = run_dir / "metrics.csv"
        new = not csv_path.exists()
        self.csv_file = open(csv_path, "a", encoding="utf-8", newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=self.CSV_FIELDS, extrasaction="ignore")
        if new:
            self.csv.writeheader()
        self.tb = summary_writer_class()(log_dir=str(run_dir / "tensorboard"))

    def log(self, kind: str, step: int, values: dict[str, Any]) -> None:
        record = {"time": round(time.time(), 3), "kind": kind, "step": step, **values}
        self.jsonl.write(json.dumps(record) + "\n")
        self.jsonl.flush()
        self.csv.writerow(record)
        self.csv_file.flush()
        for key, value in values.items():
            if isinstance(value, (int, float)) and key != "epoch":
                self.tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        """Idempotent: the trainer closes the logbook on every way out."""
        self.jsonl.close()
        self.csv_file.close()
        self.tb.close()
