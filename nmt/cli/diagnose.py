"""CLI: `nmt diagnose gradients`: gradient flow through time for tanh RNN, GRU and LSTM encoders."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Measure how the loss gradient flows back through the encoder, for several cells side by side.

For each --cells entry the config's model is built with that cell, a unidirectional encoder and
no attention (unless --keep-attention), so an early encoder state reaches the loss only through
the recurrence. On long real inputs (consecutive sentence pairs of the config's data joined to
--src-len subwords) the report gives ||dL/dh_t|| for every encoder step t, untrained and after
--steps Adam steps, and the global gradient norm at each of those steps with and without
gradient-norm clipping. It writes report.json, gradient_per_step.png and grad_norm_training.png.

example:
  nmt diagnose gradients --config configs/multi30k-de-en.yaml --cells rnn gru lstm \\
      --report reports/gradients
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("diagnose", help="model diagnostics (gradient flow)",
                            description="Model diagnostics.")
    tools = parser.add_subparsers(dest="tool", required=True, metavar="TOOL")
    grad = tools.add_parser("gradients",
                            help="gradient norm per encoder time step, and in training",
                            description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    grad.add_argument("--config", type=Path, required=True, help="translation experiment YAML")
    grad.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override a config value, e.g. --set model.enc_hidden=128 (repeatable)")
    grad.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"],
                      choices=["rnn", "gru", "lstm"], help="cells to compare (default: all three)")
    grad.add_argument("--report", type=Path, required=True, help="output directory")
    grad.add_argument("--src-len", type=int, default=100,
                      help="source length in subwords, EOS included (default: 100)")
    grad.add_argument("--tgt-len", type=int, default=30,
                      help="target length cut, EOS included (default: 30; the decoder only sees "
                           "the final encoder state, so this mostly saves time)")
    grad.add_argument("--batch-size", type=int, default=16, help="inputs per batch (default: 16)")
    grad.add_argument("--steps", type=int, default=20,
                      help="training steps per cell, with and without clipping (default: 20)")
    grad.add_argument("--lr", type=float, default=None, help="Adam rate (default: train.lr)")
    grad.add_argument("--clip-norm", type=float, default=None,
                      help="clipping threshold (default: train.clip_norm, or 1 if that is 0)")
    grad.add_argument("--keep-attention", action="store_true",
                      help="keep the config's attention (early states then also get gradient "
                           "directly through attention)")
    grad.add_argument("--seed", type=int, default=1234)
    grad.add_argument("--spm-dir", type=Path, default=None,
                      help="SentencePiece cache (default: REPORT/spm; a run's <run>/spm works too)")
    grad.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError, load_with_overrides
    from nmt.config import load_config
    from nmt.diagnostics.long_batches import load_gradient_data
    from nmt.diagnostics.report import run_report
    from nmt.runtime import set_threads, setup_logging

    setup_logging()
    for name in ("src_len", "tgt_len", "batch_size", "steps"):
        if getattr(args, name) < (2 if name.endswith("len") else 1):
            raise CommandError(f"--{name.replace('_', '-')} is too small: {getattr(args, name)}")
    set_threads(args.threads)
    cfg = load_with_overrides(lambda ov: load_config(args.config, ov), args.set)
    try:
        data = load_gradient_data(cfg, args.spm_dir or args.report / "spm", src_len=args.src_len,
                                  tgt_len=args.tgt_len, batch_size=args.batch_size,
                                  steps=args.steps, seed=args.seed)
    except ValueError as err:
        if type(err).__name__ in ("DataError", "TokenizerError", "ConfigError"):
            raise  # main() prints those itself
        raise CommandError(str(err)) from err
    report = run_report(cfg, data, list(dict.fromkeys(args.cells)), args.report,
                        keep_attention=args.keep_attention, lr=args.lr, clip_norm=args.clip_norm,
                        seed=args.seed, extra={"config": str(args.config), "overrides": args.set})
    for cell, numbers in report["headline"].items():
        print(f"{cell:5s} log10 ||dL/dh_1|| / ||dL/dh_S||: untrained "
              f"{numbers['log10_first_over_last_untrained']:+.1f}, after {report['train_steps']} "
              f"steps {numbers['log10_first_over_last_trained']:+.1f}; max grad norm "
              f"{numbers['max_grad_norm_unclipped']:.3g}")
    print(f"report: {args.report}/report.json ({report['seconds']} s)")
