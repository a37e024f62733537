"""sd_notify datagrams reach the socket systemd names, and the unit files say what the daemon needs."""

from __future__ import annotations

import re
import socket
from collections import defaultdict
from pathlib import Path

import pytest

from bridge.sync.systemd import SystemdNotifier

UNITS = Path(__file__).parents[2] / "systemd"


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


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = header.group(1)
            continue
        key, sep, value = line.partition("=")
        assert current and sep and re.fullmatch(r"[A-Za-z]+", key), f"{path.name}:{number}: {raw!r}"
        sections[current][key].append(value)
    return sections


@pytest.mark.parametrize("name", ["billing-bridge.service", "billing-bridge-invoice@.service"])
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


def test_the_invoice_timer_starts_the_invoice_unit_for_its_date() -> None:
    unit = parse_unit(UNITS / "billing-bridge-invoice@.timer")
    assert unit["Timer"]["Unit"] == ["billing-bridge-invoice@%i.service"]
    assert parse_unit(UNITS / "billing-bridge-invoice@.service")["Service"]["ExecStart"] == [
        "/opt/billing-bridge/bin/billing-bridge invoice --date %i"
    ]
