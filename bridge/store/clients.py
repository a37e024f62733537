"""Reading and writing clients and their links."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Connection, Row, func, insert, select, update

from bridge.domain.clients import Client, ClientLink, LinkKind
from bridge.domain.tax import ExemptionDecision, ViesObservation, ViesOutcome
from bridge.store.tables import client_links, client_passwords, client_tax_exemptions, clients, vies_checks


def insert_client(
    connection: Connection,
    *,
    email: str,
    name: str,
    currency: str,
    configuration: str,
    created_at: datetime,
    country: str | None = None,
    vat_id: str | None = None,
) -> int:
    result = connection.execute(
        insert(clients).values(
            email=email,
            name=name,
            currency=currency,
            configuration=configuration,
            created_at=created_at,
            country=country,
            vat_id=vat_id,
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


def update_client(connection: Connection, client_id: int, **values: str | None) -> None:
    """Change the client's email, name, country and/or VAT ID."""
    connection.execute(update(clients).where(clients.c.id == client_id).values(**values))


def set_configuration(connection: Connection, client_id: int, configuration: str) -> None:
    connection.execute(update(clients).where(clients.c.id == client_id).values(configuration=configuration))


def add_exemption(connection: Connection, client_id: int, decision: ExemptionDecision) -> None:
    """Keep a tax exemption decision; the latest one of the client is in force."""
    connection.execute(
        insert(client_tax_exemptions).values(
            client_id=client_id,
            exempt=decision.exempt,
            decided_by=decision.by,
            decided_at=decision.at,
            why=decision.why,
        )
    )


def exemption_history(connection: Connection, client_id: int) -> list[ExemptionDecision]:
    """Every exemption decision about the client, oldest first."""
    query = (
        select(client_tax_exemptions)
        .where(client_tax_exemptions.c.client_id == client_id)
        .order_by(client_tax_exemptions.c.id)
    )
    return [_decision(row) for row in connection.execute(query)]


@dataclass(frozen=True)
class ViesCheck:
    """One VIES answer kept as evidence: when we asked, what it said, VIES's own request date and
    consultation number when it gave them, or its error code and what happened."""

    vat_id: str
    asked_at: datetime
    outcome: ViesOutcome
    code: str | None = None
    request_date: datetime | None = None
    consultation_number: str | None = None
    detail: str | None = None

    @property
    def observation(self) -> ViesObservation:
        return ViesObservation(self.asked_at, self.outcome)


def add_vies_check(connection: Connection, client_id: int, check: ViesCheck) -> None:
    connection.execute(
        insert(vies_checks).values(client_id=client_id, **{**asdict(check), "outcome": check.outcome.value})
    )


def vies_checks_of(connection: Connection, client_id: int, vat_id: str) -> list[ViesCheck]:
    """Every VIES answer about the client's ``vat_id``, oldest first."""
    query = (
        select(vies_checks)
        .where(vies_checks.c.client_id == client_id, vies_checks.c.vat_id == vat_id)
        .order_by(vies_checks.c.asked_at, vies_checks.c.id)
    )
    return [
        ViesCheck(
            vat_id=row.vat_id,
            asked_at=row.asked_at,
            outcome=ViesOutcome(row.outcome),
            code=row.code,
            request_date=row.request_date,
            consultation_number=row.consultation_number,
            detail=row.detail,
        )
        for row in connection.execute(query)
    ]


def clients_with_vat_ids(connection: Connection) -> list[int]:
    """The ids of the clients that have a VAT ID (the revalidation job asks VIES about each)."""
    query = select(clients.c.id).where(clients.c.vat_id.is_not(None)).order_by(clients.c.id)
    return list(connection.scalars(query))


def find_link_owner(connection: Connection, kind: LinkKind, external_id: str) -> int | None:
    return connection.scalar(
        select(client_links.c.client_id).where(
            client_links.c.kind == kind.value, client_links.c.external_id == external_id
        )
    )


def client_by_id(connection: Connection, client_id: int) -> Client | None:
    row = connection.execute(select(*_CLIENT_COLUMNS).where(clients.c.id == client_id)).first()
    return _with_links(connection, [row])[0] if row else None


def client_by_email(connection: Connection, email: str) -> Client | None:
    row = connection.execute(select(*_CLIENT_COLUMNS).where(clients.c.email == email)).first()
    return _with_links(connection, [row])[0] if row else None


def clients_after(connection: Connection, after_id: int, limit: int) -> list[Client]:
    rows = connection.execute(
        select(*_CLIENT_COLUMNS).where(clients.c.id > after_id).order_by(clients.c.id).limit(limit)
    ).all()
    return _with_links(connection, rows)


def clients_between(connection: Connection, first_id: int, last_id: int) -> list[Client]:
    """The clients whose ids lie in ``first_id`` … ``last_id`` (inclusive), in id order: one claimed chunk."""
    rows = connection.execute(
        select(*_CLIENT_COLUMNS).where(clients.c.id.between(first_id, last_id)).order_by(clients.c.id)
    ).all()
    return _with_links(connection, rows)


def count_clients(connection: Connection) -> int:
    return int(connection.execute(select(func.count()).select_from(clients)).scalar_one())


def all_clients(connection: Connection) -> list[Client]:
    rows = connection.execute(select(*_CLIENT_COLUMNS).order_by(clients.c.id)).all()
    return _with_links(connection, rows)


def _latest_exemptions(connection: Connection, ids: list[int]) -> dict[int, ExemptionDecision]:
    latest: dict[int, ExemptionDecision] = {}
    query = (
        select(client_tax_exemptions)
        .where(client_tax_exemptions.c.client_id.in_(ids))
        .order_by(client_tax_exemptions.c.id)
    )
    for row in connection.execute(query):
        latest[row.client_id] = _decision(row)
    return latest


def _decision(row: Row[Any]) -> ExemptionDecision:
    return ExemptionDecision(exempt=row.exempt, by=row.decided_by, at=row.decided_at, why=row.why)


_CLIENT_COLUMNS: Final = tuple(
    clients.c[name]
    for name in ("id", "email", "name", "currency", "configuration", "created_at", "country", "vat_id")
)
"""What a :class:`Client` reads of its row, in the order :func:`_with_links` unpacks it (by position: a
row's attributes cost more than the rest of reading a client, chunk after chunk of a month's run)."""


def _with_links(connection: Connection, rows: Sequence[Row[Any]]) -> list[Client]:
    """Clients from rows of :data:`_CLIENT_COLUMNS`, with their links and tax exemption decisions."""
    ids = [row[0] for row in rows]
    links: dict[int, list[ClientLink]] = defaultdict(list)
    exemptions = _latest_exemptions(connection, ids) if ids else {}
    if ids:
        query = (
            select(
                client_links.c.client_id,
                client_links.c.kind,
                client_links.c.external_id,
                client_links.c.created_at,
            )
            .where(client_links.c.client_id.in_(ids))
            .order_by(client_links.c.kind, client_links.c.external_id)
        )
        for client_id, kind, external_id, linked_at in connection.execute(query):
            links[client_id].append(ClientLink(LinkKind(kind), external_id, linked_at))
    return [
        Client(
            id=client_id,
            email=email,
            name=name,
            currency=currency,
            configuration=configuration,
            created_at=created_at,
            links=tuple(links[client_id]),
            country=country,
            vat_id=vat_id,
            exemption=exemptions.get(client_id),
        )
        for client_id, email, name, currency, configuration, created_at, country, vat_id in rows
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
