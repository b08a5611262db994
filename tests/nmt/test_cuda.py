"""CUDA paths: decoding (fp32 and autocast) and a few training steps on the GPU.

These run where a CUDA device is present (benchmarks/gpu_check.sh runs them on a lent GPU);
without one, only the CPU-side checks of the precision option run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.config import config_from_dict
from nmt.training.run import train
from nmt.translator import Translator, TranslatorError
from tests.support.tiny import synthetic_lines, write_tiny_bundle

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
TEXTS = synthetic_lines(8, seed=4)


def test_fp16_needs_cuda_and_int8_takes_no_half_precision(tmp_path: Path) -> None:
    bundle = write_tiny_bundle(tmp_path / "b")
    assert Translator.from_checkpoint(bundle).precision == "fp32"  # auto on the CPU
    with pytest.raises(TranslatorError, match="fp16 needs a CUDA device"):
        Translator.from_checkpoint(bundle, precision="fp16")
    with pytest.raises(TranslatorError, match="does not combine"):
        Translator.from_checkpoint(bundle, precision="bf16", quantize="int8")


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_decoding_matches_the_cpu(tmp_path: Path, precision: str) -> None:
    bundle = write_tiny_bundle(tmp_path / "b", seed=2)
    cpu = Translator.from_checkpoint(bundle).translate(TEXTS, beam_size=3)
    gpu = Translator.from_checkpoint(bundle, device="cuda", precision=precision)
    out = gpu.translate(TEXTS, beam_size=3)
    same = sum(a.text == b.text for a, b in zip(cpu, out, strict=True))
    # fp32 differs from the CPU only by kernel rounding; half precision may flip a few ties.
    assert same >= (len(TEXTS) if precision == "fp32" else len(TEXTS) // 2)


@needs_cuda
def test_cuda_training_steps(tmp_path: Path, write_toy_corpus, tiny_config) -> None:
    cfg = config_from_dict(tiny_config(write_toy_corpus(n_train=60, n_valid=8),
                                       train={"max_steps": 4, "precision": "bf16"}))
    bundle = train(cfg, tmp_path / "run", device_name="cuda")
    assert bundle is not None and (bundle / "model.pt").is_file()
