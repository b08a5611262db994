from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from nmt.checkpoint import CheckpointError
from nmt.translator import Candidate, Translation, Translator, TranslatorError
from tests.support.tiny import (
    synthetic_lines,
    tiny_config,
    tiny_model,
    tiny_tokenizer,
    write_tiny_bundle,
)

TEXTS = synthetic_lines(9, seed=5)


def _translator(*, model=None, decode=None, max_len=40, seed=3) -> Translator:
    config = tiny_config(model=model, decode=decode, max_len=max_len)
    tok = tiny_tokenizer()
    return Translator(tiny_model(config, seed=seed), tok, tok, config, {"k": "v"})


@pytest.fixture(scope="module")
def translator() -> Translator:
    return _translator()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle") / "de-en", seed=3)


def test_from_checkpoint_bundle_and_file(bundle, translator):
    for path in (bundle, bundle / "model.pt"):
        loaded = Translator.from_checkpoint(path, num_threads=1)
        assert (loaded.src_lang, loaded.tgt_lang) == ("de", "en")
        assert loaded.has_attention and loaded.max_input_tokens == 40
        assert loaded.metadata["note"].startswith("random")
        assert [t.text for t in loaded.translate(TEXTS)] == [t.text for t in
                                                             translator.translate(TEXTS)]


def test_unreadable_bundle_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path)):
        Translator.from_checkpoint(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="model.pt"):
        Translator.from_checkpoint(tmp_path)


def test_order_is_restored_and_batching_changes_nothing(translator):
    alone = [translator.translate([t])[0] for t in TEXTS]
    together = translator.translate(TEXTS, batch_tokens=7)
    reverse = translator.translate(TEXTS[::-1])[::-1]
    for a, b, c, text in zip(alone, together, reverse, TEXTS, strict=True):
        assert a.source == b.source == c.source == text
        assert a.text == b.text == c.text
        assert a.score == pytest.approx(b.score, abs=1e-4)


def test_empty_and_unicode_inputs(translator):
    inputs = ["", "   \t ", TEXTS[0], "😀 漢字 שלום ﷽ \u200b\u0000", "a" * 5]
    out = translator.translate(inputs, beam_size=2, nbest=2)
    assert len(out) == len(inputs)
    for empty, blank in zip(out[:2], inputs[:2], strict=True):
        assert empty.candidates == [Candidate(blank, 0.0, [], None)]  # whitespace kept as is
        assert empty.text == blank and empty.score == 0.0 and empty.source_tokens == []
    assert all(isinstance(t, Translation) and t.candidates for t in out)


def test_nbest_candidates_are_sorted_and_distinct(translator):
    for tr in translator.translate(TEXTS, beam_size=4, nbest=3):
        assert len(tr.candidates) == 3
        scores = [c.score for c in tr.candidates]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(c.tokens) for c in tr.candidates}) == 3
        assert tr.text == tr.candidates[0].text


def test_beam_one_is_greedy_and_defaults_come_from_config(translator):
    greedy = translator.translate(TEXTS, beam_size=1)
    assert all(len(t.candidates) == 1 for t in greedy)
    default = translator.translate(TEXTS)  # config: beam 3
    assert default == translator.translate(TEXTS, beam_size=3, length_penalty=1.0)


def test_attention_only_when_asked_and_available(translator):
    plain = translator.translate(TEXTS[:3])
    assert all(c.attention is None for t in plain for c in t.candidates)
    for tr in translator.translate(TEXTS[:3], return_attention=True):
        att = tr.candidates[0].attention
        assert len(att) == len(tr.candidates[0].tokens)
        assert all(len(row) == len(tr.source_tokens) for row in att)
    no_attn = _translator(model={"attention": "none"})
    assert no_attn.translate(TEXTS[:2], return_attention=True)[0].candidates[0].attention is None


def test_count_tokens(translator):
    counts = translator.count_tokens(TEXTS + [""])
    assert counts[:-1] == [len(t.source_tokens) for t in translator.translate(TEXTS)]
    assert counts[-1] == 0


def _long_text() -> str:
    return " ".join(TEXTS)


def test_long_input_is_split_at_sentences_and_rejoined():
    sentence = TEXTS[1]
    n = _translator().count_tokens([sentence])[0]
    tr = _translator(max_len=n + 1)  # one sentence fits, two do not
    alone = tr.translate([sentence], return_attention=True)[0]
    text = " ".join([sentence] * 4)
    result = tr.translate([text], return_attention=True)[0]
    assert len(result.source_tokens) == 4 * n  # nothing dropped
    assert result.text == " ".join([alone.text] * 4)
    assert result.score == pytest.approx(4 * alone.score, abs=1e-4)
    att = result.candidates[0].attention
    assert len(att) == len(result.candidates[0].tokens)
    assert all(len(row) == 4 * n for row in att)
    t = len(alone.candidates[0].tokens)  # the second part attends to the second sentence only
    assert torch.allclose(torch.tensor([row[n : 2 * n] for row in att[t : 2 * t]]),
                          torch.tensor(alone.candidates[0].attention), atol=1e-5)
    assert all(sum(row[:n]) == 0 for row in att[t:])


def test_a_sentence_longer_than_the_limit_is_cut_not_dropped():
    tr = _translator(max_len=5)
    sentence = "ein mann fährt fahrrad der hund rennt zwei frauen spielen"
    result = tr.translate([sentence])[0]
    assert result.warnings and "translated in" in result.warnings[0]
    assert result.text and len(result.source_tokens) >= tr.count_tokens([sentence])[0]


def test_truncation_is_reported():
    tr = _translator(max_len=8, decode={"long_input": "truncate"})
    sentence = "ein mann fährt fahrrad der hund rennt zwei frauen spielen"
    result = tr.translate([sentence], return_attention=True)[0]
    assert any("only its beginning was translated" in w for w in result.warnings)
    assert len(result.source_tokens) == 8


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_int8_quantization(tmp_path, cell):
    path = write_tiny_bundle(tmp_path / cell, model={"cell": cell}, seed=3)
    quant = Translator.from_checkpoint(path, quantize="int8")
    assert quant.metadata["quantized"] == "int8"
    decoder = quant.model.decoder
    assert isinstance(decoder.output, torch.ao.nn.quantized.dynamic.Linear)
    # Bahdanau's score vector stays float (quantising its input every step cost more)
    assert decoder.attention.v.weight.dtype == torch.float32
    out = quant.translate(TEXTS[:4], beam_size=2)
    assert len(out) == 4 and all(t.candidates for t in out)


def test_bad_arguments(translator, bundle):
    with pytest.raises(TranslatorError, match="nbest"):
        translator.translate(TEXTS, beam_size=2, nbest=3)
    with pytest.raises(TranslatorError, match="beam"):
        translator.translate(TEXTS, beam_size=0)
    with pytest.raises(TranslatorError, match="quantize"):
        Translator.from_checkpoint(bundle, quantize="int4")
    with pytest.raises(TranslatorError, match="CPU"):
        Translator.from_checkpoint(bundle, device="cuda", quantize="int8")


def test_worker_threads_get_the_same_results(translator):
    expected = [t.text for t in translator.translate(TEXTS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: [t.text for t in translator.translate(TEXTS)],
                                range(4)))
    assert all(r == expected for r in results)


def test_progress_bar_goes_to_stderr(translator, capsys):
    translator.translate(TEXTS, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
