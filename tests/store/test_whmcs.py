"""What the bridge keeps of WHMCS on every database: links as integers, remote ids, payments recorded only
on open invoices, and an agreement whose change time moves only when the flag flips."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bridge.store import whmcs as store
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW, new_client, new_invoice


def test_a_client_is_linked_to_one_whmcs_client_and_found_both_ways(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        acme, beta = new_client(tx, "ops@acme.com", currency="USD"), new_client(tx, "bills@beta.org")
        store.link_whmcs_client(tx, acme, 1042, NOW)
    with uow.reading() as tx:
        identity = store.client_identity(tx, acme)
        found = (store.whmcs_client_id(tx, acme), store.whmcs_client_id(tx, beta))
        owners = (store.whmcs_link_owner(tx, 1042), store.whmcs_link_owner(tx, 42))
        linked = store.linked_clients(tx)
        missing = store.client_identity(tx, 99)
    assert identity == store.ClientIdentity(acme, "ops@acme.com", "ops", "USD")
    assert (found, owners, linked, missing) == ((1042, None), (acme, None), [(acme, 1042)], None)


def test_pushed_invoices_are_open_until_paid_and_a_closed_one_is_never_marked_paid(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        first = new_invoice(tx, client_id, "BB-1-2022-09", total=Decimal("0.00000001"))
        cancelled = new_invoice(tx, client_id, "BB-1-2022-10", status="cancelled")
        new_invoice(tx, client_id, "BB-1-2022-11")  # not pushed yet
        for reference, remote_id in [("BB-1-2022-09", 501), ("BB-1-2022-10", 502)]:
            store.set_invoice_remote_id(tx, reference, remote_id)
    with uow.reading() as tx:
        open_ones = store.open_pushed_invoices(tx)
        remote_ids = [store.invoice_remote_id(tx, f"BB-1-2022-{month}") for month in ("09", "11", "12")]
    assert open_ones == [
        store.PushedInvoice(first, client_id, "BB-1-2022-09", 501, Decimal("0.00000001"), "unpaid")
    ]
    assert remote_ids == [501, None, None]
    with uow.writing() as tx:
        marked = [
            store.mark_invoice_paid(tx, first, NOW, Decimal("0.00000001")),
            store.mark_invoice_paid(tx, first, NOW + timedelta(days=1), Decimal(5)),
            store.mark_invoice_paid(tx, cancelled, NOW, Decimal(5)),
        ]
        left = store.open_pushed_invoices(tx)
    assert (marked, left) == ([True, False, False], [])


def test_an_agreement_changes_only_when_its_flag_flips_even_when_read_twice_at_one_moment(
    uow: UnitOfWork,
) -> None:
    """Reading the same answer twice at the same moment changes no value: MariaDB then counts no changed
    row, which must still read as "seen", never as "new" (a second insert would break the key)."""
    later = NOW + timedelta(hours=1)
    with uow.writing() as tx:
        client_id = new_client(tx)
        changed = [
            store.record_agreement(tx, client_id, True, NOW),
            store.record_agreement(tx, client_id, True, NOW),
            store.record_agreement(tx, client_id, True, later),
        ]
        kept = store.agreement(tx, client_id)
        changed.append(store.record_agreement(tx, client_id, False, later + timedelta(hours=1)))
        flipped = store.agreement(tx, client_id)
        none = store.agreement(tx, 99)
    assert changed == [True, False, False, True]
    assert kept == store.Agreement(client_id, True, NOW, later)
    assert flipped == store.Agreement(
        client_id, False, later + timedelta(hours=1), later + timedelta(hours=1)
    )
    assert none is None


def test_agreements_of_clients_are_read_together_and_an_unread_client_is_absent(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        yes, no, unread = new_client(tx), new_client(tx, "bills@beta.org"), new_client(tx, "c@c.org")
        store.record_agreement(tx, yes, True, NOW)
        store.record_agreement(tx, no, False, NOW)
    with uow.reading() as tx:
        found = store.agreements_of(tx, [yes, no, unread])
        none = store.agreements_of(tx, [])
    assert (found, none) == ({yes: True, no: False}, {})
