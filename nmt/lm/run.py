"""Language models: one training run from a config: run directory, data, model, resume, trainer."""

from __future__ import annotations

import logging
from pathlib import Path

from nmt.lm.config import LMConfig, load_lm_config, save_lm_config
from nmt.lm.data import load_lm_data
from nmt.lm.model import build_lm
from nmt.lm.trainer import LMTrainer, LMTrainingError
from nmt.runtime import pick_device, seed_everything, set_threads
from nmt.training.logbook import summary_writer_class
from nmt.training.rotation import load_latest
from nmt.training.run import CONFIG_FILE, check_run_dir

log = logging.getLogger(__name__)


def resume_lm_config(run_dir: Path, overrides: list[str]) -> LMConfig:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise LMTrainingError(
            f"cannot resume: {path} not found (is {run_dir} an LM run directory?)")
    return load_lm_config(path, overrides)


def train_lm(cfg: LMConfig, run_dir: Path, *, device_name: str | None = None,
             resume: bool = False) -> Path:
    """Trains to the end and returns the bundle directory."""
    summary_writer_class()  # fails now, not after the data is prepared, without TensorBoard
    device = pick_device(device_name)
    set_threads(cfg.train.num_threads)
    check_run_dir(run_dir)
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        ckpt_dir = run_dir / "checkpoints"
        if not resume:
            if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
                raise LMTrainingError(
                    f"{run_dir} already holds checkpoints: use `nmt lm train --resume {run_dir}` "
                    "to continue it, or choose another --run-dir"
                )
            save_lm_config(cfg, run_dir / CONFIG_FILE)
        data = load_lm_data(cfg, run_dir)
        log.info("LM data: %d training tokens (%d characters), %s vocabulary of %d",
                 len(data.train_ids), data.train_chars, data.vocab.kind, data.vocab.size)
        seed_everything(cfg.train.seed)
        model = build_lm(cfg.model, vocab_size=data.vocab.size).to(device)
        log.info("model: %s parameters", f"{sum(p.numel() for p in model.parameters()):,}")
        trainer = LMTrainer(cfg, run_dir, data, model, device=device)
        if resume:
            ckpt = load_latest(ckpt_dir)
            if ckpt is None:
                log.warning("no checkpoint in %s yet: starting from scratch", run_dir)
            else:
                trainer.restore(ckpt)
        bundle = trainer.train()
        assert bundle is not None  # one process: always rank 0
        return bundle
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
