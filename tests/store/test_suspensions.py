"""The suspension history on every database: one open suspension per client, closed by its resume, and the
month's suspensions found for invoicing and the reconciliation; the migration keeps who is suspended."""

from __future__ import annotations

from datetime import timedelta

from alembic import command
from sqlalchemy import column, insert, table, text

from bridge.domain.suspension import Suspension
from bridge.store import suspensions as store
from bridge.store.database import alembic_config, make_engine, migrate
from bridge.store.tables import client_credit_states
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW, new_client

DAY = timedelta(days=1)


def test_a_client_has_one_open_suspension_until_it_is_resumed(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx)
        opened = [
            store.open_suspension(
                tx, client_id, NOW, reason="credit under the limit", by="process_clients", shelved=True
            ),
            store.open_suspension(tx, client_id, NOW + DAY, reason="again", by="staff", shelved=False),
        ]
    with uow.writing() as tx:
        closed = store.close_suspension(tx, client_id, NOW + 2 * DAY, by="staff")
        after = store.close_suspension(tx, client_id, NOW + 3 * DAY, by="staff")
    with uow.reading() as tx:
        history = store.history(tx, client_id)
        current = store.current(tx, client_id)
    assert opened == [True, False]
    assert closed == Suspension(client_id, NOW, None, "credit under the limit", "process_clients", True)
    assert after is None and current is None
    assert history == [
        Suspension(client_id, NOW, NOW + 2 * DAY, "credit under the limit", "process_clients", True)
    ]


def test_the_suspensions_overlapping_a_span_are_found_per_client(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        ada, bob, cy = (
            new_client(tx, "ada@example.com"),
            new_client(tx, "bob@example.com"),
            new_client(tx, "cy@example.com"),
        )
        for client_id, days in ((ada, (0, 2)), (ada, (5, 6)), (bob, (9, None)), (cy, (20, 21))):
            store.open_suspension(tx, client_id, NOW + days[0] * DAY, reason="r", by="staff", shelved=False)
            if days[1] is not None:
                store.close_suspension(tx, client_id, NOW + days[1] * DAY, by="staff")
    with uow.reading() as tx:
        found = store.overlapping(tx, [ada, bob, cy], NOW + DAY, NOW + 10 * DAY)
        open_now = store.open_of(tx, [ada, bob, cy])
    assert {client_id: [(s.start, s.end) for s in spans] for client_id, spans in found.items()} == {
        ada: [(NOW, NOW + 2 * DAY), (NOW + 5 * DAY, NOW + 6 * DAY)],
        bob: [(NOW + 9 * DAY, None)],
    }
    assert list(open_now) == [bob]


def test_the_migration_opens_the_suspension_of_a_client_suspended_before_it(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        command.upgrade(alembic_config(engine), "0009")
        with engine.begin() as tx:  # the clients table as 0009 left it: later migrations add columns
            clients_0009 = table(
                "clients",
                *(column(name) for name in ("email", "name", "currency", "configuration", "created_at")),
            )
            values = {"email": "ops@acme.com", "name": "ops", "currency": "EUR", "configuration": "default"}
            tx.execute(insert(clients_0009).values(**values, created_at=NOW))
            client_id = tx.execute(text("SELECT id FROM clients")).scalar_one()
            tx.execute(
                insert(client_credit_states).values(
                    client_id=client_id, suspended_at=NOW, shelved=True, notifications_sent="", updated_at=NOW
                )
            )
        migrate(engine)
        with engine.connect() as tx:
            assert store.history(tx, client_id) == [
                Suspension(
                    client_id, NOW, None, "up-to-date credit under the credit limit", "process_clients", True
                )
            ]
    finally:
        engine.dispose()
