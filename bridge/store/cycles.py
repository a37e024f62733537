"""What a client's billing cycles are made of: its schedule history and when its first service started."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, type_coerce

from bridge.domain.cycles import ScheduleChange
from bridge.store.tables import cycle_schedules, solusvm_servers, usage_records
from bridge.store.types import UTCDateTime


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
    be. Never after a window of usage, so a client's first cycle holds all of its usage."""
    pairs = set(owners)
    if not pairs:
        return {}
    first = type_coerce(func.min(usage_records.c.window_start), UTCDateTime()).label("first")
    query = (
        select(usage_records.c.source, usage_records.c.owner, first)
        .where(usage_records.c.owner.in_(sorted({owner for _, owner in pairs})))
        .group_by(usage_records.c.source, usage_records.c.owner)
    )
    found = {
        (row.source, row.owner): row.first
        for row in connection.execute(query)
        if (row.source, row.owner) in pairs and row.first is not None
    }
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
