"""What comes back from WHMCS: a paid invoice marks the bridge invoice paid; agreements come and go, and
a lookup that fails never erases what the bridge knew."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.services.payments import PaymentsSync
from bridge.whmcs import WhmcsClient
from bridge.whmcs.errors import WhmcsAuthError
from tests.fakes.whmcs import FakeWhmcs
from tests.support.whmcs_push import bridge_invoice, issue_invoice, whmcs_invoices_carrying, whmcs_section


@pytest.fixture
def fake() -> Iterator[FakeWhmcs]:
    with FakeWhmcs(hold_seconds=2.0) as server:
        yield server


@pytest.fixture
def bridge(make_app: Callable[..., App], fake: FakeWhmcs) -> App:
    return make_app(
        billing={"timezone": "Europe/Berlin"}, whmcs=whmcs_section(fake, agreement_gateways=["stripe"])
    )


def sync(app: App) -> PaymentsSync:
    return app.payments


def pushed_client(app: App, *periods: str) -> tuple[int, list[str]]:
    """A client and its invoices (20.00 each), pushed to WHMCS."""
    client = app.clients.add(email="ada@example.com", name="Ada Lovelace")
    references = [issue_invoice(app.engine, client.id, period, ["20.00"]) for period in periods]
    app.pusher().run()
    return client.id, references


def pay(fake: FakeWhmcs, reference: str, amount: str, when: datetime) -> None:
    (invoice,) = whmcs_invoices_carrying(fake, reference)
    with WhmcsClient(fake.url, fake.identifier, fake.secret) as whmcs:
        whmcs.add_invoice_payment(invoice.id, f"ch_{reference}_{amount}", "stripe", Decimal(amount), when)


def test_an_invoice_paid_in_whmcs_is_marked_paid_in_the_bridge(bridge: App, fake: FakeWhmcs) -> None:
    _, (october, november) = pushed_client(bridge, "2022-10", "2022-11")
    pay(fake, october, "20.00", datetime(2022, 11, 3, 14, 30))  # WHMCS wall time, Europe/Berlin
    pay(fake, november, "5.00", datetime(2022, 12, 3, 9, 0))  # partly paid: still open

    with capture_logs() as logs:
        report = sync(bridge).run()

    assert (report.invoices_checked, report.paid) == (2, (october,))
    operator = [entry for entry in logs if entry["log_level"] != "debug"]
    assert [(entry["event"], entry.get("reference"), entry.get("paid")) for entry in operator] == [
        ("invoice paid in WHMCS", october, None),
        ("agreement changed", None, None),  # paid through stripe, an agreement gateway
        ("payments sync finished", None, 1),
    ]
    paid = bridge_invoice(bridge.engine, october)
    assert (paid.status, paid.paid_amount) == ("paid", Decimal("20.00"))
    assert paid.paid_at == datetime(2022, 11, 3, 13, 30, tzinfo=UTC)
    assert bridge_invoice(bridge.engine, november).status == "unpaid"

    calls = fake.call_count("GetInvoice")
    assert sync(bridge).run().invoices_checked == 1, "a paid invoice is not read again"
    assert fake.call_count("GetInvoice") == calls + 1


def test_an_invoice_settled_by_credit_counts_the_credit_as_paid(bridge: App, fake: FakeWhmcs) -> None:
    _, (october,) = pushed_client(bridge, "2022-10")
    (invoice,) = whmcs_invoices_carrying(fake, october)
    with WhmcsClient(fake.url, fake.identifier, fake.secret) as whmcs:
        whmcs.add_credit(invoice.userid, Decimal("8.00"), "goodwill")
    with fake._lock:  # WHMCS's cron applies the client's credit to the open invoice
        fake._apply_credit(fake.clients[invoice.userid], invoice)
    pay(fake, october, "12.00", datetime(2022, 11, 3, 14, 30))

    sync(bridge).run()

    assert bridge_invoice(bridge.engine, october).paid_amount == Decimal("20.00")


def test_an_invoice_gone_from_whmcs_is_reported_and_left_open(bridge: App, fake: FakeWhmcs) -> None:
    _, (october,) = pushed_client(bridge, "2022-10")
    with fake._lock:
        fake.invoices.clear()

    report = sync(bridge).run()

    assert report.missing == (october,)
    assert bridge_invoice(bridge.engine, october).status == "unpaid"


def test_an_agreement_appears_and_disappears_with_when_it_changed(
    bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    client_id, _ = pushed_client(bridge)
    whmcs_id = 1
    assert bridge.payments.agreement(client_id) is None

    sync(bridge).run()
    first = bridge.payments.agreement(client_id)
    assert first is not None and first.has_agreement is False

    clock.advance(timedelta(hours=1))
    method = fake.add_pay_method(whmcs_id, gateway_name="stripe", remote_token="cus_123")
    report = sync(bridge).run()
    appeared = bridge.payments.agreement(client_id)
    assert report.agreements_changed == (client_id,)
    assert appeared is not None and (appeared.has_agreement, appeared.changed_at) == (True, clock.now())

    clock.advance(timedelta(hours=1))
    assert sync(bridge).run().agreements_changed == ()
    still = bridge.payments.agreement(client_id)
    assert still is not None and (still.changed_at, still.checked_at) == (appeared.changed_at, clock.now())

    clock.advance(timedelta(hours=1))
    fake.remove_pay_method(method)
    sync(bridge).run()
    gone = bridge.payments.agreement(client_id)
    assert gone is not None and (gone.has_agreement, gone.changed_at) == (False, clock.now())


def test_only_a_remote_token_from_an_agreement_gateway_counts(bridge: App, fake: FakeWhmcs) -> None:
    client_id, _ = pushed_client(bridge)
    fake.add_pay_method(1, gateway_name="paypal", remote_token="B-123")
    fake.add_pay_method(1, gateway_name="stripe", remote_token="", type="CreditCard")

    sync(bridge).run()

    found = bridge.payments.agreement(client_id)
    assert found is not None and found.has_agreement is False


def test_a_failed_lookup_keeps_the_last_known_agreement(
    bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    client_id, _ = pushed_client(bridge)
    fake.add_pay_method(1, gateway_name="stripe", remote_token="cus_123")
    sync(bridge).run()
    known = bridge.payments.agreement(client_id)
    clock.advance(timedelta(hours=1))
    fake.fail("http_500", action="GetPayMethods", times=None)

    report = sync(bridge).run()

    (error,) = report.errors
    assert error.startswith(f"agreement of client {client_id} (WHMCS 1), last status kept:")
    assert bridge.payments.agreement(client_id) == known, "not 'no agreement', and not re-checked"


def test_an_auth_refusal_stops_the_sync(bridge: App, fake: FakeWhmcs) -> None:
    pushed_client(bridge, "2022-10")
    fake.fail("forbidden", times=None)

    with pytest.raises(WhmcsAuthError):
        sync(bridge).run()


def test_the_payments_sync_job_runs_under_the_runner(bridge: App, fake: FakeWhmcs) -> None:
    _, (october,) = pushed_client(bridge, "2022-10")
    pay(fake, october, "20.00", datetime(2022, 11, 3, 14, 30))

    outcome = bridge.runner.run("payments_sync")

    assert outcome.status == "succeeded"
    assert outcome.result.paid == (october,)
    assert bridge_invoice(bridge.engine, october).status == "paid"
