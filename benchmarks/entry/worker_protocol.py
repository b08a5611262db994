"""Benchmarks: the translate-worker protocol, shared by the workers of all three systems.

A worker loads its model once, prints {"ready": load seconds}, then reads one JSON request per
line on stdin: {"src": path, "out": path, "beam": K}. It translates the file with beam size K
(1: greedy), writes the hypotheses, and
answers {"seconds": s} where s times translation only (not start-up or loading), so peers that
start slowly are not penalised for it. This file is imported by workers running in the peers'
own virtual environments, so it uses the standard library only.
"""

import json
import sys
import time

_t0 = time.perf_counter()


def serve(translate):
    """translate: (list of source lines, beam size) -> list of hypotheses."""
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not break the protocol
    _send(real_stdout, {"ready": time.perf_counter() - _t0})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        with open(req["src"], encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        start = time.perf_counter()
        hyps = translate(lines, int(req["beam"]))
        seconds = time.perf_counter() - start
        with open(req["out"], "w", encoding="utf-8") as handle:
            handle.write("".join(h.replace("\n", " ") + "\n" for h in hyps))
        _send(real_stdout, {"seconds": seconds, "n": len(hyps)})


def _send(stream, obj):
    stream.write(json.dumps(obj) + "\n")
    stream.flush()
