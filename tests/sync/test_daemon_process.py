"""The daemon as systemd runs it: READY=1, WATCHDOG=1 pings, health on its port, SIGTERM -> exit 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

BIN = Path(sys.executable).parent / "billing-bridge"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    yield sock, path
    sock.close()


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    seen: list[str] = []
    while True:
        message = sock.recv(4096).decode()
        seen.append(message)
        if wanted in message:
            return seen


@pytest.mark.parametrize("backend", ["sqlite"])
def test_daemon_notifies_systemd_serves_health_and_exits_0_on_sigterm(
    tmp_path: Path, database_url: str, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, socket_path = notify_socket
    port = free_port()
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[health]\nlisten = "127.0.0.1:{port}"\n'
        '[logging]\nformat = "json"\n'
        "[enrollment]\nenabled = false\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": socket_path, "WATCHDOG_USEC": "200000"}
    env.pop("WATCHDOG_PID", None)
    process = subprocess.Popen(
        [str(BIN), "--config", str(config), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        receive_until(sock, "READY=1")
        receive_until(sock, "WATCHDOG=1")
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200
        assert "billing_bridge_job_runs_total" in requests.get(f"{base}/metrics", timeout=10).text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        receive_until(sock, "STOPPING=1")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode() if process.stderr else ""
    assert '"event": "daemon stopped"' in stderr
