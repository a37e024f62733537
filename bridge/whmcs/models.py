"""What WHMCS gives back, as frozen values with exact types, and the parsers that build them.

Each ``parse_*`` takes one JSON object (already unflattened) and the dotted path it sits at, so a value in
an unknown shape is reported with its place (``invoices.invoice[3].total``). Only the fields the bridge
uses are kept; fields WHMCS does not always send default to empty values, while the ids and amounts we
rely on are required.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from bridge.whmcs.shapes import (
    ShapeError,
    nested_list,
    to_bool,
    to_date,
    to_datetime,
    to_id,
    to_int,
    to_money,
    to_str,
)

T = TypeVar("T")
ZERO = Decimal("0.00")


class InvoiceLine(NamedTuple):
    """One line to put on a new invoice; ``amount`` in the client's currency, already rounded to cents."""

    description: str
    amount: Decimal
    taxed: bool = False


@dataclass(frozen=True)
class Client:
    """A WHMCS client. ``currency_id``, ``currency_code``, ``credit``, ``default_gateway`` and the tax
    identity (``country``, ``tax_id``, ``tax_exempt``) are only known from GetClientsDetails; GetClients
    leaves them ``None``. ``tax_id`` is also None from a WHMCS that does not say it (before 7.7)."""

    id: int
    email: str
    firstname: str
    lastname: str
    companyname: str
    status: str
    currency_id: int | None = None
    currency_code: str | None = None
    credit: Decimal | None = None
    default_gateway: str | None = None
    country: str | None = None
    tax_id: str | None = None
    tax_exempt: bool | None = None


@dataclass(frozen=True)
class Currency:
    """A currency WHMCS bills in (GetCurrencies): its id, which AddClient takes, and its ISO 4217 code."""

    id: int
    code: str


@dataclass(frozen=True)
class ClientPage:
    """One page of GetClients: ``total`` matches overall, ``start`` the offset of the first one here."""

    clients: tuple[Client, ...]
    total: int
    start: int


@dataclass(frozen=True)
class InvoiceItem:
    """A line of an existing invoice (GetInvoice only)."""

    id: int
    type: str
    rel_id: int
    description: str
    amount: Decimal
    taxed: bool


@dataclass(frozen=True)
class Transaction:
    """A payment (amount_in), refund (amount_out) or other money movement recorded in WHMCS."""

    id: int
    user_id: int
    gateway: str
    date: dt.datetime | None
    description: str
    amount_in: Decimal
    fees: Decimal
    amount_out: Decimal
    trans_id: str
    invoice_id: int
    refund_id: int


@dataclass(frozen=True)
class Invoice:
    """A WHMCS invoice.

    ``balance`` (left to pay), ``items`` and ``transactions`` come from GetInvoice only; from GetInvoices
    they are ``None`` and empty. ``notes`` is printed on the invoice and carries our reference.
    ``date_paid`` is naive, in WHMCS's own time zone.
    """

    id: int
    user_id: int
    invoice_num: str
    status: str
    date: dt.date | None
    due_date: dt.date | None
    date_paid: dt.datetime | None
    subtotal: Decimal
    credit: Decimal
    tax: Decimal
    tax2: Decimal
    total: Decimal
    payment_method: str
    notes: str
    currency_code: str | None = None
    balance: Decimal | None = None
    items: tuple[InvoiceItem, ...] = ()
    transactions: tuple[Transaction, ...] = ()


@dataclass(frozen=True)
class CreatedInvoice:
    """What CreateInvoice answers: the new id and the status it was created in (``Unpaid``, ``Draft``)."""

    invoice_id: int
    status: str


@dataclass(frozen=True)
class Credit:
    """One entry of a client's credit log; applied credit shows as a negative amount."""

    id: int
    date: dt.date | None
    description: str
    amount: Decimal
    rel_id: int


@dataclass(frozen=True)
class PayMethod:
    """A stored pay method. The gateway's remote token itself is not kept (it is the gateway's key to
    charge the customer); ``has_remote_token`` is all the agreement check needs."""

    id: int
    type: str
    description: str
    gateway_name: str
    has_remote_token: bool
    card_last_four: str
    expiry_date: str


class Fields:
    """Typed reads from one JSON object, each error naming ``<path>.<key>``."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def _get(self, key: str, convert: Callable[[Any, str], T], default: T | None) -> T:
        where = f"{self.path}.{key}" if self.path else key
        if key not in self.data or self.data[key] is None:
            if default is None:
                raise ShapeError(where, "missing")
            return default
        return convert(self.data[key], where)

    def integer(self, key: str, default: int | None = None) -> int:
        return self._get(key, to_int, default)

    def identifier(self, key: str) -> int:
        """A record id, required and positive."""
        return self._get(key, to_id, None)

    def amount(self, key: str, default: Decimal | None = None) -> Decimal:
        return self._get(key, to_money, default)

    def text(self, key: str) -> str:
        return self._get(key, to_str, "")

    def flag(self, key: str) -> bool:
        return self._get(key, to_bool, False)

    def day(self, key: str) -> dt.date | None:
        return to_date(self.data.get(key), f"{self.path}.{key}")

    def moment(self, key: str) -> dt.datetime | None:
        return to_datetime(self.data.get(key), f"{self.path}.{key}")

    def optional_amount(self, key: str) -> Decimal | None:
        value = self.data.get(key)
        return None if value is None or value == "" else to_money(value, f"{self.path}.{key}")


def parse_client(data: Mapping[str, Any], path: str) -> Client:
    f = Fields(data, path)
    currency = data.get("currency")
    return Client(
        id=f.identifier("id") if "id" in data else f.identifier("userid"),
        email=f.text("email"),
        firstname=f.text("firstname"),
        lastname=f.text("lastname"),
        companyname=f.text("companyname"),
        status=f.text("status"),
        currency_id=None if currency in (None, "") else f.integer("currency"),
        currency_code=f.text("currency_code") or None,
        credit=f.optional_amount("credit"),
        default_gateway=f.text("defaultgateway") if "defaultgateway" in data else None,
        country=(f.text("countrycode") or f.text("country")).upper() or None,
        tax_id=f.text("tax_id") if "tax_id" in data else None,
        tax_exempt=f.flag("taxexempt") if "taxexempt" in data else None,
    )


def parse_summary_client(data: Mapping[str, Any], path: str) -> Client:
    """A client from GetClients, which has no currency, credit or gateway."""
    f = Fields(data, path)
    return Client(
        id=f.identifier("id"),
        email=f.text("email"),
        firstname=f.text("firstname"),
        lastname=f.text("lastname"),
        companyname=f.text("companyname"),
        status=f.text("status"),
    )


def parse_item(data: Mapping[str, Any], path: str) -> InvoiceItem:
    f = Fields(data, path)
    return InvoiceItem(
        id=f.integer("id"),
        type=f.text("type"),
        rel_id=f.integer("relid", 0),
        description=f.text("description"),
        amount=f.amount("amount"),
        taxed=f.flag("taxed"),
    )


def parse_transaction(data: Mapping[str, Any], path: str) -> Transaction:
    f = Fields(data, path)
    return Transaction(
        id=f.identifier("id"),
        user_id=f.integer("userid", 0),
        gateway=f.text("gateway"),
        date=f.moment("date"),
        description=f.text("description"),
        amount_in=f.amount("amountin", ZERO),
        fees=f.amount("fees", ZERO),
        amount_out=f.amount("amountout", ZERO),
        trans_id=f.text("transid"),
        invoice_id=f.integer("invoiceid", 0),
        refund_id=f.integer("refundid", 0),
    )


def parse_invoice(data: Mapping[str, Any], path: str) -> Invoice:
    """An invoice from a GetInvoices entry (key ``id``) or a whole GetInvoice body (key ``invoiceid``)."""
    f = Fields(data, path)
    return Invoice(
        id=f.identifier("id") if "id" in data else f.identifier("invoiceid"),
        user_id=f.identifier("userid"),
        invoice_num=f.text("invoicenum"),
        status=f.text("status"),
        date=f.day("date"),
        due_date=f.day("duedate"),
        date_paid=f.moment("datepaid"),
        subtotal=f.amount("subtotal", ZERO),
        credit=f.amount("credit", ZERO),
        tax=f.amount("tax", ZERO),
        tax2=f.amount("tax2", ZERO),
        total=f.amount("total"),
        payment_method=f.text("paymentmethod"),
        notes=f.text("notes"),
        currency_code=f.text("currencycode") or None,
        balance=f.optional_amount("balance"),
        items=parse_list(data, "items", "item", parse_item),
        transactions=parse_list(data, "transactions", "transaction", parse_transaction),
    )


def parse_credit(data: Mapping[str, Any], path: str) -> Credit:
    f = Fields(data, path)
    return Credit(
        id=f.identifier("id"),
        date=f.day("date"),
        description=f.text("description"),
        amount=f.amount("amount"),
        rel_id=f.integer("relid", 0),
    )


def parse_currency(data: Mapping[str, Any], path: str) -> Currency:
    f = Fields(data, path)
    return Currency(id=f.identifier("id"), code=f.text("code").strip().upper())


def parse_pay_method(data: Mapping[str, Any], path: str) -> PayMethod:
    f = Fields(data, path)
    return PayMethod(
        id=f.integer("id"),
        type=f.text("type"),
        description=f.text("description"),
        gateway_name=f.text("gateway_name"),
        has_remote_token=bool(f.text("remote_token").strip()),
        card_last_four=f.text("card_last_four"),
        expiry_date=f.text("expiry_date"),
    )


def parse_list(
    body: Mapping[str, Any], outer: str, inner: str, parse: Callable[[Mapping[str, Any], str], T]
) -> tuple[T, ...]:
    """Every entry of the list at ``body[outer][inner]``, parsed, whatever shape WHMCS gave it."""
    return tuple(
        parse(item, f"{outer}.{inner}[{index}]") for index, item in enumerate(nested_list(body, outer, inner))
    )
