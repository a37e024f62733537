"""What a client's billing cycles are made of: its schedule history and when its first service started."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Label, String, bindparam, func, insert, select, type_coerce

from bridge.domain.clients import OWNER_LINK_KIND
from bridge.domain.cycles import ScheduleChange
from bridge.store.planning import unindexed
from bridge.store.tables import client_links, cycle_schedules, solusvm_servers, usage_records, usage_rollups
from bridge.store.types import UTCDateTime

_PER_QUERY = 500
"""Clients or owners per statement (each an expanding parameter: within every database's limit)."""


def schedules_of_clients(connection: Connection, client_ids: list[int]) -> dict[int, list[ScheduleChange]]:
    """Each client's recorded schedule changes, oldest first (clients without any are left out)."""
    if not client_ids:
        return {}
    query = (
        select(cycle_schedules.c.client_id, cycle_schedules.c.since, cycle_schedules.c.calendar_months)
        .where(cycle_schedules.c.client_id.in_(client_ids))
        .order_by(cycle_schedules.c.client_id, cycle_schedules.c.since, cycle_schedules.c.id)
    )
    found: dict[int, list[ScheduleChange]] = {}
    for row in connection.execute(query):
        found.setdefault(row.client_id, []).append(ScheduleChange(row.since, bool(row.calendar_months)))
    return found


def record_schedule(connection: Connection, client_id: int, change: ScheduleChange, *, now: datetime) -> None:
    """From ``change.since`` on, the client's new cycles follow ``change.calendar_months``."""
    record_schedules(connection, [(client_id, change)], now=now)


_INSERT_SCHEDULES = insert(cycle_schedules)


def record_schedules(
    connection: Connection, changes: Sequence[tuple[int, ScheduleChange]], *, now: datetime
) -> None:
    """:func:`record_schedule` for many clients in one batched insert (a month end records every new
    client's schedule)."""
    if changes:
        connection.execute(
            _INSERT_SCHEDULES,
            [
                {
                    "client_id": client_id,
                    "calendar_months": change.calendar_months,
                    "since": change.since,
                    "created_at": now,
                }
                for client_id, change in changes
            ],
        )


def first_service_starts(
    connection: Connection, owners: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """Per (source, owner): when its first service started, as the evidence shows it: SolusVM lists each
    server's creation, and for both clouds the start of the first collected window is the latest it can
    be (the day rollups keep it after the hours are pruned). Never after a window of usage, so a client's
    first cycle holds all of its usage.

    A few statements whatever the number of owners (month end asks for a chunk of clients at once), each
    built once: per source, the owners linked to a client are looked up through their links, each
    owner's first window a seek on the (owner, window start) and (owner, day) indexes, never a scan of
    its usage; an owner no client is linked to (rare: a link removed) is looked up on its own.
    """
    pairs = sorted(set(owners))
    found: dict[tuple[str, str], datetime] = {}
    for source, owned in _by_source(pairs).items():
        looked_up: set[str] = set()
        kind = OWNER_LINK_KIND.get(source)
        if kind is not None:
            for batch in range(0, len(owned), _PER_QUERY):
                parameters = {
                    "source": source,
                    "kind": kind.value,
                    "owners": owned[batch : batch + _PER_QUERY],
                }
                for row in connection.execute(_FIRST_OF_LINKED, parameters):
                    looked_up.add(row.owner)
                    _keep_earliest(found, (source, row.owner), row.hourly, row.daily)
        for owner in owned:
            if owner not in looked_up:
                row = connection.execute(_FIRST_OF_OWNER, {"source": source, "owner": owner}).one()
                _keep_earliest(found, (source, owner), row.hourly, row.daily)
    _solusvm_creations(connection, pairs, found)
    return found


def _by_source(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source, owner in pairs:
        grouped.setdefault(source, []).append(owner)
    return grouped


def _keep_earliest(
    found: dict[tuple[str, str], datetime], key: tuple[str, str], *starts: datetime | None
) -> None:
    for start in starts:
        if start is not None:
            found[key] = min(found.get(key, start), start)


def _first_starts(owner: ColumnElement[str]) -> tuple[Label[datetime], Label[datetime]]:
    """The owner's first window start in the hourly rows, and in the day rollups that outlive them
    (billing.hourly_usage_months prunes the hours but keeps each day's first window start), so pruning
    never moves a client's first cycle. The rollups' earliest first start is on their earliest day
    (a day's windows start in that day), found by a seek on (owner, day).

    The earliest day is the owner's own (correlated to it explicitly: left to itself, the nested subquery
    joined every link and found the earliest day of every linked owner), and in both day lookups the
    source is kept out of the index choice (bridge/store/planning.py): SQLite and PostgreSQL would
    otherwise walk the unique (source, day, ...) index, a whole day of every owner, to find this one's."""
    source = bindparam("source", type_=String())
    hourly = (
        select(func.min(usage_records.c.window_start))
        .where(usage_records.c.owner == owner, usage_records.c.source == source)
        .scalar_subquery()
    )
    days = usage_rollups.alias("days")
    first_day = (
        select(func.min(days.c.day_start))
        .where(days.c.owner == owner, unindexed(days.c.source) == source)
        .correlate_except(days)  # the owner is the enclosing query's, two levels up
        .scalar_subquery()
    )
    daily = (
        select(func.min(usage_rollups.c.first_start))
        .where(
            usage_rollups.c.owner == owner,
            unindexed(usage_rollups.c.source) == source,
            usage_rollups.c.day_start == first_day,
        )
        .scalar_subquery()
    )
    return (
        type_coerce(hourly, UTCDateTime()).label("hourly"),
        type_coerce(daily, UTCDateTime()).label("daily"),
    )


_FIRST_OF_LINKED = select(
    client_links.c.external_id.label("owner"), *_first_starts(client_links.c.external_id)
).where(
    client_links.c.kind == bindparam("kind"),
    client_links.c.external_id.in_(bindparam("owners", expanding=True)),
)
_FIRST_OF_OWNER = select(*_first_starts(bindparam("owner", type_=String())))


def _solusvm_creations(
    connection: Connection, pairs: Sequence[tuple[str, str]], found: dict[tuple[str, str], datetime]
) -> None:
    """SolusVM servers' creation: it may be earlier than the first collected window."""
    users = sorted(int(owner) for source, owner in pairs if source == "solusvm" and owner.isdigit())
    if users:
        created = type_coerce(func.min(solusvm_servers.c.created_at), UTCDateTime()).label("created")
        listed = (
            select(solusvm_servers.c.user_id, created)
            .where(solusvm_servers.c.user_id.in_(users))
            .group_by(solusvm_servers.c.user_id)
        )
        for row in connection.execute(listed):
            _keep_earliest(found, ("solusvm", str(row.user_id)), row.created)
