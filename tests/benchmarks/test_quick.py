"""The benchmark pipeline end to end in --quick mode: tiny models, data slices, nmt's own rows.

It times nothing that is asserted (tests never time things): it checks that every stage runs
and that the results file is well formed. The peers are left out (--no-peers), so no venv is
needed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_writes_a_well_formed_results_file(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--all", "--quick", "--no-peers",
         "--threads", "1", "--out", str(out), "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks")
    assert "--quick run" in text
    for heading in ("## Machine and versions", "## Translation speed and quality", "### greedy",
                    "### beam 5", "## Greedy decoding against the machine's compute limit",
                    "## Training throughput", "## Service", "## GPU", "## Targets"):
        assert heading in text, heading
    # nmt's own rows: fp32 and int8 for both searches, with positive speeds and a BLEU.
    rows = re.findall(r"^\| (nmt(?: int8)?) \| ([\d,.]+) \| \d+% \| ([\d,]+) \| ([\d.]+) \|",
                      text, flags=re.M)
    assert [r[0] for r in rows] == ["nmt", "nmt int8", "nmt", "nmt int8"]
    assert all(float(r[1].replace(",", "")) > 0 for r in rows)
    # Every table row has as many cells as its header.
    for table in re.findall(r"(?:^\|.*\|\n)+", text, flags=re.M):
        widths = {line.count("|") for line in table.splitlines()}
        assert len(widths) == 1, table
    # The stored stage results are plain JSON with the figures the report was made from.
    results = tmp_path / "work" / "results"
    service = json.loads((results / "service.json").read_text())
    for mode in ("batched", "unbatched"):
        for c in ("1", "8", "32"):
            assert service["load"]["default"][mode][c]["requests_per_s"] > 0
    train = json.loads((results / "train.json").read_text())
    assert train["systems"]["nmt"]["tokens_per_s"][0] > 0
    assert "opennmt-py" not in train["systems"]
