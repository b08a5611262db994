"""Benchmarks: the translate-worker protocol, shared by the workers of all three systems.

A worker loads its model once, prints {"ready": load seconds}, then reads one JSON request per
line on stdin: {"src": path, "out": path, "beam": K}. It translates the file with beam size K
(1: greedy), writes the hypotheses, and
answers {"seconds": s} where s times translation only (not start-up or loading), so peers that
start slowly are not penalised for it.

A request with "count": true (untimed checks only) is answered by the worker's `count`
function instead, with {"steps": decoder steps of each output (in any order), "decoder_calls":
decoder calls in all, "units": decoded inputs} added, so the step counts come from the real
search, not from re-tokenised text. This file is imported by workers running in the peers' own
virtual environments, so it uses the standard library only.
"""

import json
import sys
import time

_t0 = time.perf_counter()


def serve(translate, count=None):
    """translate: (list of source lines, beam size) -> list of hypotheses.

    count: (lines, beam size) -> (hypotheses, {"steps": [...], "decoder_calls": n}), the same
    translation with its decoder steps counted; None where the worker cannot count them.
    """
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # libraries that print must not break the protocol
    _send(real_stdout, {"ready": time.perf_counter() - _t0})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        with open(req["src"], encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        counted = {}
        start = time.perf_counter()
        if req.get("count"):
            if count is None:
                raise SystemExit("this worker cannot count decoder steps")
            hyps, counted = count(lines, int(req["beam"]))
        else:
            hyps = translate(lines, int(req["beam"]))
        seconds = time.perf_counter() - start
        with open(req["out"], "w", encoding="utf-8") as handle:
            handle.write("".join(h.replace("\n", " ") + "\n" for h in hyps))
        _send(real_stdout, {"seconds": seconds, "n": len(hyps), **counted})


def _send(stream, obj):
    stream.write(json.dumps(obj) + "\n")
    stream.flush()
