"""Training: one run from a config: run directory, data, model, resume, then the Trainer."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from nmt.checkpoint import resolve_weights_path, safe_load
from nmt.config import Config, load_config, save_config
from nmt.data.dataset import load_training_data
from nmt.models.seq2seq import build_model
from nmt.runtime import pick_device, seed_everything, set_threads
from nmt.training.distributed import DistInfo, barrier, init_distributed, shutdown
from nmt.training.logbook import summary_writer_class
from nmt.training.loop import TrainingInterrupted
from nmt.training.rotation import load_latest, remove_stale_temp_files
from nmt.training.trainer import Trainer, TrainingError

log = logging.getLogger(__name__)
__all__ = ["TrainingInterrupted", "check_run_dir", "resume_config", "train"]
MIN_FREE_BYTES = 200 * 2**20  # a few checkpoints of the default model, with room to spare
CONFIG_FILE = "config.yaml"


def init_weights(model: torch.nn.Module, cfg: Config, path: str) -> None:
    """Loads the weights of `path` (bundle or checkpoint) into `model`: `train.init_from`.

    The stored model section must equal this run's (sizes, cell, attention, ...); dropout and
    other regularisation may differ.
    """
    weights = resolve_weights_path(path)
    obj = safe_load(weights)
    stored = dict(obj.get("config", {}).get("model", {}))
    ours = cfg.to_dict()["model"]
    shape_keys = [k for k in ours if k not in ("dropout", "emb_dropout")]
    different = [k for k in shape_keys if stored.get(k) != ours[k]]
    if different:
        key = different[0]
        raise TrainingError(
            f"train.init_from {path}: its model.{key} is {stored.get(key)!r}, this config's is "
            f"{ours[key]!r}; the model section must match the weights"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in obj["model"].items()}
    model.load_state_dict(state)
    log.info("weights from %s (train.init_from); optimizer and schedule start fresh", weights)


def check_run_dir(run_dir: Path) -> None:
    """Fails at start, not after an hour, if checkpoints could not be written."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise TrainingError(f"run directory {run_dir} is not writable: {err.strerror}") from err
    free = shutil.disk_usage(run_dir).free
    if free < MIN_FREE_BYTES:
        raise TrainingError(
            f"only {free / 2**20:.0f} MiB free under {run_dir}; training needs at least "
            f"{MIN_FREE_BYTES / 2**20:.0f} MiB for checkpoints"
        )


def resume_config(run_dir: Path, overrides: list[str]) -> Config:
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise TrainingError(f"cannot resume: {path} not found (is {run_dir} a run directory?)")
    return load_config(path, overrides)


def train(
    cfg: Config, run_dir: Path, *, device_name: str | None = None, resume: bool = False
) -> Path | None:
    """Trains to the end and returns the bundle directory (None on ranks other than 0)."""
    summary_writer_class()  # fails now, not after the data is prepared, without TensorBoard
    device = pick_device(device_name)
    dist_info = init_distributed(device)
    package_log = logging.getLogger("nmt")
    handler, old_level = None, package_log.level
    try:
        if dist_info.is_main:
            check_run_dir(run_dir)
            handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            package_log.addHandler(handler)
            if package_log.getEffectiveLevel() > logging.INFO:
                package_log.setLevel(logging.INFO)  # train.log gets progress even without -v
        return _train(cfg, run_dir, device, dist_info, resume)
    finally:
        if handler is not None:
            package_log.removeHandler(handler)
            package_log.setLevel(old_level)
            handler.close()
        shutdown(dist_info)


def _train(
    cfg: Config, run_dir: Path, device: torch.device, dist_info: DistInfo, resume: bool
) -> Path | None:
    set_threads(cfg.train.num_threads)
    if dist_info.is_main:
        if not resume:
            if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
                raise TrainingError(
                    f"{run_dir} already holds checkpoints: use `nmt train --resume {run_dir}` "
                    "to continue it, or choose another --run-dir"
                )
            save_config(cfg, run_dir / CONFIG_FILE)
        else:
            remove_stale_temp_files(run_dir / "checkpoints")
    seed_everything(cfg.train.seed)
    # Rank 0 trains (or finds) the SentencePiece models; the others then read its cache.
    if dist_info.is_main:
        data = load_training_data(cfg, run_dir)
    barrier(dist_info)
    if not dist_info.is_main:
        data = load_training_data(cfg, run_dir)
    log.info(
        "training pairs: %d kept; filtered: %s; vocab src %d tgt %d; device %s x%d",
        len(data.train),
        dict(data.train.stats.counts) or "none",
        data.src_tokenizer.vocab_size,
        data.tgt_tokenizer.vocab_size,
        device,
        dist_info.world_size,
    )
    if len(data.train) == 0:
        raise TrainingError(
            "no training pairs left after filtering; check data.max_len and the files"
        )
    if len(data.parts) > 1:
        for part in data.parts:
            log.info(
                "corpus %s: %d pairs kept, weight %g; filtered: %s",
                part.name,
                part.end - part.start,
                part.weight,
                dict(part.stats.counts) or "none",
            )
    for valid_set in data.valid_sets:
        if len(valid_set.corpus) == 0:
            # Validation would divide by zero tokens, after the first epoch rather than now.
            raise TrainingError(
                f"validation set is empty ({valid_set.name!r}); check data.valid or leave it unset"
            )
    seed_everything(cfg.train.seed)
    model = build_model(
        cfg.model,
        src_vocab_size=data.src_tokenizer.vocab_size,
        tgt_vocab_size=data.tgt_tokenizer.vocab_size,
    ).to(device)
    log.info("model: %s parameters", f"{sum(p.numel() for p in model.parameters()):,}")
    if dist_info.enabled:
        torch.manual_seed(cfg.train.seed + 1000 * dist_info.rank)  # distinct dropout per rank
    trainer = Trainer(cfg, run_dir, data, model, device=device, dist_info=dist_info)
    ckpt = load_latest(run_dir / "checkpoints") if resume else None
    if ckpt is not None:
        trainer.restore(ckpt)
    else:
        if resume:
            log.warning("no checkpoint in %s yet: starting from scratch", run_dir)
        if cfg.train.init_from is not None:
            init_weights(model, cfg, cfg.train.init_from)
    return trainer.train()  # a Ctrl-C comes out as TrainingInterrupted, the report
