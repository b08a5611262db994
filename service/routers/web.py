"""Service: the web page at / and its static files (no CDN: everything is served from here)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from service.errors import ApiError

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}

router = APIRouter(tags=["web page"], include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    if name not in _ASSETS:  # a fixed list: no path from the URL ever reaches the file system
        raise ApiError(404, "Not Found")
    return FileResponse(STATIC_DIR / name, media_type=_ASSETS[name])
