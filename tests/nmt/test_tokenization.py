"""Tests for nmt.tokenization: training each model type, fixed special ids, round trips, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sentencepiece as spm

from nmt.tokenization import (
    BATCH_ENCODE_FROM,
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    Tokenizer,
    TokenizerError,
    train_tokenizer,
)

TEXTS = [
    "der hund rennt schnell",
    "die katze schläft im haus",
    "ein großer vogel singt",
    "Straße, Größe und Übermut!",
    "the dog runs fast",
    "a small cat sleeps in the house",
] * 20


@pytest.fixture(scope="module", params=["unigram", "bpe", "char"])
def tokenizer(request: pytest.FixtureRequest) -> Tokenizer:
    return train_tokenizer(TEXTS, model_type=request.param, vocab_size=60)


def test_special_ids_are_fixed(tokenizer: Tokenizer) -> None:
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)
    sp = tokenizer._sp
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD_ID, UNK_ID, BOS_ID, EOS_ID)


@pytest.mark.parametrize("text", sorted(set(TEXTS)) + ["hund katze", "große Übermut"])
def test_decode_encode_round_trip(tokenizer: Tokenizer, text: str) -> None:
    ids = tokenizer.encode([text])[0]
    assert ids and all(i > EOS_ID for i in ids)  # no specials inside a sentence
    assert tokenizer.decode(ids) == text


def test_decode_ignores_special_ids(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode(["der hund"])[0]
    assert tokenizer.decode([BOS_ID, *ids, EOS_ID, PAD_ID, PAD_ID]) == "der hund"


def test_vocab_size_is_an_upper_bound(tokenizer: Tokenizer) -> None:
    assert 4 < tokenizer.vocab_size <= 60


def test_unknown_characters_map_to_unk() -> None:
    tok = train_tokenizer(TEXTS, model_type="char", vocab_size=60)
    assert UNK_ID in tok.encode(["日本"])[0]


def test_save_and_from_file_round_trip(tmp_path: Path, tokenizer: Tokenizer) -> None:
    tokenizer.save(tmp_path / "m.model")
    again = Tokenizer.from_file(tmp_path / "m.model")
    assert again.model_proto == tokenizer.model_proto
    assert again.encode(TEXTS[:6]) == tokenizer.encode(TEXTS[:6])


def test_corrupt_model_file_is_tokenizer_error(tmp_path: Path, tokenizer: Tokenizer) -> None:
    path = tmp_path / "bad.model"
    path.write_bytes(tokenizer.model_proto[: len(tokenizer.model_proto) // 3] + b"\xff" * 50)
    with pytest.raises(TokenizerError, match="bad.model"):
        Tokenizer.from_file(path)


def test_garbage_bytes_are_tokenizer_error() -> None:
    with pytest.raises(TokenizerError):
        Tokenizer(b"definitely not a protobuf", origin="junk")


def test_missing_model_file_is_tokenizer_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="missing.model"):
        Tokenizer.from_file(tmp_path / "missing.model")


def test_training_on_no_text_is_tokenizer_error() -> None:
    with pytest.raises(TokenizerError):
        train_tokenizer(["", ""], model_type="unigram", vocab_size=20)


def test_model_with_other_special_ids_is_refused() -> None:
    buffer = io.BytesIO()
    # SentencePiece's own defaults: unk=0 bos=1 eos=2, no pad.
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXTS), model_writer=buffer,
                                   model_type="char", vocab_size=40, hard_vocab_limit=False,
                                   minloglevel=2)
    with pytest.raises(TokenizerError, match="special ids"):
        Tokenizer(buffer.getvalue(), origin="foreign.model")


def test_short_and_long_lists_encode_alike(tokenizer: Tokenizer) -> None:
    """Short lists are encoded one text at a time, long ones in SentencePiece's threaded batch
    call (BATCH_ENCODE_FROM): the ids are the same either way."""
    texts = [f"der hund {i} rennt" + " schnell" * (i % 5) for i in range(2 * BATCH_ENCODE_FROM)]
    alone = [tokenizer.encode([t])[0] for t in texts]
    assert tokenizer.encode(texts) == alone
    assert tokenizer.encode(texts[:3]) == alone[:3]
    assert tokenizer.encode([]) == []
