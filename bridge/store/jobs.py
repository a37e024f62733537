"""Job runs (the daemon's diary) and job leases (one runner per job across all daemons)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, delete, exists, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bridge.store.tables import job_runs, leases


@dataclass(frozen=True)
class JobRun:
    id: int
    job: str
    owner: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def try_acquire_lease(
    connection: Connection, name: str, owner: str, now: datetime, ttl: timedelta
) -> str | None:
    """Take the lease ``name`` for ``owner`` unless another owner holds an unexpired one; the new token.

    Every acquisition gets a new random token, also when ``owner`` takes over its own lease (a daemon
    restarted under the same name): the token, not the owner, is what the holder's writes are fenced on
    (:func:`holds`), so a paused earlier holder can no longer write. Race-safe on all three databases:
    the update only matches a free or own lease, and two first-time inserts collide on the primary key,
    so exactly one caller wins.
    """
    token = secrets.token_hex(16)
    values = {"owner": owner, "acquired_at": now, "expires_at": now + ttl, "token": token}
    taken = connection.execute(
        update(leases)
        .where(leases.c.name == name, or_(leases.c.expires_at <= now, leases.c.owner == owner))
        .values(**values)
    )
    if taken.rowcount == 1:
        return token
    if connection.scalar(select(func.count()).select_from(leases).where(leases.c.name == name)):
        return None
    try:
        with connection.begin_nested():
            connection.execute(insert(leases).values(name=name, **values))
    except IntegrityError:
        return None
    return token


def renew_lease(connection: Connection, name: str, token: str, now: datetime, ttl: timedelta) -> bool:
    """Extend the lease held with ``token``; False if it expired before ``now`` or another holder took it
    (the holder must then stop before its next external call)."""
    renewed = connection.execute(
        update(leases)
        .where(leases.c.name == name, leases.c.token == token, leases.c.expires_at > now)
        .values(expires_at=now + ttl)
    )
    return bool(renewed.rowcount == 1)


def holds(
    name: str | ColumnElement[str], token: str | ColumnElement[str], now: datetime | ColumnElement[datetime]
) -> ColumnElement[bool]:
    """A condition true while the lease ``name`` is held with ``token`` and unexpired at ``now``: the fence
    every write of a lease holder carries in its WHERE clause, checked in the same statement. Each may be
    a bound parameter of a statement built once."""
    return exists().where(leases.c.name == name, leases.c.token == token, leases.c.expires_at > now)


def live_holders(connection: Connection, name: str, now: datetime) -> list[str]:
    """The owners holding, unexpired at ``now``, the lease ``name`` or one of its per-daemon leases
    (``name@…``, a shared job's): who runs that work now, anywhere."""
    family = or_(leases.c.name == name, leases.c.name.startswith(name + "@", autoescape=True))
    query = select(leases.c.owner).where(family, leases.c.expires_at > now).order_by(leases.c.owner)
    return [str(owner) for owner in connection.scalars(query)]


def release_lease(connection: Connection, name: str, token: str) -> None:
    """Give the lease up, if it is still the one taken with ``token``."""
    connection.execute(delete(leases).where(leases.c.name == name, leases.c.token == token))


def start_run(connection: Connection, job: str, owner: str, now: datetime) -> int:
    result = connection.execute(
        insert(job_runs).values(job=job, owner=owner, started_at=now, status="running")
    )
    (run_id,) = result.inserted_primary_key or (None,)
    assert isinstance(run_id, int)
    return run_id


def finish_run(connection: Connection, run_id: int, status: str, now: datetime, error: str | None) -> None:
    connection.execute(
        update(job_runs).where(job_runs.c.id == run_id).values(status=status, finished_at=now, error=error)
    )


def last_run(connection: Connection, job: str, status: str | None = None) -> JobRun | None:
    query = select(job_runs).where(job_runs.c.job == job)
    if status is not None:
        query = query.where(job_runs.c.status == status)
    row = connection.execute(
        query.order_by(job_runs.c.started_at.desc(), job_runs.c.id.desc()).limit(1)
    ).first()
    return JobRun(**row._mapping) if row else None


def runs(connection: Connection, job: str | None = None, limit: int = 50) -> list[JobRun]:
    query = select(job_runs)
    if job is not None:
        query = query.where(job_runs.c.job == job)
    rows = connection.execute(query.order_by(job_runs.c.id.desc()).limit(limit))
    return [JobRun(**row._mapping) for row in rows]


def prune_runs(connection: Connection, before: datetime) -> int:
    result = connection.execute(
        delete(job_runs).where(job_runs.c.started_at < before, job_runs.c.status != "running")
    )
    return result.rowcount
