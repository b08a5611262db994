"""Service: file uploads: their own body limit, and reading the upload within NMT_MAX_FILE_BYTES.

Every other route keeps NMT_MAX_BODY_BYTES; the upload routes allow a file of
NMT_MAX_FILE_BYTES plus room for the form's other fields.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import ApiError
from service.limits import BodySizeLimitMiddleware

UPLOAD_PATHS = frozenset({"/translate_file", "/v1/documents"})
FORM_ROOM = 64 * 1024  # multipart boundaries and the small fields next to the file


class UploadBodyLimitMiddleware:
    """BodySizeLimitMiddleware with a larger limit on the upload routes."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_file_bytes: int):
        self.default = BodySizeLimitMiddleware(app, max_bytes=max_bytes)
        self.uploads = BodySizeLimitMiddleware(app, max_bytes=max(max_bytes,
                                                                  max_file_bytes + FORM_ROOM))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upload = scope["type"] == "http" and scope.get("path") in UPLOAD_PATHS
        await (self.uploads if upload else self.default)(scope, receive, send)


async def read_upload(upload: Any, max_bytes: int, *, field: str = "file") -> bytes:
    """The uploaded file's bytes; 400 when `upload` is not a file, 413 past `max_bytes`."""
    if not isinstance(upload, UploadFile):
        raise ApiError(400, f"Invalid request: missing {field} parameter (a file upload)")
    chunks, size = [], 0
    while chunk := await upload.read(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"{field}: larger than the limit of {max_bytes} bytes "
                                "(NMT_MAX_FILE_BYTES)")
        chunks.append(chunk)
    if not size:
        raise ApiError(400, f"Invalid request: {field} is empty")
    return b"".join(chunks)
