"""CLI: `nmt translate`: text in (stdin or a file), translations out (stdout or a file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nmt.cli.documents import FORMAT_CHOICES, is_document, run_document

EPILOG = """\
output:
  One line per input line, in order; an empty input line gives an empty output line.
  With --nbest N > 1 the output is TSV instead: up to N lines per input line, best first,
  each "INDEX<TAB>SCORE<TAB>TEXT", where INDEX is the 0-based input line number and SCORE the
  log-probability after the length penalty. Every INDEX appears at least once.

examples:
  echo "Ein Mann fährt Fahrrad." | nmt translate --model models/multi30k-de-en
  nmt translate --model runs/x/bundle --input test.de --output hyp.en --beam 5 --nbest 3
  nmt translate --model models/general-de-en --stream       # interactive: one line at a time
  nmt translate --model models/multi30k-de-en --input talk.de.srt --output talk.en.srt

  Documents (.html .htm .srt .vtt .docx .md .po, or any file with --format) keep their format
  and structure; see docs/documents.md. A .txt input is translated line by line as above.

  A line may hold several sentences: each is translated on its own and the output line keeps
  the input's spacing between them.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "translate", help="translate text with a trained model",
        description="Translate text with a model bundle or checkpoint.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser)
    parser.add_argument("--input", "-i", default="-", help="input file, one text per line "
                        "(default: stdin)")
    parser.add_argument("--output", "-o", default="-", help="output file (default: stdout)")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default=None,
                        help="translate --input as a document of this format (default: from "
                             "its suffix; .txt and stdin: line mode)")
    parser.add_argument("--beam", type=int, default=None,
                        help="beam size; 1 is greedy (default: the model's decode.beam_size)")
    parser.add_argument("--nbest", type=int, default=1,
                        help="candidates per line, at most --beam; > 1 switches to TSV output")
    parser.add_argument("--length-penalty", type=float, default=None,
                        help="GNMT length penalty alpha (default: the model's)")
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="source subwords per batch (default: the model's)")
    parser.add_argument("--lm", metavar="DIR",
                        help="target-language LM bundle (`nmt lm train`, same target "
                             "SentencePiece model) for shallow fusion")
    parser.add_argument("--lm-weight", type=float, default=None,
                        help="fusion weight: score += W * log p_LM (default with --lm: 0.2)")
    parser.add_argument("--domain", default=None,
                        help="domain tag for models trained on several corpora (e.g. general, "
                             "caption; default: the model's)")
    parser.add_argument("--stream", action="store_true",
                        help="answer each line as soon as it arrives (the default when stdin "
                             "is a terminal and there is no --input)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --device, --threads, --quantize: shared with `nmt evaluate`."""
    parser.add_argument("--model", "-m", help="model bundle directory or checkpoint .pt")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: CUDA when present, else the CPU; "
                        "always the CPU with --quantize)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--quantize", choices=["int8"], default=None,
                        help="dynamic int8 quantisation of the model (CPU only)")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="decoding precision; on CUDA (autocast) auto is bf16 where the "
                             "GPU supports it; on a CPU auto is fp32, and bf16 runs the matrix "
                             "products in bfloat16 (fast with AMX; check BLEU)")


def load_translator(args: argparse.Namespace):
    """Builds the Translator named by --model; bad arguments become CommandError."""
    from nmt.cli import CommandError
    from nmt.runtime import pick_device
    from nmt.translator import Translator, TranslatorError

    if not args.model:
        raise CommandError("--model is required")
    if args.threads is not None and args.threads < 1:
        raise CommandError(f"--threads must be >= 1, got {args.threads}")
    try:
        device = pick_device(args.device or ("cpu" if args.quantize else None))
    except (ValueError, RuntimeError) as err:
        raise CommandError(f"--device {args.device}: {err}") from err
    try:
        return Translator.from_checkpoint(args.model, device=device, quantize=args.quantize,
                                          precision=args.precision,
                                          num_threads=args.threads)
    except TranslatorError as err:
        raise CommandError(f"--model {args.model}: {err}") from err


def load_lm_scorer(args: argparse.Namespace, translator):
    """The shallow-fusion scorer named by --lm/--lm-weight, or None."""
    from nmt.cli import CommandError
    from nmt.lm.fusion import FusionError, fusion_scorer

    if args.lm is None:
        if args.lm_weight is not None:
            raise CommandError("--lm-weight needs --lm")
        return None
    weight = 0.2 if args.lm_weight is None else args.lm_weight
    try:
        return fusion_scorer(args.lm, tgt_tokenizer=translator.tgt_tokenizer, weight=weight,
                             device=translator.device)
    except FusionError as err:
        raise CommandError(f"--lm {args.lm}: {err}") from err


def read_input(path: str) -> list[str]:
    """Lines of stdin ("-") or a UTF-8 file; a final newline does not add an empty line."""
    from nmt.cli import CommandError

    try:
        if path == "-":
            text = sys.stdin.buffer.read().decode("utf-8")
        else:
            text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError as err:
        raise CommandError(f"input file {path}: no such file") from err
    except IsADirectoryError as err:
        raise CommandError(f"input file {path}: is a directory") from err
    except UnicodeDecodeError as err:
        where = "stdin" if path == "-" else f"input file {path}"
        line = err.object[: err.start].count(b"\n") + 1
        raise CommandError(f"{where}: line {line} is not valid UTF-8 (byte {err.start}); "
                           "expected UTF-8 text, one sentence a line") from err
    except OSError as err:
        raise CommandError(f"input file {path}: cannot read ({err.strerror})") from err
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def format_output(translations, nbest: int) -> list[str]:
    """Plain lines, or `index<TAB>score<TAB>text` rows when nbest > 1."""
    if nbest == 1:
        return [t.text for t in translations]
    return [f"{i}\t{c.score:.4f}\t{c.text}" for i, t in enumerate(translations)
            for c in t.candidates]


def run(args: argparse.Namespace) -> None:
    from nmt.cli import CommandError
    from nmt.translator import TranslatorError

    if args.nbest < 1:
        raise CommandError(f"--nbest must be >= 1, got {args.nbest}")
    if args.beam is not None and args.nbest > args.beam:
        raise CommandError(f"--nbest {args.nbest} is larger than --beam {args.beam}")
    if is_document(args):
        if args.nbest != 1 or args.stream or args.lm:
            raise CommandError("--nbest, --stream and --lm are for line mode, not documents")
        run_document(args, load_translator(args))
        return
    stream = args.stream or (args.input == "-" and sys.stdin.isatty())
    if stream and args.input != "-":
        raise CommandError("--stream reads stdin; leave out --input")
    lines = [] if stream else read_input(args.input)
    translator = load_translator(args)
    scorer = load_lm_scorer(args, translator)
    beam = args.beam if args.beam is not None else max(args.nbest,
                                                        translator.config.decode.beam_size)

    def translate(batch: list[str], progress: bool):
        try:
            return translator.translate(
                batch, beam_size=beam, nbest=args.nbest, length_penalty=args.length_penalty,
                batch_tokens=args.batch_tokens, progress=progress, step_scorer=scorer,
                domain=args.domain,
            )
        except TranslatorError as err:
            raise CommandError(str(err)) from err

    if stream:
        translate([], progress=False)  # a bad --domain fails now, not at the first line
        _stream(translate, args)
        return
    translations = translate(lines, progress=args.input != "-" and not args.quiet)
    text = "".join(line + "\n" for line in format_output(translations, args.nbest))
    if args.output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(args.output).write_text(text, encoding="utf-8")
    except OSError as err:
        raise CommandError(f"output file {args.output}: cannot write ({err.strerror})") from err


def _stream(translate, args: argparse.Namespace) -> None:
    """Interactive mode: reads stdin line by line and answers each before reading the next."""
    from nmt.cli import CommandError

    out = sys.stdout if args.output == "-" else None
    try:
        if out is None:
            out = open(args.output, "w", encoding="utf-8")  # closed below
    except OSError as err:
        raise CommandError(f"output file {args.output}: cannot write ({err.strerror})") from err
    try:
        for number, raw in enumerate(iter(sys.stdin.buffer.readline, b""), start=1):
            try:
                line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
            except UnicodeDecodeError as err:
                raise CommandError(f"stdin line {number}: not valid UTF-8 (byte {err.start})"
                                   ) from err
            for row in format_output(translate([line], progress=False), args.nbest):
                out.write(row + "\n")
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
