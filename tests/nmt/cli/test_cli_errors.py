"""User errors at the command line: each is one line naming what was given, what was expected,
and where (the file, the option, the line)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.support.tiny_lm import write_tiny_lm_bundle

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def lm_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_lm_bundle(tmp_path_factory.mktemp("lm") / "lm-en")


@pytest.fixture
def text(tmp_path: Path) -> Path:
    """An input file, so that translate does not wait for stdin."""
    path = tmp_path / "in.de"
    path.write_text("ein hund rennt\n", encoding="utf-8")
    return path


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_translate_refuses_an_lm_bundle_naming_both_kinds(nmt_cli, lm_bundle: Path,
                                                          text: Path) -> None:
    err = one_line_error(*nmt_cli("translate", "-m", lm_bundle, "-i", text, "-q")[::2])
    assert f"{lm_bundle / 'model.pt'} is a language-model bundle" in err
    assert "needs a translation model bundle" in err and "nmt lm sample" in err


def test_lm_sample_refuses_a_translation_bundle(nmt_cli, bundle: Path) -> None:
    err = one_line_error(*nmt_cli("lm", "sample", "-m", bundle, "--length", "3")[::2])
    assert f"{bundle / 'model.pt'} is a translation model bundle" in err
    assert "needs a language-model bundle" in err and "nmt lm train" in err


def test_missing_model_says_what_a_bundle_is(nmt_cli, tmp_path: Path, text: Path) -> None:
    missing = tmp_path / "models" / "does-not-exist"
    err = one_line_error(*nmt_cli("translate", "-m", missing, "-i", text)[::2])
    assert f"{missing}: no such model directory or checkpoint file" in err
    assert "directory holding model.pt" in err
    assert "no such checkpoint file" not in err


def test_a_folder_of_bundles_lists_them(nmt_cli, bundle: Path, text: Path) -> None:
    err = one_line_error(*nmt_cli("translate", "-m", bundle.parent, "-i", text)[::2])
    assert "not a model bundle" in err and f"bundles inside it: {bundle}" in err


@pytest.mark.parametrize("name", ["README.md", "src.spm.model"])
def test_a_file_that_is_not_a_checkpoint_says_so(nmt_cli, bundle: Path, text: Path,
                                                 name: str) -> None:
    path = REPO / name if name == "README.md" else bundle / name
    err = one_line_error(*nmt_cli("translate", "-m", path, "-i", text)[::2])
    assert f"{path}: not an nmt checkpoint or bundle file" in err
    assert "Unsupported operand" not in err and "refused" not in err


def test_device_without_cuda_is_named_once(nmt_cli, bundle: Path, text: Path,
                                          monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    err = one_line_error(*nmt_cli("translate", "-m", bundle, "-i", text, "--quantize",
                                  "int8", "--device", "cuda")[::2])
    assert err.count("--device cuda") == 1 and "CUDA is not available" in err
    err = one_line_error(*nmt_cli("lm", "sample", "-m", bundle, "--device", "cuda")[::2])
    assert err.count("--device cuda") == 1 and "CUDA is not available" in err


def test_non_utf8_input_names_the_line(nmt_cli, bundle: Path, tmp_path: Path,
                                       monkeypatch) -> None:
    data = b"gut\nauch gut\n" + b"kaputt \xff\xfe\n"
    src = tmp_path / "in.de"
    src.write_bytes(data)
    bad_byte = data.index(b"\xff")
    err = one_line_error(*nmt_cli("translate", "-m", bundle, "-i", src)[::2])
    assert f"input file {src}: line 3 is not valid UTF-8 (byte {bad_byte})" in err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xff\n")))
    err = one_line_error(*nmt_cli("translate", "-m", bundle)[::2])
    assert "stdin: line 1 is not valid UTF-8 (byte 0)" in err


@pytest.fixture
def config_file(tmp_path: Path, write_toy_corpus, tiny_config) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(write_toy_corpus(n_train=10, n_valid=0))))
    return path


@pytest.mark.parametrize("override, words", [
    ("model.cel=lstm", "--set model.cel=lstm: unknown key model.cel; allowed keys:"),
    ("model.cell=lstmx", "--set model.cell=lstmx: model.cell: 'lstmx' is not allowed"),
    ("model.cell", "--set model.cell: expected section.key=value"),
])
def test_a_bad_override_is_blamed_on_set_not_the_file(nmt_cli, config_file: Path,
                                                      tmp_path: Path, override: str,
                                                      words: str) -> None:
    err = one_line_error(*nmt_cli("train", "--config", config_file, "--set", "train.lr=0.1",
                                  "--set", override, "--run-dir", tmp_path / "run")[::2])
    assert words in err and str(config_file) not in err
    assert not (tmp_path / "run").exists()


def test_a_bad_file_is_still_blamed_on_the_file(nmt_cli, config_file: Path,
                                                tmp_path: Path) -> None:
    raw = yaml.safe_load(config_file.read_text())
    raw["model"]["cel"] = "gru"
    config_file.write_text(yaml.safe_dump(raw))
    err = one_line_error(*nmt_cli("train", "--config", config_file, "--set", "train.lr=0.1",
                                  "--run-dir", tmp_path / "run")[::2])
    assert f"{config_file}: unknown key model.cel" in err and "--set" not in err


def test_a_bad_override_on_resume_is_blamed_on_set(nmt_cli, config_file: Path,
                                                   tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(config_file.read_text())
    err = one_line_error(*nmt_cli("train", "--resume", run_dir, "--set", "train.epoch=3")[::2])
    assert "--set train.epoch=3: unknown key train.epoch" in err
