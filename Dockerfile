# CPU image for `nmt serve`: the LibreTranslate-compatible API, the native API and the web page.
#
#   docker build -t nmt .
#   docker run --rm -p 5000:5000 nmt
#   docker run --rm -p 5000:5000 -e NMT_API_KEYS=key1,key2 -e NMT_MAX_BATCH_TOKENS=2000 nmt
#
# Every service setting is an NMT_* environment variable (see service/settings.py); the
# shipped bundles under models/ are copied in and served by default (NMT_MODELS_ROOT).
# To serve other bundles, mount them: -v /srv/bundles:/app/models:ro
#
# GPU variant: build FROM an image with CUDA and Python 3.11 (e.g.
# nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 plus python3.11, or
# pytorch/pytorch:2.x-cuda12.x-cudnn9-runtime), install torch from
# https://download.pytorch.org/whl/cu126 instead of .../whl/cpu, set ENV NMT_DEVICE=cuda, and
# run with `docker run --gpus all ...`. Keep NMT_WORKERS=1 on one GPU: each worker holds its own
# copy of every model.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NMT_HOST=0.0.0.0 \
    NMT_PORT=5000 \
    NMT_WORKERS=1 \
    NMT_MODELS_ROOT=/app/models \
    NMT_DEVICE=cpu

WORKDIR /app

# CPU-only torch first (about 200 MB instead of several GB of CUDA libraries); `pip install .`
# then finds it already satisfies the project's torch requirement.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY nmt ./nmt
COPY service ./service
# The serving set, plus the redis extra (shared rate limits with NMT_REDIS_URL, deploy/); not
# train (TensorBoard) or report (matplotlib).
RUN pip install --no-cache-dir "./.[redis]" \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin nmt

# The default models, last: a new model does not invalidate the layers above.
COPY --chown=root:root models ./models

USER 10001
EXPOSE 5000

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('NMT_PORT', '5000') + '/ready', timeout=4)"]

CMD ["nmt", "serve", "--host", "0.0.0.0"]
