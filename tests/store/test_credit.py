"""The credit ledger on every database: a movement once per reference, balances exact to the last place."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bridge.store import credit as store
from bridge.store.unit_of_work import Tx, UnitOfWork
from tests.support.store import NOW, new_client


def add(tx: Tx, client_id: int, amount: str, reference: str, at_hours: int = 0) -> bool:
    return store.add_entry(
        tx,
        client_id=client_id,
        kind="payment",
        amount=Decimal(amount),
        currency="EUR",
        reference=reference,
        description=f"payment {reference}",
        occurred_at=NOW + timedelta(hours=at_hours),
        now=NOW,
    )


def test_a_movement_is_recorded_once_per_reference_and_the_transaction_goes_on(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        outcomes = [add(tx, client_id, "10", "bank-1"), add(tx, client_id, "10", "bank-1")]
        outcomes.append(add(tx, client_id, "5", "bank-2"))
    with uow.writing() as tx:
        outcomes.append(add(tx, client_id, "10", "bank-1"))
    with uow.reading() as tx:
        rows = store.entries(tx, client_id)
    assert outcomes == [True, False, True, False]
    assert sorted(row.reference for row in rows) == ["bank-1", "bank-2"]


def test_balances_are_exact_sums_of_eight_place_amounts(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        rich, poor, idle = new_client(tx, "a@x.org"), new_client(tx, "b@x.org"), new_client(tx, "c@x.org")
        for n in range(10):
            add(tx, rich, "0.1", f"dime-{n}")
        add(tx, rich, "123456789012.12345678", "big")
        add(tx, poor, "-0.00000001", "fee")
    with uow.reading() as tx:
        totals = store.balances(tx, [rich, poor, idle])
    assert totals == {rich: Decimal("123456789013.12345678"), poor: Decimal("-0.00000001"), idle: Decimal(0)}
    assert all(isinstance(total, Decimal) for total in totals.values())


def test_entries_come_newest_first_with_their_values_as_written(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        add(tx, client_id, "1.50", "early", at_hours=-2)
        add(tx, client_id, "2.25", "late", at_hours=3)
        add(tx, client_id, "3", "between", at_hours=1)
    with uow.reading() as tx:
        rows = store.entries(tx, client_id)
        last_two = store.entries(tx, client_id, limit=2)
    assert [(row.reference, row.amount) for row in rows] == [
        ("late", Decimal("2.25")),
        ("between", Decimal(3)),
        ("early", Decimal("1.5")),
    ]
    assert rows[0].occurred_at == NOW + timedelta(hours=3) and rows[0].occurred_at.utcoffset() is not None
    assert [row.reference for row in last_two] == ["late", "between"]


def test_a_credit_state_is_inserted_then_updated_and_defaults_when_absent(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id, other = new_client(tx, "a@x.org"), new_client(tx, "b@x.org")
        store.save_state(tx, client_id, NOW, under_limit_since=NOW, notifications_sent="50,75")
        store.save_state(
            tx, client_id, NOW + timedelta(hours=1), shelved=True, auto_invoice_amount=Decimal("70.00000001")
        )
    with uow.reading() as tx:
        states = store.states(tx, [client_id, other])
    saved = states[client_id]
    assert (saved.under_limit_since, saved.shelved, saved.auto_invoice_amount) == (
        NOW,
        True,
        Decimal("70.00000001"),
    )
    assert saved.thresholds_sent == frozenset({50, 75})
    assert saved.updated_at == NOW + timedelta(hours=1)
    assert states[other] == store.CreditStateRow(other)


def test_a_notification_is_remembered_once_per_reference(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        sent = [
            store.record_notification(
                tx,
                client_id=client_id,
                reference="BB-NOTE-1-50",
                kind="threshold",
                subject="50 % of your credit is used",
                body=body,
                channel="email",
                now=NOW,
            )
            for body in ("first", "again")
        ]
    assert sent == [True, False]


def test_a_batch_of_notifications_is_recorded_once_per_reference(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        rows = [
            store.NotificationRow(client_id, reference, "invoice_issued", "s", "b", "mail")
            for reference in ("BB-N-1", "BB-N-2", "BB-N-2", "BB-N-3")
        ]
        assert store.record_notifications(tx, rows[:1], now=NOW) == {"BB-N-1"}
        assert store.record_notifications(tx, rows, now=NOW) == {"BB-N-2", "BB-N-3"}
        assert store.record_notifications(tx, rows, now=NOW) == set()
