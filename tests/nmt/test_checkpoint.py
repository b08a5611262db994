"""Tests for nmt.checkpoint: bundle round trip, refusal of bad or unsafe files, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import nmt.checkpoint as checkpoint
from nmt.checkpoint import (
    BUNDLE_WEIGHTS,
    CheckpointError,
    atomic_save,
    export_bundle,
    load_model,
    safe_load,
)
from nmt.config import Config, config_from_dict
from nmt.data.batching import make_batch
from nmt.models.seq2seq import Seq2Seq, build_model
from nmt.tokenization import Tokenizer, train_tokenizer
from nmt.training.rotation import load_latest, save_step

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    text = ["der hund rennt", "the dog runs", "die katze schläft", "the cat sleeps"] * 10
    return train_tokenizer(text, model_type="char", vocab_size=40)


def tiny_cfg(**model: object) -> Config:
    return config_from_dict({
        "data": {"train_src": "a", "train_tgt": "b"},
        "model": {"emb_dim": 8, "enc_hidden": 8, "dec_hidden": 12, "attn_dim": 8,
                  "dropout": 0.0, "emb_dropout": 0.0, **model},
    })


def make_model(cfg: Config, tok: Tokenizer) -> Seq2Seq:
    torch.manual_seed(0)
    return build_model(cfg.model, src_vocab_size=tok.vocab_size, tgt_vocab_size=tok.vocab_size)


def bundle(tmp_path: Path, tok: Tokenizer, cfg: Config | None = None, **kwargs: object
           ) -> tuple[Path, Seq2Seq]:
    cfg = cfg or tiny_cfg()
    model = make_model(cfg, tok)
    out = export_bundle(tmp_path / "bundle", config=cfg, state_dict=model.state_dict(),
                        src_tokenizer=tok, tgt_tokenizer=tok, metadata={"note": "test"}, **kwargs)
    return out, model.eval()


def outputs(model: Seq2Seq, tok: Tokenizer) -> torch.Tensor:
    ids = tok.encode(["der hund", "the cat sleeps"])
    with torch.no_grad():
        return model(make_batch(ids, ids[::-1]))


@pytest.mark.parametrize("model_kw", [
    {},
    {"cell": "lstm", "attention": "luong_general", "input_feeding": True},
    {"cell": "rnn", "attention": "none", "share_embeddings": True},
])
def test_bundle_round_trip_gives_identical_outputs(tmp_path: Path, tokenizer: Tokenizer,
                                                   model_kw: dict) -> None:
    cfg = tiny_cfg(**model_kw)
    out, model = bundle(tmp_path, tokenizer, cfg)
    loaded = load_model(out)
    assert loaded.config == cfg
    assert loaded.metadata == {"note": "test"}
    assert loaded.src_tokenizer.model_proto == tokenizer.model_proto
    assert not loaded.model.training
    assert torch.equal(outputs(loaded.model, tokenizer), outputs(model, tokenizer))
    # the weights file alone is enough; the readable copies are extras
    assert load_model(out / BUNDLE_WEIGHTS).config == cfg
    assert {"config.json", "metadata.json", "src.spm.model", "tgt.spm.model"} <= {
        p.name for p in out.iterdir()}


def test_half_precision_bundle_is_close(tmp_path: Path, tokenizer: Tokenizer) -> None:
    out, model = bundle(tmp_path, tokenizer, half=True)
    stored = safe_load(out / BUNDLE_WEIGHTS)["model"]
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    loaded = load_model(out)
    torch.testing.assert_close(outputs(loaded.model, tokenizer), outputs(model, tokenizer),
                               atol=1e-2, rtol=1e-2)


def test_directory_without_weights_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a model bundle"):
        load_model(tmp_path)


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_model(tmp_path / "nope.pt")


def test_truncated_file_is_refused(tmp_path: Path, tokenizer: Tokenizer) -> None:
    out, _ = bundle(tmp_path, tokenizer)
    weights = out / BUNDLE_WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.pt"):
        load_model(out)


@pytest.mark.parametrize("content", [b"just some text\n", b""])
def test_non_checkpoint_bytes_are_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "notes.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_model(path)


@pytest.mark.parametrize("obj", [{"model": {}}, [1, 2, 3], {"weights": torch.zeros(2)}])
def test_non_nmt_torch_file_is_refused(tmp_path: Path, obj: object) -> None:
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="not an nmt checkpoint"):
        load_model(path)


def test_wrong_format_version_is_refused(tmp_path: Path, tokenizer: Tokenizer) -> None:
    out, _ = bundle(tmp_path, tokenizer)
    obj = safe_load(out / BUNDLE_WEIGHTS)
    obj["format_version"] = checkpoint.FORMAT_VERSION + 1
    torch.save(obj, out / BUNDLE_WEIGHTS)
    with pytest.raises(CheckpointError, match="format version"):
        load_model(out)


def test_mismatched_vocabulary_is_refused(tmp_path: Path, tokenizer: Tokenizer) -> None:
    out, _ = bundle(tmp_path, tokenizer)
    other = train_tokenizer(["völlig andere Zeichen: xyzqj 0123456789"] * 5, model_type="char",
                            vocab_size=60)
    assert other.vocab_size != tokenizer.vocab_size
    obj = safe_load(out / BUNDLE_WEIGHTS)
    obj["tgt_spm"] = other.model_proto
    torch.save(obj, out / BUNDLE_WEIGHTS)
    with pytest.raises(CheckpointError, match="vocab"):
        load_model(out)


def test_invalid_stored_config_is_refused(tmp_path: Path, tokenizer: Tokenizer) -> None:
    out, _ = bundle(tmp_path, tokenizer)
    obj = safe_load(out / BUNDLE_WEIGHTS)
    obj["config"]["model"]["cell"] = "transformer"
    torch.save(obj, out / BUNDLE_WEIGHTS)
    with pytest.raises(CheckpointError, match="config"):
        load_model(out)


def test_corrupt_sentencepiece_bytes_are_refused(tmp_path: Path, tokenizer: Tokenizer) -> None:
    out, _ = bundle(tmp_path, tokenizer)
    obj = safe_load(out / BUNDLE_WEIGHTS)
    obj["src_spm"] = b"garbage"
    torch.save(obj, out / BUNDLE_WEIGHTS)
    with pytest.raises(CheckpointError, match="SentencePiece"):
        load_model(out)


class _Payload:
    """Unpickling this calls `Path.touch(marker)`: code execution, if the loader allows it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_payload_is_refused_and_runs_no_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "config": {}, "model": _Payload(marker)}, evil)
    # The payload is live: an unsafe loader would run it.
    live = tmp_path / "live-marker"
    torch.save({"x": _Payload(live)}, tmp_path / "live.pt")
    torch.load(tmp_path / "live.pt", weights_only=False)
    assert live.exists()

    with pytest.raises(CheckpointError, match="refused"):
        load_model(evil)
    assert not marker.exists()
    with pytest.raises(CheckpointError):
        safe_load(evil)
    assert not marker.exists()


def test_os_system_payload_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "system-marker"

    class Shell:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format_version": 1, "model": Shell()}, tmp_path / "shell.pt")
    with pytest.raises(CheckpointError, match="refused"):
        load_model(tmp_path / "shell.pt")
    assert not marker.exists()


def test_failed_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    target = tmp_path / "ckpt" / "step.pt"
    atomic_save({"format_version": 1, "value": torch.tensor([1.0])}, target)
    real_save = torch.save

    def half_then_crash(obj: object, handle) -> None:
        real_save(obj, handle)
        handle.seek(0)
        data = handle.read() if handle.readable() else None
        handle.seek(0)
        handle.truncate(len(data) // 2 if data else 10)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", half_then_crash)
    with pytest.raises(OSError):
        atomic_save({"format_version": 1, "value": torch.tensor([2.0])}, target)
    monkeypatch.undo()
    assert safe_load(target)["value"].tolist() == [1.0]
    assert [p.name for p in target.parent.iterdir()] == ["step.pt"]  # temp file cleaned up


def test_sigkill_while_writing_leaves_previous_checkpoint(tmp_path: Path) -> None:
    """A process killed in the middle of atomic_save never replaces the target file."""
    ckpt_dir = tmp_path / "checkpoints"
    save_step({"format_version": 1, "step": 10}, ckpt_dir, 10, keep_last=3, is_best=True)
    ready = tmp_path / "ready"
    script = textwrap.dedent(f"""
        import time, torch
        import nmt.checkpoint as checkpoint
        from pathlib import Path
        from nmt.training.rotation import save_step

        real_save = torch.save
        def slow_save(obj, handle):
            real_save(obj, handle)
            handle.flush()
            size = handle.tell()
            handle.truncate(size // 2)  # half the bytes are on disk ...
            Path({str(ready)!r}).touch()
            time.sleep(60)  # ... when the kill comes
        checkpoint.torch.save = slow_save
        save_step({{"format_version": 1, "step": 20, "w": torch.zeros(1000)}},
                  Path({str(ckpt_dir)!r}), 20, keep_last=3, is_best=True)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        for _ in range(600):
            if ready.exists() or proc.poll() is not None:
                break
            import time

            time.sleep(0.05)
        assert ready.exists(), "the writer never reached the middle of its write"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    # best.pt and the step file are the old ones; the half-written temp file is never picked up
    assert safe_load(ckpt_dir / "best.pt")["step"] == 10
    latest = load_latest(ckpt_dir)
    assert latest is not None and latest["step"] == 10
    assert not (ckpt_dir / "step_00000020.pt").exists()


@pytest.mark.parametrize("kind, words", [
    ("lm", "is a language-model bundle; translation"),
    ("lm-checkpoint", "is a language-model training checkpoint; translation"),
    ("tokenizer", "unknown kind 'tokenizer'"),
    (None, "unknown kind None"),
])
def test_other_kinds_are_refused_naming_found_and_expected(tmp_path: Path, tokenizer: Tokenizer,
                                                           kind: str | None, words: str) -> None:
    out, _ = bundle(tmp_path, tokenizer)
    obj = safe_load(out / BUNDLE_WEIGHTS)
    if kind is None:
        del obj["kind"]
    else:
        obj["kind"] = kind
    torch.save(obj, out / BUNDLE_WEIGHTS)
    with pytest.raises(CheckpointError, match=words) as info:
        load_model(out)
    assert str(out / BUNDLE_WEIGHTS) in str(info.value)
    assert "a translation model bundle or a translation training checkpoint" in str(info.value)


def test_training_checkpoints_load_as_translation_models(tmp_path: Path,
                                                         tokenizer: Tokenizer) -> None:
    out, model = bundle(tmp_path, tokenizer)
    obj = safe_load(out / BUNDLE_WEIGHTS)
    obj["kind"] = "checkpoint"
    torch.save(obj, tmp_path / "step_00000001.pt")
    loaded = load_model(tmp_path / "step_00000001.pt")
    torch.testing.assert_close(outputs(loaded.model, tokenizer), outputs(model, tokenizer))
