"""The vendored htmx is the pinned release (checksum), loaded with its integrity hash; static files
are served from the package with a version in their URL."""

from __future__ import annotations

import base64
import hashlib

import httpx

from arq_jobs._dashboard.assets import HTMX_FILE, HTMX_INTEGRITY, HTMX_SHA256, HTMX_VERSION, STATIC_DIR

PINNED_HTMX = ("2.0.11", "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717")


def test_vendored_htmx_matches_the_pinned_checksum() -> None:
    assert (HTMX_VERSION, HTMX_SHA256) == PINNED_HTMX
    content = (STATIC_DIR / HTMX_FILE).read_bytes()
    assert hashlib.sha256(content).hexdigest() == PINNED_HTMX[1]
    assert b"2.0.11" in content
    assert HTMX_INTEGRITY == "sha256-" + base64.b64encode(hashlib.sha256(content).digest()).decode()


async def test_pages_load_htmx_from_the_dashboard_with_its_integrity_hash(client: httpx.AsyncClient) -> None:
    html = (await client.get("/dashboard/")).text
    assert (
        f'<script src="/dashboard/static/{HTMX_FILE}?v=d6fdc75f204e" integrity="{HTMX_INTEGRITY}" defer>'
        in html
    )
    assert "https://" not in html and "http://" not in html  # nothing from elsewhere


async def test_static_files_are_served_with_their_type(client: httpx.AsyncClient) -> None:
    script = await client.get(f"/dashboard/static/{HTMX_FILE}")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert hashlib.sha256(script.content).hexdigest() == HTMX_SHA256
    css = await client.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for missing in ("nope.js", "..%2Fassets.py", "templates"):
        assert (await client.get(f"/dashboard/static/{missing}")).status_code == 404
