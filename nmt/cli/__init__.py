"""CLI: `nmt train | translate | evaluate | serve`; each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from nmt import __version__

T = TypeVar("T")


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 2, no traceback."""


class Interrupted(Exception):
    """A signal stopped the command: printed as one line, exit status 128 + the signal number."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


def check_device(requested: str | None) -> None:
    """Fails as `--device X: why` before any work when the requested device cannot be used."""
    from nmt.runtime import pick_device

    if requested is None:
        return
    try:
        pick_device(requested)
    except (ValueError, RuntimeError) as err:  # RuntimeError: torch cannot parse the name
        raise CommandError(f"--device {requested}: {err}") from err


def load_with_overrides(load: Callable[[Sequence[str]], T], overrides: Sequence[str]) -> T:
    """`load(overrides)`; when the config file is valid and an override breaks it, the
    ConfigError names that `--set KEY=VALUE` instead of the file.

    Args:
        load: builds the config from a file plus the given overrides (`load_config` bound to its
            path, `resume_config`, ...).
        overrides: the `--set` values, in order.
    """
    from nmt.config import ConfigError

    try:
        return load(overrides)
    except ConfigError as err:
        if not overrides:
            raise
        for n in range(len(overrides) + 1):
            try:
                load(overrides[:n])
            except ConfigError as first:
                if n == 0:
                    raise  # the file alone is invalid: its message names the file
                item = overrides[n - 1]
                # load_config wraps the inner error as "<file>: <inner>"; the inner one is the
                # message about the key, without the file that is not at fault.
                inner = str(first.__cause__ if isinstance(first.__cause__, ConfigError)
                            else first)
                inner = inner.removeprefix(f"override {item!r}: ")
                raise ConfigError(f"--set {item}: {inner}") from err
        raise


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
    from nmt.runtime import MissingDependency
    from nmt.tokenization import TokenizerError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CommandError, ConfigError, DataError, CheckpointError, TokenizerError,
            MissingDependency) as err:
        _report(f"nmt {args.command}: error: {err}")
        sys.exit(2)
    except Interrupted as err:
        _report(f"nmt {args.command}: {err}")
        sys.exit(128 + err.signum)
    except KeyboardInterrupt:
        _report(f"nmt {args.command}: interrupted")
        sys.exit(130)


def _report(message: str) -> None:
    """Prints the one-line failure on stderr, after closing any progress bar the failure cut
    short (closing draws its last state and ends its line; the message would be glued on)."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
    print(message, file=sys.stderr)
