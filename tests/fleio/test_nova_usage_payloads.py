"""Payload edge cases Nova should never send but a proxy or an upgrade might, fed through a stub proxy;
and a property: whatever the paging, every instance is collected exactly once."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tenacity import wait_none

from bridge.clock import FixedClock
from bridge.errors import VendorError
from bridge.fleio.connection import connect
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.fleio.settings import OpenStackSettings
from tests.fakes.nova import FakeOpenStack
from tests.fleio.helpers import NOW, WINDOW, at


def _response(raw: bytes, status: int = 200) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = raw
    response.headers["Content-Type"] = "application/json"
    return response


@dataclass
class _StubCompute:
    pages: list[bytes]
    calls: list[dict[str, Any]] = field(default_factory=list)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        self.calls.append(kwargs["params"])
        return _response(self.pages[len(self.calls) - 1])


@dataclass
class _StubConnection:
    compute: _StubCompute


def _collector(*pages: dict[str, Any] | bytes) -> tuple[NovaUsageCollector, _StubCompute]:
    compute = _StubCompute([p if isinstance(p, bytes) else json.dumps(p).encode() for p in pages])
    conn = cast(Any, _StubConnection(compute))
    return NovaUsageCollector(
        conn, clock=FixedClock(NOW), retry_wait=wait_none(), sleep=lambda _: None
    ), compute


def _server(instance_id: str, hours: Any = 1.0, **overrides: Any) -> dict[str, Any]:
    """A server usage as Nova sends it for WINDOW (09:00-10:00), launched at 06:00 and still running."""
    return {
        "instance_id": instance_id,
        "name": f"vm-{instance_id}",
        "tenant_id": "p1",
        "flavor": "m1.small",
        "hours": hours,
        "started_at": "2024-06-01T06:00:00.000000",
        "ended_at": None,
        "state": "active",
        **overrides,
    }


def _page(*servers: dict[str, Any], next_marker: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"tenant_usages": [{"tenant_id": "p1", "server_usages": list(servers)}]}
    if next_marker:
        href = f"http://nova.internal/v2.1/os-simple-tenant-usage?detailed=1&marker={next_marker}"
        body["tenant_usages_links"] = [{"rel": "next", "href": href}]
    return body


def _error(*pages: dict[str, Any] | bytes) -> VendorError:
    collector, _ = _collector(*pages)
    with pytest.raises(VendorError) as raised:
        collector.collect(WINDOW)
    return raised.value


def test_the_same_instance_on_two_pages_with_the_same_figures_is_kept_once() -> None:
    collector, compute = _collector(
        _page(_server("a"), _server("b"), next_marker="b"), _page(_server("b", name="renamed"), _server("c"))
    )
    records = collector.collect(WINDOW)

    assert [(r.resource_id, r.hours) for r in records] == [
        ("a", Decimal("1.0")),
        ("b", Decimal("1.0")),
        ("c", Decimal("1.0")),
    ]
    assert compute.calls[1]["marker"] == "b"


def test_the_same_instance_listed_twice_with_different_hours_is_refused() -> None:
    error = _error(_page(_server("a"), _server("b"), next_marker="b"), _page(_server("b", 0.5)))
    assert error.field == "server_usages[].instance_id"
    assert "instance b is listed twice with different figures" in error.problem


def test_a_next_link_that_repeats_a_marker_stops_the_paging() -> None:
    error = _error(_page(_server("a"), next_marker="a"), _page(_server("b"), next_marker="a"))
    assert "paging did not advance" in error.problem
    assert error.field == "tenant_usages_links"


def test_a_next_link_back_to_a_page_already_read_stops_the_paging() -> None:
    collector, compute = _collector(
        _page(_server("a"), _server("b"), next_marker="b"),
        _page(_server("c"), _server("d"), next_marker="a"),
        _page(_server("b"), _server("c"), next_marker="c"),
    )
    with pytest.raises(VendorError) as raised:
        collector.collect(WINDOW)
    assert "points back at a page already read" in raised.value.problem
    assert len(compute.calls) == 2


def test_an_empty_page_with_a_next_link_is_refused_after_one_request() -> None:
    empty: dict[str, Any] = {
        "tenant_usages": [],
        "tenant_usages_links": [
            {"rel": "next", "href": "http://nova/v2.1/os-simple-tenant-usage?detailed=1&marker=zzz"}
        ],
    }
    collector, compute = _collector(empty, empty)
    with pytest.raises(VendorError) as raised:
        collector.collect(WINDOW)
    assert raised.value.problem == "an empty page has a next link"
    assert len(compute.calls) == 1


def test_a_next_link_without_a_marker_is_an_error() -> None:
    body = _page(_server("a"))
    body["tenant_usages_links"] = [{"rel": "next", "href": "http://nova/v2.1/os-simple-tenant-usage?limit=1"}]
    assert _error(body).field == "tenant_usages_links"


def test_hours_keep_every_digit_nova_printed() -> None:
    raw = json.dumps(_page(_server("a", hours="HOURS"))).replace('"HOURS"', "0.33333333333333331483")
    collector, _ = _collector(raw.encode())
    [record] = collector.collect(WINDOW)
    assert record.hours == Decimal("0.33333333333333331483")


def test_an_integer_zero_is_zero_hours_and_skipped() -> None:
    collector, _ = _collector(_page(_server("a", hours=0), _server("b", hours=1)))
    assert [(r.resource_id, r.hours) for r in collector.collect(WINDOW)] == [("b", Decimal(1))]


@pytest.mark.parametrize(
    ("hours", "problem"),
    [(-0.5, "expected a non-negative number"), ("1.0", "is not a number"), (True, "is not a number")],
)
def test_bad_hours_are_named(hours: Any, problem: str) -> None:
    error = _error(_page(_server("a", hours=hours)))
    assert error.field == "tenant_usages[0].server_usages[0].hours"
    assert problem in error.problem and "instance a" in error.problem


# --- implausible figures: refused, naming the field -------------------------------------------------------

IMPLAUSIBLE = {
    "25 hours in a 1 hour window": (
        _server("a", hours=25.0),
        "tenant_usages[0].server_usages[0].hours",
        "is 25.0 for instance a, more than the window's 1 hours",
    ),
    "more hours than since started_at": (
        _server("a", hours=1.0, started_at="2024-06-01T09:30:00"),
        "tenant_usages[0].server_usages[0].hours",
        "more than the 0.5 hours its started_at and ended_at leave in the window",
    ),
    "more hours than until ended_at": (
        _server("a", hours=0.75, ended_at="2024-06-01T09:30:00.000000", state="terminated"),
        "tenant_usages[0].server_usages[0].hours",
        "more than the 0.5 hours",
    ),
    "started after the window": (
        _server("a", hours=0.0, started_at="2024-06-01T10:00:00.000000"),
        "tenant_usages[0].server_usages[0].started_at",
        "not before the window's end",
    ),
    "ended before the window": (
        _server("a", hours=0.0, ended_at="2024-06-01T08:00:00.000000"),
        "tenant_usages[0].server_usages[0].ended_at",
        "before the window or before its started_at",
    ),
    "ended before it started": (
        _server("a", hours=0.0, started_at="2024-06-01T09:40:00", ended_at="2024-06-01T09:20:00"),
        "tenant_usages[0].server_usages[0].ended_at",
        "before the window or before its started_at",
    ),
    "a server of another project": (
        _server("a", tenant_id="p2"),
        "tenant_usages[0].server_usages[0].tenant_id",
        "is p2 for instance a, listed under project p1",
    ),
    "no started_at": (
        {key: value for key, value in _server("a").items() if key != "started_at"},
        "tenant_usages[0].server_usages[0].started_at",
        "missing for instance a",
    ),
    "a started_at that is not a time": (
        _server("a", started_at="yesterday"),
        "tenant_usages[0].server_usages[0].started_at",
        "'yesterday' is not a timestamp for instance a",
    ),
}


@pytest.mark.parametrize("case", IMPLAUSIBLE)
def test_implausible_figures_are_refused_naming_the_field(case: str) -> None:
    server, field_name, problem = IMPLAUSIBLE[case]
    error = _error(_page(server))
    assert error.field == field_name
    assert problem in error.problem


def test_a_whole_window_of_float_hours_is_believed() -> None:
    collector, _ = _collector(_page(_server("a", hours=1.0000000000000002)))
    assert [r.resource_id for r in collector.collect(WINDOW)] == ["a"]


def test_a_project_period_that_stops_before_the_window_end_is_refused() -> None:
    """Nova clamps the end to its own now: a stop before ours means its clock lags and hours still move."""
    body = _page(_server("a", hours=0.5))
    body["tenant_usages"][0].update(start="2024-06-01T09:00:00.000000", stop="2024-06-01T09:30:00.000000")
    error = _error(body)
    assert error.field == "tenant_usages[0].stop"
    assert "Nova's clock is behind ours" in error.problem


def test_a_project_period_of_the_window_asked_for_is_believed() -> None:
    body = _page(_server("a"))
    body["tenant_usages"][0].update(start="2024-06-01T09:00:00", stop="2024-06-01T10:00:00.000000")
    collector, _ = _collector(body)
    assert len(collector.collect(WINDOW)) == 1


def test_nan_hours_are_not_json_we_accept() -> None:
    error = _error(b'{"tenant_usages": [{"tenant_id": "p1", "server_usages": [{"hours": NaN}]}]}')
    assert "not JSON" in error.problem


def test_a_null_name_is_an_empty_name() -> None:
    collector, _ = _collector(_page(_server("a", name=None)))
    assert collector.collect(WINDOW)[0].resource_name == ""


def test_a_body_that_is_not_an_object() -> None:
    assert "not an object" in _error(b"[]").problem


def test_a_server_usage_of_the_wrong_type() -> None:
    assert _error(_page(_server("a", flavor=7))).field == "tenant_usages[0].server_usages[0].flavor"


# --- property: paging never loses or repeats an instance ------------------------------------------------


@settings(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    projects=st.lists(st.integers(min_value=0, max_value=6), min_size=0, max_size=40),
    page_size=st.one_of(st.none(), st.integers(min_value=1, max_value=9)),
    max_limit=st.integers(min_value=1, max_value=12),
)
def test_every_instance_is_collected_exactly_once_whatever_the_paging(
    projects: list[int], page_size: int | None, max_limit: int
) -> None:
    clock = FixedClock(NOW)
    with FakeOpenStack(clock, max_limit=max_limit) as fake:
        created = {fake.create_server(f"p{n}", at=at(6)) for n in projects}
        settings_ = OpenStackSettings(**fake.section())
        conn = connect(settings_)
        collector = NovaUsageCollector(conn, clock=clock, page_size=page_size, retry_wait=wait_none())
        records = collector.collect(WINDOW)
        conn.close()

    ids = [r.resource_id for r in records]
    assert len(ids) == len(set(ids))
    assert set(ids) == created
