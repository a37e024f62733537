"""Storing an invoice: its number, its lines and its outbox row, written in one place.

Every invoice the bridge makes is stored here, whatever made it: a usage run (bridge/services/invoicing.py),
a credit auto-invoice (``InvoicingService.issue_credit_invoice``), a recharge of a billing period
(bridge/services/periods.py) and a replacement after new terms (bridge/services/plans.py). They decide
*what* is invoiced (the domain's rules); this module decides how an invoice is written, once:

- An invoice is stored ``unpaid`` (:data:`~bridge.domain.invoicing.NEW_STATUS`), dated ``issued_at`` and
  due :func:`~bridge.domain.invoicing.due_at` later.
- Issued by the bridge (``issuer`` ``bridge``), it is numbered in the caller's transaction by its
  configuration's invoicing option (a rollback gives the number back: fiscal numbering has no gaps) and
  belongs to the configuration's series. Issued by WHMCS, the same transaction writes the create_invoice
  outbox row that pushes it (bridge/sync/push.py), dated and due on the local days of those instants.
- Taxes (issue 16), when ``[taxes]`` is on (the configuration's ``taxes``): an invoice the bridge issues
  gets its tax lines here (:func:`~bridge.domain.tax.tax_lines`: one per rate, rounded once), its net
  ``subtotal``, why it is taxed so, the reverse-charge note of an exempt EU business, and ``total`` =
  subtotal + tax. An invoice WHMCS issues keeps its net amounts and each item's ``taxed`` flag says
  whether WHMCS adds its own configured tax (:func:`~bridge.domain.tax.is_taxed`). Credit invoices
  (``auto``, ``credit``) follow "tax on add-credit invoices"; everything else follows the rules.
- An invoice the bridge issues is mailed to the client with its PDF, when its configuration says
  ``notify_on_unpaid_invoices`` (seed 001: "send notifications to clients when an invoice is issued and is
  unpaid"): an outbox row in the same transaction (bridge/services/notifications.py).
- A proforma becomes fiscal when it is paid, with the next number of the same fiscal sequence, whatever
  paid it (``invoice pay``, credit): :func:`record_payment` is every payment path's write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bridge.domain import references
from bridge.domain.clients import Client
from bridge.domain.configuration import Configuration, InvoicingOption
from bridge.domain.effects import AddPayment, CreateInvoice, InvoiceItem
from bridge.domain.invoicing import BRIDGE, NEW_STATUS, WHMCS, InvoiceLine, due_at
from bridge.domain.notifications import InvoiceIssued
from bridge.domain.numbers import random_proforma_number, render_number
from bridge.domain.tax import Charge, InvoicePurpose, InvoiceTaxes, is_taxed, tax_lines
from bridge.errors import InputError
from bridge.services.notifications import ClientNotifier, Notification
from bridge.store import invoices as store
from bridge.store.outbox import Intent, enqueue_effect, enqueue_effects
from bridge.store.unit_of_work import Tx


@dataclass(frozen=True)
class NewInvoice:
    """An invoice to store: whose, under which reference, of which ``kind`` (``usage``, ``auto``,
    ``recurring``) and ``period`` (None: not of a period), issued by whom and when, its stored ``lines``
    and ``total``, and the ``items`` and ``notes`` WHMCS shows when WHMCS issues it."""

    client: Client
    reference: str
    kind: str
    period: tuple[datetime, datetime] | None
    issuer: str
    issued_at: datetime
    lines: tuple[InvoiceLine, ...]
    total: Decimal
    items: tuple[InvoiceItem, ...]
    notes: str
    replaces_id: int | None = None


@dataclass(frozen=True)
class Issued:
    """An invoice just stored: its id and the bridge's numbers (both None when WHMCS numbers it)."""

    id: int
    number: str | None
    proforma_number: str | None
    taxes: InvoiceTaxes | None = None
    """The taxes the bridge put on it (None: taxes off, or WHMCS issues it)."""

    @property
    def shown_number(self) -> str | None:
        """The number the client sees: fiscal, else proforma; None when WHMCS numbers it."""
        return self.number or self.proforma_number


def issue(
    tx: Tx,
    invoice: NewInvoice,
    config: Configuration,
    zone: ZoneInfo,
    *,
    now: datetime,
    before_push: Callable[[], None] = lambda: None,
    notifier: ClientNotifier | None = None,
) -> Issued:
    """Store ``invoice`` in the caller's transaction (see the module docstring); ``now`` is when it is
    written, ``zone`` the billing time zone (numbers and WHMCS dates are local). ``before_push`` runs just
    before the outbox row is written (a replaced invoice's cancellation goes first); ``notifier`` mails
    the client an invoice the bridge issued. Raises the store's Conflict when the reference exists
    already."""
    (issued,) = issue_many(tx, [(invoice, config)], zone, now=now, before_push=before_push, notifier=notifier)
    return issued


def issue_many(
    tx: Tx,
    invoices: Sequence[tuple[NewInvoice, Configuration]],
    zone: ZoneInfo,
    *,
    now: datetime,
    before_push: Callable[[], None] = lambda: None,
    notifier: ClientNotifier | None = None,
) -> list[Issued]:
    """:func:`issue` for many invoices (each with its configuration) in a few statements whatever their
    number: month end stores a chunk of clients at once. Numbers are taken per series in one update, in
    the order given (gap-free, as one by one); rows, lines, tax lines, mails and outbox rows are written
    in batches. Raises the store's Conflict, with nothing of the batch kept once the caller's savepoint
    rolls back, when a reference exists already."""
    dues = [due_at(config, invoice.issued_at) for invoice, config in invoices]
    taxes = [_taxes(invoice, config) if invoice.issuer == BRIDGE else None for invoice, config in invoices]
    numbers = _numbers(tx, invoices, zone)
    ids = store.insert_invoices(
        tx,
        [
            _rows(invoice, due, taxed, number, now)
            for (invoice, _), due, taxed, number in zip(invoices, dues, taxes, numbers, strict=True)
        ],
    )
    issued = [
        Issued(invoice_id, number, proforma, taxed)
        for invoice_id, (number, proforma), taxed in zip(ids, numbers, taxes, strict=True)
    ]
    if notifier is not None:
        mails = [
            _invoice_mail(invoice, done, due)
            for (invoice, config), done, due in zip(invoices, issued, dues, strict=True)
            if invoice.issuer == BRIDGE and config.notify_on_unpaid_invoices
        ]
        if mails:
            notifier.notify_many(tx, mails, now)
    pushes = [
        Intent(invoice.client.id, invoice.reference, _create_invoice(invoice, config, due, zone))
        for (invoice, config), due in zip(invoices, dues, strict=True)
        if invoice.issuer != BRIDGE
    ]
    if pushes:
        before_push()
        enqueue_effects(tx, pushes, now=now)
    return issued


def _rows(
    invoice: NewInvoice,
    due: datetime,
    taxes: InvoiceTaxes | None,
    numbers: tuple[str | None, str | None],
    now: datetime,
) -> store.NewRows:
    """The invoice as the store writes it: unpaid, numbered (by the bridge) and taxed as worked out."""
    client = invoice.client
    number, proforma = numbers
    values = {
        "client_id": client.id,
        "reference": invoice.reference,
        "kind": invoice.kind,
        "period_start": invoice.period[0] if invoice.period else None,
        "period_end": invoice.period[1] if invoice.period else None,
        "currency": client.currency,
        "status": NEW_STATUS,
        "issuer": invoice.issuer,
        "series": client.configuration if invoice.issuer == BRIDGE else None,
        "number": number,
        "proforma_number": proforma,
        "issued_at": invoice.issued_at,
        "due_at": due,
        "total": invoice.total if taxes is None else taxes.total,
        "replaces_id": invoice.replaces_id,
        "created_at": now,
        **_tax_columns(taxes),
    }
    return store.NewRows(values, invoice.lines, () if taxes is None else taxes.lines)


def _create_invoice(
    invoice: NewInvoice, config: Configuration, due: datetime, zone: ZoneInfo
) -> CreateInvoice:
    """The create_invoice intent that pushes an invoice WHMCS issues, dated and due on local days."""
    return CreateInvoice(
        invoice.reference,
        invoice.issued_at.astimezone(zone).date(),
        due.astimezone(zone).date(),
        _taxed_items(invoice, config),
        invoice.notes,
    )


CREDIT_KINDS = frozenset({"auto", "credit"})
"""Invoices that add credit (a credit auto-invoice, seed 000; an add-credit invoice): they follow
"tax on add-credit invoices" (seed 001) instead of the rules for usage and fees."""


def purpose_of(kind: str) -> InvoicePurpose:
    """Which tax option an invoice of ``kind`` follows."""
    return InvoicePurpose.ADD_CREDIT if kind in CREDIT_KINDS else InvoicePurpose.USAGE


def _taxes(invoice: NewInvoice, config: Configuration) -> InvoiceTaxes | None:
    """The invoice's taxes, or None while taxes are off. Its lines are the tax base (each already rounded
    once); tax is rounded once per rate on their sum."""
    rules = config.taxes
    if rules is None:
        return None
    client = invoice.client
    lines = [Charge(line.amount, client.currency) for line in invoice.lines]
    return tax_lines(
        rules,
        client.tax_identity(rules.home_country),
        lines,
        purpose=purpose_of(invoice.kind),
        currency=client.currency,
    )


def _tax_columns(taxes: InvoiceTaxes | None) -> dict[str, object]:
    if taxes is None:
        return {}
    return {"subtotal": taxes.subtotal, "tax_reason": taxes.why, "reverse_charge": taxes.reverse_charge}


def _taxed_items(invoice: NewInvoice, config: Configuration) -> tuple[InvoiceItem, ...]:
    """The WHMCS items, each ``taxed`` as the client's exemption and the rules say (WHMCS then applies
    its own tax configuration); all untaxed while taxes are off."""
    rules = config.taxes
    if rules is None:
        return invoice.items
    identity = invoice.client.tax_identity(rules.home_country)
    taxed = is_taxed(rules, identity, purpose_of(invoice.kind))
    return tuple(replace(item, taxed=taxed) for item in invoice.items)


def _invoice_mail(invoice: NewInvoice, issued: Issued, due: datetime) -> Notification:
    """The mail that tells the client of an invoice the bridge issued (with its PDF)."""
    notice = InvoiceIssued(
        invoice.reference,
        issued.shown_number or invoice.reference,
        invoice.total if issued.taxes is None else issued.taxes.total,
        invoice.client.currency,
        invoice.issued_at,
        due,
    )
    reference = references.notification(invoice.client.id, notice.event, invoice.reference)
    return Notification(invoice.client, notice, reference)


def record_payment(
    tx: Tx,
    invoice: store.StoredInvoice,
    config: Configuration,
    zone: ZoneInfo,
    *,
    paid_at: datetime,
    amount: Decimal,
) -> None:
    """Mark ``invoice`` paid in the caller's transaction; a proforma of ``config`` (its series'
    configuration) that becomes fiscal when paid takes the series' next fiscal number, dated the payment.

    An invoice WHMCS holds (issued through the push) gets the add_payment row that records the payment
    on it in WHMCS, once per invoice (a payment WHMCS itself reported is recorded by the payments sync,
    never here)."""
    values: dict[str, object] = {"status": "paid", "paid_at": paid_at, "paid_amount": amount}
    if invoice.issuer == WHMCS and amount > 0:
        payment = AddPayment(invoice.reference, amount, paid_at)
        reference = references.whmcs_payment(invoice.reference)
        enqueue_effect(tx, client_id=invoice.client_id, reference=reference, effect=payment, now=paid_at)
    if (
        invoice.issuer == BRIDGE
        and invoice.number is None
        and invoice.series is not None
        and config.invoicing_option is InvoicingOption.PROFORMA_THEN_FISCAL
    ):
        values["number"] = fiscal_number(tx, invoice.series, config, paid_at.astimezone(zone))
        values["issued_at"] = paid_at
    store.set_status(tx, invoice.id, **values)


def set_next_fiscal_number(
    tx: Tx, series: str, config: Configuration, zone: ZoneInfo, requested: int, *, now: datetime
) -> tuple[int, str]:
    """Make ``requested`` the series' next fiscal number (seed 001's "Next fiscal invoice number", after
    invoices exist): only upward, and never to a number an invoice has. Returns (the number it replaces,
    the next fiscal number as it would be rendered now); raises InputError naming the fix."""
    current = store.next_number(tx, f"fiscal:{series}") or config.next_fiscal_number
    if requested < current:
        raise InputError(
            f"--next {requested} is below {current}, the next fiscal number of {series}: fiscal numbers only "
            f"go up; give --next {current} or more"
        )
    rendered = render_number(config.fiscal_number_format, requested, now.astimezone(zone))
    if store.number_taken(tx, rendered):
        raise InputError(
            f"--next {requested}: invoice number {rendered} is already used; give a number above those used"
        )
    store.set_next_number(tx, f"fiscal:{series}", requested)
    return current, rendered


def fiscal_number(tx: Tx, series: str, config: Configuration, local: datetime) -> str:
    """The next fiscal number of the series (a configuration's name), rendered for the local instant
    ``local``, taken in the caller's transaction (gap-free)."""
    sequence = store.take_number(tx, f"fiscal:{series}", config.next_fiscal_number)
    return render_number(config.fiscal_number_format, sequence, local)


def _numbers(
    tx: Tx, invoices: Sequence[tuple[NewInvoice, Configuration]], zone: ZoneInfo
) -> list[tuple[str | None, str | None]]:
    """Each invoice's (fiscal number, proforma number) as its configuration's invoicing option says (both
    None when WHMCS numbers it). Each sequence's numbers are taken at once, in the order of the
    sequences' names (two workers never wait for each other's sequence), and handed out in the order of
    ``invoices``."""
    sequences = [_sequence_of(invoice, config) for invoice, config in invoices]
    wanted: dict[str, tuple[int, int]] = {}
    for sequence in sequences:
        if sequence is not None:
            name, first = sequence
            wanted[name] = (first, wanted.get(name, (first, 0))[1] + 1)
    following = {
        name: store.take_numbers(tx, name, first, count) for name, (first, count) in sorted(wanted.items())
    }
    numbers: list[tuple[str | None, str | None]] = []
    for (invoice, config), sequence in zip(invoices, sequences, strict=True):
        local = invoice.issued_at.astimezone(zone)
        if invoice.issuer != BRIDGE:
            numbers.append((None, None))
        elif sequence is None:
            numbers.append((None, random_proforma_number(invoice.reference)))
        else:
            value = following[sequence[0]]
            following[sequence[0]] = value + 1
            numbers.append(_rendered(config, value, local))
    return numbers


def _sequence_of(invoice: NewInvoice, config: Configuration) -> tuple[str, int] | None:
    """The sequence (name, first value) an invoice the bridge issues takes its number from; None when
    WHMCS numbers it or its number is random."""
    if invoice.issuer != BRIDGE:
        return None
    series = invoice.client.configuration
    if config.invoicing_option is InvoicingOption.ALWAYS_FISCAL:
        return f"fiscal:{series}", config.next_fiscal_number
    if config.invoicing_option is InvoicingOption.PROFORMA_THEN_FISCAL:
        return f"proforma:{series}", 1
    return None


def _rendered(config: Configuration, value: int, local: datetime) -> tuple[str | None, str | None]:
    """(fiscal number, proforma number): ``value`` of the configuration's sequence, rendered."""
    if config.invoicing_option is InvoicingOption.ALWAYS_FISCAL:
        return render_number(config.fiscal_number_format, value, local), None
    return None, render_number(config.proforma_number_format, value, local)
