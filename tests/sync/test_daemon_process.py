"""The daemon as systemd runs it: READY=1, WATCHDOG=1 pings, health on its port, SIGTERM -> exit 0, also
while a vendor never answers or keeps refusing (systemd kills a daemon that overstays TimeoutStopSec)."""

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

from bridge.errors import ConfigError
from bridge.settings import ScheduleSettings, parse_settings
from tests.fakes.silent import SilentServer

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


SHUTDOWN_TIMEOUT = 2
HANG_GUARD = 120  # seconds: only so that a hanging daemon fails the test instead of blocking CI


def daemon_config(tmp_path: Path, database_url: str, vendor: str) -> Path:
    """Settings with every schedule off, ``usage_sync`` run at start, and ``vendor`` (a TOML section)."""
    schedules = "".join(f'{name} = "off"\n' for name in ScheduleSettings.model_fields)
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nshutdown_timeout_seconds = {SHUTDOWN_TIMEOUT}\n'
        'run_on_start = ["usage_sync"]\n'
        f'[database]\nurl = "{database_url}"\n'
        "[health]\nenabled = false\n[enrollment]\nenabled = false\n"
        '[logging]\nformat = "json"\n'
        f"[schedule]\n{schedules}{vendor}"
    )
    return config


def stop_and_wait(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, then the exit status; the wait is bounded (configured timeout + margin) as a hang guard."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=SHUTDOWN_TIMEOUT + HANG_GUARD)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail("the daemon did not exit after SIGTERM", pytrace=False)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sigterm_while_a_vendor_never_answers_exits_0_naming_the_abandoned_job(
    tmp_path: Path, database_url: str
) -> None:
    """Keystone accepts the connection and never replies: the job is stuck in a socket read, yet the
    daemon exits 0 once daemon.shutdown_timeout_seconds has passed, having logged the job it abandoned."""
    with SilentServer() as keystone:
        vendor = (
            f'[openstack]\nenabled = true\nauth_url = "{keystone.url}/v3"\nusername = "billing"\n'
            'password = "fake-Passw0rd"\nproject_name = "admin"\ntimeout_seconds = 300\n'
        )
        config = daemon_config(tmp_path, database_url, vendor)
        with (tmp_path / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen([str(BIN), "--config", str(config), "run"], stderr=stderr)
            try:
                assert keystone.requested.wait(timeout=HANG_GUARD), "usage_sync never reached OpenStack"
                code = stop_and_wait(process)
            finally:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    log = (tmp_path / "stderr.log").read_text()

    assert code == 0
    [abandoned] = [line for line in log.splitlines() if '"job abandoned at shutdown' in line]
    assert '"job": "usage_sync"' in abandoned
    assert f'"timeout_seconds": {SHUTDOWN_TIMEOUT}' in abandoned
    assert '"event": "daemon stopped"' in log


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sigterm_ends_the_retries_against_an_unreachable_vendor_at_once(
    tmp_path: Path, database_url: str
) -> None:
    """SolusVM refuses every connection and the client retries with growing waits (minutes in all): the
    waits end at SIGTERM, so the job stops at once and nothing is abandoned."""
    vendor = (
        f'[solusvm]\nenabled = true\nurl = "http://127.0.0.1:{free_port()}"\ntoken = "fake-token"\n'
        "max_attempts = 20\nmax_retry_wait_seconds = 60\n"
    )
    config = daemon_config(tmp_path, database_url, vendor)
    process = subprocess.Popen([str(BIN), "--config", str(config), "run"], stderr=subprocess.PIPE)
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:
            seen.append(line.decode())
            if '"event": "solusvm.retry"' in seen[-1]:
                break
        code = stop_and_wait(process)
        seen.extend(line.decode() for line in process.stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = "".join(seen)

    assert code == 0
    (run,) = [line for line in log.splitlines() if '"event": "job run"' in line]
    assert '"outcome": "failed"' in run and '"error": "stopped for shutdown before finishing"' in run
    assert "abandoned at shutdown" not in log
    assert '"abandoned": []' in log


def test_run_on_start_names_only_jobs_the_daemon_has() -> None:
    assert parse_settings({"daemon": {"run_on_start": ["usage_sync", "push"]}}).daemon.run_on_start == [
        "usage_sync",
        "push",
    ]
    with pytest.raises(ConfigError) as raised:
        parse_settings({"daemon": {"run_on_start": ["usage-sync"]}})
    assert "daemon.run_on_start: unknown job 'usage-sync'; use job names from [schedule]" in str(raised.value)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_started_daemon_has_loaded_nothing_only_other_commands_or_first_uses_need(
    tmp_path: Path, database_url: str
) -> None:
    """The idle daemon's memory is what it imports: no Alembic (migrate), no cryptography (the first
    sign-up), no vendor SDK that is off, no PDF or chart library, no other command's module."""
    unused = (
        "alembic",
        "cryptography",
        "openstack",
        "weasyprint",
        "matplotlib",
        "bridge.cli.invoices",
        "bridge.cli.plans",
        "bridge.cli.credit",
    )
    config = tmp_path / "settings.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[database]\nurl = "{database_url}"\n'
        f'[health]\nlisten = "127.0.0.1:{free_port()}"\n'
        f'[enrollment]\nlisten = "127.0.0.1:{free_port()}"\n'
        '[logging]\nformat = "json"\n'
    )
    # The daemon tells systemd READY=1 once it serves; this child listens for that itself, then lists
    # what is imported and stops its daemon with SIGTERM.
    script = f"""
import json, os, signal, socket, sys, threading
ready = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ready.bind({str(tmp_path / "notify.sock")!r})
os.environ["NOTIFY_SOCKET"] = {str(tmp_path / "notify.sock")!r}
def when_ready():
    while b"READY=1" not in ready.recv(4096):
        pass
    print(json.dumps(sorted(name for name in {unused!r} if name in sys.modules)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=when_ready, daemon=True).start()
from bridge.cli import main
main(["--config", {str(config)!r}, "run"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
