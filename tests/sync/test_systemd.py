"""sd_notify datagrams reach the socket systemd names, and the unit files say what the daemon needs: every
service is hardened like the daemon, and the monthly timer invoices the month that just ended (not one
fixed date again and again)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest

from bridge.sync.systemd import SystemdNotifier
from tests.support.databases import services_required
from tests.support.systemd import UNITS, parse_unit


def test_ready_and_watchdog_reach_a_path_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "n.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
        notifier.ready()
        notifier.watchdog()
        assert server.recv(100).startswith(b"READY=1")
        assert server.recv(100) == b"WATCHDOG=1"
        assert notifier.watchdog_interval() == 15.0


def test_abstract_socket_names_are_understood() -> None:
    name = f"@billing-bridge-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name[1:])
        server.settimeout(5)
        SystemdNotifier({"NOTIFY_SOCKET": name}).ready()
        assert server.recv(100).startswith(b"READY=1")


def test_without_notify_socket_nothing_is_sent_and_no_watchdog() -> None:
    notifier = SystemdNotifier({})
    notifier.ready()
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None


def test_a_watchdog_meant_for_another_pid_is_ignored() -> None:
    assert SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None


@pytest.mark.parametrize("name", sorted(path.name for path in UNITS.glob("*.service")))
def test_service_units_parse_and_run_the_console_script(name: str) -> None:
    unit = parse_unit(UNITS / name)
    (exec_start,) = unit["Service"]["ExecStart"]
    assert exec_start.split()[0].endswith("/billing-bridge")
    assert unit["Service"]["User"] == ["billing-bridge"]
    assert unit["Service"]["ProtectSystem"] == ["strict"]


def test_the_daemon_unit_uses_notify_watchdog_and_restart() -> None:
    service = parse_unit(UNITS / "billing-bridge.service")["Service"]
    assert service["Type"] == ["notify"]
    assert service["ExecStart"][0].endswith("billing-bridge run")
    assert service["WatchdogSec"] and service["Restart"] == ["on-failure"]
    assert service["StateDirectory"] == ["billing-bridge"]
    assert int(service["TimeoutStopSec"][0]) >= 30


SERVICES = sorted(path.name for path in UNITS.glob("*.service"))
MAXIMUM_EXPOSURE = 2.0

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictSUIDSGID": "yes",
    "RestrictRealtime": "yes",
    "RestrictNamespaces": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "UMask": "0027",
    "User": "billing-bridge",
}


def test_the_units_are_the_daemon_the_monthly_run_and_the_one_off_run() -> None:
    assert sorted(path.name for path in UNITS.iterdir()) == [
        "billing-bridge-invoice.service",
        "billing-bridge-invoice.timer",
        "billing-bridge-invoice@.service",
        "billing-bridge.service",
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_the_daemons_hardening(name: str) -> None:
    service = parse_unit(UNITS / name)["Service"]
    missing = {key: value for key, value in HARDENING.items() if service.get(key) != [value]}
    assert not missing, f"{name} lacks or changes {missing}"


def test_the_monthly_timer_starts_the_run_for_today_on_the_first_of_each_month() -> None:
    timer = parse_unit(UNITS / "billing-bridge-invoice.timer")["Timer"]
    assert timer["Unit"] == ["billing-bridge-invoice.service"]
    assert timer["OnCalendar"] == ["*-*-01 12:00:00 UTC"]
    assert timer["Persistent"] == ["true"]
    service = parse_unit(UNITS / "billing-bridge-invoice.service")["Service"]
    assert service["ExecStart"] == ["/opt/billing-bridge/bin/billing-bridge invoice"], "no fixed --date"
    assert service["RestartPreventExitStatus"] == ["2"], "bad settings are not retried"


def test_the_one_off_unit_invoices_the_date_of_its_instance() -> None:
    service = parse_unit(UNITS / "billing-bridge-invoice@.service")
    assert service["Service"]["ExecStart"] == ["/opt/billing-bridge/bin/billing-bridge invoice --date %i"]
    assert "one-off" in service["Unit"]["Description"][0]


def test_no_timer_starts_a_one_off_instance() -> None:
    for timer in UNITS.glob("*.timer"):
        assert "@" not in "".join(parse_unit(UNITS / timer.name)["Timer"]["Unit"]), timer.name


def test_noon_utc_on_the_first_is_already_the_new_month_in_every_time_zone() -> None:
    """Why the timer fires at 12:00 UTC: the run's "today" in billing.timezone is the 1st or the 2nd."""
    days = {
        datetime(2022, month, 1, 12, tzinfo=UTC).astimezone(ZoneInfo(zone)).day
        for zone in available_timezones()
        for month in (1, 3, 7, 11)
    }
    assert days <= {1, 2}


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        message = "systemd-analyze is missing (Debian's systemd package)"
        if services_required():
            pytest.fail(f"{message}; BRIDGE_REQUIRE_SERVICES=1 requires it", pytrace=False)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("name", SERVICES)
def test_systemd_rates_every_service_at_most_2_0_exposed(name: str) -> None:
    analyze = systemd_analyze()
    done = subprocess.run(
        [analyze, "security", "--offline=yes", "--no-pager", name],
        cwd=UNITS,
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= MAXIMUM_EXPOSURE
