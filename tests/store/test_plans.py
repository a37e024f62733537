"""Terms, billing periods, subscriptions and charges on every database: dates stay dates, money exact,
the standing invoice and its late lines found by booleans each database stores its own way.

(The domain values are reached through ``bridge.store.plans``, which reads and writes them.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.store import invoices, outbox
from bridge.store import plans as store
from bridge.store.database import DatabaseTimeout
from bridge.store.unit_of_work import Tx, UnitOfWork
from tests.support.store import NOW, OCTOBER, invoice_values, line, new_client, new_invoice

MONTHLY_ON_THE_6TH = store.period_of("monthly", 6, None)


def new_period(tx: Tx, client_id: int, started_on: date = date(2022, 10, 6), periods: int | None = 12) -> int:
    span = store.PeriodSpan(MONTHLY_ON_THE_6TH, started_on, started_on.replace(month=started_on.month + 1))
    return store.insert_period(tx, client_id, span, periods, NOW)


def new_subscription(tx: Tx, client_id: int, period_id: int, amount: str = "9.99999999") -> int:
    return store.insert_subscription(
        tx,
        {
            "client_id": client_id,
            "period_id": period_id,
            "name": "backup",
            "frequency": "monthly",
            "amount": Decimal(amount),
            "prorate": True,
            "started_at": NOW,
            "created_at": NOW,
        },
    )


def test_terms_read_back_per_client_with_the_order_they_were_given_in(uow: UnitOfWork) -> None:
    later = datetime(2022, 10, 15, 12, tzinfo=UTC)
    discount = store.Discount("fixed", Decimal("2.50000001"), OCTOBER[0], OCTOBER[1], "openstack", "m1.small")
    with uow.writing() as tx:
        acme, beta = new_client(tx, "a@x.org"), new_client(tx, "b@x.org")
        store.insert_assignment(tx, acme, store.PlanAssignment("gold", later), NOW)
        store.insert_assignment(tx, acme, store.PlanAssignment("silver", OCTOBER[0]), NOW)
        store.insert_assignment(tx, acme, store.PlanAssignment("bronze", OCTOBER[0]), NOW)  # wins the tie
        store.insert_discount(tx, acme, discount, NOW)
    with uow.reading() as tx:
        terms = store.terms_of_clients(tx, [acme, beta])
        none = store.terms_of_client(tx, beta)
    assert list(terms) == [acme]
    assignments = terms[acme].assignments
    assert [(a.plan, a.starts_at) for a in assignments] == [
        ("silver", OCTOBER[0]),
        ("bronze", OCTOBER[0]),
        ("gold", later),
    ]
    assert assignments[0].order < assignments[1].order, "of equal starts, the one given later comes later"
    (stored,) = terms[acme].discounts
    assert (
        stored.kind,
        stored.value,
        stored.starts_at,
        stored.ends_at,
        stored.source,
        stored.resource_kind,
    ) == (
        "fixed",
        Decimal("2.50000001"),
        OCTOBER[0],
        OCTOBER[1],
        "openstack",
        "m1.small",
    )
    assert none == store.ClientTerms()


def test_a_period_keeps_its_dates_and_is_due_on_its_recharge_day_until_it_ends(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        due = new_period(tx, client_id)
        later = new_period(tx, client_id, date(2022, 10, 20), periods=None)
        ended = new_period(tx, client_id)
        store.save_span(
            tx,
            ended,
            store.PeriodSpan(MONTHLY_ON_THE_6TH, date(2022, 10, 6), date(2022, 11, 6)),
            ended_on=date(2022, 11, 1),
        )
    with uow.reading() as tx:
        on_the_6th = [period.id for period in store.due_periods(tx, date(2022, 11, 6))]
        on_the_5th = store.due_periods(tx, date(2022, 11, 5))
        stored = store.period(tx, due)
        all_of_them = store.periods_of_client(tx, client_id)
    assert (on_the_6th, on_the_5th) == ([due], [])
    assert stored is not None
    assert (stored.span.started_on, stored.span.next_recharge_on, stored.periods, stored.charged) == (
        date(2022, 10, 6),
        date(2022, 11, 6),
        12,
        0,
    )
    assert type(stored.span.started_on) is date and stored.frequency == "monthly"
    assert [period.id for period in all_of_them] == [due, later, ended]
    assert all_of_them[2].ended_on == date(2022, 11, 1)


def test_a_period_read_for_update_is_locked_until_its_transaction_ends(
    uow: UnitOfWork, impatient: UnitOfWork
) -> None:
    with uow.writing() as tx:
        period_id = new_period(tx, new_client(tx))
    with uow.writing() as holder:
        assert store.period(holder, period_id, for_update=True) is not None
        with pytest.raises(DatabaseTimeout), impatient.writing() as other:
            store.period(other, period_id, for_update=True)
            store.save_span(
                other, period_id, store.PeriodSpan(MONTHLY_ON_THE_6TH, date(2022, 11, 6), date(2022, 12, 6))
            )
    with impatient.writing() as tx:
        assert store.period(tx, period_id, for_update=True) is not None


def test_a_client_being_changed_is_locked_until_its_transaction_ends(
    uow: UnitOfWork, impatient: UnitOfWork
) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
    with uow.writing() as holder:
        store.lock_client(holder, client_id)
        with pytest.raises(DatabaseTimeout), impatient.writing() as other:
            store.lock_client(other, client_id)
            store.insert_assignment(other, client_id, store.PlanAssignment("gold", OCTOBER[0]), NOW)
    with uow.reading() as tx:
        assert store.terms_of_client(tx, client_id) == store.ClientTerms()


def test_subscriptions_and_their_unbilled_charges_move_and_are_billed_once(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        first, second = new_period(tx, client_id), new_period(tx, client_id)
        subscription_id = new_subscription(tx, client_id, first)
        charges = [
            store.insert_charge(
                tx,
                {
                    "subscription_id": subscription_id,
                    "description": f"backup {n}",
                    "amount": Decimal("3.33333333"),
                    "prorate": n == 0,
                    "added_on": date(2022, 10, 15 + n),
                    "span_start": date(2022, 10, 6),
                    "bill_until": date(2022, 11, 6),
                    "created_at": NOW,
                },
            )
            for n in range(2)
        ]
        invoice_id = new_invoice(tx, client_id, "BB-1-FEE-1", kind="fee")
        store.mark_charges_billed(tx, charges[:1], invoice_id)
        store.move_subscription(tx, subscription_id, second)
        store.set_billed_until(tx, [subscription_id], date(2022, 11, 6))
        store.set_billed_until(tx, [], date(2099, 1, 1))
    with uow.reading() as tx:
        moved = store.subscription(tx, subscription_id)
        unbilled = store.unbilled_charges(tx, [subscription_id])
        counts = (store.count_subscriptions(tx, first), store.count_subscriptions(tx, second))
        of_periods = store.subscriptions_of_periods(tx, [second])
    assert moved is not None
    assert (moved.period_id, moved.amount, moved.prorate, moved.billed_until) == (
        second,
        Decimal("9.99999999"),
        True,
        date(2022, 11, 6),
    )
    assert [(charge.id, charge.prorate, charge.invoice_id, charge.added_on) for charge in unbilled] == [
        (charges[1], False, None, date(2022, 10, 16))
    ]
    assert counts == (0, 1) and of_periods == [moved]
    with uow.writing() as tx:
        store.delete_period(tx, first)
        assert store.period(tx, first) is None


def test_the_standing_invoice_of_a_period_is_the_newest_not_cancelled_and_late_lines_are_found(
    uow: UnitOfWork,
) -> None:
    nov = datetime(2022, 11, 1, tzinfo=UTC)
    with uow.writing() as tx:
        client_id = new_client(tx)
        new_invoice(tx, client_id, "BB-1-2022-10", status="cancelled")
        standing = new_invoice(tx, client_id, "BB-1-2022-10-R1", lines=2)
        november = invoice_values(
            client_id, "BB-1-2022-11", period_start=nov, period_end=nov + timedelta(days=30)
        )
        invoices.insert_invoice(tx, november, [line(1, late=True)])  # October's usage, late
        on_time = invoice_values(client_id, "BB-1-2022-12", period_start=nov + timedelta(days=30))
        invoices.insert_invoice(tx, on_time, [line(1)])
    with uow.reading() as tx:
        found = store.standing_usage_invoice(tx, client_id, OCTOBER[0])
        elsewhere = store.late_lines_elsewhere(tx, client_id, OCTOBER[0], standing)
        none = store.standing_usage_invoice(tx, client_id, datetime(2022, 9, 1, tzinfo=UTC))
        prefixed = sorted(store.references_starting(tx, "BB-1-2022-10"))
    assert found is not None and (found.id, len(found.lines)) == (standing, 2)
    assert elsewhere == ["BB-1-2022-11"]
    assert none is None
    assert prefixed == ["BB-1-2022-10", "BB-1-2022-10-R1"]


def test_an_unsent_push_is_withdrawn_once_and_a_sent_one_never(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        for reference in ("BB-1-2022-10", "BB-1-2022-11"):
            outbox.enqueue(
                tx,
                client_id=client_id,
                kind=outbox.EffectKind.CREATE_INVOICE,
                reference=reference,
                payload={},
                now=NOW,
            )
        outbox.mark_done(tx, 2, "55", NOW)
        withdrawn = [
            store.withdraw_unsent_push(tx, "BB-1-2022-10", NOW),
            store.withdraw_unsent_push(tx, "BB-1-2022-10", NOW),
            store.withdraw_unsent_push(tx, "BB-1-2022-11", NOW),
        ]
    assert withdrawn == [True, False, False]
