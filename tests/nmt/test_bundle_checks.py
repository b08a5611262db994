"""Hostile bundles (nmt/bundle_checks.py through load_model): every value in the config and the
metadata is checked, hard caps and the tensors' shapes are checked before the model is built,
and each refusal is a CheckpointError naming the file and the field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import nmt.checkpoint
from nmt.bundle_checks import model_problem
from nmt.checkpoint import BUNDLE_WEIGHTS, CheckpointError, load_model
from tests.support.tiny import tiny_config, tiny_model, write_tiny_bundle

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bundle(tmp_path_factory.mktemp("bundles") / "good")


def _set(section: str, key: str, value: Any) -> Callable[[Obj], None]:
    return lambda obj: obj["config"][section].__setitem__(key, value)


def _weights(mutate: Callable[[dict[str, Any]], None]) -> Callable[[Obj], None]:
    return lambda obj: mutate(obj["model"])


def _meta(key: str, value: Any) -> Callable[[Obj], None]:
    return lambda obj: obj["metadata"].__setitem__(key, value)


# (mutation, words the CheckpointError must contain). Every one of them is refused before a
# model is built (the test replaces build_model with one that fails).
HOSTILE: dict[str, tuple[Callable[[Obj], None], str]] = {
    "huge embedding": (_set("model", "emb_dim", 100_000),
                       "config.model.emb_dim: 100000 is above the limit of 8192"),
    "huge hidden size": (_set("model", "dec_hidden", 10**9), "config.model.dec_hidden"),
    "too many layers": (_set("model", "enc_layers", 99), "model.enc_layers"),
    "huge max_len_b": (_set("decode", "max_len_b", 10**9),
                       "config.decode.max_len_b: 1000000000 is above the limit of 1024"),
    "huge max_len_a": (_set("decode", "max_len_a", 50.0), "config.decode.max_len_a"),
    "NaN max_len_a": (_set("decode", "max_len_a", float("nan")),
                      "decode.max_len_a: expected a finite number, got nan"),
    "huge data.max_len": (_set("data", "max_len", 10**6), "config.data.max_len"),
    "huge min_len": (_set("decode", "min_len", 10**6), "config.decode.min_len"),
    "hidden size within caps, weights smaller": (
        _set("model", "enc_hidden", 4096),
        "model['encoder.rnn.weight_ih_l0']: shape (24, 12) differs from (12288, 12)"),
    "string for a number": (_set("model", "emb_dim", "12"),
                            "model.emb_dim: expected an integer, got '12'"),
    "language code with a newline": (_set("data", "src_lang", "de\nFAKE LOG LINE"),
                                     "config.data.src_lang"),
    "config is a list": (lambda obj: obj.__setitem__("config", [1, 2]),
                         "config: expected a mapping, got a list"),
    "src_spm is a tensor": (lambda obj: obj.__setitem__("src_spm", torch.zeros(3)),
                            "src_spm: expected the SentencePiece model's bytes, got a tensor"),
    "tgt_spm is a string": (lambda obj: obj.__setitem__("tgt_spm", "spm"),
                            "tgt_spm: expected the SentencePiece model's bytes, got a str"),
    "weights are a list": (lambda obj: obj.__setitem__("model", [torch.zeros(2)]),
                           "model: expected a mapping of tensor names to tensors, got a list"),
    "a weight is a string": (_weights(lambda w: w.__setitem__("bridge.hidden.bias", "0")),
                             "model['bridge.hidden.bias']: expected a tensor, got a str"),
    "a weight is an integer tensor": (
        _weights(lambda w: w.__setitem__("bridge.hidden.bias", torch.zeros(16, dtype=torch.long))),
        "model['bridge.hidden.bias']: dtype torch.int64 is not floating point"),
    "a weight is missing": (_weights(lambda w: w.pop("bridge.hidden.bias")),
                            "model: tensor bridge.hidden.bias is missing"),
    "an extra weight": (_weights(lambda w: w.__setitem__("extra.weight", torch.zeros(2))),
                        "model: tensor extra.weight is not part of the model"),
    "metadata is a list": (lambda obj: obj.__setitem__("metadata", ["x"]),
                           "metadata: expected a mapping, got a list"),
    "NaN in metadata": (_meta("valid_scores", {"bleu": float("nan")}),
                        "metadata.valid_scores.bleu: nan is not a finite number"),
    "a tensor in metadata": (_meta("note", torch.zeros(2)),
                             "metadata.note: expected JSON-like data, got a tensor"),
    "a 100-digit integer in metadata": (_meta("steps", 10**100),
                                        "metadata.steps: the integer is too large"),
    "a huge length ratio": (_meta("length_ratio", {"p01": 1e6}),
                            "metadata.length_ratio.p01: 1000000.0 is not an output/source"),
    "parameters is a string": (_meta("parameters", "many"), "metadata.parameters"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_bundle_is_refused_before_the_model_is_built(
        case: str, good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mutate, words = HOSTILE[case]
    bundle = tmp_path / "hostile"
    shutil.copytree(good, bundle)
    obj = torch.load(bundle / BUNDLE_WEIGHTS, weights_only=True)
    mutate(obj)
    torch.save(obj, bundle / BUNDLE_WEIGHTS)

    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("build_model ran on a hostile bundle")

    monkeypatch.setattr(nmt.checkpoint, "build_model", no_build)
    with pytest.raises(CheckpointError) as info:
        load_model(bundle)
    message = str(info.value)
    assert message.startswith(f"{bundle / BUNDLE_WEIGHTS}: ") and words in message, message
    assert "\n" not in message  # one line, also for the language code holding a newline


def test_the_good_bundle_loads(good: Path) -> None:
    assert load_model(good).model is not None


def test_vocabulary_and_parameter_caps() -> None:
    config = tiny_config()
    assert model_problem(config, {}, src_vocab_size=2_000_000, tgt_vocab_size=60) == (
        "src_spm: 2000000 pieces are above the limit of 1000000 for a loadable model")
    weights = tiny_model(config, vocab_size=60).state_dict()
    assert model_problem(config, weights, src_vocab_size=60, tgt_vocab_size=60) is None
    problem = model_problem(config, weights, src_vocab_size=60, tgt_vocab_size=60,
                            max_parameters=100)
    assert problem is not None and "parameters are above the limit of 100" in problem
