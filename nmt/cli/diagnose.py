"""CLI: `nmt diagnose` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("diagnose", help="(not yet available)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError

    raise CommandError("not implemented yet")
