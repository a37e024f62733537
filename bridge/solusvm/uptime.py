"""The SolusVM 2 uptime rule: which clock hours of a server are billed, as pure functions.

SolusVM 2 exposes no billing usage endpoint (research, section 7), so the bridge keeps its own timeline:
on every sync it lists the servers and stores one :class:`Observation` (instant, status, plan) per
server. This module turns those observations into billed hours; it does no I/O and reads no clock.

**The rule.** A server is billed for the UTC clock hour ``[HH:00, HH+1:00)`` when

1. at least one observation in that hour saw it running (status ``started``), or
2. it was created in that hour (``created_at`` lies in it), whether or not a poll saw it running.

Each billed hour counts once however often the server was observed in it, and counts in full however
little of it the server ran: "any started hour is billed in full" (vendor docs: a server terminated after
five minutes pays for one hour). Hours are UTC clock hours, not hours since the server started, so a
server seen at 10:50 and at 11:10 is billed for two hours (10:00 and 11:00); a server stopped and started
again within one clock hour is billed once for it. Whether SolusVM itself rounds per run or per clock
hour is unverified; this is our definition.

**Windows.** An hour belongs to the collection window that holds its *start*. Windows that tile time
therefore bill every hour exactly once, also when a window edge is not on the hour (a month in a
``+05:30`` zone): the hour across the edge is billed in the window in which it begins. Each billed hour
becomes one :class:`~bridge.domain.usage.UsageRecord` whose window is that hour, with ``hours = 1`` and
``tokens`` = the ``tokens_per_hour`` of the plan the server was on in that hour: the plan of the last
running observation in the hour, or for an hour billed only because the server was created in it, the
server's plan as given.

**Not done here.**

- The monthly cap. Per server per month, ``tokens = min(ceil(hours) * tokens_per_hour,
  tokens_per_month)`` (vendor docs: 7 tokens/h x 744 h = 5208, capped at 5000; 700 h = 4900 < 5000).
  It is applied at invoicing over the month's records, not here: a window here may be any part of a
  month. How the cap combines with a plan change inside the month, and whether ``tokens_per_month = 0``
  means "no cap", are unverified and for the invoicing rule to define.
- Suspension. Only the status counts; ``is_suspended`` is ignored, since whether a suspended server
  accrues tokens is unverified.
- Gaps. Only observed hours are billed: an hour in which no sync ran (the bridge was down) is not billed
  even if the server ran through it. A gap under-bills, it never over-bills; sync often enough (every
  15 minutes gives each hour four chances) that it does not happen in practice.
- Servers deleted mid-month: the store keeps their observations; the rule needs nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from bridge.domain.instants import as_utc
from bridge.domain.usage import UsageRecord, Window
from bridge.solusvm.client import STATUS_STARTED, Plan, Server

HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True)
class Observation:
    """What one sync saw of one server: when, its SolusVM status, and its plan id when known."""

    at: datetime
    status: str
    plan_id: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", as_utc(self.at))

    @property
    def running(self) -> bool:
        return self.status == STATUS_STARTED


def observe(server: Server, at: datetime) -> Observation:
    """The observation a sync at ``at`` stores for ``server``."""
    return Observation(at=at, status=server.status, plan_id=server.plan_id)


def hour_start(instant: datetime) -> datetime:
    """The start of the UTC clock hour holding ``instant``."""
    return as_utc(instant).replace(minute=0, second=0, microsecond=0)


def hour_window(start: datetime) -> Window:
    """The one-hour window beginning at ``start``."""
    return Window(start, start + HOUR)


def hours_to_bill(
    observations: Iterable[Observation], created_at: datetime, window: Window
) -> list[datetime]:
    """The starts of the UTC hours billed in ``window``, in order (see the module docstring)."""
    return sorted(_billed_hours(observations, created_at, window, fallback_plan_id=None))


def to_usage_records(
    *,
    server_id: int,
    server_name: str,
    user_id: int,
    plan_id: int,
    created_at: datetime,
    observations: Iterable[Observation],
    window: Window,
    tokens_per_hour: Mapping[int, int],
) -> list[UsageRecord]:
    """One record per billed hour of one server in ``window``, oldest first.

    ``plan_id`` is the server's plan, used for hours no running observation names a plan for;
    ``tokens_per_hour`` maps every plan id that may occur to its whole-token hourly rate. A plan
    without a rate raises ValueError, since billing it at zero would hide the fault.
    """
    billed = _billed_hours(observations, created_at, window, fallback_plan_id=plan_id)
    records: list[UsageRecord] = []
    for start in sorted(billed):
        hour_plan = billed[start]
        records.append(
            UsageRecord(
                source="solusvm",
                resource_id=str(server_id),
                resource_name=server_name,
                owner=str(user_id),
                plan=str(hour_plan),
                window=hour_window(start),
                hours=Decimal(1),
                tokens=Decimal(_rate(tokens_per_hour, hour_plan, server_id)),
            )
        )
    return records


def records_for_server(
    server: Server, observations: Iterable[Observation], window: Window, plans: Iterable[Plan]
) -> list[UsageRecord]:
    """:func:`to_usage_records` for a server as the client lists it, with rates from ``plans``."""
    return to_usage_records(
        server_id=server.id,
        server_name=server.name,
        user_id=server.user_id,
        plan_id=server.plan_id,
        created_at=server.created_at,
        observations=observations,
        window=window,
        tokens_per_hour={plan.id: plan.tokens_per_hour for plan in plans},
    )


def _billed_hours(
    observations: Iterable[Observation], created_at: datetime, window: Window, *, fallback_plan_id: int | None
) -> dict[datetime, int | None]:
    """Billed hour start -> the plan billed for it (the last running observation's, else the fallback)."""
    last_seen: dict[datetime, tuple[datetime, int | None]] = {}
    for observation in observations:
        start = hour_start(observation.at)
        if not observation.running or not _in_window(start, window):
            continue
        previous = last_seen.get(start)
        if previous is None or observation.at >= previous[0]:
            last_seen[start] = (observation.at, observation.plan_id)
    billed = {
        start: plan_id if plan_id is not None else fallback_plan_id
        for start, (_, plan_id) in last_seen.items()
    }
    created_hour = hour_start(created_at)
    if _in_window(created_hour, window):
        billed.setdefault(created_hour, fallback_plan_id)
    return billed


def _in_window(start: datetime, window: Window) -> bool:
    return window.start <= start < window.end


def _rate(tokens_per_hour: Mapping[int, int], plan_id: int | None, server_id: int) -> int:
    if plan_id is None or plan_id not in tokens_per_hour:
        raise ValueError(
            f"no tokens_per_hour for plan {plan_id} of SolusVM server {server_id}; keep the rate of every "
            "plan a server ran on, also after the plan is deleted in SolusVM"
        )
    return tokens_per_hour[plan_id]
