"""The push puts every client, invoice, credit and payment into WHMCS exactly once, whatever the wire does.

WHMCS is the fake over real HTTP on 127.0.0.1; the store is real, on SQLite, MariaDB and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.daemon import Daemon
from bridge.domain.clients import LinkKind
from bridge.store.outbox import EffectKind, Fence, OutboxState, claim
from bridge.sync.push import PushReport, PushStopped
from bridge.sync.systemd import SystemdNotifier
from bridge.whmcs import WhmcsClient
from tests.fakes.whmcs import FakeWhmcs
from tests.support.whmcs_push import (
    HOLD,
    ISSUED,
    READ_TIMEOUT,
    add_whmcs_client,
    bridge_invoice,
    enqueue_effect,
    issue_invoice,
    row,
    rows,
    whmcs_invoices_carrying,
    whmcs_section,
)

SETTLE = timedelta(seconds=900)
"""whmcs.in_doubt_settle_seconds by default: an in-doubt row is looked up this long after its claim."""


@pytest.fixture
def fake() -> Iterator[FakeWhmcs]:
    with FakeWhmcs(hold_seconds=HOLD) as server:
        yield server


@pytest.fixture
def bridge(make_app: Callable[..., App], fake: FakeWhmcs) -> App:
    return make_app(whmcs=whmcs_section(fake))


def push(app: App, *, dry_run: bool = False, **options: Any) -> PushReport:
    return app.pusher(**options).run(dry_run=dry_run)


def whmcs_link(app: App, client_id: int) -> list[str]:
    return app.clients.get(str(client_id)).external_ids(LinkKind.WHMCS_CLIENT)


def test_a_new_client_and_its_invoices_reach_whmcs_once_and_in_order(bridge: App, fake: FakeWhmcs) -> None:
    client = bridge.clients.add(email="ada@example.com", name="Ada King Lovelace")
    october = issue_invoice(bridge.engine, client.id, "2022-10", ["10.00", "2.34"])
    november = issue_invoice(bridge.engine, client.id, "2022-11", ["5.00"])

    report = push(bridge)

    assert [(note.kind, note.result) for note in report.notes] == [
        ("add_client", "sent"),
        ("create_invoice", "sent"),
        ("create_invoice", "sent"),
    ]
    (created,) = fake.clients.values()
    assert (created.email, created.fields["firstname"], created.fields["lastname"]) == (
        "ada@example.com",
        "Ada King",
        "Lovelace",
    )
    assert created.fields["country"] == "US"
    assert fake.last_params("AddClient")["skipvalidation"] == "1"
    first, second = fake.invoices_of(created.id)
    assert [(item.description, item.amount) for item in first.items] == [
        ("vm-1 2022-10", Decimal("10.00")),
        ("vm-2 2022-10", Decimal("2.34")),
    ]
    assert (first.total, first.status, str(first.date), str(first.duedate)) == (
        Decimal("12.34"),
        "Unpaid",
        "2022-11-01",
        "2022-11-15",
    )
    assert first.notes.startswith(october) and second.notes.startswith(november)
    assert whmcs_link(bridge, client.id) == [str(created.id)]
    assert bridge_invoice(bridge.engine, october).remote_id == str(first.id)
    assert row(bridge.engine, october).remote_id == str(first.id)
    assert {item.state for item in rows(bridge.engine)} == {OutboxState.DONE}

    calls = fake.call_count()
    assert push(bridge).notes == ()
    assert fake.call_count() == calls, "a second push has nothing to send"


def test_a_client_whmcs_already_knows_by_email_is_linked_not_created(bridge: App, fake: FakeWhmcs) -> None:
    existing = add_whmcs_client(fake, "ada@example.com")
    client = bridge.clients.add(email="ada@example.com", name="Ada Lovelace")
    reference = issue_invoice(bridge.engine, client.id, "2022-10", ["7.00"])

    report = push(bridge)

    assert fake.call_count("AddClient") == 0
    assert [note.result for note in report.notes] == ["looked_up", "sent"]
    assert whmcs_link(bridge, client.id) == [str(existing)]
    assert [invoice.userid for invoice in whmcs_invoices_carrying(fake, reference)] == [existing]


def test_a_whmcs_client_in_another_currency_is_not_adopted(bridge: App, fake: FakeWhmcs) -> None:
    add_whmcs_client(fake, "ada@example.com", currency=2)  # EUR
    client = bridge.clients.add(email="ada@example.com", name="Ada Lovelace", currency="USD")
    issue_invoice(bridge.engine, client.id, "2022-10", ["7.00"])

    report = push(bridge)

    (failed,) = report.of("failed")
    assert "bills in EUR but the bridge client bills in USD" in (failed.message or "")
    assert fake.invoices == {}
    assert row(bridge.engine, "BB-1-2022-10").state is OutboxState.PENDING, "it waits behind its client"


def test_an_invoice_of_a_client_without_any_client_row_brings_one_matched_by_email(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    before = make_app()  # WHMCS off when the client was added: no add_client row
    client = before.clients.add(email="ada@example.com", name="Ada Lovelace")
    existing = add_whmcs_client(fake, "ada@example.com")
    bridge = make_app(whmcs=whmcs_section(fake))
    reference = issue_invoice(bridge.engine, client.id, "2022-10", ["3.00"])

    report = push(bridge)

    assert report.enqueued == (client.id,)
    assert row(bridge.engine, "BB-CLIENT-1").state is OutboxState.DONE
    assert [invoice.userid for invoice in whmcs_invoices_carrying(fake, reference)] == [existing]
    assert fake.call_count("AddClient") == 0


def _linked_client(app: App) -> int:
    client = app.clients.add(email="ada@example.com", name="Ada Lovelace")
    push(app)
    return client.id


SCENARIOS = ["AddClient", "UpdateClient", "CreateInvoice", "UpdateInvoice", "AddCredit", "AddInvoicePayment"]


@pytest.mark.parametrize("action", SCENARIOS)
def test_a_reply_lost_after_whmcs_applied_the_call_never_doubles_the_effect(
    action: str, make_app: Callable[..., App], fake: FakeWhmcs, clock: FixedClock
) -> None:
    """Commit-then-drop once: WHMCS applies the call and the bridge never hears. The row waits in doubt
    (no lookup, no second send in the same run); once the settle time has passed, a lookup by reference
    finds the effect, and WHMCS holds exactly one client / invoice / credit / payment."""
    draft = action == "UpdateInvoice"
    app = make_app(whmcs=whmcs_section(fake, invoice_status="Draft" if draft else "Unpaid"))
    if action == "AddClient":
        app.clients.add(email="ada@example.com", name="Ada Lovelace")
    else:
        client_id = _linked_client(app)
    if action == "UpdateClient":
        app.clients.update(str(client_id), name="Ada Byron")
    if action in ("CreateInvoice", "UpdateInvoice"):
        issue_invoice(app.engine, client_id, "2022-10", ["12.34"])
    if action == "AddCredit":
        enqueue_effect(
            app.engine,
            client_id,
            EffectKind.ADD_CREDIT,
            "BB-CREDIT-1-goodwill",
            {"amount": "4.50", "description": "Goodwill BB-CREDIT-1-goodwill", "date": "2022-11-02"},
        )
    if action == "AddInvoicePayment":
        issue_invoice(app.engine, client_id, "2022-10", ["12.34"])
        push(app)
        payment = {
            "invoice_reference": "BB-1-2022-10",
            "amount": "12.34",
            "gateway": "banktransfer",
            "date": "2022-11-05T10:00:00+00:00",
        }
        enqueue_effect(app.engine, client_id, EffectKind.ADD_PAYMENT, "BB-PAY-1-2022-10", payment)
    calls_before = fake.call_count(action)
    fake.fail("commit_then_drop", action=action)

    first = push(app)

    assert [note.result for note in first.of("postponed")] == ["postponed"]
    assert fake.call_count(action) == calls_before + 1
    clock.advance(SETTLE - timedelta(seconds=1))
    assert push(app).of("blocked"), "not looked up while WHMCS might still be applying it"
    clock.advance(timedelta(seconds=1))

    report = push(app)

    assert report.of("failed", "postponed") == []
    assert {item.state for item in rows(app.engine)} == {OutboxState.DONE}
    assert fake.call_count(action) == calls_before + 1, f"{action} was sent once, then looked up"
    if action == "AddClient":
        assert [c.email for c in fake.clients.values()] == ["ada@example.com"]
        assert whmcs_link(app, 1) == ["1"]
    if action == "UpdateClient":
        (only,) = fake.clients.values()
        assert (only.fields["firstname"], only.fields["lastname"]) == ("Ada", "Byron")
    if action in ("CreateInvoice", "UpdateInvoice"):
        (invoice,) = whmcs_invoices_carrying(fake, "BB-1-2022-10")
        assert (invoice.status, invoice.total) == ("Unpaid", Decimal("12.34"))
        assert bridge_invoice(app.engine, "BB-1-2022-10").remote_id == str(invoice.id)
    if action == "AddCredit":
        (credit,) = fake.credits
        assert (credit.amount, credit.description) == (Decimal("4.50"), "Goodwill BB-CREDIT-1-goodwill")
        assert fake.clients[1].credit == Decimal("4.50")
    if action == "AddInvoicePayment":
        (transaction,) = fake.transactions
        assert (transaction.transid, transaction.amountin) == ("BB-PAY-1-2022-10", Decimal("12.34"))
        assert fake.invoices[1].status == "Paid"


def test_a_write_that_timed_out_unapplied_is_sent_again_once_after_the_settle_time(
    make_app: Callable[..., App], fake: FakeWhmcs, clock: FixedClock
) -> None:
    app = make_app(whmcs=whmcs_section(fake, read_timeout_seconds=READ_TIMEOUT))
    client_id = _linked_client(app)
    reference = issue_invoice(app.engine, client_id, "2022-10", ["9.99"])
    fake.fail("timeout", action="CreateInvoice")  # held until the client gives up, and not applied

    assert [note.result for note in push(app).notes] == ["postponed"]
    assert (fake.call_count("CreateInvoice"), fake.call_count("GetInvoices")) == (1, 0)
    clock.advance(SETTLE)
    report = push(app)

    assert [note.result for note in report.notes] == ["sent"]
    assert len(whmcs_invoices_carrying(fake, reference)) == 1
    assert fake.call_count("CreateInvoice") == 2
    assert fake.call_count("GetInvoices") == 2, "looked up before the second send, and swept after it"


def test_draft_mode_creates_a_draft_then_publishes_and_emails_it(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    app = make_app(whmcs=whmcs_section(fake, invoice_status="Draft", send_invoice=True))
    client_id = _linked_client(app)
    reference = issue_invoice(app.engine, client_id, "2022-10", ["1.00"])

    push(app)

    assert fake.last_params("CreateInvoice")["draft"] == "1"
    assert "sendinvoice" not in fake.last_params("CreateInvoice")
    assert fake.last_params("UpdateInvoice")["publishandsendemail"] == "1"
    (invoice,) = whmcs_invoices_carrying(fake, reference)
    assert invoice.status == "Unpaid"
    assert [(email.related_id, email.template) for email in fake.emails] == [(invoice.id, "Invoice Created")]


def test_unpaid_mode_sends_the_invoice_in_the_create_call_when_asked(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    app = make_app(whmcs=whmcs_section(fake, invoice_status="Unpaid", send_invoice=True))
    client_id = _linked_client(app)
    issue_invoice(app.engine, client_id, "2022-10", ["1.00"])

    push(app)

    assert fake.last_params("CreateInvoice")["sendinvoice"] == "1"
    assert fake.call_count("UpdateInvoice") == 0
    assert len(fake.emails) == 1


def test_a_refused_invoice_parks_its_client_and_leaves_the_others_pushed(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    app = make_app(whmcs=whmcs_section(fake, push_concurrency=1))
    ids = [app.clients.add(email=f"c{n}@example.com", name=f"Client {n}").id for n in range(3)]
    for client_id in ids:
        issue_invoice(app.engine, client_id, "2022-10", ["10.00"])
        issue_invoice(app.engine, client_id, "2022-11", ["11.00"])
    fake.fail("error", action="CreateInvoice", message="Invalid Payment Method")  # the first client's

    with capture_logs() as logs:
        report = push(app)

    (failed,) = report.of("failed")
    assert (failed.reference, failed.message) == (
        "BB-1-2022-10",
        "whmcs /includes/api.php: CreateInvoice: WHMCS refused: Invalid Payment Method",
    )
    (logged,) = [entry for entry in logs if entry["event"] == "outbox row failed"]
    assert (logged["log_level"], logged["reference"], logged["error"]) == (
        "warning",
        failed.reference,
        failed.message,
    )
    (finished,) = [entry for entry in logs if entry["event"] == "push finished"]
    assert finished == {
        "event": "push finished",
        "log_level": "info",
        "sent": 7,  # the three add_client rows, and the two invoices of each of the two other clients
        "failed": 1,
        "clients": 3,
        "elsewhere": 0,  # clients another daemon's push held meanwhile
        "enqueued": 0,
    }, "the push's line in the journal: what was sent and what needs the operator"
    assert row(app.engine, "BB-1-2022-10").state is OutboxState.FAILED
    assert row(app.engine, "BB-1-2022-11").state is OutboxState.PENDING, (
        "waits behind its client's failed row"
    )
    assert (row(app.engine, "BB-1-2022-11").attempts, row(app.engine, "BB-1-2022-11").claimed_at) == (
        0,
        None,
    ), "claimed ahead while the row before it was out, then given back: never sent, no attempt counted"
    for reference in ("BB-2-2022-10", "BB-2-2022-11", "BB-3-2022-10", "BB-3-2022-11"):
        assert len(whmcs_invoices_carrying(fake, reference)) == 1
    assert "1 outbox rows failed" in app.outbox.readiness_problems()[0]
    listed = app.outbox.rows()
    assert [(item.row.reference, item.blocked_by) for item in listed] == [
        ("BB-1-2022-10", None),
        ("BB-1-2022-11", failed.row_id),
    ]

    app.outbox.retry(failed.row_id)
    push(app)

    assert len(whmcs_invoices_carrying(fake, "BB-1-2022-10")) == 1
    assert len(whmcs_invoices_carrying(fake, "BB-1-2022-11")) == 1
    assert app.outbox.readiness_problems() == []


def test_a_retried_failed_row_is_looked_up_first_and_not_sent_twice(
    bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    client_id = _linked_client(bridge)
    reference = issue_invoice(bridge.engine, client_id, "2022-10", ["10.00"])
    # WHMCS created the invoice but the answer was lost, and its lookup then answered with an error.
    fake.fail("commit_then_drop", action="CreateInvoice")
    fake.fail("error", action="GetInvoices", message="Database hiccup", times=1)
    push(bridge)
    clock.advance(SETTLE)
    report = push(bridge)
    assert report.of("failed")[0].reference == reference

    bridge.outbox.retry(report.of("failed")[0].row_id)
    push(bridge)

    assert len(whmcs_invoices_carrying(fake, reference)) == 1
    assert fake.call_count("CreateInvoice") == 1
    assert row(bridge.engine, reference).state is OutboxState.DONE


def test_an_auth_refusal_stops_the_push_with_one_clear_error_and_no_secret(
    bridge: App, fake: FakeWhmcs
) -> None:
    for n in range(3):
        client = bridge.clients.add(email=f"c{n}@example.com", name=f"Client {n}")
        issue_invoice(bridge.engine, client.id, "2022-10", ["1.00"])
    fake.fail("forbidden", times=None, message="Invalid IP 203.0.113.9")

    with pytest.raises(PushStopped) as stopped:
        push(bridge)

    message = str(stopped.value)
    assert "Invalid IP 203.0.113.9 (HTTP 403)" in message
    assert "whmcs.access_key" in message, "says how to fix it"
    assert fake.secret not in message and fake.identifier not in message
    assert "\n" not in message
    assert {item.state for item in rows(bridge.engine)} <= {OutboxState.PENDING}, "nothing was done"
    assert fake.call_count() <= 3, "stopped at once, not once per row"

    fake.clear_faults()
    push(bridge)
    assert {item.state for item in rows(bridge.engine)} == {OutboxState.DONE}


def test_a_row_whose_lookup_keeps_failing_stays_in_doubt_and_is_never_sent_again(
    make_app: Callable[..., App], fake: FakeWhmcs, clock: FixedClock
) -> None:
    app = make_app(whmcs=whmcs_section(fake, push_attempts=2, alert_after_attempts=3))
    client_id = _linked_client(app)
    reference = issue_invoice(app.engine, client_id, "2022-10", ["1.00"])
    fake.fail("http_500", action="GetInvoices", times=None)
    fake.fail("commit_then_drop", action="CreateInvoice")

    report = push(app)

    assert len(report.of("postponed")) == 1
    stored = row(app.engine, reference)
    assert (stored.state, stored.attempts) == (OutboxState.IN_DOUBT, 1), "an in-doubt row is not retried"
    assert stored.next_attempt_at - clock.now() >= SETTLE
    calls = fake.call_count()
    assert push(app).of("blocked"), "not due yet"
    assert fake.call_count() == calls
    assert app.outbox.readiness_problems() == []

    for _ in range(2):
        clock.advance(timedelta(hours=1))
        push(app)
    stored = row(app.engine, reference)
    assert (stored.state, stored.attempts) == (OutboxState.IN_DOUBT, 3)
    assert "HTTP 500" in (stored.last_error or "")
    assert "tried 3+ times" in app.outbox.readiness_problems()[0]

    fake.clear_faults()
    clock.advance(timedelta(hours=1))
    push(app)
    assert len(whmcs_invoices_carrying(fake, reference)) == 1, "found by the lookup, not sent again"
    assert fake.call_count("CreateInvoice") == 1


def test_a_call_that_never_left_is_tried_again_in_the_run_then_waits_with_growing_back_off(
    make_app: Callable[..., App], fake: FakeWhmcs, clock: FixedClock
) -> None:
    app = make_app(whmcs=whmcs_section(fake, push_attempts=2))
    client_id = _linked_client(app)
    reference = issue_invoice(app.engine, client_id, "2022-10", ["1.00"])
    fake.stop()

    push(app)
    stored = row(app.engine, reference)
    assert (stored.state, stored.attempts) == (OutboxState.PENDING, 2), "tried twice: it never left"
    first_wait = stored.next_attempt_at - clock.now()
    assert timedelta(seconds=15) <= first_wait <= timedelta(seconds=60)

    clock.advance(timedelta(hours=1))
    push(app)
    stored = row(app.engine, reference)
    assert (stored.state, stored.attempts) == (OutboxState.PENDING, 4)
    assert stored.next_attempt_at - clock.now() > first_wait, "the wait grows"


def test_connection_refused_leaves_the_row_pending_not_in_doubt(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    app = make_app(whmcs=whmcs_section(fake))
    client_id = _linked_client(app)
    reference = issue_invoice(app.engine, client_id, "2022-10", ["1.00"])
    fake.stop()

    report = push(app)

    assert report.of("postponed")
    stored = row(app.engine, reference)
    assert stored.state is OutboxState.PENDING
    assert "connection refused" in (stored.last_error or "")


def test_a_second_invoice_carrying_the_reference_is_cancelled_logged_and_counted(
    bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    client_id = _linked_client(bridge)
    reference = issue_invoice(bridge.engine, client_id, "2022-10", ["1.00"])
    claim_and_crash(bridge, reference)  # the push claimed the row, sent it, and crashed
    first, second = (admin_invoice(fake, reference) for _ in range(2))  # and WHMCS holds it twice
    clock.advance(SETTLE)

    with capture_logs() as logs:
        outcome = bridge.runner.run("push")

    assert outcome.status == "succeeded"
    assert (row(bridge.engine, reference).state, row(bridge.engine, reference).remote_id) == (
        OutboxState.DONE,
        str(first),
    )
    assert fake.invoices[first].status == "Unpaid"
    assert fake.invoices[second].status == "Cancelled", "the later one is cancelled through the API"
    cancel = fake.last_params("UpdateInvoice")
    assert (cancel["invoiceid"], cancel["status"]) == (str(second), "Cancelled")
    (error,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert (error["kind"], error["reference"], error["kept"], error["cancelled"]) == (
        "invoice",
        reference,
        first,
        [second],
    )
    assert duplicates(bridge, "invoice", "cancelled") == 1
    assert fake.call_count("CreateInvoice") == 2, "the bridge itself sent none"


def test_a_paid_second_invoice_is_kept_and_the_unpaid_first_cancelled_but_two_paid_park_the_row(
    bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    client_id = _linked_client(bridge)
    october = issue_invoice(bridge.engine, client_id, "2022-10", ["1.00"])
    claim_and_crash(bridge, october)
    unpaid, paid = admin_invoice(fake, october), admin_invoice(fake, october, status="Paid")
    clock.advance(SETTLE)

    bridge.runner.run("push")

    assert row(bridge.engine, october).remote_id == str(paid)
    assert fake.invoices[unpaid].status == "Cancelled"

    november = issue_invoice(bridge.engine, client_id, "2022-11", ["1.00"])
    claim_and_crash(bridge, november)
    first, second = (admin_invoice(fake, november, status="Paid") for _ in range(2))
    clock.advance(SETTLE)

    bridge.runner.run("push")

    stored = row(bridge.engine, november)
    assert stored.state is OutboxState.FAILED
    assert f"kept {first}, cannot cancel {second} (paid)" in (stored.last_error or "")
    assert duplicates(bridge, "invoice", "left") == 1


def claim_and_crash(app: App, reference: str) -> None:
    """What a push that sent the row's call and was killed leaves behind: the row claimed, in doubt."""
    with app.runner.holding("push") as lease, app.engine.begin() as connection:
        assert lease is not None
        assert claim(
            connection, row(app.engine, reference), Fence(lease.name, lease.token), app.clock.now(), SETTLE
        )


def admin_invoice(fake: FakeWhmcs, reference: str, *, status: str = "Unpaid") -> int:
    """An invoice carrying ``reference`` that reached WHMCS some other way (a late call, an admin)."""
    with WhmcsClient(fake.url, fake.identifier, fake.secret) as whmcs:
        invoice_id = whmcs.create_invoice(
            1, [("vm", Decimal("1.00"), False)], date=ISSUED.date(), due_date=ISSUED.date(), notes=reference
        ).invoice_id
        if status != "Unpaid":
            whmcs.update_invoice(invoice_id, status=status)  # type: ignore[arg-type]
    return invoice_id


def duplicates(app: App, kind: str, outcome: str) -> float | None:
    """billing_bridge_whmcs_duplicates_total as /metrics shows it."""
    return app.metrics.get_sample_value(
        "billing_bridge_whmcs_duplicates_total", {"kind": kind, "outcome": outcome}
    )


def test_a_payment_goes_after_its_invoice_and_on_it(bridge: App, fake: FakeWhmcs) -> None:
    client = bridge.clients.add(email="ada@example.com", name="Ada Lovelace")
    reference = issue_invoice(bridge.engine, client.id, "2022-10", ["20.00"])
    enqueue_effect(
        bridge.engine,
        client.id,
        EffectKind.ADD_PAYMENT,
        "BB-PAY-1-2022-10-a",
        {
            "invoice_reference": reference,
            "amount": "5.00",
            "gateway": "banktransfer",
            "date": "2022-11-05T10:00:00+01:00",
        },
    )

    push(bridge)

    (invoice,) = whmcs_invoices_carrying(fake, reference)
    (transaction,) = fake.transactions
    assert (transaction.invoiceid, transaction.amountin, str(transaction.date)) == (
        invoice.id,
        Decimal("5.00"),
        "2022-11-05 09:00:00",  # WHMCS's wall time in billing.timezone (UTC here)
    )
    assert invoice.status == "Unpaid"


def test_one_clients_rows_stay_in_order_while_clients_go_in_parallel(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    app = make_app(whmcs=whmcs_section(fake, push_concurrency=4))
    periods = [f"2022-{month:02d}" for month in range(1, 7)]
    for n in range(6):
        client = app.clients.add(email=f"c{n}@example.com", name=f"Client {n}")
        for period in periods:
            issue_invoice(app.engine, client.id, period, ["1.00"])
    fake.fail("slow", latency_ms=5, times=None)

    push(app)

    sent: dict[str, list[str]] = {}
    for request in fake.requests:
        if request.action == "CreateInvoice":
            sent.setdefault(request.params["userid"], []).append(request.params["notes"].split(":")[0])
    assert len(sent) == 6
    for references in sent.values():
        assert [reference.rsplit("-", 2)[-2:] for reference in references] == [p.split("-") for p in periods]
    assert len(fake.invoices) == 36


def test_dry_run_calls_nothing_and_changes_nothing(bridge: App, fake: FakeWhmcs) -> None:
    client = bridge.clients.add(email="ada@example.com", name="Ada Lovelace")
    issue_invoice(bridge.engine, client.id, "2022-10", ["10.00", "2.34"])
    before = rows(bridge.engine)

    report = push(bridge, dry_run=True)

    assert fake.call_count() == 0
    assert rows(bridge.engine) == before
    assert [note.action for note in report.notes] == [
        "GetClientsDetails email=ada@example.com, then AddClient if WHMCS has no such client",
        "CreateInvoice 2 lines, total 12.34",
    ]


def test_a_cancelled_row_is_never_sent(bridge: App, fake: FakeWhmcs) -> None:
    client_id = _linked_client(bridge)
    reference = issue_invoice(bridge.engine, client_id, "2022-10", ["1.00"])
    bridge.outbox.cancel(row(bridge.engine, reference).id)

    push(bridge)

    assert fake.invoices == {}
    assert row(bridge.engine, reference).state is OutboxState.CANCELLED


def test_a_push_asked_to_stop_sends_nothing_more(bridge: App, fake: FakeWhmcs) -> None:
    client = bridge.clients.add(email="ada@example.com", name="Ada Lovelace")
    issue_invoice(bridge.engine, client.id, "2022-10", ["1.00"])

    push(bridge, stopping=lambda: True)

    assert fake.call_count() == 0
    assert {item.state for item in rows(bridge.engine)} == {OutboxState.PENDING}


def test_the_push_job_runs_under_the_runner_and_skips_while_whmcs_is_off(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    off = make_app()
    assert off.runner.run("push").result == {"skipped": "whmcs.enabled is false"}
    on = make_app(whmcs=whmcs_section(fake))
    client = on.clients.add(email="ada@example.com", name="Ada Lovelace")
    issue_invoice(on.engine, client.id, "2022-10", ["1.00"])

    outcome = on.runner.run("push")

    assert (outcome.status, outcome.result) == ("succeeded", {"sent": 2})
    fake.fail("forbidden", times=None)
    issue_invoice(on.engine, client.id, "2022-11", ["1.00"])
    failed = on.runner.run("push")
    assert failed.status == "failed"
    assert "Authentication Failed (HTTP 403)" in (failed.error or "")


def test_readyz_turns_degraded_and_metrics_and_status_show_the_backlog(
    make_app: Callable[..., App], fake: FakeWhmcs
) -> None:
    app = make_app(
        health={"listen": "127.0.0.1:0"},
        schedule={"push": "off", "payments_sync": "off"},
        whmcs=whmcs_section(fake),
    )
    client = app.clients.add(email="ada@example.com", name="Ada Lovelace")
    issue_invoice(app.engine, client.id, "2022-10", ["1.00"])
    issue_invoice(app.engine, client.id, "2022-11", ["1.00"])
    fake.fail("error", action="CreateInvoice", message="Invalid Payment Method")
    push(app)
    daemon = Daemon(app, notifier=SystemdNotifier({}))
    daemon.start()
    try:
        assert daemon.health is not None
        base = f"http://127.0.0.1:{daemon.health.port}"
        ready = requests.get(f"{base}/readyz", timeout=10)
        metrics = requests.get(f"{base}/metrics", timeout=10).text
        status = requests.get(f"{base}/status", timeout=10).json()
    finally:
        daemon.shutdown()

    assert ready.status_code == 503
    assert ready.json()["status"] == "degraded"
    assert "1 outbox rows failed and wait for the operator" in ready.json()["reasons"][0]
    samples = {
        (sample.name, sample.labels.get("state")): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name.startswith("billing_bridge_outbox")
    }
    oldest = (app.clock.now() - ISSUED).total_seconds()
    assert samples == {
        ("billing_bridge_outbox_rows", "pending"): 1,
        ("billing_bridge_outbox_rows", "in_doubt"): 0,
        ("billing_bridge_outbox_rows", "done"): 1,
        ("billing_bridge_outbox_rows", "failed"): 1,
        ("billing_bridge_outbox_rows", "cancelled"): 0,
        ("billing_bridge_outbox_oldest_unsent_age_seconds", None): oldest,
        ("billing_bridge_outbox_max_attempts", None): 0,
    }
    assert status["outbox"]["rows"]["failed"] == 1
    assert status["outbox"]["oldest_unsent_age_seconds"] == oldest


def test_a_push_reports_the_clients_done_of_those_with_due_rows(bridge: App) -> None:
    for email in ("ada@example.com", "grace@example.com"):
        client = bridge.clients.add(email=email, name="Ada Lovelace")
        issue_invoice(bridge.engine, client.id, "2022-10", ["10.00"])
    heard: list[tuple[int, int]] = []

    bridge.pusher().run(progress=lambda done, total: heard.append((done, total)))

    assert heard == [(0, 2), (1, 2), (2, 2), (2, 2)]
