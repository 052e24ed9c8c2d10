"""Order receipts, emailed by a worker after the order was accepted."""

from __future__ import annotations

from pydantic import BaseModel, Field

from arq_jobs import JobContext, TaskInput, task
from shop.mailer import Email, get_mailer


class ReceiptInput(TaskInput):
    order_id: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    total_cents: int = Field(ge=0)


class ReceiptSent(BaseModel):
    order_id: str
    to: str
    total_cents: int
    message_id: str
    sent_by: str = Field(description="The sender address of the worker's mailer.")


@task(max_attempts=5, timeout_s=30)
async def send_receipt(ctx: JobContext, data: ReceiptInput) -> ReceiptSent:
    """Email the customer the receipt of their order."""
    mailer = get_mailer(ctx)
    # the job id in the Message-ID: a re-run of the same job sends a message a mail server can de-duplicate
    email = Email(
        to=data.email,
        subject=f"Your order {data.order_id}",
        body=f"Thank you for your order. Total: {data.total_cents / 100:.2f} EUR",
        message_id=f"<{ctx.job_id}@shop.example>",
    )
    await mailer.send(email)
    return ReceiptSent(
        order_id=data.order_id,
        to=data.email,
        total_cents=data.total_cents,
        message_id=email.message_id,
        sent_by=mailer.sender,
    )
