"""Clients and their links on every database: ids in order, text kept whole, one owner per external id."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from bridge.domain.clients import LinkKind
from bridge.store import clients as store
from bridge.store.unit_of_work import UnitOfWork
from tests.support.store import NOW, new_client


def test_ids_count_up_from_1_and_a_client_reads_back_whole_with_an_aware_time(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        first = new_client(tx, "ops@acme.com", currency="USD")
        second = new_client(tx, "bills@beta.org")
    with uow.reading() as tx:
        client = store.client_by_id(tx, first)
        by_email = store.client_by_email(tx, "bills@beta.org")
    assert (first, second) == (1, 2)
    assert client is not None
    assert (client.email, client.name, client.currency, client.configuration) == (
        "ops@acme.com",
        "ops",
        "USD",
        "default",
    )
    assert client.created_at == NOW and client.created_at.utcoffset() is not None
    assert by_email is not None and by_email.id == second


def test_a_name_in_any_script_comes_back_as_written(uow: UnitOfWork) -> None:
    name = "Zoë Ørsted 株式会社 🚀"  # four-byte UTF-8 too (MariaDB's utf8mb4)
    with uow.writing() as tx:
        client_id = new_client(tx)
        store.update_client(tx, client_id, name=name)
        store.set_configuration(tx, client_id, "prepaid")
    with uow.reading() as tx:
        client = store.client_by_id(tx, client_id)
    assert client is not None and (client.name, client.configuration) == (name, "prepaid")


def test_a_second_client_with_the_email_is_refused_and_the_first_stays(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        new_client(tx, "ops@acme.com")
    with pytest.raises(IntegrityError), uow.writing() as tx:
        new_client(tx, "ops@acme.com")
    with uow.reading() as tx:
        assert [client.email for client in store.all_clients(tx)] == ["ops@acme.com"]


def test_links_come_with_their_client_sorted_and_an_external_id_has_one_owner(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        acme, beta = new_client(tx, "ops@acme.com"), new_client(tx, "bills@beta.org")
        for kind, external_id in [
            (LinkKind.OPENSTACK_PROJECT, "p-2"),
            (LinkKind.WHMCS_CLIENT, "7"),
            (LinkKind.OPENSTACK_PROJECT, "p-1"),
        ]:
            store.insert_link(tx, client_id=acme, kind=kind, external_id=external_id, created_at=NOW)
    with pytest.raises(IntegrityError), uow.writing() as tx:
        store.insert_link(
            tx, client_id=beta, kind=LinkKind.OPENSTACK_PROJECT, external_id="p-1", created_at=NOW
        )
    with uow.reading() as tx:
        client = store.client_by_id(tx, acme)
        owner = store.find_link_owner(tx, LinkKind.OPENSTACK_PROJECT, "p-1")
        nobody = store.find_link_owner(tx, LinkKind.WHMCS_CLIENT, "p-1")
    assert client is not None
    assert [(link.kind, link.external_id) for link in client.links] == sorted(
        [
            (LinkKind.OPENSTACK_PROJECT, "p-1"),
            (LinkKind.OPENSTACK_PROJECT, "p-2"),
            (LinkKind.WHMCS_CLIENT, "7"),
        ],
        key=lambda pair: (pair[0].value, pair[1]),
    )
    assert all(link.created_at == NOW for link in client.links)
    assert (owner, nobody) == (acme, None)


def test_clients_are_read_in_pages_by_id(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        ids = [new_client(tx, f"c{n}@example.com") for n in range(5)]
    with uow.reading() as tx:
        pages = [store.clients_after(tx, after, 2) for after in (0, ids[1], ids[3], ids[4])]
        missing = store.client_by_id(tx, 99)
    assert [[client.id for client in page] for page in pages] == [ids[0:2], ids[2:4], ids[4:], []]
    assert missing is None
