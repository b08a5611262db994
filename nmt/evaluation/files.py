"""Evaluation: reading hypothesis, reference and source files exactly as sacrebleu reads them.

sacrebleu opens files as UTF-8 with newline="\\n" and strips trailing whitespace from each line;
doing the same here makes `nmt evaluate` agree with the `sacrebleu` command line to the digit.
Gzipped files (such as data/multi30k/*.gz) are read the same way after decompression.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from nmt.data.corpus import open_bytes
from nmt.evaluation.metrics import EvaluationError


def read_lines(path: str | Path, *, what: str = "file") -> list[str]:
    """Lines of a UTF-8 text file (plain or gzip), trailing whitespace stripped; errors name the
    file.

    Args:
        what: how error messages call the file ("hypothesis file", "reference file", ...).
    """
    path = Path(path)
    try:
        with io.TextIOWrapper(open_bytes(path), encoding="utf-8", newline="\n") as handle:
            lines = [line.rstrip() for line in handle]
    except FileNotFoundError as err:
        raise EvaluationError(f"{what} {path}: no such file") from err
    except IsADirectoryError as err:
        raise EvaluationError(f"{what} {path}: is a directory, not a file") from err
    except UnicodeDecodeError as err:
        raise EvaluationError(f"{what} {path}: not valid UTF-8 (byte {err.start})") from err
    except (EOFError, gzip.BadGzipFile) as err:
        raise EvaluationError(f"{what} {path}: broken gzip file ({err})") from err
    except OSError as err:
        raise EvaluationError(f"{what} {path}: cannot read ({err.strerror or err})") from err
    if not lines:
        raise EvaluationError(f"{what} {path} is empty")
    return lines


def check_same_length(a: list[str], a_path: str | Path, b: list[str], b_path: str | Path) -> None:
    """Aligned files must have equal line counts; the error names both files."""
    if len(a) != len(b):
        raise EvaluationError(f"{a_path} has {len(a)} lines but {b_path} has {len(b)}: "
                              "the files must be aligned line by line")
