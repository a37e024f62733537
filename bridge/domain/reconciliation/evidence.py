"""The evidence of a month, as plain values a store query yields: what was collected, billed and decided.

One :class:`ClientEvidence` holds everything about one client's month, so clients stream through one at
a time. Collected hours come as aggregates (one :class:`Collected` may sum a resource's windows of a
cycle) plus exceptions (single windows where their time matters: a suspended client's), and rows of one
resource, plan and cycle add up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final

from bridge.domain.cycles import calendar_cycle_containing, local_midnight, zone_of
from bridge.domain.instants import as_utc
from bridge.domain.usage import Source

ZERO: Final = Decimal(0)
Key = tuple[str, str, str, datetime]
"""(source, resource id, flavor or plan, cycle start): what one invoice line of a cycle bills."""


def microseconds(span: timedelta) -> Decimal:
    """A span in whole microseconds, exactly."""
    return Decimal(span // timedelta(microseconds=1))


def hours_between(start: datetime, end: datetime) -> Decimal:
    """The hours from ``start`` to ``end``, exactly (to the microsecond)."""
    return microseconds(end - start) / Decimal(3_600_000_000)


class PushState(enum.Enum):
    """What WHMCS confirmed of an invoice: the state of its ``create_invoice`` outbox row."""

    ISSUED_BY_BRIDGE = "issued_by_bridge"  # generate_invoices: the bridge numbers it, WHMCS gets nothing
    PENDING = "pending"
    IN_DOUBT = "in_doubt"
    PUSHED = "pushed"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"  # the push was withdrawn before it went out (a replaced invoice)


class SkipReason(enum.Enum):
    ZERO_INVOICE = "zero_invoice"
    CUT_OFF = "cut_off"


@dataclass(frozen=True, slots=True)
class Month:
    """A calendar month in the billing time zone, and the instant the evidence was read (``as_of``)."""

    label: str
    start: datetime
    end: datetime
    zone: str
    as_of: datetime

    @classmethod
    def calendar(cls, label: str, zone: str, as_of: datetime) -> Month:
        """The month ``label`` (``2022-10``) in ``zone``; a ValueError names the expected form."""
        try:
            year, month = (int(part) for part in label.split("-"))
            first = date(year, month, 1)
        except ValueError:
            raise ValueError(f"month {label!r} is not of the form YYYY-MM, such as 2022-10") from None
        cycle = calendar_cycle_containing(local_midnight(first, zone), zone)
        return cls(f"{year:04d}-{month:02d}", cycle.start, cycle.end, zone_of(zone).key, as_utc(as_of))

    def day_starts(self) -> tuple[datetime, ...]:
        """The UTC instant each local day of the month begins, and the month's end."""
        zone = zone_of(self.zone)
        first = self.start.astimezone(zone).date()
        last = (self.end - timedelta(microseconds=1)).astimezone(zone).date()
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return (*(local_midnight(day, zone) for day in days), self.end)

    def days(self) -> tuple[date, ...]:
        zone = zone_of(self.zone)
        return tuple(start.astimezone(zone).date() for start in self.day_starts()[:-1])


@dataclass(frozen=True, slots=True)
class ClientRef:
    client_id: str
    name: str
    currency: str


@dataclass(frozen=True, slots=True)
class Collected:
    """Hours one resource ran on one flavor or plan inside the month, in one billing cycle of its client.

    One usage window, or the sum of many (``start``: the first window's start, ``end``: the last one's
    end, both clipped to the month). ``cycle_start``/``cycle_end`` is the client's billing cycle the
    windows belong to (the month itself for an owner linked to no client); ``hours_outside_month`` the
    hours of the same resource and plan in that cycle outside the month, when the cycle crosses its edge.
    Several rows of one resource, plan and cycle add up.
    """

    source: Source
    resource_id: str
    resource_name: str
    owner: str
    plan: str
    cycle_start: datetime
    cycle_end: datetime
    start: datetime
    end: datetime
    hours: Decimal
    hours_outside_month: Decimal = ZERO

    @property
    def key(self) -> Key:
        return (self.source, self.resource_id, self.plan, self.cycle_start)


@dataclass(frozen=True, slots=True)
class BilledLine:
    """An invoice line that bills a resource's plan in a cycle of the month, as the store keeps it.

    ``invoice`` is the invoice's number, or its reference while it has none. ``standing`` is False for a
    cancelled invoice; ``replaced_by`` names the invoice that replaced it after a plan or discount change.
    ``late`` lines sit on a later invoice and bill usage that arrived after the cycle was invoiced.
    """

    invoice: str
    standing: bool
    line_reference: str
    source: Source
    resource_id: str
    plan: str
    period_start: datetime
    period_end: datetime
    hours: Decimal
    billed_hours: Decimal
    unit_price: Decimal
    amount: Decimal
    currency: str
    capped: bool = False
    late: bool = False
    tokens_per_hour: int | None = None
    tokens: int | None = None
    replaced_by: str | None = None

    @property
    def key(self) -> Key:
        return (self.source, self.resource_id, self.plan, self.period_start)


@dataclass(frozen=True, slots=True)
class InvoiceDocument:
    """One invoice of the month (usage invoices of cycles ending in it, other kinds issued in it)."""

    label: str
    reference: str
    kind: str
    status: str
    currency: str
    total: Decimal
    push: PushState
    paid_amount: Decimal | None = None
    replaced_by: str | None = None

    @property
    def standing(self) -> bool:
        return self.status != "cancelled"

    @property
    def paid(self) -> Decimal:
        return self.paid_amount if self.paid_amount is not None and self.status == "paid" else ZERO


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A resource a held invoice could not price, and the setting that fixes it (when one does)."""

    source: Source
    resource_id: str
    reason: str
    settings_key: str | None = None


@dataclass(frozen=True, slots=True)
class HeldCycle:
    """The invoicing run held the client's invoice of the cycle starting ``cycle_start``."""

    cycle_start: datetime
    invoice_reference: str
    unpriced: tuple[Unpriced, ...] = ()
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class SkippedCycle:
    """The invoicing run made no invoice for the cycle starting ``cycle_start``, on purpose."""

    cycle_start: datetime
    invoice_reference: str
    reason: SkipReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SuspendedSpan:
    """The client was suspended, and not billed, from ``start`` until ``end`` (None: still suspended)."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class OpenCycle:
    """The client's billing cycle at ``as_of``: it has not ended, so its invoice is not made yet."""

    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class LedgerMovement:
    """The client's credit ledger rows of one kind in the month, summed."""

    kind: str
    currency: str
    amount: Decimal
    count: int = 1


@dataclass(frozen=True, slots=True)
class ClientEvidence:
    """Everything about one client's month (``client`` None: owners linked to no client)."""

    client: ClientRef | None
    collected: tuple[Collected, ...] = ()
    lines: tuple[BilledLine, ...] = ()
    invoices: tuple[InvoiceDocument, ...] = ()
    held: tuple[HeldCycle, ...] = ()
    skipped: tuple[SkippedCycle, ...] = ()
    suspended: tuple[SuspendedSpan, ...] = ()
    current_cycle: OpenCycle | None = None
    ledger: tuple[LedgerMovement, ...] = ()


@dataclass(frozen=True, slots=True)
class NovaProjectHours:
    """``total_hours`` of one project in Nova's ``os-simple-tenant-usage`` answer for the whole month."""

    project_id: str
    hours: Decimal


@dataclass(frozen=True, slots=True)
class NovaServerHours:
    """One server in Nova's monthly figure: its project and the hours Nova counts for it."""

    project_id: str
    server_id: str
    name: str
    hours: Decimal


@dataclass(frozen=True, slots=True)
class NovaMonth:
    """Nova's ``os-simple-tenant-usage`` answer for a whole month: per project, and per server."""

    projects: tuple[NovaProjectHours, ...]
    servers: tuple[NovaServerHours, ...]


@dataclass(frozen=True, slots=True)
class InstanceAction:
    """One ``os-instance-actions`` entry: ``action`` (``resize``, ``rebuild``, ...) finished at ``at``."""

    action: str
    at: datetime


@dataclass(frozen=True, slots=True)
class NovaServerHistory:
    """A server whose Nova hours fall short of the collected hours, with its instance actions.

    ``launched_at``: when it first ran (its ``create`` action); ``ended_at``: its deletion, if any.
    """

    project_id: str
    server_id: str
    name: str
    launched_at: datetime
    actions: tuple[InstanceAction, ...]
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SolusVMServerSeen:
    """A SolusVM server the bridge saw in the month, with the hours its runtime rule billed (observed and
    inferred: bridge/domain/runtime.py ``month_runtime``), its plan as last listed, and the client its user
    is linked to (None when linked to none), known even when no hours were collected for it."""

    server_id: str
    user_id: str
    name: str
    observed_hours: int
    inferred_hours: int
    plan: str = ""
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class CloudEvidence:
    """What the clouds say about the month; None where the cloud was not asked."""

    nova_projects: tuple[NovaProjectHours, ...] | None = None
    nova_servers: tuple[NovaServerHistory, ...] = ()
    solusvm_servers: tuple[SolusVMServerSeen, ...] | None = None
