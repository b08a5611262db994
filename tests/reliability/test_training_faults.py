"""Training faults: SIGKILL mid-checkpoint and --resume reach the uninterrupted run's weights;
a crash between checkpoint writes, a full disk at start or mid-run are clear and recoverable.

(NaN/inf policies and an unwritable run directory are tested in tests/nmt/training/.)
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import nmt.checkpoint as checkpoint
import nmt.training.run as run_module
from nmt.checkpoint import safe_load
from nmt.cli import main
from nmt.config import load_config
from nmt.training.rotation import BEST, list_step_checkpoints, save_step
from nmt.training.run import train
from reliability.kill_resume import (
    FINISHED,
    bundle_weights,
    checkpoint_problems,
    kill_when,
    max_difference,
    start,
    temp_files,
    train_command,
    write_experiment,
)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_experiment(tmp_path_factory.mktemp("experiment"))


@pytest.fixture(scope="module")
def reference(experiment: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """An uninterrupted run's bundle weights (in-process: the same code as `nmt train`)."""
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    train(load_config(experiment), run_dir, device_name="cpu")
    return bundle_weights(run_dir)


def test_sigkill_during_a_checkpoint_write_then_resume(experiment: Path, reference: dict,
                                                       tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    log = tmp_path / "train.log"
    proc = start(train_command("--config", str(experiment), "--run-dir", str(run_dir)), log)
    where = kill_when(proc, run_dir, mode="tmp", delay_s=0, after_checkpoints=1)
    assert where != FINISHED, log.read_text()[-2000:]
    # Whatever the moment, every checkpoint under its real name is whole.
    assert checkpoint_problems(run_dir) == []
    assert list_step_checkpoints(run_dir / "checkpoints")

    resumed = start(train_command("--resume", str(run_dir)), log)
    assert resumed.wait(300) == 0, log.read_text()[-2000:]
    assert temp_files(run_dir) == []  # the interrupted write's leftovers are cleaned up
    assert max_difference(bundle_weights(run_dir), reference) <= 1e-6


def test_a_crash_between_best_and_step_writes_keeps_best_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt_dir = tmp_path / "checkpoints"
    save_step({"format_version": 1, "step": 4}, ckpt_dir, 4, keep_last=3, is_best=True)
    real_save = checkpoint.atomic_save
    writes = []

    def crash_on_second_write(obj: dict, path: Path) -> None:
        writes.append(Path(path).name)
        if len(writes) == 2:
            raise OSError(errno.EIO, "simulated crash")
        real_save(obj, path)

    monkeypatch.setattr("nmt.training.rotation.atomic_save", crash_on_second_write)
    with pytest.raises(OSError):
        save_step({"format_version": 1, "step": 8}, ckpt_dir, 8, keep_last=3, is_best=True)
    # The newest step file (where --resume starts) is never newer than best.pt: resuming
    # replays to step 8 and rewrites both, so the bundle (from best.pt) is what it would be.
    newest = safe_load(list_step_checkpoints(ckpt_dir)[-1][1])["step"]
    assert safe_load(ckpt_dir / BEST)["step"] >= newest


def test_a_full_disk_is_a_clear_error_at_start(experiment: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture) -> None:
    class Usage:
        free = 50 * 2**20

    monkeypatch.setattr(run_module.shutil, "disk_usage", lambda path: Usage())
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(experiment), "--run-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "only 50 MiB free" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_disk_full_mid_run_keeps_checkpoints_and_resumes(experiment: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    real_save = checkpoint.torch.save
    calls = []

    def fill_disk(obj: object, handle: object) -> None:
        calls.append(1)
        if len(calls) >= 4:  # the disk fills up at the fourth write
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle)

    monkeypatch.setattr(checkpoint.torch, "save", fill_disk)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(experiment), "--run-dir", str(run_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and f"--resume {run_dir}" in err
    assert "Traceback" not in err
    assert checkpoint_problems(run_dir) == [] and temp_files(run_dir) == []

    monkeypatch.undo()  # space freed
    main(["train", "--resume", str(run_dir)])
    assert (run_dir / "bundle" / "model.pt").is_file()
