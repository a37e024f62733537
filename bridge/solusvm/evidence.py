"""SolusVM's records as evidence for the runtime rule (bridge/domain/runtime.py).

What each record says, and when:

* **a poll** (a listed server): ``is_suspended`` -> suspended; status ``started`` -> running;
  ``stopped`` and ``paused`` -> stopped; ``not exists`` -> gone. ``processing``, ``unavailable`` and any
  other status tell nothing about the power state, so such a poll is no evidence (None).
* **a task** counts only for the actions of a server's life (``vm-create``, ``vm-start``, ``vm-restart``,
  ``vm-stop``, ``vm-suspend``, ``vm-resume``, ``vm-delete``); other actions are ignored. A ``done`` task is
  a change at an instant: a change that begins billing (create, start, restart, resume) counts from
  ``finished_at``, the moment it was complete; one that ends billing (stop, suspend, delete) from the
  earliest timestamp the task carries (``created_at``, else ``started_at``, else ``finished_at``), the
  first moment it may have taken effect. Without the timestamp it needs, the task is a change at an unknown
  moment, no earlier than the timestamps it does carry. A ``done_with_errors`` task or an unfinished one
  (``pending``, ``queued``, ``running``) may or may not have changed anything: it is a change at an unknown
  moment too, so the gap it may lie in bills nothing. ``failed`` and ``canceled`` tasks changed nothing.
* **an activity-log entry** about a server: ``compute_resource_vm_created`` (created),
  ``compute_resource_vm_create_failed`` (never ran), ``compute_resource_vm_delete_requested`` (deleted,
  from the request on), ``additional_ip_created`` / ``additional_ip_deleted`` (an additional IP held or
  released), each at its ``created_at``; other events are ignored.

``listed_between`` (optional, per record) is (the last sync that did not list the record, the first that
did): a record without a timestamp happened between them, which keeps an untimed change from touching
the gaps of other days. Syncs that read the task list and the activity log each time can store it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final

from bridge.domain.runtime import Change, Event, Evidence, Poll, PowerState, bound_by_log_order
from bridge.solusvm.client import Server
from bridge.solusvm.events import (
    ADDITIONAL_IP_CREATED,
    ADDITIONAL_IP_DELETED,
    TASK_DONE,
    TASK_DONE_WITH_ERRORS,
    TASK_UNFINISHED,
    VM_CREATE,
    VM_CREATE_FAILED,
    VM_CREATED,
    VM_DELETE,
    VM_DELETE_REQUESTED,
    VM_RESTART,
    VM_RESUME,
    VM_START,
    VM_STOP,
    VM_SUSPEND,
    ActivityLogEntry,
    ServerTask,
)

_POWER_STATES: Final = {
    "started": PowerState.RUNNING,
    "stopped": PowerState.STOPPED,
    "paused": PowerState.STOPPED,
    "not exists": PowerState.GONE,
}
_TASK_CHANGES: Final = {
    VM_CREATE: Change.CREATED,
    VM_START: Change.STARTED,
    VM_RESTART: Change.RESTARTED,
    VM_RESUME: Change.RESUMED,
    VM_STOP: Change.STOPPED,
    VM_SUSPEND: Change.SUSPENDED,
    VM_DELETE: Change.DELETED,
}
_BEGINS_BILLING: Final = frozenset({Change.CREATED, Change.STARTED, Change.RESTARTED, Change.RESUMED})
_LOG_CHANGES: Final = {
    VM_CREATED: Change.CREATED,
    VM_CREATE_FAILED: Change.CREATE_FAILED,
    VM_DELETE_REQUESTED: Change.DELETED,
    ADDITIONAL_IP_CREATED: Change.IP_ADDED,
    ADDITIONAL_IP_DELETED: Change.IP_REMOVED,
}


def poll(server: Server, at: datetime, additional_ips: int | None = None) -> Poll | None:
    """What a sync at ``at`` saw of ``server``; None when its status tells nothing about power."""
    if server.is_suspended:
        return Poll(at, PowerState.SUSPENDED, additional_ips)
    state = _POWER_STATES.get(server.status)
    return Poll(at, state, additional_ips) if state is not None else None


Listed = tuple[datetime | None, datetime]


def task_event(task: ServerTask, listed_between: Listed | None = None) -> Event | None:
    """The change a task records, or None when it records none (see the module docstring)."""
    change = _TASK_CHANGES.get(task.action)
    if change is None or task.status not in (TASK_DONE, TASK_DONE_WITH_ERRORS, *TASK_UNFINISHED):
        return None
    stamps = [s for s in (task.created_at, task.started_at, task.finished_at) if s is not None]
    earliest = min(stamps, default=None)
    if task.status == TASK_DONE:
        at = task.finished_at if change in _BEGINS_BILLING else earliest
        if at is not None:
            return Event(change, at)
    return _untimed(change, earliest, listed_between)


def activity_event(entry: ActivityLogEntry, listed_between: Listed | None = None) -> Event | None:
    """The change an activity-log entry records, or None when its event is not about a server's life."""
    change = _LOG_CHANGES.get(entry.event)
    if change is None:
        return None
    if entry.created_at is not None:
        return Event(change, entry.created_at)
    return _untimed(change, None, listed_between)


def _untimed(change: Change, not_before: datetime | None, listed_between: Listed | None) -> Event:
    """A change at an unknown moment after ``not_before`` and within ``listed_between``."""
    if listed_between is None:
        return Event(change, None, not_before=not_before)
    unlisted, listed = listed_between
    after = max((i for i in (not_before, unlisted) if i is not None), default=None)
    return Event(change, None, not_before=after, not_after=listed)


def server_evidence(
    server_id: int,
    created_at: datetime | None,
    polls: Iterable[Poll],
    tasks: Iterable[ServerTask] = (),
    entries: Iterable[ActivityLogEntry] = (),
    listed_between: Mapping[tuple[str, int], Listed] | None = None,
) -> Evidence:
    """One server's evidence: its polls, its tasks, and the activity-log entries about it.

    Each log is put in id order and its untimed records bounded by their neighbours
    (:func:`~bridge.domain.runtime.bound_by_log_order`). ``listed_between`` maps ``("task", id)`` or
    ``("activity", id)`` to (the last sync that did not list the record, the first that did).
    """
    seen = listed_between or {}
    own_tasks = sorted((t for t in tasks if t.server_id == server_id), key=lambda t: t.id)
    own_entries = sorted((e for e in entries if e.server_id == server_id), key=lambda e: e.id)
    task_events = [task_event(t, seen.get(("task", t.id))) for t in own_tasks]
    log_events = [activity_event(e, seen.get(("activity", e.id))) for e in own_entries]
    return Evidence(
        created_at,
        tuple(sorted(polls, key=lambda p: p.at)),
        bound_by_log_order([e for e in task_events if e is not None])
        + bound_by_log_order([e for e in log_events if e is not None]),
    )
