"""Flash messages: what an action did (or why it could not), shown above the page by htmx, or as a
page of its own to a client without JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import Request
from fastapi.responses import HTMLResponse

from arq_jobs._dashboard.templating import Chrome, is_htmx, render

Level = Literal["success", "warning", "error"]

# htmx refreshes the live regions (and clears the selection) when an action answers with this event
ACTED_EVENT = "dashboard:acted"


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True, slots=True)
class Flash:
    level: Level
    message: str
    links: tuple[Link, ...] = ()
    problems: tuple[str, ...] = ()


def answer(
    request: Request,
    chrome: Chrome,
    flash: Flash,
    *,
    status_code: int = 200,
    title: str = "Done",
    back: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The flash as an htmx fragment, or as a whole page with a link `back` (default: the overview)."""
    if is_htmx(request):
        return render(
            request, chrome, "_flash.html", {"flash": flash}, status_code=status_code, headers=headers
        )
    context = {"flash": flash, "title": title, "back": back or chrome.base + "/"}
    return render(request, chrome, "message.html", context, status_code=status_code, headers=headers)
