"""reliability/attacks.py at a tiny scale against a live `nmt serve` with the tiny bundle: a
degenerate text is refused by the cost model, clients that hang up mid-body are 499s (no 500,
no traceback), the probe gets no error meanwhile, and hostile bundles stop `nmt serve` with one
line. The full-size run and its figures are in reliability/RELIABILITY.md."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability import attacks


@pytest.fixture(scope="module")
def server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[attacks.Server]:
    # A low subword limit, so that the scaled-down D2 (50 x U+FDFA: 302 subwords) is refused
    # as the full-size one is.
    env = {"NMT_API_KEYS": f"{attacks.PROBE_KEY},{attacks.ATTACKER_KEY}",
           "NMT_MAX_TEXT_TOKENS": "100"}
    srv = attacks.start_server([tiny_bundle], env, threads=1,
                               log_path=tmp_path_factory.mktemp("attacks") / "server.log")
    yield srv
    srv.stop()


def test_degenerate_text_and_mid_body_hang_ups(server: attacks.Server) -> None:
    idle, rows = asyncio.run(attacks.run_server_attacks(
        server, ["D2", "D6"], probe_key=attacks.PROBE_KEY, probe_interval_s=0.25, idle_s=1.0,
        window_s=1.0, settle_s=0.5, scale=0.01, attacker_key=attacks.ATTACKER_KEY,
        attacks=attacks.MAIN_ATTACKS))
    assert idle["n"] >= 2 and idle["errors"] == 0
    d2, d6 = rows
    assert set(d2.outcome.statuses) == {"413"}, d2.outcome.statuses
    assert "NMT_MAX_TEXT_TOKENS=100" in d2.outcome.notes["first_error"]
    assert d6.outcome.statuses["hung up"] >= 2
    for row in (d2, d6):
        assert row.failed() == [] or row.failed() == ["probe within 2x idle p99, 0 errors"]
        assert row.server["5xx_in_metrics"] == 0 and row.server["tracebacks_in_log"] == 0
        assert row.probe is not None and row.probe["n"] >= 1 and row.probe["errors"] == 0
    assert d6.outcome.notes["499 /translate"] >= 1 and d6.outcome.notes["499 /detect"] >= 1
    assert all(d6.outcome.checks.values()), d6.outcome.checks


def test_hostile_bundles_stop_nmt_serve_with_one_line(tiny_bundle: Path, tmp_path: Path
                                                      ) -> None:
    made = attacks.hostile_bundles(tiny_bundle, tmp_path, 0.01, ["D8c", "D8f"])
    assert sorted(made) == ["D8c", "D8f"]
    for case, words in (("D8c", "more than 100,000 values"), ("D8f", "src_spm: expected")):
        out = attacks.serve_bundle(made[case][1], threads=1, timeout_s=60, memory_gib=6,
                                   log_path=tmp_path / f"{case}.log")
        assert out.statuses == {"exit 2": 1}, out.notes
        assert words in out.notes["first_line"]
        assert all(out.checks.values()), (out.checks, out.notes)


def test_cpu_lists_parse_as_taskset_writes_them() -> None:
    assert attacks.parse_cpus("0") == {0}
    assert attacks.parse_cpus("0,2-4") == {0, 2, 3, 4}
    with pytest.raises(argparse.ArgumentTypeError, match="not a CPU list"):
        attacks._cpu_list("abc")
    with pytest.raises(argparse.ArgumentTypeError, match="not all on this machine"):
        attacks._cpu_list("4096")


def test_through_nginx_a_1_mib_head_stops_at_nginx(server: attacks.Server, tmp_path: Path
                                                 ) -> None:
    """--through-nginx: the attacker and the probe reach the server through real nginx with
    deploy/nginx.conf, which answers an oversized head itself (400) and closes."""
    from tests.support.system import require_program

    require_program("nginx")
    nginx = attacks.start_nginx(server, tmp_path)
    try:
        idle, rows = asyncio.run(attacks.run_server_attacks(
            server, ["D4c"], probe_key=attacks.PROBE_KEY, probe_interval_s=0.25, idle_s=1.0,
            window_s=1.0, settle_s=0.5, scale=0.01, attacker_key=attacks.ATTACKER_KEY,
            attacks=attacks.MAIN_ATTACKS, entry_port=nginx.port))
    finally:
        nginx.stop()
    (d4c,) = rows
    assert idle["n"] >= 2 and idle["errors"] == 0
    assert set(d4c.outcome.statuses) <= {"400", "reset"} and d4c.outcome.statuses.get("400")
    assert d4c.probe is not None and d4c.probe["n"] >= 1 and d4c.probe["errors"] == 0
    assert d4c.server["5xx_in_metrics"] == 0 and d4c.server["tracebacks_in_log"] == 0
    assert all(d4c.outcome.checks.values()), d4c.outcome.checks  # refused, closed within 5 s
