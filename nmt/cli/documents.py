"""CLI: `nmt translate --input FILE` for documents (.html, .srt, .vtt, .docx, .md, .po; .txt with
--format txt): the output file has the input's format and structure (see nmt.documents)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMAT_CHOICES = ["txt", "html", "srt", "vtt", "docx", "md", "po"]  # nmt.documents.FORMATS
# Suffixes that switch `nmt translate` to document mode; plain .txt keeps the line mode, which
# gives the same output for text files (and allows --nbest).
DOCUMENT_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".srt", ".vtt", ".docx", ".md",
                               ".markdown", ".po", ".pot"})


def is_document(args: argparse.Namespace) -> bool:
    return bool(args.format) or Path(args.input).suffix.lower() in DOCUMENT_SUFFIXES


def run_document(args: argparse.Namespace, translator) -> None:
    """Translates --input into --output (stdout for "-") with the document's format."""
    from nmt.cli import CommandError
    from nmt.documents.base import DocumentError, translator_function
    from nmt.documents.formats import format_for, translate_document
    from nmt.translator import TranslatorError

    if args.input == "-":
        data, name = sys.stdin.buffer.read(), "stdin"
    else:
        try:
            data, name = Path(args.input).read_bytes(), args.input
        except OSError as err:
            raise CommandError(f"input file {args.input}: cannot read ({err.strerror})") from err
    translate = translator_function(translator, beam_size=args.beam, domain=args.domain,
                                    progress=not args.quiet and args.input != "-")
    try:
        fmt = format_for(name, args.format)
        out = translate_document(data, fmt, translate, target_lang=translator.tgt_lang)
    except DocumentError as err:
        raise CommandError(f"{name}: {err}") from err
    except TranslatorError as err:
        raise CommandError(str(err)) from err
    if args.output == "-":
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
        return
    try:
        part = Path(args.output + ".part")
        part.write_bytes(out)
        part.replace(args.output)  # never half a file under the output's name
    except OSError as err:
        raise CommandError(f"output file {args.output}: cannot write ({err.strerror})") from err
