"""CLI: `nmt evaluate`: translate a test set (or take existing outputs) and write a BLEU report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nmt.cli.translate import add_model_arguments, load_translator

EPILOG = """\
examples:
  nmt evaluate --model models/multi30k-de-en --src test.de --ref test.en --beam 1 5 10 \\
      --report reports/multi30k
  nmt evaluate --hyp a.en b.en --ref test.en --src test.de --report reports/compare

BLEU, chrF and TER come from sacrebleu with its default settings (its signature strings are
in the report), with 95% bootstrap confidence intervals; systems after the first are compared
with the first by sacrebleu's paired bootstrap test. --report DIR writes report.json,
report.md, bleu_by_length.png, attention heat-maps (when the model has attention) and, with
--model, the hypotheses of every beam size.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate", help="score translations with BLEU, chrF and TER (sacrebleu)",
        description="Score a model on a test set, or score existing translations.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--src", help="source file (needed with --model; with --hyp, used "
                        "for BLEU by source length)")
    parser.add_argument("--ref", required=True, help="reference file, one line per sentence")
    parser.add_argument("--hyp", nargs="+", help="score these existing output files instead "
                        "of translating (the first is the baseline)")
    parser.add_argument("--beam", type=int, nargs="+", default=None,
                        help="beam sizes to decode with (default: the model's); the first is "
                        "the baseline")
    parser.add_argument("--length-penalty", type=float, default=None,
                        help="GNMT length penalty alpha (default: the model's)")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="source subwords per batch (default: the model's)")
    parser.add_argument("--bootstrap", type=int, default=1000,
                        help="bootstrap resamples for confidence intervals and the paired "
                        "test (0: none; default 1000)")
    parser.add_argument("--attention-examples", type=int, default=3,
                        help="attention heat-maps to draw (default 3)")
    parser.add_argument("--domain", default=None,
                        help="domain tag of a multi-domain model (e.g. caption, general)")
    parser.add_argument("--report", help="directory to write the report into")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError
    from nmt.evaluation.files import check_same_length, read_lines
    from nmt.evaluation.metrics import EvaluationError
    from nmt.evaluation.report import evaluate_systems, render_markdown, write_report

    if bool(args.hyp) == bool(args.model):
        raise CommandError("give either --model (with --src) or --hyp, not both")
    if args.bootstrap < 0 or args.attention_examples < 0:
        raise CommandError("--bootstrap and --attention-examples must be >= 0")
    try:
        refs = read_lines(args.ref, what="reference file")
        sources = None
        if args.src:
            sources = read_lines(args.src, what="source file")
            check_same_length(sources, args.src, refs, args.ref)
        if args.model:
            if sources is None:
                raise CommandError("--model needs --src (the text to translate)")
            systems, model_info, attention = _decode(args, sources)
        else:
            systems, model_info, attention = _read_hyps(args.hyp, refs, args.ref), None, []
        report = evaluate_systems(systems, refs, sources=sources, n_bootstrap=args.bootstrap,
                                  ref_file=args.ref, src_file=args.src, model=model_info,
                                  attention=attention)
        if args.report:
            write_report(report, args.report)
    except EvaluationError as err:
        raise CommandError(str(err)) from err
    sys.stdout.write(render_markdown(report))
    if args.report:
        print(f"report written to {args.report}", file=sys.stderr)


def _read_hyps(paths: list[str], refs: list[str], ref_path: str):
    from nmt.evaluation.files import check_same_length, read_lines
    from nmt.evaluation.report import SystemOutput

    systems, names = [], set()
    for path in paths:
        hyps = read_lines(path, what="hypothesis file")
        check_same_length(hyps, path, refs, ref_path)
        name = Path(path).name if Path(path).name not in names else path
        names.add(name)
        systems.append(SystemOutput(name=name, hyps=hyps, hyp_file=path))
    return systems


def _decode(args: argparse.Namespace, sources: list[str]):
    """Translates `sources` with every --beam size; writes hypotheses into the report dir."""
    from nmt.cli import CommandError
    from nmt.evaluation.report import AttentionExample, SystemOutput
    from nmt.translator import TranslatorError

    translator = load_translator(args)
    beams = args.beam or [translator.config.decode.beam_size]
    alpha = (translator.config.decode.length_penalty if args.length_penalty is None
             else args.length_penalty)
    out_dir = Path(args.report) if args.report else None
    systems = []
    try:
        for beam in beams:
            start = time.perf_counter()
            result = translator.translate(sources, beam_size=beam, length_penalty=alpha,
                                          batch_tokens=args.batch_tokens,
                                          progress=not args.quiet, domain=args.domain)
            seconds = time.perf_counter() - start
            hyps = [t.text for t in result]
            hyp_file = None
            if out_dir is not None:
                out_dir.mkdir(parents=True, exist_ok=True)
                hyp_file = str(out_dir / f"hyp.beam{beam}.{translator.tgt_lang}")
                Path(hyp_file).write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
            systems.append(SystemOutput(name=f"beam{beam}", hyps=hyps, hyp_file=hyp_file,
                                        seconds=seconds,
                                        settings={"beam_size": beam, "length_penalty": alpha,
                                                  **({"domain": args.domain} if args.domain
                                                     else {})}))
        attention = []
        if translator.has_attention and args.attention_examples and out_dir is not None:
            picks = [s for s in sources if 0 < len(s.split()) <= 25][: args.attention_examples]
            for t in translator.translate(picks, beam_size=beams[0], length_penalty=alpha,
                                          return_attention=True, domain=args.domain):
                c = t.candidates[0]
                attention.append(AttentionExample(t.source_tokens, c.tokens, c.attention or []))
    except TranslatorError as err:
        raise CommandError(str(err)) from err
    except OSError as err:
        raise CommandError(f"cannot write hypotheses into {out_dir}: {err}") from err
    model_info = {"path": str(args.model), "metadata": translator.metadata,
                  "src_lang": translator.src_lang, "tgt_lang": translator.tgt_lang,
                  "quantize": args.quantize}
    return systems, model_info, attention
