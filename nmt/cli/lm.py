"""CLI: `nmt lm train | sample | evaluate`: recurrent language models over a text stream."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path

TRAIN_HELP = """\
examples:
  nmt lm train --config configs/char-lm-en.yaml
  nmt lm train --config configs/lm-en.yaml --set model.cell=lstm --set train.bptt=70
  nmt lm train --resume runs/char-lm-en
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("lm", help="language models: train, sample, evaluate",
                            description="Recurrent language models (character or subword level).")
    cmds = parser.add_subparsers(dest="lm_command", required=True, metavar="SUBCOMMAND")

    train = cmds.add_parser("train", help="train an LM with truncated BPTT", epilog=TRAIN_HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="LM config YAML (kind: lm)")
    source.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a run")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set train.bptt=70 (repeatable)")
    train.add_argument("--run-dir", type=Path, help="where to write the run (default: runs/<name>)")
    train.add_argument("--device", help="cpu, cuda or cuda:N (default: CUDA when available)")
    train.add_argument("-v", "--verbose", action="store_true")
    train.set_defaults(run=run_train)

    sample = cmds.add_parser("sample", help="sample text from an LM")
    sample.add_argument("--model", "-m", required=True, help="LM bundle directory or checkpoint")
    sample.add_argument("--prompt", default="", help="text to continue (read as a line start)")
    sample.add_argument("--length", type=int, default=200, help="tokens to sample (default: 200)")
    sample.add_argument("--temperature", type=float, default=1.0,
                        help="> 0; lower is more conservative; 0 is greedy (default: 1)")
    sample.add_argument("--top-k", type=int, default=0, help="sample among the k best (0: all)")
    sample.add_argument("--seed", type=int, default=None, help="for reproducible samples")
    sample.add_argument("--num", type=int, default=1, help="independent samples (default: 1)")
    sample.add_argument("--device", default="cpu")
    sample.set_defaults(run=run_sample)

    evaluate = cmds.add_parser("evaluate", help="perplexity and bits per character of a text")
    evaluate.add_argument("--model", "-m", required=True, help="LM bundle directory or checkpoint")
    evaluate.add_argument("--text", required=True, help="text file, one line each (plain or .gz)")
    evaluate.add_argument("--batch-size", type=int, default=16,
                          help="parallel streams (default: 16)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.add_argument("--device", default="cpu")
    evaluate.set_defaults(run=run_evaluate)


def run_train(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError, Interrupted, check_device, load_with_overrides
    from nmt.lm.config import load_lm_config
    from nmt.lm.run import resume_lm_config, train_lm
    from nmt.lm.trainer import LMTrainingError
    from nmt.runtime import setup_logging
    from nmt.training.run import TrainingInterrupted
    from nmt.training.trainer import TrainingError

    setup_logging(args.verbose)
    check_device(args.device)
    try:
        if args.resume is not None:
            cfg = load_with_overrides(lambda ov: resume_lm_config(args.resume, list(ov)),
                                      args.set)
            run_dir = args.resume
        else:
            cfg = load_with_overrides(lambda ov: load_lm_config(args.config, ov), args.set)
            run_dir = args.run_dir or Path("runs") / cfg.name
        bundle = train_lm(cfg, run_dir, device_name=args.device, resume=args.resume is not None)
    except (LMTrainingError, TrainingError) as err:
        raise CommandError(str(err)) from err
    except TrainingInterrupted as stop:  # the loop's report: where it stopped, where to resume
        raise Interrupted(f"SIGINT received: {stop}", signal.SIGINT) from stop
    print(f"LM bundle: {bundle}")


def _load(args: argparse.Namespace):
    from nmt.cli import CommandError
    from nmt.lm.bundle import load_lm
    from nmt.runtime import pick_device

    try:
        device = pick_device(args.device)
    except (ValueError, RuntimeError) as err:
        raise CommandError(f"--device {args.device}: {err}") from err
    return load_lm(args.model, device=device)


def run_sample(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError
    from nmt.lm.sampling import sample

    if args.length < 1 or args.num < 1:
        raise CommandError("--length and --num must be at least 1")
    if args.temperature < 0 or args.top_k < 0:
        raise CommandError("--temperature and --top-k must be >= 0")
    loaded = _load(args)
    texts = sample(loaded.model, loaded.vocab, prompt=args.prompt, length=args.length,
                   temperature=args.temperature, top_k=args.top_k, seed=args.seed,
                   num_samples=args.num)
    print("\n\n".join(texts))


def run_evaluate(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError
    from nmt.lm.data import read_text
    from nmt.lm.evaluation import evaluate_lines

    if args.batch_size < 1:
        raise CommandError("--batch-size must be at least 1")
    loaded = _load(args)
    lines = read_text(args.text)
    if not lines:
        raise CommandError(f"{args.text}: no text to evaluate")
    scores = evaluate_lines(loaded.model, loaded.vocab, lines, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"model": str(args.model), "text": args.text, "vocab": loaded.vocab.kind,
                          **scores.as_dict()}))
        return
    unit = "character" if loaded.vocab.kind == "char" else "subword"
    print(f"{args.text}: {len(lines)} lines, {scores.tokens} {unit} tokens, "
          f"{scores.chars} characters")
    print(f"perplexity (per {unit}): {scores.ppl:.3f}")
    if loaded.vocab.kind != "char":
        print(f"bits per subword: {scores.bits_per_token:.4f}")
    print(f"bits per character: {scores.bpc:.4f}")
