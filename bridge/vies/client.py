"""The EU VIES REST API: one VAT ID consultation, typed, with timeouts and bounded retries.

``POST <url>/check-vat-number`` with ``{"countryCode", "vatNumber"}`` and, when ``vies.requester_vat_id``
is set, ``requesterMemberStateCode`` and ``requesterNumber``, so that VIES returns a consultation number
(``requestIdentifier``) to keep as evidence. docs/vies.md records the shapes and where they come from.

A consultation changes nothing anywhere, so it may be repeated: an answer that says VIES could not
answer *right now* (MS_UNAVAILABLE, TIMEOUT, the concurrency limits, HTTP 5xx, no answer in time) is
asked again, up to ``attempts`` times with jittered exponential waits, and never after the stop event is
set (the daemon is shutting down). Whatever comes back last is returned as a value, never raised: every
answer is evidence for the 48-hour rule.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests
import structlog

import bridge
from bridge.domain.instants import as_utc
from bridge.vies.answers import REQUESTER_FIELD, ViesAnswer, ViesInvalidInput, ViesUnavailable, ViesVerdict
from bridge.vies.settings import ViesSettings
from bridge.vies.vatid import VatId, parse_vat_id

CHECK_PATH = "/check-vat-number"

Backoff = Callable[[int], float]
"""Seconds to wait after failed attempt number ``n`` (1-based) before the next one."""

TRANSIENT_CODES = frozenset({
    "MS_UNAVAILABLE", "TIMEOUT", "SERVICE_UNAVAILABLE",
    "GLOBAL_MAX_CONCURRENT_REQ", "GLOBAL_MAX_CONCURRENT_REQ_TIME",
    "MS_MAX_CONCURRENT_REQ", "MS_MAX_CONCURRENT_REQ_TIME",
    "NO_ANSWER", "NO_CONNECTION",
})  # fmt: skip
"""Codes worth asking again in a moment: VIES's own (checkVatService.wsdl) and ours for the network."""

_INPUT_CODES = {"INVALID_INPUT": "vat_number", "INVALID_REQUESTER_INFO": REQUESTER_FIELD}
_WITHHELD = {"", "---"}
_DATE_WITH_OFFSET = re.compile(r"(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})")
_MAX_DETAIL = 200

log = structlog.get_logger("bridge.vies")


def jittered_backoff(max_wait: float) -> Backoff:
    """Full-jitter exponential waits: up to 1 s, 2 s, 4 s ... never more than ``max_wait``."""
    return lambda attempt: random.uniform(0, min(max_wait, 2.0 ** (attempt - 1)))


class ViesClient:
    """Asks VIES whether a VAT ID is valid. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        url: str,
        *,
        requester: VatId | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        attempts: int = 3,
        backoff: Backoff | None = None,
        stop_event: threading.Event | None = None,
        session: requests.Session | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.endpoint = url.rstrip("/") + CHECK_PATH
        self._requester = requester
        self._timeout = (connect_timeout, read_timeout)
        self._attempts = attempts
        self._backoff = backoff if backoff is not None else jittered_backoff(8.0)
        self._stop = stop_event if stop_event is not None else threading.Event()
        self._session = session if session is not None else _new_session()

    @classmethod
    def from_settings(
        cls, settings: ViesSettings, *, stop_event: threading.Event | None = None
    ) -> ViesClient:
        """A client as ``[vies]`` configures it; ``stop_event`` is the daemon's shutdown signal."""
        return cls(
            settings.url,
            requester=settings.requester(),
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            attempts=settings.attempts,
            backoff=jittered_backoff(settings.retry_wait_max_seconds),
            stop_event=stop_event,
        )

    def __enter__(self) -> ViesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def check_text(self, text: str, *, country: str | None = None) -> ViesAnswer:
        """Check ``text`` offline first (raises :class:`~bridge.vies.vatid.InvalidVatId`), then ask VIES."""
        return self.check(parse_vat_id(text, country=country))

    def check(self, vat_id: VatId) -> ViesAnswer:
        """VIES's answer about ``vat_id``, asking again while it is only momentarily unavailable."""
        attempt = 1
        while True:
            answer = self._consult(vat_id)
            if not _worth_asking_again(answer) or attempt >= self._attempts or self._stop.is_set():
                return answer
            delay = self._backoff(attempt)
            log.info(
                "vies.retry", vat_id=str(vat_id), attempt=attempt, code=_code(answer), wait_seconds=delay
            )
            if self._stop.wait(delay):
                return answer
            attempt += 1

    def _consult(self, vat_id: VatId) -> ViesAnswer:
        started = time.monotonic()
        try:
            response = self._session.post(
                self.endpoint, json=self._body(vat_id), timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            answer: ViesAnswer = ViesUnavailable(vat_id, *self._network_failure(error))
        else:
            answer = _interpret(vat_id, response)
        log.info(
            "vies.check",
            vat_id=str(vat_id),
            outcome=answer.outcome,
            code=_code(answer),
            elapsed_ms=round((time.monotonic() - started) * 1000),
        )
        return answer

    def _body(self, vat_id: VatId) -> dict[str, str]:
        body = {"countryCode": vat_id.prefix, "vatNumber": vat_id.number}
        if self._requester is not None:
            body["requesterMemberStateCode"] = self._requester.prefix
            body["requesterNumber"] = self._requester.number
        return body

    def _network_failure(self, error: requests.RequestException) -> tuple[str, str]:
        if isinstance(error, requests.ConnectTimeout):
            return "NO_ANSWER", f"could not connect within {self._timeout[0]} s"
        if isinstance(error, requests.ReadTimeout):
            return "NO_ANSWER", f"no answer within {self._timeout[1]} s"
        if isinstance(error, requests.exceptions.SSLError):
            return "NO_CONNECTION", "TLS failed; check the machine's CA certificates"
        if isinstance(error, requests.ConnectionError):
            return "NO_CONNECTION", "connection refused, dropped, or host not found"
        return "NO_CONNECTION", f"request failed ({type(error).__name__})"


def _new_session() -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {"User-Agent": f"billing-bridge/{bridge.__version__}", "Accept": "application/json"}
    )
    return session


def _interpret(vat_id: VatId, response: requests.Response) -> ViesAnswer:
    """The typed answer in ``response``; anything we cannot read is "unavailable", never a verdict."""
    status = response.status_code
    body = _json_object(response.content)
    codes = _error_codes(body) if body is not None else []
    if codes:
        return _refusal(vat_id, codes, status)
    if status != 200:
        return ViesUnavailable(vat_id, f"HTTP_{status}", f"HTTP {status} without a VIES error code")
    if body is None:
        return _malformed(vat_id, f"the answer is not a JSON object ({len(response.content)} bytes)")
    return _verdict(vat_id, body)


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        decoded = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def _error_codes(body: Mapping[str, Any]) -> list[str]:
    """VIES's error codes: ``errorWrappers[].error`` (check-vat-number), or a ``userError`` other than
    VALID/INVALID (the ``ms/{ms}/vat/{vat}`` shape, which some deployments also answer with)."""
    wrappers = body.get("errorWrappers")
    items = wrappers if isinstance(wrappers, list) else []
    codes = [str(item["error"]) for item in items if isinstance(item, dict) and item.get("error")]
    if not codes and body.get("actionSucceed") is False:
        codes = ["UNKNOWN_ERROR"]
    user_error = body.get("userError")
    if not codes and isinstance(user_error, str) and user_error not in ("", "VALID", "INVALID"):
        codes = [user_error]
    return codes


def _refusal(vat_id: VatId, codes: list[str], status: int) -> ViesAnswer:
    detail = f"VIES answered {', '.join(codes)} (HTTP {status})"[:_MAX_DETAIL]
    for code in codes:
        if code in _INPUT_CODES:
            return ViesInvalidInput(vat_id, code, _INPUT_CODES[code], detail)
    if status >= 500:  # VOW-ERR-1 and the like: VIES itself failed, asked again like any 5xx
        return ViesUnavailable(vat_id, f"HTTP_{status}", detail)
    return ViesUnavailable(vat_id, codes[0], detail)


def _verdict(vat_id: VatId, body: Mapping[str, Any]) -> ViesAnswer:
    valid = body.get("valid", body.get("isValid"))
    if not isinstance(valid, bool):
        return _malformed(vat_id, "the answer has no true/false 'valid'")
    about = (body.get("countryCode", vat_id.prefix), body.get("vatNumber", vat_id.number))
    if about != (vat_id.prefix, vat_id.number):
        return _malformed(vat_id, f"the answer is about {about[0]}{about[1]}, not {vat_id}")
    request_date = _request_date(body.get("requestDate"))
    if request_date is None:
        return _malformed(vat_id, f"requestDate {str(body.get('requestDate'))[:40]!r} is not a date")
    return ViesVerdict(
        vat_id,
        valid,
        request_date,
        consultation_number=_disclosed(body.get("requestIdentifier")),
        name=_disclosed(body.get("name")),
        address=_disclosed(body.get("address")),
    )


def _request_date(value: object) -> datetime | None:
    """VIES's requestDate as an aware UTC instant: ``2024-03-01T09:00:00.123Z``, or a date with its offset
    (``2024-03-01+01:00``, the SOAP form), read as the start of that day there. No zone: refused."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    date_only = _DATE_WITH_OFFSET.fullmatch(text)
    if date_only:
        text = f"{date_only.group(1)}T00:00:00{date_only.group(2)}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return as_utc(parsed) if parsed.tzinfo is not None else None


def _disclosed(value: object) -> str | None:
    """A text field, or None when VIES withholds it (``---``) or leaves it empty."""
    if not isinstance(value, str) or value.strip() in _WITHHELD:
        return None
    return value.strip()


def _malformed(vat_id: VatId, detail: str) -> ViesUnavailable:
    return ViesUnavailable(vat_id, "MALFORMED_REPLY", detail)


def _worth_asking_again(answer: ViesAnswer) -> bool:
    if not isinstance(answer, ViesUnavailable):
        return False
    return answer.code in TRANSIENT_CODES or answer.code.startswith("HTTP_5")


def _code(answer: ViesAnswer) -> str | None:
    return None if isinstance(answer, ViesVerdict) else answer.code
