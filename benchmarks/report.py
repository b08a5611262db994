"""Benchmarks: renders RESULTS.md from the stored stage results (figures, ratios, targets)."""

from __future__ import annotations

from pathlib import Path

PEER_NAMES = {"opennmt-py": "OpenNMT-py 3.5.1", "joeynmt": "JoeyNMT 2.3.0", "nmt": "nmt"}


def _f(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def _threads(n: int) -> str:
    return f"{n} torch thread{'' if n == 1 else 's'}"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def write(path: Path, stages: dict[str, dict | None], *, quick: bool, elapsed: float) -> None:
    lines: list[str] = []
    add = lines.append
    setup = stages.get("setup") or {}
    add("# Benchmarks: nmt side by side with OpenNMT-py and JoeyNMT")
    add("")
    if quick:
        add("**--quick run: tiny models and data slices. These figures test the pipeline; they "
            "say nothing about speed or quality.**")
        add("")
    add("Written by `python benchmarks/run.py`"
        + (f" (stages run in this write: {elapsed / 60:.1f} min)" if elapsed >= 6 else "")
        + ". Each section names when its figures were taken and what else "
        "was using the CPU then. Every cross-system figure comes from one run in which the "
        "systems take turns, the order rotating each repetition; the figure is the median, the "
        "spread is (max - min) / median. The ratio is the result: absolute numbers drift on a "
        "shared machine.")
    add("")
    figures = ("translate", "compute", "train", "service")
    loaded = any(len((stages.get(name) or {}).get("machine_load") or []) > 1 for name in figures)
    if loaded and not quick:
        add("**The machine was loaded while these figures were taken**: other jobs were "
            "running on its two cores (each section lists them). The figures therefore use one "
            "torch thread per system (`--threads 1`): with two threads each system would "
            "contend with those jobs for both cores and the timings would measure the "
            "scheduler. Ratios between systems measured in the same alternating run remain "
            "meaningful; absolute rates are lower than on an idle machine. For two-thread figures "
            "on an idle machine, run `python benchmarks/run.py STAGE --threads 2` for the "
            "stages translate, compute, train and service (the trained models are kept).")
        add("")
    _machine(add, setup, stages.get("models"))
    targets: list[tuple[str, str, str, bool | None]] = []
    _models(add, stages.get("models"))
    _translate(add, stages.get("translate"), targets)
    for peer in ("opennmt-py", "joeynmt"):  # `run.py translate --peer X` runs
        _translate(add, stages.get(f"translate-{peer}"),
                   targets if not stages.get("translate") else [],
                   title=f"Translation: nmt vs {PEER_NAMES[peer]} alone (`translate --peer`)")
    _compute(add, stages.get("compute"))
    _train(add, stages.get("train"), targets)
    _service(add, stages.get("service"), targets)
    _gpu(add, setup)
    add("## Targets")
    add("")
    add("| target | measured | |")
    add("|---|---|---|")
    for name, want, got, ok in targets:
        add(f"| {name} ({want}) | {got} | {_met(ok)} |")
    add("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _load_note(add, stage: dict) -> None:
    busy = stage.get("machine_load") or []
    when = stage.get("finished", "?")
    if busy:
        add(f"_Taken {when}; machine at the end (processes: CPU share over their lifetime): "
            + "; ".join(f"`{b}`" for b in busy) + "._")
    else:
        add(f"_Taken {when}; no other busy process at the end of the stage._")
    add("")


def _gpu_name(setup: dict) -> str | None:
    """The GPU the setup stage found, or None (older results say "none (...)")."""
    gpu = (setup.get("machine") or {}).get("gpu")
    return None if not gpu or str(gpu).startswith("none") else str(gpu)


def _gpu(add, setup: dict) -> None:
    add("## GPU")
    add("")
    gpu = _gpu_name(setup)
    if gpu is None:
        add("No GPU on this machine: no GPU figures. (The peers' notes quote H100 figures "
            "measured elsewhere; they are not reproduced here.)")
    else:
        add(f"This machine has a GPU ({gpu}), but every figure above was taken on the CPU "
            "(`-gpu -1` for OpenNMT-py, `--device cpu` for nmt): the benchmark compares the "
            "CPU service the project ships. No GPU figures.")
    add("")


def _parameters(models: dict | None, system: str) -> str:
    """The parameter count stored with the system's model (counted from its checkpoint)."""
    ck = ((models or {}).get("checkpoints") or {}).get(system) or {}
    return f"{ck['parameters']:,}" if isinstance(ck.get("parameters"), int) else "-"


def _machine(add, setup: dict, models: dict | None) -> None:
    add("## Machine and versions")
    add("")
    m = setup.get("machine", {})
    add("| | |")
    add("|---|---|")
    for key in ("cpu", "memory", "os", "python", "torch", "gpu"):
        add(f"| {key} | {m.get(key, '-')} |")
    add(f"| nmt | commit `{setup.get('nmt_commit', '?')}` (project Python) |")
    for peer, versions in (setup.get("peers") or {}).items():
        v = ", ".join(f"{k} {val}" for k, val in versions.items())
        add(f"| {PEER_NAMES[peer]} | own venv under benchmarks/work/venvs/{peer}: {v} |")
    add("")
    add("Same for all three: Multi30k de->en (data/multi30k: train 29,000, val 1,014, "
        "test_2016_flickr 1,000), one joint SentencePiece unigram model of 8,000 pieces trained "
        "by the benchmark with nmt's tokenizer code and given to all three (peers get a vocab "
        "file of exactly its pieces), embeddings 256, bidirectional GRU encoder 256 per "
        "direction, GRU decoder 512, Bahdanau attention, dropout 0.3, Adam 1e-3, clip 1.0, "
        "label smoothing 0.1, 4,096-token batches, the same torch (2.13 CPU) and thread count.")
    add("")
    add("| system | parameters (counted from its checkpoint) | differences that matter |")
    add("|---|---|---|")
    add(f"| nmt | {_parameters(models, 'nmt')} | config `configs/multi30k-de-en.yaml` as "
        "shipped: **no input feeding** (the decoder GRU sees only the previous token, so "
        "training runs it over the whole target in one call), **output layer tied** to the "
        "target embedding through a 512->256 projection; bridge tanh(Linear) |")
    add(f"| OpenNMT-py | {_parameters(models, 'opennmt-py')} | input feeding, untied 512->8000 "
        "output, bridge Linear+ReLU, mlp attention without tanh on the output; sorts each data "
        "bucket by length; decoding `-length_penalty wu -alpha 1.0 -max_length 60` |")
    add(f"| JoeyNMT | {_parameters(models, 'joeynmt')} | input feeding, untied output, "
        "bridge tanh(Linear 512->512); token batches count padding and are not bucketed by "
        "length; "
        "decoding beam alpha 1.0, max output 100 |")
    add("")
    add("nmt decodes with GNMT length penalty alpha 1.0 and max length 1.5 x source + 10, in "
        "length-sorted batches of at most 64 sentences. The peers' install traps "
        "(shared/peers/*.md) are handled by `benchmarks/peers.py` and the small wrappers in "
        "`benchmarks/entry/`; the peers are never project dependencies.")
    add("")


def _models(add, models: dict | None) -> None:
    if not models:
        return
    add("## Models compared")
    add("")
    minutes = models.get("budget_minutes")
    extra = models.get("extra_peer_minutes", 0)
    extra_nmt = models.get("extra_nmt_minutes", 0)
    add(f"Full convergence of three systems on 2 CPU cores does not fit in a benchmark "
        f"session, so each system trained from scratch for the same wall-clock budget "
        f"({minutes:g} min), all three at once with 1 thread each, so they shared the machine "
        f"alike" + (f"; then the two peers, which make fewer updates per minute, went on "
                    f"together from their checkpoints (weights and optimizer) for {extra:g} more "
                    f"minutes" if extra else "")
        + (f"; then nmt went on alone for {extra_nmt:g} more minutes" if extra_nmt else "")
        + f" (in all: peers {minutes + extra:g} min each, nmt {minutes + extra_nmt:g} min)"
        + ". The newest checkpoint of each (saved every 20 updates) is what the decoding "
        "figures use. These are early-training models, below converged figures (the peers' "
        "notes: 36-40 BLEU after about 20 epochs on a GPU); the translation tables give each "
        "model's validation and test BLEU beside its speed. Output length follows quality (an "
        "undertrained model stops early or repeats), so compare target tokens/s as well as "
        "sentences/s.")
    for system, more in (models.get("later_training") or {}).items():
        add("")
        add(f"Later, {PEER_NAMES.get(system, system)} alone: {more}")
    if models.get("note"):  # written by hand into models.json: how comparable the models are
        add("")
        add(models["note"])
    add("")
    add("| system | updates reached | checkpoint |")
    add("|---|---|---|")
    for system, ck in (models.get("checkpoints") or {}).items():
        add(f"| {PEER_NAMES.get(system, system)} | {ck.get('step', '-')} | "
            f"`{Path(ck.get('path', '-')).name}` |")
    add("")
    _load_note(add, models)


def _translate(add, tr: dict | None, targets: list, title: str = "") -> None:
    if not tr:
        return
    n = tr.get("sentences", 1000)
    add("## " + (title or f"Translation speed and quality (test_2016_flickr, {n:,} sentences, "
                          "batch 64)"))
    add("")
    add(f"{_threads(tr['threads'])} for every system; {tr['reps']} timed repetitions after an "
        "untimed warm-up; time covers translation only (model loading excluded, for all). "
        "Target tokens are counted with the shared SentencePiece model on each system's "
        "output. BLEU: sacreBLEU 13a, cased, detokenised output.")
    add("")
    for beam, rows in tr["beams"].items():
        label = "greedy" if beam == "1" else f"beam {beam}"
        add(f"### {label}")
        add("")
        add("| system | sentences/s | spread | target tokens/s | tokens per sentence | BLEU | "
            "valid BLEU | vs OpenNMT-py: sent/s, tok/s | vs JoeyNMT: sent/s, tok/s |")
        add("|---|---|---|---|---|---|---|---|---|")
        peer = {p: (rows.get(p) or {}) for p in ("opennmt-py", "joeynmt")}
        onmt = peer["opennmt-py"].get("sentences_per_s", {}).get("median")
        joey = peer["joeynmt"].get("sentences_per_s", {}).get("median")
        for name, r in rows.items():
            sps, tps = r["sentences_per_s"]["median"], r["tokens_per_s"]["median"]
            vs = [f"{_ratio(sps, p.get('sentences_per_s', {}).get('median'))}, "
                  f"{_ratio(tps, p.get('tokens_per_s', {}).get('median'))}"
                  for p in peer.values()]
            add(f"| {PEER_NAMES.get(name, name)} | {_f(sps)} "
                f"| {100 * r['sentences_per_s']['spread']:.0f}% | {_f(tps, 0)} "
                f"| {_f(tps / sps, 1)} | {_f(r['bleu'], 2)} | {_f(r.get('valid_bleu'), 2)} "
                f"| {vs[0]} | {vs[1]} |")
        add("")
        ours = rows.get("nmt")
        want_onmt = 2.5 if beam == "1" else 2.0
        if ours and onmt:
            ratio = ours["sentences_per_s"]["median"] / onmt
            bleu_ok = ours["bleu"] >= rows["opennmt-py"]["bleu"]
            targets.append((f"{label}: nmt vs OpenNMT-py, sentences/s, equal or better BLEU",
                            f">= {want_onmt}x", f"{ratio:.2f}x, BLEU {ours['bleu']:.2f} vs "
                            f"{rows['opennmt-py']['bleu']:.2f}", ratio >= want_onmt and bleu_ok))
        if ours and joey:
            ratio = ours["sentences_per_s"]["median"] / joey
            bleu_ok = ours["bleu"] >= rows["joeynmt"]["bleu"]
            targets.append((f"{label}: nmt vs JoeyNMT, sentences/s, equal or better BLEU",
                            ">= 5x", f"{ratio:.2f}x, BLEU {ours['bleu']:.2f} vs "
                            f"{rows['joeynmt']['bleu']:.2f}", ratio >= 5 and bleu_ok))
        q = rows.get("nmt int8")
        if ours and q:
            ratio = q["sentences_per_s"]["median"] / ours["sentences_per_s"]["median"]
            loss = ours["bleu"] - q["bleu"]
            targets.append((f"{label}: nmt int8 vs fp32", ">= 1.5x, <= 0.5 BLEU loss",
                            f"{ratio:.2f}x, BLEU {loss:+.2f} lost", ratio >= 1.5 and loss <= 0.5))
        d = rows.get("nmt default-kernels")
        if ours and d:
            add(f"nmt's decoding kernels (oneDNN kernels and a one-step GRU cell in the "
                f"decoding path, `nmt/models/kernels.py`) against torch's default kernels, same "
                f"run: {_ratio(ours['sentences_per_s']['median'], d['sentences_per_s']['median'])}"
                f" (BLEU {ours['bleu']:.2f} vs {d['bleu']:.2f}).")
            add("")
    _load_note(add, tr)


def _compute(add, c: dict | None) -> None:
    if not c:
        return
    add("## Greedy decoding against the machine's compute limit")
    add("")
    g = c["gemm_gflops"]
    add(f"Counted from the model's shapes: {c['flops_per_target_token'] / 1e6:.1f} MFLOP per "
        f"target token (encoder share included; {c['flops_total'] / 1e9:.1f} GFLOP for the "
        f"test set). GEMM rate at the decoder's shapes (64 rows), {_threads(c['threads'])}: "
        f"{g['onednn']:.1f} GFLOP/s with oneDNN (what nmt uses), {g['default']:.1f} GFLOP/s "
        f"with torch's default (MKL) kernels.")
    if "achieved_gflops" in c:
        add(f"Greedy translation achieves {c['achieved_gflops']:.1f} GFLOP/s, "
            f"**{100 * c['fraction_of_gemm']:.0f}% of the measured GEMM rate**; the rest is "
            "softmax, search bookkeeping, and matrix products shrinking as sentences finish.")
    add("")
    _load_note(add, c)


def _train(add, t: dict | None, targets: list) -> None:
    if not t:
        return
    add("## Training throughput")
    add("")
    add(f"Target tokens/s (non-padding target tokens, EOS included, as each system reports "
        f"them in its own log), {_threads(t['threads'])}, 4,096-token batches as each system "
        f"counts them, each run {t['steps']} updates from scratch, the first {t['log_every']} "
        f"dropped as warm-up; systems alternating. Peak RSS of the training process (wait4).")
    add("")
    add("| system | target tokens/s | runs | peak RSS MiB | vs OpenNMT-py | vs JoeyNMT |")
    add("|---|---|---|---|---|---|")
    import statistics

    med = {s: statistics.median(r["tokens_per_s"]) for s, r in t["systems"].items()}
    for s, r in t["systems"].items():
        add(f"| {PEER_NAMES.get(s, s)} | {_f(med[s], 0)} | "
            f"{', '.join(f'{v:.0f}' for v in r['tokens_per_s'])} | "
            f"{_f(max(r['peak_rss_mib']), 0)} | {_ratio(med[s], med.get('opennmt-py'))} | "
            f"{_ratio(med[s], med.get('joeynmt'))} |")
    add("")
    if "opennmt-py" in med:
        ratio = med["nmt"] / med["opennmt-py"]
        targets.append(("training target tokens/s vs OpenNMT-py", ">= 2x", f"{ratio:.2f}x",
                        ratio >= 2))
    _load_note(add, t)


_LOAD_TOOLS = {
    "wrk": "`wrk -t1 -cC` (Debian's wrk 4.1, one thread, script benchmarks/wrk/translate.lua)",
    "httpx": "an asyncio httpx client (wrk was not installed)",
}


def _service(add, s: dict | None, targets: list) -> None:
    if not s:
        return
    add("## Service")
    add("")
    add(f"`nmt serve` on 127.0.0.1, {_threads(s['threads'])}, model: {s['load_model']}. "
        f"Load: {_LOAD_TOOLS[s.get('load_tool', 'httpx')]} keeping C single-sentence "
        f"`POST /v1/translate` requests in flight (closed loop: each connection sends its next "
        f"request when the previous one answers), {s['seconds_per_cell']:g} s per cell after a "
        f"short warm-up, "
        f"{s['reps']} rounds alternating the batched and the unbatched (`NMT_BATCHING=false`) "
        f"server; medians.")
    add("")
    for label, load in s["load"].items():
        name = "beam 5 (the model's default)" if label == "default" else (
            "greedy (`beam_size: 1`)" if label == "1" else f"beam {label}")
        add(f"### {name}")
        add("")
        add("| concurrency | batched req/s | p50 ms | p99 ms | unbatched req/s | p50 ms | "
            "p99 ms | req/s ratio |")
        add("|---|---|---|---|---|---|---|---|")
        for c in ("1", "8", "32"):
            b, u = load["batched"][c], load["unbatched"][c]
            add(f"| {c} | {_f(b['requests_per_s'])} | {_f(b['p50_ms'], 0)} | "
                f"{_f(b['p99_ms'], 0)} | {_f(u['requests_per_s'])} | {_f(u['p50_ms'], 0)} | "
                f"{_f(u['p99_ms'], 0)} | {_ratio(b['requests_per_s'], u['requests_per_s'])} |")
        add("")
        b32, u32, u1 = load["batched"]["32"], load["unbatched"]["32"], load["unbatched"]["1"]
        ratio = b32["requests_per_s"] / u32["requests_per_s"]
        p99 = b32["p99_ms"] / u1["p99_ms"]
        targets.append((f"service, {name}, c=32: micro-batching vs unbatched requests/s",
                        ">= 4x", f"{ratio:.2f}x", ratio >= 4))
        targets.append((f"service, {name}: batched c=32 p99 vs unbatched c=1 p99", "<= 2x",
                        f"{p99:.2f}x ({b32['p99_ms']:.0f} vs {u1['p99_ms']:.0f} ms; unbatched "
                        f"c=32 p99 {u32['p99_ms']:.0f} ms)", p99 <= 2))
    st = s["startup_seconds"]
    add(f"Start-up, `nmt serve` launch to `/ready` 200, models "
        f"{', '.join(s['startup_models'])}: median {st['median']:.2f} s (min {st['min']:.2f}, "
        f"max {st['max']:.2f}). Peak RSS of the server with those models loaded: "
        f"{s['rss_after_load_mib']:.0f} MiB; the load-test server (one model) after the load: "
        f"{s.get('peak_rss_under_load_mib', 0):.0f} MiB.")
    if s.get("startup_measured"):
        add(f"(Start-up and the RSS with the shipped models were measured at "
            f"{s['startup_measured']}, after the shipped models landed, 3 starts.)")
    if s["startup_models"] == ["bench model"]:
        add("The shipped default models (models/) were not there yet when this ran (they are "
            "still training), so start-up and RSS are for one model, the benchmark's nmt model "
            "(the same architecture and size as the shipped de-en model); with the two shipped "
            "models, expect about one more model's weights (~30 MiB float32) on top.")
    add("")
    _load_note(add, s)
