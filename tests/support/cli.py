"""The in-process `nmt` command line for CLI tests, and input files for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_cli(capsys, *args: Any) -> tuple[int, str, str]:
    """Runs `nmt ARGS...` in-process through `nmt.cli.main`; returns (status, stdout, stderr)."""
    from nmt.cli import main  # the last pipeline stage; imported only by the CLI tests

    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def write_lines(path: Path, lines: list[str]) -> Path:
    """Writes one line per entry (newline-terminated) and returns the path."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
