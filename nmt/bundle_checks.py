"""Checkpoint: what a bundle's data claims, checked before any model is built from it.

`torch.load(weights_only=True)` guarantees only that a file holds plain data; what that data says
is still untrusted. A 2 KB file may claim an embedding of a million by 8192 (build_model would
allocate 32 GB before the weights are compared), store a tensor where the SentencePiece bytes
belong or a string where a weight belongs, or carry metadata that breaks JSON (NaN, a
10,000-digit integer) or decoding (a length ratio that forces million-step outputs).

`nmt.checkpoint.load_model` calls the two checks here: `bundle_data_problem` right after reading
the file (types), `model_problem` after the config and vocabularies are read and before the model
is built (hard caps, then the shapes the config implies against the file's tensors, one by one,
then the parameter count). Each returns the first problem as one line naming the field, or None;
the loader raises it as a CheckpointError naming the file.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import torch

from nmt.config import Config
from nmt.models.seq2seq import build_model

# Hard caps for a model that is loaded (not trained): far above any recurrent model we train, so
# that only a hostile or corrupt file meets them. Keys are config fields, as errors name them.
CONFIG_CAPS: dict[str, float] = {
    "model.emb_dim": 8192,
    "model.enc_hidden": 8192,
    "model.dec_hidden": 8192,
    "model.attn_dim": 8192,
    "model.enc_layers": 16,
    "model.dec_layers": 16,
    "data.max_len": 4096,  # subwords per model input
    "decode.max_len_a": 10.0,  # output length cap = a * source subwords + b
    "decode.max_len_b": 1024,
    "decode.min_len": 1024,
    "decode.no_repeat_ngram": 64,
    "decode.batch_tokens": 1_000_000,
}
MAX_VOCAB = 1_000_000  # SentencePiece pieces per side
MAX_PARAMETERS = 1_000_000_000  # the library's ceiling; `nmt serve` has a lower, configurable one
LANG_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")  # what the service can route

# Metadata is free-form JSON-like data that the service returns as it is (/v1/models).
MAX_METADATA_DEPTH = 16
MAX_METADATA_NODES = 10_000
MAX_METADATA_STRING = 10_000
MAX_METADATA_LENGTH_RATIO = 10.0  # metadata.length_ratio.p01 sets a minimum output length


def bundle_data_problem(obj: dict[str, Any]) -> str | None:
    """The first field of a loaded bundle or checkpoint dict with the wrong type, or None.

    Checks `config` (a mapping; `config_from_dict` checks its keys, types and ranges), `src_spm`
    and `tgt_spm` (bytes), `model` (tensor name -> strided tensor) and `metadata` (JSON-like:
    string keys, finite numbers, bounded size).
    """
    if not isinstance(obj.get("config"), dict):
        return f"config: expected a mapping, got {_kind(obj.get('config'))}"
    for key in ("src_spm", "tgt_spm"):
        if key in obj and not isinstance(obj[key], bytes):
            return f"{key}: expected the SentencePiece model's bytes, got {_kind(obj[key])}"
    weights = obj.get("model")
    if not isinstance(weights, dict):
        return f"model: expected a mapping of tensor names to tensors, got {_kind(weights)}"
    for name, value in weights.items():
        if not isinstance(name, str):
            return f"model: a tensor name is {_kind(name)}, not a string"
        if not isinstance(value, torch.Tensor):
            return f"model[{name!r}]: expected a tensor, got {_kind(value)}"
        if value.layout != torch.strided or value.is_quantized:
            return f"model[{name!r}]: expected a dense tensor, got layout {value.layout}"
    metadata = obj.get("metadata", {})
    if not isinstance(metadata, dict):
        return f"metadata: expected a mapping, got {_kind(metadata)}"
    return _metadata_problem(metadata)


def model_problem(config: Config, weights: dict[str, torch.Tensor], *, src_vocab_size: int,
                  tgt_vocab_size: int, max_parameters: int = MAX_PARAMETERS) -> str | None:
    """The first reason not to build the model `config` describes and load `weights`, or None.

    Nothing is allocated: the model is built on the meta device to learn its tensors' shapes.

    Args:
        config: the stored config, already through `config_from_dict`.
        weights: the stored tensors (`bundle_data_problem` has checked their types).
        src_vocab_size, tgt_vocab_size: the stored SentencePiece models' sizes.
        max_parameters: the most parameters the config may imply.
    """
    problem = config_problem(config)
    if problem is not None:
        return problem
    for side, size in (("src_spm", src_vocab_size), ("tgt_spm", tgt_vocab_size)):
        if size > MAX_VOCAB:
            return f"{side}: {size} pieces are above the limit of {MAX_VOCAB} for a loadable model"
    try:
        with torch.device("meta"):  # shapes only: no memory, no initialisation work
            shell = build_model(config.model, src_vocab_size=src_vocab_size,
                                tgt_vocab_size=tgt_vocab_size)
    except (ValueError, RuntimeError) as err:
        return f"config.model: no model can be built from it: {str(err)[:200]}"
    expected = shell.state_dict()
    for name, want in expected.items():
        have = weights.get(name)
        if have is None:
            return f"model: tensor {name} is missing (the config implies it)"
        if tuple(have.shape) != tuple(want.shape):
            return (f"model[{name!r}]: shape {tuple(have.shape)} differs from {tuple(want.shape)}, "
                    f"which the config and vocabularies imply (src vocab {src_vocab_size}, "
                    f"tgt vocab {tgt_vocab_size})")
        if want.is_floating_point() and not have.is_floating_point():
            return f"model[{name!r}]: dtype {have.dtype} is not floating point"
    extra = sorted(set(weights) - set(expected))
    if extra:
        return f"model: tensor {extra[0]} is not part of the model the config describes"
    parameters = sum(p.numel() for p in shell.parameters())
    if parameters > max_parameters:
        return (f"config.model: {parameters} parameters are above the limit of {max_parameters} "
                "for a loadable model")
    return None


def config_problem(config: Config) -> str | None:
    """The first stored config value outside what a loadable model may have, or None: the hard
    caps and language codes the service can route (the config loader already refused
    non-finite numbers and values outside the training ranges)."""
    for key, value in _leaves(dataclasses.asdict(config), ""):
        cap = CONFIG_CAPS.get(key)
        if cap is not None and value > cap:
            return f"config.{key}: {value} is above the limit of {cap:g} for a loadable model"
    for key in ("src_lang", "tgt_lang"):
        code = getattr(config.data, key)
        if not LANG_CODE.fullmatch(code):
            return (f"config.data.{key}: {code[:40]!r} is not a language code (a letter, then up "
                    "to 31 letters, digits, _ or -)")
    return None


def _leaves(raw: Any, prefix: str) -> list[tuple[str, Any]]:
    """(dotted key, value) for every scalar in a config dict; list items as key[i]."""
    if isinstance(raw, dict):
        return [leaf for k, v in raw.items()
                for leaf in _leaves(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(raw, (list, tuple)):
        return [leaf for i, v in enumerate(raw) for leaf in _leaves(v, f"{prefix}[{i}]")]
    return [(prefix, raw)]


def _metadata_problem(metadata: dict[str, Any]) -> str | None:
    nodes = 0
    stack: list[tuple[str, Any, int]] = [("metadata", metadata, 0)]
    while stack:
        where, value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_METADATA_NODES:
            return f"metadata: more than {MAX_METADATA_NODES} values"
        if depth > MAX_METADATA_DEPTH:
            return f"{where}: nested deeper than {MAX_METADATA_DEPTH} levels"
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or len(key) > 200:
                    return f"{where}: a key is {_kind(key)}, not a string of up to 200 characters"
                stack.append((f"{where}.{key}", item, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", item, depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if len(value) > MAX_METADATA_STRING:
                return (f"{where}: a string of {len(value)} characters (at most "
                        f"{MAX_METADATA_STRING})")
        elif isinstance(value, bool) or value is None:
            pass
        elif isinstance(value, int):
            if abs(value) >= 2 ** 63:
                return f"{where}: the integer is too large"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return f"{where}: {value} is not a finite number"
        else:
            return f"{where}: expected JSON-like data, got {_kind(value)}"
    return _known_metadata_problem(metadata)


def _known_metadata_problem(metadata: dict[str, Any]) -> str | None:
    """The keys the library and the service read, with their types and ranges."""
    parameters = metadata.get("parameters")
    if parameters is not None and (isinstance(parameters, bool) or not isinstance(parameters, int)
                                   or parameters < 0):
        return f"metadata.parameters: expected a count, got {parameters!r}"
    for key in ("valid_scores", "test_scores", "length_ratio"):
        if metadata.get(key) is not None and not isinstance(metadata[key], dict):
            return f"metadata.{key}: expected a mapping, got {_kind(metadata[key])}"
    p01 = (metadata.get("length_ratio") or {}).get("p01")
    if p01 is not None and (isinstance(p01, bool) or not isinstance(p01, (int, float))
                            or not 0 <= p01 <= MAX_METADATA_LENGTH_RATIO):
        return (f"metadata.length_ratio.p01: {p01!r} is not an output/source length ratio "
                f"between 0 and {MAX_METADATA_LENGTH_RATIO:g}")
    return None


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"
