"""Seed 003 through the service layer: plans and discounts that recalculate open and issued invoices."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.errors import InputError
from bridge.store import outbox as outbox_store
from bridge.store import plans as plans_store
from bridge.store.tables import client_terms, invoices, outbox
from tests.fakes.whmcs import FakeWhmcs
from tests.support.invoicing import PRICING, client_with
from tests.support.usage import NOV, OCT, collect, hourly
from tests.support.whmcs_push import whmcs_section

PLANS = {
    "gold": {"description": "cheaper small VMs", "flavors": {"m1.small": "0.0100"}, "token_price": "0.00050"}
}


class Billing:
    """The app with its invoicing and plans services, as the CLI builds them."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.invoicing = app.invoicing
        self.plans = app.plans

    def invoices(self) -> list[Any]:
        with self.app.engine.connect() as connection:
            return list(connection.execute(select(invoices).order_by(invoices.c.id)))

    def terms_rows(self) -> int:
        with self.app.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(client_terms)) or 0)


@pytest.fixture
def billing(make_app: Callable[..., App], clock: FixedClock) -> Callable[..., Billing]:
    def build(**sections: dict[str, Any]) -> Billing:
        sections.setdefault("pricing", PRICING)
        sections.setdefault("plans", PLANS)
        return Billing(make_app(**sections))

    clock.set(datetime(2022, 10, 1, tzinfo=UTC))
    return build


def test_a_plan_from_the_start_of_the_current_period_replaces_its_open_invoice(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    collect(bb.app, hourly("a", "p-1", "m1.small", NOV, 14 * 24))
    clock.set(datetime(2022, 11, 15, 9, tzinfo=UTC))

    dry = bb.plans.assign("ops@acme.com", "gold", "current-period", dry_run=True)
    (open_invoice,) = dry.invoices
    assert (dry.recorded, open_invoice.state, open_invoice.period) == (True, "open", "2022-11")
    assert (open_invoice.old_total, open_invoice.new_total, open_invoice.difference) == (
        Decimal("4.20"),  # 336 h x 0.0125
        Decimal("3.36"),  # 336 h x 0.0100
        Decimal("-0.84"),
    )
    assert bb.terms_rows() == 0, "a dry run records nothing"

    done = bb.plans.assign(str(client.id), "gold", "current-period")
    assert done.recorded and done.start.at == NOV
    assert done.invoices[0].action == "computed with the new terms when issued"
    again = bb.plans.assign(str(client.id), "gold", "current-period")
    assert (again.recorded, again.invoices[0].action, bb.terms_rows()) == (False, "unchanged", 1)

    collect(bb.app, hourly("a", "p-1", "m1.small", NOV + timedelta(days=14), 16 * 24))
    clock.set(datetime(2022, 12, 1, 2, tzinfo=UTC))
    (november,) = bb.invoicing.run(date(2022, 12, 1)).issued
    (line,) = november.draft.lines
    assert (line.billed_hours, line.unit_price, line.amount) == (
        Decimal("666.666667"),
        Decimal("0.0100"),
        Decimal("6.67"),
    )


def test_a_discount_from_the_previous_period_in_its_grace_period_cancels_and_replaces_its_invoice(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    collect(bb.app, hourly("a", "p-1", "m1.large", OCT, 100))  # 100 h x 0.10 = 10.00
    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    (october,) = bb.invoicing.run(date(2022, 11, 1)).issued
    assert (october.number, october.draft.total) == ("1", Decimal("10.00"))

    clock.set(datetime(2022, 11, 3, 10, tzinfo=UTC))  # billing.grace_period_days = 3: open until Nov 4
    dry = bb.plans.add_discount(
        str(client.id), percent="15", amount=None, start="previous-period", dry_run=True
    )
    issued = dry.invoices[0]
    assert (issued.state, issued.old_total, issued.new_total, issued.replacement) == (
        "issued",
        Decimal("10.00"),
        Decimal("8.50"),
        f"BB-{client.id}-2022-10-R1",
    )
    assert [row.status for row in bb.invoices()] == ["unpaid"], "a dry run changes nothing"

    done = bb.plans.add_discount(str(client.id), percent="15", amount=None, start="previous-period")
    assert (done.invoices[0].action, done.invoices[0].replacement_number) == ("cancelled and replaced", "2")
    old, new = bb.invoices()
    assert (old.reference, old.status, old.total) == (
        f"BB-{client.id}-2022-10",
        "cancelled",
        Decimal("10.00"),
    )
    assert (new.reference, new.status, new.number, new.total, new.replaces_id) == (
        f"BB-{client.id}-2022-10-R1",
        "unpaid",
        "2",
        Decimal("8.50"),
        old.id,
    )
    (line,) = bb.invoicing.find(new.reference).lines
    assert line.description.endswith("x 0.10 USD, 15% off")

    again = bb.plans.add_discount(str(client.id), percent="15", amount=None, start="previous-period")
    assert (again.recorded, again.invoices[0].action) == (False, "unchanged")
    assert len(bb.invoices()) == 2
    rerun = bb.invoicing.run(date(2022, 11, 1))
    assert (rerun.issued, [item.reference for item in rerun.already_invoiced]) == ([], [new.reference])


def test_the_previous_period_outside_its_grace_period_is_refused_and_nothing_changes(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    collect(bb.app, hourly("a", "p-1", "m1.large", OCT, 100))
    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    bb.invoicing.run(date(2022, 11, 1))
    clock.set(datetime(2022, 11, 4, 0, 0, tzinfo=UTC))
    with pytest.raises(InputError, match="grace period of 3 days ended at 2022-11-04T00:00:00"):
        bb.plans.add_discount(str(client.id), percent="15", amount=None, start="previous-period")
    with pytest.raises(InputError, match="grace period"):
        bb.plans.assign(str(client.id), "gold", str(int(OCT.timestamp())))  # the same start in seconds
    assert bb.terms_rows() == 0
    assert [(row.status, row.total) for row in bb.invoices()] == [("unpaid", Decimal("10.00"))]


def test_a_paid_invoice_is_never_recalculated(billing: Callable[..., Billing], clock: FixedClock) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    collect(bb.app, hourly("a", "p-1", "m1.large", OCT, 100))
    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    (october,) = bb.invoicing.run(date(2022, 11, 1)).issued
    bb.invoicing.mark_paid(str(october.number))
    with pytest.raises(InputError, match="is paid, so it is not recalculated"):
        bb.plans.assign(str(client.id), "gold", "previous-period")
    assert bb.terms_rows() == 0


def test_a_plan_from_a_moment_in_seconds_bills_the_hours_before_and_after_it_separately(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    clock.set(datetime(2022, 11, 10, tzinfo=UTC))
    moment = datetime(2022, 11, 16, tzinfo=UTC)
    done = bb.plans.assign(str(client.id), "gold", str(int(moment.timestamp())))
    assert (done.start.at, done.start.reaches_previous) == (moment, False)
    collect(bb.app, hourly("a", "p-1", "m1.small", NOV, 30 * 24))
    clock.set(datetime(2022, 12, 1, 2, tzinfo=UTC))
    (november,) = bb.invoicing.run(date(2022, 12, 1)).issued
    assert [(line.billed_hours, line.unit_price, line.amount) for line in november.draft.lines] == [
        (Decimal(360), Decimal("0.0125"), Decimal("4.50")),  # Nov 1 to 15
        (Decimal("306.666667"), Decimal("0.0100"), Decimal("3.07")),  # to the cap
    ]
    stored = bb.invoicing.find(november.draft.reference)
    assert [line.line_reference for line in stored.lines] == [
        "openstack:a:m1.small:2022-11",
        "openstack:a:m1.small:2022-11@20221116T000000Z",
    ]


def test_an_invoice_pushed_to_whmcs_is_withdrawn_if_unsent_else_cancelled_there_then_reissued(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing(billing={"generate_invoices": False})
    first = client_with(bb.app, "one@acme.com", project="p-1")
    second = client_with(bb.app, "two@acme.com", project="p-2")
    collect(bb.app, hourly("a", "p-1", "m1.large", OCT, 100) + hourly("b", "p-2", "m1.large", OCT, 50))
    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    bb.invoicing.run(date(2022, 11, 1))
    with bb.app.engine.begin() as connection:  # the second client's invoice reached WHMCS as invoice 77
        row = outbox_store.by_reference(connection, f"BB-{second.id}-2022-10")
        assert row is not None
        outbox_store.mark_done(connection, row.id, "77", clock.now())
        connection.execute(
            invoices.update().where(invoices.c.reference == row.reference).values(remote_id="77")
        )

    clock.set(datetime(2022, 11, 2, tzinfo=UTC))
    for client in (first, second):
        bb.plans.add_discount(str(client.id), percent=None, amount="2.00", start="previous-period")

    with bb.app.engine.connect() as connection:
        rows = [
            (row.client_id, row.kind, row.reference, row.state, outbox_store.decode_payload(row.payload))
            for row in connection.execute(select(outbox).order_by(outbox.c.id))
        ]
    unsent, sent, replaced_unsent, cancel, replaced_sent = rows
    assert unsent[2:4] == (f"BB-{first.id}-2022-10", "cancelled"), "never sent: withdrawn, nothing to cancel"
    assert sent[2:4] == (f"BB-{second.id}-2022-10", "done")
    assert replaced_unsent[1:4] == ("create_invoice", f"BB-{first.id}-2022-10-R1", "pending")
    assert replaced_unsent[4]["items"][0]["amount"] == "8.00"
    assert cancel[1:4] == ("cancel_invoice", f"BB-{second.id}-2022-10-cancel", "pending")
    assert cancel[4] == {"invoice_reference": f"BB-{second.id}-2022-10", "remote_id": "77"}
    assert replaced_sent[1:4] == ("create_invoice", f"BB-{second.id}-2022-10-R1", "pending")
    assert replaced_sent[4]["items"][0]["amount"] == "3.00"

    bb.plans.add_discount(str(second.id), percent=None, amount="2.00", start="previous-period")
    with bb.app.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(outbox)) == 5, "exactly once"


def test_late_usage_an_issued_invoice_carried_is_carried_unchanged_onto_its_replacement(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    september = datetime(2022, 9, 1, tzinfo=UTC)
    collect(bb.app, hourly("a", "p-1", "m1.large", september, 10))
    clock.set(datetime(2022, 10, 1, 2, tzinfo=UTC))
    bb.invoicing.run(date(2022, 10, 1))
    clock.set(datetime(2022, 10, 5, tzinfo=UTC))
    collect(bb.app, hourly("a", "p-1", "m1.large", september + timedelta(days=20), 5))  # September's, late
    collect(bb.app, hourly("a", "p-1", "m1.large", OCT, 20))
    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    (october,) = bb.invoicing.run(date(2022, 11, 1)).issued
    assert october.draft.total == Decimal("2.50")

    done = bb.plans.assign(str(client.id), "gold", "previous-period", dry_run=False)
    assert done.invoices[0].action == "unchanged", "gold changes only m1.small"
    done = bb.plans.add_discount(str(client.id), percent="50", amount=None, start="previous-period")
    replacement = bb.invoicing.find(str(done.invoices[0].replacement))
    assert [(line.late, line.amount) for line in replacement.lines] == [
        (True, Decimal("0.50")),
        (False, Decimal("1.00")),
    ]
    assert replacement.total == Decimal("1.50")


def test_bad_input_names_the_field_and_changes_nothing(
    billing: Callable[..., Billing], clock: FixedClock
) -> None:
    bb = billing()
    client = client_with(bb.app, "ops@acme.com", project="p-1")
    clock.set(datetime(2022, 11, 10, tzinfo=UTC))
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: bb.plans.assign(str(client.id), "platinum", "now"), "plan 'platinum' is not defined"),
        (lambda: bb.plans.assign(str(client.id), "gold", "tomorrow"), "--start 'tomorrow' is not one of"),
        (
            lambda: bb.plans.add_discount(str(client.id), percent="110", amount=None, start="now"),
            "--percent 110 is not a percentage above 0 and at most 100",
        ),
        (
            lambda: bb.plans.add_discount(str(client.id), percent="5", amount="1", start="now"),
            "give exactly one of --percent",
        ),
        (
            lambda: bb.plans.add_discount(str(client.id), percent=None, amount="1,50", start="now"),
            "--amount: amount '1,50' is not a decimal number",
        ),
        (
            lambda: bb.plans.add_discount(
                str(client.id), percent="5", amount=None, start="now", end=datetime(2022, 11, 1, tzinfo=UTC)
            ),
            "--end 2022-11-01T00:00:00+00:00 is not after the start",
        ),
    ]
    for call, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            call()
    assert bb.terms_rows() == 0
    with bb.app.engine.connect() as connection:
        assert plans_store.terms_of_client(connection, client.id).is_plain


def test_a_replaced_whmcs_invoice_is_cancelled_there_and_its_replacement_pushed_exactly_once(
    make_app: Callable[..., App], clock: FixedClock
) -> None:
    clock.set(OCT)
    with FakeWhmcs() as fake:
        bb = Billing(
            make_app(
                pricing=PRICING,
                plans=PLANS,
                billing={"generate_invoices": False},
                whmcs=whmcs_section(fake),
            )
        )
        client = client_with(bb.app, "ops@acme.com", project="p-1")
        collect(bb.app, hourly("a", "p-1", "m1.large", OCT, 100))
        clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
        bb.invoicing.run(date(2022, 11, 1))
        pusher = bb.app.pusher()
        pusher.run()
        (whmcs_client,) = fake.clients.values()
        (october,) = fake.invoices_of(whmcs_client.id)

        clock.set(datetime(2022, 11, 2, tzinfo=UTC))
        bb.plans.add_discount(str(client.id), percent="20", amount=None, start="previous-period")
        report = bb.app.pusher().run()
        assert [(note.kind, note.result) for note in report.notes] == [
            ("cancel_invoice", "sent"),
            ("create_invoice", "sent"),
        ]
        cancelled, replacement = fake.invoices_of(whmcs_client.id)
        assert (cancelled.id, cancelled.status) == (october.id, "Cancelled")
        assert (replacement.status, replacement.total) == ("Unpaid", Decimal("8.00"))
        assert replacement.notes.startswith(f"BB-{client.id}-2022-10-R1")
        calls = fake.call_count()
        assert bb.app.pusher().run().notes == ()
        assert fake.call_count() == calls
