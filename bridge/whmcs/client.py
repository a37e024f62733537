"""The typed WHMCS API client the rest of the bridge uses; nothing else talks to WHMCS.

Each method is one WHMCS action (or a lookup built on one), takes Python values, and returns frozen
dataclasses from :mod:`bridge.whmcs.models`. Failures are the typed errors of :mod:`bridge.whmcs.errors`.

Reads (``get_*``, ``find_*``, ``has_agreement``) are retried on transport failures; writes are sent exactly
once. A write that fails in transport raises ``WhmcsTransportError`` with ``in_doubt=True``; settle it with
the matching lookup before sending again:

=====================  ====================================================
write                  lookup
=====================  ====================================================
add_client             get_clients_details(email=...)
create_invoice         find_invoice_by_reference(user_id, reference in notes)
add_credit             find_credit_by_reference(client_id, reference in description)
add_invoice_payment    find_transaction(trans_id)
=====================  ====================================================
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from types import TracebackType
from typing import Any, Literal, TypeVar

import requests

from bridge.errors import ConfigError
from bridge.logs import get_logger
from bridge.whmcs.errors import WhmcsBusinessError, WhmcsDuplicateError, WhmcsResponseError
from bridge.whmcs.models import (
    Client,
    ClientPage,
    CreatedInvoice,
    Credit,
    Currency,
    Invoice,
    InvoiceLine,
    PayMethod,
    Transaction,
    parse_client,
    parse_credit,
    parse_currency,
    parse_invoice,
    parse_list,
    parse_pay_method,
    parse_summary_client,
    parse_transaction,
)
from bridge.whmcs.reference import check_reference, contains_reference
from bridge.whmcs.settings import WhmcsSettings
from bridge.whmcs.shapes import ShapeError, as_list, format_amount, to_id, to_int, to_money, to_str
from bridge.whmcs.transport import FormValue, Transport, Wait

T = TypeVar("T")
log = get_logger(__name__)

InvoiceStatus = Literal["Draft", "Unpaid", "Paid", "Cancelled", "Refunded", "Collections", "Payment Pending"]
EmailType = Literal["general", "product", "domain", "invoice", "support", "affiliate"]

_CLIENT_NOT_FOUND = "client not found"
_INVOICE_NOT_FOUND = "invoice id not found"
_MAX_PAGES = 10_000


class WhmcsClient:
    """WHMCS's External API (``<url>/includes/api.php``) over one ``requests.Session``.

    ``url`` is WHMCS's base address; ``identifier``/``secret`` an API credential; ``access_key`` the
    optional ``$api_access_key`` that bypasses the IP allow-list. ``verify`` is ``requests``' TLS setting
    (a flag or a CA bundle path). ``read_attempts`` bounds the tries of a read, ``wait`` is the tenacity wait
    between them (default: jittered exponential backoff), and ``page_size`` is the ``limitnum`` of paged
    reads. Not safe to share between threads: give each thread its own client.
    """

    def __init__(
        self,
        url: str,
        identifier: str,
        secret: str,
        *,
        access_key: str | None = None,
        verify: bool | str = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        read_attempts: int = 4,
        wait: Wait | None = None,
        session: requests.Session | None = None,
        page_size: int = 100,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.url = url.rstrip("/")
        self.page_size = page_size
        self._transport = Transport(
            url,
            identifier,
            secret,
            access_key=access_key,
            verify=verify,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            read_attempts=read_attempts,
            wait=wait,
            session=session,
            sleep=sleep,
        )

    @classmethod
    def from_settings(
        cls,
        settings: WhmcsSettings,
        *,
        read_attempts: int = 4,
        wait: Wait | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> WhmcsClient:
        """A client for the ``[whmcs]`` section; refuses a section without url, identifier or secret."""
        if settings.url is None or settings.identifier is None or settings.secret is None:
            raise ConfigError("whmcs.url, whmcs.identifier and whmcs.secret must all be set to talk to WHMCS")
        return cls(
            settings.url,
            settings.identifier,
            settings.secret.get_secret_value(),
            access_key=settings.access_key.get_secret_value() if settings.access_key else None,
            verify=settings.verify,
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            read_attempts=read_attempts,
            wait=wait,
            session=session,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        return f"WhmcsClient(url={self.url!r})"

    def __enter__(self) -> WhmcsClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()

    def guard_calls(self, check: Callable[[], None]) -> None:
        """Call ``check`` before every request (each try of a read included); what it raises stops the
        call before anything is sent. The push checks its lease here."""
        self._transport.guard = check

    def call(self, action: str, params: Mapping[str, FormValue | None], *, write: bool) -> dict[str, Any]:
        """Any action, raw: the decoded success body. ``write=True`` sends once and never retries."""
        return self._transport.call(action, params, write=write)

    # -- clients ---------------------------------------------------------------------------------------

    def get_clients_details(self, *, email: str | None = None, client_id: int | None = None) -> Client | None:
        """The client with exactly this email (or id), or None when WHMCS has none ("Client Not Found")."""
        if (email is None) == (client_id is None):
            raise ValueError("get_clients_details takes exactly one of email= and client_id=")
        action = "GetClientsDetails"
        try:
            body = self.call(action, {"email": email, "clientid": client_id}, write=False)
        except WhmcsBusinessError as error:
            if error.message.strip().lower() == _CLIENT_NOT_FOUND:
                return None
            raise
        data = body.get("client")
        client = data if isinstance(data, dict) else body
        return self._parse(action, False, lambda: parse_client(client, "client"))

    def get_clients(
        self, *, search: str | None = None, limitstart: int = 0, limitnum: int = 25
    ) -> ClientPage:
        """One page of clients whose email, names or company *start with* ``search``."""
        action = "GetClients"
        body = self.call(
            action, {"search": search, "limitstart": limitstart, "limitnum": limitnum}, write=False
        )

        def parse() -> ClientPage:
            clients = parse_list(body, "clients", "client", parse_summary_client)
            total = to_int(body.get("totalresults", len(clients)), "totalresults")
            start = to_int(body.get("startnumber", limitstart), "startnumber")
            return ClientPage(clients=clients, total=total, start=start)

        return self._parse(action, False, parse)

    def find_clients_by_email(self, email: str) -> tuple[Client, ...]:
        """Every client whose email is exactly ``email`` (case-insensitively), oldest first.

        GetClients searches by prefix, so the matches are filtered here; WHMCS checks an email is unused
        in AddClient, not in its database, so two AddClient calls that overlap can both pass that check.
        """
        wanted = email.strip().lower()
        found: dict[int, Client] = {}
        for _ in range(_MAX_PAGES):
            page = self.get_clients(search=email, limitstart=len(found), limitnum=self.page_size)
            fresh = [client for client in page.clients if client.id not in found]
            found.update((client.id, client) for client in page.clients)
            if not fresh or len(found) >= page.total:
                break
        return tuple(found[key] for key in sorted(found) if found[key].email.strip().lower() == wanted)

    def count_products(self, client_id: int) -> int:
        """How many products and services the client has (GetClientsProducts ``totalresults``)."""
        action = "GetClientsProducts"
        body = self.call(action, {"clientid": client_id, "limitnum": 1}, write=False)
        return self._parse(action, False, lambda: to_int(body.get("totalresults", 0), "totalresults"))

    def close_client(self, client_id: int) -> None:
        """CloseClient: WHMCS sets the client Closed, cancels its invoices and ends its products. Only
        for a client that holds nothing (the caller checks): it cannot be undone by the API."""
        self.call("CloseClient", {"clientid": client_id}, write=True)

    def add_client(
        self,
        *,
        firstname: str,
        lastname: str,
        email: str,
        address1: str | None = None,
        address2: str | None = None,
        city: str | None = None,
        state: str | None = None,
        postcode: str | None = None,
        country: str | None = None,
        phonenumber: str | None = None,
        companyname: str | None = None,
        tax_id: str | None = None,
        currency_id: int | None = None,
        password: str | None = None,
        notes: str | None = None,
        send_welcome: bool = False,
        skip_validation: bool = False,
    ) -> int:
        """Create a client and return its id.

        ``tax_id`` is the client's VAT ID (WHMCS 7.7+). ``password`` defaults to a random one the client
        never learns (they reset it to log in). A taken
        email raises WhmcsBusinessError with ``duplicate_email`` True: recover with
        ``get_clients_details(email=)``. In doubt: the same lookup tells whether it was created.
        """
        action = "AddClient"
        params: dict[str, FormValue | None] = {
            "firstname": firstname,
            "lastname": lastname,
            "email": email,
            "address1": address1,
            "address2": address2,
            "city": city,
            "state": state,
            "postcode": postcode,
            "country": country,
            "phonenumber": phonenumber,
            "companyname": companyname,
            "tax_id": tax_id,
            "currency": currency_id,
            "password2": password if password is not None else secrets.token_urlsafe(24),
            "notes": notes,
            "noemail": not send_welcome,
            "skipvalidation": True if skip_validation else None,
        }
        body = self.call(action, params, write=True)
        return self._required_id(action, body, "clientid")

    def get_currencies(self) -> tuple[Currency, ...]:
        """Every currency WHMCS bills in, with the id AddClient's ``currency`` takes."""
        action = "GetCurrencies"
        body = self.call(action, {}, write=False)
        return self._parse(action, False, lambda: parse_list(body, "currencies", "currency", parse_currency))

    def update_client(self, client_id: int, **fields: FormValue) -> None:
        """Set client fields (``companyname=``, ``status=``, ``paymentmethod=``, ``country=``, ``tax_id=``,
        ``taxexempt=`` ...). Safe to repeat: it sets values, it creates nothing."""
        if not fields:
            raise ValueError("update_client needs at least one field to change")
        if "clientid" in fields or "clientemail" in fields:
            raise ValueError("update_client: pass the client as client_id, not as a field")
        self.call("UpdateClient", {"clientid": client_id, **fields}, write=True)

    # -- invoices --------------------------------------------------------------------------------------

    def create_invoice(
        self,
        user_id: int,
        items: Sequence[InvoiceLine | tuple[str, Decimal, bool]],
        *,
        date: date,
        due_date: date,
        notes: str,
        send: bool = False,
        draft: bool = False,
        payment_method: str | None = None,
        auto_apply_credit: bool = False,
    ) -> CreatedInvoice:
        """Create an invoice with these lines; ``notes`` (printed on it) should carry our reference.

        ``draft=True`` creates it invisible to the client; publish it with
        ``update_invoice(publish=True)`` or ``publish_and_send=True``. WHMCS refuses ``send`` with ``draft``,
        and so does this method, before any call. In doubt: ``find_invoice_by_reference``.
        """
        if send and draft:
            raise ValueError(
                "create_invoice: WHMCS cannot create and send a draft in one request; "
                "create the draft, then update_invoice(invoice_id, publish_and_send=True)"
            )
        if not items:
            raise ValueError("create_invoice needs at least one line")
        action = "CreateInvoice"
        params: dict[str, FormValue | None] = {
            "userid": user_id,
            "date": date,
            "duedate": due_date,
            "notes": notes,
            "paymentmethod": payment_method,
            "sendinvoice": True if send else None,
            "draft": True if draft else None,
            "autoapplycredit": auto_apply_credit,
            **_numbered_lines(items),
        }
        body = self.call(action, params, write=True)
        invoice_id = self._required_id(action, body, "invoiceid")
        status = to_str(body.get("status"), "status") or ("Draft" if draft else "Unpaid")
        return CreatedInvoice(invoice_id=invoice_id, status=status)

    def update_invoice(
        self,
        invoice_id: int,
        *,
        status: InvoiceStatus | None = None,
        publish: bool = False,
        publish_and_send: bool = False,
        notes: str | None = None,
        due_date: date | None = None,
        payment_method: str | None = None,
    ) -> None:
        """Change an invoice's status, notes, due date or gateway, or publish a draft (optionally emailing
        it). Publishing a non-draft is a WhmcsBusinessError; publishing twice is therefore detectable."""
        if publish and publish_and_send:
            raise ValueError("update_invoice: pass publish or publish_and_send, not both")
        params: dict[str, FormValue | None] = {
            "invoiceid": invoice_id,
            "status": status,
            "publish": True if publish else None,
            "publishandsendemail": True if publish_and_send else None,
            "notes": notes,
            "duedate": due_date,
            "paymentmethod": payment_method,
        }
        if all(value is None for key, value in params.items() if key != "invoiceid"):
            raise ValueError("update_invoice needs something to change")
        self.call("UpdateInvoice", params, write=True)

    def get_invoice(self, invoice_id: int) -> Invoice | None:
        """The invoice with its lines, balance and transactions, or None if WHMCS has no such id."""
        action = "GetInvoice"
        try:
            body = self.call(action, {"invoiceid": invoice_id}, write=False)
        except WhmcsBusinessError as error:
            if error.message.strip().lower() == _INVOICE_NOT_FOUND:
                return None
            raise
        return self._parse(action, False, lambda: parse_invoice(body, ""))

    def get_invoices(self, user_id: int, *, status: str | None = None) -> tuple[Invoice, ...]:
        """Every invoice of the client (optionally of one status, or ``Overdue``), oldest first.

        Pages with ``orderby=id&order=asc`` so an invoice created meanwhile lands on a later page instead of
        shifting earlier ones; stops when a page comes back empty or the total is reached.
        """
        action = "GetInvoices"
        found: dict[int, Invoice] = {}
        for _ in range(_MAX_PAGES):
            params: dict[str, FormValue | None] = {
                "userid": user_id,
                "status": status,
                "orderby": "id",
                "order": "asc",
                "limitstart": len(found),
                "limitnum": self.page_size,
            }
            body = self.call(action, params, write=False)
            page, total = self._parse(action, False, partial(_invoice_page, body))
            if page and all(invoice.id in found for invoice in page):
                raise WhmcsResponseError(action, "paging returned the same invoices again", in_doubt=False)
            found.update((invoice.id, invoice) for invoice in page)
            if _last_page(len(page), len(found), total, self.page_size):
                break
        return tuple(found[key] for key in sorted(found))

    def find_invoices_by_reference(self, user_id: int, reference: str) -> tuple[Invoice, ...]:
        """Every invoice of the client whose notes carry ``reference`` as a whole token, oldest first."""
        check_reference(reference)
        return tuple(i for i in self.get_invoices(user_id) if contains_reference(i.notes, reference))

    def find_invoice_by_reference(self, user_id: int, reference: str) -> Invoice | None:
        """The one invoice carrying ``reference``, or None.

        Cancelled invoices only count when nothing else matches (an operator who cancelled a duplicate has
        resolved it). Several live matches raise WhmcsDuplicateError naming their ids.
        """
        matches = self.find_invoices_by_reference(user_id, reference)
        live = [invoice for invoice in matches if invoice.status != "Cancelled"]
        if len(live) > 1:
            raise WhmcsDuplicateError("GetInvoices", reference, "invoices", tuple(i.id for i in live))
        if live:
            return live[0]
        return matches[-1] if matches else None

    # -- credit ----------------------------------------------------------------------------------------

    def add_credit(
        self, client_id: int, amount: Decimal, description: str, date: date | None = None
    ) -> Decimal:
        """Add ``amount`` (> 0, in cents) to the client's credit; returns the new balance.

        ``description`` (admin-only) should carry our reference. In doubt: ``find_credit_by_reference``.
        """
        if amount <= 0:
            raise ValueError(f"add_credit amount must be positive, got {amount}")
        action = "AddCredit"
        params: dict[str, FormValue | None] = {
            "clientid": client_id,
            "amount": amount,
            "description": description,
            "date": date,
            "type": "add",
        }
        body = self.call(action, params, write=True)
        if "newbalance" not in body:
            raise WhmcsResponseError(action, "success without newbalance", in_doubt=True, field="newbalance")
        return self._parse(action, True, lambda: to_money(body["newbalance"], "newbalance"))

    def get_credits(self, client_id: int) -> tuple[Credit, ...]:
        """The client's credit log; applied credit shows as negative entries."""
        action = "GetCredits"
        body = self.call(action, {"clientid": client_id}, write=False)
        return self._parse(action, False, lambda: parse_list(body, "credits", "credit", parse_credit))

    def find_credit_by_reference(self, client_id: int, reference: str) -> Credit | None:
        """The one credit entry whose description carries ``reference``, or None; several raise."""
        check_reference(reference)
        matches = [c for c in self.get_credits(client_id) if contains_reference(c.description, reference)]
        if len(matches) > 1:
            raise WhmcsDuplicateError("GetCredits", reference, "credit entries", tuple(c.id for c in matches))
        return matches[0] if matches else None

    # -- payments and transactions ---------------------------------------------------------------------

    def add_invoice_payment(
        self,
        invoice_id: int,
        trans_id: str,
        gateway: str,
        amount: Decimal,
        date: datetime,
        *,
        fees: Decimal | None = None,
        send_confirmation: bool = True,
    ) -> None:
        """Record a payment of ``amount`` on the invoice; WHMCS marks it Paid when nothing is left.

        ``date`` is WHMCS's wall time (its PHP time zone). ``trans_id`` must be unique per payment: WHMCS
        does not enforce it here, so in doubt look it up with ``find_transaction`` before sending again.
        """
        if amount <= 0:
            raise ValueError(f"add_invoice_payment amount must be positive, got {amount}")
        params: dict[str, FormValue | None] = {
            "invoiceid": invoice_id,
            "transid": trans_id,
            "gateway": gateway,
            "amount": amount,
            "fees": fees,
            "date": date,
            "noemail": not send_confirmation,
        }
        self.call("AddInvoicePayment", params, write=True)

    def get_transactions(
        self, *, invoice_id: int | None = None, client_id: int | None = None, trans_id: str | None = None
    ) -> tuple[Transaction, ...]:
        """Transactions matching every filter given (at least one is required)."""
        if invoice_id is None and client_id is None and trans_id is None:
            raise ValueError("get_transactions needs invoice_id=, client_id= or trans_id=")
        action = "GetTransactions"
        params: dict[str, FormValue | None] = {
            "invoiceid": invoice_id,
            "clientid": client_id,
            "transid": trans_id,
        }
        body = self.call(action, params, write=False)
        found = self._parse(
            action, False, lambda: parse_list(body, "transactions", "transaction", parse_transaction)
        )
        return tuple(t for t in found if _matches(t, invoice_id, client_id, trans_id))

    def find_transaction(self, trans_id: str, *, invoice_id: int | None = None) -> Transaction | None:
        """The one transaction with exactly this ``trans_id`` (on this invoice, if given), or None."""
        matches = self.get_transactions(trans_id=trans_id, invoice_id=invoice_id)
        if len(matches) > 1:
            raise WhmcsDuplicateError(
                "GetTransactions", trans_id, "transactions", tuple(t.id for t in matches)
            )
        return matches[0] if matches else None

    # -- pay methods and email -------------------------------------------------------------------------

    def get_pay_methods(self, client_id: int) -> tuple[PayMethod, ...]:
        """The client's stored pay methods (WHMCS 7.8+)."""
        action = "GetPayMethods"
        body = self.call(action, {"clientid": client_id}, write=False)

        def parse() -> tuple[PayMethod, ...]:
            entries = as_list(body.get("paymethods"), "paymethods")
            return tuple(parse_pay_method(entry, f"paymethods[{i}]") for i, entry in enumerate(entries))

        return self._parse(action, False, parse)

    def has_agreement(self, client_id: int, gateways: Sequence[str] = ()) -> bool:
        """Whether the client has a billing agreement: a pay method with a remote token, from one of
        ``gateways`` (matched as name prefixes, case-insensitively) when any are given.

        A failed lookup raises; it never means "no agreement" (keep the last known status instead).
        """
        prefixes = tuple(gateway.lower() for gateway in gateways if gateway)
        for method in self.get_pay_methods(client_id):
            if method.has_remote_token and (not prefixes or method.gateway_name.lower().startswith(prefixes)):
                return True
        return False

    def send_email(
        self,
        related_id: int,
        *,
        template: str | None = None,
        custom_type: EmailType | None = None,
        subject: str | None = None,
        html_message: str | None = None,
    ) -> None:
        """Send a template email (``template``) or a custom one (``custom_type`` + ``subject`` +
        ``html_message``). ``related_id`` is the client id for general mail, the invoice id for invoice mail.

        Never retried: a second call sends a second email, and WHMCS offers no way to look one up.
        """
        if (template is None) == (custom_type is None):
            raise ValueError("send_email takes exactly one of template= and custom_type=")
        if custom_type is not None and not (subject and html_message):
            raise ValueError("send_email: a custom email needs subject= and html_message=")
        params: dict[str, FormValue | None] = {
            "id": related_id,
            "messagename": template,
            "customtype": custom_type,
            "customsubject": subject,
            "custommessage": html_message,
        }
        self.call("SendEmail", params, write=True)

    # -- helpers ---------------------------------------------------------------------------------------

    def _parse(self, action: str, write: bool, parse: Callable[[], T]) -> T:
        """Run a parser over a success body, turning a shape problem into WhmcsResponseError."""
        try:
            return parse()
        except ShapeError as error:
            raise WhmcsResponseError(
                action, self._transport.redact(error.problem), in_doubt=write, field=error.field
            ) from None

    def _required_id(self, action: str, body: Mapping[str, Any], key: str) -> int:
        """The id a write answered with. A success without one, or with one that is no id (``0``, ``-7``,
        text), is refused as a vendor error and in doubt: the write may have been applied, so the caller
        looks its reference up later instead of recording a made-up id (research section 2)."""
        try:
            if body.get(key) in (None, ""):
                raise WhmcsResponseError(action, f"success without {key}", in_doubt=True, field=key)
            return self._parse(action, True, lambda: to_id(body[key], key))
        except WhmcsResponseError as error:
            log.warning("whmcs.reply_refused", action=action, field=key, error=str(error))
            raise


def _numbered_lines(items: Sequence[InvoiceLine | tuple[str, Decimal, bool]]) -> dict[str, FormValue]:
    """CreateInvoice's flat numbered item keys: itemdescription1, itemamount1, itemtaxed1, ..."""
    fields: dict[str, FormValue] = {}
    for number, (description, amount, taxed) in enumerate(items, start=1):
        if not description.strip():
            raise ValueError(f"create_invoice line {number} has an empty description")
        fields[f"itemdescription{number}"] = description
        fields[f"itemamount{number}"] = format_amount(amount, f"line {number} amount")
        fields[f"itemtaxed{number}"] = bool(taxed)
    return fields


def _invoice_page(body: Mapping[str, Any]) -> tuple[tuple[Invoice, ...], int | None]:
    invoices = parse_list(body, "invoices", "invoice", parse_invoice)
    total = body.get("totalresults")
    return invoices, None if total in (None, "") else to_int(total, "totalresults")


def _last_page(returned: int, read: int, total: int | None, page_size: int) -> bool:
    """Stop on an empty page, once ``totalresults`` are read, or (with no total) on a short page."""
    if returned == 0:
        return True
    return read >= total if total is not None else returned < page_size


def _matches(t: Transaction, invoice_id: int | None, client_id: int | None, trans_id: str | None) -> bool:
    """Filter again on our side: an older WHMCS that ignores a filter must not hand back strangers."""
    return (
        (invoice_id is None or t.invoice_id == invoice_id)
        and (client_id is None or t.user_id == client_id)
        and (trans_id is None or t.trans_id == trans_id)
    )
