"""Benchmarks: how gracefully models fail on text people actually send (not image captions).

Run: `python benchmarks/out_of_domain.py --model DIR [--model DIR ...] --lang de|en
[--domain general] [--beam 5] [--threads 1] --json out.json`; prints markdown tables (see
docs/evaluation/out-of-domain.md for the figures). `--write-spans` recomputes the protected
spans of `benchmarks/out_of_domain/{de,en}.spans.jsonl` from the texts (names, genres and the
parallel flags are hand-written there and kept).

The set, `benchmarks/out_of_domain/`: 60 German and 60 English texts, one per line (news,
encyclopedia, letters, chat, technical; a few of 40+ words). Line i of `de.txt` and line i of
`en.txt` translate each other where `parallel` is true in the spans files. Per model, on the
file of its source language:

- repetition loops: outputs in which some 3-gram of whitespace tokens (lowercased) occurs 3 or
  more times (the sources have none); also of target subword pieces, which sees loops inside
  a word ("Kami-Bade-Kami-Bade") and in near-repeats ("five years five years") but also flags
  harmless character-level repeats (the count of sources so flagged is shown next to it);
- output/input length ratios, in words and in the model's subwords (target/source
  SentencePiece pieces of the whole texts, no domain tag), against the same ratios on the
  model's validation set (the valid set of the domain used; pairs of at least
  `MIN_GUARD_SOURCE` source subwords, as the bundle's `metadata["length_ratio"]`): share of
  outputs (sources of at least that many subwords) outside its [p01, p99];
- protected spans kept: per kind (hand-listed names; numbers, URLs, e-mails, code, ... as
  `nmt.text.protect.find_spans` finds them in the source), the share found verbatim in the output;
- `Translation.warnings`, counted by kind (sentence numbers left out);
- cut: texts the Translator decoded in more model inputs than they have sentences (around
  verbatim spans, for models without placeholders; clauses of an over-long sentence);
- chrF and BLEU (sacrebleu defaults) on the parallel lines, for a rough view of adequacy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from nmt.data.corpus import normalize
from nmt.data.dataset import encode_corpus, read_corpus
from nmt.evaluation.metrics import score_metric
from nmt.text.protect import find_spans
from nmt.translator import MIN_GUARD_SOURCE, Translation, Translator

SET_DIR = Path(__file__).resolve().parent / "out_of_domain"
REPO = Path(__file__).resolve().parents[1]
NGRAM, REPEATS = 3, 3  # a loop: some NGRAM-gram occurs REPEATS times or more
SHOWN_KINDS = ("name", "number", "url", "email", "code")
QUANTILES = {"min": 0.0, "p05": 0.05, "median": 0.5, "p95": 0.95, "max": 1.0}


def read_set(lang: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The texts of one language and their span records (aligned line by line)."""
    texts = (SET_DIR / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in
               (SET_DIR / f"{lang}.spans.jsonl").read_text(encoding="utf-8").splitlines()]
    if len(records) != len(texts):
        raise SystemExit(f"{lang}.txt has {len(texts)} lines but {lang}.spans.jsonl has "
                         f"{len(records)}; run --write-spans")
    return texts, records


def write_spans() -> None:
    """Recomputes the built-in span kinds of every line; names, genre and parallel are kept."""
    for lang in ("de", "en"):
        texts, records = read_set(lang)
        with open(SET_DIR / f"{lang}.spans.jsonl", "w", encoding="utf-8") as out:
            for i, (text, old) in enumerate(zip(texts, records, strict=True), start=1):
                record: dict[str, Any] = {"line": i, "genre": old["genre"],
                                          "parallel": old["parallel"], "name": old["name"]}
                for span in find_spans(text):
                    kinds = record.setdefault(span.kind, [])
                    if span.text not in kinds:
                        kinds.append(span.text)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"wrote {SET_DIR / f'{lang}.spans.jsonl'}")


def repeated_ngram(tokens: list[str]) -> tuple[str, int] | None:
    """The most frequent NGRAM-gram of `tokens` when it occurs REPEATS times or more, else None."""
    counts = Counter(tuple(tokens[i : i + NGRAM]) for i in range(len(tokens) - NGRAM + 1))
    if not counts:
        return None
    gram, n = counts.most_common(1)[0]
    return (" ".join(gram), n) if n >= REPEATS else None


def quantile(sorted_values: list[float], q: float) -> float:
    """The same index rule as `EncodedCorpus.length_ratio` (its p01 is this at q=0.01)."""
    return sorted_values[int(q * (len(sorted_values) - 1))]


def distribution(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {k: round(quantile(ordered, q), 4) for k, q in QUANTILES.items()} if ordered else {}


def span_status(span: str, kind: str, output: str) -> str:
    """"kept": the span occurs verbatim in the output (as a span of the same kind there, for
    the built-in kinds; as a whole word sequence, for names); "glued": its text is there but
    run together with a neighbouring word ("14Faming"); else "missing"."""
    if kind == "name":
        found = re.search(rf"(?<!\w){re.escape(span)}(?!\w)", output) is not None
    else:
        found = span in {s.text for s in find_spans(output)}
    return "kept" if found else "glued" if span in output else "missing"


def validation_ranges(translator: Translator, domain: str | None) -> dict[str, Any]:
    """Target/source ratios (subwords, words) on the validation set of `domain`."""
    sets = translator.config.data.valid_sets()
    chosen = next((v for v in sets if domain is not None and v.tag == domain), None)
    chosen = chosen or (sets[0] if sets else None)
    if chosen is None:
        return {"set": None}
    files = {k: _resolve(getattr(chosen, k)) for k in ("src", "tgt", "tsv")
             if getattr(chosen, k) is not None}
    if not all(Path(f).exists() for f in files.values()):
        return {"set": chosen.name, "missing": list(files.values())}
    moved = dataclasses.replace(chosen, **files)
    enc = encode_corpus(read_corpus(moved, "error"), translator.src_tokenizer,
                        translator.tgt_tokenizer, max_len=None, max_ratio=None, tag=chosen.tag)
    skip = 1 if chosen.tag else 0
    pairs = [(s, t, ss, tt) for s, t, ss, tt in zip(enc.src_ids, enc.tgt_ids, enc.src_text,
                                                    enc.tgt_text, strict=True)
             if len(s) - skip >= MIN_GUARD_SOURCE]
    subword = sorted(len(t) / (len(s) - skip) for s, t, _, _ in pairs)
    word = sorted(len(tt.split()) / max(1, len(ss.split())) for _, _, ss, tt in pairs)
    out: dict[str, Any] = {"set": chosen.name, "tag": chosen.tag, "pairs": len(pairs),
                           "files": list(files.values()),
                           "metadata": translator.metadata.get("length_ratio")}
    for name, values in (("subword", subword), ("word", word)):
        out[name] = {"p01": round(quantile(values, 0.01), 4),
                     "p50": round(values[len(values) // 2], 4),
                     "p99": round(quantile(values, 0.99), 4),
                     "mean": round(statistics.fmean(values), 4)}
    return out


def _resolve(path: str) -> str:
    """A config's data path: as given when it exists (relative to the working directory),
    else relative to the repository root."""
    return path if Path(path).exists() else str(REPO / path)


def warning_kind(warning: str) -> str:
    return re.sub(r"\d+", "N", re.sub(r"^sentence \d+: ", "", warning))


def line_record(translator: Translator, text: str, record: dict[str, Any],
                result: Translation) -> dict[str, Any]:
    src_subwords = len(translator.src_tokenizer.encode([normalize(text)])[0])
    out_subwords = len(translator.tgt_tokenizer.encode([normalize(result.text)])[0])
    spans = {kind: {span: span_status(span, kind, result.text) for span in values}
             for kind, values in record.items()
             if kind not in ("line", "genre", "parallel") and values}
    loop = repeated_ngram(result.text.lower().split())
    piece_loop = repeated_ngram(translator.tgt_tokenizer.encode_pieces(normalize(result.text)))
    source_piece_loop = repeated_ngram(translator.src_tokenizer.encode_pieces(normalize(text)))
    plan = translator.plan([text])[0]
    return {"line": record["line"], "genre": record["genre"], "source": text,
            "output": result.text, "source_words": len(text.split()),
            "output_words": len(result.text.split()), "source_subwords": src_subwords,
            "output_subwords": out_subwords,
            "word_ratio": round(len(result.text.split()) / max(1, len(text.split())), 4),
            "subword_ratio": round(out_subwords / max(1, src_subwords), 4),
            "sentences": len(plan.sentences),
            "units": sum(not p.verbatim for s in plan.sentences for p in s.parts),
            "loop": list(loop) if loop else None,
            "subword_loop": list(piece_loop) if piece_loop else None,
            "source_subword_loop": source_piece_loop is not None,
            "spans": spans, "warnings": result.warnings}


def summarize(lines: list[dict[str, Any]], valid: dict[str, Any]) -> dict[str, Any]:
    n = len(lines)
    summary: dict[str, Any] = {
        "outputs": n,
        "loops": sum(r["loop"] is not None for r in lines),
        "source_loops": sum(repeated_ngram(r["source"].lower().split()) is not None
                            for r in lines),
        "subword_loops": sum(r["subword_loop"] is not None for r in lines),
        "source_subword_loops": sum(r["source_subword_loop"] for r in lines),
        # Texts the Translator decoded in more inputs than sentences: the text between
        # verbatim spans (models without placeholders) or clauses of an over-long sentence.
        "cut": sum(r["units"] > r["sentences"] for r in lines),
        "word_ratio": distribution([r["word_ratio"] for r in lines]),
        "subword_ratio": distribution([r["subword_ratio"] for r in lines]),
    }
    eligible = [r for r in lines if r["source_subwords"] >= MIN_GUARD_SOURCE]
    for unit in ("subword", "word"):
        bounds = valid.get(unit)
        if bounds:
            out = [r["line"] for r in eligible
                   if not bounds["p01"] <= r[f"{unit}_ratio"] <= bounds["p99"]]
            summary[f"{unit}_outside"] = {"eligible": len(eligible), "outside": len(out),
                                          "below": sum(r[f"{unit}_ratio"] < bounds["p01"]
                                                       for r in eligible), "lines": out}
    spans: dict[str, Counter[str]] = {}
    for r in lines:
        for kind, found in r["spans"].items():
            spans.setdefault(kind, Counter()).update(found.values())
    summary["spans_kept"] = {k: {"kept": c["kept"], "glued": c["glued"], "total": c.total()}
                             for k, c in sorted(spans.items())}
    summary["outputs_with_warnings"] = sum(bool(r["warnings"]) for r in lines)
    summary["warnings"] = dict(Counter(warning_kind(w) for r in lines for w in r["warnings"]))
    genres: dict[str, dict[str, int]] = {}
    for r in lines:
        g = genres.setdefault(r["genre"], {"outputs": 0, "loops": 0, "outside": 0})
        g["outputs"] += 1
        g["loops"] += r["loop"] is not None
        g["outside"] += r["line"] in summary.get("subword_outside", {}).get("lines", [])
    summary["genres"] = genres
    return summary


def parallel_scores(lines: list[dict[str, Any]], records: list[dict[str, Any]],
                    tgt_lang: str) -> dict[str, Any]:
    """chrF and BLEU of the outputs whose line is parallel, against the other file's line."""
    path = SET_DIR / f"{tgt_lang}.txt"
    if not path.exists():
        return {}
    refs = path.read_text(encoding="utf-8").splitlines()
    chosen = [i for i, r in enumerate(records) if r["parallel"]]
    if not chosen:
        return {}
    hyps = [lines[i]["output"] for i in chosen]
    refs_chosen = [refs[i] for i in chosen]
    return {"lines": len(chosen),
            **{m: round(score_metric(m, hyps, refs_chosen).score, 1) for m in ("chrf", "bleu")}}


def evaluate_model(path: str, lang: str, args: argparse.Namespace) -> dict[str, Any]:
    translator = Translator.from_checkpoint(path, num_threads=args.threads)
    if translator.src_lang != lang:
        raise SystemExit(f"{path} translates {translator.src_lang}->{translator.tgt_lang}, "
                         f"not from {lang}")
    domain = args.domain if translator.domains else None
    # The domain the Translator falls back on when given None (see `_domain_prefix`).
    used = domain or translator.default_domain or next(iter(translator.domains), None)
    texts, records = read_set(lang)
    start = time.perf_counter()
    results = translator.translate(texts, beam_size=args.beam, domain=domain)
    seconds = time.perf_counter() - start
    valid = validation_ranges(translator, used)
    lines = [line_record(translator, t, r, res)
             for t, r, res in zip(texts, records, results, strict=True)]
    return {"model": path, "src_lang": translator.src_lang, "tgt_lang": translator.tgt_lang,
            "domain": used, "beam": args.beam, "seconds": round(seconds, 1),
            "validation": valid, "summary": summarize(lines, valid),
            "parallel": parallel_scores(lines, records, translator.tgt_lang), "lines": lines}


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}% ({part}/{whole})" if whole else "–"


def _kept(counts: dict[str, int] | None) -> str:
    if not counts or not counts["total"]:
        return "–"
    kept, total = counts["kept"], counts["total"]
    glued = f", {counts['glued']} glued" if counts["glued"] else ""
    return f"{100 * kept / total:.0f}% ({kept}/{total}{glued})"


def _dist(d: dict[str, float]) -> str:
    return " / ".join(f"{d[k]:.2f}" for k in QUANTILES) if d else "–"


def _range(valid: dict[str, Any], unit: str) -> str:
    b = valid.get(unit)
    return f"{b['p01']:.2f} – {b['p99']:.2f}" if b else "–"


def markdown(report: dict[str, Any]) -> str:
    models = report["models"]
    head = ["| model | domain | loops (target < 1%) | subword loops; sources flagged "
            "| cut (inputs > sentences) | subword ratio min / p05 / median / p95 / max "
            "| validation p01 – p99 | outside | below p01 |",
            "|---|---|---:|---:|---:|---|---|---:|---:|"]
    for m in models:
        s, out = m["summary"], m["summary"].get("subword_outside", {})
        head.append(f"| {m['model']} | {m['domain'] or '–'} | {_pct(s['loops'], s['outputs'])} "
                    f"| {_pct(s['subword_loops'], s['outputs'])}; {s['source_subword_loops']} "
                    f"| {_pct(s['cut'], s['outputs'])} | {_dist(s['subword_ratio'])} "
                    f"| {_range(m['validation'], 'subword')} "
                    f"| {_pct(out.get('outside', 0), out.get('eligible', 0))} "
                    f"| {out.get('below', '–')} |")
    words = ["| model | word ratio min / p05 / median / p95 / max | validation p01 – p99 "
             "| outside |", "|---|---|---|---:|"]
    for m in models:
        s, out = m["summary"], m["summary"].get("word_outside", {})
        words.append(f"| {m['model']} | {_dist(s['word_ratio'])} | "
                     f"{_range(m['validation'], 'word')} "
                     f"| {_pct(out.get('outside', 0), out.get('eligible', 0))} |")
    spans = ["| model | kept: " + " | ".join(SHOWN_KINDS) + " | other | parallel chrF / BLEU "
             "| with warnings | seconds |", "|---|" + "---:|" * (len(SHOWN_KINDS) + 4)]
    for m in models:
        s = m["summary"]
        cells = [_kept(s["spans_kept"].get(k)) for k in SHOWN_KINDS]
        other = [v for k, v in s["spans_kept"].items() if k not in SHOWN_KINDS]
        cells.append(_kept({key: sum(v[key] for v in other) for key in ("kept", "glued", "total")}))
        par = m["parallel"]
        cells.append(f"{par['chrf']} / {par['bleu']} ({par['lines']})" if par else "–")
        cells.append(_pct(s["outputs_with_warnings"], s["outputs"]))
        spans.append(f"| {m['model']} | " + " | ".join(cells) + f" | {m['seconds']} |")
    notes = []
    for m in models:
        s = m["summary"]
        warn = "; ".join(f"{n} × {k}" for k, n in s["warnings"].items()) or "none"
        genres = ", ".join(f"{g} {v['loops']}/{v['outside']}/{v['outputs']}"
                           for g, v in s["genres"].items())
        notes.append(f"- {m['model']}: warnings: {warn}. Per genre, loops / outside / outputs: "
                     f"{genres}.")
    return "\n".join([*head, "", *words, "", *spans, "", *notes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="bundle directory (repeatable)")
    parser.add_argument("--lang", choices=("de", "en"), help="the source language")
    parser.add_argument("--domain", default=None,
                        help="domain tag for models that have tags (others ignore it)")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument("--write-spans", action="store_true",
                        help="recompute the spans files from the texts and exit")
    args = parser.parse_args()
    if args.write_spans:
        write_spans()
        return
    if not args.model or not args.lang or not args.json:
        parser.error("--model, --lang and --json are required")
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report: dict[str, Any] = {
        "lang": args.lang, "beam": args.beam, "domain": args.domain, "threads": args.threads,
        "cores": os.cpu_count(), "python": platform.python_version(),
        "torch": torch.__version__, "uptime_start": uptime, "load_start": os.getloadavg(),
        "loop_definition": f"a {NGRAM}-gram of lowercased whitespace tokens occurring "
                           f">= {REPEATS} times", "min_source_subwords": MIN_GUARD_SOURCE,
        "models": [evaluate_model(path, args.lang, args) for path in args.model],
    }
    report["load_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{args.lang} set, beam {args.beam}, {args.threads} thread(s), {report['cores']} "
          f"cores; at start: {uptime}\n")
    print(markdown(report))


if __name__ == "__main__":
    main()
