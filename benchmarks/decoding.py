"""Benchmarks: translation speed and quality of the three systems, and of nmt's own variants.

All workers of one beam size are started together and take turns on test_2016_flickr (1,000
sentences, batches of 64 sentences, the same thread count). Speed is sentences/s and target
tokens/s (target subwords counted with the shared SentencePiece model, so the three count alike);
quality is sacreBLEU (13a, cased) against the reference, for every system in the same run.
"""

from __future__ import annotations

from pathlib import Path

import sacrebleu

from benchmarks.measure import Stats, Worker, alternate
from benchmarks.peers import venv_python
from benchmarks.systems import ENTRY, thread_env
from benchmarks.workspace import Workspace

BATCH = 64


def worker_argv(system: str, model: str, ws: Workspace, *, out_dir: Path,
                variant: str = "", steps: int = 0) -> list[str]:
    """variant (nmt only): "" (fp32, fast kernels), "int8", "bf16" (bfloat16 products) or
    "default-kernels".

    steps: > 0 forces every output to exactly this many decoder steps (equal_steps.py), for
    nmt and OpenNMT-py; 0 decodes to natural lengths.

    out_dir: this run's output folder. OpenNMT-py's translator opens its `-output` file when it
    is built (default "pred.txt", in the current directory): it is named here, inside out_dir,
    so a worker never leaves a pred.txt wherever the benchmark was started.
    """
    if system == "nmt":
        import sys

        argv = [sys.executable, str(ENTRY / "nmt_entry.py"), "worker", model,
                "--batch", str(BATCH)]
        if variant == "int8":
            argv += ["--quantize", "int8"]
        elif variant == "bf16":
            argv += ["--precision", "bf16"]
        elif variant == "default-kernels":
            argv += ["--default-kernels"]
        if steps > 0:  # decode.min_len and max_len are set from it inside (nmt_entry.py)
            argv += ["--equal-steps", str(steps)]
        return argv
    if system == "opennmt-py":
        # As shared/peers/opennmt-py.md: GNMT length penalty alpha 1.0, max length 60; forced:
        # EOS banned up to N tokens and the search stopped there, with no ratio cap on N.
        lengths = (["-min_length", str(steps), "-max_length", str(steps),
                    "-max_length_ratio", "0"] if steps > 0 else ["-max_length", "60"])
        return [str(venv_python(system)), str(ENTRY / "onmt_entry.py"), "worker",
                "-model", model, "-src", str(ws.text("test", "de")), "-gpu", "-1",
                "-batch_size", str(BATCH), "-batch_type", "sents",
                "-length_penalty", "wu", "-alpha", "1.0", *lengths,
                "-transforms", "sentencepiece", "-src_subword_model", str(ws.spm_model),
                "-tgt_subword_model", str(ws.spm_model),
                "-output", str(out_dir / f"{system}{'.forced' if steps else ''}"
                                         f".worker-output.txt")]
    if steps > 0:
        raise ValueError(f"{system}: no forced-length decoding")
    if system == "joeynmt":
        config = ws.models(system).parent / f"{system}.yaml"
        return [str(venv_python(system)), str(ENTRY / "joey_entry.py"), "worker", str(config),
                model]
    raise ValueError(system)


def count_tokens(ws: Workspace, hyps: list[str]) -> int:
    from nmt.tokenization import Tokenizer

    tok = Tokenizer.from_file(ws.spm_model)
    return sum(len(ids) for ids in tok.encode(hyps))


def _bleu(hyp_path: Path, ref_path: Path) -> float:
    hyps = hyp_path.read_text(encoding="utf-8").splitlines()
    refs = ref_path.read_text(encoding="utf-8").splitlines()
    return sacrebleu.corpus_bleu(hyps, [refs]).score


def run_decoding(ws: Workspace, entries: list[tuple[str, str, str]], *, beams: list[int],
                 reps: int, threads: int, out_dir: Path, log=print) -> dict[str, dict]:
    """Speed and BLEU per beam size and row; every worker serves every beam size.

    Args:
        entries: (row name, system, model path), row names like "nmt", "nmt int8",
            "opennmt-py"; a name's second word picks an nmt variant.

    Returns:
        {str(beam): {row name: figures}}; greedy rows also hold the validation BLEU.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    src, ref = ws.text("test", "de"), ws.text("test", "en")
    n_src = len(src.read_text(encoding="utf-8").splitlines())
    warm = out_dir / "warmup.de"
    warm.write_text("".join(src.read_text(encoding="utf-8").splitlines(True)[:BATCH]),
                    encoding="utf-8")
    workers: list[Worker] = []
    env = thread_env(threads)
    results: dict[str, dict] = {}
    try:
        for name, system, model in entries:
            variant = name.split(" ", 1)[1] if " " in name else ""
            log(f"starting {name} worker")
            workers.append(Worker(name, worker_argv(system, model, ws, out_dir=out_dir,
                                                      variant=variant),
                                  env, out_dir / f"{name}.log"))
        for beam in beams:
            log(f"translate, beam {beam}: {', '.join(w.name for w in workers)}")
            beam_dir = out_dir / f"beam{beam}"
            beam_dir.mkdir(exist_ok=True)
            alt = alternate(workers, src, beam_dir, beam=beam, reps=reps, warmup_src=warm,
                            log=log)
            rows: dict[str, dict] = {}
            for w in workers:
                hyp_path = beam_dir / f"{w.name}.txt"
                hyps = hyp_path.read_text(encoding="utf-8").splitlines()
                tokens = count_tokens(ws, hyps)
                secs = alt.seconds[w.name]
                rows[w.name] = {
                    "seconds": Stats(secs).to_dict(),
                    "sentences_per_s": Stats([n_src / t for t in secs]).to_dict(),
                    "tokens_per_s": Stats([tokens / t for t in secs]).to_dict(),
                    "target_tokens": tokens,
                    "bleu": _bleu(hyp_path, ref),
                    "load_seconds": w.load_seconds,
                }
                if beam == 1:  # quality check on the validation set, untimed
                    valid_out = beam_dir / f"{w.name}.valid.txt"
                    w.translate(ws.text("valid", "de"), valid_out, beam)
                    rows[w.name]["valid_bleu"] = _bleu(valid_out, ws.text("valid", "en"))
            results[str(beam)] = rows
        return results
    finally:
        for w in workers:
            w.close()
