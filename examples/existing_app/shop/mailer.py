"""The worker's mailer: opened in the worker's on_startup, read by tasks as `ctx.shared[MAILER]`."""

from __future__ import annotations

from dataclasses import dataclass

from arq_jobs import JobContext

MAILER = "mailer"  # the worker context key it is stored under


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str
    message_id: str


class Mailer:
    """Sends email. This one keeps it in `outbox`; a real shop would hold an SMTP or HTTP API client."""

    def __init__(self, sender: str) -> None:
        self.sender = sender
        self.outbox: list[Email] = []
        self.closed = False

    async def send(self, email: Email) -> None:
        if self.closed:
            raise RuntimeError("the mailer is closed")
        self.outbox.append(email)

    async def aclose(self) -> None:
        self.closed = True


def get_mailer(ctx: JobContext) -> Mailer:
    """The mailer the worker's on_startup opened."""
    mailer: Mailer = ctx.shared[MAILER]
    return mailer
