"""One WHMCS API call over HTTP: the form, the POST, and the classification of whatever comes back.

This is the only place that sees the credentials. It sends them in the form body (never the URL), never
logs a body, and redacts the identifier, secret and access key from any text WHMCS echoes back before that
text reaches an error or a log line.

Reads are retried here with bounded, jittered exponential backoff; writes never are, because no WHMCS
write is idempotent (research section 5): a write whose fate is unknown raises
:class:`~bridge.whmcs.errors.WhmcsTransportError` with ``in_doubt=True`` and the caller settles it by
looking its reference up.

Proxies and CA bundles come from the environment as ``requests`` reads them (``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``; ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` when TLS
verification is on), read once when the transport is made rather than on every call: scanning the
environment per call cost the push about a millisecond of CPU per row on its threads' critical path. A
changed environment takes effect when the bridge restarts. For the same reason what ``requests`` works out
per call from the CA bundle (whether it names a file or a directory: a ``stat`` on every call, and a turn
lost at the interpreter lock on a loaded machine) is worked out once per endpoint (:class:`_SettledAdapter`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import requests
import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from urllib3.exceptions import MaxRetryError, NewConnectionError

import bridge
from bridge.whmcs.errors import (
    API_PATH,
    WhmcsAuthError,
    WhmcsBusinessError,
    WhmcsError,
    WhmcsResponseError,
    WhmcsTransportError,
)
from bridge.whmcs.shapes import format_form_value, unflatten

FormValue = str | int | bool | Decimal | date
Wait = Callable[[RetryCallState], float]

_AUTH_PREFIXES = ("invalid ip", "forbidden ip", "authentication failed", "invalid permissions")
_RESERVED = frozenset({"action", "identifier", "secret", "accesskey", "username", "password", "responsetype"})
_MAX_MESSAGE = 300

log = structlog.get_logger("bridge.whmcs")


def default_wait() -> Wait:
    """Exponential backoff with full jitter: about 0.5 s, 1 s, 2 s ... capped at 8 s per wait."""
    return wait_random_exponential(multiplier=0.5, max=8)


class Transport:
    """Posts actions to ``<url>/includes/api.php`` and returns the decoded success body.

    ``read_attempts`` bounds the tries of a read (1 = no retry); ``wait`` is the tenacity wait strategy
    between them (tests pass ``tenacity.wait_none()``) and ``sleep`` what waits it out (the daemon passes a
    sleep that ends at shutdown).
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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if read_attempts < 1:
            raise ValueError("read_attempts must be at least 1")
        self.endpoint = url.rstrip("/") + API_PATH
        self._credentials = {"identifier": identifier, "secret": secret}
        if access_key:
            self._credentials["accesskey"] = access_key
        self._verify = _ca_bundle_from_environment() if verify is True else verify
        self._timeout = (connect_timeout, read_timeout)
        self._read_attempts = read_attempts
        self._wait = wait if wait is not None else default_wait()
        self._sleep = sleep
        self._session = session if session is not None else _new_session(self.endpoint)
        self.guard: Callable[[], None] = _unguarded

    def close(self) -> None:
        self._session.close()

    def call(self, action: str, params: Mapping[str, FormValue | None], *, write: bool) -> dict[str, Any]:
        """The success body of ``action``, unflattened; raises a typed WhmcsError otherwise."""
        form = self._form(action, params)
        if write:
            return self._send(action, form, write=True)
        retrying = Retrying(
            stop=stop_after_attempt(self._read_attempts),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        return retrying(self._send, action, form, write=False)

    def redact(self, text: str) -> str:
        """``text`` without any credential in it, cut to a readable length."""
        for value in self._credentials.values():
            if value:
                text = text.replace(value, "[redacted]")
        return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE] + "..."

    def _form(self, action: str, params: Mapping[str, FormValue | None]) -> dict[str, str]:
        form = {"action": action, **self._credentials, "responsetype": "json"}
        for key, value in params.items():
            if key in _RESERVED:
                raise ValueError(f"{action}: parameter {key!r} is set by the client itself")
            if value is not None:
                form[key] = format_form_value(value, f"{action} {key}")
        return form

    def _send(self, action: str, form: dict[str, str], *, write: bool) -> dict[str, Any]:
        self.guard()  # the caller's last word before anything leaves: a lost lease stops it here
        started = time.monotonic()
        try:
            response = self._session.send(
                self._prepared(form), timeout=self._timeout, verify=self._verify, allow_redirects=False
            )
        except requests.RequestException as error:
            failure = self._transport_failure(action, error, write=write)
            _log_failure(action, failure, started)
            raise failure from None
        try:
            body = self._interpret(action, response, write=write)
        except WhmcsError as failure:
            _log_failure(action, failure, started, status=response.status_code)
            raise
        log.debug("whmcs.call", action=action, http_status=response.status_code, elapsed_ms=_ms(started))
        return body

    def _prepared(self, form: dict[str, str]) -> requests.PreparedRequest:
        """The POST of ``form`` with the session's headers and cookies, prepared without merging the
        session's settings into a new request on every call (what ``Session.post`` does, at a CPU cost
        on the push threads' critical path; the session's settings are fixed when it is made)."""
        prepared = requests.PreparedRequest()
        session = self._session
        prepared.prepare(
            method="POST", url=self.endpoint, headers=session.headers, data=form, cookies=session.cookies
        )
        return prepared

    def _transport_failure(
        self, action: str, error: requests.RequestException, *, write: bool
    ) -> WhmcsTransportError:
        if isinstance(error, requests.ConnectTimeout):
            problem = f"could not connect within {self._timeout[0]} s"
        elif isinstance(error, requests.ReadTimeout):
            problem = f"no answer within {self._timeout[1]} s"
        elif isinstance(error, requests.exceptions.SSLError):
            problem = "TLS failed; check the certificate or set whmcs.ca_bundle"
        elif _never_connected(error):
            problem = "connection refused or host not found"
        elif isinstance(error, requests.ConnectionError):
            problem = "connection dropped before an answer"
        else:
            problem = f"request failed ({type(error).__name__})"
        return WhmcsTransportError(action, problem, in_doubt=write and not _never_sent(error))

    def _interpret(self, action: str, response: requests.Response, *, write: bool) -> dict[str, Any]:
        status = response.status_code
        body = _json_object(response.content)
        message = self.redact(_message(body))
        result = _result(body)
        if status in (401, 403) or (result == "error" and _is_auth_message(message)):
            raise WhmcsAuthError(action, message, http_status=status)
        if 300 <= status < 400:
            raise WhmcsTransportError(
                action,
                f"HTTP {status} redirect; set whmcs.url to the address WHMCS answers at (https?)",
                in_doubt=False,
            )
        if body is None:
            raise WhmcsTransportError(action, _not_json(response), in_doubt=write)
        if status >= 500 or not (200 <= status < 300 or result == "error"):
            detail = f": {message}" if message else ""
            raise WhmcsTransportError(action, f"HTTP {status}{detail}", in_doubt=write)
        if result == "error":
            raise WhmcsBusinessError(action, message)
        if result != "success":
            raise WhmcsResponseError(action, "answer says neither success nor error", in_doubt=write)
        return body


def _unguarded() -> None:
    """No guard: every call may go."""


class _SettledAdapter(requests.adapters.HTTPAdapter):
    """``requests``' adapter, with the connection pool's key attributes for a URL, CA bundle and client
    certificate worked out once rather than on every call (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[tuple[str, object, object], tuple[dict[str, Any], dict[str, Any]]] = {}

    def build_connection_pool_key_attributes(  # type: ignore[override]  # the stubs' narrower TypedDicts
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        key = (str(request.url), verify, cert)
        found = self._keys.get(key)
        if found is None:
            host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
            found = self._keys[key] = (dict(host), dict(pool))
        return dict(found[0]), dict(found[1])


def _new_session(endpoint: str) -> requests.Session:
    """A session that reads nothing from the environment per call: the proxies for ``endpoint`` are
    resolved here, once, and the CA bundle's kind once (see the module docstring)."""
    session = requests.Session()
    adapter = _SettledAdapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.trust_env = False
    session.proxies.update(requests.utils.get_environ_proxies(endpoint))
    session.headers.update(
        {"User-Agent": f"billing-bridge/{bridge.__version__}", "Accept": "application/json"}
    )
    return session


def _ca_bundle_from_environment() -> bool | str:
    """TLS verification on: the CA bundle ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` names, as
    ``requests`` would read it per call, or the default bundle."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def _json_object(content: bytes) -> dict[str, Any] | None:
    """The body as a JSON object with every float as an exact Decimal, or None if it is not one."""
    try:
        decoded = json.loads(content.decode("utf-8-sig"), parse_float=Decimal)
    except (UnicodeDecodeError, ValueError):
        return None
    return unflatten(decoded) if isinstance(decoded, dict) else None


def _result(body: dict[str, Any] | None) -> str:
    """``result`` (``status`` for the few actions such as AddBillableItem that use it), lower-cased."""
    if body is None:
        return ""
    value = body.get("result", body.get("status"))
    return value.strip().lower() if isinstance(value, str) else ""


def _message(body: dict[str, Any] | None) -> str:
    value = body.get("message") if body is not None else None
    return value.strip() if isinstance(value, str) else ""


def _is_auth_message(message: str) -> bool:
    return message.lower().startswith(_AUTH_PREFIXES)


def _not_json(response: requests.Response) -> str:
    kind = response.headers.get("Content-Type", "no content type").split(";")[0]
    return f"HTTP {response.status_code}: answer is not a JSON object ({kind}, {len(response.content)} bytes)"


def _never_connected(error: requests.RequestException) -> bool:
    reason = error.args[0] if error.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


def _never_sent(error: requests.RequestException) -> bool:
    """Whether the request provably never reached the server (so a write is not in doubt)."""
    return isinstance(error, requests.ConnectTimeout) or _never_connected(error)


def _retryable(error: BaseException) -> bool:
    return isinstance(error, WhmcsTransportError) and not isinstance(error, WhmcsResponseError)


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "whmcs.retry",
        action=state.args[0] if state.args else None,
        attempt=state.attempt_number,
        error=str(error),
    )


def _log_failure(action: str, error: Exception, started: float, *, status: int | None = None) -> None:
    """A refusal WHMCS answered cleanly is routine (a lookup that finds nothing); the rest is a warning."""
    level = log.debug if isinstance(error, WhmcsBusinessError) else log.warning
    level(
        "whmcs.call_failed",
        action=action,
        http_status=status,
        elapsed_ms=_ms(started),
        error_type=type(error).__name__,
        error=str(error),
    )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
