"""The effects the bridge has on other systems, as typed intents (what an outbox row asks for).

Every change that must reach WHMCS or a cloud is written as one of these values, in the transaction of the
change that causes it (bridge/store/outbox.py encodes it once, as JSON with money as strings); the push
reads the row back as the same value, so what is sent and what ``push --dry-run`` says are both derived
from it. A value holds only what the effect is about, never how it is sent: the WHMCS calls live in
bridge/whmcs/effects.py, the cloud calls in bridge/sync/cloud_actions.py.

:func:`decode` is strict where a wrong value would send something wrong (a missing email, an amount that
is not a number) and raises ValueError naming the field; the push parks such a row for the operator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, Literal


class EffectKind(StrEnum):
    ADD_CLIENT = "add_client"
    UPDATE_CLIENT = "update_client"
    CREATE_INVOICE = "create_invoice"
    CANCEL_INVOICE = "cancel_invoice"
    ADD_CREDIT = "add_credit"
    ADD_PAYMENT = "add_payment"
    SEND_EMAIL = "send_email"
    MAIL_CLIENT = "mail_client"
    SUSPEND_SERVER = "suspend_server"
    RESUME_SERVER = "resume_server"
    SHELVE_SERVER = "shelve_server"
    UNSHELVE_SERVER = "unshelve_server"
    DELETE_SERVER = "delete_server"
    DISABLE_PROJECT = "disable_project"
    ENABLE_PROJECT = "enable_project"


CLOUD_KINDS = frozenset(
    {
        EffectKind.SUSPEND_SERVER,
        EffectKind.RESUME_SERVER,
        EffectKind.SHELVE_SERVER,
        EffectKind.UNSHELVE_SERVER,
        EffectKind.DELETE_SERVER,
        EffectKind.DISABLE_PROJECT,
        EffectKind.ENABLE_PROJECT,
    }
)
"""Effects on the clouds (bridge/sync/cloud_actions.py carries them out)."""

MAIL_KINDS = frozenset({EffectKind.MAIL_CLIENT})
"""Mails the bridge sends itself (bridge/sync/mail_delivery.py), without WHMCS."""

LOCAL_KINDS = CLOUD_KINDS | MAIL_KINDS
"""Effects the bridge carries out itself; every other kind goes to WHMCS (bridge/sync/push.py)."""

CLIENT_FIELDS = ("email", "firstname", "lastname", "companyname")
"""The client fields the bridge owns in WHMCS (add_client and update_client)."""

TAX_FIELDS = ("country", "tax_id", "taxexempt")
"""The client's tax identity as WHMCS's tax rules read it (UpdateClient's names): its ISO country, its
tax ID (WHMCS 7.7+; ``""`` clears it) and its tax-exempt flag."""


# -- WHMCS clients ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddClient:
    """Create the client in WHMCS, or adopt the one WHMCS has with that email (in the same currency)."""

    kind: ClassVar[EffectKind] = EffectKind.ADD_CLIENT
    email: str
    firstname: str = ""
    lastname: str = ""
    currency: str | None = None
    companyname: str | None = None
    country: str | None = None
    """The client's ISO country; None: ``whmcs.default_country`` (WHMCS requires one)."""
    tax_id: str | None = None
    """The client's VAT ID, sent as WHMCS's ``tax_id`` when it has one."""
    taxexempt: bool = False
    """Whether the client is tax exempt; AddClient cannot say it, so an UpdateClient follows."""

    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = {"email": self.email, "firstname": self.firstname, "lastname": self.lastname}
        optional = {
            "currency": self.currency,
            "companyname": self.companyname,
            "country": self.country,
            "tax_id": self.tax_id,
            "taxexempt": self.taxexempt or None,
        }
        found.update((key, value) for key, value in optional.items() if value is not None)
        return found

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> AddClient:
        return cls(
            email=_text(payload, "email"),
            firstname=_optional_text(payload, "firstname") or "",
            lastname=_optional_text(payload, "lastname") or "",
            currency=_optional_text(payload, "currency"),
            companyname=_optional_text(payload, "companyname"),
            country=_optional_text(payload, "country"),
            tax_id=_optional_text(payload, "tax_id"),
            taxexempt=_flag(payload, "taxexempt") if payload.get("taxexempt") is not None else False,
        )


@dataclass(frozen=True)
class UpdateClient:
    """Change the fields given (None: left as WHMCS has it) of the client in WHMCS: its name and email,
    or its tax identity (:data:`TAX_FIELDS`), which is always sent whole, as it stands after the change,
    so that WHMCS's tax rules see the client the bridge taxes."""

    kind: ClassVar[EffectKind] = EffectKind.UPDATE_CLIENT
    email: str | None = None
    firstname: str | None = None
    lastname: str | None = None
    companyname: str | None = None
    country: str | None = None
    tax_id: str | None = None
    """The VAT ID; ``""`` clears the one WHMCS has."""
    taxexempt: bool | None = None

    def fields(self) -> dict[str, str | bool]:
        """The fields to change, in the order WHMCS is told them."""
        named = (*CLIENT_FIELDS, *TAX_FIELDS)
        return {key: value for key in named if (value := getattr(self, key)) is not None}

    def payload(self) -> dict[str, Any]:
        return dict(self.fields())

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> UpdateClient:
        given: dict[str, Any] = {
            key: _text(payload, key) for key in (*CLIENT_FIELDS, "country") if payload.get(key) is not None
        }
        if payload.get("tax_id") is not None:
            given["tax_id"] = _optional_text(payload, "tax_id") or ""
        if payload.get("taxexempt") is not None:
            given["taxexempt"] = _flag(payload, "taxexempt")
        if not given:
            raise ValueError("update_client payload names no field to change")
        return cls(**given)


# -- invoices ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceItem:
    """One line of an invoice as WHMCS shows it."""

    description: str
    amount: Decimal
    taxed: bool = False

    def payload(self) -> dict[str, Any]:
        return {"description": self.description, "amount": self.amount, "taxed": self.taxed}


@dataclass(frozen=True)
class CreateInvoice:
    """Issue an invoice in WHMCS, dated ``issued_on`` and due ``due_on`` (local dates)."""

    kind: ClassVar[EffectKind] = EffectKind.CREATE_INVOICE
    invoice_reference: str
    issued_on: date
    due_on: date
    items: tuple[InvoiceItem, ...]
    notes: str = ""

    @property
    def total(self) -> Decimal:
        return sum((item.amount for item in self.items), Decimal(0))

    def payload(self) -> dict[str, Any]:
        return {
            "invoice_reference": self.invoice_reference,
            "date": self.issued_on.isoformat(),
            "due_date": self.due_on.isoformat(),
            "items": [item.payload() for item in self.items],
            "notes": self.notes,
        }

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> CreateInvoice:
        raw = payload.get("items")
        if not isinstance(raw, list) or not raw:
            raise ValueError("create_invoice payload has no items")
        items = []
        for number, item in enumerate(raw, start=1):
            if not isinstance(item, Mapping):
                raise ValueError(f"create_invoice item {number} is not an object")
            amount = _decimal(item, "amount", f"item {number} amount")
            items.append(InvoiceItem(_text(item, "description"), amount, bool(item.get("taxed", False))))
        return cls(
            invoice_reference=_optional_text(payload, "invoice_reference") or "",
            issued_on=_day(payload, "date"),
            due_on=_day(payload, "due_date"),
            items=tuple(items),
            notes=_optional_text(payload, "notes") or "",
        )


@dataclass(frozen=True)
class CancelInvoice:
    """Cancel in WHMCS an invoice the bridge replaced (issue 8); ``remote_id`` when it was known."""

    kind: ClassVar[EffectKind] = EffectKind.CANCEL_INVOICE
    invoice_reference: str
    remote_id: str | None = None

    def payload(self) -> dict[str, Any]:
        return {"invoice_reference": self.invoice_reference, "remote_id": self.remote_id}

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> CancelInvoice:
        remote = payload.get("remote_id")
        return cls(_text(payload, "invoice_reference"), None if remote is None else str(remote))


# -- money ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddCredit:
    """Add credit to the client in WHMCS."""

    kind: ClassVar[EffectKind] = EffectKind.ADD_CREDIT
    amount: Decimal
    description: str = ""
    on: date | None = None

    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = {"amount": self.amount}
        if self.description:
            found["description"] = self.description
        if self.on is not None:
            found["date"] = self.on.isoformat()
        return found

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> AddCredit:
        return cls(
            amount=_decimal(payload, "amount", "amount"),
            description=_optional_text(payload, "description") or "",
            on=_day(payload, "date") if payload.get("date") else None,
        )


@dataclass(frozen=True)
class AddPayment:
    """Record a payment on an invoice in WHMCS, at instant ``at``."""

    kind: ClassVar[EffectKind] = EffectKind.ADD_PAYMENT
    invoice_reference: str
    amount: Decimal
    at: datetime
    gateway: str | None = None
    fees: Decimal | None = None
    send_confirmation: bool = True

    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "invoice_reference": self.invoice_reference,
            "amount": self.amount,
            "date": self.at.isoformat(),
        }
        if self.gateway is not None:
            found["gateway"] = self.gateway
        if self.fees is not None:
            found["fees"] = self.fees
        if not self.send_confirmation:
            found["send_confirmation"] = False
        return found

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> AddPayment:
        return cls(
            invoice_reference=_optional_text(payload, "invoice_reference") or "",
            amount=_decimal(payload, "amount", "amount"),
            at=_instant(payload, "date"),
            gateway=_optional_text(payload, "gateway"),
            fees=_decimal(payload, "fees", "fees") if payload.get("fees") is not None else None,
            send_confirmation=bool(payload.get("send_confirmation", True)),
        )


@dataclass(frozen=True)
class SendEmail:
    """A custom general email to the client through WHMCS (a client notification, when WHMCS is the
    billing system): plain text, sent as HTML with its line breaks kept."""

    kind: ClassVar[EffectKind] = EffectKind.SEND_EMAIL
    subject: str
    message: str

    def payload(self) -> dict[str, Any]:
        return {"subject": self.subject, "message": self.message}

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> SendEmail:
        return cls(_text(payload, "subject"), _text(payload, "message"))


@dataclass(frozen=True)
class MailClient:
    """A client notification the bridge mails itself (SMTP or the file sink), rendered when it was decided:
    ``event`` names its template, ``invoice_reference`` the invoice whose PDF is attached (if it renders)."""

    kind: ClassVar[EffectKind] = EffectKind.MAIL_CLIENT
    event: str
    to: str
    sender: str
    subject: str
    body: str
    invoice_reference: str | None = None

    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "event": self.event,
            "to": self.to,
            "sender": self.sender,
            "subject": self.subject,
            "body": self.body,
        }
        if self.invoice_reference is not None:
            found["invoice_reference"] = self.invoice_reference
        return found

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> MailClient:
        return cls(
            event=_text(payload, "event"),
            to=_text(payload, "to"),
            sender=_text(payload, "sender"),
            subject=_text(payload, "subject"),
            body=_text(payload, "body"),
            invoice_reference=_optional_text(payload, "invoice_reference"),
        )


# -- clouds -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerAction:
    """An action on one of the client's resources in a cloud (``source`` openstack or solusvm): a server,
    or (:class:`DisableProject`, :class:`EnableProject`) its OpenStack project."""

    kind: ClassVar[EffectKind]
    source: str
    resource_id: str
    name: str

    def payload(self) -> dict[str, Any]:
        return {"source": self.source, "resource_id": self.resource_id, "name": self.name}

    @classmethod
    def decode(cls, payload: Mapping[str, Any]) -> ServerAction:
        resource = str(payload["resource_id"])
        return cls(str(payload["source"]), resource, str(payload.get("name", resource)))


@dataclass(frozen=True)
class SuspendServer(ServerAction):
    kind: ClassVar[EffectKind] = EffectKind.SUSPEND_SERVER


@dataclass(frozen=True)
class ResumeServer(ServerAction):
    kind: ClassVar[EffectKind] = EffectKind.RESUME_SERVER


@dataclass(frozen=True)
class ShelveServer(ServerAction):
    kind: ClassVar[EffectKind] = EffectKind.SHELVE_SERVER


@dataclass(frozen=True)
class UnshelveServer(ServerAction):
    kind: ClassVar[EffectKind] = EffectKind.UNSHELVE_SERVER


@dataclass(frozen=True)
class DeleteServer(ServerAction):
    kind: ClassVar[EffectKind] = EffectKind.DELETE_SERVER


@dataclass(frozen=True)
class DisableProject(ServerAction):
    """Disable the client's OpenStack project in Keystone (``resource_id`` is the project id), as Fleio
    suspends a client's project: no new token is issued for it, so its owner can neither resume a server
    nor create one; the servers themselves are suspended or shelved by their own rows."""

    kind: ClassVar[EffectKind] = EffectKind.DISABLE_PROJECT


@dataclass(frozen=True)
class EnableProject(ServerAction):
    """Enable the client's OpenStack project again (the resume of a suspension that disabled it)."""

    kind: ClassVar[EffectKind] = EffectKind.ENABLE_PROJECT


PROJECT_KINDS = frozenset({EffectKind.DISABLE_PROJECT, EffectKind.ENABLE_PROJECT})
"""Cloud effects on a whole OpenStack project rather than on one server."""


CreditAction = Literal["suspend", "resume", "terminate"]


def server_action(action: CreditAction, source: str, *, shelve: bool) -> type[ServerAction]:
    """The cloud action a credit decision asks for: a suspension shelves OpenStack instances when the
    configuration says so (and its resume unshelves them); SolusVM has no shelving, so it suspends."""
    shelves = shelve and source != "solusvm"
    if action == "suspend":
        return ShelveServer if shelves else SuspendServer
    if action == "resume":
        return UnshelveServer if shelves else ResumeServer
    return DeleteServer


Effect = (
    AddClient
    | UpdateClient
    | CreateInvoice
    | CancelInvoice
    | AddCredit
    | AddPayment
    | SendEmail
    | MailClient
    | ServerAction
)

_DECODERS: Mapping[EffectKind, Callable[[Mapping[str, Any]], Effect]] = {
    EffectKind.ADD_CLIENT: AddClient.decode,
    EffectKind.UPDATE_CLIENT: UpdateClient.decode,
    EffectKind.CREATE_INVOICE: CreateInvoice.decode,
    EffectKind.CANCEL_INVOICE: CancelInvoice.decode,
    EffectKind.ADD_CREDIT: AddCredit.decode,
    EffectKind.ADD_PAYMENT: AddPayment.decode,
    EffectKind.SEND_EMAIL: SendEmail.decode,
    EffectKind.MAIL_CLIENT: MailClient.decode,
    EffectKind.SUSPEND_SERVER: SuspendServer.decode,
    EffectKind.RESUME_SERVER: ResumeServer.decode,
    EffectKind.SHELVE_SERVER: ShelveServer.decode,
    EffectKind.UNSHELVE_SERVER: UnshelveServer.decode,
    EffectKind.DELETE_SERVER: DeleteServer.decode,
    EffectKind.DISABLE_PROJECT: DisableProject.decode,
    EffectKind.ENABLE_PROJECT: EnableProject.decode,
}


def decode(kind: str, payload: Mapping[str, Any]) -> Effect:
    """The intent an outbox row of ``kind`` holds; ValueError names what is wrong with the payload."""
    try:
        decoder = _DECODERS[EffectKind(kind)]
    except ValueError:
        raise ValueError(f"unknown effect kind {kind!r}") from None
    try:
        return decoder(payload)
    except KeyError as error:
        raise ValueError(f"payload field {error.args[0]!r} is missing") from None


# -- payload readers --------------------------------------------------------------------------------------


def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"payload field {key!r} is missing or empty")
    return value.strip()


def _optional_text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"payload field {key!r} is not text")
    return value.strip() or None


def _flag(payload: Mapping[str, Any], key: str) -> bool:
    """A JSON boolean, never a string: ``"false"`` read as true would exempt a client."""
    value = payload.get(key)
    if not isinstance(value, bool):
        raise ValueError(f"payload field {key!r} must be true or false, got {value!r}")
    return value


def _decimal(payload: Mapping[str, Any], key: str, what: str) -> Decimal:
    """An amount from its exact decimal string (never a float)."""
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise ValueError(f'{what} must be a decimal string such as "12.30", got {value!r}')
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what} {value!r} is not a number") from None


def _day(payload: Mapping[str, Any], key: str) -> date:
    try:
        return date.fromisoformat(_text(payload, key))
    except ValueError as error:
        if "payload field" in str(error):
            raise
        raise ValueError(f"payload field {key!r} is not a date YYYY-MM-DD") from None


def _instant(payload: Mapping[str, Any], key: str) -> datetime:
    """An ISO 8601 instant with an offset: the bridge never guesses a zone."""
    text = _text(payload, key)
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"payload field {key!r} is not an ISO 8601 date-time") from None
    if instant.tzinfo is None:
        raise ValueError(f"payload field {key!r} has no UTC offset; the bridge never guesses a zone")
    return instant
