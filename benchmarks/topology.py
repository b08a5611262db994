"""Benchmarks: deploy/'s topology as plain processes on 127.0.0.1: Debian's redis-server and
nginx with deploy/nginx.conf (only its addresses changed) in front of `nmt serve` replicas.

No container engine runs on our machines, so benchmarks/replicas.py and the deploy tests
(tests/deploy/, through tests/support/system.py) start these processes themselves, on free ports.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

NGINX_CONF = Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf"


def find_program(program: str) -> str | None:
    """The path of `program` on PATH, or in /usr/sbin or /usr/bin (nginx lives in /usr/sbin,
    which a non-root PATH may lack); None where it is not installed."""
    return shutil.which(program) or next(
        (str(p) for d in ("/usr/sbin", "/usr/bin") if (p := Path(d) / program).exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout_s: float = 10.0) -> None:
    """Returns once 127.0.0.1:`port` accepts a connection; fails if `proc` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:g} s")


class RedisServer:
    """`redis-server` on a free 127.0.0.1 port, nothing written to disk; start() it again on
    the same port after kill()."""

    def __init__(self, program: str, log_dir: Path):
        self.program = program
        self.port = free_port()
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        with open(self.log_path, "a") as log:
            self.proc = subprocess.Popen(
                [self.program, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, "redis-server")
        return self

    def kill(self) -> None:
        """SIGKILL: Redis goes away as a crashed one does, connections and all."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def render_nginx_conf(out_dir: Path, *, port: int, upstreams: list[int],
                      source: Path = NGINX_CONF) -> Path:
    """deploy/nginx.conf for 127.0.0.1: listening on `port`, the replicas `nmt-1:5000`, ... at
    127.0.0.1:`upstreams[i]`, its pid and temporary files under `out_dir`; every limit as it is.
    """
    text = source.read_text()
    replicas = re.findall(r"^\s*server (nmt-\d+):5000\b", text, flags=re.M)
    assert len(replicas) == len(upstreams), (replicas, upstreams)
    for name, upstream in zip(replicas, upstreams, strict=True):
        text = text.replace(f"server {name}:5000", f"server 127.0.0.1:{upstream}")
    # Workers run as the caller's user: as root, "root" (they read the files of `out_dir`, which
    # only its owner may); otherwise nginx ignores the directive, so it goes.
    user = "user root;\n" if os.geteuid() == 0 else ""
    replace = [(r"^user \S+;\n", user), (r"^pid \S+;", f"pid {out_dir}/nginx.pid;"),
               (r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{port};"),
               (r"^(\s*)access_log /dev/stdout;", rf"\g<1>access_log {out_dir}/access.log;"),
               (r"^http \{\n", "http {\n" + "".join(
                   f"    {kind}_temp_path {out_dir}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")))]
    for pattern, new in replace:
        text, n = re.subn(pattern, new, text, count=1, flags=re.M)
        assert n == 1, f"deploy/nginx.conf has no line matching {pattern!r}"
    path = out_dir / "nginx.conf"
    path.write_text(text)
    return path


def nginx_command(program: str, conf: Path, *args: str) -> list[str]:
    """`nginx` on a rendered config: its prefix the config's folder, errors on stderr."""
    return [program, "-p", str(conf.parent), "-e", "stderr", "-c", str(conf), *args]


class Nginx:
    """nginx in the foreground with deploy/nginx.conf rendered into `out_dir` for 127.0.0.1,
    in front of the replicas listening on `upstreams`."""

    def __init__(self, program: str, out_dir: Path, *, upstreams: list[int]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = render_nginx_conf(out_dir, port=self.port, upstreams=upstreams)
        with open(out_dir / "nginx.log", "a") as log:
            self.proc = subprocess.Popen(nginx_command(program, conf, "-g", "daemon off;"),
                                         stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port, self.proc, "nginx")
        except AssertionError:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGQUIT: nginx's graceful stop; SIGKILL after 10 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
