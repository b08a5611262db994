"""Tests for nmt.runtime: device errors leave the option name to the caller; log lines go around
progress bars instead of being glued onto them."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tqdm import tqdm

from nmt.runtime import TqdmHandler, pick_device

REPO = Path(__file__).resolve().parents[2]


def test_cuda_request_without_cuda_names_no_option(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available") as info:
        pick_device("cuda")
    assert "--device" not in str(info.value).split(";")[0]  # the CLI adds "--device cuda: "


def bar_and_log(handler: logging.Handler, stream: io.StringIO) -> str:
    log = logging.getLogger("tests.runtime.bar")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        with tqdm(total=3, file=stream, mininterval=0, ascii=True, ncols=60) as bar:
            bar.set_postfix(tok_s="1627")
            bar.update(1)
            log.info("validation at step 1")
            bar.update(1)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_log_lines_start_on_their_own_line_while_a_bar_is_drawn() -> None:
    stream = io.StringIO()
    out = bar_and_log(TqdmHandler(stream), stream)
    before = out[: out.index("validation at step 1")]
    assert before.endswith(("\r", "\n")), repr(out)
    assert "validation at step 1\n" in out
    assert out.rstrip().endswith("]")  # the bar is drawn again after the log line


def test_a_plain_stream_handler_would_glue_the_line_to_the_bar() -> None:
    stream = io.StringIO()  # the failure the handler exists for, shown once
    out = bar_and_log(logging.StreamHandler(stream), stream)
    assert "tok_s=1627]validation at step 1" in out


def test_the_cli_logs_through_the_tqdm_handler() -> None:
    code = ("import logging; from nmt.runtime import TqdmHandler, setup_logging; "
            "setup_logging(); print([type(h).__name__ for h in logging.getLogger().handlers])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['TqdmHandler']"
