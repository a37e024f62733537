"""A call whose fate is unknown stays in doubt until a lookup made after WHMCS can no longer be applying it.

Issue 12: WHMCS applied a CreateInvoice 35 s after the request; the bridge had given up at its read
timeout, looked the reference up a few seconds later, found nothing, sent it again, and WHMCS ended with
two invoices. Here the fake holds the call (the test releases it: no sleeps), and the settle time is
measured on the injected clock. A "success" carrying no usable id is refused the same way: in doubt,
never done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.store.outbox import EffectKind, OutboxState
from bridge.sync.push import PushReport
from tests.fakes.whmcs import FakeWhmcs
from tests.support.whmcs_push import (
    HOLD,
    READ_TIMEOUT,
    add_whmcs_client,
    enqueue_effect,
    issue_invoice,
    row,
    whmcs_invoices_carrying,
    whmcs_section,
)

SETTLE = timedelta(seconds=900)


@pytest.fixture
def fake() -> Iterator[FakeWhmcs]:
    with FakeWhmcs(unique_emails=False, hold_seconds=HOLD) as server:
        yield server


@pytest.fixture
def bridge(make_app: Callable[..., App], fake: FakeWhmcs) -> App:
    return make_app(whmcs=whmcs_section(fake, read_timeout_seconds=READ_TIMEOUT))


def push(app: App) -> PushReport:
    return app.pusher(metrics=app.metrics).run()


def linked_client(app: App) -> int:
    client = app.clients.add(email="ada@example.com", name="Ada Lovelace")
    push(app)
    return client.id


@pytest.mark.parametrize("action", ["CreateInvoice", "AddCredit"])
def test_a_write_whmcs_applies_after_the_read_timeout_is_looked_up_after_the_settle_time_and_sent_once(
    action: str, bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    client_id = linked_client(bridge)
    if action == "CreateInvoice":
        reference = issue_invoice(bridge.engine, client_id, "2022-10", ["12.34"])
    else:
        reference = "BB-CREDIT-1-goodwill"
        enqueue_effect(
            bridge.engine,
            client_id,
            EffectKind.ADD_CREDIT,
            reference,
            {"amount": "4.50", "date": "2022-11-02"},
        )
    fake.fail("hold", action=action)  # WHMCS is still working on it when the bridge gives up

    first = push(bridge)

    assert [note.result for note in first.notes] == ["postponed"]
    assert f"no answer within {READ_TIMEOUT} s" in (first.notes[0].message or "")
    assert fake.call_count(action) == 1, "not sent again in the same run"
    lookup = "GetInvoices" if action == "CreateInvoice" else "GetCredits"
    assert fake.call_count(lookup) == 0, "not even looked up in the same run"
    assert fake.release_held() == 1  # WHMCS applies it, long after the bridge's read timeout

    clock.advance(SETTLE - timedelta(seconds=1))
    early = push(bridge)
    assert [note.result for note in early.notes] == ["blocked"]
    assert "whmcs.in_doubt_settle_seconds" in (early.notes[0].message or "")
    assert fake.call_count(lookup) == 0

    clock.advance(timedelta(seconds=1))
    settled = push(bridge)

    assert [note.result for note in settled.notes] == ["looked_up"]
    assert fake.call_count(action) == 1, "WHMCS holds it once"
    assert row(bridge.engine, reference).state is OutboxState.DONE
    if action == "CreateInvoice":
        (invoice,) = whmcs_invoices_carrying(fake, reference)
        assert row(bridge.engine, reference).remote_id == str(invoice.id)
    else:
        (credit,) = fake.credits
        assert credit.amount == Decimal("4.50")


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("CreateInvoice", "invoiceid", "-7"),
        ("CreateInvoice", "invoiceid", "0"),
        ("CreateInvoice", "invoiceid", None),
        ("CreateInvoice", "invoiceid", "seven"),
        ("AddClient", "clientid", "0"),
        ("AddClient", "clientid", "-7"),
    ],
)
@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
def test_a_success_without_a_usable_id_is_a_vendor_error_and_the_row_stays_in_doubt(
    action: str,
    field: str,
    value: str | None,
    applied: bool,
    bridge: App,
    fake: FakeWhmcs,
    clock: FixedClock,
) -> None:
    if action == "CreateInvoice":
        client_id = linked_client(bridge)
        reference = issue_invoice(bridge.engine, client_id, "2022-10", ["12.34"])
    else:
        client_id = bridge.clients.add(email="ada@example.com", name="Ada Lovelace").id
        reference = "BB-CLIENT-1"
    body = {"result": "success"} | ({field: value} if value is not None else {})
    fake.fail("commit_then_reply" if applied else "reply", action=action, body=body)

    with capture_logs() as logs:
        (note,) = push(bridge).notes

    assert note.result == "postponed"
    assert f"field '{field}'" in (note.message or "")
    stored = row(bridge.engine, reference)
    assert (stored.state, stored.remote_id) == (OutboxState.IN_DOUBT, None), "never done with a made-up id"
    (refused,) = [entry for entry in logs if entry["event"] == "whmcs.reply_refused"]
    assert (refused["action"], refused["field"]) == (action, field)

    clock.advance(SETTLE)
    push(bridge)

    stored = row(bridge.engine, reference)
    assert stored.state is OutboxState.DONE
    if action == "CreateInvoice":
        (invoice,) = whmcs_invoices_carrying(fake, reference)
        assert stored.remote_id == str(invoice.id)
        assert fake.call_count("CreateInvoice") == (1 if applied else 2)
    else:
        (whmcs_client,) = fake.clients.values()
        assert stored.remote_id == str(whmcs_client.id)


def test_a_second_whmcs_client_with_the_email_is_closed_if_empty_and_never_linked(
    bridge: App, fake: FakeWhmcs, clock: FixedClock
) -> None:
    ada = bridge.clients.add(email="ada@example.com", name="Ada Lovelace")
    bob = bridge.clients.add(email="bob@example.com", name="Bob Babbage")
    emails = ("ada@example.com", "bob@example.com")
    fake.fail("commit_then_drop", action="AddClient", times=2)  # both created; the answers lost
    push(bridge)
    late_ada = add_whmcs_client(fake, "ada@example.com")  # an AddClient applied late
    late_bob = add_whmcs_client(fake, "bob@example.com")
    fake.add_product(late_bob)  # and someone gave it a product meanwhile
    clock.advance(SETTLE)

    with capture_logs() as logs:
        push(bridge)

    # The push sends both AddClients side by side, so which WHMCS id each got depends on who went first:
    # each bridge client keeps the first WHMCS client with its email, whatever its number.
    first = {email: min(i for i, c in fake.clients.items() if c.fields["email"] == email) for email in emails}
    assert bridge.clients.get(str(ada.id)).external_ids("whmcs_client") == [str(first["ada@example.com"])]
    assert bridge.clients.get(str(bob.id)).external_ids("whmcs_client") == [str(first["bob@example.com"])]
    assert fake.clients[late_ada].fields["status"] == "Closed", "empty: closed through the API"
    assert fake.clients[late_bob].fields["status"] == "Active", "in use: left for the operator"
    errors = sorted(
        (entry["reference"], entry["cancelled"], entry["left_for_operator"])
        for entry in logs
        if entry["log_level"] == "error"
    )
    assert errors == [("BB-CLIENT-1", [late_ada], []), ("BB-CLIENT-2", [], [late_bob])]
    for outcome in ("cancelled", "left"):
        value = bridge.metrics.get_sample_value(
            "billing_bridge_whmcs_duplicates_total", {"kind": "client", "outcome": outcome}
        )
        assert value == 1
