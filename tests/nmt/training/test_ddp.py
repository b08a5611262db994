"""DDP on the CPU: two gloo processes train the same toy config and end with identical weights."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.multiprocessing as mp

from nmt.checkpoint import load_model, safe_load
from nmt.config import config_from_dict
from nmt.training.rotation import list_step_checkpoints
from tests.conftest import tiny_config_dict, write_toy_files

WORLD_SIZE = 2
TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker(rank: int, runs: list[tuple[dict[str, Any], str, str, int]]) -> None:
    """One torchrun-like process: environment as torchrun sets it, then the product's train(),
    once per run (raw config, run directory, dump directory, the run's rendezvous port): one
    pair of processes trains every variant, instead of two fresh interpreters each."""
    os.environ.update(MASTER_ADDR="127.0.0.1", RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from nmt.training import trainer as trainer_module
    from nmt.training.run import train

    real_train = trainer_module.Trainer.train
    for raw_cfg, run_dir, dump_dir, port in runs:
        os.environ["MASTER_PORT"] = str(port)  # train() joins and leaves a process group

        def train_and_dump(self: trainer_module.Trainer, dump_dir: str = dump_dir):
            result = real_train(self)
            if rank != 0:  # rank 0's model is replaced by the bundle's weights in finish()
                torch.save(self.model.state_dict(), Path(dump_dir) / f"rank{rank}.pt")
            torch.save({"step": self.pos.step}, Path(dump_dir) / f"rank{rank}-pos.pt")
            return result

        trainer_module.Trainer.train = train_and_dump  # type: ignore[method-assign]  # a spy
        train(config_from_dict(raw_cfg), Path(run_dir), device_name="cpu")


# Every training option that changes the forward pass, with and without scheduled sampling (its
# step-by-step loop once bypassed DDP, so the ranks' weights drifted apart).
FORWARD_VARIANTS = {
    "gru-bahdanau": ({"dropout": 0.1}, {}),
    "gru-bahdanau-sampling": ({"dropout": 0.1}, {"scheduled_sampling": 0.3}),
    "lstm-feeding-smoothing": (
        {"cell": "lstm", "attention": "luong_general", "input_feeding": True, "dropout": 0.1,
         "emb_dropout": 0.1, "tie_output": False},
        {"label_smoothing": 0.1},
    ),
    "lstm-feeding-smoothing-sampling": (
        {"cell": "lstm", "attention": "luong_general", "input_feeding": True, "dropout": 0.1,
         "emb_dropout": 0.1, "tie_output": False},
        {"label_smoothing": 0.1, "scheduled_sampling": 0.5},
    ),
    "rnn-no-attention-sampling": (
        {"cell": "rnn", "attention": "none", "enc_layers": 2, "dec_layers": 2,
         "bidirectional": False},
        {"scheduled_sampling": 0.3},
    ),
}


MAX_STEPS = 3


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Every variant trained by one pair of gloo processes: variant -> (run dir, dump dir)."""
    root = tmp_path_factory.mktemp("ddp")
    data = write_toy_files(root / "data", n_train=120, n_valid=12)
    runs, dirs = [], {}
    for variant, (model, extra_train) in sorted(FORWARD_VARIANTS.items()):
        raw = tiny_config_dict(data, model=model,
                               train={"max_steps": MAX_STEPS, "valid_every": 0,
                                      "valid_metric": "loss", **extra_train})
        run_dir, dump_dir = root / variant / "run", root / variant / "dump"
        dump_dir.mkdir(parents=True)
        runs.append((raw, str(run_dir), str(dump_dir), free_port()))
        dirs[variant] = (run_dir, dump_dir)
    context = mp.start_processes(worker, args=(runs,), nprocs=WORLD_SIZE, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=0.5):  # raises if a rank failed
            assert time.monotonic() < deadline, "DDP training did not finish in time"
    finally:
        for proc in context.processes:
            if proc.is_alive():
                proc.kill()
    return dirs


@pytest.mark.parametrize("variant", sorted(FORWARD_VARIANTS))
def test_two_cpu_processes_agree(ddp_runs: dict[str, tuple[Path, Path]], variant: str) -> None:
    run_dir, dump_dir = ddp_runs[variant]
    for rank in range(WORLD_SIZE):
        assert safe_load_plain(dump_dir / f"rank{rank}-pos.pt")["step"] == MAX_STEPS
    steps = list_step_checkpoints(run_dir / "checkpoints")
    assert steps[-1][0] == MAX_STEPS
    rank0 = safe_load(steps[-1][1])["model"]
    rank1 = safe_load_plain(dump_dir / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        torch.testing.assert_close(rank1[key], rank0[key], atol=1e-6, rtol=0)

    # only rank 0 wrote the run directory, and its bundle holds the trained weights
    loaded = load_model(run_dir / "bundle")
    assert loaded.metadata["world_size"] == WORLD_SIZE
    initial = safe_load(steps[0][1])["model"] if len(steps) > 1 else None
    assert initial is None or any(not torch.equal(initial[k], rank0[k]) for k in rank0)
    assert len(list((run_dir / "tensorboard").glob("events.out.tfevents.*"))) == 1


def safe_load_plain(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)
