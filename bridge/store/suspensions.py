"""The suspension history: one row per suspension of a client, open (no ``ended_at``) while it lasts.

Written in the transaction that decides the suspension or the resume (with its outbox rows), so the
history and the cloud effects never disagree; read by invoicing and the reconciliation, which leave the
hours inside a suspension unbilled unless the client's configuration bills them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from bridge.domain.suspension import Suspension
from bridge.store.tables import client_suspensions


def open_suspension(
    connection: Connection, client_id: int, at: datetime, *, reason: str, by: str, shelved: bool
) -> bool:
    """Record that the client is suspended from ``at``; False (nothing written) when it already is."""
    if current(connection, client_id) is not None:
        return False
    connection.execute(
        insert(client_suspensions).values(
            client_id=client_id, started_at=at, reason=reason, started_by=by, shelved=shelved
        )
    )
    return True


def close_suspension(connection: Connection, client_id: int, at: datetime, *, by: str) -> Suspension | None:
    """End the client's open suspension at ``at``; the suspension as it was, or None if there was none."""
    found = current(connection, client_id)
    if found is None:
        return None
    connection.execute(
        update(client_suspensions)
        .where(client_suspensions.c.client_id == client_id, client_suspensions.c.ended_at.is_(None))
        .values(ended_at=at, ended_by=by)
    )
    return found


def current(connection: Connection, client_id: int) -> Suspension | None:
    """The client's open suspension, if it is suspended."""
    row = connection.execute(
        select(client_suspensions).where(
            client_suspensions.c.client_id == client_id, client_suspensions.c.ended_at.is_(None)
        )
    ).first()
    return None if row is None else _suspension(row)


def open_of(connection: Connection, client_ids: Sequence[int]) -> dict[int, Suspension]:
    """The open suspension of each of the clients that is suspended."""
    if not client_ids:
        return {}
    rows = connection.execute(
        select(client_suspensions).where(
            client_suspensions.c.client_id.in_(client_ids), client_suspensions.c.ended_at.is_(None)
        )
    )
    return {row.client_id: _suspension(row) for row in rows}


def overlapping(
    connection: Connection, client_ids: Sequence[int], start: datetime, end: datetime
) -> dict[int, list[Suspension]]:
    """Per client, its suspensions that overlap [start, end), oldest first."""
    if not client_ids:
        return {}
    rows = connection.execute(
        select(client_suspensions)
        .where(
            client_suspensions.c.client_id.in_(client_ids),
            client_suspensions.c.started_at < end,
            or_(client_suspensions.c.ended_at.is_(None), client_suspensions.c.ended_at > start),
        )
        .order_by(client_suspensions.c.client_id, client_suspensions.c.started_at)
    )
    found: dict[int, list[Suspension]] = defaultdict(list)
    for row in rows:
        found[row.client_id].append(_suspension(row))
    return dict(found)


def history(connection: Connection, client_id: int) -> list[Suspension]:
    """Every suspension of the client, oldest first."""
    rows = connection.execute(
        select(client_suspensions)
        .where(client_suspensions.c.client_id == client_id)
        .order_by(client_suspensions.c.started_at)
    )
    return [_suspension(row) for row in rows]


def _suspension(row: Any) -> Suspension:
    return Suspension(
        client_id=row.client_id,
        start=row.started_at,
        end=row.ended_at,
        reason=row.reason,
        by=row.started_by,
        shelved=bool(row.shelved),
    )
