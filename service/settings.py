"""Service: settings, read from NMT_* environment variables (or passed in by tests).

Every field can be set as an environment variable named NMT_ plus the field name in capitals,
e.g. NMT_MAX_BATCH_TOKENS=2000. List fields take JSON (`["a","b"]`) or a comma-separated string
(`a,b`). `nmt serve` turns its command-line options into these variables, because uvicorn
builds the app itself (in each worker) from the string "service.main:create_app".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUNDLE_WEIGHTS = "model.pt"  # the file that marks a directory as a model bundle


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NMT_", extra="ignore", frozen=True)

    # Models: explicit bundle directories, or (when empty) every bundle directory under models_root.
    models: Annotated[list[str], NoDecode] = []
    models_root: str = "models"
    device: str = "cpu"
    quantize: Literal["int8"] | None = None  # int8: dynamic quantisation, CPU only
    num_threads: int | None = Field(default=None, ge=1)  # torch CPU threads; None: torch default

    # Decoding limits.
    max_beam: int = Field(default=8, ge=1, le=128)
    max_alternatives: int = Field(default=5, ge=0, le=32)  # n-best beyond the best one

    # Request limits, checked before any work is queued.
    max_text_chars: int = Field(default=5_000, ge=1)
    max_request_chars: int = Field(default=20_000, ge=1)
    max_texts: int = Field(default=64, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)

    # Micro-batching: requests with identical decoding options are merged into one model call.
    batching: bool = True  # false: each request is translated alone (for benchmarks)
    max_batch_tokens: int = Field(default=4_000, ge=1)  # source subwords per merged batch
    max_wait_ms: float = Field(default=5.0, ge=0.0, le=1_000.0)  # wait for more requests
    max_queue: int = Field(default=256, ge=1)  # texts waiting per model; beyond: 503
    request_timeout_s: float = Field(default=30.0, gt=0.0)  # beyond: 504

    # Access: optional API keys (any one of them is accepted) and a per-key (or per-client
    # address, without keys) request rate; 0 means unlimited.
    api_keys: Annotated[list[str], NoDecode] = []
    rate_limit_per_minute: int = Field(default=0, ge=0)
    cors_origins: Annotated[list[str], NoDecode] = []  # empty: CORS off

    log_level: Literal["debug", "info", "warning", "error"] = "info"

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
