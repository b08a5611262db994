#!/usr/bin/env bash
# The GPU check, for a lent CUDA machine (about 5 minutes on an H200): CUDA tests, decoding
# figures, one Multi30k training epoch. Everything it needs is inside the repository, plus the
# wheels of the pure-Python packages the machine lacks (`make gpu-wheels` here puts them in
# .whl/, which the device tool carries). Results go to $OUT (or ./gpu-check-out).
#
#   device run: bash benchmarks/gpu_check.sh        (carry: .whl)
set -euo pipefail
out=${OUT:-gpu-check-out}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:.
else
  export PYTHONPATH=.
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/nmt/test_cuda.py 2>&1 | tee "$out/cuda-tests.txt"
python3 -m nmt train --config configs/multi30k-de-en.yaml --run-dir /tmp/gpu-epoch \
  --set train.epochs=1 --set train.valid_metric=loss --set train.max_tokens=8000 \
  2>&1 | tail -n 20 | tee "$out/train-epoch.txt"
python3 benchmarks/gpu_check.py --model models/multi30k-de-en --train-run /tmp/gpu-epoch \
  --json "$out/gpu_check.json" | tee "$out/gpu_check.md"
