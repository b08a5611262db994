"""Training: the one training loop; translation and language models plug into it as tasks.

The loop owns what every task shares: the optimiser and learning-rate schedule, gradient
clipping, mixed precision and DDP (for tasks that ask for them), the position in the data, the
step and time budgets, validation cadence and early stopping, checkpoints (with rotation and
best.pt), `--resume`, logging (Logbook and tqdm) and the interrupt report. A task subclasses
TrainingLoop and supplies the rest: an epoch's batches, one step's forward pass and loss,
validation, its own checkpoint entries, and the export.

One loop runs in each torchrun process; only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import platform
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nmt.checkpoint import training_checkpoint
from nmt.config import LoopConfig
from nmt.training.distributed import DistInfo, barrier, broadcast
from nmt.training.logbook import Logbook
from nmt.training.progress import LogWindow, Position, TrainingError, TrainingInterrupted
from nmt.training.rotation import save_step
from nmt.training.schedule import LRSchedule

log = logging.getLogger(__name__)
__all__ = ["Position", "TrainingError", "TrainingInterrupted", "TrainingLoop"]
ModelT = TypeVar("ModelT", bound=nn.Module)


@dataclass(frozen=True)
class StepStats:
    """What one optimizer step adds to the log window."""

    loss: float  # summed over the step's target tokens
    nll: float  # summed negative log-likelihood (the loss without label smoothing)
    tokens: int
    grad_norm: float = 0.0  # before clipping; the loop fills it in


@dataclass(frozen=True)
class StepLoss:
    """A task's forward pass for one step: the scalar to backpropagate, and what to log."""

    objective: Tensor  # () the loss the gradients come from (per token)
    stats: StepStats


@dataclass(frozen=True)
class EpochBatches:
    """The batches of one epoch from the position on."""

    count: int  # batches in the whole epoch (the progress bar's total)
    batches: Iterator[Any]  # those from Position.batch_in_epoch to the end


def device_name(device: torch.device) -> str:
    """The accelerator's name, or the CPU and its thread count (for bundle metadata)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


class TrainingLoop(ABC, Generic[ModelT]):
    """The loop; a task subclass implements the abstract methods below."""

    KIND: ClassVar[str]  # the checkpoint kind: "checkpoint", "lm-checkpoint"
    UNIT: ClassVar[str] = "batch"  # what a batch is called in progress and log lines
    RESUME_COMMAND: ClassVar[str] = "nmt train"
    POSITION_ALIASES: ClassVar[dict[str, str]] = {}  # older position keys -> Position fields

    def __init__(self, loop_cfg: LoopConfig, run_dir: Path, model: ModelT, *,
                 device: torch.device, dist_info: DistInfo | None = None,
                 precision: str = "fp32"):
        """Args:
            precision: "fp32", or (CUDA only) "bf16", "fp16" or "auto" (bf16 where supported).
        """
        self.loop_cfg = t = loop_cfg
        self.run_dir = run_dir
        self.model = model
        self.device = device
        self.dist = dist_info or DistInfo()
        optim_cls = torch.optim.AdamW if t.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optim_cls(
            model.parameters(), lr=t.lr, betas=t.adam_betas, weight_decay=t.weight_decay
        )
        self.schedule = LRSchedule(self.optimizer, t)
        self.pos = Position()
        self.ddp = (
            DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            if self.dist.enabled
            else None
        )
        if precision == "auto":
            precision = (
                "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
            )
        if precision != "fp32" and device.type != "cuda":
            raise TrainingError(f"train.precision={precision} needs a CUDA device")
        self.precision = precision
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.logbook = Logbook(run_dir) if self.dist.is_main else None
        self.ckpt_dir = run_dir / "checkpoints"

    @property
    def net(self) -> nn.Module:
        """What a step's forward pass calls: called on the bare module, DDP would never
        all-reduce the gradients and the ranks' weights would drift apart."""
        return self.ddp or self.model

    # ----------------------------------------------------------------- the task's pieces
    @abstractmethod
    def plan_epoch(self, epoch: int, start: int) -> EpochBatches:
        """The batches of `epoch` from index `start` on (the same on every resume)."""

    @abstractmethod
    def train_step(self, batch: Any) -> StepLoss | None:
        """Forward pass and loss of one batch; None skips it (no optimizer step)."""

    @property
    @abstractmethod
    def has_validation(self) -> bool:
        """Whether there is validation data (else every checkpoint counts as the best)."""

    @abstractmethod
    def validate(self) -> dict[str, float]:
        """Scores on the validation data."""

    @abstractmethod
    def valid_score(self, result: dict[str, float]) -> tuple[float, bool]:
        """The score that picks checkpoints, and whether higher is better."""

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """The resolved config, as stored in checkpoints."""

    @abstractmethod
    def metadata(self) -> dict[str, Any]:
        """What checkpoints and the bundle record about the run."""

    @abstractmethod
    def export(self) -> Path:
        """Writes the bundle from the run's checkpoints (rank 0) and returns its directory."""

    def extra_state(self) -> dict[str, Any]:
        """The task's own top-level checkpoint entries."""
        return {}

    def restore_extra(self, ckpt: dict[str, Any]) -> None:
        """Reads `extra_state` back; runs before the weights are loaded."""
        return None

    def extra_rng(self) -> dict[str, Tensor]:
        """The task's own generator states, saved under "rng"."""
        return {}

    def restore_extra_rng(self, rng: dict[str, Tensor]) -> None:
        """Reads `extra_rng` back (single-process runs only)."""
        return None

    # ----------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict[str, Any]:
        rng = {"torch": torch.get_rng_state(), **self.extra_rng()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return training_checkpoint(
            kind=self.KIND,
            config=self.config_dict(),
            model=self.model.state_dict(),
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            position=asdict(self.pos),
            rng=rng,
            metadata=self.metadata(),
            extra=self.extra_state(),
        )

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continues from a checkpoint: weights, optimizer, schedule, position and RNG."""
        self.restore_extra(ckpt)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.schedule.load_state_dict(ckpt["schedule"])
        self.pos = Position.from_dict(ckpt["position"], self.POSITION_ALIASES)
        if self.dist.enabled:
            # Per-rank RNG streams are not saved; re-derive them so ranks still differ.
            torch.manual_seed(self.loop_cfg.seed + 1000 * self.dist.rank + self.pos.step)
        else:
            rng = ckpt["rng"]
            torch.set_rng_state(rng["torch"])
            self.restore_extra_rng(rng)
            if self.device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.schedule.step(self.pos.step)
        log.info("resumed at step %d (epoch %d, %s %d)", self.pos.step, self.pos.epoch + 1,
                 self.UNIT, self.pos.batch_in_epoch)

    # ----------------------------------------------------------------- steps
    def optimizer_step(self, batch: Any) -> StepStats | None:
        """One step: the task's loss, backward (scaled under fp16), clipping, update."""
        t = self.loop_cfg
        self.optimizer.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(device_type="cuda", dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            out = self.train_step(batch)
        if out is None:
            return None
        if self.scaler is not None:
            self.scaler.scale(out.objective).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            out.objective.backward()
        max_norm = t.clip_norm if t.clip_norm > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return replace(out.stats, grad_norm=grad_norm)

    def out_of_budget(self) -> bool:
        t = self.loop_cfg
        if t.max_steps and self.pos.step >= t.max_steps:
            return True
        return bool(t.max_minutes) and self.pos.train_seconds >= 60 * t.max_minutes

    # ----------------------------------------------------------------- validation
    def run_validation(self) -> bool:
        """Validates (rank 0), checkpoints, and returns True when training should stop early."""
        t = self.loop_cfg
        stop = False
        self.pos.validated_step = self.pos.step
        if self.dist.is_main:
            is_best = True
            if self.has_validation:
                result = self.validate()
                score, higher_is_better = self.valid_score(result)
                is_best = self.schedule.observe(score, higher_is_better=higher_is_better)
                if is_best:
                    self.pos.best_score, self.pos.best_step = score, self.pos.step
                    self.pos.since_best = 0
                else:
                    self.pos.since_best += 1
                stop = t.patience > 0 and self.pos.since_best >= t.patience
                if self.logbook is not None:  # rank 0 always has one
                    self.logbook.log("valid", self.pos.step, {"epoch": self.pos.epoch, **result})
                log.info("validation at step %d: %s%s", self.pos.step,
                         " ".join(f"{k}={v:.4g}" for k, v in result.items()),
                         " (best)" if is_best else "")
            else:
                self.pos.best_step = self.pos.step
            save_step(self.checkpoint_state(), self.ckpt_dir, self.pos.step,
                      keep_last=t.keep_last, is_best=is_best)
        shared = broadcast(
            {"stop": stop, "schedule": self.schedule.state_dict(), "pos": asdict(self.pos)},
            self.dist,
        )
        if not self.dist.is_main:
            self.schedule.load_state_dict(shared["schedule"])
            self.pos = Position(**shared["pos"])
        self.schedule.step(self.pos.step)
        return shared["stop"]

    # ----------------------------------------------------------------- the loop
    def train(self) -> Path | None:
        """Runs to the end (epochs, max_steps, max_minutes or early stop).

        Returns:
            The bundle directory (rank 0), else None.

        Raises:
            TrainingInterrupted: Ctrl-C (or SIGTERM): where it stopped, where to resume.
        """
        try:
            return self._train_loop()
        except KeyboardInterrupt as interrupt:
            if isinstance(interrupt, TrainingInterrupted):
                raise
            raise TrainingInterrupted(self.run_dir, self.pos,
                                      command=self.RESUME_COMMAND) from interrupt
        finally:
            if self.logbook is not None:
                self.logbook.close()

    def _train_loop(self) -> Path | None:
        t = self.loop_cfg
        self.model.train()
        stop = self.out_of_budget()
        window = LogWindow()
        while not stop and self.pos.epoch < t.epochs:
            plan = self.plan_epoch(self.pos.epoch, self.pos.batch_in_epoch)
            bar = tqdm(total=plan.count, initial=self.pos.batch_in_epoch,
                       disable=not self.dist.is_main, desc=f"epoch {self.pos.epoch + 1}/{t.epochs}",
                       unit=self.UNIT, dynamic_ncols=True, mininterval=1.0)
            epoch_start = time.perf_counter()
            while self.pos.batch_in_epoch < plan.count:
                step_start = time.perf_counter()
                stats = self.optimizer_step(next(plan.batches))
                self.pos.batch_in_epoch += 1
                bar.update(1)
                if stats is None:
                    continue
                self.pos.step += 1
                self.pos.train_seconds += time.perf_counter() - step_start
                window.add(stats.loss, stats.nll, stats.tokens)
                lr = self.schedule.step(self.pos.step)
                if self.pos.step % t.log_every == 0 or self.pos.step == 1:
                    self.log_window(window, lr, stats.grad_norm, bar)
                if t.valid_every and self.pos.step % t.valid_every == 0:
                    stop = self.run_validation()
                if stop or self.out_of_budget():
                    stop = True
                    break
            bar.close()
            if self.pos.batch_in_epoch >= plan.count:
                log.info("epoch %d done in %.1f s", self.pos.epoch + 1,
                         time.perf_counter() - epoch_start)
                self.pos.epoch += 1
                self.pos.batch_in_epoch = 0
                if not t.valid_every and not stop:
                    stop = self.run_validation()
        if self.pos.validated_step != self.pos.step:
            self.run_validation()
        barrier(self.dist)
        return self.export() if self.dist.is_main else None

    def log_window(self, window: LogWindow, lr: float, grad_norm: float, bar: tqdm) -> None:
        elapsed = max(1e-9, time.perf_counter() - window.start)
        loss = window.loss / max(1, window.tokens)
        ppl = math.exp(min(50.0, window.nll / max(1, window.tokens)))
        tok_s = window.tokens * self.dist.world_size / elapsed
        bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{ppl:.2f}", tok_s=f"{tok_s:.0f}", lr=f"{lr:.2e}")
        if self.logbook is not None:
            self.logbook.log("train", self.pos.step, {
                "epoch": self.pos.epoch, "loss": loss, "ppl": ppl, "lr": lr,
                "tokens_per_s": tok_s, "grad_norm": grad_norm,
            })
        window.reset()
