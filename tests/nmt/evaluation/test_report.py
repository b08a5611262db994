import json

import matplotlib.image
import pytest

from nmt.evaluation.metrics import EvaluationError
from nmt.evaluation.report import (
    AttentionExample,
    SystemOutput,
    evaluate_systems,
    render_markdown,
    write_report,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_report_directory(tmp_path, refs, good, bad):
    example = AttentionExample(["▁Ein", "▁Hund", "."], ["▁A", "▁dog"],
                               [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    report = evaluate_systems(
        [SystemOutput("good", good, {"beam_size": 5}), SystemOutput("bad", bad)], refs,
        sources=refs, n_bootstrap=100, ref_file="ref.en", attention=[example],
    )
    written = write_report(report, tmp_path / "report")
    names = sorted(p.name for p in written)
    assert names == ["attention_1.png", "bleu_by_length.png", "report.json", "report.md"]
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    good_json = data["systems"][0]
    assert good_json["scores"]["bleu"]["score"] == report.systems[0].scores["bleu"].score
    assert good_json["scores"]["ter"]["ci_radius"] > 0
    assert data["significance"][0]["system"] == "bad"
    assert data["length_basis"] == "source words"
    assert sum(b["sentences"] for b in good_json["by_length"]) == len(refs)
    for png in ("bleu_by_length.png", "attention_1.png"):
        path = tmp_path / "report" / png
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert matplotlib.image.imread(path).ndim == 3
    md = (tmp_path / "report" / "report.md").read_text()
    assert "| good |" in md and "Paired bootstrap" in md and "![bleu_by_length.png]" in md


def test_markdown_without_significance_or_sources(refs, good):
    report = evaluate_systems([SystemOutput("only", good)], refs, n_bootstrap=0)
    md = render_markdown(report)
    assert report.length_basis == "reference words" and report.significance == []
    assert "Paired bootstrap" not in md and f"{report.systems[0].scores['bleu'].score:.1f}" in md


def test_mismatched_system_names_its_file(refs, good):
    with pytest.raises(EvaluationError, match="hyp.en: 59 hypotheses but 60 references"):
        evaluate_systems([SystemOutput("x", good[:-1], hyp_file="hyp.en")], refs, n_bootstrap=0)
    with pytest.raises(EvaluationError, match="no systems"):
        evaluate_systems([], refs)
