"""SolusVM's own records of what happened to servers: the task list and the activity log, read and judged.

Contract (docs/solusvm-runtime.md says where each part is verified):

* ``GET tasks`` pages Tasks ``{id, compute_resource_id, queue, action, status, output, progress,
  duration}`` filtered by ``filter[compute_resource_vm_id]`` (also ``filter[action]``,
  ``filter[status]``, ``filter[compute_resource_id]``). The current Go SDK carries no timestamps; an early
  one read ``created_at``, ``started_at`` and ``finished_at`` as PHP date objects ``{date, timezone_type,
  timezone}``. Both that shape and an ISO 8601 string are read here.
* ``GET activity_logs`` pages entries ``{id, event, user_email, created_at, data}`` filtered by
  ``filter[user_id]`` and ``filter[event]``. Which server an entry is about is not documented: it is read
  from ``data.compute_resource_vm_id`` when present (unverified) and left None otherwise.

No date filter is documented for either list, so they are read whole (within the client's page bound).

**Judging.** A timestamp that is missing, null or not a readable date is kept as None: the runtime rule
then treats the record as a change at an unknown moment, never a guessed one. A timestamp further in the
future of the bridge's clock than ``max_clock_skew``, a task that finished before it was created, a task
of another server than the one asked for, or a field of an unknown shape (a number where a date belongs,
a list where ``data`` belongs) is refused as a :class:`~bridge.errors.VendorError` naming the field,
since billing from it would bill what did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.clock import Clock
from bridge.errors import VendorError
from bridge.solusvm.client import SOURCE, SolusVMClient, _Reader, _unique, parse_timestamp

MAX_CLOCK_SKEW: Final = timedelta(minutes=5)

# Task actions (solus-go-sdk tasks.go) and statuses.
VM_CREATE: Final = "vm-create"
VM_START: Final = "vm-start"
VM_STOP: Final = "vm-stop"
VM_RESTART: Final = "vm-restart"
VM_SUSPEND: Final = "vm-suspend"
VM_RESUME: Final = "vm-resume"
VM_DELETE: Final = "vm-delete"
TASK_DONE: Final = "done"
TASK_DONE_WITH_ERRORS: Final = "done_with_errors"
TASK_FAILED: Final = "failed"
TASK_CANCELED: Final = "canceled"
TASK_UNFINISHED: Final = frozenset({"pending", "queued", "running"})

# Activity-log events (solus-go-sdk activityLogs.go) that tell a server's story.
VM_CREATED: Final = "compute_resource_vm_created"
VM_CREATE_FAILED: Final = "compute_resource_vm_create_failed"
VM_DELETE_REQUESTED: Final = "compute_resource_vm_delete_requested"
ADDITIONAL_IP_CREATED: Final = "additional_ip_created"
ADDITIONAL_IP_DELETED: Final = "additional_ip_deleted"


@dataclass(frozen=True)
class ServerTask:
    """One task of one server; ``server_id`` is the ``compute_resource_vm_id`` the list was asked for."""

    id: int
    server_id: int
    action: str
    status: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class ActivityLogEntry:
    """One activity-log entry; ``server_id`` is None when ``data`` names no server."""

    id: int
    event: str
    user_email: str | None
    created_at: datetime | None
    server_id: int | None


class SolusVMEventLog:
    """Reads tasks and activity-log entries through ``client``, judged against ``clock``."""

    def __init__(self, client: SolusVMClient, clock: Clock, *, max_clock_skew: timedelta = MAX_CLOCK_SKEW):
        self._client = client
        self._clock = clock
        self._max_clock_skew = max_clock_skew

    def server_tasks(
        self, server_id: int, *, action: str | None = None, status: str | None = None
    ) -> list[ServerTask]:
        """Every task of the server, oldest (lowest id) first."""
        params = {"filter[compute_resource_vm_id]": str(int(server_id))}
        if action is not None:
            params["filter[action]"] = action
        if status is not None:
            params["filter[status]"] = status
        now = self._clock.now()
        found = self._client._list("tasks", params, lambda item: self._task(item, server_id, now))
        return sorted(_unique(found, key=lambda task: task.id), key=lambda task: task.id)

    def activity_log(self, *, event: str | None = None, user_id: int | None = None) -> list[ActivityLogEntry]:
        """Every activity-log entry (of one event kind, of one user), oldest (lowest id) first."""
        params: dict[str, str] = {}
        if event is not None:
            params["filter[event]"] = event
        if user_id is not None:
            params["filter[user_id]"] = str(int(user_id))
        now = self._clock.now()
        found = self._client._list("activity_logs", params, lambda item: self._entry(item, now))
        return sorted(_unique(found, key=lambda entry: entry.id), key=lambda entry: entry.id)

    def _task(self, item: _Reader, server_id: int, now: datetime) -> ServerTask:
        named = item.optional_integer("compute_resource_vm_id")
        if named is not None and named != server_id:
            raise VendorError(
                SOURCE,
                item.path,
                f"{item.label} belongs to server {named}, not to server {server_id} that was asked for; "
                "the node ignored filter[compute_resource_vm_id]",
                field="compute_resource_vm_id",
            )
        task = ServerTask(
            id=item.integer("id"),
            server_id=server_id,
            action=item.text("action"),
            status=item.text("status"),
            created_at=self._instant(item, "created_at", now),
            started_at=self._instant(item, "started_at", now),
            finished_at=self._instant(item, "finished_at", now),
        )
        if task.created_at and task.finished_at and task.finished_at < task.created_at:
            raise VendorError(
                SOURCE,
                item.path,
                f"{item.label} finished ({task.finished_at.isoformat()}) before it was created "
                f"({task.created_at.isoformat()})",
                field="finished_at",
            )
        return task

    def _entry(self, item: _Reader, now: datetime) -> ActivityLogEntry:
        data = item.optional("data")
        if data is not None and not isinstance(data, dict):
            raise VendorError(SOURCE, item.path, f"is not a JSON object in {item.label}", field="data")
        return ActivityLogEntry(
            id=item.integer("id"),
            event=item.text("event"),
            user_email=item.optional_text("user_email"),
            created_at=self._instant(item, "created_at", now),
            server_id=item.optional_integer("data.compute_resource_vm_id"),
        )

    def _instant(self, item: _Reader, field: str, now: datetime) -> datetime | None:
        """The field's instant in UTC; None when missing or unreadable; refused when of no known shape."""
        value = item.optional(field)
        instant = _read_instant(value)
        if instant is _UNKNOWN_SHAPE:
            raise VendorError(
                SOURCE,
                item.path,
                f"{value!r} is neither a timestamp string nor a date object in {item.label}",
                field=field,
            )
        if isinstance(instant, datetime) and instant > now + self._max_clock_skew:
            raise VendorError(
                SOURCE,
                item.path,
                f"{instant.isoformat()} in {item.label} is later than the bridge's clock "
                f"({now.isoformat()}) by more than {self._max_clock_skew}; check the clocks of the SolusVM "
                "node and of this host",
                field=field,
            )
        return instant if isinstance(instant, datetime) else None


_UNKNOWN_SHAPE: Final = object()


def _read_instant(value: Any) -> datetime | object | None:
    """A datetime, None (absent or unreadable), or _UNKNOWN_SHAPE."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError):
            return None
    if isinstance(value, Mapping) and isinstance(value.get("date"), str):
        return _php_date(value)
    return _UNKNOWN_SHAPE


def _php_date(value: Mapping[str, Any]) -> datetime | None:
    """PHP's serialised DateTime ``{date, timezone_type, timezone}``; None when the zone is unreadable.

    ``timezone_type`` 1 is an offset (``+02:00``), 2 an abbreviation (only ``UTC``/``Z``/``GMT`` are
    read: others are ambiguous), 3 a zone name (``Europe/Berlin``).
    """
    try:
        local = datetime.fromisoformat(str(value["date"]).strip())
    except ValueError:
        return None
    if local.tzinfo is not None:
        return local.astimezone(UTC)
    zone = _php_zone(value.get("timezone_type"), value.get("timezone"))
    return local.replace(tzinfo=zone).astimezone(UTC) if zone is not None else None


def _php_zone(kind: Any, name: Any) -> timezone | ZoneInfo | None:
    if not isinstance(name, str):
        return None
    if kind == 1:
        try:
            offset = datetime.strptime(name.replace(":", ""), "%z").utcoffset()
        except ValueError:
            return None
        return timezone(offset) if offset is not None else None
    if kind == 2:
        return UTC if name.upper() in ("UTC", "Z", "GMT") else None
    if kind == 3:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None
    return None
