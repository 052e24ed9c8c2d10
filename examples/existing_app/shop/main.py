"""The shop's API: its own lifespan, routes and error answers, plus one `install()` call that adds the
job API under `/jobs-api` and hands the routes `JobsDep`. Serve it with `uvicorn shop.main:app`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, TypedDict

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from arq_jobs import NotFoundError
from arq_jobs.fastapi import JobsDep, install
from shop.orders import Order, OrderRequest, OrderStore, ShopError
from shop.tasks.receipts import ReceiptInput, send_receipt


class ShopState(TypedDict):
    orders: OrderStore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[ShopState]:
    async with OrderStore() as orders:
        yield {"orders": orders}


app = FastAPI(title="Shop", version="1.0.0", lifespan=lifespan)
install(app, prefix="/jobs-api", task_packages=["shop.tasks"])


@app.exception_handler(ShopError)
async def on_shop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShopError)
    return JSONResponse({"problem": exc.problem, "detail": str(exc)}, status_code=exc.status_code)


@app.exception_handler(StarletteHTTPException)
async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(
        {"problem": f"http_{exc.status_code}", "detail": exc.detail, "path": request.url.path},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def get_orders(request: Request) -> OrderStore:
    """The order store the lifespan opened."""
    orders: OrderStore = request.state.orders
    return orders


OrdersDep = Annotated[OrderStore, Depends(get_orders)]


class OrderAccepted(BaseModel):
    order_id: str
    total_cents: int
    receipt_job_id: str
    receipt_status_url: str


class OrderView(Order):
    receipt_status: str | None  # null once the job's record has expired


@app.post("/orders", status_code=202)
async def create_order(
    body: OrderRequest, orders: OrdersDep, jobs: JobsDep, response: Response
) -> OrderAccepted:
    """Accept an order; its receipt is emailed in the background (poll `receipt_status_url`)."""
    order_id = uuid.uuid4().hex[:12]
    job = await jobs.enqueue(
        send_receipt, ReceiptInput(order_id=order_id, email=body.email, total_cents=body.total_cents)
    )
    orders.add(
        Order(
            order_id=order_id,
            email=body.email,
            lines=body.lines,
            total_cents=body.total_cents,
            receipt_job_id=job.job_id,
        )
    )
    response.headers["Location"] = job.status_url
    return OrderAccepted(
        order_id=order_id,
        total_cents=body.total_cents,
        receipt_job_id=job.job_id,
        receipt_status_url=job.status_url,
    )


@app.get("/orders/{order_id}")
async def get_order(order_id: str, orders: OrdersDep, jobs: JobsDep) -> OrderView:
    """The order and where its receipt is."""
    order = orders.get(order_id)
    try:
        receipt_status: str | None = (await jobs.status(order.receipt_job_id)).status.value
    except NotFoundError:
        receipt_status = None
    return OrderView(**order.model_dump(), receipt_status=receipt_status)
