"""Hostile and broken files, as the commands and the service meet them: a pickle payload never
runs, and every broken bundle, config or data file is one clear line naming the file and the
line or key, with no traceback. (load_model's own refusals are in tests/nmt/test_checkpoint.py.)
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from fastapi.testclient import TestClient

from nmt.checkpoint import BUNDLE_WEIGHTS, CheckpointError, safe_load
from nmt.cli import main
from nmt.tokenization import train_tokenizer
from nmt.training.rotation import load_latest, save_step
from reliability.kill_resume import write_experiment
from service.main import create_app
from service.settings import ServiceSettings


class Payload:
    """Unpickling this calls `Path.touch(marker)`: code execution, if a loader allowed it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _evil_bundle(root: Path, marker: Path) -> Path:
    bundle = root / "evil-de-en"
    bundle.mkdir()
    torch.save({"format_version": 1, "kind": "bundle", "config": {}, "model": Payload(marker),
                "metadata": Payload(marker)}, bundle / BUNDLE_WEIGHTS)
    return bundle


def _broken_bundle(kind: str, tiny_bundle: Path, root: Path) -> Path:
    bundle = root / f"{kind}-de-en"
    shutil.copytree(tiny_bundle, bundle)
    weights = bundle / BUNDLE_WEIGHTS
    if kind == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) * 2 // 3])
        return bundle
    obj = safe_load(weights)
    if kind == "other-version":
        obj["format_version"] = 99
    elif kind == "vocab-mismatch":
        obj["tgt_spm"] = train_tokenizer(["völlig andere zeichen xyzqj 0123"] * 5,
                                         model_type="char", vocab_size=60).model_proto
    elif kind == "corrupt-spm":
        obj["src_spm"] = obj["src_spm"][:40]
    torch.save(obj, weights)
    return bundle


BROKEN = {"truncated": "truncated or corrupt", "other-version": "format version 99",
          "vocab-mismatch": "vocab", "corrupt-spm": "SentencePiece"}


def _cli_error(args: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_pickle_payload_bundle_runs_no_code_in_translate_or_serve(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "pwned"
    bundle = _evil_bundle(tmp_path, marker)
    texts = tmp_path / "in.txt"
    texts.write_text("ein hund\n")
    err = _cli_error(["translate", "--model", str(bundle), "--input", str(texts)], capsys)
    assert "refused" in err and "model.pt" in err
    assert not marker.exists()

    app = create_app(ServiceSettings(models=[str(bundle)]))
    with pytest.raises(CheckpointError, match="refused"), TestClient(app):
        pass
    assert not marker.exists()


def test_resume_skips_a_hostile_newest_checkpoint(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    ckpt_dir = tmp_path / "checkpoints"
    save_step({"format_version": 1, "step": 4}, ckpt_dir, 4, keep_last=5, is_best=False)
    torch.save({"format_version": 1, "step": Payload(marker)}, ckpt_dir / "step_00000008.pt")
    with caplog.at_level(logging.WARNING):
        assert load_latest(ckpt_dir) == {"format_version": 1, "step": 4}
    assert "skipping unreadable checkpoint for step 8" in caplog.text
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_bundle_is_one_clear_line(kind: str, tiny_bundle: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    bundle = _broken_bundle(kind, tiny_bundle, tmp_path)
    texts = tmp_path / "in.txt"
    texts.write_text("ein hund\n")
    err = _cli_error(["translate", "--model", str(bundle), "--input", str(texts)], capsys)
    assert BROKEN[kind] in err and str(bundle) in err

    app = create_app(ServiceSettings(models=[str(bundle)]))
    with pytest.raises(CheckpointError, match=BROKEN[kind]), TestClient(app):
        pass


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    return write_experiment(tmp_path / "exp")


@pytest.mark.parametrize("section, key, value, words", [
    ("model", "cel", "gru", "unknown key model.cel"),
    ("train", "epochs", "ten", "train.epochs: expected an integer"),
    ("train", "lr", [0.1], "train.lr: expected a number"),
    ("model", "cell", "transformer", "model.cell: 'transformer' is not allowed"),
    ("decode", "beam_size", 0, "decode.beam_size: 0 is below the minimum"),
])
def test_bad_config_names_file_and_key(experiment: Path, tmp_path: Path, section: str,
                                       key: str, value: Any, words: str,
                                       capsys: pytest.CaptureFixture) -> None:
    raw = yaml.safe_load(experiment.read_text())
    raw[section][key] = value
    experiment.write_text(yaml.safe_dump(raw))
    err = _cli_error(["train", "--config", str(experiment), "--run-dir",
                      str(tmp_path / "run")], capsys)
    assert str(experiment) in err and words in err
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("damage, words", [
    ("drop-last-line", "lines but"),
    ("bad-utf8", "train.de:3: not valid UTF-8"),
    ("gzip-garbage", "train.de: cannot read"),
])
def test_bad_data_names_file_and_line(experiment: Path, tmp_path: Path, damage: str, words: str,
                                      capsys: pytest.CaptureFixture) -> None:
    src = experiment.parent / "train.de"
    lines = src.read_bytes().splitlines(keepends=True)
    if damage == "drop-last-line":
        src.write_bytes(b"".join(lines[:-1]))
    elif damage == "bad-utf8":
        src.write_bytes(b"".join(lines[:2]) + b"der hund \xff\xfe rennt\n" + b"".join(lines[3:]))
    else:
        src.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    err = _cli_error(["train", "--config", str(experiment), "--run-dir",
                      str(tmp_path / "run")], capsys)
    assert words in err and str(src) in err
