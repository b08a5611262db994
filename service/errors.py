"""Service: error bodies and handlers.

Every error is `{"error": "<message>"}`, as LibreTranslate answers, with the status that names the
mistake: 400 bad input, 403 bad API key, 404/405 no such route, 413 body too large, 422 a body that
does not match the schema, 429 rate limit, 503 not ready or overloaded, 504 timed out, 500 our
fault. Messages name the offending field; they never carry stack traces or file paths.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("service")


class ApiError(Exception):
    """A failure to report to the client as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def describe_validation_errors(errors: Sequence[Any], *, prefix: str = "") -> str:
    """One line naming each bad field: `texts.0: String should have at most 5000 characters`."""
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        field = ".".join(loc) or "body"
        msg = err.get("msg", "invalid value")
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            return f"{prefix}request body is not valid JSON" + (f" ({detail})" if detail else "")
        if err.get("type") == "missing":
            msg = "field required"
        if field == "body" and err.get("type") == "model_attributes_type":
            msg = "expected a JSON object (send Content-Type: application/json)"
        parts.append(f"{field}: {msg}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return prefix + "; ".join(parts)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if message == "There was an error parsing the body":
        # FastAPI's words for a body that is neither JSON nor form data, e.g. invalid UTF-8.
        message = "request body could not be parsed (is it UTF-8 JSON?)"
    return error_response(exc.status_code, message, getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    json_invalid = any(e.get("type") == "json_invalid" for e in errors)
    return error_response(400 if json_invalid else 422, describe_validation_errors(errors))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
