"""A typed client for the parts of the SolusVM 2 REST API that post-pay billing needs.

Contract (see shared/research/solusvm2-api.md for the sources): base ``<url>/api/v1/``, headers
``Authorization: Bearer <token>``, ``Accept`` and ``Content-Type: application/json``; objects come under
``data``; lists are Laravel pages followed with ``?page=N`` until ``meta.last_page`` (no ``meta`` means
one page). Paging must add up: a ``meta.last_page`` beyond what ``meta.total`` and ``meta.per_page`` allow,
a page that answers for another page number, or an empty page before the last one is refused after that
one request, never followed to the end a broken ``meta`` promises.

Money is never a float: every JSON number is parsed as :class:`~decimal.Decimal`, and token amounts,
which SolusVM defines as integers, are refused when they are not whole.

Retries: a GET, and the state-setting POSTs ``suspend``/``resume``, are retried with exponential backoff
and full jitter on a connection error, a timeout, a 5xx and a 429 (waiting what ``Retry-After`` asks, up
to ``max_retry_wait``), at most ``max_attempts`` tries in all; other 4xx answers are never retried.
Creating a user and creating a login token are **not idempotent**: they are retried only when SolusVM
cannot have acted (the connection was never made, or a 429 refused it). When the request was sent and
no usable answer came back (read timeout, dropped connection, 5xx), :class:`SolusVMOutcomeUnknown` is
raised and the caller settles the outcome by looking it up: :meth:`SolusVMClient.find_user_by_email`
after :meth:`~SolusVMClient.create_user` (or use :meth:`~SolusVMClient.ensure_user`, which does so);
a lost one-time login token simply expires unused, so the caller asks for a new one.

Redirects are not followed: an API answering with a redirect means ``url`` is wrong (http vs https, a
login page), and following it could re-send a POST. The token never appears in an error or a log line,
and neither does a query string (``filter[search]`` carries a customer's e-mail address).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import requests
import structlog
from dateutil.parser import isoparse
from pydantic import SecretStr
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from urllib3.exceptions import NewConnectionError

from bridge.clock import Clock, SystemClock
from bridge.errors import ConfigError, VendorError, VendorRefused
from bridge.solusvm.settings import (
    DEFAULT_SSO_URL_TEMPLATE,
    SolusVMSettings,
    check_sso_template,
    normalise_base_url,
)

SOURCE: Final = "solusvm"
API_PREFIX: Final = "/api/v1/"
MAX_PAGES: Final = 10_000
STATUS_STARTED: Final = "started"

log = structlog.get_logger(__name__)

Backoff = Callable[[RetryCallState], float]
T = TypeVar("T")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Server:
    """A virtual server as ``GET servers`` lists it; ``status`` is SolusVM's (``started``, ``stopped``...)."""

    id: int
    uuid: str
    name: str
    status: str
    is_suspended: bool
    user_id: int
    user_email: str
    plan_id: int
    created_at: datetime

    @property
    def is_running(self) -> bool:
        """Whether SolusVM reports the server as running (status ``started``), the state that is billed."""
        return self.status == STATUS_STARTED


@dataclass(frozen=True)
class Plan:
    """A plan with its token rates (whole tokens) and, when SolusVM has them, its display prices."""

    id: int
    name: str
    tokens_per_hour: int
    tokens_per_month: int
    ip_tokens_per_hour: int
    ip_tokens_per_month: int
    price_per_hour: Decimal | None
    price_per_month: Decimal | None
    currency_code: str | None = None


@dataclass(frozen=True)
class User:
    """A SolusVM user; ``billing_user_id`` is the WHMCS client id when the billing side set one."""

    id: int
    email: str
    status: str
    billing_user_id: int | None
    created_at: datetime


@dataclass(frozen=True)
class Task:
    """An asynchronous SolusVM operation; poll ``GET tasks/{id}`` to follow it."""

    id: int
    action: str
    status: str


# --------------------------------------------------------------------------- errors


class SolusVMValidationError(VendorRefused):
    """SolusVM refused the content of a request (HTTP 422, Laravel validation errors).

    ``errors`` maps each field to SolusVM's messages; ``field`` is the first field at fault.
    """

    def __init__(self, path: str, errors: Mapping[str, list[str]], message: str | None = None) -> None:
        self.errors = dict(errors)
        field = next(iter(self.errors), None)
        details = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in self.errors.items())
        problem = f"refused the request (HTTP 422): {details or message or 'no reason given'}"
        super().__init__(SOURCE, path, problem, field=field)


class SolusVMOutcomeUnknown(VendorError):
    """A non-idempotent request was sent but no usable answer came back, so it was not repeated.

    SolusVM may or may not have acted. Settle it by looking the result up before trying again, e.g.
    :meth:`SolusVMClient.find_user_by_email` after :meth:`SolusVMClient.create_user`.
    """


class _Transient(Exception):
    """One failed attempt that a retry may cure; never leaves this module."""

    def __init__(self, reason: str, *, maybe_applied: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


class _BearerAuth(requests.auth.AuthBase):
    """Sets the bearer header; being the session's auth also keeps ~/.netrc from overriding it."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(token=**********)"


# --------------------------------------------------------------------------- the client


class SolusVMClient:
    """The SolusVM 2 API, typed; every vendor failure surfaces as :class:`~bridge.errors.VendorError`.

    ``sleep`` and ``backoff`` are injectable so tests never sleep: ``sleep`` receives every wait in
    seconds (Retry-After included), ``backoff`` computes the wait from tenacity's retry state. ``clock``
    turns an HTTP-date ``Retry-After`` into seconds. Use one client per thread: it keeps one
    ``requests.Session``, which is not promised to be thread-safe.
    """

    def __init__(
        self,
        url: str,
        token: str | SecretStr,
        *,
        verify: bool | str = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        per_page: int = 100,
        max_attempts: int = 5,
        max_retry_wait: float = 60.0,
        sso_url_template: str = DEFAULT_SSO_URL_TEMPLATE,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value().strip():
            raise ValueError("the SolusVM API token is empty; set solusvm.token")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        check_sso_template(sso_url_template)
        self._base_url = normalise_base_url(url)
        self._base_path = urlsplit(self._base_url).path
        self._timeout = (connect_timeout, read_timeout)
        self._per_page = per_page
        self._max_attempts = max_attempts
        self._max_retry_wait = max_retry_wait
        self._sso_url_template = sso_url_template
        self._sleep = sleep
        self._backoff: Backoff = backoff or wait_random_exponential(multiplier=0.5, max=max_retry_wait)
        self._clock: Clock = clock or SystemClock()
        self._session = session or requests.Session()
        self._session.auth = _BearerAuth(secret)
        self._session.verify = verify
        self._session.headers.update({"Accept": "application/json", "Content-Type": "application/json"})

    @classmethod
    def from_settings(
        cls,
        settings: SolusVMSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff: Backoff | None = None,
        clock: Clock | None = None,
    ) -> SolusVMClient:
        """A client for the node ``settings`` names; raises ConfigError when url or token is missing."""
        if settings.url is None or settings.token is None:
            raise ConfigError(
                "solusvm.url and solusvm.token are required to talk to SolusVM; set both in [solusvm]"
            )
        return cls(
            settings.url,
            settings.token,
            verify=settings.verify(),
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            per_page=settings.per_page,
            max_attempts=settings.max_attempts,
            max_retry_wait=settings.max_retry_wait_seconds,
            sso_url_template=settings.sso_url_template,
            session=session,
            sleep=sleep,
            backoff=backoff,
            clock=clock,
        )

    def close(self) -> None:
        """Release the pooled connections."""
        self._session.close()

    def __enter__(self) -> SolusVMClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SolusVMClient(url={self._base_url!r})"

    # ------------------------------------------------------------------ servers

    def servers(self, user_id: int | None = None) -> list[Server]:
        """Every server, or a user's servers; each server once even if pages shift while being read."""
        params = {} if user_id is None else {"filter[user_id]": str(user_id)}
        return _unique(self._list("servers", params, _parse_server), key=lambda server: server.id)

    def server(self, server_id: int) -> Server:
        """One server by id."""
        endpoint = f"servers/{int(server_id)}"
        return _parse_server(_Reader.data_of(self._request("GET", endpoint), self._path(endpoint)))

    def suspend_server(self, server_id: int) -> Task | None:
        """Suspend a server; the Task when SolusVM answers with one (the answer's shape is unverified)."""
        return self._server_action(server_id, "suspend")

    def resume_server(self, server_id: int) -> Task | None:
        """Resume a suspended server; the Task when SolusVM answers with one."""
        return self._server_action(server_id, "resume")

    def delete_server(self, server_id: int) -> Task | None:
        """Delete a server for good (automatic termination); a Task, or None for SolusVM's 204."""
        endpoint = f"servers/{int(server_id)}"
        payload = self._request("DELETE", endpoint)
        return _maybe_task(payload, self._path(endpoint)) if payload is not None else None

    def _server_action(self, server_id: int, action: str) -> Task | None:
        endpoint = f"servers/{int(server_id)}/{action}"
        payload = self._request("POST", endpoint)
        return _maybe_task(payload, self._path(endpoint))

    # ------------------------------------------------------------------ plans

    def plans(self) -> list[Plan]:
        """Every plan with its token rates."""
        return _unique(self._list("plans", {}, _parse_plan), key=lambda plan: plan.id)

    # ------------------------------------------------------------------ users

    def users(self) -> list[User]:
        """Every user."""
        return _unique(self._list("users", {}, _parse_user), key=lambda user: user.id)

    def find_user_by_email(self, email: str) -> User | None:
        """The user with exactly this e-mail address (case-insensitively), or None.

        ``filter[search]`` matches substrings, so the answer is narrowed here; an exact-case match wins
        over a case-insensitive one, and two case-insensitive matches without an exact one are an error.
        """
        wanted = email.strip()
        found = self._list("users", {"filter[search]": wanted}, _parse_user)
        matches = _unique(
            (user for user in found if user.email.casefold() == wanted.casefold()), lambda u: u.id
        )
        exact = [user for user in matches if user.email == wanted]
        if len(exact) == 1 or len(matches) == 1:
            return exact[0] if exact else matches[0]
        if matches:
            ids = ", ".join(str(user.id) for user in matches)
            raise VendorError(
                SOURCE,
                self._path("users"),
                f"several users ({ids}) match the e-mail address; merge them in SolusVM",
            )
        return None

    def create_user(
        self,
        email: str,
        password: str | SecretStr,
        billing_user_id: int | None = None,
        status: str = "active",
    ) -> User:
        """Create a user; not idempotent (see the module docstring), so it may raise SolusVMOutcomeUnknown.

        ``billing_user_id`` (the WHMCS client id) is sent as a string, as the official WHMCS module does.
        A duplicate e-mail raises :class:`SolusVMValidationError` with ``field == "email"``.
        """
        secret = password.get_secret_value() if isinstance(password, SecretStr) else password
        body: dict[str, Any] = {"email": email.strip(), "password": secret, "status": status}
        if billing_user_id is not None:
            body["billing_user_id"] = str(billing_user_id)
        payload = self._request("POST", "users", body=body, idempotent=False)
        return _parse_user(_Reader.data_of(payload, self._path("users")))

    def ensure_user(self, email: str, password: str | SecretStr, billing_user_id: int | None = None) -> User:
        """The user with this e-mail address, created when missing; settles an unknown create outcome.

        An existing user is returned as it is (its ``billing_user_id`` is not changed).
        """
        existing = self.find_user_by_email(email)
        if existing is not None:
            return existing
        try:
            return self.create_user(email, password, billing_user_id)
        except SolusVMOutcomeUnknown:
            settled = self.find_user_by_email(email)
            if settled is None:
                raise
            return settled
        except SolusVMValidationError as error:
            raced = self.find_user_by_email(email) if error.field == "email" else None
            if raced is None:
                raise
            return raced

    def create_login_token(self, user_id: int) -> str:
        """A one-time token for the user (``POST users/{id}/tokens``); never logged, never retried blindly."""
        endpoint = f"users/{int(user_id)}/tokens"
        payload = self._request("POST", endpoint, body={"is_one_time": True}, idempotent=False)
        data = _Reader.data_of(payload, self._path(endpoint))
        token = data.text("access_token")
        if not token:
            raise VendorError(SOURCE, self._path(endpoint), "the login token is empty", field="access_token")
        return token

    def sso_url(self, token: str) -> str:
        """The browser link that logs in with a one-time token (template from settings; form unverified)."""
        return self._sso_url_template.format(url=self._base_url, token=quote(token, safe=""))

    # ------------------------------------------------------------------ paging

    def _list(self, endpoint: str, params: Mapping[str, str], parse: Callable[[_Reader], T]) -> Iterator[T]:
        path = self._path(endpoint)
        page = 1
        while True:
            query = {**params, "page": str(page), "per_page": str(self._per_page)}
            payload = self._request("GET", endpoint, params=query)
            items = list(_Reader.items_of(payload, path, page))
            last_page = _last_page(payload, path, page, has_items=bool(items))
            yield from (parse(item) for item in items)
            if page >= last_page:
                return
            if page >= MAX_PAGES:
                raise VendorError(
                    SOURCE, path, f"lists more than {MAX_PAGES} pages; refusing to read further"
                )
            page += 1

    # ------------------------------------------------------------------ one request

    def _path(self, endpoint: str) -> str:
        return f"{self._base_path}{API_PREFIX}{endpoint}"

    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:
        """The decoded JSON answer (None for an empty 2xx), after the retries the call allows."""
        path = self._path(endpoint)
        url = f"{self._base_url}{API_PREFIX}{endpoint}"
        attempts = 0

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            return self._send(method, url, params, body)

        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda error: self._should_retry(error, idempotent)),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(method, path, state),
            reraise=True,
        )
        try:
            response = retrying(attempt)
        except _Transient as failure:
            raise self._give_up(failure, path, idempotent, attempts) from None
        log.debug("solusvm.answer", method=method, path=path, status=response.status_code, attempts=attempts)
        return _decode(response, path)

    def _send(
        self, method: str, url: str, params: Mapping[str, str] | None, body: Mapping[str, Any] | None
    ) -> requests.Response:
        """One HTTP exchange; a failure a retry may cure raises _Transient."""
        try:
            response = self._session.request(
                method, url, params=params, json=body, timeout=self._timeout, allow_redirects=False
            )
        except requests.exceptions.SSLError:
            raise VendorError(
                SOURCE,
                urlsplit(url).path,
                "the TLS handshake failed (certificate not trusted, or not a TLS endpoint); set "
                "solusvm.ca_bundle to the node's CA, or check that solusvm.url is right",
            ) from None
        except requests.ConnectTimeout:
            raise _Transient("connecting timed out", maybe_applied=False) from None
        except requests.Timeout:
            raise _Transient("no answer within the read timeout", maybe_applied=True) from None
        except requests.ConnectionError as error:
            if _never_sent(error):
                raise _Transient("cannot connect", maybe_applied=False) from None
            raise _Transient("the connection was dropped before an answer", maybe_applied=True) from None
        except requests.exceptions.ChunkedEncodingError:
            raise _Transient("the answer was cut off", maybe_applied=True) from None
        except requests.RequestException as error:
            raise VendorError(
                SOURCE, urlsplit(url).path, f"request failed ({type(error).__name__})"
            ) from None
        if response.status_code == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"), self._clock)
            raise _Transient("rate limited (HTTP 429)", maybe_applied=False, retry_after=retry_after)
        if response.status_code >= 500:
            raise _Transient(f"server error (HTTP {response.status_code})", maybe_applied=True)
        return response

    def _should_retry(self, error: BaseException, idempotent: bool) -> bool:
        if not isinstance(error, _Transient):
            return False
        if error.maybe_applied and not idempotent:
            return False
        return error.retry_after is None or error.retry_after <= self._max_retry_wait

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            return error.retry_after
        return min(self._backoff(state), self._max_retry_wait)

    def _give_up(self, failure: _Transient, path: str, idempotent: bool, attempts: int) -> VendorError:
        if failure.retry_after is not None and failure.retry_after > self._max_retry_wait:
            return VendorError(
                SOURCE,
                path,
                f"rate limited (HTTP 429); SolusVM asks to wait {failure.retry_after:g} s, more than "
                f"solusvm.max_retry_wait_seconds ({self._max_retry_wait:g}); try again later",
            )
        if failure.maybe_applied and not idempotent:
            return SolusVMOutcomeUnknown(
                SOURCE,
                path,
                f"{failure.reason} after the request was sent; SolusVM may or may not have applied it, so it "
                "was not repeated; look the result up before trying again",
            )
        return VendorError(
            SOURCE,
            path,
            f"{failure.reason} on each of {attempts} attempt(s); check that SolusVM is up and reachable "
            "at solusvm.url",
        )


# --------------------------------------------------------------------------- transport helpers


def _never_sent(error: requests.ConnectionError) -> bool:
    """Whether the connection failed before the request could reach SolusVM (refused, DNS, unreachable)."""
    reason: object = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError)


def _retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.now()).total_seconds())


def _log_retry(method: str, path: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    reason = error.reason if isinstance(error, _Transient) else type(error).__name__
    wait = state.next_action.sleep if state.next_action is not None else None
    log.warning(
        "solusvm.retry", method=method, path=path, reason=reason, attempt=state.attempt_number, wait=wait
    )


def _decode(response: requests.Response, path: str) -> Any:
    """The JSON answer of a non-5xx, non-429 response; any other outcome raises VendorError."""
    status = response.status_code
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("Location", "")).path or "elsewhere"
        raise VendorError(
            SOURCE,
            path,
            f"redirected (HTTP {status}) to {target}; set solusvm.url to the node's https base URL",
        )
    if status == 401:
        raise VendorError(
            SOURCE,
            path,
            "the API token was refused (HTTP 401); create a new token in SolusVM (Account -> API Tokens) "
            "and set solusvm.token",
        )
    if status == 403:
        raise VendorError(
            SOURCE, path, "the API token may not do this (HTTP 403); use a token of an administrator account"
        )
    if status == 204 or (200 <= status < 300 and not response.content.strip()):
        return None
    if status >= 400:
        raise _refusal(response, path)
    return _json(response, path)


def _json(response: requests.Response, path: str) -> Any:
    content_type = response.headers.get("Content-Type", "")
    try:
        return json.loads(response.content.decode(response.encoding or "utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        kind = "an HTML page" if "html" in content_type.lower() else f"{content_type or 'untyped data'}"
        raise VendorError(
            SOURCE,
            path,
            f"answered HTTP {response.status_code} with {kind} instead of JSON; check that solusvm.url is "
            "the SolusVM 2 management node and not a proxy or login page",
        ) from None


def _refusal(response: requests.Response, path: str) -> VendorError:
    """The error for a 4xx answer, with SolusVM's own message when it sent one."""
    try:
        payload = json.loads(response.content.decode("utf-8"), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        payload = None
    message = payload.get("message") if isinstance(payload, dict) else None
    message = message if isinstance(message, str) and message.strip() else None
    if response.status_code == 422 and isinstance(payload, dict):
        return SolusVMValidationError(path, _validation_errors(payload.get("errors")), message)
    if response.status_code == 404:
        return VendorError(SOURCE, path, f"not found (HTTP 404){': ' + message[:200] if message else ''}")
    reason = message[:200] if message else "no reason given"
    return VendorError(SOURCE, path, f"refused the request (HTTP {response.status_code}): {reason}")


def _validation_errors(value: object) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    errors: dict[str, list[str]] = {}
    for field, texts in value.items():
        items = texts if isinstance(texts, list) else [texts]
        errors[str(field)] = [str(text) for text in items]
    return errors


def _last_page(payload: Any, path: str, page: int, *, has_items: bool) -> int:
    """``meta.last_page`` once the page's ``meta`` adds up, or 0 when there is no ``meta`` (one page)."""
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if meta is None:
        return 0
    if not isinstance(meta, dict):
        raise VendorError(SOURCE, path, "is not a JSON object", field="meta")
    if "last_page" not in meta:
        raise VendorError(SOURCE, path, "missing from the page", field="meta.last_page")
    last_page = _as_int(meta["last_page"], path, "meta.last_page", f"page {page}")
    _check_paging(meta, path, page, last_page)
    if not has_items and page < last_page:
        problem = f"page {page} is empty but meta.last_page is {last_page}"
        raise VendorError(SOURCE, path, problem, field="data")
    return last_page


def _check_paging(meta: Mapping[str, Any], path: str, page: int, last_page: int) -> None:
    """Laravel answers the page asked for, with ``last_page = max(1, ceil(total / per_page))``."""
    where = f"page {page}"
    current = meta.get("current_page")
    if current is not None and _as_int(current, path, "meta.current_page", where) != page:
        problem = f"is {current} on the answer for page {page}"
        raise VendorError(SOURCE, path, problem, field="meta.current_page")
    if meta.get("total") is None or meta.get("per_page") is None:
        return
    total = _as_int(meta["total"], path, "meta.total", where)
    per_page = _as_int(meta["per_page"], path, "meta.per_page", where)
    if total < 0 or per_page < 1:
        raise VendorError(SOURCE, path, f"total {total} at per_page {per_page} is impossible", field="meta")
    pages = max(1, -(-total // per_page))
    if last_page > pages:
        problem = f"is {last_page}, but {total} items at {per_page} per page make {pages} page(s)"
        raise VendorError(SOURCE, path, problem, field="meta.last_page")


def _unique(items: Iterable[T], key: Callable[[T], int]) -> list[T]:
    """``items`` in order, each id once (the first seen wins)."""
    seen: set[int] = set()
    result: list[T] = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            result.append(item)
    return result


def _maybe_task(payload: Any, path: str) -> Task | None:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or "action" not in data:
        return None
    reader = _Reader(data, path, "the task")
    return Task(id=reader.integer("id"), action=reader.text("action"), status=reader.text("status"))


# --------------------------------------------------------------------------- payload reading


class _Reader:
    """Typed access to one JSON object; a missing or ill-typed field raises VendorError naming it."""

    def __init__(self, data: Mapping[str, Any], path: str, label: str) -> None:
        self._data = data
        self.path = path
        self.label = label

    @classmethod
    def data_of(cls, payload: Any, path: str) -> _Reader:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict):
            raise VendorError(SOURCE, path, "the answer has no JSON object under data", field="data")
        return cls(data, path, "the object")

    @classmethod
    def items_of(cls, payload: Any, path: str, page: int) -> Iterator[_Reader]:
        items = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            raise VendorError(SOURCE, path, f"page {page} has no list under data", field="data")
        for index, item in enumerate(items):
            label = f"page {page} item {index}"
            if not isinstance(item, dict):
                raise VendorError(SOURCE, path, f"{label} is not a JSON object", field="data")
            if isinstance(item.get("id"), int):
                label += f" (id {item['id']})"
            yield cls(item, path, label)

    def raw(self, dotted: str) -> Any:
        value: Any = self._data
        for part in dotted.split("."):
            if not isinstance(value, dict) or part not in value:
                raise VendorError(SOURCE, self.path, f"missing in {self.label}", field=dotted)
            value = value[part]
        return value

    def optional(self, dotted: str) -> Any:
        value: Any = self._data
        for part in dotted.split("."):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    def integer(self, dotted: str) -> int:
        return _as_int(self.raw(dotted), self.path, dotted, self.label)

    def optional_integer(self, dotted: str) -> int | None:
        value = self.optional(dotted)
        if value is None or value == "":
            return None
        return _as_int(value, self.path, dotted, self.label)

    def text(self, dotted: str) -> str:
        value = self.raw(dotted)
        if not isinstance(value, str):
            raise VendorError(SOURCE, self.path, f"is not a string in {self.label}", field=dotted)
        return value

    def optional_text(self, dotted: str) -> str | None:
        value = self.optional(dotted)
        return value if isinstance(value, str) and value else None

    def flag(self, dotted: str) -> bool:
        value = self.raw(dotted)
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise VendorError(SOURCE, self.path, f"is not true or false in {self.label}", field=dotted)

    def money(self, dotted: str) -> Decimal | None:
        value = self.optional(dotted)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise VendorError(SOURCE, self.path, f"is not a decimal amount in {self.label}", field=dotted)
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise VendorError(
                SOURCE, self.path, f"{value!r} is not a decimal amount in {self.label}", field=dotted
            ) from None
        if not amount.is_finite():
            raise VendorError(
                SOURCE, self.path, f"{value!r} is not a finite amount in {self.label}", field=dotted
            )
        return amount

    def instant(self, dotted: str) -> datetime:
        value = self.raw(dotted)
        if not isinstance(value, str):
            raise VendorError(SOURCE, self.path, f"is not a timestamp string in {self.label}", field=dotted)
        try:
            return parse_timestamp(value)
        except ValueError:
            raise VendorError(
                SOURCE, self.path, f"{value!r} is not a timestamp in {self.label}", field=dotted
            ) from None


def _as_int(value: Any, path: str, field: str, label: str) -> int:
    """A whole number from an int, an integral Decimal or a string of digits; anything else is refused."""
    if isinstance(value, bool):
        raise VendorError(SOURCE, path, f"is a boolean, not a whole number, in {label}", field=field)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise VendorError(SOURCE, path, f"{value!r} is not a whole number in {label}", field=field)


def parse_timestamp(value: str) -> datetime:
    """An aware UTC datetime from SolusVM's ``created_at``.

    Accepts ISO 8601 with or without a zone (``2024-05-01T10:00:00.000000Z``, ``...+02:00``) and
    ``YYYY-MM-DD HH:MM:SS``; a time without a zone is taken as UTC. Raises ValueError otherwise.
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = isoparse(text)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_server(item: _Reader) -> Server:
    return Server(
        id=item.integer("id"),
        uuid=item.text("uuid"),
        name=item.text("name"),
        status=item.text("status"),
        is_suspended=item.flag("is_suspended"),
        user_id=item.integer("user.id"),
        user_email=item.text("user.email"),
        plan_id=item.integer("plan.id"),
        created_at=item.instant("created_at"),
    )


def _parse_plan(item: _Reader) -> Plan:
    return Plan(
        id=item.integer("id"),
        name=item.text("name"),
        tokens_per_hour=item.integer("tokens_per_hour"),
        tokens_per_month=item.integer("tokens_per_month"),
        ip_tokens_per_hour=item.integer("ip_tokens_per_hour"),
        ip_tokens_per_month=item.integer("ip_tokens_per_month"),
        price_per_hour=item.money("price.per_hour"),
        price_per_month=item.money("price.per_month"),
        currency_code=item.optional_text("price.currency_code"),
    )


def _parse_user(item: _Reader) -> User:
    return User(
        id=item.integer("id"),
        email=item.text("email"),
        status=item.text("status"),
        billing_user_id=item.optional_integer("billing_user_id"),
        created_at=item.instant("created_at"),
    )
