"""A fake EU VIES REST API served over real HTTP on 127.0.0.1, in the shapes docs/vies.md records.

``POST /check-vat-number`` answers ``{"countryCode", "vatNumber", "requestDate", "valid",
"requestIdentifier", "name", "address", "trader*": "---", "trader*Match": "NOT_PROCESSED"}``; the
consultation number (``requestIdentifier``) is given only when the request names a requester, else
``""``. ``GET /ms/{ms}/vat/{number}`` answers the other documented shape (``isValid``, ``userError``).
VIES errors come as HTTP 200 ``{"actionSucceed": false, "errorWrappers": [{"error": "MS_UNAVAILABLE"}]}``;
a request VIES cannot read gets HTTP 500 ``VOW-ERR-1``.

Registered numbers are valid, every other number invalid, unless an answer is scripted per member state
or per number (a number's script wins over its country's): ``valid``, ``invalid``, ``error`` with a
VIES code (``MS_UNAVAILABLE``, ``TIMEOUT``, ...), ``timeout`` (the reply is held longer than the client
waits, then the connection is closed), ``malformed`` (an HTML page, or the ``body`` given), ``http_500``.
Every request is kept, so a test can show that a number never reached VIES::

    with FakeVies() as vies:
        vies.register("DE136695976", name="Beispiel GmbH")
        vies.script("error", country="FR", code="MS_UNAVAILABLE")
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from itertools import count
from typing import Any, Literal

from tests.fakes.http import Reply, ReplyingHandler, ServerThread

AnswerKind = Literal["valid", "invalid", "error", "timeout", "malformed", "http_500"]

MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
})  # fmt: skip
TRADER_FIELDS = ("traderName", "traderStreet", "traderPostalCode", "traderCity", "traderCompanyType")
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>"


@dataclass
class Script:
    """A scripted answer for a member state or one number; ``remaining`` None means every request."""

    kind: AnswerKind
    country: str | None
    number: str | None
    remaining: int | None
    code: str = "MS_UNAVAILABLE"
    body: Any = None


@dataclass(frozen=True)
class Registration:
    name: str
    address: str


class FakeVies:
    """The fake service and its state; all public methods are thread-safe.

    ``hold_seconds`` is how long a ``timeout`` holds the reply (longer than the client's read timeout);
    ``now`` is the fake's clock for ``requestDate``.
    """

    def __init__(
        self, *, hold_seconds: float = 2.0, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.hold_seconds = hold_seconds
        self.now = now
        self.requests: list[dict[str, Any]] = []
        self.registered: dict[str, Registration] = {}
        self._scripts: list[Script] = []
        self._consultations = count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._running: ServerThread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> FakeVies:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._running = ServerThread(server, "fake-vies")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        if self._running is not None:
            self._running.stop()

    @property
    def url(self) -> str:
        """The base URL, as ``vies.url`` takes it."""
        assert self._running is not None, "start the fake first"
        return self._running.url

    # -- test helpers ----------------------------------------------------------------------------------

    def register(self, vat_id: str, *, name: str = "---", address: str = "---") -> None:
        """Make ``vat_id`` (prefix and number, ``DE136695976``) a registered, valid number."""
        with self._lock:
            self.registered[vat_id] = Registration(name, address)

    def script(
        self,
        kind: AnswerKind,
        *,
        country: str | None = None,
        number: str | None = None,
        code: str = "MS_UNAVAILABLE",
        times: int | None = None,
        body: Any = None,
    ) -> None:
        """Answer ``kind`` for requests about ``country`` (a VIES prefix) or ``number`` (prefix and number)
        for the next ``times`` requests (every one when None). ``code`` is the VIES error of ``error``;
        ``body`` the JSON a ``malformed`` answer sends instead of an HTML page."""
        with self._lock:
            self._scripts.append(Script(kind, country, number, times, code, body))

    def numbers_asked(self) -> list[str]:
        """The VAT IDs (prefix and number) VIES was asked about, in order."""
        with self._lock:
            return [f"{body.get('countryCode', '')}{body.get('vatNumber', '')}" for body in self.requests]

    # -- request handling (called by the HTTP handler) -------------------------------------------------

    def check(self, body: Any, *, rest_get: bool = False) -> Reply | None:
        """The reply to one consultation, or None to hang up without one."""
        with self._lock:
            self.requests.append(body if isinstance(body, dict) else {"unreadable": body})
        if not isinstance(body, dict):
            return _json(500, _errors("VOW-ERR-1", "An unexpected error occurred. Please retry later."))
        country, number = str(body.get("countryCode") or ""), str(body.get("vatNumber") or "")
        if country not in MEMBER_STATES or not number:
            return _json(200, _errors("INVALID_INPUT"))
        if body.get("requesterMemberStateCode") and body["requesterMemberStateCode"] not in MEMBER_STATES:
            return _json(200, _errors("INVALID_REQUESTER_INFO"))
        script = self._take_script(country, country + number)
        if script is None:
            kind: AnswerKind = "valid" if country + number in self.registered else "invalid"
            return self._verdict(body, valid=kind == "valid", rest_get=rest_get)
        return self._scripted(script, body, rest_get=rest_get)

    def _take_script(self, country: str, vat_id: str) -> Script | None:
        with self._lock:
            live = [script for script in self._scripts if script.remaining is None or script.remaining > 0]
            matching = [script for script in live if script.number == vat_id] or [
                script for script in live if script.number is None and script.country in (None, country)
            ]
            if not matching:
                return None
            script = matching[0]
            if script.remaining is not None:
                script.remaining -= 1
            return script

    def _scripted(self, script: Script, body: dict[str, Any], *, rest_get: bool) -> Reply | None:
        if script.kind in ("valid", "invalid"):
            return self._verdict(body, valid=script.kind == "valid", rest_get=rest_get)
        if script.kind == "error":
            if rest_get:
                return _json(200, {"isValid": False, "userError": script.code, "requestDate": self._date()})
            return _json(200, _errors(script.code))
        if script.kind == "http_500":
            return _json(500, _errors("VOW-ERR-1", "An unexpected error occurred. Please retry later."))
        if script.kind == "malformed":
            if script.body is None:
                return 200, "text/html", HTML_PAGE
            return _json(200, script.body)
        self._stopping.wait(self.hold_seconds)  # timeout: the client gives up first
        return None

    def _verdict(self, body: dict[str, Any], *, valid: bool, rest_get: bool) -> Reply:
        vat_id = f"{body['countryCode']}{body['vatNumber']}"
        registration = self.registered.get(vat_id) if valid else None
        name, address = (registration.name, registration.address) if registration else ("---", "---")
        identifier = ""
        if body.get("requesterMemberStateCode") and body.get("requesterNumber"):
            identifier = f"WAPIAAAA{next(self._consultations):08d}"
        if rest_get:
            return _json(200, {
                "isValid": valid, "requestDate": self._date(), "userError": "VALID" if valid else "INVALID",
                "name": name, "address": address, "requestIdentifier": identifier,
                "originalVatNumber": body["vatNumber"], "vatNumber": body["vatNumber"],
            })  # fmt: skip
        reply: dict[str, Any] = {
            "countryCode": body["countryCode"], "vatNumber": body["vatNumber"], "requestDate": self._date(),
            "valid": valid, "requestIdentifier": identifier, "name": name, "address": address,
        }  # fmt: skip
        reply.update({field: "---" for field in TRADER_FIELDS})
        reply.update({f"{field}Match": "NOT_PROCESSED" for field in TRADER_FIELDS})
        return _json(200, reply)

    def _date(self) -> str:
        """``2024-03-01T09:00:00.123Z``, as VIES writes requestDate."""
        return self.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _errors(code: str, message: str | None = None) -> dict[str, Any]:
    wrapper = {"error": code} if message is None else {"error": code, "message": message}
    return {"actionSucceed": False, "errorWrappers": [wrapper]}


def _json(status: int, body: Any) -> Reply:
    return status, "application/json", json.dumps(body).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeVies


class _Handler(ReplyingHandler):
    """Reads the request, lets the fake answer, and writes the reply (or hangs up when told to)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.split("?")[0] != "/check-vat-number":
            self.reply(404, "application/json", b'{"error": "Not Found"}')
            return
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.answer(self._fake().check(body))

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 4 or parts[0] != "ms" or parts[2] != "vat":
            self.reply(404, "application/json", b'{"error": "Not Found"}')
            return
        self.answer(self._fake().check({"countryCode": parts[1], "vatNumber": parts[3]}, rest_get=True))

    def _fake(self) -> FakeVies:
        server = self.server
        assert isinstance(server, _Server)
        return server.fake
