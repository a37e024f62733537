"""Each outbox effect as WHMCS calls: how it is sent, and how it is found again when its fate is unknown.

No WHMCS write takes an idempotency key (research section 5), so every effect carries the bridge's
deterministic reference somewhere WHMCS keeps it, and a write whose answer was lost is *looked up* by that
reference before it is ever repeated:

==============  ===========================================  ============================================
kind            sent as                                      settled (in doubt) by
==============  ===========================================  ============================================
add_client      GetClientsDetails(email), then AddClient     GetClients(email): every client with that
                (with country, tax_id and the currency's id  email, the earliest kept
                from whmcs.currency_ids or GetCurrencies)
                only if WHMCS has no client with that email
update_client   UpdateClient (names, email; or the tax       GetClientsDetails(clientid): fields equal?
                identity: country, tax_id, taxexempt)
create_invoice  CreateInvoice (reference in ``notes``);      GetInvoice(id) when the id is known, else
                Draft mode: CreateInvoice draft, then        GetInvoices(userid) matching ``notes``, the
                UpdateInvoice publish                        earliest kept; a draft found is published
cancel_invoice  GetInvoices(userid) matching ``notes``, then  the same lookup, always done first: found
                UpdateInvoice status=Cancelled if it stands  Cancelled, or not found at all, is done
add_credit      AddCredit (reference in ``description``)     GetCredits(clientid) matching ``description``
add_payment     AddInvoicePayment (``transid`` = reference)  GetTransactions(transid, invoiceid)
==============  ===========================================  ============================================

A row is in doubt only until a lookup made after WHMCS can no longer be applying its call says what
WHMCS holds (the push waits ``whmcs.in_doubt_settle_seconds`` for that). Should a call be applied later
still, after the lookup found nothing and the effect was sent again, WHMCS holds it twice: so every
in-doubt settlement of an invoice or a client ends with a sweep by its reference (or email) that keeps the
earliest record and cancels the later ones through the API (UpdateInvoice status=Cancelled; CloseClient
for a client that holds no invoice and no product), reported through ``duplicates``. A later record that
cannot be cancelled safely (a paid invoice, a client in use) is never linked, and the row is parked for
the operator.

This module knows WHMCS, and each effect only as its typed intent (bridge/domain/effects.py): one table,
:data:`_WAYS`, says per kind how it is sent, how it is looked up, and how ``push --dry-run`` says it, so the
dry run cannot drift from what is sent. It knows nothing of the store. The caller
(bridge/sync/push.py) resolves the WHMCS ids the effect needs into a :class:`Target`, and records the
:class:`Outcome`.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bridge.domain.effects import (
    TAX_FIELDS,
    AddClient,
    AddCredit,
    AddPayment,
    CancelInvoice,
    CreateInvoice,
    Effect,
    EffectKind,
    SendEmail,
    UpdateClient,
    decode,
)
from bridge.logs import get_logger
from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.currencies import CurrencyIds
from bridge.whmcs.errors import WhmcsBusinessError
from bridge.whmcs.models import Client, Invoice, InvoiceLine
from bridge.whmcs.reference import check_reference, contains_reference
from bridge.whmcs.settings import WhmcsSettings

log = get_logger(__name__)

CENT = Decimal("0.01")

Progress = Callable[[str], None]
"""Records the remote id of a first step (a draft invoice) durably before the next step's call."""

CANCELLABLE = ("Draft", "Unpaid")
"""Invoice statuses a duplicate may be cancelled from: nothing has been paid on it."""
PAID = ("Paid", "Refunded", "Collections", "Payment Pending")


@dataclass(frozen=True)
class Duplicate:
    """WHMCS held a record twice for one reference (``kind`` ``invoice`` or ``client``): ``kept`` is the
    one the bridge links, ``cancelled`` the later ones it cancelled (or closed), ``left`` those it could
    not cancel safely (paid, or a client in use), which the operator must resolve."""

    kind: str
    reference: str
    kept: int
    cancelled: tuple[int, ...]
    left: tuple[int, ...]


Duplicates = Callable[[Duplicate], None]
"""Told of every duplicate found by an in-doubt settlement (the push logs and counts them)."""


def _ignore(duplicate: Duplicate) -> None:
    """Duplicates nobody listens for are still resolved; only the report is dropped."""


class EffectRefused(Exception):
    """The effect cannot be sent as it stands: a payload the bridge cannot read, a WHMCS client or invoice
    it needs and does not have, or a WHMCS client in another currency. Nothing was sent for it; the row is
    parked for the operator with this message."""


@dataclass(frozen=True)
class Target:
    """The WHMCS ids an effect needs: the client it belongs to and, for a payment, the invoice it pays."""

    whmcs_client_id: int | None
    invoice_id: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What WHMCS holds now. ``remote_id`` is the WHMCS id when WHMCS gives one (AddCredit and
    AddInvoicePayment answer with none; a lookup gives the entry's id). ``looked_up`` is True when the
    effect was found already applied, so this attempt sent nothing that creates a record."""

    remote_id: str | None
    looked_up: bool


@dataclass(frozen=True)
class EffectOptions:
    """The ``[whmcs]`` settings effects depend on, and the time zone WHMCS reads dates in. ``currencies``
    (``whmcs.currency_ids``, then GetCurrencies) is read once per push: a push builds its options once."""

    invoice_status: str = "Draft"
    send_invoice: bool = False
    payment_method: str | None = None
    default_country: str = "US"
    currencies: CurrencyIds = field(default_factory=CurrencyIds, compare=False)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @classmethod
    def from_settings(cls, settings: WhmcsSettings, zone: ZoneInfo) -> EffectOptions:
        return cls(
            invoice_status=settings.invoice_status,
            send_invoice=settings.send_invoice,
            payment_method=settings.payment_method,
            default_country=settings.default_country,
            currencies=CurrencyIds(settings.currency_ids),
            zone=zone,
        )

    @property
    def draft_first(self) -> bool:
        return self.invoice_status == "Draft"


def apply(
    client: WhmcsClient,
    kind: str,
    reference: str,
    payload: Mapping[str, Any],
    target: Target,
    *,
    in_doubt: bool,
    remote_id: str | None,
    options: EffectOptions,
    progress: Progress,
    duplicates: Duplicates = _ignore,
) -> Outcome:
    """Bring WHMCS to hold the effect exactly once, and say what it holds.

    ``in_doubt`` says an earlier attempt may have been applied: the effect is looked up by ``reference``
    first and sent only if absent, and an invoice or client is then swept for duplicates (see the module
    docstring; each found is reported to ``duplicates``). ``remote_id`` is what an earlier attempt recorded
    through ``progress`` (a draft invoice's id). Raises the client's typed errors (a transport error leaves
    the effect in doubt, a business error means WHMCS refused it) or :class:`EffectRefused`.
    """
    check_reference(reference)
    effect = _read(kind, payload)
    way = _WAYS.get(effect.kind)
    if way is None:
        raise EffectRefused(f"unknown effect kind {kind!r}")
    call = _Call(client, reference, target, in_doubt, remote_id, options, progress, duplicates)
    return way.send(call, effect)


def plan(kind: str, payload: Mapping[str, Any], *, in_doubt: bool, options: EffectOptions) -> str:
    """The calls :func:`apply` would make, in words, for ``push --dry-run``. Makes no call."""
    if kind not in _WAYS:
        return f"unknown effect kind {kind!r}"
    try:
        effect = decode(kind, payload)
    except ValueError as error:
        return f"nothing: the row is refused ({error})"
    way = _WAYS.get(effect.kind)
    if way is None:
        return f"unknown effect kind {kind!r}"
    first = f"look up ({way.lookup}), then if absent: " if in_doubt and way.lookup else ""
    return first + way.says(effect, options)


def _read(kind: str, payload: Mapping[str, Any]) -> Effect:
    """The row's typed intent; a payload the bridge cannot read sends nothing and is refused."""
    try:
        return decode(kind, payload)
    except ValueError as error:
        raise EffectRefused(str(error)) from None


@dataclass(frozen=True)
class _Call:
    """What every effect's sending needs besides the intent."""

    client: WhmcsClient
    reference: str
    target: Target
    in_doubt: bool
    remote_id: str | None
    options: EffectOptions
    progress: Progress
    duplicates: Duplicates


# -- clients --------------------------------------------------------------------------------------------


def _add_client(call: _Call, effect: AddClient) -> Outcome:
    """Match by email first (always: the lookup settles a lost AddClient too), create only if absent; in
    doubt, every client with the email is looked at, the earliest kept and the later ones retired.

    The client's tax identity goes with it: a new client is created with its country and tax ID (and
    then marked tax exempt if it is, which AddClient cannot say); a client adopted by email is brought to
    the bridge's country, tax ID and exemption where it differs (:func:`_adopted`). So a crash between
    the two calls is settled by the lookup: the client is found, then adopted.
    """
    client, reference, target, options = call.client, call.reference, call.target, call.options
    in_doubt, duplicates = call.in_doubt, call.duplicates
    if target.whmcs_client_id is not None:
        return Outcome(str(target.whmcs_client_id), looked_up=True)
    email, currency = effect.email, effect.currency
    if in_doubt:
        kept = _one_client(client, reference, email, duplicates)
        existing = client.get_clients_details(client_id=kept) if kept is not None else None
    else:
        existing = client.get_clients_details(email=email)
    if existing is not None:
        return _adopted(client, existing, effect)
    currency_id = _currency_id(call, currency) if currency else None
    try:
        new_id = client.add_client(
            firstname=effect.firstname or email.split("@")[0],
            lastname=effect.lastname,
            email=email,
            companyname=effect.companyname,
            country=effect.country or options.default_country,
            tax_id=effect.tax_id,
            currency_id=currency_id,
            skip_validation=True,
        )
    except WhmcsBusinessError as error:
        if not error.duplicate_email:
            raise
        existing = client.get_clients_details(email=email)
        if existing is None:
            raise
        return _adopted(client, existing, effect)
    if in_doubt:  # an earlier AddClient may have been applied after all: keep the earliest
        kept = _one_client(client, reference, email, duplicates)
        if kept is not None and kept != new_id:
            existing = client.get_clients_details(client_id=kept)
            if existing is not None:
                return _adopted(client, existing, effect)
    if effect.taxexempt:
        client.update_client(new_id, taxexempt=True)
    return Outcome(str(new_id), looked_up=False)


def _currency_id(call: _Call, code: str) -> int:
    """WHMCS's id of the client's currency; a currency WHMCS does not have creates no client (WHMCS would
    put it in its default currency, and bill every invoice pushed to it in that currency)."""
    found = call.options.currencies.id_of(code, call.client)
    if found is None:
        raise EffectRefused(
            f"WHMCS has no currency {code.upper()} (GetCurrencies), so the client would be billed in WHMCS's "
            f"default currency: add {code.upper()} in WHMCS (System Settings > Currencies) or set "
            f"whmcs.currency_ids.{code.upper()} to its id, then `billing-bridge outbox retry`"
        )
    return found


def _one_client(client: WhmcsClient, reference: str, email: str, duplicates: Duplicates) -> int | None:
    """The earliest WHMCS client with ``email``, after retiring any later ones; None when there is none.

    A later client is closed (CloseClient) only if it holds no invoice and no product, so closing it
    cancels nothing a customer or an admin made; otherwise it is left for the operator. Either way it is
    never linked, and it is reported.
    """
    found = client.find_clients_by_email(email)
    if len(found) < 2:
        return found[0].id if found else None
    kept, later = found[0], found[1:]
    closed, left = [], []
    for extra in later:
        if extra.status == "Closed":
            continue
        if client.get_invoices(extra.id) or client.count_products(extra.id):
            left.append(extra.id)
        else:
            client.close_client(extra.id)
            closed.append(extra.id)
    if closed or left:
        duplicates(Duplicate("client", reference, kept.id, tuple(closed), tuple(left)))
    return kept.id


def _adopted(client: WhmcsClient, existing: Client, effect: AddClient) -> Outcome:
    """An existing WHMCS client is adopted only if it bills in the bridge client's currency; then it is
    given the tax identity the bridge knows of the client (its country and VAT ID when it has them, its
    exemption always) where it differs, so WHMCS taxes it as the bridge's ``taxed`` flags assume. One
    UpdateClient, sent only when something differs: it sets values, so a repeat changes nothing."""
    currency = effect.currency
    if currency and existing.currency_code and existing.currency_code.upper() != currency.upper():
        raise EffectRefused(
            f"WHMCS client {existing.id} ({existing.email}) bills in {existing.currency_code} but the "
            f"bridge client bills in {currency}; change one of them, then `billing-bridge outbox retry`"
        )
    known = {"country": effect.country, "tax_id": effect.tax_id, "taxexempt": effect.taxexempt}
    differing = {
        key: value for key, value in known.items() if value is not None and not _holds(existing, {key: value})
    }
    if differing:
        client.update_client(existing.id, **differing)
    return Outcome(str(existing.id), looked_up=True)


def _update_client(call: _Call, effect: UpdateClient) -> Outcome:
    """UpdateClient sets the values the row holds and creates no record, so it is idempotent in effect:
    applied twice, WHMCS holds the same client. In doubt it is still looked up first (GetClientsDetails),
    so a call WHMCS applied is not sent again and counts once; sent again only when WHMCS does not hold
    every field (or does not say one, as ``tax_id`` before WHMCS 7.7), which is then harmless. A later
    change of the same client waits behind a row in doubt (one client's rows go out in order), so a
    repeat can never undo it."""
    client = call.client
    whmcs_id = _client_id(call.target)
    fields = effect.fields()
    if call.in_doubt:
        current = client.get_clients_details(client_id=whmcs_id)
        if current is None:
            raise EffectRefused(f"WHMCS client {whmcs_id} no longer exists")
        if _holds(current, fields):
            return Outcome(str(whmcs_id), looked_up=True)
    client.update_client(whmcs_id, **fields)
    return Outcome(str(whmcs_id), looked_up=False)


def _holds(current: Client, fields: Mapping[str, str | bool]) -> bool:
    """Whether WHMCS holds every field as the row sets it; one it does not say (None) is not held."""
    have: dict[str, str | bool | None] = {
        "email": current.email.lower(),
        "firstname": current.firstname,
        "lastname": current.lastname,
        "companyname": current.companyname,
        "country": current.country,
        "tax_id": current.tax_id,
        "taxexempt": current.tax_exempt,
    }
    return all(have[key] == _compared(key, value) for key, value in fields.items())


def _compared(key: str, value: str | bool) -> str | bool:
    """A field as WHMCS gives it back: emails in lower case, countries in upper case."""
    if isinstance(value, str) and key == "email":
        return value.lower()
    if isinstance(value, str) and key == "country":
        return value.upper()
    return value


# -- invoices -------------------------------------------------------------------------------------------


class _Invoice:
    """One create_invoice effect: sent, or settled after doubt (looked up, sent only if absent, swept)."""

    def __init__(self, call: _Call, effect: CreateInvoice) -> None:
        self.client = call.client
        self.reference = call.reference
        self.effect = effect
        self.user_id = _client_id(call.target)
        self.items = _items(effect)  # read before any call: an invoice that cannot go sends nothing
        self.day, self.due = effect.issued_on, effect.due_on
        self.options = call.options
        self.progress = call.progress
        self.duplicates = call.duplicates

    @classmethod
    def apply(cls, call: _Call, effect: CreateInvoice) -> Outcome:
        invoice = cls(call, effect)
        return invoice.settle(call.remote_id) if call.in_doubt else invoice.send()

    def send(self) -> Outcome:
        """A row never tried (or provably not received): CreateInvoice, then publish a draft."""
        invoice_id, status = self._create()
        return self._published(invoice_id, status, looked_up=False)

    def settle(self, remote_id: str | None) -> Outcome:
        """A row whose earlier call may have been applied: find it (by the draft id recorded, else by the
        reference), create it only if absent, and sweep for a duplicate after creating."""
        if remote_id is not None:
            existing = self.client.get_invoice(int(remote_id))
            if existing is None:
                raise EffectRefused(
                    f"WHMCS invoice {remote_id}, created for {self.reference}, no longer exists; "
                    "`billing-bridge outbox cancel` this row or recreate the invoice by hand"
                )
        else:
            existing = self._one()
            if existing is not None and existing.status == "Draft":
                self.progress(str(existing.id))
        if existing is not None:
            return self._published(existing.id, existing.status, looked_up=True)
        invoice_id, status = self._create()
        kept = self._one()  # an earlier CreateInvoice may have been applied after all: keep the earliest
        if kept is not None and kept.id != invoice_id:
            return self._published(kept.id, kept.status, looked_up=True)
        return self._published(invoice_id, status, looked_up=False)

    def _create(self) -> tuple[int, str]:
        options = self.options
        created = self.client.create_invoice(
            self.user_id,
            self.items,
            date=self.day,
            due_date=self.due,
            notes=_with_reference(self.effect.notes, self.reference),
            send=options.send_invoice and not options.draft_first,
            draft=options.draft_first,
            payment_method=options.payment_method,
        )
        if created.status == "Draft":
            self.progress(str(created.invoice_id))
        return created.invoice_id, created.status

    def _published(self, invoice_id: int, status: str, *, looked_up: bool) -> Outcome:
        if status == "Draft":
            _publish(self.client, invoice_id, send=self.options.send_invoice)
        return Outcome(str(invoice_id), looked_up=looked_up)

    def _one(self) -> Invoice | None:
        """The invoice carrying the reference, after cancelling any later live one; None when none does.

        The earliest live invoice is kept (a paid one before any unpaid one); later Draft or Unpaid ones
        are cancelled. A later one that was paid cannot be cancelled: reported, and the row is refused
        for the operator. Only cancelled ones: the last (an operator who cancelled it resolved it).
        """
        matches = self.client.find_invoices_by_reference(self.user_id, self.reference)
        live = [invoice for invoice in matches if invoice.status != "Cancelled"]
        if len(live) < 2:
            return live[0] if live else (matches[-1] if matches else None)
        paid = [invoice for invoice in live if invoice.status in PAID]
        kept = paid[0] if paid else live[0]
        later = [invoice for invoice in live if invoice.id != kept.id]
        cancelled = [invoice.id for invoice in later if invoice.status in CANCELLABLE]
        left = [invoice.id for invoice in later if invoice.status not in CANCELLABLE]
        for invoice_id in cancelled:
            self.client.update_invoice(invoice_id, status="Cancelled")
        self.duplicates(Duplicate("invoice", self.reference, kept.id, tuple(cancelled), tuple(left)))
        if left:
            listed = ", ".join(str(invoice_id) for invoice_id in left)
            raise EffectRefused(
                f"WHMCS holds {len(live)} invoices carrying {self.reference}: kept {kept.id}, cannot cancel "
                f"{listed} (paid); refund or credit in WHMCS, then `billing-bridge outbox retry` this row"
            )
        return kept


def _cancel_invoice(call: _Call, effect: CancelInvoice) -> Outcome:
    """Cancel an invoice the bridge replaced (issue 8), always looked up by its reference first.

    One already cancelled, or none carrying the reference (its create_invoice never reached WHMCS), needs
    no call; a paid one is refused, for the operator to refund or credit by hand.
    """
    client, target = call.client, call.target
    invoice_reference = effect.invoice_reference
    try:
        check_reference(invoice_reference)
    except ValueError as error:
        raise EffectRefused(f"cancel_invoice payload: {error}") from None
    existing = client.find_invoice_by_reference(_client_id(target), invoice_reference)
    if existing is None:
        return Outcome(None, looked_up=True)
    if existing.status == "Cancelled":
        return Outcome(str(existing.id), looked_up=True)
    if existing.status in ("Paid", "Refunded"):
        raise EffectRefused(
            f"WHMCS invoice {existing.id} ({invoice_reference}) is {existing.status} and was replaced by the "
            "bridge; refund or credit it in WHMCS by hand, then `billing-bridge outbox cancel` this row"
        )
    client.update_invoice(existing.id, status="Cancelled")
    return Outcome(str(existing.id), looked_up=False)


def _publish(client: WhmcsClient, invoice_id: int, *, send: bool) -> None:
    """Publish the draft; WHMCS refuses to publish a non-draft, which means an earlier try did it."""
    try:
        client.update_invoice(invoice_id, publish=not send, publish_and_send=send)
    except WhmcsBusinessError:
        current = client.get_invoice(invoice_id)
        if current is not None and current.status != "Draft":
            return
        raise


def _items(effect: CreateInvoice) -> list[InvoiceLine]:
    return [
        InvoiceLine(item.description, _cents(item.amount, f"item {number} amount"), item.taxed)
        for number, item in enumerate(effect.items, start=1)
    ]


# -- credit and payments --------------------------------------------------------------------------------


def _add_credit(call: _Call, effect: AddCredit) -> Outcome:
    client, reference = call.client, call.reference
    whmcs_id = _client_id(call.target)
    amount = _cents(effect.amount, "amount")
    if amount <= 0:
        raise EffectRefused(f"add_credit amount must be positive, got {amount}")
    description = _with_reference(effect.description or "Credit", reference)
    if call.in_doubt:
        found = client.find_credit_by_reference(whmcs_id, reference)
        if found is not None:
            return Outcome(str(found.id), looked_up=True)
    client.add_credit(whmcs_id, amount, description, effect.on)
    return Outcome(None, looked_up=False)


def _send_email(call: _Call, effect: SendEmail) -> Outcome:
    """A custom general email (a client notification). WHMCS keeps no record to look one up by, so an
    email whose first attempt may have been sent is not sent again: a missed mail is logged, a second
    copy of "your credit runs low" would be worse."""
    if call.in_doubt:
        log.warning("email possibly not sent; not repeated", reference=call.reference)
        return Outcome(None, looked_up=True)
    message = html.escape(effect.message).replace("\n", "<br>\n")  # plain text shown as written
    call.client.send_email(
        _client_id(call.target), custom_type="general", subject=effect.subject, html_message=message
    )
    return Outcome(None, looked_up=False)


def _add_payment(call: _Call, effect: AddPayment) -> Outcome:
    client, reference, target, options = call.client, call.reference, call.target, call.options
    if target.invoice_id is None:
        raise EffectRefused(
            f"invoice {effect.invoice_reference!r} has no WHMCS id: its create_invoice row has not "
            "been pushed (or was cancelled)"
        )
    amount = _cents(effect.amount, "amount")
    if amount <= 0:
        raise EffectRefused(f"add_payment amount must be positive, got {amount}")
    gateway = effect.gateway or options.payment_method
    if not gateway:
        raise EffectRefused("add_payment needs a gateway: in the payload, or whmcs.payment_method")
    fees = _cents(effect.fees, "fees") if effect.fees is not None else None
    when = effect.at.astimezone(options.zone).replace(tzinfo=None)  # WHMCS's wall time (section 7)
    if call.in_doubt:
        found = client.find_transaction(reference, invoice_id=target.invoice_id)
        if found is not None:
            return Outcome(str(found.id), looked_up=True)
    client.add_invoice_payment(
        target.invoice_id,
        reference,
        gateway,
        amount,
        when,
        fees=fees,
        send_confirmation=effect.send_confirmation,
    )
    return Outcome(None, looked_up=False)


# -- the table: each kind as sent, looked up, and said ------------------------------------------------------


@dataclass(frozen=True)
class _Way:
    """How one kind of effect reaches WHMCS: ``send`` (:func:`apply`), ``lookup`` (the call that finds it
    when in doubt, said first by the dry run) and ``says`` (the dry run's words for the rest)."""

    send: Callable[[_Call, Any], Outcome]
    says: Callable[[Any, EffectOptions], str]
    lookup: str | None = None


def _says_create_invoice(effect: CreateInvoice, options: EffectOptions) -> str:
    publish = " + UpdateInvoice publish" if options.draft_first else ""
    return f"CreateInvoice {len(effect.items)} lines, total {effect.total}{publish}"


def _says_add_client(effect: AddClient, _: EffectOptions) -> str:
    """The lookup by email, then the AddClient with the tax identity it carries."""
    tax = {"country": effect.country, "tax_id": effect.tax_id}
    carried = ", ".join(f"{key}={value}" for key, value in tax.items() if value)
    add = f"AddClient {carried}" if carried else "AddClient"
    exempt = " + UpdateClient taxexempt=true" if effect.taxexempt else ""
    return f"GetClientsDetails email={effect.email}, then {add}{exempt} if WHMCS has no such client"


def _says_update_client(effect: UpdateClient, _: EffectOptions) -> str:
    """The fields changed by name, and the tax identity with its values (what WHMCS will tax by)."""
    said = [
        key if key not in TAX_FIELDS else f"{key}={str(value).lower() if isinstance(value, bool) else value}"
        for key, value in sorted(effect.fields().items())
    ]
    return f"UpdateClient {', '.join(said)}"


_WAYS: Mapping[EffectKind, _Way] = {
    EffectKind.ADD_CLIENT: _Way(_add_client, _says_add_client),
    EffectKind.UPDATE_CLIENT: _Way(
        _update_client,
        _says_update_client,
        "GetClientsDetails",
    ),
    EffectKind.CREATE_INVOICE: _Way(_Invoice.apply, _says_create_invoice, "GetInvoices"),
    EffectKind.CANCEL_INVOICE: _Way(
        _cancel_invoice,
        lambda effect, _: (
            f"GetInvoices matching {effect.invoice_reference}, then UpdateInvoice status=Cancelled unless it "
            "is already"
        ),
    ),
    EffectKind.ADD_CREDIT: _Way(_add_credit, lambda effect, _: f"AddCredit {effect.amount}", "GetCredits"),
    EffectKind.ADD_PAYMENT: _Way(
        _add_payment,
        lambda effect, _: f"AddInvoicePayment {effect.amount} on {effect.invoice_reference}",
        "GetTransactions",
    ),
    EffectKind.SEND_EMAIL: _Way(
        _send_email,
        lambda effect, _: (
            f"SendEmail {effect.subject!r} (not repeated when in doubt: WHMCS cannot look one up)"
        ),
    ),
}


# -- readers ------------------------------------------------------------------------------------------------


def _client_id(target: Target) -> int:
    if target.whmcs_client_id is None:
        raise EffectRefused("the client has no WHMCS client yet")
    return target.whmcs_client_id


def _cents(amount: Decimal, what: str) -> Decimal:
    """An amount as WHMCS takes it; one with fractions of a cent is refused, never rounded."""
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise EffectRefused(f"{what} {str(amount)!r} is not an amount in cents")
    return amount


def _with_reference(text: str, reference: str) -> str:
    """The text as given when it carries the reference (the lookup finds it there), else with it added."""
    if contains_reference(text, reference):
        return text
    return f"{text} ({reference})" if text else reference
