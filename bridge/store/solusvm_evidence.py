"""SolusVM runtime evidence: the servers as last listed, each sync's polls, and the tasks and activity-log
entries SolusVM recorded (issue 14; docs/solusvm-runtime.md section 5).

Servers stay after SolusVM deletes them: their months are billed from this evidence. A poll is keyed by
(server, instant), so re-storing one sync's polls adds nothing. A record is keyed by (kind, record id),
``kind`` ``task`` or ``activity``: a later sync updates what SolusVM changes (a pending task becomes done,
a timestamp appears) but ``listed_after`` and ``listed_at``, the two syncs between which the record first
appeared, are set only when it is first seen: they bound a change whose moment SolusVM did not record.
The vendor's fields are stored, not derived events, so the derivation may improve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, func, insert, or_, select, type_coerce, update

from bridge.store.tables import solusvm_polls, solusvm_records, solusvm_servers
from bridge.store.types import UTCDateTime

TASK: Final = "task"
ACTIVITY: Final = "activity"
_IN_CHUNK: Final = 500  # ids per IN (...) list: far below every database's limit


@dataclass(frozen=True)
class StoredServer:
    """A SolusVM server as last listed; ``last_listed_at`` is the last sync that listed it."""

    server_id: int
    name: str
    user_id: int
    plan_id: int
    created_at: datetime
    last_listed_at: datetime


@dataclass(frozen=True)
class StoredPoll:
    """What one sync saw of one server: ``state`` is a runtime PowerState value (running, stopped...)."""

    server_id: int
    at: datetime
    state: str


@dataclass(frozen=True)
class StoredRecord:
    """A task (``action``, ``status``, three timestamps) or an activity-log entry (``action`` is its event,
    ``created_at`` its time, no status), as SolusVM listed it, and the syncs between which it first
    appeared."""

    kind: str
    record_id: int
    server_id: int | None
    action: str
    status: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    listed_after: datetime | None
    listed_at: datetime

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.record_id)


def save_servers(tx: Connection, servers: Sequence[StoredServer]) -> None:
    """Insert new servers, update the ones known (name, owner, plan, created_at, last listed)."""
    known = _existing_ids(tx, solusvm_servers.c.server_id, [s.server_id for s in servers])
    fresh = [_values(server) for server in servers if server.server_id not in known]
    if fresh:
        tx.execute(insert(solusvm_servers), fresh)
    for server in servers:
        if server.server_id in known:
            values = _values(server)
            del values["server_id"]
            tx.execute(
                update(solusvm_servers).where(solusvm_servers.c.server_id == server.server_id).values(values)
            )


def save_polls(tx: Connection, polls: Sequence[StoredPoll]) -> int:
    """Insert the polls not stored yet; returns how many were new."""
    instants = {poll.at for poll in polls}
    known: set[tuple[int, datetime]] = set()
    for at in instants:
        query = select(solusvm_polls.c.server_id, solusvm_polls.c.at).where(solusvm_polls.c.at == at)
        known |= {(row.server_id, row.at) for row in tx.execute(query)}
    fresh = [_values(poll) for poll in polls if (poll.server_id, poll.at) not in known]
    if fresh:
        tx.execute(insert(solusvm_polls), fresh)
    return len(fresh)


def save_records(tx: Connection, records: Sequence[StoredRecord]) -> list[StoredRecord]:
    """Upsert tasks and activity-log entries; returns those that are new or changed, as now stored.

    A known record keeps its ``listed_after`` and ``listed_at`` (first sight), whatever the new one says.
    """
    stored = _records_by_key(tx, records)
    changed: list[StoredRecord] = []
    fresh = []
    for record in records:
        old = stored.get(record.key)
        if old is None:
            fresh.append(_values(record))
            changed.append(record)
            continue
        kept = replace(record, listed_after=old.listed_after, listed_at=old.listed_at)
        if kept != old:
            tx.execute(
                update(solusvm_records)
                .where(solusvm_records.c.kind == record.kind, solusvm_records.c.record_id == record.record_id)
                .values(
                    server_id=kept.server_id,
                    action=kept.action,
                    status=kept.status,
                    created_at=kept.created_at,
                    started_at=kept.started_at,
                    finished_at=kept.finished_at,
                )
            )
            changed.append(kept)
    if fresh:
        tx.execute(insert(solusvm_records), fresh)
    return changed


def servers_listed_since(tx: Connection, since: datetime) -> list[StoredServer]:
    """The servers some sync listed at or after ``since`` (deleted ones included), by id."""
    query = (
        select(*_columns(solusvm_servers, StoredServer))
        .where(solusvm_servers.c.last_listed_at >= since)
        .order_by(solusvm_servers.c.server_id)
    )
    return [StoredServer(*row) for row in tx.execute(query)]


def servers_seen_between(tx: Connection, start: datetime, end: datetime) -> list[StoredServer]:
    """The servers the evidence shows in ``[start, end)``, deleted ones included, by id: created before
    its end and listed at or after its start, or with a task or activity-log entry first listed in it (a
    server deleted before the next sync listed it is last listed before its deletion)."""
    recorded = select(solusvm_records.c.server_id).where(
        solusvm_records.c.server_id.is_not(None),
        solusvm_records.c.listed_at >= start,
        solusvm_records.c.listed_at < end,
    )
    query = (
        select(*_columns(solusvm_servers, StoredServer))
        .where(
            solusvm_servers.c.created_at < end,
            or_(solusvm_servers.c.last_listed_at >= start, solusvm_servers.c.server_id.in_(recorded)),
        )
        .order_by(solusvm_servers.c.server_id)
    )
    return [StoredServer(*row) for row in tx.execute(query)]


def servers_by_id(tx: Connection, server_ids: Iterable[int]) -> dict[int, StoredServer]:
    """The stored servers among ``server_ids``."""
    found: dict[int, StoredServer] = {}
    for chunk in _chunks(sorted(set(server_ids))):
        query = select(*_columns(solusvm_servers, StoredServer)).where(solusvm_servers.c.server_id.in_(chunk))
        found.update({row.server_id: StoredServer(*row) for row in tx.execute(query)})
    return found


def polls_of(tx: Connection, server_ids: Iterable[int]) -> dict[int, list[StoredPoll]]:
    """Every stored poll of the servers, oldest first."""
    found: dict[int, list[StoredPoll]] = {}
    for chunk in _chunks(sorted(set(server_ids))):
        query = (
            select(*_columns(solusvm_polls, StoredPoll))
            .where(solusvm_polls.c.server_id.in_(chunk))
            .order_by(solusvm_polls.c.server_id, solusvm_polls.c.at)
        )
        for row in tx.execute(query):
            found.setdefault(row.server_id, []).append(StoredPoll(*row))
    return found


def last_polls_at(tx: Connection, server_ids: Iterable[int], at_most: datetime) -> dict[int, datetime]:
    """Per server, the instant of its last poll at or before ``at_most`` (servers without one left out)."""
    found: dict[int, datetime] = {}
    for chunk in _chunks(sorted(set(server_ids))):
        query = (
            select(solusvm_polls.c.server_id, type_coerce(func.max(solusvm_polls.c.at), UTCDateTime()))
            .where(solusvm_polls.c.server_id.in_(chunk), solusvm_polls.c.at <= at_most)
            .group_by(solusvm_polls.c.server_id)
        )
        found.update({server_id: at for server_id, at in tx.execute(query)})
    return found


def polls_from(tx: Connection, cutoffs: Mapping[int, datetime | None]) -> dict[int, list[StoredPoll]]:
    """Per server, its polls at or after its cutoff (all of them for None), oldest first.

    A sync needs only the polls from the last one before what it rewrites: reading a month of hourly polls
    on every hourly sync would grow with the square of the month.
    """
    by_cutoff: dict[datetime | None, list[int]] = {}
    for server_id, cutoff in cutoffs.items():
        by_cutoff.setdefault(cutoff, []).append(server_id)
    found: dict[int, list[StoredPoll]] = {}
    for cutoff, ids in by_cutoff.items():
        for chunk in _chunks(sorted(ids)):
            query = select(*_columns(solusvm_polls, StoredPoll)).where(solusvm_polls.c.server_id.in_(chunk))
            if cutoff is not None:
                query = query.where(solusvm_polls.c.at >= cutoff)
            for row in tx.execute(query.order_by(solusvm_polls.c.server_id, solusvm_polls.c.at)):
                found.setdefault(row.server_id, []).append(StoredPoll(*row))
    return found


def records_of(tx: Connection, server_ids: Iterable[int]) -> dict[int, list[StoredRecord]]:
    """Every stored task and activity-log entry about the servers, by kind and id."""
    found: dict[int, list[StoredRecord]] = {}
    for chunk in _chunks(sorted(set(server_ids))):
        query = (
            select(*_columns(solusvm_records, StoredRecord))
            .where(solusvm_records.c.server_id.in_(chunk))
            .order_by(solusvm_records.c.kind, solusvm_records.c.record_id)
        )
        for row in tx.execute(query):
            record = StoredRecord(*row)
            if record.server_id is not None:
                found.setdefault(record.server_id, []).append(record)
    return found


def _records_by_key(tx: Connection, records: Sequence[StoredRecord]) -> dict[tuple[str, int], StoredRecord]:
    found: dict[tuple[str, int], StoredRecord] = {}
    for kind in sorted({record.kind for record in records}):
        for chunk in _chunks(sorted({r.record_id for r in records if r.kind == kind})):
            query = select(*_columns(solusvm_records, StoredRecord)).where(
                solusvm_records.c.kind == kind, solusvm_records.c.record_id.in_(chunk)
            )
            found.update({(row.kind, row.record_id): StoredRecord(*row) for row in tx.execute(query)})
    return found


def _existing_ids(tx: Connection, column: Any, ids: Sequence[int]) -> set[int]:
    known: set[int] = set()
    for chunk in _chunks(sorted(set(ids))):
        known |= set(tx.scalars(select(column).where(column.in_(chunk))))
    return known


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    return (ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK))


def _values(item: Any) -> dict[str, Any]:
    return {field.name: getattr(item, field.name) for field in fields(item)}


def _columns(table: Any, kind: type) -> list[Any]:
    return [table.c[field.name] for field in fields(kind)]
