"""The shop's orders and the store that keeps them, opened and closed by the app's lifespan."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from pydantic import BaseModel, Field


class OrderLine(BaseModel):
    sku: str = Field(min_length=1, max_length=40)
    quantity: int = Field(ge=1, le=100)
    unit_price_cents: int = Field(ge=0)


class OrderRequest(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    lines: list[OrderLine] = Field(min_length=1, max_length=50)

    @property
    def total_cents(self) -> int:
        return sum(line.quantity * line.unit_price_cents for line in self.lines)


class Order(BaseModel):
    order_id: str
    email: str
    lines: list[OrderLine]
    total_cents: int
    receipt_job_id: str


class ShopError(Exception):
    """The root of the shop's own errors; `problem` names the case in the JSON answer."""

    status_code = 400
    problem = "bad_request"


class OrderNotFoundError(ShopError):
    status_code = 404
    problem = "order_not_found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"no order {order_id!r}")


class OrderStore:
    """The shop's orders: in memory here, a database pool in a real shop. Usable only while open."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self.is_open = False

    async def __aenter__(self) -> Self:
        self.is_open = True
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.is_open = False
        self._orders.clear()

    def add(self, order: Order) -> None:
        self._check_open()
        self._orders[order.order_id] = order

    def get(self, order_id: str) -> Order:
        self._check_open()
        try:
            return self._orders[order_id]
        except KeyError:
            raise OrderNotFoundError(order_id) from None

    def _check_open(self) -> None:
        if not self.is_open:
            raise RuntimeError("the order store is closed")
