"""Service: request and response schemas, with hard upper limits.

The limits here are absolute ceilings that keep a parser from ever holding something huge; the
configured limits (ServiceSettings.max_*) are usually tighter and are checked by the routes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LangCode = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
Text = Annotated[str, Field(max_length=1_000_000)]
TextList = Annotated[list[Text], Field(max_length=10_000)]


class ErrorResponse(BaseModel):
    error: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in {
        400: "invalid request: a missing or bad field, an unsupported language",
        403: "invalid API key",
        413: "request body too large",
        429: "rate limit exceeded (see Retry-After)",
        500: "translation failed",
        503: "models not loaded yet, or too many texts waiting (see Retry-After)",
        504: "translation timed out",
    }.items()
}


# ---- LibreTranslate-compatible -------------------------------------------------------------

class LibreTranslateRequest(BaseModel):
    """POST /translate, as JSON or form fields."""

    q: Text | TextList
    source: Annotated[str, Field(min_length=1, max_length=16)]  # a code, or "auto"
    target: LangCode
    format: Literal["text", "html"] = "text"
    alternatives: int = Field(default=0, ge=0, le=32)
    api_key: str | None = Field(default=None, max_length=512)


class DetectedLanguage(BaseModel):
    confidence: float
    language: str


class LibreTranslateResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 - LibreTranslate's field name
    alternatives: list[str] | list[list[str]] | None = None
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None  # noqa: N815


class DetectRequest(BaseModel):
    q: Text | TextList
    api_key: str | None = Field(default=None, max_length=512)


class LanguageResponse(BaseModel):
    code: str
    name: str
    targets: list[str]


# ---- native API ----------------------------------------------------------------------------

class TranslateRequest(BaseModel):
    """POST /v1/translate: a batch of texts for one language pair."""

    model_config = ConfigDict(extra="forbid")

    texts: Annotated[list[Text], Field(min_length=1, max_length=10_000)]
    source: LangCode
    target: LangCode
    model: str | None = Field(default=None, min_length=1, max_length=200,
                              description="a name from /v1/models that translates source to "
                                          "target; default: the pair's default model")
    domain: str | None = Field(default=None, min_length=1, max_length=64,
                               description="one of the model's domains (see /v1/models); "
                                           "default: the model's default_domain")
    beam_size: int | None = Field(default=None, ge=1, le=128,
                                  description="beam width; 1 is greedy; default: the model's")
    nbest: int = Field(default=1, ge=1, le=33, description="candidates per text, best first")
    length_penalty: float | None = Field(default=None, ge=0.0, le=10.0)
    format: Literal["text", "html"] = Field(
        default="text", description="html: inline tags are kept around the words they wrap")
    protect: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=100,
        description="terms to keep verbatim (besides URLs, numbers, e-mails, emoji, @handles, "
                    "#tags and `code`, which are always kept)")
    glossary: dict[Annotated[str, Field(min_length=1, max_length=200)],
                   Annotated[str, Field(max_length=200)]] = Field(
        default={}, max_length=100,
        description="source term -> the fixed target text it must become")
    return_scores: bool = True
    return_attention: bool = Field(
        default=False, description="attention weights (target x source), attention models "
                                   "only; omitted when a text exceeds the model's max_input_tokens")


class AttentionResponse(BaseModel):
    source_tokens: list[str]
    target_tokens: list[str]
    weights: list[list[float]]  # (T, S)


class CandidateResponse(BaseModel):
    text: str
    score: float | None = None  # log-probability after length penalty


class TextResult(BaseModel):
    text: str
    score: float | None = None
    candidates: list[CandidateResponse] = []  # the n-best list (best first) when nbest > 1
    attention: AttentionResponse | None = None
    warnings: list[str] | None = None  # what the model noticed about this text; omitted if none


class Timing(BaseModel):
    queue_ms: float  # waiting for the model
    compute_ms: float  # the model call that translated these texts (possibly merged)
    total_ms: float  # the whole request, as the server saw it
    batch_texts: int  # texts in that model call, this request's and others'


class TranslateResponse(BaseModel):
    model: str
    domain: str | None = None  # the domain that translated the texts; omitted without tags
    source: str
    target: str
    results: list[TextResult]
    timing: Timing


class ModelSize(BaseModel):
    file_bytes: int | None  # model.pt on disk
    parameters: int | None  # as recorded in the bundle's metadata


class ModelResponse(BaseModel):
    name: str  # what POST /v1/translate takes as `model`
    source: str
    target: str
    default: bool  # the model requests for this pair get when they name none
    description: str  # what it is for: the model card's summary, or from its domains
    domains: list[str]  # what POST /v1/translate takes as `domain`; [] without tags
    default_domain: str | None
    # validation scores from the bundle (metadata.valid_scores), else the model card's metadata
    scores: dict[str, Any] | None
    size: ModelSize
    has_attention: bool
    max_input_tokens: int
    metadata: dict[str, Any]  # training and evaluation facts stored in the bundle (e.g. BLEU)


# ---- operations ----------------------------------------------------------------------------

class HealthResponse(BaseModel):
    status: str


class ReadyResponse(BaseModel):
    status: str
    # Bundles `nmt serve --skip-bad-models` left out: name -> why; omitted when none were.
    skipped_models: dict[str, str] | None = None
