"""Tests for benchmarks/equal_steps.py and nmt's forced-length worker: the flags each system gets,
the step-count check, the markdown section, and that nmt really ends every output at step N."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from benchmarks.decoding import worker_argv
from benchmarks.entry.nmt_entry import end_after, force_steps
from benchmarks.equal_steps import (
    check_steps,
    render,
    round_ratios,
    row_names,
    step_summary,
)
from benchmarks.workspace import Workspace
from nmt.tokenization import EOS_ID
from nmt.translator import Translator


def _argv(tmp_path: Path, system: str, steps: int) -> list[str]:
    return worker_argv(system, "model", Workspace(tmp_path / "ws"), out_dir=tmp_path,
                       steps=steps)


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_the_peer_is_forced_to_n_tokens_without_its_length_ratio_cap(tmp_path: Path) -> None:
    forced, natural = _argv(tmp_path, "opennmt-py", 20), _argv(tmp_path, "opennmt-py", 0)
    assert [_flag(forced, f) for f in ("-min_length", "-max_length", "-max_length_ratio")] == [
        "20", "20", "0"]
    assert forced.count("-max_length") == 1
    assert _flag(natural, "-max_length") == "60" and "-min_length" not in natural
    # Both workers run side by side: each writes its own -output file.
    assert _flag(forced, "-output") != _flag(natural, "-output")


def test_nmt_gets_the_step_count_and_joeynmt_cannot_be_forced(tmp_path: Path) -> None:
    assert _flag(_argv(tmp_path, "nmt", 20), "--equal-steps") == "20"
    assert "--equal-steps" not in _argv(tmp_path, "nmt", 0)
    with pytest.raises(ValueError, match="joeynmt"):
        _argv(tmp_path, "joeynmt", 20)


def test_end_after_allows_only_eos_from_the_nth_token() -> None:
    score = end_after(3, vocab_size=10)
    before = score(torch.zeros(4, 2, dtype=torch.long), torch.arange(4))
    at = score(torch.zeros(4, 3, dtype=torch.long), torch.arange(4))
    assert bool((before == 0).all())
    assert at[0, EOS_ID] == 0 and int(torch.isinf(at).sum()) == 9


@pytest.mark.parametrize("beam", [1, 3])
def test_forced_nmt_ends_every_output_after_exactly_n_minus_one_tokens(
        tiny_bundle: Path, beam: int) -> None:
    translator = Translator.from_checkpoint(tiny_bundle)
    scorer = force_steps(translator, 7)
    lines = ["Ein mann fährt fahrrad.", "Der hund rennt im park auf dem sofa und lacht.",
             "Zwei frauen.", "Eine katze schläft auf dem sofa, die kinder lachen im park."]
    out = translator.translate(lines, beam_size=beam, step_scorer=scorer)
    assert [len(t.candidates[0].tokens) for t in out] == [6] * len(lines)  # + EOS: 7 steps


def _counted(histogram: dict[str, int], *, units: int = 100, calls: int = 140) -> dict:
    steps = [int(k) for k, v in histogram.items() for _ in range(v)]
    return {"steps": step_summary(steps), "units": units, "decoder_calls": calls}


def test_round_ratios_compare_the_two_rows_within_each_round() -> None:
    rows = {"a": {"seconds_per_round": [1.0, 4.0]}, "b": {"seconds_per_round": [2.0, 6.0]}}
    assert round_ratios(rows, "a", "b") == [2.0, 1.5]


def test_check_steps_passes_only_when_every_output_took_n_steps() -> None:
    # 100 sentences in batches of 64: 2 batches x 20 steps = 40 decoder calls.
    assert check_steps(_counted({"20": 100}, calls=40), steps=20, sentences=100) == []
    mixed = check_steps(_counted({"20": 86, "21": 14}, calls=42), steps=20, sentences=100)
    assert len(mixed) == 2 and "'21': 14" in mixed[0] and "42 decoder calls" in mixed[1]
    split = check_steps(_counted({"20": 101}, units=101, calls=40), steps=20, sentences=100)
    assert any("101 decoding units" in p for p in split)


def _row(rate: float, histogram: dict[str, int]) -> dict:
    # 100 sentences: the rounds took 100/rate seconds, then twice and half as long.
    return {"sentences_per_s": {"median": rate, "max": 2 * rate, "spread": 0.05},
            "seconds_per_round": [100 / rate, 200 / rate, 50 / rate],
            "counted": _counted(histogram, calls=40)}


def test_render_gives_one_row_per_search_and_length_with_the_ratio() -> None:
    names = list(row_names(20))
    rows = {names[0]: _row(300.0, {"12": 60, "15": 40}), names[1]: _row(100.0, {"25": 100}),
            names[2]: _row(250.0, {"20": 100}), names[3]: _row(125.0, {"20": 99, "19": 1})}
    stage = {"steps": 20, "threads": 2, "reps": 3, "sentences": 100, "finished": "today",
             "machine": {"cpu": "cpu", "memory": "1 GiB", "torch": "2"}, "nmt_commit": "abc",
             "command": "python -m benchmarks.equal_steps", "wall_minutes": 1.0,
             "models": {"nmt": "m", "opennmt-py": "o"}, "peer_updates": 5,
             "load_at_start": ["load average 1 1 1"], "machine_load": ["load average 2 2 2"],
             "top_at_start": ["top"], "beams": {"1": rows, "5": rows}}
    text = render(stage)
    table = re.findall(r"^\| (greedy|beam 5) \| (forced, 20 steps|natural) \|[^|]*\|[^|]*\| "
                       r"([\d.]+)x \| ([\d.]+)x \(", text, flags=re.M)
    assert table == [("greedy", "forced, 20 steps", "2.00", "2.00"),
                     ("greedy", "natural", "3.00", "3.00"),
                     ("beam 5", "forced, 20 steps", "2.00", "2.00"),
                     ("beam 5", "natural", "3.00", "3.00")]
    assert "| 500.0 / 250.0 = 2.00x |" in text  # the best runs, greedy forced
    assert "20 for all 100" in text and "mean 13.2 (12-15)" in text
    assert text.count("opennmt-py 20 steps: **FAILED**") == 2
    assert text.count("nmt 20 steps: pass") == 2
    widths = {line.count("|") for line in text.splitlines() if line.startswith("|")}
    assert len(widths) == 1  # every row has as many cells as the header
