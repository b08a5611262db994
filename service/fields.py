"""Service: the fields of a LibreTranslate-style request, wherever the client put them.

LibreTranslate reads its fields from Flask's `request.values` (the query string and a form body)
or from a JSON body, so clients send any of: a JSON object, a url-encoded or multipart form, or
`POST /translate?q=...&source=...&target=...` with an empty body. All of them work here. Bytes
that are not UTF-8 are refused with a 400, never decoded into other characters and translated.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterable
from typing import Any, Protocol

from fastapi import Request

from service.errors import ApiError
from service.limits import BodyTooLarge

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class _MultiDict(Protocol):
    def __iter__(self) -> Any: ...
    def getlist(self, key: Any) -> list[Any]: ...


async def read_fields(request: Request) -> dict[str, Any]:
    """The request's fields: the query string's, then the body's (JSON object or form) on top.

    When both name a field, the body's value wins: the body is what the client composed as the
    request, while a query string may be left over from a URL template or a proxy.
    `q` given more than once in a form or query string (`q=a&q=b`) is a list, as in JSON.

    Raises:
        ApiError: 400 for a body or query string that is not valid UTF-8, JSON or form data.
    """
    fields = _query_fields(request)
    fields.update(await _body_fields(request))
    return fields


def _query_fields(request: Request) -> dict[str, Any]:
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return {}
    if not _is_utf8_urlencoded(raw):
        raise ApiError(400, "Invalid request: the query string is not valid UTF-8")
    return _collect(request.query_params)


async def _body_fields(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in _FORMS:
        # The form parsers turn bad bytes into other characters that we would translate.
        raw = await request.body()  # bounded by BodySizeLimitMiddleware; form() reuses it
        if ctype == "application/x-www-form-urlencoded" and not _is_utf8_urlencoded(raw):
            raise ApiError(400, "Invalid request: the body is not valid UTF-8")
        try:
            form = await request.form()
        except BodyTooLarge:
            raise
        except Exception:
            raise ApiError(400, "Invalid request: the body is not valid form data") from None
        if ctype == "multipart/form-data" and _has_non_utf8_field(form.multi_items(), raw):
            raise ApiError(400, "Invalid request: a form field is not valid UTF-8")
        return _collect(form)
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "Invalid request: the body is not valid UTF-8") from None
    except json.JSONDecodeError as err:
        raise ApiError(400, f"Invalid request: the body is not valid JSON ({err.msg} at "
                            f"position {err.pos})") from None
    except (RecursionError, ValueError):
        # json.loads recurses per nesting level and refuses integers over 4300 digits.
        raise ApiError(400, "Invalid request: the body is not valid JSON (nested too deeply "
                            "or a number too large)") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid request: the body must be a JSON object")
    return data


def _collect(values: _MultiDict) -> dict[str, Any]:
    """Form or query fields as JSON would give them: `q` repeated is a list, others the first."""
    fields: dict[str, Any] = {}
    for key in values:
        texts = [v for v in values.getlist(key) if isinstance(v, str)]  # not uploaded files
        if key == "q" and len(texts) > 1:
            fields[key] = texts
        elif texts:
            fields[key] = texts[0]
    return fields


def _is_utf8_urlencoded(raw: bytes) -> bool:
    try:
        urllib.parse.unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _has_non_utf8_field(items: Iterable[tuple[str, Any]], raw: bytes) -> bool:
    """True when a multipart text field was not valid UTF-8. Starlette decodes such a part as
    Latin-1 instead of refusing it; the UTF-8 encoding of that text then differs from the bytes
    sent (every invalid sequence has a byte >= 0x80), so it is not found in the raw body."""
    return any(isinstance(v, str) and v.encode("utf-8", "surrogatepass") not in raw
               for _, v in items)
