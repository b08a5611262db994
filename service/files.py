"""Service: the store of translated files awaiting download (/translate_file -> /download_file).

Each file is kept on disk under a name of its own making (`secrets.token_urlsafe`, so names are
unguessable) and is deleted once downloaded, or after the TTL, whichever comes first. The
client's file name never touches the file system: it is kept as data in a sidecar and sent back
as the download's Content-Disposition. The store is bounded: past `max_bytes` the oldest files
go first. Everything lives in the directory, so several workers share one store.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NAME = re.compile(r"[A-Za-z0-9_-]{32}\.[a-z]{2,8}")  # token_urlsafe(24) plus a suffix


@dataclass(frozen=True)
class StoredFile:
    data: bytes
    filename: str  # what the client should save it as
    media_type: str


class FileStore:
    def __init__(self, directory: str | Path | None, *, ttl_s: float, max_bytes: int):
        # The default is one fixed directory, so that the workers of one server share it.
        default = Path(tempfile.gettempdir()) / f"nmt-files-{getattr(os, 'getuid', int)()}"
        self.dir = Path(directory) if directory else default
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes

    def put(self, data: bytes, *, suffix: str, filename: str, media_type: str) -> str:
        """Stores `data`; returns its name (for /download_file/<name>)."""
        self.sweep(room=len(data))
        name = secrets.token_urlsafe(24) + suffix
        meta = json.dumps({"filename": filename, "media_type": media_type})
        self._write(self.dir / (name + ".json"), meta.encode())
        self._write(self.dir / name, data)  # last: a file without its sidecar is never served
        return name

    def take(self, name: str) -> StoredFile | None:
        """The file named `name`, removed from the store (None: unknown, taken or expired)."""
        if not NAME.fullmatch(name):
            return None
        path = self.dir / name
        claimed = self.dir / f"{name}.taken-{secrets.token_hex(4)}"
        try:
            os.rename(path, claimed)  # atomic: of two concurrent downloads, one gets the file
        except OSError:
            return None
        try:
            expired = time.time() - claimed.stat().st_mtime > self.ttl_s
            data = claimed.read_bytes()
            meta = json.loads((self.dir / (name + ".json")).read_text())
        except (OSError, ValueError):
            return None
        finally:
            claimed.unlink(missing_ok=True)
            (self.dir / (name + ".json")).unlink(missing_ok=True)
        if expired:
            return None
        return StoredFile(data, str(meta["filename"]), str(meta["media_type"]))

    def sweep(self, room: int = 0) -> None:
        """Deletes expired files, then the oldest until `room` more bytes fit the bound."""
        now = time.time()
        files = []
        for path in self.dir.iterdir():
            try:
                stat = path.stat()
            except OSError:
                continue
            if now - stat.st_mtime > self.ttl_s:
                path.unlink(missing_ok=True)
            elif NAME.fullmatch(path.name):
                files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total + room <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            (self.dir / (path.name + ".json")).unlink(missing_ok=True)
            total -= size

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
