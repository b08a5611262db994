"""Benchmarks: nmt's translate worker (protocol: worker_protocol.py), in the project's Python.

Usage: nmt_entry.py worker MODEL --batch N [--quantize int8 | --precision bf16] [--default-kernels]
                                           [--equal-steps N]

--equal-steps N makes every output take exactly N decoder steps (N - 1 tokens, then the
end-of-sentence step), for speed comparisons independent of how well a model is trained:
decode.min_len = N - 1 bans the end before that; the Translator keeps its maximum at least one
above the minimum, which leaves the model free to go on at step N, so a step scorer ends every
row there; and the short-output guard (which decodes some sentences again, longer) is off.
"""

import argparse
import os
import sys

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from worker_protocol import serve  # noqa: E402

from nmt.config import config_from_dict  # noqa: E402
from nmt.decoding.constraints import StepScorer  # noqa: E402
from nmt.tokenization import EOS_ID  # noqa: E402
from nmt.translator import Translator  # noqa: E402


def end_after(n_tokens: int, vocab_size: int) -> StepScorer:
    """A step scorer that allows only EOS once a row holds `n_tokens` tokens (adds 0 before).

    Returns (1, V) scores, broadcast over the rows.
    """
    free = torch.zeros(1, vocab_size)
    only_eos = torch.full((1, vocab_size), float("-inf"))
    only_eos[0, EOS_ID] = 0.0

    def score(tokens: Tensor, sentence_ids: Tensor) -> Tensor:  # noqa: ARG001 - the hook's form
        return only_eos if tokens.size(1) >= n_tokens else free

    return score


def force_steps(translator: Translator, steps: int) -> StepScorer:
    """Sets `translator` to decode exactly `steps` steps per output; returns the step scorer
    that `translate` must be given."""
    translator.config = config_from_dict(translator.config.to_dict(), [
        f"decode.min_len={steps - 1}", "decode.max_len_a=0", f"decode.max_len_b={steps - 1}"])
    translator.metadata.pop("length_ratio", None)  # no short-output guard: no second decoding
    return end_after(steps - 1, translator.tgt_tokenizer.vocab_size)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=64, help="sentences per batch")
    parser.add_argument("--quantize", choices=["int8"])
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: the matrix products in bfloat16 (nmt.models.kernels)")
    parser.add_argument("--default-kernels", action="store_true",
                        help="torch's default kernels instead of nmt's oneDNN fast path")
    parser.add_argument("--equal-steps", type=int, default=0,
                        help="exactly this many decoder steps per output (0: natural lengths)")
    args = parser.parse_args(argv)
    threads = int(os.environ.get("BENCH_THREADS", "0")) or None
    translator = Translator.from_checkpoint(args.model, quantize=args.quantize,
                                            num_threads=threads, precision=args.precision,
                                            fast_kernels=not args.default_kernels)
    scorer = force_steps(translator, args.equal_steps) if args.equal_steps > 0 else None
    torch.set_grad_enabled(False)

    def run(lines, beam):
        # Sorted by length inside nmt; a batch holds at most --batch sentences, as the peers'.
        return translator.translate(lines, beam_size=beam, batch_tokens=10**9,
                                    max_sentences=args.batch, step_scorer=scorer)

    def translate(lines, beam):
        return [t.text for t in run(lines, beam)]

    def count(lines, beam):
        # Every nmt hypothesis ends with one end-of-sentence step (chosen, or forced at the
        # maximum length) that its tokens leave out: steps = tokens + 1. The calls of the
        # model's decode_step are counted as well, to check that rule.
        calls = 0
        decode_step = translator.model.decode_step

        def counted(*a, **kw):
            nonlocal calls
            calls += 1
            return decode_step(*a, **kw)

        translator.model.decode_step = counted
        try:
            out = run(lines, beam)
        finally:
            del translator.model.decode_step  # the class's method again
        units = translator.count_units(lines)
        return [t.text for t in out], {"steps": [len(t.candidates[0].tokens) + 1 for t in out],
                                       "decoder_calls": calls, "units": units}

    serve(translate, count)


if __name__ == "__main__":
    main(sys.argv[1:])
