"""CLI: `nmt train`: train a model from a YAML config (CPU, GPU, or several via torchrun)."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a translation model",
        description="Train a model. Examples:\n"
        "  nmt train --config configs/multi30k-de-en.yaml\n"
        "  nmt train --config configs/multi30k-de-en.yaml --set model.cell=lstm \\\n"
        "      --set train.max_tokens=6000\n"
        "  nmt train --resume runs/multi30k-de-en\n"
        "  torchrun --nproc_per_node 4 -m nmt train --config configs/multi30k-de-en.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="experiment YAML file")
    source.add_argument(
        "--resume", type=Path, metavar="RUN_DIR", help="continue a run where it stopped"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=5e-4 (repeatable)",
    )
    parser.add_argument(
        "--run-dir", type=Path, help="where to write the run (default: runs/<name>)"
    )
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError, Interrupted, check_device, load_with_overrides
    from nmt.config import load_config
    from nmt.runtime import setup_logging
    from nmt.training.run import TrainingInterrupted, resume_config, train
    from nmt.training.trainer import TrainingError

    setup_logging(args.verbose)
    check_device(args.device)
    run_dir = args.resume or args.run_dir
    received = [signal.SIGINT]  # Ctrl-C raises KeyboardInterrupt by itself

    def on_sigterm(signum: int, frame: object) -> None:
        received[0] = signal.SIGTERM
        raise KeyboardInterrupt  # unwinds like Ctrl-C: atomic writes clean up, logs close

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if args.resume is not None:
            cfg = load_with_overrides(lambda ov: resume_config(args.resume, list(ov)), args.set)
            run_dir = args.resume
        else:
            cfg = load_with_overrides(lambda ov: load_config(args.config, ov), args.set)
            run_dir = args.run_dir or Path("runs") / cfg.name
        bundle = train(cfg, run_dir, device_name=args.device, resume=args.resume is not None)
    except (TrainingError, ValueError) as err:
        raise CommandError(str(err)) from err
    except OSError as err:  # e.g. the disk filled up mid-run; the last checkpoint is intact
        where = f" ({err.filename})" if err.filename else ""
        resume = f"; fix this, then continue with `nmt train --resume {run_dir}`" if run_dir else ""
        raise CommandError(f"{err.strerror or err}{where}{resume}") from err
    except TrainingInterrupted as stop:
        name = signal.Signals(received[0]).name
        raise Interrupted(f"{name} received: {stop}", received[0]) from stop
    except KeyboardInterrupt as stop:  # before the first step: loading data, building the model
        name = signal.Signals(received[0]).name
        raise Interrupted(f"{name} received before the first training step (while loading "
                          "data and building the model)", received[0]) from stop
    finally:
        signal.signal(signal.SIGTERM, previous)
    if bundle is not None:
        print(f"model bundle: {bundle}")
