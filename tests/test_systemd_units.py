"""The systemd units in systemd/: every service is hardened like the daemon, and the monthly timer starts
a run that invoices the month that just ended (not one fixed date again and again)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest

from tests.support.databases import services_required

UNITS = Path(__file__).parents[1] / "systemd"
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


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as section -> key -> values (a key may repeat), comments left out."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if header := re.fullmatch(r"\[(\w+)\]", line):
            current = sections.setdefault(header.group(1), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_units_are_the_daemon_the_monthly_run_and_the_one_off_run() -> None:
    assert sorted(path.name for path in UNITS.iterdir()) == [
        "billing-bridge-invoice.service",
        "billing-bridge-invoice.timer",
        "billing-bridge-invoice@.service",
        "billing-bridge.service",
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_the_daemons_hardening(name: str) -> None:
    service = unit(name)["Service"]
    missing = {key: value for key, value in HARDENING.items() if service.get(key) != [value]}
    assert not missing, f"{name} lacks or changes {missing}"


def test_the_monthly_timer_starts_the_run_for_today_on_the_first_of_each_month() -> None:
    timer = unit("billing-bridge-invoice.timer")["Timer"]
    assert timer["Unit"] == ["billing-bridge-invoice.service"]
    assert timer["OnCalendar"] == ["*-*-01 12:00:00 UTC"]
    assert timer["Persistent"] == ["true"]
    service = unit("billing-bridge-invoice.service")["Service"]
    assert service["ExecStart"] == ["/opt/billing-bridge/bin/billing-bridge invoice"], "no fixed --date"
    assert service["RestartPreventExitStatus"] == ["2"], "bad settings are not retried"


def test_no_timer_starts_a_one_off_instance() -> None:
    for timer in UNITS.glob("*.timer"):
        assert "@" not in "".join(unit(timer.name)["Timer"]["Unit"]), timer.name


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
