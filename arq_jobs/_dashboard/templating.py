"""Rendering the dashboard: the Jinja2 environment (autoescaped), what every page shows around its
content (`Chrome`), and the choice between a whole page and the fragment htmx refreshes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from arq_jobs._api.deps import ArqDep, SettingsDep
from arq_jobs._dashboard import charts, formatting
from arq_jobs._dashboard.assets import HTMX_FILE, HTMX_INTEGRITY, static_path
from arq_jobs._dashboard.security import TOKEN_FIELD, csrf_token
from arq_jobs._jobs.states import JobState
from arq_jobs._stats.window import Window

OVERVIEW_ROUTE = "dashboard_overview"

# htmx without eval or injected styles (the pages' Content-Security-Policy allows neither)
HTMX_CONFIG = {
    "includeIndicatorStyles": False,
    "allowEval": False,
    "allowScriptTags": False,
    "historyEnabled": False,
    "selfRequestsOnly": True,
}


@dataclass(frozen=True, slots=True)
class Chrome:
    """What every page shows around its content, and how it links and acts."""

    base: str
    csrf_token: str
    read_only: bool
    refresh_s: float

    def static(self, name: str) -> str:
        return static_path(self.base, name)

    def url(self, *parts: str) -> str:
        """A dashboard path: `chrome.url("jobs", job_id, "cancel")`."""
        return "/".join([self.base, *(quote(part, safe="") for part in parts)])


def base_path(request: Request) -> str:
    """The dashboard's path prefix as the client sees it (root path included), without a trailing /."""
    return request.url_for(OVERVIEW_ROUTE).path.rstrip("/")


async def get_chrome(request: Request, settings: SettingsDep, redis: ArqDep) -> Chrome:
    return Chrome(
        base=base_path(request),
        csrf_token=await csrf_token(settings, redis),
        read_only=settings.dashboard_read_only,
        refresh_s=settings.dashboard_refresh_s,
    )


def bare_chrome(request: Request) -> Chrome:
    """For error pages, when settings may be what failed: no token, no live refresh (and no actions:
    an error page has none)."""
    return Chrome(base=base_path(request), csrf_token="", read_only=False, refresh_s=0)


ChromeDep = Annotated[Chrome, Depends(get_chrome)]


@jinja2.pass_context
def ago(context: Any, moment: datetime | None) -> str:
    return "" if moment is None else formatting.relative(moment, context["now"])


def query(**params: object) -> str:
    """`?a=1&b=x` of the parameters given a value (None and "" are left out), or "" when none is."""
    kept = {name: value for name, value in params.items() if value is not None and value != ""}
    return "?" + urlencode(kept) if kept else ""


def build_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago,
        iso=formatting.iso,
        duration=formatting.duration,
        snippet=formatting.snippet,
        pretty_json=formatting.pretty_json,
        compact_json=formatting.compact_json,
        short_id=formatting.short_id,
    )
    env.globals.update(
        HTMX_FILE=HTMX_FILE,
        HTMX_INTEGRITY=HTMX_INTEGRITY,
        HTMX_CONFIG=HTMX_CONFIG,
        TOKEN_FIELD=TOKEN_FIELD,
        query=query,
        STATES=list(JobState),
        WINDOWS=list(Window),
        throughput_chart=charts.throughput_chart,
        depth_chart=charts.depth_chart,
        latency_chart=charts.latency_chart,
        failure_rate_chart=charts.failure_rate_chart,
    )
    return env


templates = Jinja2Templates(env=build_environment())


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    chrome: Chrome,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `name` with the chrome, the current time and `context`."""
    values = {"chrome": chrome, "now": datetime.now(UTC), **(context or {})}
    return templates.TemplateResponse(request, name, values, status_code=status_code, headers=headers)


def render_page(request: Request, chrome: Chrome, page: str, context: dict[str, Any]) -> HTMLResponse:
    """The whole page `<page>.html`, or for an htmx refresh only its live region `_<page>.html`."""
    name = f"_{page}.html" if is_htmx(request) else f"{page}.html"
    return render(request, chrome, name, {"page": page, **context}, headers={"Vary": "HX-Request"})
