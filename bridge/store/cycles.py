"""What a client's billing cycles are made of: its schedule history and when its first service started."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, case, func, insert, literal, select, type_coerce, union_all

from bridge.domain.clients import OWNER_LINK_KIND
from bridge.domain.cycles import ScheduleChange
from bridge.store.tables import client_links, cycle_schedules, solusvm_servers, usage_records, usage_rollups
from bridge.store.types import UTCDateTime

_OWNERS_PER_QUERY = 200
"""Owners looked up per statement (SQLite allows 500 selects in one compound statement)."""


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
    connection.execute(
        insert(cycle_schedules).values(
            client_id=client_id,
            calendar_months=change.calendar_months,
            since=change.since,
            created_at=now,
        )
    )


def first_service_starts(
    connection: Connection, owners: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """Per (source, owner): when its first service started, as the evidence shows it: SolusVM lists each
    server's creation, and for both clouds the start of the first collected window is the latest it can
    be (the day rollups keep it after the hours are pruned). Never after a window of usage, so a client's
    first cycle holds all of its usage.

    Two queries whatever the number of owners: each owner's first window is a seek on the (owner, window
    start) index, never a scan of its usage.
    """
    pairs = sorted(set(owners))
    if not pairs:
        return {}
    found: dict[tuple[str, str], datetime] = {}
    # The hourly rows, and the day rollups that outlive them (billing.hourly_usage_months prunes the hours
    # but keeps each day's first window start), so pruning never moves a client's first cycle.
    for first_start, owner_column, source_column in (
        (usage_records.c.window_start, usage_records.c.owner, usage_records.c.source),
        (usage_rollups.c.first_start, usage_rollups.c.owner, usage_rollups.c.source),
    ):
        firsts = [
            select(
                literal(source).label("source"),
                literal(owner).label("owner"),
                type_coerce(
                    select(func.min(first_start))
                    .where(owner_column == owner, source_column == source)
                    .scalar_subquery(),
                    UTCDateTime(),
                ).label("first"),
            )
            for source, owner in pairs
        ]
        for batch in range(0, len(firsts), _OWNERS_PER_QUERY):
            for row in connection.execute(union_all(*firsts[batch : batch + _OWNERS_PER_QUERY])):
                key = (row.source, row.owner)
                if row.first is not None:
                    found[key] = min(found.get(key, row.first), row.first)
    users = sorted(int(owner) for source, owner in pairs if source == "solusvm" and owner.isdigit())
    if users:
        created = type_coerce(func.min(solusvm_servers.c.created_at), UTCDateTime()).label("created")
        listed = (
            select(solusvm_servers.c.user_id, created)
            .where(solusvm_servers.c.user_id.in_(users))
            .group_by(solusvm_servers.c.user_id)
        )
        for row in connection.execute(listed):
            key = ("solusvm", str(row.user_id))
            if row.created is not None:
                found[key] = min(found.get(key, row.created), row.created)
    return found


_CLIENTS_PER_QUERY = 500


def first_service_starts_of_clients(
    connection: Connection, client_ids: Iterable[int]
) -> dict[tuple[str, str], datetime]:
    """:func:`first_service_starts` of every owner linked to ``client_ids``, one statement per 500 clients.

    The statement is the same whatever the clients (their ids are one expanding parameter), so it is
    compiled once; each owner's first window is still a seek on the (owner, window start) index, from a
    subquery per link. Building one select per owner, as :func:`first_service_starts` does, costs about a
    millisecond of CPU per owner, which a chunk of clients pays on every run. SolusVM users also have their
    servers' creation, read by :func:`first_service_starts` (issue 18, reconcile: added beside it).
    """
    ids = sorted(set(client_ids))
    source = case(*((client_links.c.kind == kind, literal(name)) for name, kind in OWNER_LINK_KIND.items()))
    firsts = [
        type_coerce(
            select(func.min(first))
            .where(owner_column == client_links.c.external_id, source_column == source)
            .scalar_subquery(),
            UTCDateTime(),
        )
        for first, owner_column, source_column in (
            (usage_records.c.window_start, usage_records.c.owner, usage_records.c.source),
            (usage_rollups.c.first_start, usage_rollups.c.owner, usage_rollups.c.source),
        )
    ]
    query = select(source.label("source"), client_links.c.external_id, *firsts).where(
        client_links.c.client_id.in_(bindparam("ids", expanding=True)),
        client_links.c.kind.in_(list(OWNER_LINK_KIND.values())),
    )
    found: dict[tuple[str, str], datetime] = {}
    users: list[tuple[str, str]] = []
    for batch in range(0, len(ids), _CLIENTS_PER_QUERY):
        for row in connection.execute(query, {"ids": ids[batch : batch + _CLIENTS_PER_QUERY]}):
            key = (row.source, row.external_id)
            starts = [start for start in row[2:] if start is not None]
            if starts:
                found[key] = min([*starts, *([found[key]] if key in found else [])])
            if row.source == "solusvm":
                users.append(key)
    for key, start in first_service_starts(connection, users).items():
        found[key] = min(found.get(key, start), start)
    return found
