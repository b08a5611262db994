"""benchmarks/replicas.py --quick: two replicas of the shipped model behind Debian's nginx, with
Debian's redis-server and wrk. Nothing timed is asserted (tests never time things): both targets
served every request, nginx spread them over both replicas, and the per-key rate limit let
exactly its number through across the two."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.support.system import require_program

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_spreads_the_load_and_the_rate_limit_is_exact(tmp_path: Path) -> None:
    for name in ("wrk", "redis", "nginx"):
        require_program(name)
    out = tmp_path / "replicas.json"
    # Decoding in the server's own process: model workers would double the start-up, and the
    # script, not the service's mode, is under test here (--set passes a setting through).
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "replicas.py"), "--quick",
                           "--set", "NMT_MODEL_PROCESSES=0", "--json", str(out)],
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    cells = report["throughput"]["greedy"]
    for target in ("one replica", "nginx, two replicas"):
        assert cells[target]["requests_per_s"] > 0 and cells[target]["errors"] == 0, target
    assert min(cells["nginx, two replicas"]["per_replica_200"]) > 0  # nginx used both
    assert cells["one replica"]["per_replica_200"][1] == 0  # the other replica sat idle

    limit = report["rate_limit"]
    assert limit["exact"], limit
    n = limit["limit_per_minute"]
    assert [k["status"] for k in limit["keys"].values()] == [
        {"200": n, "429": 2 * n}, {"200": n, "429": 5}]
    answered = [sum(p.values()) for p in limit["per_replica"]]
    assert min(answered) > 0 and sum(answered) == 4 * n + 5  # both replicas counted into one
    for table in re.findall(r"(?:^\|.*\|\n)+", done.stdout, flags=re.M):
        assert len({line.count("|") for line in table.splitlines()}) == 1, table
