"""benchmarks/open_loop.py --quick against the shipped model, with Debian's httperf and wrk.
Nothing timed is asserted (tests never time things): the figures are well formed, no request
failed, and the server's /metrics count the same answers as httperf."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.system import require_program

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_reports_every_rate_with_no_error(tmp_path: Path) -> None:
    require_program("httperf")
    require_program("wrk")
    out = tmp_path / "open_loop.json"
    # Decoding in the server's own process: model workers would double the start-up, and the
    # script, not the service's mode, is under test here (--set passes a setting through).
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "open_loop.py"), "--quick",
                           "--set", "NMT_MODEL_PROCESSES=0", "--json", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    greedy = report["searches"]["greedy"]
    assert greedy["closed_loop"]["requests_per_s"] > 0 and greedy["closed_loop"]["errors"] == 0
    for label in ("idle", "50%", "80%"):
        r = greedy[label]
        assert r["sessions"] >= 1 and r["ok"] == r["sessions"] and r["errors"] == 0, (label, r)
        assert r["server_statuses"] == {"200": r["sessions"]}, (label, r)  # its /metrics agree
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], (label, r)
        assert r["server_p99_ms"] is not None  # every answer carried its timing
    assert greedy["50%"]["offered_per_s"] == pytest.approx(
        0.5 * greedy["closed_loop"]["requests_per_s"])
    assert greedy["ratio_p99_half_to_idle_p50"] > 0
    # The markdown: every table row has as many cells as its header.
    for table in re.findall(r"(?:^\|.*\|\n)+", done.stdout, flags=re.M):
        assert len({line.count("|") for line in table.splitlines()}) == 1, table
