"""Small makers of usage records and price books, so each test reads as its story."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bridge.domain.cycles import BillingCycle
from bridge.domain.pricing import PlanRate, PriceBook
from bridge.domain.usage import Source, UsageRecord, Window

HOUR = timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hours_between(start: datetime, end: datetime) -> Decimal:
    return Decimal(int((end - start).total_seconds())) / Decimal(3600)


def usage(
    start: datetime,
    end: datetime,
    *,
    hours: Decimal | str | None = None,
    source: Source = "openstack",
    resource_id: str = "vm-1",
    name: str = "web-1",
    plan: str = "m1.small",
    owner: str = "project-1",
) -> UsageRecord:
    """One window of one resource; by default it ran the whole window."""
    ran = hours_between(start, end) if hours is None else Decimal(hours)
    return UsageRecord(source, resource_id, name, owner, plan, Window(start, end), ran)


def whole_cycle(cycle: BillingCycle, **fields: object) -> UsageRecord:
    """A resource that ran for the whole of ``cycle``."""
    return usage(cycle.start, cycle.end, **fields)  # type: ignore[arg-type]


def daily(start: datetime, days: int, **fields: object) -> list[UsageRecord]:
    """One record per day for ``days`` days, as a collector running daily would report them."""
    return [usage(start + i * 24 * HOUR, start + (i + 1) * 24 * HOUR, **fields) for i in range(days)]  # type: ignore[arg-type]


def book(currency: str = "EUR") -> PriceBook:
    """The price book most stories use: two flavors, a free one, SolusVM at 0.00100 a token."""
    return PriceBook(
        currency=currency,
        flavor_prices={"m1.small": Decimal("0.10"), "m1.large": Decimal("0.40"), "free.tiny": Decimal("0")},
        token_price=Decimal("0.00100"),
        plans={"7": PlanRate(tokens_per_hour=7, tokens_per_month=5000), "10": PlanRate(10, 3000)},
    )
