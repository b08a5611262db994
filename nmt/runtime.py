"""Runtime: device choice, seeding, thread settings, logging, optional dependencies. Kept tiny
on purpose."""

from __future__ import annotations

import importlib
import logging
import os
import random
from types import ModuleType

import torch
from tqdm import tqdm


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` wins ("cpu", "cuda", "cuda:1"); otherwise CUDA when present, else the CPU."""
    if requested:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            # No "--device" prefix: each command names its own option (nmt translate, lm, train).
            raise ValueError("CUDA is not available on this machine; use --device cpu")
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def set_threads(num_threads: int | None) -> None:
    if num_threads:
        torch.set_num_threads(num_threads)


class MissingDependency(ImportError):
    """An optional package (an extra in pyproject.toml) is not installed; says which to install."""


def import_optional(module: str, *, extra: str, needed_for: str) -> ModuleType:
    """Imports a package that serving does not install (TensorBoard for training, matplotlib for
    report plots), where it is used, so `pip install nmt` stays the serving set.

    Raises:
        MissingDependency: naming the package, what needs it and the extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        package = module.split(".")[0] if module != "torch.utils.tensorboard" else "tensorboard"
        raise MissingDependency(
            f"{needed_for} needs {package}, which is not installed (the serving install leaves "
            f"it out): pip install 'nmt[{extra}]', or `make install-test` for everything"
        ) from err


class TqdmHandler(logging.StreamHandler):
    """Writes each record through `tqdm.write`, which lifts any progress bar on the stream off
    its line first and redraws it after, so a log line never lands glued to a bar's tail."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except Exception:  # logging's contract: report through handleError, never raise
            self.handleError(record)


def setup_logging(verbose: bool = False) -> None:
    """Log lines on stderr (where the progress bars are), routed around the bars."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[TqdmHandler()],
    )
