"""CLI: `nmt train | translate | evaluate | serve`; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nmt import __version__


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    # Subcommand modules are imported here (not at the top) only to keep `nmt --help` fast;
    # nmt.cli is the last pipeline stage, so no cycle is being dodged.
    from nmt.cli import diagnose, evaluate, export, lm, serve, train, translate

    parser = argparse.ArgumentParser(prog="nmt", description="Recurrent neural machine translation")
    parser.add_argument("--version", action="version", version=f"nmt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (train, export, translate, evaluate, serve, lm, diagnose):
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    from nmt.checkpoint import CheckpointError
    from nmt.config import ConfigError
    from nmt.data.corpus import DataError
    from nmt.tokenization import TokenizerError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ConfigError, DataError, CheckpointError, TokenizerError) as err:
        print(f"nmt {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"nmt {args.command}: interrupted", file=sys.stderr)
        sys.exit(130)
