"""Start-up cost: CPU of `billing-bridge --help` and `version`, and the idle daemon's memory.

    .venv/bin/python bench/startup.py [--runs 5] [--idle 120]

CPU is user + system time of a child process (``resource.getrusage(RUSAGE_CHILDREN)`` around it), the
median of ``--runs``. Beside it, measured in the same run: the floor (``python -c pass``) and the baseline,
the same ``--help`` with every command module imported first, as the CLI did before it loaded commands
on first use.

Memory is the resident set (VmRSS) of the daemon as ``make run`` starts it (the example settings, a
SQLite file in a temporary state directory, the health and sign-up ports moved to free ones): migrate,
run, wait until /healthz answers (a bounded number of tries), stay idle ``--idle`` seconds, read
``/proc/<pid>/status``, stop it with SIGTERM. Beside it: a process that only imports what the daemon
imported before (every command module, Alembic, cryptography).

Targets (issue 13): --help and version under 0.3 s CPU; idle daemon at most 80 MB. Before: 1.3 s, 95 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPU_TARGET = 0.3
RSS_TARGET_MB = 80
BEFORE_CPU = 1.3
BEFORE_RSS_MB = 95
HEALTH_TRIES = 600
"""Tries of /healthz, 0.1 s apart: a minute for a daemon on a loaded machine to come up."""

EAGER_IMPORTS = (
    "from bridge.cli.commands import load_all; load_all(); "
    "import bridge.daemon, bridge.web.enrollment.site, bridge.store.database, alembic.command, alembic.script, "
    "alembic.runtime.migration, cryptography.hazmat.primitives.ciphers.aead"
)
"""What the daemon imported before: every command module, Alembic for the schema check, cryptography."""


def child_cpu(argv: list[str]) -> float:
    """User + system seconds of one child process running ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_cpu(argv: list[str], runs: int) -> float:
    return statistics.median(child_cpu(argv) for _ in range(runs))


def cli(*args: str) -> list[str]:
    """The console script's own code (``bridge.cli:main``), run by this interpreter."""
    return [sys.executable, "-c", "from bridge.cli import main; main()", *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_like_make_run(state_dir: Path) -> Path:
    """settings.example.toml (what `make run` copies), with its own state directory and free ports."""
    text = (ROOT / "settings.example.toml").read_text(encoding="utf-8")
    text = text.replace('state_dir = ""', f'state_dir = "{state_dir}"', 1)
    text = text.replace('listen = "127.0.0.1:9180"', f'listen = "127.0.0.1:{free_port()}"', 1)
    text = text.replace('listen = "127.0.0.1:9181"', f'listen = "127.0.0.1:{free_port()}"', 1)
    path = state_dir / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def health_url(settings: Path) -> str:
    lines = settings.read_text(encoding="utf-8").splitlines()
    health = lines.index("[health]")
    listen = next(line for line in lines[health:] if line.startswith("listen = "))
    address = listen.split('"')[1]
    return f"http://{address}/healthz"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def idle_daemon_rss(idle_seconds: float) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as directory:
        settings = settings_like_make_run(Path(directory))
        subprocess.run(cli("--config", str(settings), "migrate"), check=True, capture_output=True)
        log = (Path(directory) / "daemon.log").open("w")
        daemon = subprocess.Popen(cli("--config", str(settings), "run"), stdout=log, stderr=log)
        try:
            url = health_url(settings)
            for _ in range(HEALTH_TRIES):
                if answers(url):
                    break
                time.sleep(0.1)
            else:
                raise SystemExit(f"the daemon's health endpoint never answered; see {log.name}")
            time.sleep(idle_seconds)
            return rss_mb(daemon.pid)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            log.close()


def eager_imports_rss() -> float:
    script = f"{EAGER_IMPORTS}\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024


def row(label: str, value: float, target: float | None = None) -> None:
    """One figure, aligned, with its verdict when it has a target."""
    mark = "" if target is None else ("  ok" if value <= target else "  OVER TARGET")
    print(f"  {label:<46}{value:7.3f}{mark}" if value < 10 else f"  {label:<46}{value:7.1f}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="CPU: runs per command (median)")
    parser.add_argument("--idle", type=float, default=120.0, help="daemon: idle seconds before RSS is read")
    options = parser.parse_args()

    print(f"load average {' '.join(f'{n:.2f}' for n in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"\nCPU seconds (median of {options.runs}; target < {CPU_TARGET}; before: {BEFORE_CPU})")
    row("python -c pass (floor)", median_cpu([sys.executable, "-c", "pass"], options.runs))
    eager_help = [sys.executable, "-c", f"{EAGER_IMPORTS}\nfrom bridge.cli import main; main(['--help'])"]
    row("--help with every module imported (baseline)", median_cpu(eager_help, options.runs))
    for args in ("--help", "version"):
        row(f"billing-bridge {args}", median_cpu(cli(args), options.runs), CPU_TARGET)

    print(f"\nMemory MB (target <= {RSS_TARGET_MB}; before: {BEFORE_RSS_MB})")
    row("the daemon's former imports only (baseline)", eager_imports_rss())
    rss, peak = idle_daemon_rss(options.idle)
    row(f"idle daemon, RSS after {options.idle:g} s", rss, RSS_TARGET_MB)
    row("idle daemon, peak RSS (VmHWM)", peak)


if __name__ == "__main__":
    main()
