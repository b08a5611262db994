"""Benchmarks: CPU seconds of decoding and of training updates, for comparing kernel choices.

Each call measures one configuration in a fresh process; alternate calls (and, for "before",
point --repo at a git worktree of an older commit) to compare side by side:

  python benchmarks/kernels_ab.py decode --model models/multi30k-de-en [--torch-kernels]
  python benchmarks/kernels_ab.py train
  python benchmarks/kernels_ab.py decode --repo /tmp/old --model /tmp/old/models/multi30k-de-en

CPU time (`time.process_time`) with one torch thread, so that other jobs on the machine move the
figures less than wall time would; the output is one JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

TEST_DE = Path(__file__).resolve().parents[1] / "data/multi30k/test_2016_flickr.de.gz"


def decode(model: str, sentences: int, torch_kernels: bool) -> float:
    from nmt.translator import Translator

    with gzip.open(TEST_DE, "rt", encoding="utf-8") as f:
        src = [line.rstrip("\n") for line in f][:sentences]
    kwargs = {"fast_kernels": False} if torch_kernels else {}
    translator = Translator.from_checkpoint(model, num_threads=1, **kwargs)
    translator.translate(src[:20], beam_size=5)  # warm-up: allocator, kernel choice
    start = time.process_time()
    translator.translate(src, beam_size=5)
    return time.process_time() - start


def train(updates: int) -> float:
    import torch
    from torch.nn import functional as F

    from nmt.config import ModelConfig
    from nmt.data.batching import Batch
    from nmt.models.seq2seq import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    vocab, rows, length = 8000, 100, 16
    model = build_model(ModelConfig(), src_vocab_size=vocab, tgt_vocab_size=vocab)
    batch = Batch(src=torch.randint(4, vocab, (rows, length)),
                  src_lengths=torch.full((rows,), length),
                  tgt_in=torch.randint(4, vocab, (rows, length)),
                  tgt_out=torch.randint(4, vocab, (rows, length)))

    def update() -> None:
        logits = model(batch)  # (B, T, V)
        F.cross_entropy(logits.reshape(-1, vocab), batch.tgt_out.reshape(-1)).backward()

    update()  # warm-up
    start = time.process_time()
    for _ in range(updates):
        update()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["decode", "train"])
    parser.add_argument("--repo", type=Path, help="import nmt from this checkout (default: here)")
    parser.add_argument("--model", default="models/multi30k-de-en")
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--torch-kernels", action="store_true",
                        help="decode with torch's default kernels (Translator fast_kernels=False)")
    args = parser.parse_args()
    sys.path.insert(0, str((args.repo or Path(__file__).resolve().parents[1]).resolve()))
    seconds = (decode(args.model, args.sentences, args.torch_kernels) if args.what == "decode"
               else train(args.updates))
    print(json.dumps({"what": args.what, "repo": str(args.repo or "."), "torch_kernels":
                      args.torch_kernels, "cpu_s": round(seconds, 2)}))


if __name__ == "__main__":
    main()
