"""CLI: `nmt train`: train a model from a YAML config (CPU, GPU, or several via torchrun)."""

from __future__ import annotations

import argparse
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
    from nmt.cli import CommandError
    from nmt.config import load_config
    from nmt.runtime import setup_logging
    from nmt.training.run import resume_config, train
    from nmt.training.trainer import TrainingError

    setup_logging(args.verbose)
    run_dir = args.resume or args.run_dir
    try:
        if args.resume is not None:
            cfg = resume_config(args.resume, args.set)
            run_dir = args.resume
        else:
            cfg = load_config(args.config, args.set)
            run_dir = args.run_dir or Path("runs") / cfg.name
        bundle = train(cfg, run_dir, device_name=args.device, resume=args.resume is not None)
    except (TrainingError, ValueError) as err:
        raise CommandError(str(err)) from err
    except OSError as err:  # e.g. the disk filled up mid-run; the last checkpoint is intact
        where = f" ({err.filename})" if err.filename else ""
        resume = f"; fix this, then continue with `nmt train --resume {run_dir}`" if run_dir else ""
        raise CommandError(f"{err.strerror or err}{where}{resume}") from err
    if bundle is not None:
        print(f"model bundle: {bundle}")
