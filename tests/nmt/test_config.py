"""Tests for nmt.config: loading, validation errors that name the key, overrides, round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nmt.config import Config, ConfigError, config_from_dict, load_config, save_config

# Translation experiments; `kind: lm` files are language-model configs with their own loader.
CONFIGS = [
    p for p in sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind", "translation") != "lm"
]
MINIMAL = {"data": {"train_src": "a.txt", "train_tgt": "b.txt"}}


def write_yaml(tmp_path: Path, raw: object, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.name


def test_shipped_configs_exist() -> None:
    assert CONFIGS, "configs/*.yaml not found"


def test_defaults_fill_missing_keys() -> None:
    cfg = config_from_dict(MINIMAL)
    assert cfg.model == Config().model
    assert cfg.data.train_src == "a.txt"


@pytest.mark.parametrize(
    "raw, key, allowed",
    [
        ({"model": {"celll": "gru"}}, "model.celll", ["cell", "emb_dim", "attention"]),
        ({"bogus": 1}, "bogus", ["data", "model", "train"]),
    ],
)
def test_unknown_key_names_key_and_allowed_keys(raw: dict, key: str, allowed: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({**MINIMAL, **raw})
    message = str(info.value)
    assert key in message
    for name in allowed:
        assert name in message


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("model", "emb_dim", "large"),
        ("model", "emb_dim", 1.5),
        ("model", "bidirectional", "yes"),
        ("train", "lr", "fast"),
        ("train", "epochs", True),
        ("train", "adam_betas", [0.9]),
        ("data", "src_lang", 3),
    ],
)
def test_wrong_type_names_key(section: str, key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
        config_from_dict({**MINIMAL, section: {**MINIMAL.get(section, {}), key: value}})


def test_bad_choice_lists_allowed_values() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict({**MINIMAL, "model": {"cell": "transformer"}})
    message = str(info.value)
    assert "model.cell" in message and "transformer" in message
    for choice in ("rnn", "gru", "lstm"):
        assert choice in message


@pytest.mark.parametrize(
    "section, key, value, bound",
    [
        ("model", "dropout", 1.5, "maximum"),
        ("model", "emb_dim", 0, "minimum"),
        ("train", "lr", -1.0, "minimum"),
        ("tokenizer", "vocab_size", 2, "minimum"),
    ],
)
def test_out_of_range_names_key_and_bound(section: str, key: str, value: float, bound: str) -> None:
    with pytest.raises(ConfigError, match=rf"{section}\.{key}.*{bound}"):
        config_from_dict({**MINIMAL, section: {**MINIMAL.get(section, {}), key: value}})


def test_overrides_apply_with_yaml_typing(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, MINIMAL)
    cfg = load_config(path, ["model.cell=lstm", "train.lr=5e-4", "model.bidirectional=false",
                             "train.adam_betas=[0.8, 0.9]"])
    assert cfg.model.cell == "lstm"
    assert cfg.train.lr == pytest.approx(5e-4)
    assert cfg.model.bidirectional is False
    assert cfg.train.adam_betas == (0.8, 0.9)


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.cell", "model.cell"),  # no '='
        ("model.cell=cnn", "model.cell"),
        ("model.nope=1", "model.nope"),
        ("train.lr=abc", "train.lr"),
        ("name.sub=1", "name"),  # `name` is not a section
        ("train.lr=[1,", "train.lr"),  # not even YAML
    ],
)
def test_bad_override_names_key(tmp_path: Path, override: str, key: str) -> None:
    path = write_yaml(tmp_path, MINIMAL)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        load_config(path, [override])
    assert "\n" not in str(info.value)


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  cell: gru\n\tattention: none\n", encoding="utf-8")  # a tab
    with pytest.raises(ConfigError, match=r"broken\.yaml.*invalid YAML.*line 3") as info:
        load_config(path)
    assert "\n" not in str(info.value)  # the CLI prints it as one line


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_errors_from_file_name_the_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, {**MINIMAL, "model": {"cell": "cnn"}}, name="exp.yaml")
    with pytest.raises(ConfigError, match=r"exp\.yaml.*model\.cell"):
        load_config(path)


@pytest.mark.parametrize(
    "raw, words",
    [
        ({}, "train_src"),
        ({"data": {"train_src": "a", "train_tgt": "b", "train_tsv": "c"}}, "train_tsv"),
        ({**MINIMAL, "data": {**MINIMAL["data"], "valid_src": "v"}}, "valid_tgt"),
        ({**MINIMAL, "tokenizer": {"joint": False}, "model": {"share_embeddings": True}},
         "share_embeddings"),
    ],
)
def test_cross_key_checks(raw: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        config_from_dict(raw)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_resolved_config_round_trips(tmp_path: Path, path: Path) -> None:
    cfg = load_config(path, ["model.cell=lstm", "train.adam_betas=[0.8, 0.95]"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


def test_config_is_frozen() -> None:
    cfg = config_from_dict(MINIMAL)
    with pytest.raises(AttributeError):
        cfg.model.cell = "lstm"  # type: ignore[misc]  # the point: frozen dataclasses refuse this


def test_exponent_without_dot_is_a_number(tmp_path: Path) -> None:
    # YAML 1.1 (PyYAML) reads `1e-3` as a string; the config must still see a float.
    path = tmp_path / "c.yaml"
    path.write_text("data: {train_src: a, train_tgt: b}\ntrain:\n  lr: 1e-3\n", encoding="utf-8")
    assert load_config(path).train.lr == pytest.approx(1e-3)
    assert load_config(path, ["train.min_lr=2E-6"]).train.min_lr == pytest.approx(2e-6)


def test_a_config_of_shared_references_is_refused_not_expanded():
    """A checkpoint's stored config can repeat one list by reference: tiny on disk, 10^9 values
    once copied. Copying stops at the budget with an error naming the problem."""
    row = [0] * 1_000
    block = [row] * 1_000
    raw = {"data": {"src_lang": "de", "tgt_lang": "en", "x": [block] * 1_000}}
    with pytest.raises(ConfigError, match="more than 100,000 values"):
        config_from_dict(raw)
