"""The fake Nova keeps Nova's contract (research notes sections 2-5), checked with plain HTTP calls."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.fakes.nova import FakeOpenStack
from tests.fleio.helpers import at


def _token(fake: FakeOpenStack) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": fake.username, "domain": {"name": "Default"}, "password": fake.password}
                },
            },
            "scope": {"project": {"name": fake.project_name, "domain": {"name": "Default"}}},
        }
    }
    response = requests.post(f"{fake.auth_url}/auth/tokens", json=body, timeout=5)
    assert response.status_code == 201
    assert {s["type"] for s in response.json()["token"]["catalog"]} == {"compute", "identity"}
    return response.headers["X-Subject-Token"]


@pytest.fixture
def token(fake: FakeOpenStack) -> str:
    return _token(fake)


def _usage(
    fake: FakeOpenStack, token: str, version: str | None = "2.40", path: str = "", **params: str
) -> requests.Response:
    headers = {"X-Auth-Token": token}
    if version:
        headers["OpenStack-API-Version"] = f"compute {version}"
    url = f"{fake.compute_url}/os-simple-tenant-usage{path}"
    return requests.get(url, params=params, headers=headers, timeout=5)


WINDOW_PARAMS = {"start": "2024-06-01T09:00:00", "end": "2024-06-01T10:00:00", "detailed": "1"}


@pytest.mark.parametrize(
    "start",
    [
        "2024-06-01T09:00:00Z",
        "2024-06-01T09:00:00+00:00",
        "2024-06-01T09:00:00.000000+00:00",
        "2024-06-01",
        "2024-06-01 09:00:00",
    ],
)
def test_times_outside_novas_three_formats_are_400(fake: FakeOpenStack, token: str, start: str) -> None:
    response = _usage(fake, token, start=start, end="2024-06-01T10:00:00")
    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": "Datetime is in invalid format"}}


@pytest.mark.parametrize(
    "start", ["2024-06-01T09:00:00", "2024-06-01T09:00:00.000000", "2024-06-01 09:00:00.000000"]
)
def test_novas_three_formats_are_accepted(fake: FakeOpenStack, token: str, start: str) -> None:
    assert _usage(fake, token, start=start, end="2024-06-01T10:00:00").status_code == 200


def test_start_must_be_before_end(fake: FakeOpenStack, token: str) -> None:
    response = _usage(fake, token, start="2024-06-01T10:00:00", end="2024-06-01T10:00:00")
    assert response.status_code == 400
    assert "cannot occur after the end time" in response.json()["badRequest"]["message"]


def test_a_future_end_is_clamped_to_now(fake: FakeOpenStack, token: str) -> None:
    fake.create_server("p1", at=at(11))
    response = _usage(fake, token, start="2024-06-01T11:00:00", end="2024-06-02T00:00:00", detailed="1")
    [usage] = response.json()["tenant_usages"]
    assert usage["stop"] == "2024-06-01T12:00:00.000000"
    assert usage["server_usages"][0]["hours"] == 1.0


def test_the_payload_has_novas_fields_and_page_totals(fake: FakeOpenStack, token: str) -> None:
    server = fake.create_server("p1", at=at(9, 30), flavor="m1.medium", name="vm")
    fake.create_server("p1", at=at(6), flavor="m1.tiny")

    body = _usage(fake, token, **WINDOW_PARAMS).json()

    [usage] = body["tenant_usages"]
    assert "tenant_usages_links" not in body
    assert set(usage) == {
        "tenant_id",
        "start",
        "stop",
        "total_hours",
        "total_vcpus_usage",
        "total_memory_mb_usage",
        "total_local_gb_usage",
        "server_usages",
    }
    entry = next(e for e in usage["server_usages"] if e["instance_id"] == server)
    assert entry == {
        "instance_id": server,
        "name": "vm",
        "tenant_id": "p1",
        "flavor": "m1.medium",
        "vcpus": 2,
        "memory_mb": 4096,
        "local_gb": 40,
        "hours": 0.5,
        "started_at": "2024-06-01T09:30:00.000000",
        "ended_at": None,
        "state": "active",
        "uptime": 2 * 3600 + 30 * 60,
    }
    assert usage["total_hours"] == 1.5
    assert usage["total_vcpus_usage"] == 2 * 0.5 + 1 * 1.0
    assert usage["total_memory_mb_usage"] == 4096 * 0.5 + 512 * 1.0
    assert usage["start"] == "2024-06-01T09:00:00.000000"


def test_a_deleted_server_is_terminated_with_ended_at(fake: FakeOpenStack, token: str) -> None:
    server = fake.create_server("p1", at=at(8))
    fake.delete(server, at(9, 15))
    [entry] = _usage(fake, token, **WINDOW_PARAMS).json()["tenant_usages"][0]["server_usages"]
    assert (entry["state"], entry["ended_at"], entry["uptime"]) == (
        "terminated",
        "2024-06-01T09:15:00.000000",
        4500,
    )


@pytest.mark.parametrize("detailed", [None, "0", "true", "True"])
def test_only_detailed_1_lists_server_usages(fake: FakeOpenStack, token: str, detailed: str | None) -> None:
    fake.create_server("p1", at=at(6))
    params: dict[str, Any] = {**WINDOW_PARAMS, "detailed": detailed}
    [usage] = _usage(fake, token, **{k: v for k, v in params.items() if v is not None}).json()[
        "tenant_usages"
    ]
    assert "server_usages" not in usage


def test_paging_orders_by_project_then_uuid_and_links_only_full_pages(
    fake: FakeOpenStack, token: str
) -> None:
    ids = {
        fake.create_server(project, at=at(6), server_id=server_id): (project, server_id)
        for project, server_id in [("pb", "1" * 8), ("pa", "3" * 8), ("pa", "2" * 8)]
    }
    first = _usage(fake, token, limit="2", **WINDOW_PARAMS).json()
    [link] = first["tenant_usages_links"]
    query = parse_qs(urlsplit(link["href"]).query)
    assert link["rel"] == "next"
    assert query["marker"] == ["3" * 8]
    assert query["limit"] == ["2"] and query["detailed"] == ["1"]
    assert [e["instance_id"] for e in first["tenant_usages"][0]["server_usages"]] == ["2" * 8, "3" * 8]

    second = _usage(fake, token, limit="2", marker="3" * 8, **WINDOW_PARAMS).json()
    assert "tenant_usages_links" not in second
    assert [u["tenant_id"] for u in second["tenant_usages"]] == ["pb"]
    assert len(ids) == 3


def test_an_unknown_marker_is_400(fake: FakeOpenStack, token: str) -> None:
    response = _usage(fake, token, marker="no-such-uuid", **WINDOW_PARAMS)
    assert response.status_code == 400
    assert response.json()["badRequest"]["message"] == "marker [no-such-uuid] not found"


def test_below_240_no_links_and_a_silent_cap_at_max_limit(clock: Any) -> None:
    with FakeOpenStack(clock, max_limit=2) as fake:
        for _ in range(3):
            fake.create_server("p1", at=at(6))
        token = _token(fake)
        old = _usage(fake, token, version=None, limit="1", **WINDOW_PARAMS)
        new = _usage(fake, token, version="2.40", limit="5", **WINDOW_PARAMS)

    assert old.headers["OpenStack-API-Version"] == "compute 2.1"
    assert len(old.json()["tenant_usages"][0]["server_usages"]) == 2
    assert "tenant_usages_links" not in old.json()
    assert len(new.json()["tenant_usages"][0]["server_usages"]) == 2
    assert "tenant_usages_links" in new.json()


def test_from_275_unknown_query_parameters_are_rejected(fake: FakeOpenStack, token: str) -> None:
    assert _usage(fake, token, version="2.74", bogus="1", **WINDOW_PARAMS).status_code == 200
    assert _usage(fake, token, version="2.75", bogus="1", **WINDOW_PARAMS).status_code == 400


def test_an_unsupported_microversion_is_406(fake: FakeOpenStack, token: str) -> None:
    assert _usage(fake, token, version="2.96", **WINDOW_PARAMS).status_code == 406


def test_show_for_one_project(fake: FakeOpenStack, token: str) -> None:
    fake.create_server("p1", at=at(6))
    shown = _usage(fake, token, path="/p1", start="2024-06-01T09:00:00", end="2024-06-01T10:00:00").json()
    assert shown["tenant_usage"]["server_usages"][0]["hours"] == 1.0
    assert _usage(fake, token, path="/nobody", **WINDOW_PARAMS).json() == {"tenant_usage": {}}


def test_no_token_or_a_wrong_one_is_401(fake: FakeOpenStack) -> None:
    assert _usage(fake, "not-a-token", **WINDOW_PARAMS).status_code == 401


def test_wrong_credentials_are_401(fake: FakeOpenStack) -> None:
    body = {
        "auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "x", "password": "y"}}}}
    }
    assert requests.post(f"{fake.auth_url}/auth/tokens", json=body, timeout=5).status_code == 401


def test_compute_discovery_advertises_microversions_with_a_self_link(fake: FakeOpenStack) -> None:
    version = requests.get(fake.compute_url, timeout=5).json()["version"]
    assert (version["version"], version["min_version"]) == ("2.95", "2.1")
    assert version["links"][0] == {"rel": "self", "href": f"{fake.compute_url}/"}
