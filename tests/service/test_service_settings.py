"""Settings from NMT_* environment variables; which bundles get served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]


def test_environment_variables(monkeypatch):
    monkeypatch.setenv("NMT_MODELS", "models/a, models/b")
    monkeypatch.setenv("NMT_API_KEYS", '["k1", "k2"]')
    monkeypatch.setenv("NMT_BATCHING", "false")
    monkeypatch.setenv("NMT_MAX_WAIT_MS", "12.5")
    s = ServiceSettings()
    assert s.models == ["models/a", "models/b"]
    assert s.api_keys == ["k1", "k2"]
    assert (s.batching, s.max_wait_ms, s.cors_origins) == (False, 12.5, [])


def test_bad_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("NMT_MAX_BEAM", "0")
    with pytest.raises(ValueError, match="max_beam"):
        ServiceSettings()


@pytest.mark.parametrize(("env", "message"), [
    ({"NMT_PRECISION": "fp16"}, "fp16 needs a CUDA device"),
    ({"NMT_PRECISION": "bf16", "NMT_QUANTIZE": "int8"}, "does not combine with NMT_QUANTIZE"),
])
def test_a_precision_the_device_cannot_decode_in_is_refused_before_loading(
        monkeypatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message) as err:
        ServiceSettings()
    assert "precision" in str(err.value)
    monkeypatch.setenv("NMT_DEVICE", "cuda")  # no model loads here: the setting alone
    monkeypatch.delenv("NMT_QUANTIZE", raising=False)
    assert ServiceSettings().precision == env["NMT_PRECISION"]


def test_bundle_dirs(tmp_path):
    with pytest.raises(ValueError, match="no model bundles under"):
        ServiceSettings(models_root=str(tmp_path)).bundle_dirs()
    for name in ("b", "a", "not-a-bundle"):
        (tmp_path / name).mkdir()
    (tmp_path / "a" / "model.pt").write_bytes(b"")
    (tmp_path / "b" / "model.pt").write_bytes(b"")
    assert [p.name for p in ServiceSettings(models_root=str(tmp_path)).bundle_dirs()] == ["a", "b"]
    with pytest.raises(ValueError, match="not a model bundle"):
        ServiceSettings(models=[str(tmp_path / "not-a-bundle")]).bundle_dirs()


def test_default_models(monkeypatch):
    monkeypatch.setenv("NMT_DEFAULT_MODELS", "de-en=general-de-en, en-de = general-en-de")
    assert ServiceSettings().default_pairs() == {("de", "en"): "general-de-en",
                                                 ("en", "de"): "general-en-de"}
    monkeypatch.setenv("NMT_DEFAULT_MODELS", '{"de-en": "a"}')
    assert ServiceSettings().default_models == {"de-en": "a"}
    monkeypatch.delenv("NMT_DEFAULT_MODELS")
    assert ServiceSettings().default_models == {}


@pytest.mark.parametrize("value", ["de-en", "deen=a", "de-en=", "de-en-fr=a", "{oops",
                                   "de-en=a,de-en=b", "[1]"])
def test_malformed_default_models_name_the_setting(monkeypatch, value):
    monkeypatch.setenv("NMT_DEFAULT_MODELS", value)
    with pytest.raises(ValueError, match="NMT_DEFAULT_MODELS"):
        ServiceSettings()


def test_model_workers_and_batch_budget_follow_the_device(monkeypatch):
    monkeypatch.setattr("service.settings.usable_cores", lambda: 8)
    monkeypatch.delenv("NMT_MODEL_PROCESSES", raising=False)  # tests/conftest.py sets it
    cpu = ServiceSettings()
    assert (cpu.model_worker_count(), cpu.batch_token_budget()) == (8, 4_000)
    assert ServiceSettings(workers=3).model_worker_count() == 2  # the cores among the workers
    assert ServiceSettings(workers=16).model_worker_count() == 1
    gpu = ServiceSettings(device="cuda:0")
    assert (gpu.model_worker_count(), gpu.batch_token_budget()) == (1, 16_000)
    monkeypatch.setenv("NMT_MODEL_PROCESSES", "0")
    monkeypatch.setenv("NMT_MAX_BATCH_TOKENS", "500")
    chosen = ServiceSettings(device="cuda")
    assert (chosen.model_worker_count(), chosen.batch_token_budget()) == (0, 500)


def test_the_default_worker_count_follows_the_cpu_affinity():
    """`taskset -c 0` (or a container's cpuset) leaves one core: one model worker, not one per
    core of the machine."""
    code = ("import os; from service.settings import ServiceSettings, usable_cores; "
            "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "print(usable_cores(), ServiceSettings().model_worker_count())")
    env = {k: v for k, v in os.environ.items() if k != "NMT_MODEL_PROCESSES"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=REPO, check=True)
    assert done.stdout.split() == ["1", "1"]
