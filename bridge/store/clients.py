"""Reading and writing clients and their links."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from bridge.domain.clients import Client, ClientLink, LinkKind
from bridge.store.tables import client_links, client_passwords, clients


def insert_client(
    connection: Connection, *, email: str, name: str, currency: str, configuration: str, created_at: datetime
) -> int:
    result = connection.execute(
        insert(clients).values(
            email=email, name=name, currency=currency, configuration=configuration, created_at=created_at
        )
    )
    (client_id,) = result.inserted_primary_key or (None,)
    assert isinstance(client_id, int)
    return client_id


def insert_link(
    connection: Connection, *, client_id: int, kind: LinkKind, external_id: str, created_at: datetime
) -> None:
    connection.execute(
        insert(client_links).values(
            client_id=client_id, kind=kind.value, external_id=external_id, created_at=created_at
        )
    )


def update_client(connection: Connection, client_id: int, **values: str) -> None:
    """Change the client's email and/or name."""
    connection.execute(update(clients).where(clients.c.id == client_id).values(**values))


def set_configuration(connection: Connection, client_id: int, configuration: str) -> None:
    connection.execute(update(clients).where(clients.c.id == client_id).values(configuration=configuration))


def find_link_owner(connection: Connection, kind: LinkKind, external_id: str) -> int | None:
    return connection.scalar(
        select(client_links.c.client_id).where(
            client_links.c.kind == kind.value, client_links.c.external_id == external_id
        )
    )


def client_by_id(connection: Connection, client_id: int) -> Client | None:
    row = connection.execute(select(clients).where(clients.c.id == client_id)).first()
    return _with_links(connection, [row])[0] if row else None


def client_by_email(connection: Connection, email: str) -> Client | None:
    row = connection.execute(select(clients).where(clients.c.email == email)).first()
    return _with_links(connection, [row])[0] if row else None


def clients_after(connection: Connection, after_id: int, limit: int) -> list[Client]:
    rows = connection.execute(
        select(clients).where(clients.c.id > after_id).order_by(clients.c.id).limit(limit)
    ).all()
    return _with_links(connection, rows)


def clients_between(connection: Connection, first_id: int, last_id: int) -> list[Client]:
    """The clients whose ids lie in ``first_id`` … ``last_id`` (inclusive), in id order: one claimed chunk."""
    rows = connection.execute(
        select(clients).where(clients.c.id.between(first_id, last_id)).order_by(clients.c.id)
    ).all()
    return _with_links(connection, rows)


def count_clients(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(clients)).scalar_one())


def all_clients(connection: Connection) -> list[Client]:
    rows = connection.execute(select(clients).order_by(clients.c.id)).all()
    return _with_links(connection, rows)


def _with_links(connection: Connection, rows: Sequence[Row[Any]]) -> list[Client]:
    ids = [row.id for row in rows]
    links: dict[int, list[ClientLink]] = defaultdict(list)
    if ids:
        query = (
            select(client_links)
            .where(client_links.c.client_id.in_(ids))
            .order_by(client_links.c.kind, client_links.c.external_id)
        )
        for link in connection.execute(query):
            links[link.client_id].append(ClientLink(LinkKind(link.kind), link.external_id, link.created_at))
    return [
        Client(
            id=row.id,
            email=row.email,
            name=row.name,
            currency=row.currency,
            configuration=row.configuration,
            created_at=row.created_at,
            links=tuple(links[row.id]),
        )
        for row in rows
    ]


def password_hash(connection: Connection, client_id: int) -> str | None:
    """The hash of the password the client signs in to its pages with (None: it has none)."""
    found = connection.scalar(
        select(client_passwords.c.password_hash).where(client_passwords.c.client_id == client_id)
    )
    return None if found is None else str(found)


def set_password_hash(connection: Connection, client_id: int, hashed: str, now: datetime) -> None:
    """Keep ``hashed`` as the client's password hash, replacing any earlier one."""
    exists = password_hash(connection, client_id) is not None
    if exists:
        connection.execute(
            update(client_passwords)
            .where(client_passwords.c.client_id == client_id)
            .values(password_hash=hashed, set_at=now)
        )
    else:
        connection.execute(
            insert(client_passwords).values(client_id=client_id, password_hash=hashed, set_at=now)
        )
