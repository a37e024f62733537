"""Push claims: several pushes (daemons on several hosts) share the outbox through the database, by client.

A push works a client's rows only after claiming the client: its ``push_claims`` row names the push's
lease and that lease's token. The claim holds while that lease is held with that token and unexpired, so
it frees itself when the push ends (its lease released), dies or is paused past its lease (the lease
expired), and nothing sweeps claims. One holder per client keeps a client's calls in order (its
create_invoice after its add_client) across daemons; every write on a row stays fenced on the holder's
lease as well (bridge/store/outbox.py), so a push that lost its lease can change nothing.

The claim locks the client's row with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB, so
two pushes reaching the same client at once never wait for each other: the second moves on. On SQLite
the write transaction's ``BEGIN IMMEDIATE`` already admits one claimer at a time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from bridge.store.jobs import holds
from bridge.store.tables import push_claims


class ClaimLost(Exception):
    """The claimer's own lease is no longer held: it must stop before its next external call."""


def claim_client(
    connection: Connection, client_id: int, *, lease: str, token: str, holder: str, now: datetime
) -> bool:
    """Claim ``client_id`` for the push holding ``lease`` with ``token``; False when another live push
    holds it (or is claiming it this instant). :class:`ClaimLost` (nothing written) when the claimer's
    own lease is not held at ``now``."""
    found = connection.execute(
        select(push_claims.c.lease, push_claims.c.token)
        .where(push_claims.c.client_id == client_id)
        .with_for_update(skip_locked=True)
    ).first()
    values: dict[str, Any] = {"lease": lease, "token": token, "holder": holder, "claimed_at": now}
    if found is None:
        _check_held(connection, lease, token, now)
        return _first_claim(connection, client_id, values)
    if found.token == token:
        return True
    taken = connection.execute(
        update(push_claims)
        .where(
            push_claims.c.client_id == client_id,
            push_claims.c.token == found.token,
            ~holds(found.lease, found.token, now),
            holds(lease, token, now),
        )
        .values(**values)
    ).rowcount
    if taken == 1:
        return True
    _check_held(connection, lease, token, now)
    return False


def _first_claim(connection: Connection, client_id: int, values: dict[str, Any]) -> bool:
    """The client's first claim ever (or one the SELECT skipped, locked by a racing claimer): an INSERT,
    which the racing claim makes fail on the key."""
    try:
        with connection.begin_nested():
            connection.execute(insert(push_claims).values(client_id=client_id, **values))
    except IntegrityError:
        return False
    return True


def _check_held(connection: Connection, lease: str, token: str, now: datetime) -> None:
    if not connection.scalar(select(holds(lease, token, now))):
        raise ClaimLost("the push's lease is no longer held; no client was claimed")


def holder_of(connection: Connection, client_id: int, now: datetime) -> str | None:
    """Who holds the client's claim now (the push's owner), or None when nobody does."""
    found = connection.execute(
        select(push_claims.c.holder, push_claims.c.lease, push_claims.c.token).where(
            push_claims.c.client_id == client_id
        )
    ).first()
    if found is None or not connection.scalar(select(holds(found.lease, found.token, now))):
        return None
    return str(found.holder)
