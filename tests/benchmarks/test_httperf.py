"""benchmarks/httperf.py: the session file carries every body byte for byte (a real httperf
sends them to a stub server that keeps them: httperf's own --print-request leaves bodies out),
percentiles from the lifetime histogram, and httperf's output read."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks.httperf import parse, percentile, wsesslog
from tests.support.system import require_program

TRICKY = ["Ein 'Hund' rennt.", 'Er sagt "nein" \\ und geht.', "Straße,\tüber  zwei Leerzeichen"]


class _Keeper(BaseHTTPRequestHandler):
    """Keeps each request's body in its server's `bodies`; answers 200 {}."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Keeper)
    server.bodies = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_httperf_sends_the_session_files_bodies_unchanged(stub_server: ThreadingHTTPServer,
                                                          tmp_path: Path) -> None:
    httperf = require_program("httperf")
    bodies = [{"texts": [text], "source": "de", "target": "en", "beam_size": 1}
              for text in TRICKY]
    path = tmp_path / "sessions"
    path.write_text(wsesslog(bodies), encoding="utf-8")
    subprocess.run([httperf, "--server", "127.0.0.1", "--port", str(stub_server.server_port),
                    f"--wsesslog={len(bodies)},0,{path}", "--timeout=10"],
                   capture_output=True, timeout=30, check=True)
    received = [json.loads(b) for b in stub_server.bodies]  # type: ignore[attr-defined]
    assert sorted(received, key=str) == sorted(bodies, key=str)


def test_percentiles_are_upper_bin_edges_and_never_round_down() -> None:
    hist = {10.5: 98, 40.5: 1, 250.5: 1}  # 100 requests in 1 ms bins (bin centres)
    assert percentile(hist, 0.50) == 11.0
    assert percentile(hist, 0.99) == 41.0
    assert percentile(hist, 0.995) == 251.0
    assert percentile({5.5: 1}, 0.99) == 6.0


def test_parse_reads_the_histogram_statuses_and_server_timings() -> None:
    out = "\n".join([
        "Connection lifetime histogram (time in ms):", "            20.5 3", "             :",
        "            35.5 1", "",
        "Total: connections 5 requests 5 replies 4 test-duration 2.000 s", "",
        "Connection rate: 2.5 conn/s (400.0 ms/conn, <=3 concurrent connections)",
        'RB0:{"timing":{"total_ms":19.0}}', 'RB1:{"timing":{"total_', 'RB1:ms":33.0}}',
        'RB2:{"error":"Slowdown: 3 per 1 minute"}',
        "Reply status: 1xx=0 2xx=3 3xx=0 4xx=1 5xx=0",
        "CPU time [s]: user 0.50 system 1.20 (user 25.0% system 60.0% total 85.0%)",
        "Errors: total 1 client-timo 1 socket-timo 0 connrefused 0 connreset 0"])
    r = parse(out)
    assert (r["sessions"], r["ok"], r["errors"], r["max_in_flight"]) == (5, 3, 2, 3)
    assert r["replies_by_status"] == {"2xx": 3, "4xx": 1}
    assert r["errors_by_kind"] == {"client-timo": 1}
    assert (r["p50_ms"], r["p99_ms"], r["max_ms"]) == (21.0, 36.0, 36.0)
    assert (r["server_p50_ms"], r["server_p99_ms"]) == (19.0, 33.0)
    assert r["arrivals_per_s"] == 2.5 and r["served_per_s"] == 1.5
