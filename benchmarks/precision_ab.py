"""Benchmarks: fp32 against bf16 products on the CPU, one model, side by side in one process.

    python -m benchmarks.precision_ab                 # test_2016_flickr de->en, 2 threads
    python -m benchmarks.precision_ab --sentences 64  # seconds

Both Translators load the same bundle; each round translates the test set once with each, the
order alternating, batches of 64 sentences. Reported per search: sentences/s (median of the
rounds), BLEU against the reference (sacrebleu), and how many outputs are identical.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import time
from pathlib import Path

import sacrebleu

from benchmarks.workspace import ROOT
from nmt.translator import Translator

DATA = ROOT / "data" / "multi30k"
PRECISIONS = ("fp32", "bf16")


def run(args: argparse.Namespace) -> list[str]:
    src = gzip.open(DATA / "test_2016_flickr.de.gz", "rt", encoding="utf-8").read().splitlines()
    ref = gzip.open(DATA / "test_2016_flickr.en.gz", "rt", encoding="utf-8").read().splitlines()
    src, ref = src[:args.sentences], ref[:args.sentences]
    translators = {p: Translator.from_checkpoint(args.model, precision=p,
                                                 num_threads=args.threads) for p in PRECISIONS}
    lines = [f"{args.model.name}, {len(src)} sentences, batches of 64, {args.threads} threads, "
             f"median of {args.reps} rounds"]
    for beam in args.beams:

        def translate(p: str, texts: list[str], beam: int = beam) -> list[str]:
            return [t.text for t in translators[p].translate(
                texts, beam_size=beam, max_sentences=64, batch_tokens=10**9)]

        for p in PRECISIONS:  # first calls allocate and pick kernels: untimed
            translate(p, src[:64])
        seconds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
        outputs: dict[str, list[str]] = {}
        for rep in range(args.reps):
            for p in PRECISIONS if rep % 2 == 0 else tuple(reversed(PRECISIONS)):
                start = time.perf_counter()
                outputs[p] = translate(p, src)
                seconds[p].append(time.perf_counter() - start)
        rate = {p: len(src) / statistics.median(seconds[p]) for p in PRECISIONS}
        bleu = {p: sacrebleu.corpus_bleu(outputs[p], [ref]).score for p in PRECISIONS}
        same = sum(a == b for a, b in zip(outputs["fp32"], outputs["bf16"], strict=True))
        search = "greedy" if beam == 1 else f"beam {beam}"
        gain, change = rate["bf16"] / rate["fp32"], bleu["bf16"] - bleu["fp32"]
        lines.append(f"{search}: fp32 {rate['fp32']:.1f} sentences/s, BLEU {bleu['fp32']:.2f}; "
                     f"bf16 {rate['bf16']:.1f} sentences/s, BLEU {bleu['bf16']:.2f}; bf16/fp32 "
                     f"{gain:.2f}x, BLEU {change:+.2f}, identical outputs {same}/{len(src)}")
    return lines


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "multi30k-de-en")
    p.add_argument("--sentences", type=int, default=1000)
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    for line in run(p.parse_args(argv)):
        print(line)


if __name__ == "__main__":
    main()
