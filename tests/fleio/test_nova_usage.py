"""NovaUsageCollector through the real openstacksdk against the fake Keystone + Nova over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import openstack.connection
import pytest
from tenacity import wait_none

from bridge.clock import FixedClock
from bridge.domain.usage import Window
from bridge.fleio.connection import connect
from bridge.fleio.nova_usage import NovaUsageCollector, nova_time
from bridge.fleio.settings import OpenStackSettings
from tests.fakes.nova import FakeOpenStack
from tests.fleio.helpers import WINDOW, at, changed, hours_by_id, nova_hours

# --- the request Nova gets ------------------------------------------------------------------------------


def test_sends_microversion_240_detailed_and_naive_utc_times(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    fake.create_server("p1", at=at(6))

    collector.collect(WINDOW)

    [request] = fake.usage_requests()
    assert request.header("OpenStack-API-Version") == "compute 2.40"
    assert request.query == {
        "start": ["2024-06-01T09:00:00.000000"],
        "end": ["2024-06-01T10:00:00.000000"],
        "detailed": ["1"],
    }


def test_a_tz_aware_window_is_sent_as_naive_utc(fake: FakeOpenStack, collector: NovaUsageCollector) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    server = fake.create_server("p1", at=at(6))
    window = Window(datetime(2024, 6, 1, 11, 0, tzinfo=berlin), datetime(2024, 6, 1, 12, 0, tzinfo=berlin))

    records = collector.collect(window)

    [request] = fake.usage_requests()
    assert request.query["start"] == ["2024-06-01T09:00:00.000000"]
    assert request.query["end"] == ["2024-06-01T10:00:00.000000"]
    assert hours_by_id(records) == {server: Decimal("1.0")}


def test_nova_time_never_carries_an_offset() -> None:
    instant = datetime(2024, 1, 31, 23, 30, 0, 123456, tzinfo=ZoneInfo("America/New_York"))
    assert nova_time(instant) == "2024-02-01T04:30:00.123456"
    with pytest.raises(ValueError, match="naive"):
        nova_time(datetime(2024, 1, 1))


def test_a_window_that_has_not_settled_is_refused_before_any_request(
    fake: FakeOpenStack, conn: openstack.connection.Connection
) -> None:
    clock = FixedClock(WINDOW.end + timedelta(minutes=14))
    collector = NovaUsageCollector(conn, clock=clock, settle_delay=timedelta(minutes=15))

    with pytest.raises(ValueError, match="has not settled"):
        collector.collect(WINDOW)
    assert fake.usage_requests() == []

    clock.advance(timedelta(minutes=1))  # exactly settled, as the usage sync counts it
    assert collector.collect(WINDOW) == []


def test_by_default_only_a_window_still_running_is_refused(conn: openstack.connection.Connection) -> None:
    collector = NovaUsageCollector(conn, clock=FixedClock(WINDOW.end - timedelta(seconds=1)))
    with pytest.raises(ValueError, match="has not settled"):
        collector.collect(WINDOW)


def test_from_settings_takes_the_settle_delay(
    conn: openstack.connection.Connection, settings: OpenStackSettings
) -> None:
    late = changed(settings, settle_delay_minutes=180)
    collector = NovaUsageCollector.from_settings(conn, late, clock=FixedClock(at(12)))
    with pytest.raises(ValueError, match="has not settled"):
        collector.collect(WINDOW)


# --- what comes back --------------------------------------------------------------------------------------


def test_a_record_carries_instance_project_flavor_and_exact_decimal_hours(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    server = fake.create_server("proj-a", at=at(9, 20), flavor="m1.large", name="web-1")

    [record] = collector.collect(WINDOW)

    assert record.source == "openstack"
    assert record.resource_id == server
    assert record.resource_name == "web-1"
    assert record.owner == "proj-a"
    assert record.plan == "m1.large"
    assert record.window == WINDOW
    assert isinstance(record.hours, Decimal)
    assert record.hours == Decimal("0.6666666666666666") == nova_hours(40 * 60)


def test_instances_outside_the_window_or_never_launched_are_absent(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    gone = fake.create_server("p1", at=at(6))
    fake.delete(gone, at(8))
    fake.create_server("p1", at=at(10, 30))
    fake.create_server("p1", at=at(6), launched=False)
    ended_at_start = fake.create_server("p1", at=at(6))
    fake.delete(ended_at_start, at(9))
    running = fake.create_server("p1", at=at(6))

    assert hours_by_id(collector.collect(WINDOW)) == {running: Decimal("1.0")}


def test_zero_hour_instances_are_left_out(fake: FakeOpenStack, collector: NovaUsageCollector) -> None:
    blip = fake.create_server("p1", at=at(9, 30))
    fake.delete(blip, at(9, 30))
    running = fake.create_server("p1", at=at(6))

    assert hours_by_id(collector.collect(WINDOW)) == {running: Decimal("1.0")}
    usage = collector.project_usages(WINDOW)
    assert {s.instance_id: s.hours for s in usage[0].servers} == {blip: Decimal(0), running: Decimal("1.0")}


# --- lifecycle: Nova's hours for the window ---------------------------------------------------------------


def test_created_mid_window(fake: FakeOpenStack, collector: NovaUsageCollector) -> None:
    server = fake.create_server("p1", at=at(9, 15))
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("0.75")}


def test_deleted_mid_window(fake: FakeOpenStack, collector: NovaUsageCollector) -> None:
    server = fake.create_server("p1", at=at(6))
    fake.delete(server, at(9, 45))
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("0.75")}


def test_created_and_deleted_inside_the_window(fake: FakeOpenStack, collector: NovaUsageCollector) -> None:
    server = fake.create_server("p1", at=at(9, 10))
    fake.delete(server, at(9, 25))
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("0.25")}


@pytest.mark.parametrize("event", ["stop", "suspend", "shelve"])
def test_stop_suspend_and_shelve_do_not_reduce_hours(
    fake: FakeOpenStack, collector: NovaUsageCollector, event: str
) -> None:
    server = fake.create_server("p1", at=at(6))
    getattr(fake, event)(server, at(9, 20))

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}


def test_resize_mid_window_loses_the_hours_before_it_and_bills_the_new_flavor(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    server = fake.create_server("p1", at=at(6), flavor="m1.small")
    fake.resize(server, "m1.large", at(9, 30))

    [record] = collector.collect(WINDOW)
    assert (record.resource_id, record.plan, record.hours) == (server, "m1.large", Decimal("0.5"))


def test_rebuild_mid_window_loses_the_hours_before_it(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    server = fake.create_server("p1", at=at(6))
    fake.rebuild(server, at(9, 45))
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("0.25")}


def test_unshelve_mid_window_restarts_the_hours(fake: FakeOpenStack, collector: NovaUsageCollector) -> None:
    server = fake.create_server("p1", at=at(6))
    fake.shelve(server, at(8))
    fake.unshelve(server, at(9, 30))
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("0.5")}


def test_an_earlier_window_queried_after_a_resize_loses_the_instance(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    """The research's trap: collect promptly, or a later resize erases earlier windows' hours."""
    server = fake.create_server("p1", at=at(6))
    earlier = Window(at(8), at(9))
    assert hours_by_id(collector.collect(earlier)) == {server: Decimal("1.0")}

    fake.resize(server, "m1.medium", at(9, 30))

    assert collector.collect(earlier) == []


# --- paging ---------------------------------------------------------------------------------------------


def test_a_project_spread_over_two_pages_is_merged(
    clock: FixedClock, conn: openstack.connection.Connection, fake: FakeOpenStack
) -> None:
    a = [
        fake.create_server("proj-a", at=at(6), server_id=f"a000000{i}-0000-4000-8000-000000000000")
        for i in (1, 2)
    ]
    b = [
        fake.create_server("proj-b", at=at(9, 30), server_id=f"b000000{i}-0000-4000-8000-000000000000")
        for i in (1, 2, 3)
    ]
    collector = NovaUsageCollector(conn, clock=clock, page_size=3, retry_wait=wait_none())

    projects = collector.project_usages(WINDOW)

    pages = fake.usage_requests()
    assert len(pages) == 2
    assert "marker" not in pages[0].query
    assert pages[1].query["marker"] == [b[0]]
    assert [(p.tenant_id, [s.instance_id for s in p.servers], p.total_hours) for p in projects] == [
        ("proj-a", a, Decimal("2.0")),
        ("proj-b", b, Decimal("1.5")),
    ]


def test_2500_servers_over_three_pages_are_all_collected_exactly_once(
    fake: FakeOpenStack, collector: NovaUsageCollector
) -> None:
    created = {fake.create_server(f"proj-{n % 7}", at=at(6)) for n in range(2500)}

    records = collector.collect(WINDOW)

    pages = fake.usage_requests()
    assert len(pages) == 3
    assert all("limit" not in page.query for page in pages)
    ids = [record.resource_id for record in records]
    assert len(ids) == len(set(ids)) == 2500
    assert set(ids) == created
    assert sum(record.hours for record in records) == Decimal(2500)


def test_a_short_last_page_ends_the_paging(
    clock: FixedClock, conn: openstack.connection.Connection, fake: FakeOpenStack
) -> None:
    created = {fake.create_server("p1", at=at(6)) for _ in range(5)}
    collector = NovaUsageCollector(conn, clock=clock, page_size=2, retry_wait=wait_none())

    records = collector.collect(WINDOW)

    assert [page.query["limit"] for page in fake.usage_requests()] == [["2"]] * 3
    assert {record.resource_id for record in records} == created


def test_a_full_last_page_is_followed_by_an_empty_one(
    clock: FixedClock, conn: openstack.connection.Connection, fake: FakeOpenStack
) -> None:
    created = {fake.create_server("p1", at=at(6)) for _ in range(4)}
    collector = NovaUsageCollector(conn, clock=clock, page_size=2, retry_wait=wait_none())

    records = collector.collect(WINDOW)

    assert len(fake.usage_requests()) == 3
    assert {record.resource_id for record in records} == created


def test_next_links_to_an_internal_host_are_not_followed_only_their_marker(clock: FixedClock) -> None:
    with FakeOpenStack(clock, max_limit=2, link_base="http://nova-internal.invalid:8774/v2.1") as fake:
        created = {fake.create_server("p1", at=at(6)) for _ in range(3)}
        settings = OpenStackSettings(**fake.section())
        collector = NovaUsageCollector(connect(settings), clock=clock, retry_wait=wait_none())
        records = collector.collect(WINDOW)

    assert {record.resource_id for record in records} == created
    assert len(fake.usage_requests()) == 2


def test_an_unversioned_compute_endpoint_in_the_catalog_is_discovered(clock: FixedClock) -> None:
    with FakeOpenStack(clock, unversioned_catalog=True) as fake:
        server = fake.create_server("p1", at=at(6))
        settings = OpenStackSettings(**fake.section())
        collector = NovaUsageCollector(connect(settings), clock=clock, retry_wait=wait_none())
        records = collector.collect(WINDOW)

    assert hours_by_id(records) == {server: Decimal("1.0")}
    [request] = fake.usage_requests()
    assert request.header("OpenStack-API-Version") == "compute 2.40"
