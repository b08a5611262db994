"""CLI: `nmt export`: write a bundle from a run's checkpoints (best, or an average of the last N).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="write a model bundle from a run's checkpoints",
        description="Write a bundle from checkpoints, e.g. while a run is still going or to try "
        "checkpoint averaging. Examples:\n"
        "  nmt export runs/multi30k-de-en --out models/multi30k-de-en --average 3 --dtype float16\n"
        "  nmt export runs/x --checkpoints runs/x/checkpoints/step_00001000.pt --out bundle-1000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir", type=Path, help="run directory (holds checkpoints/)")
    parser.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    parser.add_argument(
        "--average",
        type=int,
        default=1,
        metavar="N",
        help="average the last N step checkpoints (default 1: best.pt)",
    )
    parser.add_argument("--checkpoints", type=Path, nargs="+", help="average exactly these files")
    parser.add_argument(
        "--dtype",
        choices=["float32", "float16"],
        default="float32",
        help="weight precision in the bundle (float16 halves its size)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from nmt.checkpoint import CheckpointError, safe_load
    from nmt.cli import CommandError
    from nmt.config import config_from_dict
    from nmt.data.corpus import DataError
    from nmt.data.dataset import validation_length_ratio
    from nmt.tokenization import Tokenizer
    from nmt.training.export import choose_checkpoints, write_bundle
    from nmt.training.rotation import average_state_dicts
    from nmt.translator import MIN_GUARD_SOURCE

    if args.average < 1:
        raise CommandError(f"--average must be at least 1, got {args.average}")
    try:
        chosen = args.checkpoints or choose_checkpoints(args.run_dir / "checkpoints", args.average)
    except CheckpointError as err:
        raise CommandError(str(err)) from err
    newest = safe_load(chosen[-1])
    for path in chosen[:-1]:
        if safe_load(path)["config"]["model"] != newest["config"]["model"]:
            raise CommandError(f"{path} and {chosen[-1]} hold different model configurations")
    weights = average_state_dicts(list(chosen))
    metadata = dict(newest.get("metadata", {}))
    metadata["weights_from"] = ", ".join(p.name for p in chosen)
    config = config_from_dict(newest["config"])
    src_tok, tgt_tok = Tokenizer(newest["src_spm"]), Tokenizer(newest["tgt_spm"])
    if not metadata.get("length_ratio"):
        # Checkpoints written before the short-output guard lack it: read the validation set.
        try:
            metadata["length_ratio"] = validation_length_ratio(config, src_tok, tgt_tok,
                                                               MIN_GUARD_SOURCE)
        except DataError as err:
            print(f"warning: no length statistics in the bundle ({err}); the translator's "
                  "short-output guard stays off for it")
    write_bundle(
        args.out,
        config=config,
        weights=weights,
        src_tokenizer=src_tok,
        tgt_tokenizer=tgt_tok,
        metadata=metadata,
        half=args.dtype == "float16",
    )
    print(f"model bundle: {args.out} ({metadata['weights_from']})")
