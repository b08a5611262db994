"""Real system programs for the tests that need them: Debian's redis-server and nginx.

A test that needs one calls `require_program`: where the program is missing it skips, naming the
package to install, unless NMT_REQUIRE names it (CI, .ci/run), and then it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

# NMT_REQUIRE name -> the program and the Debian package that has it.
PROGRAMS = {"redis": ("redis-server", "redis-server"), "nginx": ("nginx", "nginx")}


def required(name: str) -> bool:
    """Whether NMT_REQUIRE names `name` (the tests that need it must run, not skip)."""
    return name in {n.strip() for n in os.environ.get("NMT_REQUIRE", "").split(",")}


def require_program(name: str) -> str:
    """The path of the program NMT_REQUIRE calls `name`; skips (or, when required, fails) the
    test where it is not installed."""
    program, package = PROGRAMS[name]
    path = shutil.which(program) or next(
        (str(p) for d in ("/usr/sbin", "/usr/bin") if (p := Path(d) / program).exists()), None)
    if path is None:
        reason = f"{program} is not installed (apt-get install {package})"
        if required(name):
            pytest.fail(f"NMT_REQUIRE={name}: {reason}")
        pytest.skip(reason)
    return path


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


NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"


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
    # Workers run as the test's user: as root, "root" (they read the files of `out_dir`, which
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
