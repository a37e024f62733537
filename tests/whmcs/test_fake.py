"""The fake itself, spoken to with plain ``requests``: its wire shapes follow the documented contract."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from bridge.whmcs import WhmcsClient, WhmcsResponseError
from tests.fakes.whmcs import FakeWhmcs
from tests.fakes.whmcs_process import FakeWhmcsProcess


@pytest.fixture
def post(fake: FakeWhmcs) -> Iterator[Any]:
    session = requests.Session()

    def send(action: str, **params: object) -> requests.Response:
        form = {
            "action": action,
            "identifier": fake.identifier,
            "secret": fake.secret,
            "responsetype": "json",
        }
        form.update({key: str(value) for key, value in params.items()})
        return session.post(fake.url + "/includes/api.php", data=form, timeout=5)

    yield send
    session.close()


def test_bad_credentials_get_403_with_a_json_body(fake: FakeWhmcs) -> None:
    response = requests.post(
        fake.url + "/includes/api.php",
        data={"action": "GetClients", "identifier": "x", "secret": "y"},
        timeout=5,
    )
    assert response.status_code == 403
    assert response.json() == {"result": "error", "message": "Authentication Failed"}


def test_ids_and_amounts_are_strings_as_in_the_documentation(post: Any) -> None:
    client = post("AddClient", firstname="A", lastname="B", email="a@example.com", skipvalidation=1).json()
    assert client == {"result": "success", "clientid": "1"}
    created = post("CreateInvoice", userid=1, itemdescription1="x", itemamount1="15.95").json()
    assert created == {"result": "success", "invoiceid": "1", "status": "Unpaid"}
    invoice = post("GetInvoice", invoiceid=1).json()
    assert (invoice["total"], invoice["datepaid"], invoice["transactions"]) == (
        "15.95",
        "0000-00-00 00:00:00",
        "",
    )
    assert invoice["items"]["item"][0]["amount"] == "15.95"


def test_get_invoices_pages_25_by_default(post: Any) -> None:
    post("AddClient", firstname="A", lastname="B", email="a@example.com", skipvalidation=1)
    for _ in range(27):
        post("CreateInvoice", userid=1, itemdescription1="x", itemamount1="1.00")
    first = post("GetInvoices", userid=1, orderby="id", order="asc").json()
    assert (first["totalresults"], first["startnumber"], first["numreturned"]) == ("27", "0", "25")
    assert [row["id"] for row in first["invoices"]["invoice"]][:2] == ["1", "2"]
    rest = post("GetInvoices", userid=1, orderby="id", order="asc", limitstart=25).json()
    assert [row["id"] for row in rest["invoices"]["invoice"]] == ["26", "27"]


def test_unknown_action_and_unknown_client(post: Any) -> None:
    assert post("NoSuchAction").json() == {"result": "error", "message": "Command Not Found"}
    assert post("GetClientsDetails", email="x@example.com").json() == {
        "result": "error",
        "message": "Client Not Found",
    }


def test_calls_are_counted_and_logged_without_credentials(post: Any, fake: FakeWhmcs) -> None:
    fake.fail("http_500", action="GetClients")
    assert post("GetClients").status_code == 500
    assert post("GetClients").status_code == 200
    assert fake.call_count("GetClients") == 2 and fake.call_count() == 2
    assert fake.secret not in repr(fake.requests) and fake.identifier not in repr(fake.requests)


def test_a_page_that_repeats_is_refused_rather_than_read_forever(
    client: WhmcsClient, fake: FakeWhmcs
) -> None:
    page = {"id": "1", "userid": "1", "total": "1.00", "status": "Unpaid"}
    body = {"result": "success", "totalresults": "10", "numreturned": "1", "invoices": {"invoice": [page]}}
    fake.fail("reply", action="GetInvoices", times=None, body=body)
    with pytest.raises(WhmcsResponseError, match="same invoices again"):
        client.get_invoices(1)
    assert fake.call_count("GetInvoices") == 2


def test_without_totalresults_paging_stops_on_a_short_page(client: WhmcsClient, fake: FakeWhmcs) -> None:
    rows = [{"id": str(n), "userid": "1", "total": "1.00"} for n in (1, 2)]
    fake.fail("reply", action="GetInvoices", body={"result": "success", "invoices": {"invoice": rows}})
    assert [invoice.total for invoice in client.get_invoices(1)] == [Decimal("1.00")] * 2
    assert fake.call_count("GetInvoices") == 1


def test_the_fake_in_its_own_process_answers_over_one_kept_connection_and_counts_what_it_got() -> None:
    with FakeWhmcsProcess() as fake, requests.Session() as session:
        fake.fail("error", action="GetClients")
        form = {"identifier": fake.identifier, "secret": fake.secret, "responsetype": "json"}
        answers = [
            session.post(fake.url + "/includes/api.php", data={**form, "action": action}, timeout=5)
            for action in ("GetClients", "GetClients")
        ]
        assert [answer.json()["result"] for answer in answers] == ["error", "success"]
        assert fake.connection_count() == 1, "both calls went over one kept connection"
        assert (fake.call_count("GetClients"), fake.call_count(), fake.invoice_count()) == (2, 2, 0)
        fake.reset_calls()
        assert fake.call_count() == 0
        assert fake.cpu_seconds() > 0
