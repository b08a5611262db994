"""Service: settings, read from NMT_* environment variables (or passed in by tests).

Every field can be set as an environment variable named NMT_ plus the field name in capitals,
e.g. NMT_MAX_BATCH_TOKENS=2000. List fields take JSON (`["a","b"]`) or a comma-separated string
(`a,b`). `nmt serve` turns its command-line options into these variables, because uvicorn
builds the app itself (in each worker) from the string "service.main:create_app".
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUNDLE_WEIGHTS = "model.pt"  # the file that marks a directory as a model bundle
_REDIS_SCHEMES = ("redis", "rediss", "unix")
_REDIS_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_PAIR = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[A-Za-z][A-Za-z0-9_]*")  # de-en: one "-" between codes


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity (`taskset`, a container's cpuset),
    not every core of the machine, which is what `os.cpu_count()` counts."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NMT_", extra="ignore", frozen=True)

    # Models: explicit bundle directories, or (when empty) every bundle directory under models_root.
    models: Annotated[list[str], NoDecode] = []
    models_root: str = "models"
    device: str = "cpu"
    quantize: Literal["int8"] | None = None  # int8: dynamic quantisation, CPU only
    # Decoding precision: auto (bf16 autocast on a GPU that has it, else fp32), or bf16 on a
    # CPU: the matrix products in bfloat16 (nmt.models.kernels; fast with AMX).
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    num_threads: int | None = Field(default=None, ge=1)  # torch CPU threads; None: torch default
    # The model a language pair uses when a request names none: "de-en=general-de-en,en-de=..."
    # (or a JSON object). A pair not named here gets the model with the most domains, then the
    # first by name; ModelRegistry checks that every name given is loaded and fits its pair.
    default_models: Annotated[dict[str, str], NoDecode] = {}

    # Decoding limits.
    max_beam: int = Field(default=8, ge=1, le=128)
    max_alternatives: int = Field(default=5, ge=0, le=32)  # n-best beyond the best one

    # Request limits, checked before any work is queued.
    max_text_chars: int = Field(default=5_000, ge=1)
    max_request_chars: int = Field(default=20_000, ge=1)
    max_texts: int = Field(default=64, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    body_timeout_s: float = Field(default=20.0, gt=0.0)  # the whole body must arrive by then: 408

    # The cost model (service/cost.py), also checked before any work: what the model will do.
    # Sized so a 5,000-character paragraph of ordinary prose (about 1,500 subwords and 45
    # sentences for the shipped models) passes with beam 8, and four of them per request.
    max_text_tokens: int = Field(default=3_000, ge=1)  # source subwords per text
    max_request_tokens: int = Field(default=8_000, ge=1)  # source subwords per request
    max_request_units: int = Field(default=500, ge=1)  # model inputs (sentences) per request
    max_decode_steps: int = Field(default=100_000, ge=1)  # output length caps x beam

    # Micro-batching: requests with identical decoding options are merged into one model call.
    batching: bool = True  # false: each request is translated alone (for benchmarks)
    # Source subwords per merged batch; unset: 4,000 on a CPU, 16,000 on a GPU (where a larger
    # batch costs little more time per step than a small one).
    max_batch_tokens: int | None = Field(default=None, ge=1)
    max_wait_ms: float = Field(default=5.0, ge=0.0, le=1_000.0)  # wait for more requests
    max_queue: int = Field(default=256, ge=1)  # texts waiting per model; beyond: 503
    # Fair sharing (deficit round-robin): a client's share of one model call while others wait,
    # and the texts one client (API key or address) may have waiting per model.
    slice_tokens: int = Field(default=64, ge=1)
    max_client_queue: int = Field(default=128, ge=1)  # beyond: 503
    # Model calls that may run at once per model, each for a different client: while one client's
    # long call runs, another's short one need not wait for it (each call uses NMT_NUM_THREADS).
    model_lanes: int = Field(default=2, ge=1, le=16)
    # A lane that would idle while the only client with work is busy in another lane runs a
    # spare call of that client's work, of at most this many source subwords x beam width (so a
    # client arriving meanwhile waits for one short call at most). 0 (the default): no spare
    # calls. For a server whose traffic all comes from one address (one client); 512 gave 1.2x
    # the closed-loop throughput there, but longer open-loop latency (benchmarks/RESULTS.md).
    spare_call_cost: int = Field(default=0, ge=0)
    # Model worker processes (service/model_workers.py), shared by all models, each loading every
    # model: model calls run there, never in the HTTP process, whose event loop then has its core
    # to itself. 0: calls run in this process's lane threads. Unset: the cores divided among the
    # server's processes (NMT_WORKERS), at least one. With model workers, NMT_NUM_THREADS is per
    # model worker (unset: the cores divided among all of them).
    model_processes: int | None = Field(default=None, ge=0, le=64)
    request_timeout_s: float = Field(default=30.0, gt=0.0)  # beyond: 504

    # Access: optional API keys (any one of them is accepted) and a per-key (or per-client
    # address, without keys) request rate; 0 means unlimited.
    api_keys: Annotated[list[str], NoDecode] = []
    rate_limit_per_minute: int = Field(default=0, ge=0)
    # Wrong or missing API keys per client address per minute; beyond, that address gets 429
    # (right key or not) until its oldest failure is a minute old. 0: unlimited.
    auth_failures_per_minute: int = Field(default=10, ge=0)
    cors_origins: Annotated[list[str], NoDecode] = []  # empty: CORS off
    # Shared limits (docs/deploy.md): with a Redis URL (redis://HOST:6379/0, rediss://... for
    # TLS, unix:///path.sock) both limits above count in Redis, across every worker and replica
    # (needs the redis extra); empty: each process counts alone. Keys start with redis_prefix,
    # so deployments can share one Redis. A Redis command taking over redis_timeout_s counts as
    # Redis lost: each process then counts alone until Redis answers again.
    redis_url: str = ""
    redis_prefix: str = "nmt"
    redis_timeout_s: float = Field(default=0.5, gt=0.0, le=10.0)

    # Document translation (/translate_file, /v1/documents): upload size (checked while reading),
    # characters and text units per document, and the store of results awaiting download
    # (files_dir; empty: a temporary directory), each deleted once downloaded or after the TTL.
    max_file_bytes: int = Field(default=10_000_000, ge=1_024)
    max_document_chars: int = Field(default=500_000, ge=1)
    max_document_units: int = Field(default=20_000, ge=1)
    files_dir: str = ""
    files_ttl_min: float = Field(default=30.0, gt=0.0)
    files_max_bytes: int = Field(default=1_000_000_000, ge=1_024)  # the store's total size

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Worker processes of this server (`nmt serve --workers`): /ready answers 200 only once every
    # one of them has loaded its models.
    workers: int = Field(default=1, ge=1)

    # Set by `nmt serve --skip-bad-models`: bundles it found unloadable and left out (name ->
    # why, without paths); /ready lists them.
    skipped_models: Annotated[dict[str, str], NoDecode] = {}

    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def model_worker_count(self) -> int:
        """Model worker processes this server process starts (see `model_processes`): on a
        GPU one (it owns the device, and batching fills it), on a CPU one per core."""
        if self.model_processes is not None:
            return self.model_processes
        if self.on_gpu():
            return 1
        return max(1, usable_cores() // self.workers)

    def batch_token_budget(self) -> int:
        """Source subwords per merged model call (see `max_batch_tokens`)."""
        if self.max_batch_tokens is not None:
            return self.max_batch_tokens
        return 16_000 if self.on_gpu() else 4_000

    @field_validator("models", "api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        """Environment values arrive as one string: JSON list, or comma-separated."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("precision")
    @classmethod
    def _check_precision(cls, value: str, info: ValidationInfo) -> str:
        """A precision the device can decode in (checked here, before any model loads: the
        Translator would refuse it later, after the workers started)."""
        device = str(info.data.get("device", "cpu"))
        if info.data.get("quantize") and value not in ("auto", "fp32"):
            raise ValueError(f"{value} does not combine with NMT_QUANTIZE (int8 decodes in int8 "
                             "and fp32)")
        if device.startswith("cuda"):
            return value
        if value == "fp16":
            raise ValueError(f"fp16 needs a CUDA device (NMT_DEVICE={device}); on a CPU use "
                             "fp32 or bf16")
        if value == "bf16":
            from nmt.models.kernels import bf16_products_supported  # torch: only when asked

            if not bf16_products_supported():
                raise ValueError("bf16 on this CPU needs oneDNN's bfloat16 products, which this "
                                 "torch build or CPU lacks; use fp32")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        """A URL redis-py reads, or empty; the message names NMT_REDIS_URL."""
        value = value.strip()
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in _REDIS_SCHEMES:
            raise ValueError(f"NMT_REDIS_URL: expected redis://HOST:PORT/DB, rediss://HOST:PORT/DB "
                             f"or unix:///PATH, not a {parts.scheme or 'scheme-less'} URL")
        try:
            parts.port  # noqa: B018  # raises on a port that is not a number
        except ValueError:
            raise ValueError("NMT_REDIS_URL: the port is not a number from 0 to 65535") from None
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("NMT_REDIS_URL: no host, e.g. redis://127.0.0.1:6379/0")
        return value

    @field_validator("redis_prefix")
    @classmethod
    def _check_redis_prefix(cls, value: str) -> str:
        if not _REDIS_PREFIX.fullmatch(value):
            raise ValueError(f"NMT_REDIS_PREFIX: {value!r} is not 1-64 letters, digits or _.:-")
        return value

    @field_validator("skipped_models", mode="before")
    @classmethod
    def _parse_skipped_models(cls, value: Any) -> Any:
        """A JSON object, as `nmt serve` writes it."""
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as err:
                raise ValueError(f"NMT_SKIPPED_MODELS: not a valid JSON object ({err.msg})"
                                 ) from None
        return value

    @field_validator("default_models", mode="before")
    @classmethod
    def _parse_default_models(cls, value: Any) -> Any:
        """`de-en=NAME,en-de=NAME` (or a JSON object) into {"de-en": NAME}; names the setting."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as err:
                    raise ValueError(f"NMT_DEFAULT_MODELS: not a valid JSON object ({err.msg})"
                                     ) from None
            else:
                value = {}
                for item in filter(None, (part.strip() for part in text.split(","))):
                    pair, sep, name = item.partition("=")
                    if not sep:
                        raise ValueError(f"NMT_DEFAULT_MODELS: {item!r} is not PAIR=MODEL, e.g. "
                                         "de-en=general-de-en")
                    if pair.strip() in value:
                        raise ValueError(f"NMT_DEFAULT_MODELS: {pair.strip()} is named twice")
                    value[pair.strip()] = name.strip()
        if not isinstance(value, dict):
            raise ValueError("NMT_DEFAULT_MODELS: expected PAIR=MODEL items, e.g. "
                             "de-en=general-de-en,en-de=general-en-de")
        for pair, name in value.items():
            if not isinstance(pair, str) or not _PAIR.fullmatch(pair):
                raise ValueError(f"NMT_DEFAULT_MODELS: {pair!r} is not a language pair such as "
                                 "de-en (source code, '-', target code)")
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"NMT_DEFAULT_MODELS: the model for {pair} is empty")
        return value

    def default_pairs(self) -> dict[tuple[str, str], str]:
        """`default_models` keyed by (source, target)."""
        pairs = {}
        for pair, name in self.default_models.items():
            src, tgt = pair.split("-")  # the validator allows exactly one "-"
            pairs[(src, tgt)] = name.strip()
        return pairs

    def bundle_dirs(self) -> list[Path]:
        """The bundle directories to serve; raises ValueError with a clear message if none."""
        if self.models:
            dirs = [Path(m) for m in self.models]
            for d in dirs:
                if not (d / BUNDLE_WEIGHTS).is_file():
                    raise ValueError(f"{d}: not a model bundle (no {BUNDLE_WEIGHTS} inside)")
            return dirs
        root = Path(self.models_root)
        dirs = sorted(p for p in root.glob("*") if (p / BUNDLE_WEIGHTS).is_file())
        if not dirs:
            raise ValueError(
                f"no model bundles under {root}/ (a bundle is a directory holding "
                f"{BUNDLE_WEIGHTS}); pass --model DIR or set NMT_MODELS"
            )
        return dirs
