"""Benchmarks: nmt's translate worker (protocol: worker_protocol.py), in the project's Python.

Usage: nmt_entry.py worker MODEL --batch N [--quantize int8] [--default-kernels]
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from worker_protocol import serve  # noqa: E402

from nmt.translator import Translator  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=64, help="sentences per batch")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--default-kernels", action="store_true",
                        help="torch's default kernels instead of nmt's oneDNN fast path")
    args = parser.parse_args(argv)
    threads = int(os.environ.get("BENCH_THREADS", "0")) or None
    translator = Translator.from_checkpoint(args.model, quantize=args.quantize,
                                            num_threads=threads,
                                            fast_kernels=not args.default_kernels)
    torch.set_grad_enabled(False)

    def translate(lines, beam):
        # Sorted by length inside nmt; a batch holds at most --batch sentences, as the peers'.
        out = translator.translate(lines, beam_size=beam, batch_tokens=10**9,
                                   max_sentences=args.batch)
        return [t.text for t in out]

    serve(translate)


if __name__ == "__main__":
    main(sys.argv[1:])
