"""Benchmarks: sentence segmenters compared on hand-built German and English cases.

Run: `python benchmarks/segmenters.py [--rounds 5] [--verbose]`; prints markdown tables (see
docs/segmentation.md for the figures and the choice they led to). Needs the compared libraries
besides the project's own sentencex: `pip install pysbd sentence-splitter syntok blingfire`.

Each case in benchmarks/segmentation/cases.tsv is a list of expected sentences; the text a
segmenter sees is those sentences joined by one space (and, in the whitespace stress set, by tabs
and runs of spaces, with leading and trailing blanks). Measured per library and language:

- exact: share of cases whose predicted sentence list (each stripped) equals the expected one;
- P / R: precision and recall of sentence boundaries, a boundary being the number of non-space
  characters before a sentence's first character (so a library that trims or alters whitespace is
  scored on where it cuts, not on how it spaces);
- stress exact: the same on the whitespace stress set;
- lossless: share of all texts whose output maps back onto the input as exact substrings with only
  whitespace between them (what `nmt.text.segment` needs to reproduce separators);
- sentences/s: gold sentences per second of one call per line over paragraphs of eight cases,
  3,000+ sentences; libraries take turns each round (who goes first rotates), the median round
  counts. On a shared machine only the ratio to the fastest, from the same run, is comparable.

The last row per language, nmt.text.segment, is what ships: sentencex plus nmt's alignment and
false-end merges.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sentencex

from nmt.text.segment import sentence_spans

CASES = Path(__file__).parent / "segmentation" / "cases.tsv"
LANGS = ("de", "en")

# A library's answer for one line: (start, end) offsets, or sentence strings to align.
Output = list[tuple[int, int]] | list[str]


@dataclass(frozen=True)
class Case:
    lang: str
    category: str
    sentences: list[str]


def load_cases(path: Path = CASES) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            lang, category, *sentences = line.split("\t")
            cases.append(Case(lang, category, sentences))
    return cases


def build_segmenters(lang: str) -> dict[str, Callable[[str], Output]]:
    """One callable per library, its per-language object built once (outside the timing)."""
    # Imported here: the compared libraries are benchmark-only, not project dependencies, and
    # `python benchmarks/segmenters.py --help` should work without them.
    import blingfire
    import pysbd
    import syntok.segmenter
    from sentence_splitter import SentenceSplitter

    pysbd_seg = pysbd.Segmenter(language=lang, clean=False, char_span=True)
    moses = SentenceSplitter(language=lang)

    def syntok_spans(text: str) -> Output:
        # Tokens carry offsets; a sentence spans its first to its last token.
        return [(sent[0].offset, sent[-1].offset + len(sent[-1].value))
                for para in syntok.segmenter.analyze(text) for sent in para]

    return {
        "pysbd": lambda t: [(s.start, s.end) for s in pysbd_seg.segment(t)],
        "sentence-splitter": moses.split,
        "sentencex": lambda t: [(b["start_index"], b["end_index"])
                                for b in sentencex.get_sentence_boundaries(lang, t)],
        "syntok": syntok_spans,
        "blingfire": lambda t: list(blingfire.text_to_sentences_and_offsets(t)[1]),
        # What ships: sentencex, aligned, with nmt's false-end merges.
        "nmt.text.segment": lambda t: sentence_spans(t, lang),
    }


def pieces(text: str, output: Output) -> list[str]:
    return [o if isinstance(o, str) else text[o[0] : o[1]] for o in output]


def align(text: str, output: Output) -> list[tuple[int, int]] | None:
    """Maps a library's output onto stripped (start, end) spans of `text`, or None when the
    sentences are not exact substrings in order with only whitespace between them."""
    spans, cursor = [], 0
    for piece in (p.strip() for p in pieces(text, output)):
        if not piece:
            continue
        start = text.find(piece, cursor)
        if start < 0 or text[cursor:start].strip():
            return None
        spans.append((start, start + len(piece)))
        cursor = start + len(piece)
    return spans if not text[cursor:].strip() else None


def nonspace_boundaries(sentences: list[str]) -> set[int]:
    """Non-space characters before each sentence after the first."""
    cuts, seen = set(), 0
    for sentence in sentences[:-1]:
        seen += sum(not c.isspace() for c in sentence)
        cuts.add(seen)
    return cuts


def predicted_sentences(text: str, output: Output) -> list[str]:
    return [p.strip() for p in pieces(text, output) if p.strip()]


def stress_text(case: Case, rng: random.Random) -> str:
    seps = ["  ", "\t", "   ", " \t "]
    text = case.sentences[0]
    for sentence in case.sentences[1:]:
        text += rng.choice(seps) + sentence
    return rng.choice(["", " ", "\t"]) + text + rng.choice(["", "  ", "\t"])


def score(cases: list[Case], texts: list[str], seg: Callable[[str], Output]) -> dict[str, float]:
    exact = tp = n_pred = n_gold = lossless = 0
    for case, text in zip(cases, texts, strict=True):
        output = seg(text)
        pred = predicted_sentences(text, output)
        exact += pred == case.sentences
        gold_cuts, pred_cuts = nonspace_boundaries(case.sentences), nonspace_boundaries(pred)
        tp += len(gold_cuts & pred_cuts)
        n_pred, n_gold = n_pred + len(pred_cuts), n_gold + len(gold_cuts)
        lossless += align(text, output) is not None
    return {"exact": exact / len(cases), "P": tp / max(n_pred, 1), "R": tp / max(n_gold, 1),
            "lossless": lossless / len(cases)}


def speed(cases: list[Case], segs: dict[str, Callable[[str], Output]], rounds: int,
          rng: random.Random) -> dict[str, float]:
    """Gold sentences/s per library: paragraphs of ~8 shuffled cases, libraries taking turns."""
    lines, n_sentences = [], 0
    while n_sentences < 3000:
        batch = rng.sample(cases, 8)
        lines.append(" ".join(" ".join(c.sentences) for c in batch))
        n_sentences += sum(len(c.sentences) for c in batch)
    times: dict[str, list[float]] = {name: [] for name in segs}
    for r in range(rounds):
        names = list(segs)
        names = names[r % len(names):] + names[: r % len(names)]  # rotate who goes first
        for name in names:
            start = time.perf_counter()
            for line in lines:
                segs[name](line)
            times[name].append(time.perf_counter() - start)
    return {name: n_sentences / statistics.median(t) for name, t in times.items()}


def versions() -> str:
    from importlib.metadata import version

    libs = ["pysbd", "sentence-splitter", "sentencex", "syntok", "blingfire"]
    return ", ".join(f"{lib} {version(lib)}" for lib in libs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="print every missed case")
    args = parser.parse_args()
    rng = random.Random(0)
    cases = load_cases()
    load = os.getloadavg()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; {versions()}\n")
    print("| library | lang | cases | exact | P | R | stress exact | lossless | sentences/s "
          "| speed vs fastest |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for lang in LANGS:
        lang_cases = [c for c in cases if c.lang == lang]
        plain = [" ".join(c.sentences) for c in lang_cases]
        stressed = [stress_text(c, rng) for c in lang_cases]
        segs = build_segmenters(lang)
        rates = speed(lang_cases, segs, args.rounds, rng)
        fastest = max(rates.values())
        for name, seg in segs.items():
            base, stress = score(lang_cases, plain, seg), score(lang_cases, stressed, seg)
            lossless = (base["lossless"] + stress["lossless"]) / 2
            print(f"| {name} | {lang} | {len(lang_cases)} | {base['exact']:.1%} | "
                  f"{base['P']:.1%} | {base['R']:.1%} | {stress['exact']:.1%} | {lossless:.0%} | "
                  f"{rates[name]:,.0f} | {rates[name] / fastest:.3f} |")
    print("\nMissed cases per library and category:\n")
    for lang in LANGS:
        lang_cases = [c for c in cases if c.lang == lang]
        for name, seg in build_segmenters(lang).items():
            misses: dict[str, list[str]] = {}
            for case in lang_cases:
                text = " ".join(case.sentences)
                pred = predicted_sentences(text, seg(text))
                if pred != case.sentences:
                    misses.setdefault(case.category, []).append(" | ".join(pred))
            counts = ", ".join(f"{cat} {len(m)}" for cat, m in misses.items()) or "none"
            print(f"- {name} {lang}: {counts}")
            for cat, missed in misses.items() if args.verbose else ():
                print("\n".join(f"    {cat}: {m}" for m in missed))


if __name__ == "__main__":
    main()
