"""How NovaUsageCollector fails and retries: clear one-line VendorErrors, no secrets, no sleeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal

import openstack.connection
import pytest
from keystoneauth1 import exceptions as ks_exceptions
from structlog.testing import capture_logs
from tenacity import wait_fixed, wait_none

from bridge.clock import FixedClock
from bridge.errors import VendorError
from bridge.fleio.connection import connect
from bridge.fleio.nova_usage import NovaUsageCollector, _is_transient
from bridge.fleio.settings import OpenStackSettings
from tests.fakes.nova import FakeOpenStack, Fault
from tests.fleio.helpers import WINDOW, at, changed, hours_by_id


@pytest.fixture
def server(fake: FakeOpenStack) -> str:
    return fake.create_server("p1", at=at(6))


def _collect_error(collector: NovaUsageCollector) -> VendorError:
    with pytest.raises(VendorError) as raised:
        collector.collect(WINDOW)
    error = raised.value
    assert (error.source, error.path) == ("openstack", "/os-simple-tenant-usage")
    assert "127.0.0.1" not in str(error)
    assert "\n" not in str(error)
    return error


# --- authentication and authorisation -----------------------------------------------------------------------


def test_a_persistent_401_is_a_vendor_error_after_one_reauthentication(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.unauthorized(), times=2)

    error = _collect_error(collector)

    assert "HTTP 401" in error.problem and "credentials" in error.problem
    assert sleeps == []  # not retried by us
    token_requests = [r for r in fake.requests if r.path.endswith("/auth/tokens")]
    assert len(token_requests) == 2  # keystoneauth re-authenticated once


def test_a_single_401_is_absorbed_by_keystoneauth_reauthentication(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str
) -> None:
    fake.fail_next(Fault.unauthorized())
    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}


def test_wrong_password_is_a_vendor_error_naming_the_credentials(
    fake: FakeOpenStack, settings: OpenStackSettings, clock: FixedClock
) -> None:
    wrong = changed(settings, password="not-the-password")
    collector = NovaUsageCollector(connect(wrong), clock=clock, retry_wait=wait_none(), sleep=lambda _: None)

    error = _collect_error(collector)

    assert "Keystone refused the credentials" in error.problem
    assert "not-the-password" not in str(error)


def test_403_asks_for_the_admin_role(fake: FakeOpenStack, collector: NovaUsageCollector, server: str) -> None:
    fake.fail_next(Fault.forbidden())
    assert "admin role" in _collect_error(collector).problem


def test_other_4xx_are_not_retried(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.http(404))

    error = _collect_error(collector)

    assert "HTTP 404" in error.problem
    assert len(fake.usage_requests()) == 1
    assert sleeps == []


# --- transient failures ---------------------------------------------------------------------------------


def test_a_500_then_success_is_retried(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.server_error())

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert len(fake.usage_requests()) == 2
    assert sleeps == [0]


def test_500_every_time_gives_up_after_max_attempts(
    fake: FakeOpenStack, conn: openstack.connection.Connection, clock: FixedClock, server: str
) -> None:
    fake.fail_next(Fault.server_error(), times=10)
    collector = NovaUsageCollector(
        conn, clock=clock, max_attempts=3, retry_wait=wait_none(), sleep=lambda _: None
    )

    error = _collect_error(collector)

    assert error.problem == "Nova answered HTTP 500 3 times; giving up"
    assert len(fake.usage_requests()) == 3


def test_429_waits_at_least_retry_after(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.rate_limited(retry_after="30"))

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert sleeps == [30.0]


def test_retry_after_is_capped_and_backoff_wins_when_longer(
    fake: FakeOpenStack, conn: openstack.connection.Connection, clock: FixedClock, server: str
) -> None:
    sleeps: list[float] = []
    collector = NovaUsageCollector(
        conn,
        clock=clock,
        retry_wait=wait_fixed(2),
        sleep=sleeps.append,
        max_retry_after=timedelta(seconds=120),
    )
    fake.fail_next(Fault.rate_limited(retry_after="86400"))
    fake.fail_next(Fault.rate_limited(retry_after="1"))
    fake.fail_next(Fault.rate_limited(retry_after="Sat, 01 Jun 2024 12:00:45 GMT"))

    collector.collect(WINDOW)

    assert sleeps == [120.0, 2, 45.0]


def test_a_dropped_connection_is_retried(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.disconnect())

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert sleeps == [0]


def test_an_unreachable_nova_is_a_clear_error(
    fake: FakeOpenStack, conn: openstack.connection.Connection, clock: FixedClock, server: str
) -> None:
    fake.fail_next(Fault.disconnect(), times=10)
    collector = NovaUsageCollector(
        conn, clock=clock, max_attempts=2, retry_wait=wait_none(), sleep=lambda _: None
    )

    error = _collect_error(collector)

    assert "could not reach OpenStack" in error.problem
    assert len(fake.usage_requests()) == 2


def test_timeouts_and_5xx_from_keystone_count_as_transient() -> None:
    assert _is_transient(ks_exceptions.ConnectTimeout("timed out"))
    assert _is_transient(ks_exceptions.ConnectFailure("refused"))
    assert _is_transient(ks_exceptions.ServiceUnavailable())
    assert not _is_transient(ks_exceptions.Unauthorized())
    assert not _is_transient(ks_exceptions.SSLError("bad cert"))


def test_an_html_error_page_that_persists_is_reported_by_status(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str
) -> None:
    fake.fail_next(Fault.html(status=502), times=5)
    assert _collect_error(collector).problem == "Nova answered HTTP 502 5 times; giving up"


def test_the_back_off_between_tries_is_capped_by_the_setting(
    fake: FakeOpenStack, conn: openstack.connection.Connection, clock: FixedClock, server: str
) -> None:
    sleeps: list[float] = []
    settings = OpenStackSettings(**fake.section(retry_wait_max_seconds=0.5))
    collector = NovaUsageCollector.from_settings(conn, settings, clock=clock, sleep=sleeps.append)
    fake.fail_next(Fault.http(503), times=4)

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert len(sleeps) == 4 and max(sleeps) == 0.5


def test_a_page_cut_off_mid_body_is_retried(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_next(Fault.cut_off())

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert len(fake.usage_requests()) == 2


def test_a_token_that_expires_mid_run_is_renewed_and_the_run_goes_on(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    collector.collect(WINDOW)
    fake.fail_next(Fault.token_expired())

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert len(fake.token_requests()) == 2
    assert sleeps == []


def test_a_keystone_that_fails_once_is_retried(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, sleeps: list[float]
) -> None:
    fake.fail_token_requests(503)

    assert hours_by_id(collector.collect(WINDOW)) == {server: Decimal("1.0")}
    assert len(fake.token_requests()) == 2
    assert sleeps == [0]


# --- implausible answers: refused, never billed ---------------------------------------------------------


def test_25_hours_in_a_one_hour_window_are_refused_naming_the_field(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str
) -> None:
    fake.fail_next(Fault.server_field("hours", 25.0))

    error = _collect_error(collector)

    assert error.field == "tenant_usages[0].server_usages[0].hours"
    assert error.problem == f"is 25.0 for instance {server}, more than the window's 1 hours"


def test_an_empty_page_with_a_next_link_is_refused_after_one_request(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str
) -> None:
    fake.fail_next(Fault.empty_with_next(), times=3)

    assert _collect_error(collector).problem == "an empty page has a next link"
    assert len(fake.usage_requests()) == 1


# --- bodies we cannot use ---------------------------------------------------------------------------------


def test_an_html_page_with_200_is_a_clear_error(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str
) -> None:
    fake.fail_next(Fault.html())

    error = _collect_error(collector)

    assert error.problem.startswith("answered an HTML page (text/html) instead of JSON")
    assert "proxy" in error.problem


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("hours", "tenant_usages[0].server_usages[0].hours"),
        ("flavor", "tenant_usages[0].server_usages[0].flavor"),
        ("tenant_id", "tenant_usages[0].tenant_id"),
        ("server_usages", "tenant_usages[0].server_usages"),
        ("tenant_usages", "tenant_usages"),
        ("name", "tenant_usages[0].server_usages[0].name"),
    ],
)
def test_a_missing_field_is_named(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str, missing: str, field: str
) -> None:
    fake.fail_next(Fault.missing_field(missing))

    error = _collect_error(collector)

    assert error.field == field
    assert f"field {field!r}" in str(error)
    assert error.problem.startswith("missing")


def test_the_instance_is_named_when_its_hours_are_missing(
    fake: FakeOpenStack, collector: NovaUsageCollector, server: str
) -> None:
    fake.fail_next(Fault.missing_field("hours"))
    assert server in _collect_error(collector).problem


# --- no secret anywhere ---------------------------------------------------------------------------------


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], list[str]]]:
    """Every structlog event and every stdlib log line (keystoneauth, openstacksdk) at DEBUG, as text."""
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        yield lambda: [
            *(repr(event) for event in events),
            *(record.getMessage() for record in caplog.records),
        ]


def test_no_secret_or_token_in_any_error_or_log_line(
    fake: FakeOpenStack,
    settings: OpenStackSettings,
    clock: FixedClock,
    server: str,
    all_logs: Callable[[], list[str]],
) -> None:
    errors: list[str] = []
    collector = NovaUsageCollector(
        connect(settings), clock=clock, retry_wait=wait_none(), sleep=lambda _: None
    )
    fake.fail_next(Fault.server_error())
    fake.fail_next(Fault.rate_limited())
    collector.collect(WINDOW)
    for fault in (Fault.unauthorized(), Fault.html(), Fault.missing_field("hours"), Fault.forbidden()):
        fake.fail_next(fault, times=2)
        with pytest.raises(VendorError) as raised:
            collector.collect(WINDOW)
        errors.append(str(raised.value))
    wrong = changed(settings, password="wr0ng-Secret-value")
    with pytest.raises(VendorError) as raised:
        NovaUsageCollector(connect(wrong), clock=clock, sleep=lambda _: None).collect(WINDOW)
    errors.append(str(raised.value))

    lines = all_logs()
    assert any("openstack.usage.retry" in line for line in lines)  # the capture works
    assert any("REQ: curl" in line for line in lines)  # keystoneauth's debug lines are in
    assert len(errors) == 5
    secrets = [fake.password, "wr0ng-Secret-value", *fake._tokens]
    assert len(secrets) >= 4
    for line in [*errors, *lines]:
        for secret in secrets:
            assert secret not in line
    assert not [e for e in errors if "127.0.0.1" in e]
