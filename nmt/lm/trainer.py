"""Language models: the TBPTT trainer: windows over B parallel streams, carried and detached state.

It reuses the product's training pieces: tqdm progress, the Logbook (TensorBoard, metrics.jsonl,
metrics.csv), LRSchedule (warm-up, plateau decay), atomic step checkpoints with rotation and
best.pt, `--resume`, and early stopping, here on validation perplexity.
"""

from __future__ import annotations

import logging
import math
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from nmt import __version__
from nmt.checkpoint import FORMAT_VERSION, safe_load
from nmt.lm.bundle import export_lm_bundle
from nmt.lm.config import LMConfig
from nmt.lm.data import LMData
from nmt.lm.evaluation import evaluate_lines
from nmt.lm.model import LMState, RecurrentLM
from nmt.lm.stream import Window, layout, window_lengths, windows
from nmt.training.logbook import Logbook
from nmt.training.rotation import BEST, list_step_checkpoints, save_step
from nmt.training.schedule import LRSchedule

log = logging.getLogger(__name__)


class LMTrainingError(RuntimeError):
    """LM training cannot go on (non-finite loss, stream too short, ...)."""


@dataclass
class LMPosition:
    """Where the run is; saved in every checkpoint so `--resume` continues exactly."""

    step: int = 0
    epoch: int = 0
    window: int = 0  # index of the next window of `epoch`
    since_best: int = 0
    best_ppl: float | None = None
    best_step: int = 0
    train_seconds: float = 0.0
    validated_step: int = -1


class LMTrainer:
    def __init__(self, cfg: LMConfig, run_dir: Path, data: LMData, model: RecurrentLM, *,
                 device: torch.device):
        self.cfg = cfg
        self.run_dir = run_dir
        self.data = data
        self.model = model
        self.device = device
        t = cfg.train
        optim_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optim_cls(model.parameters(), lr=t.lr, betas=t.adam_betas,
                                   weight_decay=t.weight_decay)
        # LRSchedule reads only the rate fields, which LMTrainConfig shares with TrainConfig.
        self.schedule = LRSchedule(self.optimizer, t)  # type: ignore[arg-type]
        self.pos = LMPosition()
        try:
            self.stream = layout(data.train_ids, t.batch_size,
                                 separator=data.vocab.separator_id).to(device)  # (B, N)
        except ValueError as err:
            raise LMTrainingError(f"training text: {err}; lower train.batch_size") from err
        self.state: LMState | None = None  # carried across windows (and checkpoints)
        self.logbook = Logbook(run_dir)
        self.ckpt_dir = run_dir / "checkpoints"

    # ----------------------------------------------------------------- state
    def checkpoint_state(self) -> dict[str, Any]:
        carried = None
        if self.state is not None:
            carried = {"hidden": self.state.hidden.cpu(),
                       "cell": None if self.state.cell is None else self.state.cell.cpu()}
        return {
            "format_version": FORMAT_VERSION,
            "kind": "lm-checkpoint",
            "config": self.cfg.to_dict(),
            "model": self.model.state_dict(),
            "vocab": self.data.vocab.to_data(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "position": asdict(self.pos),
            "carried_state": carried,
            "rng": {"torch": torch.get_rng_state()},
            "metadata": self.metadata(),
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        if ckpt["vocab"] != self.data.vocab.to_data():
            raise LMTrainingError("cannot resume: the training text gives a different vocabulary")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.pos = LMPosition(**ckpt["position"])
        carried = ckpt.get("carried_state")
        if carried is not None:
            cell = carried["cell"]
            self.state = LMState(carried["hidden"].to(self.device),
                                 None if cell is None else cell.to(self.device))
        torch.set_rng_state(ckpt["rng"]["torch"])
        self.schedule.step(self.pos.step)
        log.info("resumed at step %d (epoch %d, window %d)", self.pos.step, self.pos.epoch + 1,
                 self.pos.window)

    def metadata(self) -> dict[str, Any]:
        return {
            "nmt_version": __version__,
            "torch_version": str(torch.__version__),
            "vocab": self.data.vocab.kind,
            "vocab_size": self.data.vocab.size,
            "train_tokens": len(self.data.train_ids),
            "train_chars": self.data.train_chars,
            "data_fingerprint": self.data.fingerprint,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "steps": self.pos.step,
            "epochs": self.pos.epoch,
            "train_seconds": round(self.pos.train_seconds, 1),
            "device": (torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else
                       f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"),
            "best_valid": {"step": self.pos.best_step, "ppl": self.pos.best_ppl},
        }

    # ----------------------------------------------------------------- steps
    def train_step(self, win: Window) -> tuple[float, float]:
        """One optimizer step on one window; returns (mean loss in nats, grad norm)."""
        t = self.cfg.train
        self.optimizer.zero_grad(set_to_none=True)
        logits, state = self.model(win.inputs, self.state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), win.targets.reshape(-1))
        if not torch.isfinite(loss):
            raise LMTrainingError(f"non-finite loss at step {self.pos.step + 1}; lower train.lr "
                                  "or train.clip_norm")
        loss.backward()
        max_norm = t.clip_norm if t.clip_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        self.optimizer.step()
        # The state flows on into the next window, but gradients stop here (truncated BPTT).
        self.state = state.detach()
        return float(loss.detach()), grad_norm

    def epoch_lengths(self, epoch: int) -> list[int]:
        t = self.cfg.train
        return window_lengths(self.stream.size(1), t.bptt, random_bptt=t.random_bptt,
                              seed=t.seed * 1000 + epoch)

    # ----------------------------------------------------------------- validation
    def validate(self) -> dict[str, float]:
        assert self.data.valid_lines is not None
        scores = evaluate_lines(self.model, self.data.vocab, self.data.valid_lines,
                                batch_size=self.cfg.train.valid_batch_size,
                                bptt=max(self.cfg.train.bptt, 100))
        return {"valid_loss": scores.nats_per_token, "valid_ppl": scores.ppl,
                "valid_bpc": scores.bpc}

    def run_validation(self) -> bool:
        """Validates, checkpoints, and returns True when training should stop early."""
        t = self.cfg.train
        self.pos.validated_step = self.pos.step
        is_best, stop = True, False
        if self.data.valid_lines is not None:
            result = self.validate()
            is_best = self.schedule.observe(result["valid_ppl"], higher_is_better=False)
            if is_best:
                self.pos.best_ppl, self.pos.best_step, self.pos.since_best = (
                    result["valid_ppl"], self.pos.step, 0)
            else:
                self.pos.since_best += 1
            stop = t.patience > 0 and self.pos.since_best >= t.patience
            self.logbook.log("valid", self.pos.step, {"epoch": self.pos.epoch, **result})
            log.info("validation at step %d: %s%s", self.pos.step,
                     " ".join(f"{k}={v:.4g}" for k, v in result.items()),
                     " (best)" if is_best else "")
        else:
            self.pos.best_step = self.pos.step
        save_step(self.checkpoint_state(), self.ckpt_dir, self.pos.step, keep_last=t.keep_last,
                  is_best=is_best)
        self.schedule.step(self.pos.step)
        return stop

    # ----------------------------------------------------------------- loop
    def out_of_budget(self) -> bool:
        t = self.cfg.train
        if t.max_steps and self.pos.step >= t.max_steps:
            return True
        return bool(t.max_minutes) and self.pos.train_seconds >= 60 * t.max_minutes

    def train(self) -> Path:
        """Runs to the end (epochs, max_steps, max_minutes or early stop); returns the bundle."""
        t = self.cfg.train
        self.model.train()
        stop = self.out_of_budget()
        window = {"loss": 0.0, "steps": 0, "tokens": 0, "start": time.perf_counter()}
        while not stop and self.pos.epoch < t.epochs:
            lengths = self.epoch_lengths(self.pos.epoch)
            if self.pos.window == 0:
                self.state = None  # each epoch reads the stream from its start again
            bar = tqdm(total=len(lengths), initial=self.pos.window, unit="win", mininterval=1.0,
                       desc=f"epoch {self.pos.epoch + 1}/{t.epochs}", dynamic_ncols=True)
            for win in windows(self.stream, lengths, start_window=self.pos.window):
                start = time.perf_counter()
                loss, grad_norm = self.train_step(win)
                self.pos.window += 1
                self.pos.step += 1
                self.pos.train_seconds += time.perf_counter() - start
                window["loss"] += loss * win.targets.numel()
                window["tokens"] += win.targets.numel()
                bar.update(1)
                lr = self.schedule.step(self.pos.step)
                if self.pos.step % t.log_every == 0 or self.pos.step == 1:
                    self.log_window(window, lr, grad_norm, bar)
                if t.valid_every and self.pos.step % t.valid_every == 0:
                    stop = self.run_validation()
                if stop or self.out_of_budget():
                    stop = True
                    break
            bar.close()
            if self.pos.window >= len(lengths):
                self.pos.epoch += 1
                self.pos.window = 0
                if not t.valid_every and not stop:
                    stop = self.run_validation()
        if self.pos.validated_step != self.pos.step:
            self.run_validation()
        return self.finish()

    def log_window(self, window: dict[str, Any], lr: float, grad_norm: float, bar: tqdm) -> None:
        elapsed = max(1e-9, time.perf_counter() - window["start"])
        loss = window["loss"] / max(1, window["tokens"])
        values = {"epoch": self.pos.epoch, "loss": loss, "ppl": math.exp(min(50.0, loss)),
                  "lr": lr, "tokens_per_s": window["tokens"] / elapsed, "grad_norm": grad_norm}
        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{values['ppl']:.2f}",
                        tok_s=f"{values['tokens_per_s']:.0f}", lr=f"{lr:.1e}")
        self.logbook.log("train", self.pos.step, values)
        window.update(loss=0.0, tokens=0, start=time.perf_counter())

    def finish(self) -> Path:
        """Exports the bundle from best.pt (or the newest checkpoint)."""
        best = self.ckpt_dir / BEST
        source = best if best.exists() else list_step_checkpoints(self.ckpt_dir)[-1][1]
        self.model.load_state_dict(safe_load(source)["model"])
        metadata = self.metadata()
        metadata["weights_from"] = source.name
        if self.data.valid_lines is not None:
            metadata["valid_scores"] = self.validate()
            log.info("bundle (%s) validation: %s", source.name, metadata["valid_scores"])
        bundle, tmp = self.run_dir / "bundle", self.run_dir / "bundle.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        export_lm_bundle(tmp, config=self.cfg, state_dict=self.model.state_dict(),
                         vocab=self.data.vocab, metadata=metadata)
        shutil.rmtree(bundle, ignore_errors=True)
        tmp.rename(bundle)
        self.logbook.close()
        log.info("bundle written to %s", bundle)
        return bundle
