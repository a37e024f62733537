"""Month end from the day rollups bills exactly what the hourly rows bill (issue 17's property).

Random histories of collected hours go through the real ingest path (:func:`bridge.store.usage.ingest_window`,
which keeps the rollups in its transaction): windows near and across the cycle edges in three time zones
(Berlin's 25-hour day, St John's half-hour offset whose UTC hours straddle local midnight), resources that
change flavor or plan mid-month (the caps then do not apply) or move to another owner, SolusVM hours
rounded up per month and capped by ``tokens_per_month``, the billable-seconds cap, re-collections that
report more hours (raised) or fewer (ignored), and usage collected after October was invoiced (late). The
same run for 2022-12-01 is then planned twice (bridge/domain/invoicing.py ``plan_invoices``): from the
hourly rows, as before issue 17, and from each cycle's totals of the days, as month end now reads them.
Every invoice, line and amount must be the same, to the cent; held invoices name the same resources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.domain.clients import Client, ClientLink, LinkKind
from bridge.domain.configuration import Configuration
from bridge.domain.cycles import BillingCycle, calendar_cycle_containing
from bridge.domain.invoicing import (
    ClientPrices,
    CollectedUsage,
    ExistingInvoice,
    InvoicePlan,
    draft_invoice,
    plan_invoices,
)
from bridge.domain.pricing import PlanRate, PriceBook
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.store import usage as usage_store
from bridge.store import usage_rollups
from bridge.store.unit_of_work import Tx, UnitOfWork

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])  # the contract suite covers the databases

HOUR = timedelta(hours=1)
ZONES = ("UTC", "Europe/Berlin", "America/St_Johns")
OWNERS = {"openstack": ("p-1", "p-2"), "solusvm": ("7", "8")}
RESOURCES: tuple[tuple[Source, str], ...] = (("openstack", "vm-1"), ("openstack", "vm-2"), ("solusvm", "41"))
PLANS = {"openstack": ("m1.small", "m1.small", "m1.large"), "solusvm": ("3", "3", "4")}
BOOK = PriceBook(
    "EUR",
    {"m1.small": Decimal("0.0125"), "m1.large": Decimal("0.0525")},
    token_price=Decimal("0.01"),
    plans={"3": PlanRate(7, 40), "4": PlanRate(2, None)},
)
CLIENT = Client(
    7,
    "ada@example.com",
    "Ada",
    "EUR",
    "default",
    datetime(2021, 3, 15, tzinfo=UTC),
    tuple(
        ClientLink(kind, owner, datetime(2021, 3, 15, tzinfo=UTC))
        for source, kind in (("openstack", LinkKind.OPENSTACK_PROJECT), ("solusvm", LinkKind.SOLUSVM_USER))
        for owner in OWNERS[source]
    ),
)
COLLECTING = datetime(2022, 11, 1, 6, tzinfo=UTC)  # the first collection; each next one a minute later
RUN_AT = datetime(2022, 12, 2, 9, tzinfo=UTC)


def _window_starts() -> list[datetime]:
    """UTC hours near October's and November's edges (any zone's) and inside them."""
    starts: set[datetime] = set()
    for edge in (datetime(2022, 10, 1, tzinfo=UTC), datetime(2022, 11, 1, tzinfo=UTC)):
        starts |= {edge + offset * HOUR for offset in range(-3, 5)}
    starts.add(datetime(2022, 12, 1, 2, tzinfo=UTC))
    for day in (3, 15, 29, 30, 31):
        starts |= {datetime(2022, 10, day, hour, tzinfo=UTC) for hour in (0, 1, 11, 22, 23)}
    starts |= {datetime(2022, 11, 17, hour, tzinfo=UTC) for hour in (0, 9)}
    return sorted(starts)


WINDOW_STARTS = _window_starts()


@dataclass(frozen=True)
class Reading:
    """What one resource reported for one window."""

    source: Source
    resource_id: str
    owner: str
    plan: str
    name: str
    hours: Decimal


@dataclass(frozen=True)
class Collection:
    """One ingest: one window's readings."""

    window: Window
    readings: tuple[Reading, ...]


def hours() -> st.SearchStrategy[Decimal]:
    """Mostly whole hours (a VM that ran the hour), else any part of one to 8 places."""
    part = st.integers(0, 10**8).map(lambda n: Decimal(n).scaleb(-8))
    return st.one_of(st.just(Decimal("1.00000000")), part)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    source, resource_id = draw(st.sampled_from(RESOURCES))
    return Reading(
        source,
        resource_id,
        draw(st.sampled_from(OWNERS[source][:1] * 3 + OWNERS[source][1:])),
        draw(st.sampled_from(PLANS[source])),
        draw(st.sampled_from((f"{resource_id}", f"{resource_id}-renamed"))),
        draw(hours()),
    )


@st.composite
def collections(draw: st.DrawFn) -> Collection:
    start = draw(st.sampled_from(WINDOW_STARTS))
    found = draw(st.lists(readings(), min_size=1, max_size=3, unique_by=lambda r: (r.source, r.resource_id)))
    return Collection(Window(start, start + HOUR), tuple(found))


@dataclass(frozen=True)
class History:
    zone: str
    collections: tuple[Collection, ...]
    invoiced_after: int
    """October is invoiced after this many collections (all of them: never, before this run)."""
    billable_seconds: int | None
    rollups_built_late: bool
    """The rollups are first kept in UTC days and rebuilt in the zone's at month end (an upgrade)."""


@st.composite
def histories(draw: st.DrawFn) -> History:
    found = tuple(draw(st.lists(collections(), min_size=1, max_size=24)))
    return History(
        draw(st.sampled_from(ZONES)),
        found,
        draw(st.integers(0, len(found))),
        draw(st.sampled_from((None, 2_400_000, 36_000))),
        draw(st.booleans()),
    )


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_month_end_from_the_day_rollups_bills_what_the_hourly_rows_bill(
    uow: UnitOfWork, history: History
) -> None:
    zone = ZoneInfo(history.zone)
    october = calendar_cycle_containing(datetime(2022, 10, 15, tzinfo=UTC), zone)
    november = calendar_cycle_containing(datetime(2022, 11, 15, tzinfo=UTC), zone)
    config = Configuration(billable_seconds_per_month=history.billable_seconds)
    existing: list[ExistingInvoice] = []
    with uow.writing(dry_run=True) as tx:  # one transaction per example, rolled back: the next starts empty
        for count, collection in enumerate(history.collections, 1):
            at = COLLECTING + count * timedelta(minutes=1)
            collect(tx, collection, at, zone, history.rollups_built_late)
            if count == history.invoiced_after:
                existing = invoice_october(tx, october, config, at)
        if history.rollups_built_late:
            usage_rollups.ensure(tx, zone)

        from_hours = plan(config, (october, november), hourly_usage(tx, october, november), existing)
        from_days = plan(config, (october, november), rolled_up_usage(tx, (october, november)), existing)

    assert outcome(from_days) == outcome(from_hours)


def collect(tx: Tx, collection: Collection, at: datetime, zone: ZoneInfo, late_build: bool) -> None:
    """One sync's window through the ingest path, per source as the sync writes it."""
    if not late_build:
        usage_rollups.ensure(tx, zone)
    records = [as_record(reading, collection.window) for reading in collection.readings]
    for source in ("openstack", "solusvm"):
        mine = [record for record in records if record.source == source]
        if mine:
            usage_store.ingest_window(tx, source, collection.window, mine, at)


def as_record(reading: Reading, window: Window) -> UsageRecord:
    tokens = reading.hours * 7 if reading.source == "solusvm" else None
    return UsageRecord(
        reading.source,
        reading.resource_id,
        reading.name,
        reading.owner,
        reading.plan,
        window,
        reading.hours,
        tokens,
    )


def owners() -> list[tuple[str, str]]:
    return [(source, owner) for source, listed in OWNERS.items() for owner in listed]


def hourly_usage(tx: Tx, first: BillingCycle, last: BillingCycle) -> list[CollectedUsage]:
    rows = usage_store.usage_of_owners(tx, owners(), first.start, last.end)
    return [CollectedUsage(row.record, row.collected_at) for row in rows]


def rolled_up_usage(tx: Tx, cycles: tuple[BillingCycle, ...]) -> list[CollectedUsage]:
    totals = [
        total
        for cycle in cycles
        for total in usage_rollups.totals_of_owners(tx, owners(), cycle.start, cycle.end)
    ]
    return [CollectedUsage(total.record, total.collected_at) for total in totals]


def invoice_october(
    tx: Tx, october: BillingCycle, config: Configuration, at: datetime
) -> list[ExistingInvoice]:
    """October's invoice as a run at ``at`` would have made it from the hours then collected."""
    rows = usage_store.usage_of_owners(tx, owners(), october.start, october.end)
    result = draft_invoice(
        str(CLIENT.id),
        "EUR",
        october,
        [row.record for row in rows],
        BOOK,
        billable_seconds_per_month=config.billable_seconds_per_month,
    )
    if result.held or result.draft.is_empty:
        return []
    return [ExistingInvoice(result.draft.reference, october.start, at, "EUR", result.draft.lines)]


def plan(
    config: Configuration,
    cycles: tuple[BillingCycle, ...],
    usage: list[CollectedUsage],
    existing: list[ExistingInvoice],
) -> InvoicePlan:
    return plan_invoices(
        CLIENT,
        config,
        cycles,
        usage,
        existing,
        ClientPrices(BOOK),
        invoice_date=date(2022, 12, 1),
        now=RUN_AT,
    )


def outcome(planned: InvoicePlan) -> object:
    """Everything a client or operator would see of a run's plan (a held invoice's resources, not the
    text of a window error, which names the window or the span of days it saw)."""
    return (
        [
            (
                invoice.draft.reference,
                invoice.draft.total,
                [
                    (
                        line.reference,
                        line.resource_name,
                        line.hours,
                        line.billed_hours,
                        line.tokens,
                        line.unit_price,
                        line.amount,
                        line.capped,
                        line.late,
                        line.description(),
                    )
                    for line in invoice.draft.lines
                ],
            )
            for invoice in planned.issue
        ],
        [
            (held.reference, held.problem, [(e.source, e.resource_id, e.settings_key) for e in held.errors])
            for held in planned.held
        ],
        [(skipped.reference, skipped.reason) for skipped in planned.skipped],
        [(already.reference, already.reason) for already in planned.already],
    )
