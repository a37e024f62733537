"""Each outbox effect as WHMCS calls: how it is sent, and how it is found again when its fate is unknown.

No WHMCS write takes an idempotency key (research section 5), so every effect carries the bridge's
deterministic reference somewhere WHMCS keeps it, and a write whose answer was lost is *looked up* by that
reference before it is ever repeated:

==============  ===========================================  ============================================
kind            sent as                                      settled (in doubt) by
==============  ===========================================  ============================================
add_client      GetClientsDetails(email), then AddClient     GetClients(email): every client with that
                only if WHMCS has no client with that email  email, the earliest kept
update_client   UpdateClient                                 GetClientsDetails(clientid): fields equal?
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

This module knows the payloads (see :func:`apply`) and WHMCS; it knows nothing of the store. The caller
(bridge/sync/push.py) resolves the WHMCS ids the effect needs into a :class:`Target`, and records the
:class:`Outcome`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from bridge.logs import get_logger
from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.errors import WhmcsBusinessError
from bridge.whmcs.models import Client, Invoice, InvoiceLine
from bridge.whmcs.reference import check_reference, contains_reference
from bridge.whmcs.settings import WhmcsSettings

log = get_logger(__name__)

ADD_CLIENT = "add_client"
UPDATE_CLIENT = "update_client"
CREATE_INVOICE = "create_invoice"
CANCEL_INVOICE = "cancel_invoice"
ADD_CREDIT = "add_credit"
ADD_PAYMENT = "add_payment"
SEND_EMAIL = "send_email"
KINDS = (ADD_CLIENT, UPDATE_CLIENT, CREATE_INVOICE, CANCEL_INVOICE, ADD_CREDIT, ADD_PAYMENT, SEND_EMAIL)
CLIENT_FIELDS = ("email", "firstname", "lastname", "companyname")
"""The client fields the bridge owns in WHMCS (AddClient and UpdateClient payloads)."""
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
    """The ``[whmcs]`` settings effects depend on, and the time zone WHMCS reads dates in."""

    invoice_status: str = "Draft"
    send_invoice: bool = False
    payment_method: str | None = None
    default_country: str = "US"
    currency_ids: Mapping[str, int] = field(default_factory=dict)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @classmethod
    def from_settings(cls, settings: WhmcsSettings, zone: ZoneInfo) -> EffectOptions:
        return cls(
            invoice_status=settings.invoice_status,
            send_invoice=settings.send_invoice,
            payment_method=settings.payment_method,
            default_country=settings.default_country,
            currency_ids=dict(settings.currency_ids),
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
    if kind == ADD_CLIENT:
        return _add_client(client, reference, payload, target, options, in_doubt, duplicates)
    if kind == UPDATE_CLIENT:
        return _update_client(client, payload, target, in_doubt)
    if kind == CREATE_INVOICE:
        invoice = _Invoice(client, reference, payload, target, options, progress, duplicates)
        return invoice.settle(remote_id) if in_doubt else invoice.send()
    if kind == CANCEL_INVOICE:
        return _cancel_invoice(client, payload, target)
    if kind == ADD_CREDIT:
        return _add_credit(client, reference, payload, target, in_doubt)
    if kind == ADD_PAYMENT:
        return _add_payment(client, reference, payload, target, in_doubt, options)
    if kind == SEND_EMAIL:
        return _send_email(client, reference, payload, target, in_doubt)
    raise EffectRefused(f"unknown effect kind {kind!r}")


def plan(kind: str, payload: Mapping[str, Any], *, in_doubt: bool, options: EffectOptions) -> str:
    """The calls :func:`apply` would make, in words, for ``push --dry-run``. Makes no call."""
    lookup = {
        UPDATE_CLIENT: "GetClientsDetails",
        CREATE_INVOICE: "GetInvoices",
        ADD_CREDIT: "GetCredits",
        ADD_PAYMENT: "GetTransactions",
    }
    first = f"look up ({lookup[kind]}), then if absent: " if in_doubt and kind in lookup else ""
    if kind == ADD_CLIENT:
        return f"GetClientsDetails email={payload.get('email')}, then AddClient if WHMCS has no such client"
    if kind == UPDATE_CLIENT:
        changed = ", ".join(sorted(key for key in CLIENT_FIELDS if key in payload))
        return f"{first}UpdateClient {changed}"
    if kind == CREATE_INVOICE:
        items = payload.get("items") or []
        try:
            total = sum((Decimal(str(item.get("amount"))) for item in items), Decimal(0))
        except (InvalidOperation, AttributeError):
            total = Decimal(0)
        publish = " + UpdateInvoice publish" if options.draft_first else ""
        return f"{first}CreateInvoice {len(items)} lines, total {total}{publish}"
    if kind == CANCEL_INVOICE:
        reference = payload.get("invoice_reference")
        return f"GetInvoices matching {reference}, then UpdateInvoice status=Cancelled unless it is already"
    if kind == ADD_CREDIT:
        return f"{first}AddCredit {payload.get('amount')}"
    if kind == ADD_PAYMENT:
        return f"{first}AddInvoicePayment {payload.get('amount')} on {payload.get('invoice_reference')}"
    if kind == SEND_EMAIL:
        return f"SendEmail {payload.get('subject')!r} (not repeated when in doubt: WHMCS cannot look one up)"
    return f"unknown effect kind {kind!r}"


# -- clients --------------------------------------------------------------------------------------------


def _add_client(
    client: WhmcsClient,
    reference: str,
    payload: Mapping[str, Any],
    target: Target,
    options: EffectOptions,
    in_doubt: bool,
    duplicates: Duplicates,
) -> Outcome:
    """Match by email first (always: the lookup settles a lost AddClient too), create only if absent; in
    doubt, every client with the email is looked at, the earliest kept and the later ones retired."""
    if target.whmcs_client_id is not None:
        return Outcome(str(target.whmcs_client_id), looked_up=True)
    email = _text(payload, "email")
    currency = _optional_text(payload, "currency")
    if in_doubt:
        kept = _one_client(client, reference, email, duplicates)
        existing = client.get_clients_details(client_id=kept) if kept is not None else None
    else:
        existing = client.get_clients_details(email=email)
    if existing is not None:
        return _matched(existing, currency)
    try:
        new_id = client.add_client(
            firstname=_optional_text(payload, "firstname") or email.split("@")[0],
            lastname=_optional_text(payload, "lastname") or "",
            email=email,
            companyname=_optional_text(payload, "companyname"),
            country=options.default_country,
            currency_id=options.currency_ids.get(currency) if currency else None,
            skip_validation=True,
        )
    except WhmcsBusinessError as error:
        if not error.duplicate_email:
            raise
        existing = client.get_clients_details(email=email)
        if existing is None:
            raise
        return _matched(existing, currency)
    if in_doubt:  # an earlier AddClient may have been applied after all: keep the earliest
        kept = _one_client(client, reference, email, duplicates)
        if kept is not None and kept != new_id:
            return Outcome(str(kept), looked_up=True)
    return Outcome(str(new_id), looked_up=False)


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


def _matched(existing: Client, currency: str | None) -> Outcome:
    """An existing WHMCS client is adopted only if it bills in the bridge client's currency."""
    if currency and existing.currency_code and existing.currency_code.upper() != currency.upper():
        raise EffectRefused(
            f"WHMCS client {existing.id} ({existing.email}) bills in {existing.currency_code} but the "
            f"bridge client bills in {currency}; change one of them, then `billing-bridge outbox retry`"
        )
    return Outcome(str(existing.id), looked_up=True)


def _update_client(
    client: WhmcsClient, payload: Mapping[str, Any], target: Target, in_doubt: bool
) -> Outcome:
    whmcs_id = _client_id(target)
    fields = {key: _text(payload, key) for key in CLIENT_FIELDS if payload.get(key) is not None}
    if not fields:
        raise EffectRefused("update_client payload names no field to change")
    if in_doubt:
        current = client.get_clients_details(client_id=whmcs_id)
        if current is None:
            raise EffectRefused(f"WHMCS client {whmcs_id} no longer exists")
        if _holds(current, fields):
            return Outcome(str(whmcs_id), looked_up=True)
    client.update_client(whmcs_id, **fields)
    return Outcome(str(whmcs_id), looked_up=False)


def _holds(current: Client, fields: Mapping[str, str]) -> bool:
    have = {
        "email": current.email.lower(),
        "firstname": current.firstname,
        "lastname": current.lastname,
        "companyname": current.companyname,
    }
    return all(have[key] == (value.lower() if key == "email" else value) for key, value in fields.items())


# -- invoices -------------------------------------------------------------------------------------------


class _Invoice:
    """One create_invoice effect: sent, or settled after doubt (looked up, sent only if absent, swept)."""

    def __init__(
        self,
        client: WhmcsClient,
        reference: str,
        payload: Mapping[str, Any],
        target: Target,
        options: EffectOptions,
        progress: Progress,
        duplicates: Duplicates,
    ) -> None:
        self.client = client
        self.reference = reference
        self.payload = payload
        self.user_id = _client_id(target)
        self.items = _items(payload)  # read before any call: a payload that cannot go sends nothing
        self.day, self.due = _day(payload, "date"), _day(payload, "due_date")
        self.options = options
        self.progress = progress
        self.duplicates = duplicates

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
            notes=_with_reference(_optional_text(self.payload, "notes") or "", self.reference),
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


def _cancel_invoice(client: WhmcsClient, payload: Mapping[str, Any], target: Target) -> Outcome:
    """Cancel an invoice the bridge replaced (issue 8), always looked up by its reference first.

    One already cancelled, or none carrying the reference (its create_invoice never reached WHMCS), needs
    no call; a paid one is refused, for the operator to refund or credit by hand.
    """
    invoice_reference = _text(payload, "invoice_reference")
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


def _items(payload: Mapping[str, Any]) -> list[InvoiceLine]:
    raw = payload.get("items")
    if not isinstance(raw, list) or not raw:
        raise EffectRefused("create_invoice payload has no items")
    lines = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise EffectRefused(f"create_invoice item {number} is not an object")
        description = _text(item, "description")
        amount = _cents(item, "amount", f"item {number} amount")
        lines.append(InvoiceLine(description, amount, bool(item.get("taxed", False))))
    return lines


# -- credit and payments --------------------------------------------------------------------------------


def _add_credit(
    client: WhmcsClient, reference: str, payload: Mapping[str, Any], target: Target, in_doubt: bool
) -> Outcome:
    whmcs_id = _client_id(target)
    amount = _cents(payload, "amount", "amount")
    if amount <= 0:
        raise EffectRefused(f"add_credit amount must be positive, got {amount}")
    description = _with_reference(_optional_text(payload, "description") or "Credit", reference)
    day = _day(payload, "date") if payload.get("date") else None
    if in_doubt:
        found = client.find_credit_by_reference(whmcs_id, reference)
        if found is not None:
            return Outcome(str(found.id), looked_up=True)
    client.add_credit(whmcs_id, amount, description, day)
    return Outcome(None, looked_up=False)


def _send_email(
    client: WhmcsClient, reference: str, payload: Mapping[str, Any], target: Target, in_doubt: bool
) -> Outcome:
    """A custom general email (a credit notification). WHMCS keeps no record to look one up by, so an
    email whose first attempt may have been sent is not sent again: a missed mail is logged, a second
    copy of "your credit runs low" would be worse."""
    if in_doubt:
        log.warning("email possibly not sent; not repeated", reference=reference)
        return Outcome(None, looked_up=True)
    message = _text(payload, "message").replace("\n", "<br>")
    client.send_email(
        _client_id(target), custom_type="general", subject=_text(payload, "subject"), html_message=message
    )
    return Outcome(None, looked_up=False)


def _add_payment(
    client: WhmcsClient,
    reference: str,
    payload: Mapping[str, Any],
    target: Target,
    in_doubt: bool,
    options: EffectOptions,
) -> Outcome:
    if target.invoice_id is None:
        raise EffectRefused(
            f"invoice {payload.get('invoice_reference')!r} has no WHMCS id: its create_invoice row has not "
            "been pushed (or was cancelled)"
        )
    amount = _cents(payload, "amount", "amount")
    if amount <= 0:
        raise EffectRefused(f"add_payment amount must be positive, got {amount}")
    gateway = _optional_text(payload, "gateway") or options.payment_method
    if not gateway:
        raise EffectRefused("add_payment needs a gateway: in the payload, or whmcs.payment_method")
    fees = _cents(payload, "fees", "fees") if payload.get("fees") is not None else None
    when = _wall_time(payload, "date", options.zone)
    if in_doubt:
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
        send_confirmation=bool(payload.get("send_confirmation", True)),
    )
    return Outcome(None, looked_up=False)


# -- payload readers ------------------------------------------------------------------------------------


def _client_id(target: Target) -> int:
    if target.whmcs_client_id is None:
        raise EffectRefused("the client has no WHMCS client yet")
    return target.whmcs_client_id


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise EffectRefused(f"payload field {key!r} is missing or empty")
    return value.strip()


def _optional_text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise EffectRefused(f"payload field {key!r} is not text")
    return value.strip() or None


def _cents(payload: Mapping[str, Any], key: str, what: str) -> Decimal:
    """An amount from its exact decimal string; one with fractions of a cent is refused, never rounded."""
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise EffectRefused(f'{what} must be a decimal string such as "12.30", got {value!r}')
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise EffectRefused(f"{what} {value!r} is not a number") from None
    if not amount.is_finite() or amount != amount.quantize(CENT):
        raise EffectRefused(f"{what} {value!r} is not an amount in cents")
    return amount


def _day(payload: Mapping[str, Any], key: str) -> date:
    try:
        return date.fromisoformat(_text(payload, key))
    except ValueError:
        raise EffectRefused(f"payload field {key!r} is not a date YYYY-MM-DD") from None


def _wall_time(payload: Mapping[str, Any], key: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 instant with an offset, as WHMCS's wall time (its dates carry no zone, section 7)."""
    try:
        instant = datetime.fromisoformat(_text(payload, key))
    except ValueError:
        raise EffectRefused(f"payload field {key!r} is not an ISO 8601 date-time") from None
    if instant.tzinfo is None:
        raise EffectRefused(f"payload field {key!r} has no UTC offset; the bridge never guesses a zone")
    return instant.astimezone(zone).replace(tzinfo=None)


def _with_reference(text: str, reference: str) -> str:
    """The text as given when it carries the reference (the lookup finds it there), else with it added."""
    if contains_reference(text, reference):
        return text
    return f"{text} ({reference})" if text else reference
