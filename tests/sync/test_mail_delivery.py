"""Client notifications mailed by the bridge survive a crash at any point: sent exactly once by the file sink,
and over SMTP at most once more with the same Message-ID (the documented limit).

The process that decides and sends is killed with SIGKILL (a forked child, so nothing of it runs after
the kill: no rollback, no lease released) at each point between the decision's commit and the row's
settlement; then the next process_clients, a lease later, finishes the work.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.mail.transport import FileSink, Transport
from bridge.settings import Settings
from bridge.store.tables import outbox
from tests.support.usage import run_vm

AT = datetime(2026, 3, 2, 5, tzinfo=UTC)
SECTIONS: dict[str, Any] = {
    "pricing": {"flavors": {"m1.large": "1.00"}},
    "configurations": {"default": {"credit_notifications": [24]}},
}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DyingSink(FileSink):
    """The file sink of a process killed just before it writes the mail, or just after."""

    def __init__(self, directory: Path, clock: FixedClock, point: str) -> None:
        super().__init__(directory, clock)
        self.point = point

    def send(self, message: EmailMessage, key: str | None = None) -> None:
        if self.point == "before_write":
            _die()
        super().send(message, key)
        if self.point == "after_write":
            _die()


class RecordingSmtp:
    """An SMTP server as the bridge sees it: it accepts each mail (the Message-IDs it accepted are lines
    of ``log``) and cannot be asked what it accepted; ``die`` kills the sender once the server accepted."""

    def __init__(self, log: Path, *, die: bool = False) -> None:
        self.log = log
        self.die = die

    def send(self, message: EmailMessage, key: str | None = None) -> None:
        with self.log.open("a") as handle:
            handle.write(f"{message['Message-ID']}\n")
        if self.die:
            _die()

    def delivered(self, key: str) -> None:
        return None


def _child(settings: Settings, point: str, transport: Callable[[FixedClock], Transport]) -> None:
    clock = FixedClock(AT)
    app = build_app(settings, clock=clock, owner="doomed", mail_transport=lambda: transport(clock))
    app.credit.process(AT)
    if point == "after_enqueue":
        _die()
    app.mail_delivery().run()
    os._exit(0)


def _crash(settings: Settings, point: str, transport: Callable[[FixedClock], Transport]) -> int | None:
    child = multiprocessing.get_context("fork").Process(target=_child, args=(settings, point, transport))
    child.start()
    child.join(timeout=120)  # only turns a hung child into a clear failure; nothing is timed
    return child.exitcode


@pytest.fixture
def story(make_app: Callable[..., App], clock: FixedClock) -> App:
    app = make_app(**SECTIONS)
    client = app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
    run_vm(app, "p-1", "m1.large", 5, start=AT - timedelta(hours=5))
    return app


def _next_run(app: App, clock: FixedClock) -> None:
    """process_clients a lease later (the dead process's lease has expired by then)."""
    clock.set(AT + timedelta(seconds=app.settings.daemon.lease_seconds + 1))
    app.credit.process(clock.now())
    app.mail_delivery().run()


def _states(app: App) -> list[str]:
    with app.engine.connect() as connection:
        return [row.state for row in connection.execute(select(outbox.c.state))]


@pytest.mark.parametrize("point", ["after_enqueue", "before_write", "after_write"])
def test_a_crash_between_the_decision_and_the_record_of_sending_writes_the_mail_exactly_once(
    story: App, clock: FixedClock, point: str
) -> None:
    sink = story.settings.daemon.resolved_state_dir() / "mail"
    assert _crash(story.settings, point, lambda c: DyingSink(sink, c, point)) == -signal.SIGKILL
    assert len(list(sink.glob("*.eml"))) == (1 if point == "after_write" else 0)
    _next_run(story, clock)
    _next_run(story, clock)
    (mail,) = sink.glob("*.eml")
    assert mail.name == "BB-NOTIFY-1-24h-20260302T0500.eml"
    assert _states(story) == ["done"]
    assert not list(sink.glob(".*.tmp"))  # no half-written mail is ever left behind


def test_over_smtp_a_crash_after_the_server_accepted_sends_once_more_with_the_same_message_id(
    story: App, clock: FixedClock, tmp_path: Path
) -> None:
    log = tmp_path / "accepted.log"
    assert _crash(story.settings, "smtp", lambda _: RecordingSmtp(log, die=True)) == -signal.SIGKILL
    app = build_app(story.settings, clock=clock, mail_transport=lambda: RecordingSmtp(log))
    clock.set(AT + timedelta(seconds=app.settings.daemon.lease_seconds + 1))
    app.credit.process(clock.now())
    app.mail_delivery().run()  # in doubt, SMTP cannot say: sent again (the claim was a lease ago)
    app.mail_delivery().run()
    app.close()
    assert log.read_text().splitlines() == ["<BB-NOTIFY-1-24h-20260302T0500@127.0.0.1>"] * 2
    assert _states(story) == ["done"]
