"""Monthly post-pay invoicing as the operator and the client see it (seeds 001 and 002)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.documents.invoices import run_document
from bridge.domain.clients import LinkKind
from bridge.domain.invoicing import Held, Skipped
from bridge.services.invoicing import CycleNotEnded, InvoicingService, IssuedInvoice
from bridge.store.outbox import decode_payload
from bridge.store.tables import invoices, outbox
from tests.support.invoicing import PRICING, client_with
from tests.support.usage import NOV, OCT, collect, hourly


@pytest.fixture
def billing(make_app: Callable[..., App], clock: FixedClock) -> Callable[..., tuple[App, InvoicingService]]:
    def build(**sections: dict[str, Any]) -> tuple[App, InvoicingService]:
        sections.setdefault("pricing", PRICING)
        app = make_app(**sections)
        return app, app.invoicing

    clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
    return build


def test_october_2022_is_invoiced_once_itemised_per_vm_and_grouped_by_source(
    billing: Callable[..., Any],
) -> None:
    app, service = billing()
    client = client_with(app, "ops@acme.com", project="p-1", solus_user="42")
    collect(app, hourly("a", "p-1", "m1.small", OCT, 744))  # the whole month: capped at 666.666667 h
    collect(app, hourly("b", "p-1", "m1.large", OCT + timedelta(days=10), 100))
    collect(app, hourly("s1", "42", "7", OCT, 744, source="solusvm"))  # 7 x 744 = 5208 tokens -> 5000

    run = service.run(date(2022, 11, 1))
    assert len(run.issued) == 1
    document = run_document(run, app.settings.billing.zone())["invoices"][0]
    assert document["period"]["label"] == "2022-10"
    assert document["reference"] == f"BB-{client.id}-2022-10"
    assert document["number"] == "1"
    openstack, solusvm = document["groups"]
    assert [(line["resource_name"], line["billed_hours"], line["amount"]) for line in openstack["lines"]] == [
        ("vm-a", "666.666667", "8.33"),
        ("vm-b", "100", "10.00"),
    ]
    assert openstack["lines"][0]["capped"] is True
    assert [
        (line["tokens_per_hour"], line["tokens"], line["unit_price"], line["amount"])
        for line in solusvm["lines"]
    ] == [(7, 5000, "0.001", "5.00")]
    assert document["total"] == "23.33"

    again = service.run(date(2022, 11, 1))
    assert again.issued == []
    assert [item.reason for item in again.already_invoiced] == ["already invoiced"]
    with app.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(invoices)) == 1


def test_the_cap_does_not_apply_when_the_flavor_changed_in_the_cycle(billing: Callable[..., Any]) -> None:
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1")
    collect(
        app,
        hourly("a", "p-1", "m1.small", OCT, 400)
        + hourly("a", "p-1", "m1.large", OCT + timedelta(hours=400), 344),
    )
    (issued,) = service.run(date(2022, 11, 1)).issued
    assert [(line.plan, line.billed_hours, line.capped) for line in issued.draft.lines] == [
        ("m1.large", Decimal("344.000000"), False),
        ("m1.small", Decimal("400.000000"), False),
    ]


def test_a_vm_created_mid_month_pays_only_its_hours(billing: Callable[..., Any]) -> None:
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", datetime(2022, 10, 20, 13, tzinfo=UTC), 24 * 11 + 11))
    (issued,) = service.run(date(2022, 11, 1)).issued
    assert issued.draft.total == Decimal("27.50")


def test_an_anniversary_client_started_on_jan_31_is_invoiced_for_february_to_the_29th_in_a_leap_year(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    app, service = billing(configurations={"default": {"billing_cycle_calendar": False}})
    clock.set(datetime(2024, 1, 31, 9, tzinfo=UTC))
    client = client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", datetime(2024, 1, 31, 10, tzinfo=UTC), 24 * 29))
    clock.set(datetime(2024, 3, 1, tzinfo=UTC))
    (issued,) = service.run(date(2024, 2, 29)).issued
    assert (issued.draft.cycle.start, issued.draft.cycle.end) == (
        datetime(2024, 1, 31, 10, tzinfo=UTC),  # the first cycle starts when the first service did
        datetime(2024, 2, 29, tzinfo=UTC),
    )
    assert issued.draft.reference == f"BB-{client.id}-2024-01-31"
    clock.set(datetime(2024, 3, 31, 1, tzinfo=UTC))
    nothing_yet = service.run(date(2024, 3, 30))
    (march,) = service.run(date(2024, 3, 31)).issued
    assert [item.reference for item in nothing_yet.already_invoiced] == [issued.draft.reference]
    assert (march.draft.cycle.start, march.draft.cycle.end) == (
        datetime(2024, 2, 29, tzinfo=UTC),
        datetime(2024, 3, 31, tzinfo=UTC),
    )


def test_months_begin_at_local_midnight_in_the_billing_time_zone(billing: Callable[..., Any]) -> None:
    """Europe/Berlin: 2022-10-31T23:30Z is already 1 November there, so that hour is November's."""
    app, service = billing(billing={"timezone": "Europe/Berlin"})
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", datetime(2022, 9, 30, 22, tzinfo=UTC), 745))
    (october,) = service.run(date(2022, 11, 1)).issued
    assert october.draft.cycle.start == datetime(2022, 9, 30, 22, tzinfo=UTC)
    assert october.draft.cycle.end == datetime(2022, 10, 31, 23, tzinfo=UTC)
    assert october.draft.lines[0].hours == Decimal(745)


def test_late_usage_goes_on_the_next_invoice_marked_with_its_period_and_the_issued_one_never_changes(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", OCT, 10))
    (october,) = service.run(date(2022, 11, 1)).issued
    clock.set(datetime(2022, 11, 3, tzinfo=UTC))
    collect(app, hourly("a", "p-1", "m1.large", OCT + timedelta(days=20), 5))  # found late
    collect(app, hourly("a", "p-1", "m1.large", NOV, 20))
    clock.set(datetime(2022, 12, 1, 2, tzinfo=UTC))
    (november,) = service.run(date(2022, 12, 1)).issued
    lines = [(line.period.label, line.late, line.billed_hours, line.amount) for line in november.draft.lines]
    assert lines == [
        ("2022-10", True, Decimal("5.000000"), Decimal("0.50")),
        ("2022-11", False, Decimal("20.000000"), Decimal("2.00")),
    ]
    stored = service.find(october.draft.reference)
    assert stored.total == Decimal("1.00")
    assert len(stored.lines) == 1


def test_a_missed_run_is_caught_up_with_one_invoice_per_cycle(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", OCT, 10) + hourly("a", "p-1", "m1.large", NOV, 20))
    clock.set(datetime(2022, 12, 1, 2, tzinfo=UTC))
    run = service.run(date(2022, 12, 1))
    assert [(issued.draft.cycle.label, issued.draft.total) for issued in run.issued] == [
        ("2022-10", Decimal("1.00")),
        ("2022-11", Decimal("2.00")),
    ]


def test_a_missing_price_holds_that_client_with_the_key_to_add_and_others_are_invoiced(
    billing: Callable[..., Any],
) -> None:
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1")
    other = client_with(app, "ops@beta.org", project="p-2")
    collect(app, hourly("a", "p-1", "m9.huge", OCT, 3) + hourly("b", "p-2", "m1.large", OCT, 3))
    with capture_logs() as logs:
        run = service.run(date(2022, 11, 1))
    assert [issued.client.id for issued in run.issued] == [other.id]
    (held,) = run.held
    (error,) = held.errors
    assert (error.resource_name, error.settings_key) == ("vm-a", 'pricing.flavors."m9.huge"')
    (finished,) = [entry for entry in logs if entry["event"] == "invoicing finished"]
    assert finished == {
        "event": "invoicing finished",
        "log_level": "info",
        "invoice_date": "2022-11-01",
        "dry_run": False,
        "issued": 1,
        "already_invoiced": 0,
        "held": 1,
        "skipped": 0,
    }, "the line an operator greps for after the monthly run"


def test_fiscal_numbers_run_on_across_a_year_boundary_with_the_template(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    app, service = billing(
        configurations={
            "default": {
                "fiscal_number_format": "INV-{{ year }}{{ month }}-{{ number }}",
                "next_fiscal_number": 41,
            }
        }
    )
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", datetime(2022, 12, 1, tzinfo=UTC), 10))
    collect(app, hourly("a", "p-1", "m1.large", datetime(2023, 1, 1, tzinfo=UTC), 10))
    clock.set(datetime(2023, 2, 2, tzinfo=UTC))
    (december,) = service.run(date(2023, 1, 1)).issued
    (january,) = service.run(date(2023, 2, 1)).issued
    assert (december.number, january.number) == ("INV-202301-41", "INV-202302-42")


def test_proforma_invoices_become_fiscal_with_the_next_number_when_paid(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    app, service = billing(configurations={"default": {"invoicing_option": "proforma_then_fiscal"}})
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", OCT, 10))
    (issued,) = service.run(date(2022, 11, 1)).issued
    assert (issued.number, issued.proforma_number) == (None, "P1")
    paid = service.mark_paid("P1", paid_at=datetime(2022, 11, 9, 10, tzinfo=UTC))
    assert (paid.status, paid.number, paid.paid_amount) == ("paid", "1", Decimal("1.00"))
    assert paid.issued_at == datetime(2022, 11, 9, 10, tzinfo=UTC)
    with pytest.raises(Exception, match="is paid; it cannot become cancelled"):
        service.cancel("1")


def test_zero_amount_cycles_are_not_invoiced_unless_configured(billing: Callable[..., Any]) -> None:
    app, service = billing(pricing={**PRICING, "flavors": {"free": "0"}})
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "free", OCT, 10))
    run = service.run(date(2022, 11, 1))
    assert run.issued == [] and [item.reason for item in run.skipped] == [
        "zero amount (invoice_zero_amounts is off)"
    ]


def test_dry_run_writes_nothing_and_replay_gives_byte_identical_json(billing: Callable[..., Any]) -> None:
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1", solus_user="42")
    collect(
        app, hourly("a", "p-1", "m1.small", OCT, 744) + hourly("s1", "42", "7", OCT, 300, source="solusvm")
    )
    zone = app.settings.billing.zone()
    dry = json.dumps(run_document(service.run(date(2022, 11, 1), dry_run=True), zone), sort_keys=True)
    again = json.dumps(run_document(service.run(date(2022, 11, 1), dry_run=True), zone), sort_keys=True)
    with app.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(invoices)) == 0
    real = json.loads(json.dumps(run_document(service.run(date(2022, 11, 1)), zone), sort_keys=True))
    assert dry == again
    assert {**json.loads(dry), "dry_run": False} == real


def test_with_generate_invoices_off_the_invoice_goes_to_the_whmcs_outbox_in_the_same_transaction(
    billing: Callable[..., Any],
) -> None:
    app, service = billing(billing={"generate_invoices": False})
    client = client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", OCT, 10))
    (issued,) = service.run(date(2022, 11, 1)).issued
    assert (issued.issuer, issued.number) == ("whmcs", None)
    with app.engine.connect() as connection:
        (row,) = connection.execute(select(outbox)).all()
    payload = decode_payload(row.payload)
    assert (row.kind, row.reference, row.client_id) == (
        "create_invoice",
        f"BB-{client.id}-2022-10",
        client.id,
    )
    assert payload["date"] == "2022-11-01" and payload["due_date"] == "2022-11-15"
    assert payload["items"] == [
        {
            "description": "vm-a (m1.large) 2022-10-01 to 2022-10-31: 10.000000 hours x 0.10 USD",
            "amount": "1.00",
            "taxed": False,
        }
    ]
    assert f"BB-{client.id}-2022-10" in payload["notes"]


def test_calendar_and_anniversary_clients_in_one_run_each_get_only_their_cycle(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    """One run reads the usage of many clients at once; a later cycle of one never leaks into another."""
    app, service = billing(configurations={"anniversary": {"billing_cycle_calendar": False}})
    clock.set(datetime(2022, 9, 20, tzinfo=UTC))
    monthly = client_with(app, "ops@acme.com", project="p-1")
    anniversary = app.clients.add(email="ops@beta.org", name="Beta", configuration="anniversary")
    app.clients.link(str(anniversary.id), LinkKind.OPENSTACK_PROJECT, "p-2")
    collect(app, hourly("a", "p-1", "m1.large", OCT, 24 * 40) + hourly("b", "p-2", "m1.large", OCT, 24 * 40))
    collect(app, hourly("c", "p-2", "m1.small", datetime(2022, 9, 20, tzinfo=UTC), 1))  # its first service
    clock.set(datetime(2022, 11, 21, tzinfo=UTC))
    run = service.run(date(2022, 11, 21))
    invoiced = [
        (issued.client.id, issued.draft.cycle.label, issued.draft.lines[0].hours) for issued in run.issued
    ]
    assert invoiced == [
        (monthly.id, "2022-10", Decimal(744)),
        (anniversary.id, "2022-09-20", Decimal(24 * 19)),  # 1-20 October, caught up
        (anniversary.id, "2022-10-20", Decimal(24 * 21)),  # to 10 November, where the usage ends
    ]
    assert [issued.number for issued in run.issued] == ["1", "ANNIVERSARY-1", "ANNIVERSARY-2"]


def test_a_cycle_that_has_not_ended_is_never_issued_and_a_dry_run_only_previews_it(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    """On 2 December, `invoice --date 2027-01-01` must not issue December: it has not ended."""
    app, service = billing()
    client_with(app, "ops@acme.com", project="p-1")
    december = datetime(2026, 12, 1, tzinfo=UTC)
    collect(app, hourly("a", "p-1", "m1.large", december - timedelta(days=30), 10))  # November
    collect(app, hourly("a", "p-1", "m1.large", december, 24))
    clock.set(datetime(2026, 12, 2, 9, tzinfo=UTC))

    with pytest.raises(CycleNotEnded) as refused:
        service.run(date(2027, 1, 1))
    assert refused.value.exit_code == 2
    assert "billing cycle 2026-12 ends 2027-01-01T00:00+00:00, after now (2026-12-02T09:00+00:00)" in str(
        refused.value
    )
    with app.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(invoices)) == 0, "nothing issued"

    preview = service.run(date(2027, 1, 1), dry_run=True)
    assert [(item.draft.cycle.label, item.preview) for item in preview.issued] == [
        ("2026-11", False),
        ("2026-12", True),
    ]
    document = run_document(preview, app.settings.billing.zone())
    assert [entry["preview"] for entry in document["invoices"]] == [False, True]

    collect(app, hourly("a", "p-1", "m1.large", december + timedelta(days=2), 24))  # the rest of December
    clock.set(datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    issued = service.run(date(2027, 1, 1)).issued
    assert [(item.draft.cycle.label, item.draft.lines[0].hours) for item in issued] == [
        ("2026-11", Decimal(10)),
        ("2026-12", Decimal(48)),
    ]
    assert not any(line.late for item in issued for line in item.draft.lines), "December was never early"


def test_an_anniversary_cycle_still_running_is_refused_whichever_caller_asks(
    billing: Callable[..., Any], clock: FixedClock
) -> None:
    app, service = billing(configurations={"default": {"billing_cycle_calendar": False}})
    clock.set(datetime(2026, 11, 10, tzinfo=UTC))
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.large", datetime(2026, 11, 10, 1, tzinfo=UTC), 24))
    clock.set(datetime(2026, 12, 9, 23, tzinfo=UTC))  # one hour before the cycle of the 10th ends
    with pytest.raises(CycleNotEnded, match="billing cycle 2026-11-10 ends 2026-12-10T00:00"):
        service.run(date(2026, 12, 10))
    clock.set(datetime(2026, 12, 10, 0, 1, tzinfo=UTC))
    (issued,) = service.run(date(2026, 12, 10)).issued
    assert issued.draft.cycle.label == "2026-11-10" and not issued.preview


class Heard:
    """A listener that keeps what it hears, as the CLI's streamed report writes it out."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str]] = []

    def issued(self, invoice: IssuedInvoice) -> None:
        self.outcomes.append(("issued", invoice.draft.reference))

    def already_invoiced(self, item: Skipped) -> None:
        self.outcomes.append(("already invoiced", item.reference))

    def held(self, item: Held) -> None:
        self.outcomes.append(("held", item.reference))

    def skipped(self, item: Skipped) -> None:
        self.outcomes.append(("skipped", item.reference))


def test_a_run_with_a_listener_hands_it_every_outcome_and_keeps_only_counts(
    billing: Callable[..., Any],
) -> None:
    app, service = billing()
    first = client_with(app, "ops@acme.com", project="p-1")
    second = client_with(app, "dev@acme.com", project="p-2")
    collect(app, hourly("a", "p-1", "m1.small", OCT, 100))
    collect(app, hourly("b", "p-2", "m1.large", OCT, 10))
    service.run(date(2022, 11, 1), client_ref=str(first.id))

    heard = Heard()
    run = service.run(date(2022, 11, 1), listener=heard)

    assert heard.outcomes == [
        ("already invoiced", f"BB-{first.id}-2022-10"),
        ("issued", f"BB-{second.id}-2022-10"),
    ]
    assert (run.issued, run.already_invoiced, run.held, run.skipped) == ([], [], [], [])
    assert (run.counts.issued, run.counts.already_invoiced, run.counts.totals) == (
        1,
        1,
        {"USD": Decimal("1.00")},
    )
