"""A fake WHMCS External API served over real HTTP on 127.0.0.1, following shared/research/whmcs-api.md.

It keeps its own state (clients, invoices with items, the credit log, transactions, pay methods, sent
emails) and answers in WHMCS's shapes, quirks included: ids and amounts as strings like the documentation's
examples (``"invoiceid": "1"``), nested lists (``invoices.invoice[]``), paging by ``limitstart``/``limitnum``
(default 25), ``result=error`` with WHMCS's own messages, and a 403 JSON body on bad credentials.

Faults can be injected per action or for every action, for the next N calls (or every call): HTTP 500, an
HTML page, 403, ``result=error`` with a given message, a reply of the test's making (applied or not),
added latency, a timeout (the reply is held until the client gives up and hangs up, and the action is not
applied), commit-then-drop (the action is applied, then the connection is closed without a reply), and
slow replies that apply the call late: ``slow_apply`` applies it once the client has given up waiting
(past its read timeout), ``hold`` keeps it until the test calls :meth:`FakeWhmcs.release_held` (while, say,
the caller's process is paused). Both are driven by events (the client hanging up, the test releasing),
never by a sleep. A :class:`Trap` springs a callback (kill the calling process, say) at the Nth call,
before the call is applied, after it is applied but unanswered, or after the answer. Calls are counted
per action.

Use it as a context manager::

    with FakeWhmcs() as whmcs:
        client = WhmcsClient(whmcs.url, whmcs.identifier, whmcs.secret)
        whmcs.fail("commit_then_drop", action="CreateInvoice")
"""

from __future__ import annotations

import json
import re
import select
import socket
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl

FaultKind = Literal[
    "http_500",
    "html",
    "forbidden",
    "error",
    "reply",
    "commit_then_reply",
    "slow",
    "timeout",
    "commit_then_drop",
    "slow_apply",
    "hold",
]
TrapPhase = Literal["before", "applied", "after", "hold"]
ListStyle = Literal["list", "indexed", "bare"]
EmptyStyle = Literal["nested", "list", "object", "string"]
JsonTypes = Literal["docs", "native"]

API_PATH = "/includes/api.php"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
INVOICE_STATUSES = ("Draft", "Unpaid", "Paid", "Cancelled", "Refunded", "Collections", "Payment Pending")
CURRENCIES = {1: "USD", 2: "EUR", 3: "GBP"}
TEMPLATES = {
    "Invoice Created": "invoice",
    "Credit Card Invoice Created": "invoice",
    "Invoice Payment Confirmation": "invoice",
    "Invoice Payment Reminder": "invoice",
    "First Invoice Overdue Notice": "invoice",
    "Client Signup Email": "general",
}
DRAFT_AND_SEND = (
    "Cannot create and send a draft invoice in a single API request. Please create and send separately."
)
CUSTOM_TYPES = ("general", "product", "domain", "invoice", "support", "affiliate")
CLIENT_FIELDS = (
    "firstname",
    "lastname",
    "companyname",
    "email",
    "address1",
    "address2",
    "city",
    "state",
    "postcode",
    "country",
    "phonenumber",
    "tax_id",
    "notes",
    "status",
    "language",
)
WRITES = frozenset(
    {
        "AddClient",
        "UpdateClient",
        "CloseClient",
        "CreateInvoice",
        "UpdateInvoice",
        "AddCredit",
        "AddInvoicePayment",
        "AddTransaction",
        "SendEmail",
    }
)
"""The actions that change WHMCS (a trap can be limited to them)."""
HANG_GUARD_SECONDS = 60.0
"""The longest a held call waits for its release or for the client to hang up: a guard against a test that
hangs, never a timing the tests rely on."""
ADD_CLIENT_REQUIRED = (
    ("address1", "You did not enter your  address line 1"),
    ("city", "You did not enter your city"),
    ("state", "You did not enter your state"),
    ("postcode", "You did not enter your postcode"),
    ("country", "You did not enter your country"),
    ("phonenumber", "You did not enter your phone number"),
)


@dataclass
class Trap:
    """Springs ``spring`` at the ``at_call``-th call the fake receives (counting every action, or only
    writes with ``writes_only``): ``before`` the call is applied (then hangs up, nothing applied),
    ``applied`` (applied, then hangs up unanswered), ``after`` the answer was written, or ``hold``: the
    call is held unapplied (springing tells the test) until :meth:`FakeWhmcs.release_held`."""

    at_call: int
    phase: TrapPhase
    spring: Callable[[], None]
    writes_only: bool = False


@dataclass
class HeldCall:
    """A call the fake holds back: applied (and answered, if anyone still listens) once released."""

    action: str
    params: dict[str, str]
    released: threading.Event = field(default_factory=threading.Event)
    applied: threading.Event = field(default_factory=threading.Event)


class ApiError(Exception):
    """A WHMCS business error: answered as HTTP 200 ``{"result": "error", "message": ...}``."""


@dataclass
class Fault:
    """One injected fault; ``remaining`` None means every matching call."""

    kind: FaultKind
    action: str | None
    remaining: int | None
    message: str = ""
    latency_ms: int = 0
    body: dict[str, Any] | None = None


@dataclass
class FakeClient:
    id: int
    fields: dict[str, str]
    currency: int = 1
    credit: Decimal = ZERO
    default_gateway: str = ""
    created: date = field(default_factory=date.today)
    tax_exempt: bool = False

    @property
    def email(self) -> str:
        return self.fields.get("email", "")


@dataclass
class FakeItem:
    id: int
    description: str
    amount: Decimal
    taxed: bool


@dataclass
class FakeInvoice:
    id: int
    userid: int
    status: str
    date: date
    duedate: date
    notes: str
    paymentmethod: str
    items: list[FakeItem]
    credit: Decimal = ZERO
    datepaid: datetime | None = None

    @property
    def subtotal(self) -> Decimal:
        return sum((item.amount for item in self.items), ZERO)

    @property
    def total(self) -> Decimal:
        """Tax is not modelled: ``taxed`` is kept per line but no tax rate is configured."""
        return self.subtotal


@dataclass
class FakeCredit:
    id: int
    clientid: int
    date: date
    description: str
    amount: Decimal
    relid: int = 0


@dataclass
class FakeTransaction:
    id: int
    userid: int
    gateway: str
    date: datetime
    description: str
    amountin: Decimal
    fees: Decimal
    amountout: Decimal
    transid: str
    invoiceid: int
    refundid: int = 0


@dataclass
class FakePayMethod:
    id: int
    clientid: int
    type: str
    description: str
    gateway_name: str
    remote_token: str
    card_last_four: str = "4242"
    expiry_date: str = "12/30"


@dataclass
class SentEmail:
    related_id: int
    template: str | None
    custom_type: str | None
    subject: str | None


@dataclass
class Request:
    """One call as the fake saw it, without the credentials."""

    action: str
    params: dict[str, str]


class FakeWhmcs:
    """The fake server and its state. All public methods are thread-safe.

    ``identifier``/``secret`` are the credentials it accepts; ``access_key``, when set, must also be sent
    (else 403 ``Invalid IP``, as when the IP allow-list is not bypassed). ``hold_seconds`` bounds how long
    a ``timeout`` or ``slow_apply`` fault waits for the client to hang up, should it never do so (a guard;
    the client's read timeout ends the wait). ``list_style`` and ``empty_style`` pick among WHMCS's list
    shapes, ``json_types`` between the documentation's strings and native JSON ints and numbers. ``now``
    is the fake's clock (naive, WHMCS's local time). ``unique_emails`` False lets AddClient create a
    client with an email already used, as when two AddClient calls overlap inside WHMCS (it checks the
    email in PHP before inserting, not with a database constraint). ``says_tax_id`` False is a WHMCS
    before 7.7, whose GetClientsDetails has no ``tax_id``. ``currencies`` are the currencies it bills in
    (GetCurrencies), by id; the first is its default, which AddClient gives a client sent no currency.
    """

    def __init__(
        self,
        *,
        identifier: str = "fake-identifier",
        secret: str = "fake-secret-value",
        access_key: str | None = None,
        hold_seconds: float = 2.0,
        list_style: ListStyle = "list",
        empty_style: EmptyStyle = "nested",
        json_types: JsonTypes = "docs",
        now: Callable[[], datetime] = datetime.now,
        unique_emails: bool = True,
        says_tax_id: bool = True,
        keep_alive: bool = False,
        currencies: Mapping[int, str] = CURRENCIES,
    ) -> None:
        self.identifier = identifier
        self.secret = secret
        self.access_key = access_key
        self.hold_seconds = hold_seconds
        self.list_style = list_style
        self.empty_style = empty_style
        self.json_types = json_types
        self.now = now
        self.unique_emails = unique_emails
        self.says_tax_id = says_tax_id
        self.keep_alive = keep_alive
        self.currencies = dict(currencies)
        self.calls: Counter[str] = Counter()
        self.received = 0
        self.connections = 0
        """Connections accepted (with ``keep_alive``, fewer than calls)."""
        self.products: Counter[int] = Counter()
        self.requests: list[Request] = []
        self.clients: dict[int, FakeClient] = {}
        self.invoices: dict[int, FakeInvoice] = {}
        self.credits: list[FakeCredit] = []
        self.transactions: list[FakeTransaction] = []
        self.pay_methods: dict[int, FakePayMethod] = {}
        self.emails: list[SentEmail] = []
        self._faults: list[Fault] = []
        self._traps: list[Trap] = []
        self._held: list[HeldCall] = []
        self._held_changed = threading.Condition()
        self._local = threading.local()
        self._ids: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> FakeWhmcs:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = _Server(("127.0.0.1", 0), _KeepAliveHandler if self.keep_alive else _Handler)
        server.fake = self
        self._server = server
        report = server.handle_error

        def quiet(request: Any, address: Any) -> None:
            """A reply to a client that gave up (or was killed) fails with a broken pipe: expected."""
            if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
                report(request, address)

        server.handle_error = quiet  # type: ignore[assignment,method-assign]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._held_changed:
            for held in self._held:
                held.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        """The base URL, as ``whmcs.url`` takes it (the client appends /includes/api.php)."""
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- test helpers ----------------------------------------------------------------------------------

    def fail(
        self,
        kind: FaultKind,
        *,
        action: str | None = None,
        times: int | None = 1,
        message: str = "",
        latency_ms: int = 0,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Inject a fault for the next ``times`` calls of ``action`` (any action when None; every call
        when ``times`` is None). ``message`` is the text of ``error``/``forbidden``; ``latency_ms`` the
        delay of ``slow`` (which then answers normally); ``body`` the JSON that ``reply`` answers with
        (HTTP 200, nothing applied; ``commit_then_reply``: applied), for answers WHMCS is not documented
        to give. Faults are matched in the order injected."""
        with self._lock:
            self._faults.append(Fault(kind, action, times, message, latency_ms, body))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def trap(self, trap: Trap) -> None:
        """Arm ``trap`` (it springs once)."""
        with self._lock:
            self._traps.append(trap)

    def disarm(self) -> None:
        with self._lock:
            self._traps.clear()

    def held(self) -> list[HeldCall]:
        """The calls held now, oldest first (``hold`` faults and traps)."""
        with self._held_changed:
            return [call for call in self._held if not call.released.is_set()]

    def wait_held(self, count: int = 1) -> list[HeldCall]:
        """Block until ``count`` calls are held; fails (a hang guard, not a timing) if none comes."""
        with self._held_changed:
            if not self._held_changed.wait_for(lambda: len(self.held()) >= count, HANG_GUARD_SECONDS):
                raise AssertionError(f"no {count} held WHMCS calls came in; the caller hangs")
            return self.held()

    def release_held(self) -> int:
        """Apply every held call (answering it if its caller still listens); returns how many. Returns
        once each is applied."""
        with self._held_changed:
            calls = self.held()
            for call in calls:
                call.released.set()
        for call in calls:
            if not call.applied.wait(HANG_GUARD_SECONDS):
                raise AssertionError(f"held {call.action} was not applied after its release")
        return len(calls)

    def add_product(self, client_id: int) -> None:
        """Give the client a product or service (counted only: GetClientsProducts' total)."""
        with self._lock:
            self.products[client_id] += 1

    def call_count(self, action: str | None = None) -> int:
        """Calls of ``action`` so far (all calls when None), faulted ones included."""
        with self._lock:
            return self.calls[action] if action is not None else sum(self.calls.values())

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()
            self.requests.clear()

    def last_params(self, action: str) -> dict[str, str]:
        """The parameters (credentials removed) of the latest call of ``action``."""
        with self._lock:
            for request in reversed(self.requests):
                if request.action == action:
                    return dict(request.params)
        raise LookupError(f"no {action} call was made")

    def add_pay_method(
        self,
        client_id: int,
        *,
        gateway_name: str = "stripe",
        remote_token: str = "cus_test",
        type: str = "RemoteCreditCard",
        description: str = "Default Card",
    ) -> int:
        """Store a pay method for the client, as a gateway module would; returns its id."""
        with self._lock:
            if client_id not in self.clients:
                raise KeyError(f"no client {client_id}")
            method_id = self._next_id("paymethod")
            self.pay_methods[method_id] = FakePayMethod(
                method_id, client_id, type, description, gateway_name, remote_token
            )
            return method_id

    def remove_pay_method(self, pay_method_id: int) -> None:
        with self._lock:
            del self.pay_methods[pay_method_id]

    def invoices_of(self, user_id: int) -> list[FakeInvoice]:
        with self._lock:
            return [invoice for invoice in self.invoices.values() if invoice.userid == user_id]

    # -- request handling (called by the HTTP handler) -------------------------------------------------

    def handle(self, params: dict[str, str]) -> tuple[int, str, bytes] | None:
        """The (status, content type, body) to answer, or None to close the connection without one."""
        action = params.get("action", "")
        with self._lock:
            self.calls[action] += 1
            self.received += 1
            self.requests.append(Request(action, _without_credentials(params)))
            trap = self._take_trap(action)
            fault = self._take_fault(action) if trap is None else None
        if trap is not None:
            return self._sprung(trap, params)
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(fault.latency_ms / 1000)
            fault = None
        if fault is not None:
            return self._faulted(fault, params)
        return self._answer(params)

    def after_reply(self) -> None:
        """Called by the HTTP handler once a reply is written (an ``after`` trap springs here)."""
        spring: Callable[[], None] | None = getattr(self._local, "after", None)
        self._local.after = None
        if spring is not None:
            spring()

    def _take_trap(self, action: str) -> Trap | None:
        for trap in self._traps:
            if self.received >= trap.at_call and (not trap.writes_only or action in WRITES):
                self._traps.remove(trap)
                return trap
        return None

    def _sprung(self, trap: Trap, params: dict[str, str]) -> tuple[int, str, bytes] | None:
        if trap.phase == "before":
            trap.spring()
            return None
        if trap.phase == "hold":
            return self._hold(params, trap.spring)
        reply = self._answer(params)
        if trap.phase == "applied":
            trap.spring()
            return None
        self._local.after = trap.spring
        return reply

    def _hold(
        self, params: dict[str, str], spring: Callable[[], None] = lambda: None
    ) -> tuple[int, str, bytes]:
        """Hold the call unapplied until the test releases it; then apply it and answer."""
        call = HeldCall(params.get("action", ""), _without_credentials(params))
        with self._held_changed:
            self._held.append(call)
            self._held_changed.notify_all()
        spring()
        if not call.released.wait(HANG_GUARD_SECONDS):
            raise AssertionError(f"held {call.action} was never released")
        try:
            return self._answer(params)
        finally:
            call.applied.set()

    def _wait_for_hangup(self) -> None:
        """Wait until the client closes the connection (its read timeout ended its wait), at most
        ``hold_seconds``; at once when no connection is known (a direct call of :meth:`handle`)."""
        connection: socket.socket | None = getattr(self._local, "connection", None)
        if connection is None:
            self._stopping.wait(self.hold_seconds)
            return
        _wait_until_closed(connection, self.hold_seconds, self._stopping)

    def _take_fault(self, action: str) -> Fault | None:
        for fault in self._faults:
            if fault.action in (None, action) and (fault.remaining is None or fault.remaining > 0):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def _faulted(self, fault: Fault, params: dict[str, str]) -> tuple[int, str, bytes] | None:
        if fault.kind == "http_500":
            return 500, "text/html", b"<html><body><h1>500 Internal Server Error</h1></body></html>"
        if fault.kind == "html":
            return 200, "text/html", b"<!DOCTYPE html><html><body>Down for maintenance</body></html>"
        if fault.kind == "forbidden":
            return _json_reply(403, {"result": "error", "message": fault.message or "Authentication Failed"})
        if fault.kind == "error":
            return _json_reply(200, {"result": "error", "message": fault.message or "An error occurred"})
        if fault.kind == "reply":
            return _json_reply(200, fault.body or {})
        if fault.kind == "commit_then_reply":
            self._answer(params)
            return _json_reply(200, fault.body or {})
        if fault.kind == "timeout":
            self._wait_for_hangup()
            return None
        if fault.kind == "slow_apply":  # WHMCS still working when the client gave up: applied late
            self._wait_for_hangup()
            self._answer(params)
            return None
        if fault.kind == "hold":
            return self._hold(params)
        self._answer(params)  # commit_then_drop: apply, then hang up without a word
        return None

    def _answer(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        if not self._authenticated(params):
            return _json_reply(403, {"result": "error", "message": "Authentication Failed"})
        if self.access_key is not None and params.get("accesskey") != self.access_key:
            return _json_reply(403, {"result": "error", "message": "Invalid IP 127.0.0.1"})
        handler = _ACTIONS.get(params.get("action", ""))
        if handler is None:
            return _json_reply(200, {"result": "error", "message": "Command Not Found"})
        try:
            with self._lock:
                body = handler(self, params)
        except ApiError as error:
            return _json_reply(200, {"result": "error", "message": str(error)})
        return _json_reply(200, {"result": "success", **body})

    def _authenticated(self, params: dict[str, str]) -> bool:
        identifier = params.get("identifier", params.get("username"))
        secret = params.get("secret", params.get("password"))
        return identifier == self.identifier and secret == self.secret

    # -- rendering helpers -----------------------------------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def _id(self, value: int) -> int | str:
        return value if self.json_types == "native" else str(value)

    def _flag(self, value: bool) -> bool | str:
        """A flag as GetClientsDetails gives it: ``"1"`` or ``""`` (PHP's true and false as text) like
        the documentation's example, or a JSON boolean."""
        if self.json_types == "native":
            return value
        return "1" if value else ""

    def _money(self, value: Decimal) -> float | str:
        text = f"{value.quantize(CENT):f}"
        return float(text) if self.json_types == "native" else text

    def _list(self, items: list[dict[str, Any]]) -> Any:
        if self.list_style == "indexed":
            return {str(index): item for index, item in enumerate(items)}
        if self.list_style == "bare" and len(items) == 1:
            return items[0]
        return items

    def _nested(self, inner: str, items: list[dict[str, Any]]) -> Any:
        if items or self.empty_style == "nested":
            return {inner: self._list(items)}
        return {"list": [], "object": {}, "string": ""}[self.empty_style]

    def _client(self, params: dict[str, str], key: str = "clientid") -> FakeClient:
        client = self.clients.get(_int(params.get(key, "")))
        if client is None:
            raise ApiError("Client ID Not Found")
        return client

    def _invoice(self, params: dict[str, str]) -> FakeInvoice:
        invoice = self.invoices.get(_int(params.get("invoiceid", "")))
        if invoice is None:
            raise ApiError("Invoice ID Not Found")
        return invoice

    def _client_by_email(self, email: str) -> FakeClient | None:
        wanted = email.strip().lower()
        return next((c for c in self.clients.values() if c.email.lower() == wanted), None)

    def _paid(self, invoice: FakeInvoice) -> Decimal:
        return sum((t.amountin - t.amountout for t in self.transactions if t.invoiceid == invoice.id), ZERO)

    def _balance(self, invoice: FakeInvoice) -> Decimal:
        return invoice.total - invoice.credit - self._paid(invoice)

    def _add_credit_entry(self, client: FakeClient, amount: Decimal, description: str, day: date) -> None:
        client.credit += amount
        self.credits.append(FakeCredit(self._next_id("credit"), client.id, day, description, amount))

    def _email(self, related_id: int, template: str) -> None:
        self.emails.append(SentEmail(related_id, template, None, None))

    # -- clients ---------------------------------------------------------------------------------------

    def add_client(self, p: dict[str, str]) -> dict[str, Any]:
        skip = _flag(p.get("skipvalidation"))
        for key, message in (
            ("firstname", "You did not enter your first name"),
            ("lastname", "You did not enter your last name"),
        ):
            if not skip and not p.get(key, "").strip():
                raise ApiError(message)
        email = p.get("email", "").strip()
        if not email:
            raise ApiError("You did not enter your email address")
        if "@" not in email:
            raise ApiError("The email address you entered was not valid")
        for key, message in ADD_CLIENT_REQUIRED:
            if not skip and not p.get(key, "").strip():
                raise ApiError(message)
        if self.unique_emails and self._client_by_email(email) is not None:
            raise ApiError("A user already exists with that email address")
        client_id = self._next_id("client")
        fields = {key: p.get(key, "") for key in CLIENT_FIELDS}
        fields["status"] = "Active"
        currency = _int(p.get("currency", "0")) or next(iter(self.currencies))
        self.clients[client_id] = FakeClient(client_id, fields, currency, created=self.now().date())
        return {"clientid": self._id(client_id)}

    def get_clients(self, p: dict[str, str]) -> dict[str, Any]:
        search = p.get("search", "").strip().lower()
        matches = [c for c in self.clients.values() if _client_matches(c, search)]
        matches.sort(key=lambda c: c.id, reverse=p.get("sorting", "ASC").upper() == "DESC")
        start, page = _page(matches, p)
        rows = [self._client_row(c) for c in page]
        return {
            "totalresults": self._id(len(matches)),
            "startnumber": self._id(start),
            "numreturned": self._id(len(rows)),
            "clients": self._nested("client", rows),
        }

    def _client_row(self, c: FakeClient) -> dict[str, Any]:
        return {
            "id": self._id(c.id),
            "firstname": c.fields["firstname"],
            "lastname": c.fields["lastname"],
            "companyname": c.fields["companyname"],
            "email": c.email,
            "datecreated": c.created.isoformat(),
            "groupid": self._id(0),
            "status": c.fields["status"],
        }

    def get_clients_details(self, p: dict[str, str]) -> dict[str, Any]:
        if p.get("clientid"):
            client = self.clients.get(_int(p["clientid"]))
        elif p.get("email"):
            client = self._client_by_email(p["email"])
        else:
            raise ApiError("Either clientid Or email Is Required")
        if client is None:
            raise ApiError("Client Not Found")
        details = {
            "userid": self._id(client.id),
            "id": self._id(client.id),
            "uuid": f"00000000-0000-4000-8000-{client.id:012d}",
            **client.fields,
            "countrycode": client.fields.get("country", ""),
            "taxexempt": self._flag(client.tax_exempt),
            "fullname": f"{client.fields['firstname']} {client.fields['lastname']}".strip(),
            "currency": self._id(client.currency),
            "currency_code": self.currencies.get(client.currency, "USD"),
            "defaultgateway": client.default_gateway,
            "credit": self._money(client.credit),
        }
        if not self.says_tax_id:
            del details["tax_id"]
        return {"client": details}

    def get_clients_products(self, p: dict[str, str]) -> dict[str, Any]:
        """Only the count: the fake keeps no products, just how many each client has."""
        client = self.clients.get(_int(p.get("clientid", "")))
        total = self.products[client.id] if client is not None else 0
        return {
            "clientid": self._id(client.id if client else 0),
            "totalresults": self._id(total),
            "startnumber": self._id(0),
            "numreturned": self._id(0),
            "products": "",
        }

    def close_client(self, p: dict[str, str]) -> dict[str, Any]:
        """Closed, its unpaid and draft invoices cancelled (WHMCS also ends its products)."""
        client = self._client(p)
        client.fields["status"] = "Closed"
        for invoice in self.invoices.values():
            if invoice.userid == client.id and invoice.status in ("Unpaid", "Draft"):
                invoice.status = "Cancelled"
        return {"clientid": self._id(client.id)}

    def update_client(self, p: dict[str, str]) -> dict[str, Any]:
        if p.get("clientid"):
            client = self._client(p)
        else:
            client = self._client_by_email(p.get("clientemail", "")) or _raise("Client ID Not Found")
        email = p.get("email")
        if email is not None:
            other = self._client_by_email(email)
            if other is not None and other.id != client.id:
                raise ApiError("Duplicate Email Address")
        for key in CLIENT_FIELDS:
            if key in p:
                client.fields[key] = p[key]
        if "taxexempt" in p:
            client.tax_exempt = _flag(p["taxexempt"])
        if "paymentmethod" in p:
            client.default_gateway = p["paymentmethod"]
        if "currency" in p:
            client.currency = _int(p["currency"])
        return {"clientid": self._id(client.id)}

    # -- invoices --------------------------------------------------------------------------------------

    def create_invoice(self, p: dict[str, str]) -> dict[str, Any]:
        client = self._client(p, "userid")
        draft = _flag(p.get("draft"))
        if draft and _flag(p.get("sendinvoice")):
            raise ApiError(DRAFT_AND_SEND)
        status = "Draft" if draft else p.get("status") or "Unpaid"
        if status not in INVOICE_STATUSES:
            raise ApiError(f"Invalid status {status}")
        today = self.now().date()
        invoice = FakeInvoice(
            id=self._next_id("invoice"),
            userid=client.id,
            status=status,
            date=_date(p.get("date"), today),
            duedate=_date(p.get("duedate"), today),
            notes=p.get("notes", ""),
            paymentmethod=p.get("paymentmethod") or client.default_gateway or "mailin",
            items=[self._new_item(*line) for line in _numbered_items(p)],
        )
        self.invoices[invoice.id] = invoice
        if _flag(p.get("autoapplycredit")) and status == "Unpaid":
            self._apply_credit(client, invoice)
        if _flag(p.get("sendinvoice")):
            self._email(invoice.id, "Invoice Created")
        return {"invoiceid": self._id(invoice.id), "status": status}

    def _new_item(self, description: str, amount: Decimal, taxed: bool) -> FakeItem:
        return FakeItem(self._next_id("item"), description, amount, taxed)

    def _apply_credit(self, client: FakeClient, invoice: FakeInvoice) -> None:
        amount = min(client.credit, self._balance(invoice))
        if amount > 0:
            invoice.credit += amount
            self._add_credit_entry(client, -amount, f"Credit Applied to Invoice #{invoice.id}", invoice.date)

    def update_invoice(self, p: dict[str, str]) -> dict[str, Any]:
        invoice = self._invoice(p)
        status = p.get("status")
        if status:
            if status not in INVOICE_STATUSES:
                raise ApiError(f"Invalid status {status}")
            invoice.status = status
            if status == "Paid" and invoice.datepaid is None:
                invoice.datepaid = self.now().replace(microsecond=0)
        if _flag(p.get("publish")) or _flag(p.get("publishandsendemail")):
            if invoice.status != "Draft":
                raise ApiError("Invoice must be in Draft status to be published")
            invoice.status = "Unpaid"
            if _flag(p.get("publishandsendemail")):
                self._email(invoice.id, "Invoice Created")
        for key in ("notes", "paymentmethod"):
            if key in p:
                setattr(invoice, key, p[key])
        for key in ("date", "duedate"):
            if p.get(key):
                setattr(invoice, key, _date(p[key], invoice.date))
        return {"invoiceid": self._id(invoice.id)}

    def get_invoice(self, p: dict[str, str]) -> dict[str, Any]:
        invoice = self._invoice(p)
        transactions = [self._transaction_row(t) for t in self.transactions if t.invoiceid == invoice.id]
        return {
            "invoiceid": self._id(invoice.id),
            **self._invoice_fields(invoice),
            "balance": self._money(self._balance(invoice)),
            "ccgateway": False,
            "items": self._nested("item", [self._item_row(item) for item in invoice.items]),
            "transactions": {"transaction": self._list(transactions)} if transactions else "",
        }

    def _invoice_fields(self, invoice: FakeInvoice) -> dict[str, Any]:
        return {
            "invoicenum": "",
            "userid": self._id(invoice.userid),
            "date": invoice.date.isoformat(),
            "duedate": invoice.duedate.isoformat(),
            "datepaid": invoice.datepaid.isoformat(sep=" ") if invoice.datepaid else "0000-00-00 00:00:00",
            "subtotal": self._money(invoice.subtotal),
            "credit": self._money(invoice.credit),
            "tax": self._money(ZERO),
            "tax2": self._money(ZERO),
            "total": self._money(invoice.total),
            "taxrate": self._money(ZERO),
            "taxrate2": self._money(ZERO),
            "status": invoice.status,
            "paymentmethod": invoice.paymentmethod,
            "notes": invoice.notes,
        }

    def _item_row(self, item: FakeItem) -> dict[str, Any]:
        return {
            "id": self._id(item.id),
            "type": "",
            "relid": self._id(0),
            "description": item.description,
            "amount": self._money(item.amount),
            "taxed": self._id(int(item.taxed)),
        }

    def get_invoices(self, p: dict[str, str]) -> dict[str, Any]:
        invoices = [i for i in self.invoices.values() if self._invoice_matches(i, p)]
        orderby = p.get("orderby") or "id"
        key = _INVOICE_ORDER.get(orderby)
        if key is None:
            raise ApiError(f"Invalid orderby {orderby}")
        # Without an explicit order the fake lists newest first, so a client that forgets
        # orderby=id&order=asc cannot page reliably and its tests fail.
        invoices.sort(key=key, reverse=(p.get("order") or "desc").lower() != "asc")
        start, page = _page(invoices, p)
        rows = [self._invoice_row(i) for i in page]
        return {
            "totalresults": self._id(len(invoices)),
            "startnumber": self._id(start),
            "numreturned": self._id(len(rows)),
            "invoices": self._nested("invoice", rows),
        }

    def _invoice_matches(self, invoice: FakeInvoice, p: dict[str, str]) -> bool:
        if p.get("userid") and invoice.userid != _int(p["userid"]):
            return False
        status = p.get("status")
        if status == "Overdue":
            return invoice.status == "Unpaid" and invoice.duedate < self.now().date()
        return not status or invoice.status == status

    def _invoice_row(self, invoice: FakeInvoice) -> dict[str, Any]:
        client = self.clients[invoice.userid]
        currency = self.currencies.get(client.currency, "USD")
        return {
            "id": self._id(invoice.id),
            "firstname": client.fields["firstname"],
            "lastname": client.fields["lastname"],
            "companyname": client.fields["companyname"],
            **self._invoice_fields(invoice),
            "currencycode": currency,
            "currencyprefix": "$" if currency == "USD" else "",
            "currencysuffix": f" {currency}",
        }

    # -- credit ----------------------------------------------------------------------------------------

    def add_credit(self, p: dict[str, str]) -> dict[str, Any]:
        client = self._client(p)
        if not p.get("amount", "").strip():
            raise ApiError("No Amount Provided")
        amount = _decimal(p["amount"])
        if p.get("type", "add") == "remove":
            amount = -amount
        self._add_credit_entry(
            client, amount, p.get("description", ""), _date(p.get("date"), self.now().date())
        )
        return {"newbalance": self._money(client.credit)}

    def get_credits(self, p: dict[str, str]) -> dict[str, Any]:
        client = self._client(p)
        rows = [
            {
                "id": self._id(c.id),
                "date": c.date.isoformat(),
                "description": c.description,
                "amount": self._money(c.amount),
                "relid": self._id(c.relid),
            }
            for c in self.credits
            if c.clientid == client.id
        ]
        return {
            "totalresults": self._id(len(rows)),
            "clientid": self._id(client.id),
            "credits": self._nested("credit", rows),
        }

    def get_currencies(self, p: dict[str, str]) -> dict[str, Any]:
        """The documented fields: id, code, prefix, suffix, format and rate, nested as other lists."""
        rows = [
            {
                "id": self._id(currency_id),
                "code": code,
                "prefix": "$" if code == "USD" else "",
                "suffix": f" {code}",
                "format": self._id(1),
                "rate": "1.00000",
            }
            for currency_id, code in self.currencies.items()
        ]
        return {"totalresults": self._id(len(rows)), "currencies": self._nested("currency", rows)}

    # -- payments and transactions ---------------------------------------------------------------------

    def add_invoice_payment(self, p: dict[str, str]) -> dict[str, Any]:
        invoice = self._invoice(p)
        if invoice.status == "Cancelled":
            raise ApiError("It is not possible to add a payment to an invoice that is Cancelled")
        balance = self._balance(invoice)
        amount = _decimal(p["amount"]) if p.get("amount") else balance
        when = _datetime(p.get("date"), self.now().replace(microsecond=0))
        self._record_transaction(
            invoice.userid, p.get("gateway", ""), when, "Invoice Payment", amount, p, invoice.id
        )
        left = balance - amount
        if left <= 0 and invoice.status in ("Unpaid", "Payment Pending", "Collections", "Draft"):
            invoice.status = "Paid"
            invoice.datepaid = when
        if left < 0:
            client = self.clients[invoice.userid]
            self._add_credit_entry(client, -left, f"Invoice #{invoice.id} Overpayment", when.date())
        return {}

    def _record_transaction(
        self,
        userid: int,
        gateway: str,
        when: datetime,
        description: str,
        amount: Decimal,
        p: dict[str, str],
        invoiceid: int,
    ) -> FakeTransaction:
        transaction = FakeTransaction(
            id=self._next_id("transaction"),
            userid=userid,
            gateway=gateway,
            date=when,
            description=description,
            amountin=amount,
            fees=_decimal(p.get("fees") or "0"),
            amountout=_decimal(p.get("amountout") or "0"),
            transid=p.get("transid", ""),
            invoiceid=invoiceid,
        )
        self.transactions.append(transaction)
        return transaction

    def add_transaction(self, p: dict[str, str]) -> dict[str, Any]:
        if not p.get("paymentmethod"):
            raise ApiError("Payment Method is required")
        userid = self._client(p, "userid").id if p.get("userid") else 0
        invoice = self._invoice(p) if p.get("invoiceid") else None
        transid = p.get("transid", "")
        duplicate = any(t.transid == transid for t in self.transactions)
        if transid and duplicate and not _flag(p.get("allowduplicatetransid")):
            raise ApiError("Transaction ID must be Unique")
        when = _localised_date(p.get("date"), self.now().replace(microsecond=0))
        amount = _decimal(p.get("amountin") or "0")
        userid = userid or (invoice.userid if invoice else 0)
        description = p.get("description", "")
        self._record_transaction(
            userid, p["paymentmethod"], when, description, amount, p, invoice.id if invoice else 0
        )
        if _flag(p.get("credit")) and userid:
            self._add_credit_entry(self.clients[userid], amount, description or "Funds Added", when.date())
        return {}

    def get_transactions(self, p: dict[str, str]) -> dict[str, Any]:
        rows = [self._transaction_row(t) for t in self.transactions if _transaction_matches(t, p)]
        return {
            "totalresults": len(rows),
            "startnumber": 0,
            "numreturned": len(rows),
            "transactions": self._nested("transaction", rows),
        }

    def _transaction_row(self, t: FakeTransaction) -> dict[str, Any]:
        return {
            "id": self._id(t.id),
            "userid": self._id(t.userid),
            "currency": self._id(0),
            "gateway": t.gateway,
            "date": t.date.isoformat(sep=" "),
            "description": t.description,
            "amountin": self._money(t.amountin),
            "fees": self._money(t.fees),
            "amountout": self._money(t.amountout),
            "rate": "1.00000",
            "transid": t.transid,
            "invoiceid": self._id(t.invoiceid),
            "refundid": self._id(t.refundid),
        }

    # -- pay methods and email -------------------------------------------------------------------------

    def get_pay_methods(self, p: dict[str, str]) -> dict[str, Any]:
        if not p.get("clientid"):
            raise ApiError("Client ID Is Required")
        client = self.clients.get(_int(p["clientid"]))
        if client is None:
            raise ApiError("Client Not Found")
        kind = p.get("type", "")
        if kind not in ("", "BankAccount", "CreditCard"):
            raise ApiError("Invalid Pay Method Type. Should be 'BankAccount' or 'CreditCard'")
        methods = [
            m
            for m in self.pay_methods.values()
            if m.clientid == client.id
            and (not kind or m.type.endswith(kind))
            and (not p.get("paymethodid") or m.id == _int(p["paymethodid"]))
        ]
        # GetPayMethods is the one action documented with native ints and a flat list.
        return {"clientid": self._id(client.id), "paymethods": [_pay_method_row(m) for m in methods]}

    def send_email(self, p: dict[str, str]) -> dict[str, Any]:
        template, custom = p.get("messagename") or None, p.get("customtype") or None
        if template is None and custom is None:
            raise ApiError("You must provide either an existing email template name or a custom message type")
        if custom is not None and custom not in CUSTOM_TYPES:
            raise ApiError("Invalid message type provided")
        if custom is not None and not p.get("customsubject"):
            raise ApiError("A subject is required for a custom message")
        if custom is not None and not p.get("custommessage"):
            raise ApiError("A message body is required for a custom message")
        if not p.get("id"):
            raise ApiError("A related ID is required")
        if template is not None and template not in TEMPLATES:
            raise ApiError("Email Template not found")
        related = _int(p["id"])
        kind = TEMPLATES[template] if template is not None else custom
        if (kind == "invoice" and related not in self.invoices) or (
            kind == "general" and related not in self.clients
        ):
            raise ApiError("Sending Failed. Please see documentation.")
        self.emails.append(SentEmail(related, template, custom, p.get("customsubject")))
        return {}


_ACTIONS: dict[str, Callable[[FakeWhmcs, dict[str, str]], dict[str, Any]]] = {
    "AddClient": FakeWhmcs.add_client,
    "GetClients": FakeWhmcs.get_clients,
    "GetClientsDetails": FakeWhmcs.get_clients_details,
    "GetClientsProducts": FakeWhmcs.get_clients_products,
    "CloseClient": FakeWhmcs.close_client,
    "UpdateClient": FakeWhmcs.update_client,
    "CreateInvoice": FakeWhmcs.create_invoice,
    "UpdateInvoice": FakeWhmcs.update_invoice,
    "GetInvoice": FakeWhmcs.get_invoice,
    "GetInvoices": FakeWhmcs.get_invoices,
    "AddCredit": FakeWhmcs.add_credit,
    "GetCredits": FakeWhmcs.get_credits,
    "GetCurrencies": FakeWhmcs.get_currencies,
    "AddInvoicePayment": FakeWhmcs.add_invoice_payment,
    "AddTransaction": FakeWhmcs.add_transaction,
    "GetTransactions": FakeWhmcs.get_transactions,
    "GetPayMethods": FakeWhmcs.get_pay_methods,
    "SendEmail": FakeWhmcs.send_email,
}

_INVOICE_ORDER: dict[str, Callable[[FakeInvoice], Any]] = {
    "id": lambda i: i.id,
    "invoicenumber": lambda i: i.id,
    "date": lambda i: (i.date, i.id),
    "duedate": lambda i: (i.duedate, i.id),
    "total": lambda i: (i.total, i.id),
    "status": lambda i: (i.status, i.id),
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeWhmcs


class _Handler(BaseHTTPRequestHandler):
    """Reads the form, lets the fake answer, and writes the reply (or hangs up when told to)."""

    server_version = "Apache"
    timeout = 10

    def setup(self) -> None:
        super().setup()
        server = self.server
        assert isinstance(server, _Server)
        with server.fake._lock:
            server.fake.connections += 1

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = self.rfile.read(length).decode("utf-8", "replace")
        if self.path.split("?")[0] != API_PATH:
            self._reply(404, "text/html", b"<html><body><h1>Not Found</h1></body></html>")
            return
        params = dict(parse_qsl(form, keep_blank_values=True))
        server = self.server
        assert isinstance(server, _Server)
        fake = server.fake
        fake._local.connection = self.connection
        try:
            reply = fake.handle(params)
        finally:
            fake._local.connection = None
        if reply is None:
            self.close_connection = True
            return
        self._reply(*reply)
        self.wfile.flush()
        fake.after_reply()

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log on stderr."""


class _KeepAliveHandler(_Handler):
    """The same answers over HTTP/1.1: the connection stays open for the client's next call. Sent without
    Nagle's delay, as Apache does: the reply's headers and body go out in two writes, and on a kept
    connection the second would wait for the client's delayed acknowledgement (40 ms)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True


def _wait_until_closed(connection: socket.socket, bound: float, stopping: threading.Event) -> None:
    """Return once the peer has closed ``connection`` (a read sees end of file), the fake stops, or
    ``bound`` seconds passed. Polls in short slices only to notice the fake stopping."""
    waited = 0.0
    while waited < bound and not stopping.is_set():
        readable, _, _ = select.select([connection], [], [], 0.05)
        waited += 0.05
        if readable:
            try:
                if connection.recv(1, socket.MSG_PEEK) == b"":
                    return
            except OSError:
                return
            return  # the client sent more (it will not, over HTTP/1.0): stop holding


def _json_reply(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body).encode()


def _without_credentials(params: dict[str, str]) -> dict[str, str]:
    hidden = {"identifier", "secret", "username", "password", "accesskey"}
    return {key: value for key, value in params.items() if key not in hidden}


def _raise(message: str) -> Any:
    raise ApiError(message)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "on", "yes")


def _int(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        return 0


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        return ZERO


def _date(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value.strip()) if value else default
    except ValueError:
        return default


def _datetime(value: str | None, default: datetime) -> datetime:
    try:
        return datetime.fromisoformat(value.strip()) if value else default
    except ValueError:
        return default


def _localised_date(value: str | None, default: datetime) -> datetime:
    """AddTransaction's date in the admin localisation format, DD/MM/YYYY in this fake."""
    match = re.fullmatch(r"(\d{2})/(\d{2})/(\d{4})", (value or "").strip())
    if match is None:
        return default
    day, month, year = (int(part) for part in match.groups())
    return datetime(year, month, day)


def _numbered_items(p: dict[str, str]) -> Iterable[tuple[str, Decimal, bool]]:
    numbers = sorted(int(m.group(1)) for key in p if (m := re.fullmatch(r"itemdescription(\d+)", key)))
    for n in numbers:
        yield (
            p[f"itemdescription{n}"],
            _decimal(p.get(f"itemamount{n}") or "0"),
            _flag(p.get(f"itemtaxed{n}")),
        )


def _page(rows: list[Any], p: dict[str, str]) -> tuple[int, list[Any]]:
    start = max(_int(p.get("limitstart") or "0"), 0)
    limit = _int(p.get("limitnum") or "25") or 25
    return start, rows[start : start + limit]


def _client_matches(client: FakeClient, search: str) -> bool:
    if not search:
        return True
    fields = client.fields
    fullname = f"{fields['firstname']} {fields['lastname']}"
    candidates = (fields["email"], fields["firstname"], fields["lastname"], fullname, fields["companyname"])
    return any(candidate.lower().startswith(search) for candidate in candidates)


def _transaction_matches(t: FakeTransaction, p: dict[str, str]) -> bool:
    return (
        (not p.get("invoiceid") or t.invoiceid == _int(p["invoiceid"]))
        and (not p.get("clientid") or t.userid == _int(p["clientid"]))
        and (not p.get("transid") or t.transid == p["transid"])
    )


def _pay_method_row(m: FakePayMethod) -> dict[str, Any]:
    return {
        "id": m.id,
        "type": m.type,
        "description": m.description,
        "gateway_name": m.gateway_name,
        "contact_type": "Client",
        "contact_id": m.clientid,
        "card_last_four": m.card_last_four,
        "expiry_date": m.expiry_date,
        "start_date": "",
        "issue_number": "",
        "card_type": "Visa",
        "remote_token": m.remote_token,
        "last_updated": "17/05/2019 10:01",
    }
