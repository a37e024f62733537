"""The reconciliation's store queries, on each database: read-only, one month, exact sums, domain values."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, insert

from bridge.domain.reconciliation import Month, PushState, SuspendedSpan
from bridge.store import reconciliation as store
from bridge.store import tables
from bridge.store.database import make_engine
from tests.support import reconciliation_store as story

OCTOBER = Month.calendar("2022-10", "UTC", story.AS_OF)
MONTH = store.Span(OCTOBER.start, OCTOBER.end)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    story.seed(engine)
    yield engine
    engine.dispose()


def test_collected_hours_are_summed_per_resource_and_plan_inside_the_month(engine: Engine) -> None:
    with engine.connect() as tx:
        rows = store.collected_in_cycle(tx, [("openstack", "p-ada")], MONTH, OCTOBER)
    assert [(row.resource_id, row.plan, row.hours, row.start, row.end) for row in rows] == [
        ("db-1", "m1.large", Decimal("544"), story.RESIZED_AT, story.NOV),
        ("db-1", "m1.small", Decimal("200"), story.OCT, story.RESIZED_AT),
        ("web-1", "m1.small", Decimal("744"), story.OCT, story.NOV),
    ]


def test_a_cycle_across_the_months_edge_tells_the_hours_outside_the_month(engine: Engine) -> None:
    september, october = (store.Span(*cycle) for cycle in (story.CAROL_SEP, story.CAROL_OCT))
    with engine.connect() as tx:
        (before,) = store.collected_in_cycle(tx, [("openstack", "p-carol")], september, OCTOBER)
        (after,) = store.collected_in_cycle(tx, [("openstack", "p-carol")], october, OCTOBER)
    assert (before.hours, before.hours_outside_month, before.cycle_start) == (
        Decimal("336"),
        Decimal("384"),
        story.CAROL_SEP[0],
    )
    assert (before.start, before.end) == (story.OCT, story.CAROL_SEP[1])
    assert (after.hours, after.hours_outside_month, after.end) == (Decimal("408"), Decimal("336"), story.NOV)


def test_a_suspended_clients_windows_come_one_by_one(engine: Engine) -> None:
    with engine.connect() as tx:
        rows = store.collected_in_cycle(tx, [("openstack", "p-fay")], MONTH, OCTOBER, windows=True)
        spans = store.suspensions(tx, [1, 5], OCTOBER)
    assert len(rows) == 31
    assert sum((row.hours for row in rows), Decimal(0)) == Decimal("744")
    assert spans == {5: (SuspendedSpan(story.SUSPENDED_AT),)}


def test_owners_linked_to_no_client_and_the_client_whose_line_bills_them(engine: Engine) -> None:
    with engine.connect() as tx:
        unlinked = store.unlinked_owners(tx, OCTOBER)
        kept = store.billing_clients_of(tx, unlinked, OCTOBER)
    assert unlinked == [("openstack", "p-eve-old"), ("openstack", "p-orphan")]
    assert kept == {("openstack", "p-eve-old"): 4}


def test_lines_name_their_invoice_and_the_one_that_replaced_it(engine: Engine) -> None:
    with engine.connect() as tx:
        lines = store.billed_lines(tx, [2, 4, 7], OCTOBER)
    eve = [(line.invoice, line.resource_id, line.standing, line.replaced_by) for line in lines[4]]
    assert eve == [
        ("INV-2022-0004", "eve-1", False, "INV-2022-0008"),
        ("INV-2022-0004", "eve-old", False, "INV-2022-0008"),
        ("INV-2022-0008", "eve-1", True, None),
    ]
    capped, tokens, _batch = lines[2]
    assert (capped.capped, capped.billed_hours, tokens.tokens, tokens.tokens_per_hour) == (
        True,
        Decimal("666.666667"),
        5000,
        7,
    )
    assert [(line.invoice, line.late, line.period_start) for line in lines[7]] == [
        ("INV-2022-0003", False, story.CAROL_SEP[0]),
        ("INV-2022-0010", True, story.CAROL_SEP[0]),
        ("INV-2022-0010", False, story.CAROL_OCT[0]),
    ]


def test_invoices_of_the_month_carry_what_whmcs_confirmed(engine: Engine) -> None:
    with engine.connect() as tx:
        documents = store.invoice_documents(tx, [1, 4, 5, 7], OCTOBER)
    found = {
        doc.label: (doc.push, doc.status, doc.replaced_by) for docs in documents.values() for doc in docs
    }
    assert found == {
        "INV-2022-0001": (PushState.PUSHED, "paid", None),
        "INV-2022-0004": (PushState.PUSHED, "cancelled", "INV-2022-0008"),
        "INV-2022-0008": (PushState.IN_DOUBT, "unpaid", None),
        "INV-2022-0006": (PushState.FAILED, "unpaid", None),
        "INV-2022-0003": (PushState.PUSHED, "paid", None),  # Sep 15 - Oct 15 ends in October; Oct 15's not
    }


def test_ledger_movements_are_summed_exactly_per_kind_signs_kept(engine: Engine) -> None:
    with engine.begin() as tx:
        for number, amount in enumerate(("-20.00", "-0.10")):
            tx.execute(
                insert(tables.ledger_entries).values(
                    client_id=1,
                    kind="invoice_paid_from_credit",
                    amount=Decimal(amount),
                    currency="EUR",
                    reference=f"spent-{number}",
                    description="spent",
                    occurred_at=datetime(2022, 10, 21, tzinfo=UTC),
                    created_at=datetime(2022, 10, 21, tzinfo=UTC),
                )
            )
    with engine.connect() as tx:
        movements = store.ledger_movements(tx, [1], OCTOBER)[1]
    assert [(m.kind, m.amount, m.count) for m in movements] == [
        ("invoice_paid_from_credit", Decimal("-20.10"), 2),
        ("payment", Decimal("312.00"), 1),
    ]
