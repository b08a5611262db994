"""Benchmarks: runs OpenNMT-py 3.5.1 (in its own venv, on torch 2.13) past its two install traps.

Usage (with that venv's python): onmt_entry.py train ARGS... | onmt_entry.py worker ARGS...

- `import onmt` imports every data transform, some of which import spacy and fasttext: empty
  stand-ins in sys.modules let the import succeed (the benchmark uses neither transform);
- torch >= 2.6 loads with weights_only=True, which refuses OpenNMT-py's checkpoints (they hold an
  argparse Namespace): these are checkpoints this benchmark wrote itself, so they are trusted.
"""

import os
import sys
import types

import torch

for _name in ("spacy", "fasttext"):
    sys.modules.setdefault(_name, types.ModuleType(_name))
_torch_load = torch.load


def _trusted_load(*args, **kwargs):
    kwargs["weights_only"] = False
    return _torch_load(*args, **kwargs)


torch.load = _trusted_load
if os.environ.get("BENCH_THREADS"):
    torch.set_num_threads(int(os.environ["BENCH_THREADS"]))


def worker(argv):
    """A translate worker: loads the model once, then answers JSON-line requests (worker.py)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from onmt.inference_engine import InferenceEnginePY
    from onmt.opts import translate_opts
    from onmt.utils.parse import ArgumentParser
    from worker_protocol import serve

    parser = ArgumentParser(description="onmt worker")
    translate_opts(parser)
    opt = parser.parse_args(argv)
    ArgumentParser.validate_translate_opts(opt)
    ArgumentParser._get_all_transform_translate(opt)
    ArgumentParser._validate_transforms_opts(opt)
    ArgumentParser.validate_translate_opts_dynamic(opt)
    engine = InferenceEnginePY(opt)

    def translate(lines, beam):
        engine.translator.beam_size = beam  # read when each batch builds its search
        _, preds = engine.infer_list(lines)
        return [p[0] for p in preds]

    def count(lines, beam):
        # A prediction holds every token the search generated, EOS included when it chose one
        # (not when it stopped at -max_length): one token per decoder step. The calls of the
        # step function are counted as well.
        tr = engine.translator
        steps, calls = [], 0
        decode, translate_batch = tr._decode_and_generate, tr.translate_batch

        def counted_decode(*a, **kw):
            nonlocal calls
            calls += 1
            return decode(*a, **kw)

        def counted_batch(*a, **kw):
            out = translate_batch(*a, **kw)
            steps.extend(len(nbest[0]) for nbest in out["predictions"])
            return out

        tr._decode_and_generate, tr.translate_batch = counted_decode, counted_batch
        try:
            hyps = translate(lines, beam)
        finally:
            del tr._decode_and_generate, tr.translate_batch  # the class's methods again
        return hyps, {"steps": steps, "decoder_calls": calls, "units": len(lines)}

    serve(translate, count)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "train":
        from onmt.bin.train import main

        sys.argv = ["onmt_train", *args]
        main()
    elif mode == "worker":
        worker(args)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
