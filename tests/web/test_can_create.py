"""``GET /clients/<id>/can-create`` on the operator endpoint (issue 15 point 9): what a panel asks before it
creates a resource for a client, answered by the same service as ``billing-bridge client can-create``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from bridge.bootstrap import App
from bridge.daemon import Daemon
from bridge.domain.clients import LinkKind
from tests.support.operator import HEALTH, get, running


@pytest.fixture
def daemon(make_app: Callable[..., App]) -> Iterator[Daemon]:
    app = make_app(health=HEALTH, configurations={"default": {"required_credit_for_new_services": "10"}})
    app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link("1", LinkKind.WHMCS_CLIENT, "77")
    with running(app) as started:
        yield started


def test_without_the_admin_token_nothing_is_told(daemon: Daemon) -> None:
    for token in (None, "wrong"):
        answer = get(daemon, "/clients/1/can-create", token=token)
        assert answer.status_code == 401
        assert answer.json() == {"error": "Bearer admin token required"}


def test_not_enough_credit_says_no_and_how_much_to_add(daemon: Daemon) -> None:
    answer = get(daemon, "/clients/1/can-create")
    assert answer.status_code == 200
    assert answer.json() == {
        "client": 1,
        "allowed": False,
        "reason": "up-to-date credit 0.00 is under the required credit for new services of 10.00; add 10.00 "
        "to create or upgrade resources",
        "required_credit": "10",
        "up_to_date_credit": "0.00",
        "currency": "USD",
        "suspended": False,
    }


def test_enough_credit_says_yes_also_when_asked_by_the_whmcs_client_id(daemon: Daemon) -> None:
    daemon.app.credit.add_credit("1", Decimal(25), "bank-1")
    for path in (
        "/clients/1/can-create",
        "/clients/ops@acme.com/can-create",
        "/clients/77/can-create?by=whmcs",
    ):
        answer = get(daemon, path)
        assert answer.status_code == 200, path
        assert answer.json()["allowed"] is True
        assert answer.json()["reason"] == (
            "up-to-date credit 25.00 is at least the required credit for new services of 10.00"
        )


def test_a_suspended_client_may_create_nothing_whatever_its_credit(daemon: Daemon) -> None:
    daemon.app.credit.add_credit("1", Decimal(25), "bank-1")
    daemon.app.credit.suspend("1", reason="abuse report")
    answer = get(daemon, "/clients/1/can-create").json()
    assert answer["allowed"] is False and answer["suspended"] is True
    assert answer["reason"].startswith("the client is suspended since ")


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/clients/2/can-create", 404, "no client '2'"),
        ("/clients/5/can-create?by=whmcs", 404, "no client is linked to WHMCS client 5"),
        ("/clients/abc/can-create?by=whmcs", 400, "WHMCS client id"),
    ],
)
def test_an_unknown_or_malformed_client_is_named(daemon: Daemon, path: str, status: int, error: str) -> None:
    answer = get(daemon, path)
    assert answer.status_code == status
    assert answer.json()["error"].startswith(error), answer.json()
