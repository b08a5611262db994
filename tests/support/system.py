"""Real system programs for the tests that need them: Debian's redis-server, nginx, and the
load tools the benchmark tests drive (httperf, wrk).

A test that needs one calls `require_program`: where the program is missing it skips, naming the
package to install, unless NMT_REQUIRE names it (CI, .ci/run), and then it fails instead. The
processes themselves (Redis, nginx with deploy/nginx.conf) are benchmarks/topology.py's, which
benchmarks/replicas.py shares.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.topology import (
    RedisServer,
    find_program,
    free_port,
    nginx_command,
    render_nginx_conf,
    wait_for_port,
)

# The deploy tests import the processes from here, with require_program.
__all__ = ["PROGRAMS", "RedisServer", "free_port", "nginx_command", "render_nginx_conf",
           "require_program", "required", "wait_for_port"]

# NMT_REQUIRE name -> the program and the Debian package that has it.
PROGRAMS = {"redis": ("redis-server", "redis-server"), "nginx": ("nginx", "nginx"),
            "httperf": ("httperf", "httperf"), "wrk": ("wrk", "wrk")}


def required(name: str) -> bool:
    """Whether NMT_REQUIRE names `name` (the tests that need it must run, not skip)."""
    return name in {n.strip() for n in os.environ.get("NMT_REQUIRE", "").split(",")}


def require_program(name: str) -> str:
    """The path of the program NMT_REQUIRE calls `name`; skips (or, when required, fails) the
    test where it is not installed."""
    program, package = PROGRAMS[name]
    path = find_program(program)
    if path is None:
        reason = f"{program} is not installed (apt-get install {package})"
        if required(name):
            pytest.fail(f"NMT_REQUIRE={name}: {reason}")
        pytest.skip(reason)
    return path
