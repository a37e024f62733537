"""Reading and writing invoices, their lines, and the gap-free number sequences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, exists, func, insert, literal, or_, select, type_coerce, update
from sqlalchemy.exc import IntegrityError

from bridge.domain.cycles import Span as Covered
from bridge.domain.invoicing import InvoiceLine, display_number
from bridge.domain.references import PAID_PREFIX
from bridge.domain.tax import TaxLine
from bridge.store.tables import invoice_lines, invoice_taxes, invoices, ledger_entries, number_sequences
from bridge.store.types import UTCDateTime

StoredLine = InvoiceLine
"""A line read back is the line that was written: the one line shape of bridge/domain/invoicing.py."""


@dataclass(frozen=True)
class StoredInvoice:
    id: int
    client_id: int
    reference: str
    kind: str
    period_start: datetime | None
    period_end: datetime | None
    currency: str
    status: str
    issuer: str
    series: str | None
    number: str | None
    proforma_number: str | None
    issued_at: datetime
    due_at: datetime
    total: Decimal
    paid_at: datetime | None
    paid_amount: Decimal | None
    remote_id: str | None
    replaces_id: int | None
    created_at: datetime
    subtotal: Decimal | None = None
    """Net of tax (issue 16); None on an invoice without taxes, whose ``total`` is net."""
    tax_reason: str | None = None
    reverse_charge: str | None = None
    lines: tuple[StoredLine, ...] = ()
    taxes: tuple[TaxLine, ...] = ()
    """One line per tax rate (read with the lines)."""

    @property
    def net_total(self) -> Decimal:
        """What the invoice bills net of tax: the money the credit ledger counts (as Fleio does)."""
        return self.total if self.subtotal is None else self.subtotal

    @property
    def taxed(self) -> bool:
        """Whether taxes were worked out for this invoice (even when they came to none)."""
        return self.subtotal is not None

    @property
    def display_number(self) -> str:
        """What the client sees as the invoice's number: fiscal, else proforma, else the reference."""
        return display_number(self.number, self.proforma_number, self.reference)


def insert_invoice(connection: Connection, values: dict[str, Any], lines: Sequence[InvoiceLine]) -> int:
    """An invoice and its lines (the one line shape of bridge/domain/invoicing.py)."""
    (invoice_id,) = insert_invoices(connection, [NewRows(values, tuple(lines))])
    return invoice_id


@dataclass(frozen=True)
class NewRows:
    """One invoice to write: its columns (``invoices``' names; those left out are NULL), its lines and its
    tax lines (one per rate, in their order)."""

    values: dict[str, Any]
    lines: tuple[InvoiceLine, ...] = ()
    taxes: tuple[TaxLine, ...] = ()


_INVOICE_COLUMNS = tuple(column.name for column in invoices.columns if column.name != "id")
_LINE_FIELDS = tuple(field.name for field in fields(InvoiceLine))
_INSERT_INVOICES = insert(invoices)
_INSERT_LINES = insert(invoice_lines)
_INSERT_TAXES = insert(invoice_taxes)


def insert_invoices(connection: Connection, new: Sequence[NewRows]) -> list[int]:
    """Invoices with their lines and tax lines, in three batched inserts and one lookup of their ids
    whatever their number (month end writes a chunk of clients at once); returns the ids in the order
    given. A reference that exists already raises IntegrityError and writes nothing of the batch once the
    caller's savepoint or transaction is rolled back."""
    if not new:
        return []
    connection.execute(_INSERT_INVOICES, [_invoice_row(item.values) for item in new])
    references = [item.values["reference"] for item in new]
    ids = _ids_of(connection, references)
    lines = [
        {"invoice_id": ids[reference], **{name: getattr(line, name) for name in _LINE_FIELDS}}
        for reference, item in zip(references, new, strict=True)
        for line in item.lines
    ]
    if lines:
        connection.execute(_INSERT_LINES, lines)
    taxes = [
        {
            "invoice_id": ids[reference],
            "position": position,
            "name": line.name,
            "rate": line.rate,
            "base": line.base,
            "amount": line.amount,
        }
        for reference, item in zip(references, new, strict=True)
        for position, line in enumerate(item.taxes, start=1)
    ]
    if taxes:
        connection.execute(_INSERT_TAXES, taxes)
    return [ids[reference] for reference in references]


def _invoice_row(values: dict[str, Any]) -> dict[str, Any]:
    """Every column of an invoice row (executemany writes rows of one shape), refusing a name that is
    not a column."""
    unknown = values.keys() - set(_INVOICE_COLUMNS)
    if unknown:
        raise ValueError(f"not columns of invoices: {sorted(unknown)}")
    return {name: values.get(name) for name in _INVOICE_COLUMNS}


def _ids_of(connection: Connection, references: list[str]) -> dict[str, int]:
    query = select(invoices.c.reference, invoices.c.id).where(invoices.c.reference.in_(references))
    return {row.reference: int(row.id) for row in connection.execute(query)}


def _taxes_of(connection: Connection, invoice_id: int) -> tuple[TaxLine, ...]:
    query = (
        select(invoice_taxes)
        .where(invoice_taxes.c.invoice_id == invoice_id)
        .order_by(invoice_taxes.c.position)
    )
    return tuple(TaxLine(row.name, row.rate, row.base, row.amount) for row in connection.execute(query))


def invoices_of_client(
    connection: Connection, client_id: int, *, with_lines: bool = False
) -> list[StoredInvoice]:
    rows = connection.execute(
        select(invoices).where(invoices.c.client_id == client_id).order_by(invoices.c.id)
    ).all()
    return [_invoice(connection, row, with_lines) for row in rows]


def usage_invoices_of_clients(
    connection: Connection, client_ids: list[int]
) -> dict[int, list[StoredInvoice]]:
    """The usage invoices that stand (not cancelled) of each client, without their lines."""
    query = (
        select(invoices)
        .where(
            invoices.c.client_id.in_(client_ids), invoices.c.kind == "usage", invoices.c.status != "cancelled"
        )
        .order_by(invoices.c.id)
    )
    found: dict[int, list[StoredInvoice]] = {}
    for row in connection.execute(query):
        found.setdefault(row.client_id, []).append(_invoice(connection, row, with_lines=False))
    return found


def usage_spans_of_clients(connection: Connection, client_ids: list[int]) -> dict[int, list[Covered]]:
    """The spans each client's standing usage invoices cover, in invoice order: what
    :func:`usage_invoices_of_clients` gives a client's cycles, read without the rest of each invoice (a
    reconciliation asks for every client's, chunk by chunk)."""
    query = (
        select(invoices.c.client_id, invoices.c.period_start, invoices.c.period_end)
        .where(
            invoices.c.client_id.in_(client_ids),
            invoices.c.kind == "usage",
            invoices.c.status != "cancelled",
            invoices.c.period_start.is_not(None),
            invoices.c.period_end.is_not(None),
        )
        .order_by(invoices.c.id)
    )
    found: dict[int, list[Covered]] = {}
    for client_id, start, end in connection.execute(query):
        found.setdefault(client_id, []).append((start, end))
    return found


def paid_invoices_not_in_ledger(connection: Connection, client_ids: list[int]) -> list[StoredInvoice]:
    """Paid invoices whose payment the credit ledger has not recorded yet (``BB-PAID-<reference>``).

    Each run reads only what is new, however many invoices were paid before.
    """
    booked = select(ledger_entries.c.id).where(
        ledger_entries.c.reference == literal(PAID_PREFIX) + invoices.c.reference
    )
    query = select(invoices).where(
        invoices.c.client_id.in_(client_ids), invoices.c.status == "paid", ~exists(booked)
    )
    rows = connection.execute(query.order_by(invoices.c.id))
    return [_invoice(connection, row, with_lines=False) for row in rows]


def unpaid_invoices_of_clients(connection: Connection, client_ids: list[int]) -> list[StoredInvoice]:
    query = select(invoices).where(invoices.c.client_id.in_(client_ids), invoices.c.status == "unpaid")
    return [
        _invoice(connection, row, with_lines=False)
        for row in connection.execute(query.order_by(invoices.c.id))
    ]


def invoiced_until(connection: Connection, client_ids: list[int]) -> dict[int, datetime]:
    """Per client, the end of the last period a standing usage invoice covers (its usage is invoiced)."""
    query = (
        select(
            invoices.c.client_id, type_coerce(func.max(invoices.c.period_end), UTCDateTime()).label("until")
        )
        .where(
            invoices.c.client_id.in_(client_ids), invoices.c.kind == "usage", invoices.c.status != "cancelled"
        )
        .group_by(invoices.c.client_id)
    )
    return {row.client_id: row.until for row in connection.execute(query) if row.until is not None}


def lines_of_invoices(connection: Connection, invoice_ids: list[int]) -> list[StoredLine]:
    query = (
        select(invoice_lines)
        .where(invoice_lines.c.invoice_id.in_(invoice_ids))
        .order_by(invoice_lines.c.invoice_id, invoice_lines.c.position)
    )
    return [_line(row) for row in connection.execute(query)]


def lines_by_invoice(connection: Connection, invoice_ids: list[int]) -> dict[int, list[StoredLine]]:
    """The lines of each invoice, in their order (every id given has an entry)."""
    query = (
        select(invoice_lines)
        .where(invoice_lines.c.invoice_id.in_(invoice_ids))
        .order_by(invoice_lines.c.invoice_id, invoice_lines.c.position)
    )
    found: dict[int, list[StoredLine]] = {invoice_id: [] for invoice_id in invoice_ids}
    for row in connection.execute(query):
        found[row.invoice_id].append(_line(row))
    return found


def usage_invoice_covering(
    connection: Connection, client_id: int, start: datetime, end: datetime
) -> str | None:
    """The reference of the client's standing usage invoice that covers any instant of ``[start, end)``:
    "already invoiced" is a matter of the time covered, so a changed cycle never re-covers invoiced time."""
    return usage_invoices_covering(connection, [(client_id, start, end)])[0]


Span = tuple[int, datetime, datetime]
"""A client's id and a span of time ``[start, end)``."""


def usage_invoices_covering(connection: Connection, spans: Sequence[Span]) -> list[str | None]:
    """For each (client, start, end): :func:`usage_invoice_covering`, for a whole chunk in one query (the
    clients' standing usage invoices that reach into the spans' hull, matched here)."""
    if not spans:
        return []
    query = (
        select(invoices.c.client_id, invoices.c.reference, invoices.c.period_start, invoices.c.period_end)
        .where(
            invoices.c.client_id.in_(sorted({client_id for client_id, _, _ in spans})),
            invoices.c.kind == "usage",
            invoices.c.status != "cancelled",
            invoices.c.period_start < max(end for _, _, end in spans),
            invoices.c.period_end > min(start for _, start, _ in spans),
        )
        .order_by(invoices.c.id)
    )
    standing: dict[int, list[Any]] = {}
    for row in connection.execute(query):
        standing.setdefault(row.client_id, []).append(row)
    return [
        next(
            (
                str(row.reference)
                for row in standing.get(client_id, ())
                if row.period_start < end and row.period_end > start
            ),
            None,
        )
        for client_id, start, end in spans
    ]


def reference_exists(connection: Connection, reference: str) -> bool:
    return connection.scalar(select(invoices.c.id).where(invoices.c.reference == reference)) is not None


def invoice_by_any_number(connection: Connection, text: str) -> StoredInvoice | None:
    """An invoice by its fiscal number, proforma number or reference (the oldest if series share one)."""
    for column in (invoices.c.number, invoices.c.proforma_number, invoices.c.reference):
        row = connection.execute(select(invoices).where(column == text).order_by(invoices.c.id)).first()
        if row is not None:
            return _invoice(connection, row, with_lines=True)
    return None


def invoice_by_id(connection: Connection, invoice_id: int) -> StoredInvoice | None:
    """One invoice with its lines, by its id."""
    row = connection.execute(select(invoices).where(invoices.c.id == invoice_id)).first()
    return _invoice(connection, row, with_lines=True) if row else None


def invoices_by_any_number(connection: Connection, text: str) -> list[StoredInvoice]:
    """Every invoice whose fiscal number, proforma number or reference is ``text`` (oldest first, no
    lines): more than one when several series have the same number."""
    matches = or_(invoices.c.number == text, invoices.c.proforma_number == text, invoices.c.reference == text)
    rows = connection.execute(select(invoices).where(matches).order_by(invoices.c.id)).all()
    return [_invoice(connection, row, with_lines=False) for row in rows]


def list_invoices(
    connection: Connection, *, client_id: int | None = None, status: str | None = None, limit: int = 200
) -> list[StoredInvoice]:
    query = select(invoices)
    if client_id is not None:
        query = query.where(invoices.c.client_id == client_id)
    if status is not None:
        query = query.where(invoices.c.status == status)
    rows = connection.execute(query.order_by(invoices.c.id.desc()).limit(limit)).all()
    return [_invoice(connection, row, with_lines=False) for row in rows]


def set_status(connection: Connection, invoice_id: int, **values: Any) -> None:
    connection.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))


def _invoice(connection: Connection, row: Any, with_lines: bool) -> StoredInvoice:
    lines: tuple[StoredLine, ...] = ()
    taxes: tuple[TaxLine, ...] = ()
    if with_lines:
        taxes = _taxes_of(connection, row.id) if row.subtotal is not None else ()
        found = connection.execute(
            select(invoice_lines)
            .where(invoice_lines.c.invoice_id == row.id)
            .order_by(invoice_lines.c.position)
        )
        lines = tuple(
            StoredLine(
                **{name: value for name, value in line._mapping.items() if name not in ("id", "invoice_id")}
            )
            for line in found
        )
    return StoredInvoice(**row._mapping, lines=lines, taxes=taxes)


def _line(row: Any) -> StoredLine:
    return StoredLine(
        **{name: value for name, value in row._mapping.items() if name not in ("id", "invoice_id")}
    )


def next_number(connection: Connection, sequence: str) -> int | None:
    """The number ``sequence`` gives next, under a row lock; None before its first number is taken."""
    current = connection.execute(
        select(number_sequences.c.next_value).where(number_sequences.c.name == sequence).with_for_update()
    ).scalar()
    return None if current is None else int(current)


def set_next_number(connection: Connection, sequence: str, value: int) -> None:
    """Make ``value`` the number ``sequence`` gives next (the caller checked it only goes up)."""
    changed = connection.execute(
        update(number_sequences).where(number_sequences.c.name == sequence).values(next_value=value)
    )
    if changed.rowcount == 0:
        connection.execute(insert(number_sequences).values(name=sequence, next_value=value))


def number_taken(connection: Connection, number: str) -> bool:
    """Whether an invoice, of any series, has the fiscal number ``number``."""
    return connection.scalar(select(exists().where(invoices.c.number == number))) is True


def take_number(connection: Connection, sequence: str, first: int) -> int:
    """The next number of ``sequence`` (starting at ``first``): :func:`take_numbers` of one."""
    return take_numbers(connection, sequence, first, 1)


def take_numbers(connection: Connection, sequence: str, first: int, count: int) -> int:
    """The next ``count`` numbers of ``sequence`` (starting at ``first``), gap-free: returns the first of
    them, the others follow it. They are taken in the caller's transaction, under a row lock on MariaDB
    and PostgreSQL, so a rollback gives them back; a chunk of invoices takes its numbers in one update.

    Several workers may take a new sequence's first number at once (month end shared by daemons): the
    one whose row goes in first has it, the others wait for that row's lock and take the next."""
    current = next_number(connection, sequence)
    if current is None:
        try:
            with connection.begin_nested():
                connection.execute(insert(number_sequences).values(name=sequence, next_value=first + count))
            return first
        except IntegrityError:
            current = next_number(connection, sequence)
            assert current is not None, "the row the insert collided with is committed"
    connection.execute(
        update(number_sequences).where(number_sequences.c.name == sequence).values(next_value=current + count)
    )
    return int(current)


def next_numbers(connection: Connection) -> dict[str, int]:
    """Every number sequence's next value, by sequence name."""
    rows = connection.execute(select(number_sequences.c.name, number_sequences.c.next_value))
    return {row.name: int(row.next_value) for row in rows}


def carry_numbers(connection: Connection, next_values: dict[str, int]) -> None:
    """Move number sequences forward to ``next_values`` (never back), in the caller's transaction: a dry
    run, rolled back chunk by chunk, continues each chunk where the previous one left off."""
    current = next_numbers(connection)
    for name, value in next_values.items():
        if current.get(name, 0) < value:
            set_next_number(connection, name, value)
