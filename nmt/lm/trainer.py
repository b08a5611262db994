"""Language models: the TBPTT task: windows over B parallel streams, carried and detached state.

It plugs into the one training loop (nmt.training.loop), shared with translation: tqdm progress,
the Logbook, LRSchedule, atomic step checkpoints with rotation and best.pt, `--resume`, the step
and time budgets, and early stopping, here on validation perplexity. The state carried from
window to window is saved in checkpoints, so a resumed run continues mid-epoch exactly.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nmt import __version__
from nmt.checkpoint import safe_load
from nmt.lm.bundle import export_lm_bundle
from nmt.lm.config import LMConfig
from nmt.lm.data import LMData
from nmt.lm.evaluation import evaluate_lines
from nmt.lm.model import LMState, RecurrentLM
from nmt.lm.stream import Window, layout, window_lengths, windows
from nmt.training.loop import EpochBatches, StepLoss, StepStats, TrainingLoop, device_name
from nmt.training.rotation import BEST, list_step_checkpoints

log = logging.getLogger(__name__)


class LMTrainingError(RuntimeError):
    """LM training cannot go on (non-finite loss, stream too short, ...)."""


class LMTrainer(TrainingLoop[RecurrentLM]):
    """Truncated BPTT on the shared loop; `train()` is TrainingLoop.train.

    A batch is a window: the next `bptt` tokens of each of the B streams. The position's
    batch_in_epoch counts windows.
    """

    KIND = "lm-checkpoint"
    UNIT = "win"
    RESUME_COMMAND = "nmt lm train"
    # LM checkpoints written before the shared loop named these differently.
    POSITION_ALIASES = {"window": "batch_in_epoch", "best_ppl": "best_score"}

    def __init__(self, cfg: LMConfig, run_dir: Path, data: LMData, model: RecurrentLM, *,
                 device: torch.device):
        super().__init__(cfg.train, run_dir, model, device=device)
        self.cfg = cfg
        self.data = data
        t = cfg.train
        try:
            self.stream = layout(data.train_ids, t.batch_size,
                                 separator=data.vocab.separator_id).to(device)  # (B, N)
        except ValueError as err:
            raise LMTrainingError(f"training text: {err}; lower train.batch_size") from err
        self.state: LMState | None = None  # carried across windows (and checkpoints)

    # ----------------------------------------------------------------- state
    def config_dict(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def extra_state(self) -> dict[str, Any]:
        carried = None
        if self.state is not None:
            carried = {"hidden": self.state.hidden.cpu(),
                       "cell": None if self.state.cell is None else self.state.cell.cpu()}
        return {"vocab": self.data.vocab.to_data(), "carried_state": carried}

    def restore_extra(self, ckpt: dict[str, Any]) -> None:
        if ckpt["vocab"] != self.data.vocab.to_data():
            raise LMTrainingError("cannot resume: the training text gives a different vocabulary")
        carried = ckpt.get("carried_state")
        if carried is not None:
            cell = carried["cell"]
            self.state = LMState(carried["hidden"].to(self.device),
                                 None if cell is None else cell.to(self.device))

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
            "device": device_name(self.device),
            "best_valid": {"step": self.pos.best_step, "ppl": self.pos.best_score},
        }

    # ----------------------------------------------------------------- steps
    def train_step(self, win: Window) -> StepLoss:
        """Forward pass and loss (mean nats per token) of one window; carries the state on."""
        logits, state = self.net(win.inputs, self.state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), win.targets.reshape(-1))
        if not torch.isfinite(loss):
            raise LMTrainingError(f"non-finite loss at step {self.pos.step + 1}; lower train.lr "
                                  "or train.clip_norm")
        # The state flows on into the next window, but gradients stop here (truncated BPTT).
        self.state = state.detach()
        n_tokens = win.targets.numel()
        total = float(loss.detach()) * n_tokens
        return StepLoss(loss, StepStats(loss=total, nll=total, tokens=n_tokens))

    def epoch_lengths(self, epoch: int) -> list[int]:
        t = self.cfg.train
        return window_lengths(self.stream.size(1), t.bptt, random_bptt=t.random_bptt,
                              seed=t.seed * 1000 + epoch)

    def plan_epoch(self, epoch: int, start: int) -> EpochBatches:
        lengths = self.epoch_lengths(epoch)
        if start == 0:
            self.state = None  # each epoch reads the stream from its start again
        return EpochBatches(len(lengths), windows(self.stream, lengths, start_window=start))

    # ----------------------------------------------------------------- validation
    def validate(self) -> dict[str, float]:
        assert self.data.valid_lines is not None
        scores = evaluate_lines(self.model, self.data.vocab, self.data.valid_lines,
                                batch_size=self.cfg.train.valid_batch_size,
                                bptt=max(self.cfg.train.bptt, 100))
        return {"valid_loss": scores.nats_per_token, "valid_ppl": scores.ppl,
                "valid_bpc": scores.bpc}

    @property
    def has_validation(self) -> bool:
        return self.data.valid_lines is not None

    def valid_score(self, result: dict[str, float]) -> tuple[float, bool]:
        return result["valid_ppl"], False

    # ----------------------------------------------------------------- export
    def export(self) -> Path:
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
        log.info("bundle written to %s", bundle)
        return bundle
