"""Benchmarks: paragraphs of test sentences translated whole, against sentence by sentence.

Run: `python benchmarks/paragraphs.py --model models/multi30k-de-en
--src data/multi30k/test_2016_flickr.de.gz --ref data/multi30k/test_2016_flickr.en.gz
--json out.json [--seed 0] [--beam 1 5] [--threads 1]`; prints a markdown summary (see
docs/evaluation/paragraphs.md for the figures).

The paragraph set is built deterministically from the seed: consecutive test sentences are joined
into paragraphs of 2-6 sentences (the last paragraph takes what is left, never a single
sentence), each join being one space, or at random a line break or a blank line. Per beam size,
the same Translator and options translate (a) every sentence as a text of its own and (b) the
paragraphs. Measured per paragraph:

- units: how many sentences the Translator cut the paragraph into (its input segmentation);
- sentences out: sentences `nmt.text.segment.segment` finds on each line of the output;
- lines: whether the output has the input's line structure (the same lines, blank ones at the
  same places, so the same line breaks between the same sentences);
- exact: whether the output is the sentence-alone outputs put between the input's separators.

For BLEU each output line is cut back into its known sentences: at the sentence-alone outputs
when the line is their join, else where the target-side segmenter cuts when it finds as many
sentences, else at the word cuts that best match the sentence-alone outputs (difflib). Corpus
BLEU (sacrebleu, 13a, cased) of those sentences is compared with that of the sentence-alone
outputs, over all paragraphs and over those whose sentence ends are all visible (no sentence
without terminal punctuation is followed by a space and the next sentence: a test caption
without a full stop cannot be told apart from the next one).

Speed: `Translator.translate` on the 1,000 sentences, one per text, as shipped against the same
call with segmentation replaced by one sentence per line; `segment` and `Translator.plan` alone on
the same texts. The calls take turns, 3 times each; medians count. Times are process CPU seconds
(with one torch thread, what the call itself used, which other jobs on a shared machine disturb
far less than wall-clock time), wall-clock seconds alongside.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import random
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import torch

import nmt.text.plan
from nmt.evaluation.files import check_same_length, read_lines
from nmt.evaluation.metrics import score_metric
from nmt.text.segment import Segment, segment
from nmt.translator import Translator

SIZES = (2, 6)  # sentences per paragraph, inclusive
SEPARATORS = (" ", "\n", "\n\n")
SEPARATOR_WEIGHTS = (0.6, 0.2, 0.2)
REPEATS = 3
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
_VISIBLE_END = re.compile(r"[.!?…][\"'”“»«’)\]]*$")


@dataclass(frozen=True)
class Paragraph:
    first: int  # index of its first sentence in the test set
    sentences: list[str]
    separators: list[str]  # len(sentences) - 1, each one of SEPARATORS

    @property
    def text(self) -> str:
        return join(self.sentences, self.separators)

    def lines(self) -> list[list[int]]:
        """Sentence indices (within the paragraph) per line of `text`; [] for a blank line."""
        lines: list[list[int]] = [[0]]
        for i, sep in enumerate(self.separators, start=1):
            if sep == " ":
                lines[-1].append(i)
            else:
                lines.extend([[]] * (sep.count("\n") - 1) + [[i]])
        return lines

    @property
    def visible_ends(self) -> bool:
        """No sentence without terminal punctuation is followed by a space and a sentence."""
        return all(sep != " " or _VISIBLE_END.search(sentence)
                   for sentence, sep in zip(self.sentences, self.separators, strict=False))


def join(sentences: Sequence[str], separators: Sequence[str]) -> str:
    out = [sentences[0]]
    for sep, sentence in zip(separators, sentences[1:], strict=True):
        out += [sep, sentence]
    return "".join(out)


def build_paragraphs(sentences: Sequence[str], seed: int) -> list[Paragraph]:
    """Consecutive sentences in paragraphs of SIZES sentences, with random separators."""
    rng = random.Random(seed)
    paragraphs, first = [], 0
    while first < len(sentences):
        size = min(rng.randint(*SIZES), len(sentences) - first)
        if len(sentences) - first - size == 1:  # leave no single sentence for the end
            size = size + 1 if size < SIZES[1] else size - 1
        seps = rng.choices(SEPARATORS, SEPARATOR_WEIGHTS, k=size - 1)
        paragraphs.append(Paragraph(first, list(sentences[first : first + size]), seps))
        first += size
    return paragraphs


def one_sentence_per_line(text: str, lang: str) -> list[Segment]:
    """The cheapest faithful cut: every line is one sentence, its outer whitespace a separator
    (what `segment` gives for a one-sentence line, without the sentence splitter)."""
    segments: list[Segment] = []

    def add(piece: str, translate: bool) -> None:
        if not piece:
            return
        if not translate and segments and not segments[-1].translate:
            segments[-1] = Segment(segments[-1].text + piece, False)
        else:
            segments.append(Segment(piece, translate))

    for i, piece in enumerate(_LINE_BREAK.split(text)):
        if i % 2:
            add(piece, False)
            continue
        core = piece.strip()
        lead = piece[: len(piece) - len(piece.lstrip())]
        add(lead, False)
        add(core, True)
        add(piece[len(lead) + len(core) :], False)
    return segments


def best_cuts(line: str, wanted: Sequence[str]) -> list[str]:
    """`line` cut at word boundaries into len(wanted) pieces (some may be empty), maximising the
    summed difflib similarity of each piece's words to the wanted sentence's words."""
    words, targets = line.split(), [w.split() for w in wanted]
    n, k = len(words), len(targets)
    best = [[-1.0] * (n + 1) for _ in range(k + 1)]  # best[j][i]: j pieces hold words[:i]
    back = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(1, k + 1):
        span = 2 * len(targets[j - 1]) + 5  # no piece much longer than its target
        for i in range(n + 1):
            for start in range(max(0, i - span), i + 1):
                if best[j - 1][start] < 0:
                    continue
                sim = difflib.SequenceMatcher(None, words[start:i], targets[j - 1]).ratio()
                if best[j - 1][start] + sim > best[j][i]:
                    best[j][i], back[j][i] = best[j - 1][start] + sim, start
    if best[k][n] < 0:  # more words than the spans allow: cut in proportion to the targets
        total = max(1, sum(len(t) for t in targets))
        ends = [round(n * sum(len(t) for t in targets[: j + 1]) / total) for j in range(k)]
        return [" ".join(words[a:b]) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    cuts, i = [], n
    for j in range(k, 0, -1):
        cuts.append((back[j][i], i))
        i = back[j][i]
    return [" ".join(words[a:b]) for a, b in reversed(cuts)]


def resplit(paragraph: Paragraph, output: str, alone: Sequence[str], tgt_lang: str
            ) -> tuple[list[str], dict[str, Any]]:
    """The paragraph's output cut back into one string per known sentence, and the checks."""
    in_lines, out_lines = paragraph.lines(), output.split("\n")
    lines_same = (len(in_lines) == len(out_lines)
                  and [not g for g in in_lines] == [not o.strip() for o in out_lines])
    groups = in_lines if lines_same else [list(range(len(paragraph.sentences)))]
    texts = out_lines if lines_same else [" ".join(output.split())]
    pieces: list[str] = []
    methods: list[str] = []
    found = 0
    for group, text in zip(groups, texts, strict=True):
        if not group:
            continue
        wanted = [alone[paragraph.first + i] for i in group]
        cut = [s.text for s in segment(text, tgt_lang) if s.translate]
        found += len(cut)
        if text == " ".join(wanted):
            pieces += wanted
            methods.append("exact")
        elif len(cut) == len(group):
            pieces += cut
            methods.append("segmenter")
        else:
            pieces += best_cuts(text, wanted)
            methods.append("aligned")
    exact = output == join([alone[paragraph.first + i] for i in range(len(paragraph.sentences))],
                           paragraph.separators)
    return pieces, {"sentences_in": len(paragraph.sentences), "sentences_out": found,
                    "lines_same": lines_same, "exact": exact, "methods": methods}


@dataclass(frozen=True)
class Timing:
    cpu: float  # process CPU seconds
    wall: float


def timed(fn: Callable[[], Any]) -> tuple[Timing, Any]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return Timing(time.process_time() - cpu, time.perf_counter() - wall), result


def medians(timings: Sequence[Timing]) -> Timing:
    return Timing(statistics.median(t.cpu for t in timings),
                  statistics.median(t.wall for t in timings))


def time_sentences(translator: Translator, src: list[str], beam: int
                   ) -> tuple[list[str], dict[str, Any]]:
    """The sentence-alone outputs, and the timings of translate as shipped, translate with one
    sentence per line, `segment` alone and `Translator.plan` alone."""
    as_is: list[Timing] = []
    trivial: list[Timing] = []
    seg_only: list[Timing] = []
    plan_only: list[Timing] = []
    alone: list[str] = []
    same_as_trivial = True
    for r in range(REPEATS):
        # Take turns, the order alternating, so drift on a shared machine hits both alike.
        for variant in (("as_is", "trivial") if r % 2 == 0 else ("trivial", "as_is")):
            if variant == "as_is":
                took, out = timed(lambda: translator.translate(src, beam_size=beam))
                as_is.append(took)
                alone = alone or [t.text for t in out]
            else:
                with mock.patch.object(nmt.text.plan, "segment", one_sentence_per_line):
                    took, out = timed(lambda: translator.translate(src, beam_size=beam))
                trivial.append(took)
            if alone:
                same_as_trivial &= [t.text for t in out] == alone
        seg_only.append(timed(lambda: [segment(t, translator.src_lang) for t in src])[0])
        plan_only.append(timed(lambda: translator.plan(src))[0])
    t_as_is, t_trivial = medians(as_is), medians(trivial)
    t_seg, t_plan = medians(seg_only), medians(plan_only)
    return alone, {
        "translate_as_is": [asdict(t) for t in as_is],
        "translate_one_sentence_per_line": [asdict(t) for t in trivial],
        "segment_only": [asdict(t) for t in seg_only],
        "plan_only": [asdict(t) for t in plan_only],
        "median_translate_as_is": asdict(t_as_is),
        "median_translate_trivial": asdict(t_trivial),
        "median_segment_only": asdict(t_seg), "median_plan_only": asdict(t_plan),
        # Shares of the as-shipped translate call, in CPU time.
        "segment_share": t_seg.cpu / t_as_is.cpu,
        "plan_share": t_plan.cpu / t_as_is.cpu,
        "difference_share": (t_as_is.cpu - t_trivial.cpu) / t_as_is.cpu,
        "difference_share_wall": (t_as_is.wall - t_trivial.wall) / t_as_is.wall,
        "same_outputs_with_trivial_segmenter": same_as_trivial,
    }


def evaluate(translator: Translator, paragraphs: list[Paragraph], src: list[str],
             refs: list[str], beam: int) -> dict[str, Any]:
    """Figures of one decoding: paragraph checks, BLEU both ways and the segmentation share."""
    alone, timing = time_sentences(translator, src, beam)
    texts = [p.text for p in paragraphs]
    para_took, para_out = timed(lambda: translator.translate(texts, beam_size=beam))
    units = [len(plan.sentences) for plan in translator.plan(texts)]
    hyps: list[str] = []
    records = []
    for p, translation, n_units in zip(paragraphs, para_out, units, strict=True):
        pieces, checks = resplit(p, translation.text, alone, translator.tgt_lang)
        hyps += pieces
        record = {"first": p.first, "separators": p.separators, "units": n_units, **checks,
                  "visible_ends": p.visible_ends, "warnings": translation.warnings}
        if not (checks["exact"] and n_units == len(p.sentences)):
            record |= {"source": p.text, "output": translation.text}
        records.append(record)
    bleu_para = score_metric("bleu", hyps, refs)
    bleu_alone = score_metric("bleu", alone, refs)
    visible = [i for p in paragraphs if p.visible_ends
               for i in range(p.first, p.first + len(p.sentences))]
    bleu_para_visible = score_metric("bleu", [hyps[i] for i in visible], [refs[i] for i in visible])
    bleu_alone_visible = score_metric("bleu", [alone[i] for i in visible],
                                      [refs[i] for i in visible])
    methods = [m for r in records for m in r["methods"]]
    return {
        "beam": beam,
        "paragraphs": len(paragraphs),
        "sentences": len(src),
        "units_match": sum(r["units"] == r["sentences_in"] for r in records),
        "sentences_out_match": sum(r["sentences_out"] == r["sentences_in"] for r in records),
        "lines_same": sum(r["lines_same"] for r in records),
        "exact": sum(r["exact"] for r in records),
        "resplit_lines": {m: methods.count(m) for m in ("exact", "segmenter", "aligned")},
        "paragraph_warnings": sum(len(r["warnings"]) for r in records),
        "bleu_paragraphs": bleu_para.score,
        "bleu_sentences": bleu_alone.score,
        "bleu_difference": bleu_para.score - bleu_alone.score,
        "bleu_signature": bleu_para.signature,
        "visible_paragraphs": sum(p.visible_ends for p in paragraphs),
        "visible_sentences": len(visible),
        "bleu_paragraphs_visible": bleu_para_visible.score,
        "bleu_sentences_visible": bleu_alone_visible.score,
        "bleu_difference_visible": bleu_para_visible.score - bleu_alone_visible.score,
        "seconds_paragraphs": asdict(para_took),
        "timing": timing,
        "records": records,
    }


def spread(timings: Sequence[dict[str, float]]) -> float:
    """(max - min) / median of the CPU seconds of repeated identical calls: the noise floor
    that an A/B difference must clear."""
    cpu = [t["cpu"] for t in timings]
    return (max(cpu) - min(cpu)) / statistics.median(cpu)


def summary(results: dict[str, Any]) -> str:
    rows = ["| beam | paragraphs | units = sentences in | sentences out = in | lines identical "
            "| exact | BLEU paragraphs | BLEU sentences | difference | visible ends: paragraphs "
            "| BLEU paragraphs | BLEU sentences | difference |", "|---" * 13 + "|"]
    for r in results["decodings"]:
        n = r["paragraphs"]
        rows.append(
            f"| {r['beam']} | {n} | {r['units_match']}/{n} | {r['sentences_out_match']}/{n} "
            f"| {r['lines_same']}/{n} | {r['exact']}/{n} | {r['bleu_paragraphs']:.2f} "
            f"| {r['bleu_sentences']:.2f} | {r['bleu_difference']:+.2f} "
            f"| {r['visible_paragraphs']} | {r['bleu_paragraphs_visible']:.2f} "
            f"| {r['bleu_sentences_visible']:.2f} | {r['bleu_difference_visible']:+.2f} |")
    rows += ["", "| beam | translate CPU s | spread | one-sentence-per-line CPU s | spread "
             "| segment CPU s | plan CPU s | segment share | plan share | A/B share (CPU) "
             "| A/B share (wall) |", "|---" * 11 + "|"]
    for r in results["decodings"]:
        t = r["timing"]
        rows.append(
            f"| {r['beam']} | {t['median_translate_as_is']['cpu']:.2f} "
            f"| {spread(t['translate_as_is']):.0%} "
            f"| {t['median_translate_trivial']['cpu']:.2f} "
            f"| {spread(t['translate_one_sentence_per_line']):.0%} "
            f"| {t['median_segment_only']['cpu']:.4f} | {t['median_plan_only']['cpu']:.3f} "
            f"| {t['segment_share']:.2%} | {t['plan_share']:.2%} "
            f"| {t['difference_share']:+.2%} | {t['difference_share_wall']:+.2%} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="bundle directory or checkpoint")
    parser.add_argument("--src", required=True, type=Path)
    parser.add_argument("--ref", required=True, type=Path)
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--beam", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    src = read_lines(args.src, what="source file")
    refs = read_lines(args.ref, what="reference file")
    check_same_length(src, args.src, refs, args.ref)
    load_start = os.getloadavg()
    translator = Translator.from_checkpoint(args.model, num_threads=args.threads)
    paragraphs = build_paragraphs(src, args.seed)
    seps = [s for p in paragraphs for s in p.separators]
    results: dict[str, Any] = {
        "model": args.model, "src": str(args.src), "ref": str(args.ref), "seed": args.seed,
        "threads": torch.get_num_threads(), "cores": os.cpu_count(),
        "python": platform.python_version(), "torch": torch.__version__,
        "load_start": load_start,
        "separators": {repr(s): seps.count(s) for s in SEPARATORS},
        "paragraph_sizes": {n: sum(len(p.sentences) == n for p in paragraphs)
                            for n in range(SIZES[0], SIZES[1] + 1)},
        "paragraph_set": [asdict(p) for p in paragraphs],
        "decodings": [],
    }
    for beam in args.beam:
        results["decodings"].append(evaluate(translator, paragraphs, src, refs, beam))
    results["load_end"] = os.getloadavg()
    args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    load = " ".join(f"{x:.2f}" for x in load_start)
    print(f"{args.model}: {len(paragraphs)} paragraphs of {len(src)} sentences, separators "
          f"{results['separators']}; {results['cores']} cores, {results['threads']} thread(s), "
          f"load average {load} at start\n")
    print(summary(results))


if __name__ == "__main__":
    main()
