"""Tests for nmt.lm.bundle: LM bundles round-trip as data; other files are refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.checkpoint import CheckpointError, export_bundle
from nmt.config import config_from_dict
from nmt.lm.bundle import export_lm_bundle, load_lm
from nmt.lm.data import spm_from_path
from nmt.lm.vocab import CharVocab, SubwordVocab
from nmt.models.seq2seq import build_model
from tests.support.tiny_lm import tiny_lm, tiny_lm_config, tiny_spm


@pytest.mark.parametrize("vocab", [CharVocab.from_text(["héllo wörld", "ça va"]),
                                   SubwordVocab(tiny_spm())], ids=["char", "spm"])
def test_round_trip_gives_identical_outputs(tmp_path: Path, vocab) -> None:
    cfg = tiny_lm_config("unused.txt", tokenizer={"type": vocab.kind})
    model = tiny_lm(vocab.size, seed=3)
    export_lm_bundle(tmp_path / "b", config=cfg, state_dict=model.state_dict(), vocab=vocab,
                     metadata={"note": "test"})
    loaded = load_lm(tmp_path / "b")
    tokens = torch.tensor([[1, 2, 3, 2]])
    assert torch.equal(loaded.model(tokens)[0], model(tokens)[0])
    assert loaded.vocab.to_data() == vocab.to_data()
    assert loaded.metadata == {"note": "test"}
    assert loaded.config == cfg
    # Data only: the file loads with weights_only=True.
    obj = torch.load(tmp_path / "b" / "model.pt", weights_only=True)
    assert obj["kind"] == "lm"


def test_char_vocab_maps_unknown_characters_to_unk() -> None:
    vocab = CharVocab.from_text(["ab"])
    assert vocab.encode("abz\n") == [vocab.encode("a")[0], vocab.encode("b")[0], 0,
                                      vocab.separator_id]
    assert vocab.decode(vocab.encode("ba\n")) == "ba\n"


def _translation_bundle(path: Path) -> Path:
    cfg = config_from_dict({"data": {"train_src": "x", "train_tgt": "y"},
                            "model": {"emb_dim": 8, "enc_hidden": 8, "dec_hidden": 8,
                                      "attn_dim": 8}})
    size = tiny_spm().vocab_size
    model = build_model(cfg.model, src_vocab_size=size, tgt_vocab_size=size)
    return export_bundle(path, config=cfg, state_dict=model.state_dict(),
                         src_tokenizer=tiny_spm(), tgt_tokenizer=tiny_spm(), metadata={})


def test_translation_bundle_is_not_an_lm_but_gives_its_target_spm(tmp_path: Path) -> None:
    bundle = _translation_bundle(tmp_path / "tm")
    with pytest.raises(CheckpointError, match="is a translation model bundle; a language model"):
        load_lm(bundle)
    assert spm_from_path(bundle).model_proto == tiny_spm().model_proto


def test_missing_bundle_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nowhere"):
        load_lm(tmp_path / "nowhere")
