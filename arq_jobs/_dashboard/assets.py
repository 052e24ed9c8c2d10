"""The dashboard's static files, served from this package (no CDN, no build step), and the pinned htmx.

Each URL carries a digest of its file (`?v=`), so browsers may cache them and still see a new version
after an upgrade; htmx is loaded with a Subresource Integrity hash of the pinned release.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fastapi import HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"

HTMX_VERSION = "2.0.11"
HTMX_FILE = f"htmx-{HTMX_VERSION}.min.js"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
HTMX_INTEGRITY = "sha256-" + base64.b64encode(bytes.fromhex(HTMX_SHA256)).decode()

MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


STATIC_FILES = {path.name: path for path in sorted(STATIC_DIR.iterdir()) if path.suffix in MEDIA_TYPES}
VERSIONS = {name: file_digest(path)[:12] for name, path in STATIC_FILES.items()}


def static_path(base: str, name: str) -> str:
    """The URL path of a static file under the dashboard's base path."""
    return f"{base}/static/{name}?v={VERSIONS[name]}"


def static_file(name: str) -> FileResponse:
    """One of the files shipped in `static/` (nothing else: the name is looked up, never joined)."""
    path = STATIC_FILES.get(name)
    if path is None:
        raise HTTPException(404, f"no static file {name!r}")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "private, max-age=604800"},
    )
