"""Benchmarks: runs JoeyNMT 2.3.0 (in its own venv, on torch 2.13) past its scheduler trap.

Usage (with that venv's python): joey_entry.py train CONFIG | joey_entry.py worker CONFIG CKPT

torch 2.13 removed the `verbose` argument that JoeyNMT passes to ReduceLROnPlateau: the class
JoeyNMT builds is swapped for one that drops it. (`joeynmt translate -o FILE` crashes after
decoding; the worker never uses it: it calls JoeyNMT's own `prepare` and `predict`.)
"""

import os
import sys

import joeynmt.builders
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

if os.environ.get("BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))


class _Plateau(ReduceLROnPlateau):
    def __init__(self, *args, verbose=None, **kwargs):  # noqa: ARG002 - dropped on purpose
        super().__init__(*args, **kwargs)


joeynmt.builders.ReduceLROnPlateau = _Plateau


def worker(config_path, ckpt_path):
    """A translate worker (protocol: worker_protocol.py), through JoeyNMT's own `prepare` and
    `predict`, as `joeynmt translate` uses them; batches of 64 sentences, beam alpha 1.0."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from pathlib import Path

    from joeynmt.config import load_config, parse_global_args
    from joeynmt.prediction import predict, prepare
    from worker_protocol import serve

    cfg = load_config(Path(config_path))
    cfg["testing"].update({"load_model": ckpt_path, "beam_alpha": 1.0, "batch_size": 64,
                           "batch_type": "sentence"})
    args = parse_global_args(cfg, rank=0, mode="translate")
    model, _, _, test_data = prepare(args, rank=0, mode="translate")

    def translate(lines, beam):
        test_data.reset_cache()
        for line in lines:
            test_data.set_item(line.rstrip())
        _, _, hypotheses, _, _, _ = predict(
            model=model, data=test_data, compute_loss=False, device=args.device, rank=0,
            n_gpu=args.n_gpu, normalization="none", num_workers=args.num_workers,
            args=args.test._replace(beam_size=beam), autocast=args.autocast)
        return hypotheses

    serve(translate)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "train":
        from joeynmt.__main__ import main

        sys.argv = ["joeynmt", "train", *args, "--skip-test"]
        main()
    elif mode == "worker":
        worker(*args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
