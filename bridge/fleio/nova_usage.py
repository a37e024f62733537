"""Usage collection from Nova's ``os-simple-tenant-usage``: how long each instance existed in a window.

Why this module talks to the API nearly raw instead of through ``conn.compute.usages()``:

* the SDK's pager loops (or stops with "Endless pagination loop detected") when a last page is short, so
  ``tenant_usages_links`` are followed here, taking only the ``marker`` from each ``next`` link (the href's
  host may be an internal one a proxy rewrote);
* the SDK sends a tz-aware datetime with ``+00:00``, which Nova rejects, and ``detailed=True`` verbatim,
  which Nova ignores; here start/end are naive UTC ``%Y-%m-%dT%H:%M:%S.%f`` and ``detailed`` is ``"1"``;
* hours must stay exact: the body is parsed with ``parse_float=Decimal``.

Billing is on ``hours`` = ``min(terminated_at, end) - max(launched_at, start)``, never ``uptime``. Stop,
suspend and shelve do not reduce it; a resize, rebuild or unshelve resets ``launched_at``, so the hours
before such an event in a window not yet collected are lost (see the research notes). Collect each window
once it has settled, promptly.

Implausible answers are refused as a :class:`~bridge.errors.VendorError` naming the field, so the window
is neither stored nor billed and is asked for again on the next run (see :func:`_check_plausible`): hours
beyond what ``started_at``/``ended_at`` allow inside the window (so never more than the window's length),
an instance started after the window or ended before it, a server usage filed under another project, an
instance listed twice with different figures, a project total that stops before the window's end (Nova's
clock behind ours), and paging that does not advance (a next link back to a page already read, or an
empty page with a next link).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openstack.connection
import requests
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from bridge.clock import Clock, SystemClock
from bridge.domain.instants import as_utc
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.errors import VendorError
from bridge.fleio._vendor import SOURCE, describe_error, scrub
from bridge.fleio.settings import OpenStackSettings
from bridge.logs import get_logger

log = get_logger(__name__)

USAGE_PATH = "/os-simple-tenant-usage"
LINKS = "tenant_usages_links"
#: 2.40 adds limit/marker paging and ``tenant_usages_links``; below it Nova silently truncates at max_limit.
MICROVERSION = "2.40"
NOVA_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

RetryWait = Callable[[RetryCallState], float]
Sleep = Callable[[float], None]


def nova_time(instant: datetime) -> str:
    """``instant`` as Nova wants a query time: naive UTC with microseconds (never ``Z`` or ``+00:00``)."""
    return as_utc(instant).replace(tzinfo=None).strftime(NOVA_TIME_FORMAT)


#: Nova computes hours in float; an answer may exceed the exact span by this much and still be believed.
HOURS_TOLERANCE = Decimal("0.000001")
MAX_ID_LENGTH = 64
"""Instance and project ids: Nova's are UUIDs (36 characters); usage_records keeps 64."""
MAX_FLAVOR_LENGTH = 128
"""Flavor names as the store keeps them (usage_records.plan)."""
MAX_NAME_LENGTH = 255
"""Nova's display_name column is 255 characters (usage_records.resource_name keeps as many)."""


@dataclass(frozen=True)
class ServerUsage:
    """One ``server_usages[]`` entry, reduced to what billing needs (and what its plausibility needs)."""

    instance_id: str
    name: str
    tenant_id: str
    flavor: str
    hours: Decimal
    started_at: datetime | None = None
    ended_at: datetime | None = None

    def same_figures(self, other: ServerUsage) -> bool:
        """Whether two listings of one instance bill the same (a rename between pages does not matter)."""
        return (self.tenant_id, self.flavor, self.hours) == (other.tenant_id, other.flavor, other.hours)


@dataclass(frozen=True)
class ProjectUsage:
    """One project's servers merged over every page, with totals recomputed (page totals are partial)."""

    tenant_id: str
    servers: tuple[ServerUsage, ...]

    @property
    def total_hours(self) -> Decimal:
        return sum((server.hours for server in self.servers), Decimal(0))


@dataclass(frozen=True)
class _Page:
    servers: tuple[ServerUsage, ...]
    next_marker: str | None


class _TransientStatus(Exception):
    """An HTTP answer worth retrying (5xx, 429), with the server's Retry-After in seconds if it sent one."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class NovaUsageCollector:
    """The :class:`~bridge.usage.ports.UsageSource` for OpenStack (``source = "openstack"``).

    ``conn`` is an openstacksdk connection whose user has the admin role (listing every project's usage
    is admin-only). ``settle_delay``: :meth:`collect` refuses a window that ended less than this long ago
    (a guard: the scheduler picks settled windows), since Nova clamps a future end to "now" and the hours
    of a fresh window are still moving; :meth:`from_settings` sets it from ``openstack.settle_delay_minutes``.
    ``page_size`` sends ``limit``; by default Nova pages at its ``max_limit`` (1000). Transient failures
    (connection errors, timeouts, HTTP 5xx, 429) are retried up to ``max_attempts`` times per page with
    ``retry_wait`` (default: exponential backoff with jitter, at most 30 s) but at least the server's
    ``Retry-After`` (capped at ``max_retry_after``); tests pass ``retry_wait=wait_none()`` and a ``sleep``.
    """

    source: Source = "openstack"

    def __init__(
        self,
        conn: openstack.connection.Connection,
        *,
        clock: Clock | None = None,
        settle_delay: timedelta = timedelta(0),
        page_size: int | None = None,
        max_attempts: int = 5,
        retry_wait: RetryWait | None = None,
        sleep: Sleep = time.sleep,
        max_retry_after: timedelta = timedelta(minutes=5),
        max_pages: int = 10_000,
    ) -> None:
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be at least 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._conn = conn
        self._clock: Clock = clock or SystemClock()
        self._settle_delay = settle_delay
        self._page_size = page_size
        self._max_attempts = max_attempts
        self._retry_wait: RetryWait = retry_wait or wait_exponential_jitter(max=30)
        self._sleep = sleep
        self._max_retry_after = max_retry_after.total_seconds()
        self._max_pages = max_pages

    @classmethod
    def from_settings(
        cls,
        conn: openstack.connection.Connection,
        settings: OpenStackSettings,
        *,
        clock: Clock | None = None,
        sleep: Sleep = time.sleep,
    ) -> NovaUsageCollector:
        """A collector for ``[openstack]``; ``sleep`` is its wait between retries (the daemon passes one that
        ends at shutdown)."""
        return cls(
            conn,
            clock=clock,
            settle_delay=settings.settle_delay,
            retry_wait=wait_exponential_jitter(max=settings.retry_wait_max_seconds),
            sleep=sleep,
        )

    def collect(self, window: Window) -> list[UsageRecord]:
        """One record per instance that ran in ``window``, sorted by (project, instance).

        Instances Nova reports with ``hours == 0`` are left out. Nova lists every launched instance whose
        life overlaps the window; a zero comes from an instance terminated in the instant it launched (a
        boot cleaned up at once) and bills nothing, so a record would only add an empty invoice line. They
        are counted in the ``openstack.usage.collected`` log event as ``zero_hour_instances`` and are still
        visible through :meth:`project_usages`.
        """
        projects = self.project_usages(window)
        records: list[UsageRecord] = []
        zero = 0
        for project in projects:
            for server in project.servers:
                if server.hours == 0:
                    zero += 1
                    continue
                records.append(_record(server, window))
        log.info(
            "openstack.usage.collected",
            window_start=window.start.isoformat(),
            window_end=window.end.isoformat(),
            projects=len(projects),
            records=len(records),
            zero_hour_instances=zero,
        )
        return records

    def project_usages(self, window: Window) -> list[ProjectUsage]:
        """Every project's merged usage in ``window`` (all pages, each instance once), sorted by project."""
        self._check_settled(window)
        by_instance: dict[str, ServerUsage] = {}
        for server in self._all_servers(window):
            _keep_first(by_instance, server)
        by_project: dict[str, list[ServerUsage]] = {}
        for server in by_instance.values():
            by_project.setdefault(server.tenant_id, []).append(server)
        return [
            ProjectUsage(tenant_id, tuple(sorted(servers, key=lambda s: s.instance_id)))
            for tenant_id, servers in sorted(by_project.items())
        ]

    def _check_settled(self, window: Window) -> None:
        now = self._clock.now()
        if now - window.end < self._settle_delay:
            raise ValueError(
                f"window ending {window.end.isoformat()} has not settled: it must have ended at least "
                f"{self._settle_delay} before now ({now.isoformat()})"
            )

    def _all_servers(self, window: Window) -> Iterator[ServerUsage]:
        """Every page's server usages, following ``next`` links until a page has none.

        Paging must advance: a next link on an empty page, or one whose marker repeats an earlier marker
        or names an instance read on an earlier page (a link back), is refused rather than followed.
        """
        params = {"start": nova_time(window.start), "end": nova_time(window.end), "detailed": "1"}
        if self._page_size is not None:
            params["limit"] = str(self._page_size)
        seen_markers: set[str] = set()
        earlier_pages: set[str] = set()
        marker: str | None = None
        for _ in range(self._max_pages):
            page = self._fetch_page(params if marker is None else {**params, "marker": marker}, window)
            yield from page.servers
            if page.next_marker is None:
                return
            if not page.servers:
                raise VendorError(SOURCE, USAGE_PATH, "an empty page has a next link", field=LINKS)
            if page.next_marker in seen_markers or page.next_marker in earlier_pages:
                raise VendorError(
                    SOURCE,
                    USAGE_PATH,
                    f"paging did not advance (the next link's marker {page.next_marker} points back at a "
                    "page already read)",
                    field=LINKS,
                )
            seen_markers.add(page.next_marker)
            earlier_pages.update(server.instance_id for server in page.servers)
            marker = page.next_marker
        raise VendorError(SOURCE, USAGE_PATH, f"more than {self._max_pages} pages; paging does not end")

    def _fetch_page(self, params: Mapping[str, str], window: Window) -> _Page:
        response = self._get_with_retries(params)
        _raise_for_status(response)
        return _parse_page(_json_body(response), window)

    def _get_with_retries(self, params: Mapping[str, str]) -> requests.Response:
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            return retrying(self._get, params)
        except _TransientStatus as error:
            raise VendorError(
                SOURCE, USAGE_PATH, f"Nova answered HTTP {error.status} {self._max_attempts} times; giving up"
            ) from None
        except (ks_exceptions.ClientException, os_exceptions.SDKException) as error:
            raise VendorError(SOURCE, USAGE_PATH, describe_error(error)) from None

    def _get(self, params: Mapping[str, str]) -> requests.Response:
        """One GET; a 5xx or 429 answer is raised as :class:`_TransientStatus` so tenacity retries it."""
        response = self._conn.compute.get(
            USAGE_PATH,
            params=dict(params),
            microversion=MICROVERSION,
            headers={"Accept": "application/json"},
            connect_retries=0,
            skip_cache=True,
        )
        if response.status_code >= 500 or response.status_code == 429:
            raise _TransientStatus(response.status_code, self._retry_after(response))
        return response

    def _wait(self, state: RetryCallState) -> float:
        """The injected backoff, but never shorter than the server's Retry-After."""
        wait = self._retry_wait(state)
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _TransientStatus) and error.retry_after is not None:
            return max(wait, error.retry_after)
        return wait

    def _retry_after(self, response: requests.Response) -> float | None:
        """Retry-After as seconds (delta-seconds or an HTTP date), capped at ``max_retry_after``."""
        value = response.headers.get("Retry-After")
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            seconds = float(value)
        else:
            try:
                seconds = (parsedate_to_datetime(value) - self._clock.now()).total_seconds()
            except (TypeError, ValueError):
                return None
        return min(max(seconds, 0.0), self._max_retry_after)


def _is_transient(error: BaseException) -> bool:
    """5xx, 429, a failed or timed-out connection, or an answer cut off mid-body (UnknownConnectionError is
    how keystoneauth reports a body that ended early): a usage GET changes nothing, so it may be repeated."""
    connection = ks_exceptions.RetriableConnectionFailure | ks_exceptions.UnknownConnectionError
    if isinstance(error, _TransientStatus | connection):
        return True
    return isinstance(error, ks_exceptions.HttpError) and (
        error.http_status == 429 or (error.http_status or 0) >= 500
    )


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    reason = str(error) if isinstance(error, _TransientStatus) else type(error).__name__
    log.warning(
        "openstack.usage.retry",
        attempt=state.attempt_number,
        reason=reason,
        wait_seconds=round(state.upcoming_sleep, 3),
    )


def _keep_first(by_instance: dict[str, ServerUsage], server: ServerUsage) -> None:
    """Dedupe by instance id: an identical second copy is dropped; one with other figures is refused, since
    which of the two Nova meant cannot be known."""
    first = by_instance.setdefault(server.instance_id, server)
    if not first.same_figures(server):
        raise VendorError(
            SOURCE,
            USAGE_PATH,
            f"instance {server.instance_id} is listed twice with different figures ({first.hours} h of "
            f"{first.flavor} in project {first.tenant_id}, then {server.hours} h of {server.flavor} in "
            f"project {server.tenant_id})",
            field="server_usages[].instance_id",
        )


def _record(server: ServerUsage, window: Window) -> UsageRecord:
    return UsageRecord(
        source="openstack",
        resource_id=server.instance_id,
        resource_name=server.name,
        owner=server.tenant_id,
        plan=server.flavor,
        window=window,
        hours=server.hours,
    )


# --- the HTTP answer ------------------------------------------------------------------------------------


def _raise_for_status(response: requests.Response) -> None:
    """A non-200 answer that is not worth retrying, as a one-line error that says what to fix."""
    status = response.status_code
    if status == 200:
        return
    if status == 401:
        problem = "Nova refused the token (HTTP 401) even after re-authenticating; check the credentials"
    elif status == 403:
        problem = (
            "Nova forbids listing every project's usage (HTTP 403); give the bridge's OpenStack user "
            "the admin role"
        )
    else:
        problem = f"Nova answered HTTP {status}: {_fault_message(response)}"
    raise VendorError(SOURCE, USAGE_PATH, problem)


def _fault_message(response: requests.Response) -> str:
    """Nova's fault text (``{"badRequest": {"message": ...}}``) or, failing that, the content type."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return scrub(value["message"])
    return f"a {_content_type(response)} body"


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip() or "untyped"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _json_body(response: requests.Response) -> Any:
    """The body parsed with exact decimals; an HTML page or other non-JSON is a clear error."""
    try:
        return json.loads(response.content, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError):
        pass
    text = response.content.lstrip()[:64].lower()
    if text.startswith((b"<!doctype html", b"<html", b"<")):
        problem = (
            f"answered an HTML page ({_content_type(response)}) instead of JSON; a proxy, load balancer or "
            "login page is in front of Nova, or the catalog's compute endpoint is wrong"
        )
    else:
        problem = f"answered a body that is not JSON ({_content_type(response)})"
    raise VendorError(SOURCE, USAGE_PATH, problem)


# --- the payload -----------------------------------------------------------------------------------------


def _parse_page(body: Any, window: Window) -> _Page:
    if not isinstance(body, dict):
        raise VendorError(SOURCE, USAGE_PATH, "the JSON body is not an object")
    usages = _field(body, "tenant_usages", list, "tenant_usages")
    servers: list[ServerUsage] = []
    for i, usage in enumerate(usages):
        where = f"tenant_usages[{i}]"
        if not isinstance(usage, dict):
            raise VendorError(SOURCE, USAGE_PATH, "is not an object", field=where)
        tenant_id = _field(usage, "tenant_id", str, f"{where}.tenant_id")
        _check_period(usage, where, window)
        hint = " (is detailed=1 honoured?)"
        listed = _field(usage, "server_usages", list, f"{where}.server_usages", hint=hint)
        for j, entry in enumerate(listed):
            server = _server(entry, f"{where}.server_usages[{j}]")
            _check_plausible(server, tenant_id, window, f"{where}.server_usages[{j}]")
            servers.append(server)
    return _Page(tuple(servers), _next_marker(body))


def _server(entry: Any, where: str) -> ServerUsage:
    if not isinstance(entry, dict):
        raise VendorError(SOURCE, USAGE_PATH, "is not an object", field=where)
    instance_id = _text(entry, "instance_id", f"{where}.instance_id", MAX_ID_LENGTH)
    of = f" for instance {instance_id}"
    return ServerUsage(
        instance_id=instance_id,
        name=_name(entry, f"{where}.name", of),
        tenant_id=_text(entry, "tenant_id", f"{where}.tenant_id", MAX_ID_LENGTH, hint=of),
        flavor=_text(entry, "flavor", f"{where}.flavor", MAX_FLAVOR_LENGTH, hint=of),
        hours=_hours(entry, f"{where}.hours", of),
        started_at=_required_instant(entry, "started_at", f"{where}.started_at", of),
        ended_at=_instant(entry, "ended_at", f"{where}.ended_at", of),
    )


def _check_period(usage: dict[str, Any], where: str, window: Window) -> None:
    """A project's ``start``/``stop`` (when given) must be the window asked for.

    Nova clamps a future end to its own "now": a ``stop`` before the window's end means Nova's clock is
    behind ours and the hours are not final yet, so the window must not be stored as complete.
    """
    for key, wanted in (("start", window.start), ("stop", window.end)):
        if usage.get(key) is None:
            continue
        seen = _required_instant(usage, key, f"{where}.{key}", "")
        if seen != wanted:
            behind = "; Nova's clock is behind ours, so these hours are not final" if seen < wanted else ""
            raise VendorError(
                SOURCE,
                USAGE_PATH,
                f"is {nova_time(seen)}, not the window's {key} {nova_time(wanted)}{behind}",
                field=f"{where}.{key}",
            )


def _check_plausible(server: ServerUsage, tenant_id: str, window: Window, where: str) -> None:
    """Refuse a server usage no correct Nova sends for ``window``, naming the field at fault."""
    of = f" for instance {server.instance_id}"
    if server.tenant_id != tenant_id:
        raise VendorError(
            SOURCE,
            USAGE_PATH,
            f"is {server.tenant_id}{of}, listed under project {tenant_id}",
            field=f"{where}.tenant_id",
        )
    started, ended = server.started_at, server.ended_at
    if started is not None and started >= window.end:
        raise VendorError(
            SOURCE,
            USAGE_PATH,
            f"is {nova_time(started)}{of}, not before the window's end {nova_time(window.end)}",
            field=f"{where}.started_at",
        )
    if ended is not None and (ended <= window.start or (started is not None and ended < started)):
        raise VendorError(
            SOURCE,
            USAGE_PATH,
            f"is {nova_time(ended)}{of}, before the window or before its started_at",
            field=f"{where}.ended_at",
        )
    window_hours = _hours_between(window.start, window.end)
    if server.hours > window_hours + HOURS_TOLERANCE:
        raise VendorError(
            SOURCE,
            USAGE_PATH,
            f"is {server.hours}{of}, more than the window's {window_hours} hours",
            field=f"{where}.hours",
        )
    if started is not None:
        span = _hours_between(max(started, window.start), min(ended or window.end, window.end))
        if server.hours > span + HOURS_TOLERANCE:
            raise VendorError(
                SOURCE,
                USAGE_PATH,
                f"is {server.hours}{of}, more than the {span} hours its started_at and ended_at leave "
                "in the window",
                field=f"{where}.hours",
            )


def _hours_between(start: datetime, end: datetime) -> Decimal:
    seconds = (end - start) // timedelta(microseconds=1)
    return (Decimal(seconds) / Decimal(3_600_000_000)).normalize()


def _instant(entry: dict[str, Any], key: str, where: str, of: str) -> datetime | None:
    """A Nova timestamp (naive UTC ISO 8601, with or without microseconds), or None for null."""
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise VendorError(SOURCE, USAGE_PATH, f"is not a timestamp string{of}", field=where)
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise VendorError(SOURCE, USAGE_PATH, f"{value!r} is not a timestamp{of}", field=where) from None
    return as_utc(parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed)


def _required_instant(entry: dict[str, Any], key: str, where: str, of: str) -> datetime:
    instant = _instant(entry, key, where, of)
    if instant is None:
        raise VendorError(SOURCE, USAGE_PATH, f"missing{of}", field=where)
    return instant


def _name(entry: dict[str, Any], where: str, of: str) -> str:
    """The display name; Nova's column is nullable, so null is an empty name, but the key must be there."""
    if "name" not in entry:
        raise VendorError(SOURCE, USAGE_PATH, f"missing{of}", field=where)
    value = entry["name"]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise VendorError(SOURCE, USAGE_PATH, f"is not a str{of}", field=where)
    return _within(value, MAX_NAME_LENGTH, where, of)


def _text(obj: dict[str, Any], key: str, where: str, max_length: int, *, hint: str = "") -> str:
    """A required string field no longer than ``max_length`` characters."""
    value: str = _field(obj, key, str, where, hint=hint)
    return _within(value, max_length, where, hint)


def _within(value: str, max_length: int, where: str, hint: str) -> str:
    if len(value) > max_length:
        raise VendorError(
            SOURCE,
            USAGE_PATH,
            f"is {len(value)} characters long{hint}; Nova keeps at most {max_length}",
            field=where,
        )
    return value


def _hours(entry: dict[str, Any], where: str, of: str) -> Decimal:
    value = entry.get("hours")
    if "hours" not in entry or value is None:
        raise VendorError(SOURCE, USAGE_PATH, f"missing{of}", field=where)
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise VendorError(SOURCE, USAGE_PATH, f"is not a number{of}", field=where)
    hours = Decimal(value)
    if not hours.is_finite() or hours < 0:
        raise VendorError(SOURCE, USAGE_PATH, f"is {hours}{of}; expected a non-negative number", field=where)
    return hours


def _field(obj: dict[str, Any], key: str, kind: type[Any], where: str, *, hint: str = "") -> Any:
    """``obj[key]``, which must be present, not null and of ``kind``; else an error naming ``where``."""
    if obj.get(key) is None:
        raise VendorError(SOURCE, USAGE_PATH, f"missing{hint}", field=where)
    value = obj[key]
    if not isinstance(value, kind):
        raise VendorError(SOURCE, USAGE_PATH, f"is not a {kind.__name__}{hint}", field=where)
    return value


def _next_marker(body: dict[str, Any]) -> str | None:
    """The ``marker`` of the ``next`` link in ``tenant_usages_links``; None on the last page."""
    links = body.get("tenant_usages_links") or []
    if not isinstance(links, list):
        raise VendorError(SOURCE, USAGE_PATH, "is not a list", field=LINKS)
    for link in links:
        if isinstance(link, dict) and link.get("rel") == "next":
            href = link.get("href")
            markers = parse_qs(urlsplit(href).query).get("marker") if isinstance(href, str) else None
            if not markers or not markers[0]:
                raise VendorError(SOURCE, USAGE_PATH, "next link has no marker", field=LINKS)
            return markers[0]
    return None
