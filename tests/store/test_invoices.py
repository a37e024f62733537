"""Invoices on every database: lines kept exactly, gap-free numbers under a lock, derived queries in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.domain.tax import TaxLine
from bridge.store import credit
from bridge.store import invoices as store
from bridge.store.database import DatabaseTimeout
from bridge.store.unit_of_work import Conflict, UnitOfWork
from tests.support.store import NOW, OCTOBER, invoice_values, line, line_values, new_client, new_invoice


def test_an_invoice_reads_back_with_its_lines_in_order_money_exact_and_times_aware(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        invoice_id = new_invoice(tx, client_id, "BB-1-2022-10", lines=3, total=Decimal("1234567890.12345678"))
    with uow.reading() as tx:
        (invoice,) = store.invoices_of_client(tx, client_id, with_lines=True)
        lines = store.lines_of_invoices(tx, [invoice_id])
    assert invoice.id == invoice_id and invoice.total == Decimal("1234567890.12345678")
    assert (invoice.period_start, invoice.period_end) == OCTOBER
    assert invoice.due_at.tzinfo == UTC
    assert [line.position for line in invoice.lines] == [1, 2, 3]
    assert invoice.lines[0] == store.StoredLine(**line_values(1))
    assert list(invoice.lines) == lines
    assert (invoice.lines[0].capped, invoice.lines[0].late) == (True, False)


def test_numbers_are_gap_free_a_rolled_back_number_is_given_again(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        taken = [store.take_number(tx, "2022", 100), store.take_number(tx, "2022", 100)]
        taken.append(store.take_number(tx, "2023", 1))
    with uow.writing(dry_run=True) as tx:
        taken.append(store.take_number(tx, "2022", 100))
    with uow.writing() as tx:
        taken.append(store.take_number(tx, "2022", 100))
    assert taken == [100, 101, 1, 102, 102]


def test_a_number_being_taken_is_locked_until_its_transaction_ends(
    uow: UnitOfWork, impatient: UnitOfWork
) -> None:
    """Two invoicing runs never get the same number: the second waits (here: gives up after a second)."""
    with uow.writing() as tx:
        store.take_number(tx, "2022", 1)
    with uow.writing() as holder:
        assert store.take_number(holder, "2022", 1) == 2
        with pytest.raises(DatabaseTimeout), impatient.writing() as other:
            store.take_number(other, "2022", 1)
    with impatient.writing() as tx:
        assert store.take_number(tx, "2022", 1) == 3


def test_invoiced_until_is_the_last_standing_usage_period_end_per_client(uow: UnitOfWork) -> None:
    nov = (datetime(2022, 11, 1, tzinfo=UTC), datetime(2022, 12, 1, tzinfo=UTC))
    with uow.writing() as tx:
        acme, beta, idle = new_client(tx, "a@x.org"), new_client(tx, "b@x.org"), new_client(tx, "c@x.org")
        new_invoice(tx, acme, "BB-1-2022-10")
        new_invoice(tx, acme, "BB-1-2022-11", period_start=nov[0], period_end=nov[1], status="cancelled")
        new_invoice(tx, beta, "BB-2-2022-10")
        new_invoice(tx, beta, "BB-2-2022-11", period_start=nov[0], period_end=nov[1])
        new_invoice(tx, beta, "BB-2-FEE-1", kind="fee", period_end=datetime(2023, 1, 1, tzinfo=UTC))
    with uow.reading() as tx:
        until = store.invoiced_until(tx, [acme, beta, idle])
        standing = store.usage_invoices_of_clients(tx, [acme, beta])
        spans = store.usage_spans_of_clients(tx, [acme, beta, idle])
    assert until == {acme: OCTOBER[1], beta: nov[1]}
    assert all(value.tzinfo is not None for value in until.values())
    assert {client: [i.reference for i in found] for client, found in standing.items()} == {
        acme: ["BB-1-2022-10"],
        beta: ["BB-2-2022-10", "BB-2-2022-11"],
    }
    assert spans == {acme: [OCTOBER], beta: [OCTOBER, nov]}  # what a reconciliation draws cycles from
    assert all(instant.tzinfo is UTC for found in spans.values() for span in found for instant in span)


def test_already_invoiced_is_any_overlap_with_a_standing_usage_invoices_period(uow: UnitOfWork) -> None:
    """A cycle of another schedule (10-15 to 11-15 against October) is already invoiced in part."""
    mid = (datetime(2022, 10, 15, tzinfo=UTC), datetime(2022, 11, 15, tzinfo=UTC))
    nov = (datetime(2022, 11, 1, tzinfo=UTC), datetime(2022, 12, 1, tzinfo=UTC))
    with uow.writing() as tx:
        acme, beta = new_client(tx, "a@x.org"), new_client(tx, "b@x.org")
        new_invoice(tx, acme, "BB-1-2022-10")
        new_invoice(tx, acme, "BB-1-2022-11", period_start=nov[0], period_end=nov[1], status="cancelled")
    with uow.reading() as tx:
        assert store.usage_invoice_covering(tx, acme, *mid) == "BB-1-2022-10"
        assert store.usage_invoice_covering(tx, acme, OCTOBER[1], mid[1]) is None  # cancelled: not covered
        assert store.usage_invoice_covering(tx, acme, *nov) is None
        assert store.usage_invoice_covering(tx, beta, *mid) is None
        spans = [(acme, *mid), (acme, *nov), (beta, *mid), (acme, *OCTOBER)]
        assert store.usage_invoices_covering(tx, spans) == ["BB-1-2022-10", None, None, "BB-1-2022-10"]


def test_a_batch_of_invoices_is_written_whole_with_its_lines_and_tax_lines_or_not_at_all(
    uow: UnitOfWork,
) -> None:
    vat = TaxLine("VAT", Decimal("19"), Decimal("31.08"), Decimal("5.91"))
    taxed = {"subtotal": Decimal("31.08"), "total": Decimal("36.99")}
    with uow.writing() as tx:
        client_id = new_client(tx)
        batch = [
            store.NewRows(invoice_values(client_id, "BB-1-2022-10", **taxed), (line(1), line(2)), (vat,)),
            store.NewRows(invoice_values(client_id, "BB-1-2022-09")),
        ]
        ids = store.insert_invoices(tx, batch)
    with uow.reading() as tx:
        october, september = (store.invoice_by_id(tx, invoice_id) for invoice_id in ids)
    assert october is not None and september is not None
    assert [item.position for item in october.lines] == [1, 2] and october.taxes == (vat,)
    assert (september.reference, september.lines, september.taxes) == ("BB-1-2022-09", (), ())
    with pytest.raises(Conflict), uow.writing() as tx:
        store.insert_invoices(tx, [store.NewRows(invoice_values(client_id, "BB-1-2022-08")), batch[0]])
    with uow.writing() as tx:
        assert len(store.invoices_of_client(tx, client_id)) == 2  # the batch's new invoice went too
        with pytest.raises(ValueError, match="totl"):
            store.insert_invoices(tx, [store.NewRows({**invoice_values(client_id, "BB-x"), "totl": 1})])


def test_a_chunk_takes_its_numbers_at_once_gap_free_after_the_ones_taken_before(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        taken = [store.take_numbers(tx, "2022", 100, 3), store.take_number(tx, "2022", 100)]
        taken.append(store.take_numbers(tx, "2022", 100, 500))
        taken.append(store.take_number(tx, "2022", 100))
    assert taken == [100, 103, 104, 604]


def test_a_paid_invoice_waits_for_the_ledger_until_its_payment_is_booked(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        new_invoice(tx, client_id, "BB-1-2022-09", status="paid")
        new_invoice(tx, client_id, "BB-1-2022-10", status="paid")
        new_invoice(tx, client_id, "BB-1-2022-11", status="unpaid")
        credit.add_entry(
            tx,
            client_id=client_id,
            kind="payment",
            amount=Decimal("31.08"),
            currency="EUR",
            reference="BB-PAID-BB-1-2022-09",
            description="paid",
            occurred_at=NOW,
            now=NOW,
        )
    with uow.reading() as tx:
        waiting = store.paid_invoices_not_in_ledger(tx, [client_id])
        unpaid = store.unpaid_invoices_of_clients(tx, [client_id])
    assert [invoice.reference for invoice in waiting] == ["BB-1-2022-10"]
    assert [invoice.reference for invoice in unpaid] == ["BB-1-2022-11"]


def test_an_invoice_is_found_by_number_then_proforma_number_then_reference(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        fiscal = new_invoice(tx, client_id, "BB-1-2022-10", series="A", number="A-7", lines=1)
        proforma = new_invoice(tx, client_id, "BB-1-2022-11", series="A", proforma_number="P-7")
        store.set_status(tx, proforma, status="paid", paid_at=NOW, paid_amount=Decimal("31.08"))
    with uow.reading() as tx:
        found = {text: store.invoice_by_any_number(tx, text) for text in ("A-7", "P-7", "BB-1-2022-11", "Z")}
        listed = store.list_invoices(tx, status="paid")
        exists = (store.reference_exists(tx, "BB-1-2022-10"), store.reference_exists(tx, "BB-9"))
    assert found["A-7"] is not None and (found["A-7"].id, len(found["A-7"].lines)) == (fiscal, 1)
    assert found["P-7"] is not None and found["P-7"].display_number == "P-7"
    assert found["BB-1-2022-11"] is not None and found["BB-1-2022-11"].id == proforma
    assert found["Z"] is None
    assert [(i.id, i.paid_at, i.paid_amount) for i in listed] == [(proforma, NOW, Decimal("31.08"))]
    assert exists == (True, False)


def test_list_invoices_is_newest_first_and_bounded(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        acme, beta = new_client(tx, "a@x.org"), new_client(tx, "b@x.org")
        ids = [new_invoice(tx, acme, f"BB-1-{n}", due_at=NOW + timedelta(days=n)) for n in range(3)]
        new_invoice(tx, beta, "BB-2-0")
    with uow.reading() as tx:
        assert [i.id for i in store.list_invoices(tx, client_id=acme, limit=2)] == [ids[2], ids[1]]
        assert len(store.list_invoices(tx)) == 4
