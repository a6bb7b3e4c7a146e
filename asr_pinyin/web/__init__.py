"""The dictation web page (static files), served by `asr-pinyin serve` at `/`.

`static_dir()` is the folder; `lookup(url_path)` maps a request path to (bytes, content type)
for a file directly in it ("/" is index.html), or None, so the server's HTTP hook can answer
plain GET requests and leave websocket upgrades to the protocol.
"""
from __future__ import annotations

from pathlib import Path

TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
         ".ico": "image/x-icon"}


def static_dir() -> Path:
    return Path(__file__).resolve().parent / "static"


def lookup(url_path: str) -> tuple[bytes, str] | None:
    """(file bytes, content type) for "/" or "/NAME" of a file in static_dir(), else None."""
    name = url_path.split("?", 1)[0].lstrip("/") or "index.html"
    if "/" in name or "\\" in name or name.startswith("."):
        return None                      # only the folder's own files: no traversal
    path = static_dir() / name
    if path.suffix not in TYPES or not path.is_file():
        return None
    return path.read_bytes(), TYPES[path.suffix]
