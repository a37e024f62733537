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

from collections.abc import Callable
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
from bridge.services.notifications import ClientNotifier
from bridge.store import invoices as store
from bridge.store.outbox import enqueue_effect
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
    client = invoice.client
    due = due_at(config, invoice.issued_at)
    taxes = _taxes(invoice, config) if invoice.issuer == BRIDGE else None
    number, proforma = (None, None)
    if invoice.issuer == BRIDGE:
        local = invoice.issued_at.astimezone(zone)
        number, proforma = _numbers_of(tx, client, config, invoice.reference, local)
    invoice_id = store.insert_invoice(
        tx,
        {
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
        },
        invoice.lines,
    )
    if taxes is not None:
        store.insert_taxes(tx, invoice_id, taxes.lines)
    if invoice.issuer == BRIDGE:
        issued = Issued(invoice_id, number, proforma, taxes)
        if notifier is not None and config.notify_on_unpaid_invoices:
            _mail_invoice(tx, notifier, invoice, issued, due, now)
        return issued
    before_push()
    effect = CreateInvoice(
        invoice.reference,
        invoice.issued_at.astimezone(zone).date(),
        due.astimezone(zone).date(),
        _taxed_items(invoice, config),
        invoice.notes,
    )
    enqueue_effect(tx, client_id=client.id, reference=invoice.reference, effect=effect, now=now)
    return Issued(invoice_id, None, None)


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


def _mail_invoice(
    tx: Tx, notifier: ClientNotifier, invoice: NewInvoice, issued: Issued, due: datetime, now: datetime
) -> None:
    notice = InvoiceIssued(
        invoice.reference,
        issued.shown_number or invoice.reference,
        invoice.total if issued.taxes is None else issued.taxes.total,
        invoice.client.currency,
        invoice.issued_at,
        due,
    )
    reference = references.notification(invoice.client.id, notice.event, invoice.reference)
    notifier.notify(tx, invoice.client, notice, reference, now)


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


def _numbers_of(
    tx: Tx, client: Client, config: Configuration, reference: str, local: datetime
) -> tuple[str | None, str | None]:
    """(fiscal number, proforma number) as the configuration's invoicing option says."""
    if config.invoicing_option is InvoicingOption.ALWAYS_FISCAL:
        return fiscal_number(tx, client.configuration, config, local), None
    if config.invoicing_option is InvoicingOption.PROFORMA_THEN_FISCAL:
        sequence = store.take_number(tx, f"proforma:{client.configuration}", 1)
        return None, render_number(config.proforma_number_format, sequence, local)
    return None, random_proforma_number(reference)
