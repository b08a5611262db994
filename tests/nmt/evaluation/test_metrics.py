import json
import subprocess
import sys

import pytest

from nmt.evaluation.files import check_same_length, read_lines
from nmt.evaluation.metrics import (
    EvaluationError,
    bleu_by_length,
    corpus_scores,
    paired_significance,
    score_metric,
    score_system,
)


def sacrebleu_cli(ref: str, hyp: str) -> list[float]:
    out = subprocess.run([sys.executable, "-m", "sacrebleu", ref, "-i", hyp, "-m", "bleu",
                          "chrf", "ter", "-b"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_scores_equal_the_sacrebleu_command_line(refs, good, write_lines):
    ref, hyp = write_lines("ref.en", refs), write_lines("hyp.en", good)
    expected = sacrebleu_cli(ref, hyp)
    scores = corpus_scores(read_lines(hyp), read_lines(ref))
    assert [round(scores[m]["score"], 1) for m in ("bleu", "chrf", "ter")] == expected
    assert 0 < scores["bleu"]["score"] < 100
    assert scores["bleu"]["signature"].startswith("nrefs:1|case:mixed")
    assert scores["chrf"]["name"] == "chrF2" and scores["ter"]["name"] == "TER"


def test_references_as_one_list_or_as_streams(refs, good):
    assert corpus_scores(good, refs) == corpus_scores(good, [refs])
    two = corpus_scores(good, [refs, good], metrics=("bleu",))
    assert two["bleu"]["score"] == pytest.approx(100.0) and "nrefs:2" in two["bleu"]["signature"]


def test_mismatched_or_empty_input_is_an_error(refs, good):
    with pytest.raises(EvaluationError, match="59 hypotheses but 60 references"):
        corpus_scores(good[:-1], refs)
    with pytest.raises(EvaluationError, match="no references"):
        corpus_scores([], [])
    with pytest.raises(EvaluationError, match="unknown metric"):
        corpus_scores(good, refs, metrics=("meteor",))


def test_bootstrap_confidence_interval(refs, good):
    plain = score_metric("bleu", good, refs)
    with_ci = score_metric("bleu", good, refs, n_bootstrap=200)
    assert plain.ci_radius is None and with_ci.score == plain.score
    assert 0 < with_ci.ci_radius < 20 and abs(with_ci.ci_mean - plain.score) < with_ci.ci_radius
    assert "bs:200" in with_ci.signature
    assert set(score_system(good, refs, n_bootstrap=0)) == {"bleu", "chrf", "ter"}


def test_bleu_by_length_buckets(refs, good):
    lengths = [3, 12, 25, 40] * 15
    buckets = bleu_by_length(good, refs, lengths)
    assert [b.bucket for b in buckets] == ["1-10", "11-20", "21-30", "31+"]
    assert sum(b.sentences for b in buckets) == len(refs)
    first = [i for i, n in enumerate(lengths) if n <= 10]
    assert buckets[0].bleu == score_metric("bleu", [good[i] for i in first],
                                           [refs[i] for i in first]).score
    empty = bleu_by_length(good, refs, [5] * len(refs))
    assert empty[0].sentences == len(refs) and empty[1].bleu is None


def test_paired_bootstrap(refs, good, bad):
    close = [bad[0]] + good[1:]
    systems = [("good", good), ("bad", bad), ("close", close), ("same", list(good))]
    result = paired_significance(systems, refs, n_samples=200)
    assert [r["system"] for r in result] == ["bad", "close", "same"]
    assert all(r["baseline"] == "good" for r in result)
    assert result[0]["bleu"]["p_value"] < 0.05
    assert result[1]["bleu"]["p_value"] > 0.05
    assert result[2]["bleu"]["p_value"] == 1.0  # identical outputs: no difference at all
    assert result[0]["ter"]["score"] > result[2]["ter"]["score"]
    assert result[0]["bleu"]["ci"] > 0
    assert paired_significance([("good", good)], refs) == []


def test_read_lines_like_sacrebleu_and_clear_errors(tmp_path):
    path = tmp_path / "hyp.txt"
    path.write_bytes(b"a b  \nc\r\n\nlast")
    assert read_lines(path) == ["a b", "c", "", "last"]
    with pytest.raises(EvaluationError, match="missing.txt: no such file"):
        read_lines(tmp_path / "missing.txt", what="reference file")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(EvaluationError, match="empty.txt is empty"):
        read_lines(tmp_path / "empty.txt")
    (tmp_path / "latin1.txt").write_bytes("größe\n".encode("latin-1"))
    with pytest.raises(EvaluationError, match="latin1.txt: not valid UTF-8"):
        read_lines(tmp_path / "latin1.txt")
    with pytest.raises(EvaluationError, match="a.txt has 1 lines but b.txt has 2"):
        check_same_length(["x"], "a.txt", ["x", "y"], "b.txt")


def test_read_lines_reads_gzip_and_names_a_broken_one(tmp_path):
    import gzip

    path = tmp_path / "ref.en.gz"
    path.write_bytes(gzip.compress("a dog  \nrüns\n".encode()))
    assert read_lines(path) == ["a dog", "rüns"]
    path.write_bytes(gzip.compress(b"a dog\n")[:12])
    with pytest.raises(EvaluationError, match="ref.en.gz: broken gzip file"):
        read_lines(path)
