"""The fake WHMCS served from its own process, for the benches: its answering costs the bridge's process no
CPU and no turn at the interpreter lock, as a real WHMCS on another host would not.

:class:`FakeWhmcsProcess` starts ``python -m tests.fakes.whmcs_process`` and steers it over the child's
stdin and stdout, one JSON object a line each way: the fake's address and credentials first, then an
answer per command (inject a fault; count calls, invoices or connections accepted; forget the calls;
report the CPU the child has used). The child speaks HTTP/1.1 with persistent connections, as WHMCS behind
Apache does, and ends when its stdin closes.

    with FakeWhmcsProcess() as fake:
        client = WhmcsClient(fake.url, fake.identifier, fake.secret)
        fake.fail("slow", latency_ms=50, times=None)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from tests.fakes.whmcs import FakeWhmcs, FaultKind

ROOT = Path(__file__).resolve().parents[2]


class FakeWhmcsProcess:
    """A :class:`~tests.fakes.whmcs.FakeWhmcs` in a child process, with the helpers the benches use."""

    def __init__(self) -> None:
        self._child: subprocess.Popen[str] | None = None
        self.url = self.identifier = self.secret = ""

    def __enter__(self) -> FakeWhmcsProcess:
        self._child = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.whmcs_process"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        started = self._read()
        self.url, self.identifier, self.secret = started["url"], started["identifier"], started["secret"]
        return self

    def __exit__(self, *exc: object) -> None:
        child = self._child
        if child is None:
            return
        assert child.stdin is not None
        child.stdin.close()  # the child's loop ends, it stops the server and exits
        child.wait(timeout=30)
        self._child = None

    def fail(
        self, kind: FaultKind, *, action: str | None = None, times: int | None = 1, latency_ms: int = 0
    ) -> None:
        """As :meth:`FakeWhmcs.fail`."""
        self._ask(
            {"command": "fail", "kind": kind, "action": action, "times": times, "latency_ms": latency_ms}
        )

    def reset_calls(self) -> None:
        self._ask({"command": "reset_calls"})

    def call_count(self, action: str | None = None) -> int:
        """Calls of ``action`` so far (all calls when None)."""
        return int(self._ask({"command": "call_count", "action": action}))

    def connection_count(self) -> int:
        """Connections the fake has accepted."""
        return int(self._ask({"command": "connection_count"}))

    def invoice_count(self) -> int:
        """Invoices the fake holds."""
        return int(self._ask({"command": "invoice_count"}))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the child has used so far: the fake's answering."""
        return float(self._ask({"command": "cpu_seconds"}))

    def _ask(self, command: dict[str, Any]) -> Any:
        child = self._child
        assert child is not None and child.stdin is not None, "start the fake first"
        child.stdin.write(json.dumps(command) + "\n")
        child.stdin.flush()
        return self._read()["answer"]

    def _read(self) -> dict[str, Any]:
        child = self._child
        assert child is not None and child.stdout is not None
        line = child.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake WHMCS process ended (exit {child.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer


def serve(commands: IO[str], answers: IO[str]) -> None:
    """Serve a keep-alive fake until ``commands`` ends, answering each command line on ``answers``."""
    with FakeWhmcs(keep_alive=True) as fake:
        _say(answers, {"url": fake.url, "identifier": fake.identifier, "secret": fake.secret})
        for line in commands:
            _say(answers, {"answer": _obey(fake, json.loads(line))})


def _obey(fake: FakeWhmcs, command: dict[str, Any]) -> Any:
    name = command["command"]
    if name == "fail":
        fake.fail(
            command["kind"],
            action=command["action"],
            times=command["times"],
            latency_ms=command["latency_ms"],
        )
        return None
    if name == "reset_calls":
        fake.reset_calls()
        return None
    if name == "call_count":
        return fake.call_count(command["action"])
    if name == "connection_count":
        return fake.connections
    if name == "invoice_count":
        return len(fake.invoices)
    if name == "cpu_seconds":
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    raise ValueError(f"unknown command {name!r}")


def _say(answers: IO[str], message: dict[str, Any]) -> None:
    answers.write(json.dumps(message) + "\n")
    answers.flush()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
