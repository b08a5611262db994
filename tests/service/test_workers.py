"""`nmt serve --workers 2`: two processes behind one port, and /metrics, whichever worker
answers it, counts the requests of both (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import _start_server, stop_server


def _translated(metrics: str) -> float:
    found = re.search(r'nmt_http_requests_total\{method="POST",route="/v1/translate",'
                      r'status="200"\} ([\d.]+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_two_workers_report_one_sum(tiny_bundle: Path, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    proc, url = _start_server(tiny_bundle, tmp_path / "server.log", "--workers", "2",
                              env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
                              ready_s=180)  # two processes load torch and the bundle
    try:
        body = {"texts": ["ein hund rennt"], "source": "de", "target": "en"}
        sent = 0
        # A new connection per request: the workers take turns accepting, not in strict
        # rotation, so send until both have counted one (a counter file per process).
        while sent < 12 or (len(list(metrics_dir.glob("counter_*.db"))) < 2 and sent < 80):
            with httpx.Client() as client:
                assert client.post(f"{url}/v1/translate", json=body).status_code == 200
            sent += 1
        assert len(list(metrics_dir.glob("counter_*.db"))) == 2
        seen = set()
        for _ in range(6):
            with httpx.Client() as client:
                seen.add(_translated(client.get(f"{url}/metrics").text))
        assert seen == {float(sent)}
        assert "nmt_queue_depth" in httpx.get(f"{url}/metrics").text
        # /ready answered 200 (the server start waited for it): both workers had loaded.
        assert re.search(r"^nmt_workers_ready 2\.0$", httpx.get(f"{url}/metrics").text, re.M)
    finally:
        stop_server(proc)
    if proc.returncode not in (0, -15):
        pytest.fail((tmp_path / "server.log").read_text()[-2000:])


def test_ready_waits_for_every_worker(serve_fakes) -> None:
    """A server of two workers of which only this one has loaded: not ready yet, and it says
    how many have (the one-process app here stands for one of them)."""
    served = serve_fakes(workers=2)
    served.app.state.metrics.mark_ready(True)
    answer = served.client.get("/ready")
    assert answer.status_code == 503
    assert answer.json() == {"error": "1 of 2 workers have loaded their models"}
    assert serve_fakes(workers=1).client.get("/ready").status_code == 200
