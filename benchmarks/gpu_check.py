"""GPU figures for RESULTS.md: decoding test_2016_flickr (greedy and beam 5, batches of 64 and
256 sentences, fp32 and bf16 autocast) and the tokens/s of a training epoch, with peak memory.

Run by benchmarks/gpu_check.sh on a CUDA machine; prints markdown and writes JSON.

    python benchmarks/gpu_check.py --model models/multi30k-de-en --json out.json \\
        [--train-run DIR]   # a finished `nmt train` run to read the epoch figures from
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from nmt.evaluation.files import read_lines
from nmt.evaluation.metrics import corpus_scores
from nmt.translator import Translator


def decode_figures(model: str, src: str, ref: str) -> list[dict]:
    sources, refs = read_lines(src), read_lines(ref)
    rows = []
    for precision in ("fp32", "bf16"):
        translator = Translator.from_checkpoint(model, device="cuda", precision=precision)
        translator.translate(sources[:64], beam_size=5)  # warm-up: kernels, allocator
        for beam in (1, 5):
            for batch in (64, 256):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                start = time.perf_counter()
                out = translator.translate(sources, beam_size=beam, max_sentences=batch,
                                           batch_tokens=10**9)
                torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                tokens = sum(len(t.candidates[0].tokens) for t in out)
                bleu = corpus_scores([t.text for t in out], [refs], metrics=("bleu",))
                rows.append({"precision": precision, "beam": beam, "batch": batch,
                             "sentences_per_s": round(len(sources) / seconds, 1),
                             "tokens_per_s": round(tokens / seconds, 1),
                             "seconds": round(seconds, 3),
                             "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
                             "bleu": round(bleu["bleu"]["score"], 2)})
    return rows


def training_figures(run_dir: Path) -> dict:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    log = (run_dir / "train.log").read_text()
    epoch_s = [float(line.rsplit(" in ", 1)[1].split()[0]) for line in log.splitlines()
               if "epoch 1 done in" in line]
    return {"epoch_seconds": epoch_s[0] if epoch_s else None,
            "tokens_per_s_median": sorted(r["tokens_per_s"] for r in train)[len(train) // 2]
            if train else None,
            "steps": train[-1]["step"] if train else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--src", default="data/multi30k/test_2016_flickr.de.gz")
    parser.add_argument("--ref", default="data/multi30k/test_2016_flickr.en.gz")
    parser.add_argument("--train-run", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: no CUDA device", file=sys.stderr)
        return 1
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
              "decoding": decode_figures(args.model, args.src, args.ref)}
    if args.train_run is not None:
        result["training"] = training_figures(args.train_run)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"{result['device']}, torch {result['torch']}\n")
    print("| precision | beam | batch | sentences/s | tokens/s | peak GiB | BLEU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in result["decoding"]:
        print(f"| {r['precision']} | {r['beam']} | {r['batch']} | {r['sentences_per_s']} | "
              f"{r['tokens_per_s']} | {r['peak_gib']} | {r['bleu']} |")
    if "training" in result:
        print(f"\ntraining: {result['training']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
