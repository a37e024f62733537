"""What a reconciliation finds: where each hour went (buckets), the defects, and the month's totals."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from bridge.domain.reconciliation.evidence import ZERO, ClientRef, InvoiceDocument, LedgerMovement, Month
from bridge.domain.usage import Source

LISTED_AT_MOST: Final = 10_000
"""Longest list of defects or cloud findings a summary keeps; its counts and hours cover them all."""


class Bucket(enum.Enum):
    """Where a collected hour went. The value is the name in JSON and CSV."""

    INVOICED = "invoiced"
    INVOICED_LATE = "invoiced_late"
    BELOW_CAP = "below_cap"
    NOT_YET_INVOICED = "not_yet_invoiced"
    HELD = "held"
    SKIPPED = "skipped"
    UNLINKED = "unlinked_owner"
    SUSPENDED = "suspended_not_billed"
    REMOVED = "removed_by_recalculation"

    # Each bucket is one object, so its identity hashes it: Enum's own hash (of the name) runs in Python,
    # and a month's totals look a bucket up for every placement.
    __hash__ = object.__hash__

    @property
    def billed(self) -> bool:
        """Whether hours in this bucket are on an invoice that stands."""
        return self in (Bucket.INVOICED, Bucket.INVOICED_LATE)


EVERY_BUCKET: Final = tuple(Bucket)
"""The buckets in their order (iterating the enum itself costs more than a tuple, per client)."""
NOT_BILLED: Final = tuple(bucket for bucket in Bucket if not bucket.billed)


class DefectKind(enum.Enum):
    """Hours the buckets do not account for exactly once."""

    IN_NO_BUCKET = "in_no_bucket"
    IN_TWO_BUCKETS = "in_two_buckets"


@dataclass(frozen=True, slots=True)
class Placement:
    """Hours of one resource in one bucket, with what the operator needs to act on them.

    ``invoice``: the invoice that bills them (or the one a recalculation cancelled); ``not_charged``: the
    amount the cap left free (below the cap); ``settings_key``: the price to add (held).
    """

    bucket: Bucket
    hours: Decimal
    detail: str
    invoice: str | None = None
    not_charged: Decimal | None = None
    settings_key: str | None = None


@dataclass(frozen=True, slots=True)
class Defect:
    """Hours the buckets do not account for exactly once, with the resource and a plain explanation."""

    kind: DefectKind
    client_id: str | None
    source: Source
    resource_id: str
    resource_name: str
    plan: str
    hours: Decimal
    detail: str


@dataclass(frozen=True, slots=True)
class ResourceResult:
    """One resource, plan and cycle: its collected hours in the month and where each of them went."""

    source: Source
    resource_id: str
    resource_name: str
    owner: str
    plan: str
    cycle_start: datetime
    cycle_end: datetime
    hours: Decimal
    placements: tuple[Placement, ...]
    defects: tuple[Defect, ...] = ()
    amount: Decimal = ZERO
    currency: str | None = None

    def hours_in(self, bucket: Bucket) -> Decimal:
        return sum((p.hours for p in self.placements if p.bucket is bucket), ZERO)

    @property
    def billed_hours(self) -> Decimal:
        return sum((p.hours for p in self.placements if p.bucket.billed), ZERO)


@dataclass(frozen=True, slots=True)
class ClientResult:
    """One client's month (``client`` None: one owner linked to no client)."""

    client: ClientRef | None
    owners: tuple[str, ...]
    resources: tuple[ResourceResult, ...]
    invoices: tuple[InvoiceDocument, ...] = ()
    ledger: tuple[LedgerMovement, ...] = ()

    @property
    def label(self) -> str:
        if self.client is None:
            return f"unlinked owner {', '.join(self.owners)}"
        return f"{self.client.name} (#{self.client.client_id})"

    @property
    def hours(self) -> Decimal:
        return sum((r.hours for r in self.resources), ZERO)

    @property
    def billed_hours(self) -> Decimal:
        return sum((r.billed_hours for r in self.resources), ZERO)

    def hours_in(self, bucket: Bucket) -> Decimal:
        return sum((r.hours_in(bucket) for r in self.resources), ZERO)

    def by_bucket(self) -> dict[Bucket, Decimal]:
        """Hours per bucket, every bucket listed, in one pass over the placements."""
        totals = dict.fromkeys(EVERY_BUCKET, ZERO)
        for resource in self.resources:
            for placement in resource.placements:
                totals[placement.bucket] += placement.hours
        return totals

    @property
    def defects(self) -> tuple[Defect, ...]:
        return tuple(defect for r in self.resources for defect in r.defects)

    @property
    def amount(self) -> Decimal:
        return sum((r.amount for r in self.resources), ZERO)


@dataclass(frozen=True, slots=True)
class SourceHours:
    """A source's collected hours of the month and their split over the buckets (every bucket listed)."""

    source: Source
    collected: Decimal
    buckets: tuple[tuple[Bucket, Decimal], ...]
    resources: int

    def hours_in(self, bucket: Bucket) -> Decimal:
        return dict(self.buckets)[bucket]

    @property
    def billed(self) -> Decimal:
        return sum((hours for bucket, hours in self.buckets if bucket.billed), ZERO)

    @property
    def not_billed(self) -> Decimal:
        return sum((hours for bucket, hours in self.buckets if not bucket.billed), ZERO)


@dataclass(frozen=True, slots=True)
class LedgerTotal:
    kind: str
    amount: Decimal
    count: int


@dataclass(frozen=True, slots=True)
class CurrencyMoney:
    """The month's invoices and ledger in one currency.

    ``invoiced``: standing invoices' totals; ``confirmed``: of those, what WHMCS confirmed (pushed);
    ``issued_by_bridge``: what the bridge issued itself (nothing for WHMCS to confirm); ``paid``: what was
    paid. ``not_charged``: what the caps left free on the month's lines. ``usage_amount``: the amount of
    the lines of cycles ending in the month, late lines on later invoices included.
    """

    currency: str
    invoices: int
    invoiced: Decimal
    confirmed: Decimal
    pending: Decimal
    in_doubt: Decimal
    failed: Decimal
    issued_by_bridge: Decimal
    paid: Decimal
    auto_invoices: int
    auto_invoiced: Decimal
    auto_paid: Decimal
    replaced_invoices: int
    replaced_total: Decimal
    usage_amount: Decimal
    not_charged: Decimal
    ledger: tuple[LedgerTotal, ...]


@dataclass(frozen=True, slots=True)
class InvoiceAttention:
    """An invoice WHMCS has not confirmed for a reason the operator must look at (in doubt, failed)."""

    client_id: str
    invoice: InvoiceDocument


@dataclass(frozen=True, slots=True)
class Revenue:
    currency: str
    source: Source
    plan: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DayHours:
    """One local day: hours collected and billed per source (floats, for the chart; see the module doc)."""

    day: date
    source: Source
    collected: float
    billed: float


@dataclass(frozen=True, slots=True)
class ProjectCheck:
    """A project's month: Nova's figure, the hours Nova forgot, and the hours collected window by window."""

    project_id: str
    nova_hours: Decimal
    forgotten_hours: Decimal
    collected_hours: Decimal

    @property
    def expected_hours(self) -> Decimal:
        return self.nova_hours + self.forgotten_hours

    @property
    def difference(self) -> Decimal:
        """Collected minus what Nova accounts for: below zero, Nova ran hours the bridge never collected."""
        return self.collected_hours - self.expected_hours


@dataclass(frozen=True, slots=True)
class ForgottenServer:
    project_id: str
    server_id: str
    name: str
    action: str
    at: datetime
    hours: Decimal


@dataclass(frozen=True, slots=True)
class NovaCheck:
    projects: int
    matching: int
    nova_hours: Decimal
    forgotten_hours: Decimal
    collected_hours: Decimal
    mismatches: tuple[ProjectCheck, ...]
    recovered: tuple[ForgottenServer, ...]


@dataclass(frozen=True, slots=True)
class SolusVMServerCheck:
    """One SolusVM server seen in the month against what was collected and billed for it.

    ``observed_hours`` and ``inferred_hours`` split the hours its runtime rule bills for the calendar
    month (from the evidence tables); ``collected_hours`` and ``billed_hours`` are the reconciliation's
    (usage records, and those of them in a billed bucket); ``not_billed`` the rest per bucket and
    ``reason`` why, in words (empty when every collected hour is billed).
    """

    server_id: str
    name: str
    user_id: str
    client_id: str | None
    plan: str
    observed_hours: int
    inferred_hours: int
    collected_hours: Decimal
    billed_hours: Decimal
    not_billed: tuple[tuple[Bucket, Decimal], ...]
    reason: str

    @property
    def billed(self) -> bool:
        """Whether any of its hours is on an invoice that stands (a capped server is billed; the hours
        below its cap are in ``not_billed`` and ``reason``)."""
        return self.billed_hours > 0


@dataclass(frozen=True, slots=True)
class SolusVMCheck:
    """The SolusVM servers seen in the month (from the stored evidence, not the live API) against the
    servers with hours collected and billed; ``servers`` lists each seen one, those with nothing billed
    first (``seen_not_billed`` counts them)."""

    seen: int
    collected: int
    billed: int
    observed_hours: int
    inferred_hours: int
    seen_not_collected: tuple[str, ...]
    collected_not_seen: tuple[str, ...]
    seen_not_billed: int = 0
    servers: tuple[SolusVMServerCheck, ...] = ()


@dataclass(frozen=True, slots=True)
class CloudCheck:
    nova: NovaCheck | None
    solusvm: SolusVMCheck | None


@dataclass(frozen=True, slots=True)
class Summary:
    """The month in totals: hours per source and bucket, defects, money, revenue, days, clouds."""

    month: Month
    clients: int
    unlinked_owners: int
    hours: tuple[SourceHours, ...]
    defect_count: int
    defect_hours: Decimal
    defects: tuple[Defect, ...]
    money: tuple[CurrencyMoney, ...]
    attention: tuple[InvoiceAttention, ...]
    revenue: tuple[Revenue, ...]
    daily: tuple[DayHours, ...]
    cloud: CloudCheck

    @property
    def collected(self) -> Decimal:
        return sum((s.collected for s in self.hours), ZERO)

    @property
    def billed(self) -> Decimal:
        return sum((s.billed for s in self.hours), ZERO)

    def hours_in(self, bucket: Bucket) -> Decimal:
        return sum((s.hours_in(bucket) for s in self.hours), ZERO)

    @property
    def not_billed(self) -> tuple[tuple[Bucket, Decimal], ...]:
        """Hours not billed, per reason, in bucket order."""
        return tuple((bucket, self.hours_in(bucket)) for bucket in NOT_BILLED)


@dataclass(frozen=True, slots=True)
class Report:
    """A whole month held in memory: the summary and every client (for tests and small installations)."""

    summary: Summary
    clients: tuple[ClientResult, ...]
