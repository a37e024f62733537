"""The push: outbox rows to WHMCS, each effect applied exactly once; the ``push`` and ``payments_sync`` jobs.

Row states and what moves them:

=============  ==========================================================================================
pending        written with the change that caused it (or sent and provably not received: connection
               refused, connect timeout). Sent as is.
in_doubt       a call may have been applied. Every row is claimed (marked in doubt, with the push's lease
               token and the time) and committed *before* its call goes out, so a crash at any moment
               (SIGKILL included) leaves it here. It waits ``whmcs.in_doubt_settle_seconds`` (longer than
               the read timeout) after its claim, so WHMCS can no longer be applying the call; then an
               attempt looks the effect up by its reference, sends only if it is absent, and sweeps for a
               duplicate (bridge/whmcs/effects.py). Never looked up and re-sent in the same breath.
done           WHMCS holds the effect; ``remote_id`` is its WHMCS id when WHMCS gives one (a "success" with
               an id such as ``0`` or ``-7`` is refused as a vendor error: the row stays in doubt).
failed         WHMCS refused (``result=error``), a lookup found a duplicate it cannot cancel (paid), or the
               payload cannot be sent.
               Parked with the message for the operator: ``outbox retry ID`` (looked up, then sent if
               absent) or ``outbox cancel ID``.
cancelled      the operator gave up on it; never sent again.
=============  ==========================================================================================

Order and concurrency: one client's rows go out one at a time, oldest first, except that a client without
a WHMCS link sends its add_client row first (its invoices need the WHMCS client id). A failed row, or one
waiting for its back-off, holds back the client's later rows; other clients go on. Clients are worked in
parallel, ``whmcs.push_concurrency`` at a time, each thread with its own WhmcsClient. The store's writes
stay off the threads' critical path as far as exactly-once allows (bridge/sync/group_commit.py): on SQLite
the threads' writes share commits, made by a committer thread while the run lasts (or by the thread
waiting for its write, when no commit is in flight); a client's turn opens with one transaction (the
client claimed, its rows read, its first create_invoice row claimed); a client's next create_invoice row
is claimed while the call before it is out (and given back, never sent, if the queue stops before it); a
done record goes out with the next commit, a crash before which leaves the row in doubt to be looked up.
Nothing is claimed before its client's turn.

Retries: a call that provably never reached WHMCS (connection refused, connect timeout) is retried within
the run (tenacity: ``whmcs.push_attempts`` tries with jittered exponential waits capped at
``whmcs.retry_wait_max_seconds``); a row left in doubt is not (see above). A row still unsettled waits with
a growing back-off (at most an hour; an in-doubt one at least the settle time) for a later run. An
authentication or permission refusal (HTTP 403) stops the whole push at once, with one error and nothing
marked failed.

Several daemons: each push runs under its own daemon's lease, ``job:push@<owner>`` (the daemon's job,
the CLI and a bare :meth:`OutboxPusher.run` alike), and the daemons share the outbox by client through
the database: a push claims a client (bridge/store/push_claims.py, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and MariaDB) before it reads the client's rows, and the claim holds while the push's lease
does. So one push at a time works a client, in the order above, and a push that dies or is paused past
its lease frees its clients for the others, which settle its in-doubt rows as above.

Fencing: every claim and every settle is a compare-and-set on the row, the token of this acquisition of
the lease and the lease still being held unexpired; and before every WHMCS call the lease is checked
against the clock. A push whose lease renewal failed or came late (a paused process) stops before its
next call, leaving its in-flight row in doubt for the push that claims the client next to look up after
the settle time.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_none, wait_random_exponential

from bridge.clock import Clock
from bridge.domain.effects import AddPayment, CreateInvoice
from bridge.errors import BridgeError
from bridge.logs import get_logger
from bridge.progress import Progress, Tally, no_progress
from bridge.services.outbox import client_reference, enqueue_add_client
from bridge.store import outbox as store
from bridge.store import push_claims as claims
from bridge.store import whmcs as remote
from bridge.store.outbox import EffectKind, Fence, FencedOut, OutboxRow, OutboxState
from bridge.store.unit_of_work import UnitOfWork
from bridge.sync.group_commit import GroupCommit, Write
from bridge.sync.jobs import Lease, LeaseLost, hold_lease, job_lease
from bridge.whmcs import effects
from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.effects import Duplicate, EffectOptions, EffectRefused, Outcome, Target
from bridge.whmcs.errors import (
    WhmcsAuthError,
    WhmcsBusinessError,
    WhmcsDuplicateError,
    WhmcsError,
    WhmcsTransportError,
)
from bridge.whmcs.settings import WhmcsSettings
from bridge.whmcs.transport import Wait

log = get_logger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600

ClientFactory = Callable[[], WhmcsClient]
Result = Literal["sent", "looked_up", "failed", "postponed", "blocked", "skipped", "planned"]


class PushStopped(BridgeError):
    """The push stopped before its end: WHMCS refused the bridge's credentials or permissions (nothing
    was applied for the row at hand), its lease was lost or taken, or an unexpected failure. The message
    never holds a secret."""


_DUPLICATE_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()
_COUNTERS_LOCK = threading.Lock()


def duplicates_counter(registry: CollectorRegistry | None) -> Counter:
    """``billing_bridge_whmcs_duplicates_total{kind, outcome}``: records WHMCS held twice for one reference,
    found when an in-doubt row was settled, by what became of the later one (``cancelled``, or ``left``
    for the operator). Registered once per registry (the app's, so /metrics shows it)."""
    if registry is None:
        return _new_duplicates_counter(None)
    with _COUNTERS_LOCK:
        counter = _DUPLICATE_COUNTERS.get(registry)
        if counter is None:
            counter = _DUPLICATE_COUNTERS[registry] = _new_duplicates_counter(registry)
        return counter


def _new_duplicates_counter(registry: CollectorRegistry | None) -> Counter:
    counter = Counter(
        "billing_bridge_whmcs_duplicates",
        "Invoices and clients WHMCS held twice for one reference, found settling an in-doubt row",
        ["kind", "outcome"],
        registry=registry,
    )
    for kind in ("invoice", "client"):
        for outcome in ("cancelled", "left"):
            counter.labels(kind=kind, outcome=outcome)
    return counter


@dataclass(frozen=True)
class RowNote:
    """What happened to one row in this run, and why when it did not go out."""

    row_id: int
    client_id: int
    kind: str
    reference: str
    result: Result
    message: str | None = None
    remote_id: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class PushReport:
    """One push run. ``notes`` lists every row touched (or, with ``dry_run``, planned) in order per client;
    ``enqueued`` the clients given an add_client row because an effect needed them in WHMCS."""

    dry_run: bool
    notes: tuple[RowNote, ...]
    enqueued: tuple[int, ...]

    def of(self, *results: Result) -> list[RowNote]:
        return [note for note in self.notes if note.result in results]

    @property
    def trouble(self) -> bool:
        """Whether any row failed or had to be put off in this run."""
        return bool(self.of("failed", "postponed"))

    def counts(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for note in self.notes:
            found[note.result] = found.get(note.result, 0) + 1
        return found


def retry_wait(settings: WhmcsSettings) -> Wait:
    """Jittered exponential waits between tries of a call, capped by ``whmcs.retry_wait_max_seconds``."""
    if settings.retry_wait_max_seconds <= 0:
        return wait_none()
    return wait_random_exponential(multiplier=0.5, max=settings.retry_wait_max_seconds)


class _Unsettled(Exception):
    """One try of a row ended with its fate unknown or its call not delivered: try again."""

    def __init__(self, state: OutboxState, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass
class _Abort:
    """Shared by the worker threads: the first fatal error stops every client's queue between rows."""

    event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, error: BaseException) -> None:
        with self.lock:
            if self.error is None:
                self.error = error
        self.event.set()


class OutboxPusher:
    """Sends the outbox's due rows to WHMCS (see the module docstring for the rules).

    ``whmcs`` is its section of the settings, ``zone`` the billing time zone (dates sent to WHMCS) and
    ``lease_ttl`` the lease it takes when :meth:`run` is given none. ``client_factory`` makes one
    WhmcsClient per worker thread; ``sleep`` is what tenacity waits with
    (tests pass a no-op or inject ``whmcs.retry_wait_max_seconds = 0``); ``rng`` draws the jitter of the
    between-runs back-off; ``stopping`` ends the run between rows (daemon shutdown); ``metrics`` is the
    registry the duplicates counter is on; ``owner`` names this process when :meth:`run` takes the lease
    itself.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        whmcs: WhmcsSettings,
        *,
        zone: ZoneInfo,
        lease_ttl: timedelta,
        client_factory: ClientFactory,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        stopping: Callable[[], bool] = lambda: False,
        metrics: CollectorRegistry | None = None,
        owner: str | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._factory = client_factory
        self._options = EffectOptions.from_settings(whmcs, zone)
        self._wait = retry_wait(whmcs)
        self._sleep = sleep or time.sleep
        self._attempts = whmcs.push_attempts
        self._concurrency = whmcs.push_concurrency
        self._rng = rng or random.Random()
        self._stopping = stopping
        self._settle_time = timedelta(seconds=whmcs.in_doubt_settle_seconds)
        self._ahead_for = self._settle_time - timedelta(seconds=whmcs.read_timeout_seconds)
        """How long a claim made ahead may wait for its call: sent later, the call could still be in
        flight when the settle time after the claim has passed."""
        self._lease_ttl = lease_ttl
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self._duplicates = duplicates_counter(metrics)
        self._lease: Lease | None = None
        self._local = threading.local()
        self._made: list[WhmcsClient] = []
        self._made_lock = threading.Lock()
        self._abort = _Abort()
        self._group = GroupCommit(uow)
        self._write_lock: AbstractContextManager[object] = (
            self._group.write_lock if self._group.grouped else nullcontext()
        )

    # -- the run ---------------------------------------------------------------------------------------

    def run(
        self, *, dry_run: bool = False, lease: Lease | None = None, progress: Progress = no_progress
    ) -> PushReport:
        """Push every due row of the clients no other push holds, under ``lease`` (this daemon's
        ``job:push@<owner>``; taken here for the run when not given); with ``dry_run``, say what would be
        sent and change nothing anywhere. ``progress`` hears how many of the clients with due rows are
        done."""
        if dry_run:
            with self._uow.reading() as connection:
                clients = store.clients_with_work(connection)
            enqueued = [client_id for client_id in clients if self._missing_identity(client_id)]
            notes = [note for client_id in clients for note in self._plan(client_id)]
            return PushReport(True, tuple(notes), tuple(enqueued))
        if lease is not None:
            return self._run(lease, progress)
        name = job_lease("push", self._owner)
        with hold_lease(self._uow, self._clock, name, self._owner, self._lease_ttl) as taken:
            if taken is None:
                raise PushStopped(f"this daemon's push is running already (it holds {name}); try again later")
            return self._run(taken, progress)

    def _run(self, lease: Lease, progress: Progress) -> PushReport:
        self._abort = _Abort()
        self._lease = lease
        lease.check()
        with self._uow.reading() as connection:
            clients = store.clients_with_work(connection)
        try:
            with (
                self._clients_closed(),
                self._group.committing(),
                ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="push") as pool,
            ):
                tally = Tally(progress, total=len(clients))
                worked = []
                for one in pool.map(self._push_client, clients):
                    worked.append(one)  # in order: the progress callback sees one thread
                    tally.advance()
                tally.finish()
        finally:
            self._group.flush()  # the last rows' records, queued behind claims that never came
        notes = tuple(note for one in worked for note in one.notes)
        enqueued = tuple(one.client_id for one in worked if one.enqueued)
        report = PushReport(False, notes, enqueued)
        elsewhere = sum(1 for one in worked if not one.claimed)
        log.info(
            "push finished",
            **report.counts(),
            clients=len(clients),
            elsewhere=elsewhere,
            enqueued=len(enqueued),
        )
        if self._abort.error is not None:
            error = self._abort.error
            if isinstance(error, WhmcsAuthError | LeaseLost):
                raise PushStopped(f"push stopped, nothing more was sent: {error}") from None
            first_line = (str(error).splitlines() or [""])[0]  # a driver error's SQL and parameters stay out
            raise PushStopped(
                f"push stopped by an unexpected {type(error).__name__}: {first_line}"
            ) from error
        return report

    def _missing_identity(self, client_id: int) -> remote.ClientIdentity | None:
        """What an add_client row for the client would carry, when the client has due rows but neither a
        WHMCS link nor an add_client row; None otherwise."""
        with self._uow.reading() as connection:
            link = remote.whmcs_client_id(connection, client_id)
            return _identity_missing(connection, client_id, link)

    def _open(self, connection: Connection, client_id: int) -> _Opened:
        """The client's turn begins with one write transaction, one commit to wait for: claim the client
        for this push (False when another push holds it; :class:`~bridge.store.push_claims.ClaimLost`
        when this push's lease is gone); give it an add_client row (matched by email first when it is
        sent) if it has due rows but no WHMCS link and no such row, so its invoices can go out; read its
        rows and link, the claim held; and claim its first row, when that is a due create_invoice of a
        linked client (:meth:`_early`), as it would be claimed next thing. The client is not opened
        before its turn: a push held up meanwhile would keep it from the other pushes."""
        lease, now = self._held(), self._clock.now()
        claimed = claims.claim_client(
            connection, client_id, lease=lease.name, token=lease.token, holder=self._owner, now=now
        )
        if not claimed:
            return _Opened(client_id, claimed=False, at=now)
        link = remote.whmcs_client_id(connection, client_id)
        identity = _identity_missing(connection, client_id, link)
        if identity is not None:
            enqueue_add_client(
                connection,
                client_id=client_id,
                email=identity.email,
                name=identity.name,
                currency=identity.currency,
                now=now,
            )
        rows = _in_order(store.unsettled_rows(connection, client_id), link)
        first = rows[0] if rows and link is not None and self._early(rows[0], now) else None
        fence, settle = self._fence, self._settle_time
        first_claimed = first is not None and store.claim(connection, first, fence, now, settle)
        return _Opened(client_id, True, now, identity is not None, rows, link, first_claimed)

    def _opened(self, client_id: int) -> _Opened:
        """The client opened (:meth:`_open`) and committed; a claim refused because this push's lease is
        gone raises :class:`LeaseLost`."""
        try:
            return self._group.run(lambda tx: self._open(tx, client_id))
        except claims.ClaimLost as error:
            lease = self._held()
            raise LeaseLost(f"lease {lease.name} lost: {error}") from None

    # -- one client's queue ----------------------------------------------------------------------------

    def _push_client(self, client_id: int) -> _ClientRun:
        """The client's queue, if this push claims the client (another push works it otherwise)."""
        notes: list[RowNote] = []
        ahead: dict[int, _Ahead] = {}
        claimed = enqueued = False
        try:
            if self._abort.event.is_set() or self._stopping():
                return _ClientRun(client_id, claimed, enqueued, notes)
            self._held().check()
            opened = self._opened(client_id)
            if opened.first_claimed:  # given back below if the queue stops before it
                ahead[opened.rows[0].id] = _Ahead(_committed(True), opened.at)
            claimed, enqueued = opened.claimed, opened.enqueued
            if not claimed:
                log.debug("client left to the push that holds it", client=client_id)
                return _ClientRun(client_id, claimed, enqueued, notes)
            if enqueued:
                log.info("add_client enqueued for a client WHMCS does not know yet", client=client_id)
            ordered, link = opened.rows, opened.link
            for index, row in enumerate(ordered):
                if self._abort.event.is_set() or self._stopping():
                    break
                self._held().check()
                if row.id not in ahead:
                    blocker = self._blocker(row, link)
                    if blocker is not None:
                        notes.append(blocker)
                        break
                following = ordered[index + 1] if index + 1 < len(ordered) else None
                note = self._settle(row, link, ahead, following)
                notes.append(note)
                if note.result not in ("sent", "looked_up"):
                    break
                if row.kind is EffectKind.ADD_CLIENT and note.remote_id is not None:
                    link = int(note.remote_id)
        except _Stop:
            pass
        except (LeaseLost, FencedOut) as error:  # another push has the rows now: stop before any call
            lost = str(error) if isinstance(error, LeaseLost) else f"a fenced write was refused: {error}"
            self._held().lose(lost)
            log.error("push stopped: its lease was lost", client=client_id, error=lost)
            self._abort.set(error if isinstance(error, LeaseLost) else LeaseLost(lost))
        except Exception as error:  # a bug or the database: stop everyone; the claimed row stays in doubt
            log.error("push of a client failed", client=client_id, error=str(error), exc_info=True)
            self._abort.set(error)
        finally:
            self._release(ahead)
        return _ClientRun(client_id, claimed, enqueued, notes)

    def _blocker(self, row: OutboxRow, link: int | None) -> RowNote | None:
        """Why the row (and so the client's later rows) cannot go now, or None."""
        if row.state is OutboxState.FAILED:
            return _note(row, "blocked", f"waits behind failed row {row.id}: {row.last_error}")
        waiting = self._waiting(row, self._clock.now())
        if waiting is not None:
            return _note(row, "blocked", f"{waiting}: {row.last_error}")
        if row.kind is not EffectKind.ADD_CLIENT and link is None:
            message = (
                f"client {row.client_id} has no WHMCS client (its add_client row is settled or cancelled); "
                f"link one with `billing-bridge client link {row.client_id} --whmcs-client ID`, then "
                f"`billing-bridge outbox retry {row.id}`"
            )
            with self._writing() as connection:
                parked = store.park(connection, row, self._fence, message, self._clock.now())
            if not parked:
                return _note(row, "skipped", "settled, cancelled or claimed elsewhere meanwhile")
            return _note(row, "failed", message)
        return None

    def _waiting(self, row: OutboxRow, now: datetime) -> str | None:
        """Why the row is not due yet (its back-off, or an in-doubt call WHMCS may still be applying)."""
        settles = row.settles_at(self._settle_time)
        if settles is not None and settles > now:
            return (
                f"in doubt since {_moment(row.claimed_at)}; looked up at {settles.isoformat()}, once WHMCS "
                "can no longer be applying the call (whmcs.in_doubt_settle_seconds)"
            )
        if row.next_attempt_at > now:
            return f"next attempt at {row.next_attempt_at.isoformat()}"
        return None

    def _settle(
        self,
        row: OutboxRow,
        link: int | None,
        ahead: dict[int, _Ahead] | None = None,
        following: OutboxRow | None = None,
    ) -> RowNote:
        """Try the row up to ``push_attempts`` times in this run while its call provably never reached
        WHMCS; a row left in doubt is put off at once (at least the settle time), as is one still unsent
        after the last try."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception(_unsent),
            reraise=True,
            sleep=self._sleep,
        )
        loaded = [row]  # the first try uses the row as the queue read it; a retry reads it again
        try:
            note: RowNote = retrying(
                lambda: self._attempt(row.id, link, loaded.pop() if loaded else None, ahead, following)
            )
            return note
        except _Unsettled as trouble:
            now = self._clock.now()
            with self._uow.reading() as connection:
                current = store.get(connection, row.id)
            later = now + self._backoff(current.attempts if current else row.attempts + self._attempts)
            if trouble.state is OutboxState.IN_DOUBT:
                later = max(later, now + self._settle_time)
            with self._writing() as connection:
                store.mark_unsettled(
                    connection, row.id, trouble.state, trouble.message, now, later, fence=self._fence
                )
            log.warning(
                "outbox row put off", row=row.id, kind=row.kind.value, state=trouble.state.value, until=later
            )
            return _note(row, "postponed", f"{trouble.message} (next attempt at {later.isoformat()})")

    def _attempt(
        self,
        row_id: int,
        link: int | None,
        loaded: OutboxRow | None,
        ahead: dict[int, _Ahead] | None = None,
        following: OutboxRow | None = None,
    ) -> RowNote:
        """One try: claim (mark in doubt, committed), look up if it was in doubt, send if absent, record.

        ``loaded`` is the row as just read, if it was; the claim only holds if its state is unchanged.
        The claim may have been made ahead, while the client's previous call was out (``ahead``); and
        while this row's call is out, the ``following`` row of the client is claimed ahead in turn.
        """
        row = loaded
        target = Target(whmcs_client_id=link)
        if row is None or row.kind is EffectKind.ADD_PAYMENT:
            self._group.flush()  # a payment reads its invoice's WHMCS id, recorded with that row's done
            with self._uow.reading() as connection:
                row = store.get(connection, row_id)
                if row is not None:
                    target = self._target(connection, row, link)
        if row is None:
            return RowNote(row_id, 0, "", "", "skipped", "row is gone")
        if self._waiting(row, self._clock.now()) is not None:  # a retry that read the row again
            return _note(row, "skipped", "not due: claimed meanwhile, or waiting to be looked up")
        early = ahead.pop(row.id, None) if ahead is not None else None
        if early is not None:
            claimed = self._claimed_ahead(row, early)
        else:
            fence, now = self._fence, self._clock.now()
            claimed = self._group.run(lambda tx: store.claim(tx, row, fence, now, self._settle_time))
        if not claimed:
            return _note(row, "skipped", "settled, cancelled or claimed elsewhere meanwhile")
        in_doubt = row.state is OutboxState.IN_DOUBT
        progressed: list[str] = []

        def progress(remote_id: str) -> None:
            progressed.append(remote_id)
            self._record_progress(row, remote_id)

        if ahead is not None and following is not None and link is not None:
            self._claim_ahead(following, ahead)
        try:
            outcome = effects.apply(
                self._whmcs(),
                row.kind.value,
                row.reference,
                row.payload,
                target,
                in_doubt=in_doubt,
                remote_id=row.remote_id,
                options=self._options,
                progress=progress,
                duplicates=lambda found: self._report_duplicate(row, found),
            )
        except WhmcsAuthError as error:
            # Nothing was done for this row: leave it as it was for the next run, and stop everyone.
            self._leave(row, row.state, str(error))
            self._abort.set(error)
            raise _Stop() from None
        except (WhmcsBusinessError, WhmcsDuplicateError, EffectRefused) as error:
            return self._fail(row, _message(error))
        except (ValueError, TypeError) as error:  # a payload the client refuses before any call
            return self._fail(row, f"cannot send this payload: {_message(error)}")
        except WhmcsTransportError as error:
            doubt = in_doubt or error.in_doubt or bool(progressed) or row.remote_id is not None
            state = OutboxState.IN_DOUBT if doubt else OutboxState.PENDING
            self._leave(row, state, str(error))
            raise _Unsettled(state, str(error)) from None
        except WhmcsError as error:  # any other WHMCS failure: unknown, so treat it as in doubt
            self._leave(row, OutboxState.IN_DOUBT, str(error))
            raise _Unsettled(OutboxState.IN_DOUBT, str(error)) from None
        return self._finish(row, outcome)

    def _claim_ahead(self, row: OutboxRow, ahead: dict[int, _Ahead]) -> None:
        """Claim the client's next row now, committed (on SQLite, with other threads' writes) while this
        row's call is out, so its own call need not wait for a commit."""
        now = self._clock.now()
        if row.id in ahead or not self._early(row, now):  # in ahead: by an earlier try of the row before
            return
        fence = self._fence
        write = self._group.submit(lambda tx: store.claim(tx, row, fence, now, self._settle_time))
        ahead[row.id] = _Ahead(write, now)

    def _early(self, row: OutboxRow, now: datetime) -> bool:
        """Whether the row may be claimed ahead of its turn: a pending create_invoice that is due, as what
        its call needs is in the row as read."""
        return (
            row.kind is EffectKind.CREATE_INVOICE
            and row.state is OutboxState.PENDING
            and self._waiting(row, now) is None
        )

    def _claimed_ahead(self, row: OutboxRow, early: _Ahead) -> bool:
        """Whether the claim made ahead holds; one that waited too long for its call (the call could then
        outlive the settle time) is given back and the row claimed again."""
        claimed = self._group.wait(early.write)
        if claimed and self._clock.now() - early.at >= self._ahead_for:
            with self._writing() as connection:
                store.release(connection, row.id, self._fence, self._clock.now())
            raise _Unsettled(OutboxState.PENDING, "claimed ahead too long before its call; claimed again")
        return claimed

    def _release(self, ahead: dict[int, _Ahead]) -> None:
        """Give back the claims made ahead that the client's queue did not reach (a row before them did
        not go): pending again, never sent. One that cannot be given back (the lease lost) stays in doubt
        and is looked up before it is sent."""
        for row_id, early in ahead.items():
            try:
                if self._group.wait(early.write):
                    with self._writing() as connection:
                        store.release(connection, row_id, self._fence, self._clock.now())
            except Exception as error:
                log.warning("a claim made ahead stays in doubt", row=row_id, error=str(error)[:200])
        ahead.clear()

    def _target(self, connection: Connection, row: OutboxRow, link: int | None) -> Target:
        invoice_id = None
        if row.kind is EffectKind.ADD_PAYMENT and (reference := _invoice_reference(row)) is not None:
            invoice_id = remote.invoice_remote_id(connection, reference)
        return Target(whmcs_client_id=link, invoice_id=invoice_id)

    def _record_progress(self, row: OutboxRow, remote_id: str) -> None:
        """A first step's id (a draft invoice), committed before the next step's call."""
        with self._writing() as connection:
            store.record_progress(connection, row.id, remote_id, self._clock.now(), fence=self._fence)
            if row.kind is EffectKind.CREATE_INVOICE:
                _link_invoice(connection, row, remote_id)

    def _finish(self, row: OutboxRow, outcome: Outcome) -> RowNote:
        """Record the effect (and what it means in the bridge: a link, an invoice's WHMCS id) at once."""
        remote_id = outcome.remote_id or row.remote_id
        now, fence = self._clock.now(), self._fence

        def record(connection: Connection) -> str | None:
            """The effect recorded (committed with other threads' on SQLite); a problem that fails it."""
            store.mark_done(connection, row.id, remote_id, now, fence=fence)
            if row.kind is EffectKind.CREATE_INVOICE and remote_id is not None:
                _link_invoice(connection, row, remote_id)
            if row.kind is EffectKind.ADD_CLIENT and remote_id is not None:
                problem = _link_client(connection, row.client_id, int(remote_id), now)
                if problem is not None:
                    store.mark_failed(connection, row.id, problem, now, fence=fence)
                    return problem
            return None

        if row.kind is not EffectKind.ADD_CLIENT:  # nothing to wait for: committed with the next claim
            self._group.later(record, lambda error: self._unrecorded(row, error))
            return self._sent(row, outcome, remote_id)
        try:
            problem = self._group.run(record)
            if problem is not None:
                return _note(row, "failed", problem, remote_id)
        except IntegrityError:
            problem = f"WHMCS client {remote_id} is already linked to another bridge client"
            with self._writing() as connection:
                store.mark_failed(connection, row.id, problem, now, fence=self._fence)
            return _note(row, "failed", problem, remote_id)
        return self._sent(row, outcome, remote_id)

    def _sent(self, row: OutboxRow, outcome: Outcome, remote_id: str | None) -> RowNote:
        result: Result = "looked_up" if outcome.looked_up else "sent"
        log.debug("outbox row done", row=row.id, kind=row.kind.value, remote_id=remote_id, result=result)
        return _note(row, result, None, remote_id)

    def _unrecorded(self, row: OutboxRow, error: BaseException) -> None:
        """A done row whose record was refused (the lease lost meanwhile): it stays in doubt, and the
        next holder looks the effect up instead of sending it again."""
        log.error("outbox row applied but not recorded; looked up later", row=row.id, error=str(error)[:200])
        if isinstance(error, FencedOut):
            self._held().lose(f"a fenced write was refused: {error}")

    def _fail(self, row: OutboxRow, message: str) -> RowNote:
        with self._writing() as connection:
            store.mark_failed(connection, row.id, message, self._clock.now(), fence=self._fence)
        log.warning(
            "outbox row failed", row=row.id, kind=row.kind.value, reference=row.reference, error=message
        )
        return _note(row, "failed", message)

    def _leave(self, row: OutboxRow, state: OutboxState, message: str) -> None:
        with self._writing() as connection:
            store.mark_unsettled(connection, row.id, state, message, self._clock.now(), fence=self._fence)

    def _report_duplicate(self, row: OutboxRow, found: Duplicate) -> None:
        """WHMCS held the effect twice: an error for the operator, and the counter on /metrics."""
        log.error(
            "duplicate in WHMCS after an in-doubt call",
            row=row.id,
            kind=found.kind,
            reference=found.reference,
            kept=found.kept,
            cancelled=list(found.cancelled),
            left_for_operator=list(found.left),
        )
        if found.cancelled:
            self._duplicates.labels(kind=found.kind, outcome="cancelled").inc(len(found.cancelled))
        if found.left:
            self._duplicates.labels(kind=found.kind, outcome="left").inc(len(found.left))

    def _held(self) -> Lease:
        assert self._lease is not None, "only called while a run holds its lease"
        return self._lease

    @property
    def _fence(self) -> Fence:
        """What every write on a row is fenced on: this run's lease and its token."""
        lease = self._held()
        return Fence(lease.name, lease.token)

    def _backoff(self, attempts: int) -> timedelta:
        """Jittered exponential: about 30 s, 1 min, 2 min ... at most an hour between runs' tries."""
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** min(max(attempts - 1, 0), 12))
        return timedelta(seconds=ceiling * self._rng.uniform(0.5, 1.0))

    # -- dry run ---------------------------------------------------------------------------------------

    def _plan(self, client_id: int) -> list[RowNote]:
        with self._uow.reading() as connection:
            rows = store.unsettled_rows(connection, client_id)
            link = remote.whmcs_client_id(connection, client_id)
        notes = []
        now = self._clock.now()
        blocked: str | None = None
        for row in _in_order(rows, link):
            if blocked is None and row.state is OutboxState.FAILED:
                blocked = f"waits behind failed row {row.id}"
            elif blocked is None and (waiting := self._waiting(row, now)) is not None:
                blocked = f"waits: {waiting}"
            action = effects.plan(
                row.kind.value, row.payload, in_doubt=row.state is OutboxState.IN_DOUBT, options=self._options
            )
            notes.append(_note(row, "blocked" if blocked else "planned", blocked, row.remote_id, action))
        return notes

    @contextmanager
    def _writing(self) -> Iterator[Connection]:
        """A write transaction. SQLite has one writer at a time and its busy handler sleeps (1 ms, 2 ms,
        5 ms ... 100 ms) while it waits; the push's threads queue on a lock instead, handed over at once."""
        with self._write_lock, self._uow.writing() as connection:
            yield connection

    # -- WHMCS clients, one per thread -----------------------------------------------------------------

    def _whmcs(self) -> WhmcsClient:
        client: WhmcsClient | None = getattr(self._local, "client", None)
        if client is None:
            client = self._factory()
            client.guard_calls(self._held().check)
            self._local.client = client
            with self._made_lock:
                self._made.append(client)
        return client

    @contextmanager
    def _clients_closed(self) -> Iterator[None]:
        try:
            yield
        finally:
            with self._made_lock:
                made, self._made = self._made, []
            for client in made:
                client.close()
            self._local = threading.local()


@dataclass(frozen=True)
class _ClientRun:
    """One client in this run: whether this push claimed it, gave it an add_client row, and its notes."""

    client_id: int
    claimed: bool
    enqueued: bool
    notes: list[RowNote]


@dataclass(frozen=True)
class _Opened:
    """A client's opening (:meth:`OutboxPusher._open`): whether this push claimed it and gave it an
    add_client row, its rows in the order they go, its WHMCS link, whether its first row was claimed, and
    when."""

    client_id: int
    claimed: bool
    at: datetime
    enqueued: bool = False
    rows: list[OutboxRow] = field(default_factory=list)
    link: int | None = None
    first_claimed: bool = False


@dataclass(frozen=True)
class _Ahead:
    """A claim made ahead of the row's turn: the write (committed, or queued to be) and its moment."""

    write: Write[bool]
    at: datetime


class _Stop(Exception):
    """Unwinds a worker after a fatal error was recorded in the shared abort."""


def _unsent(error: BaseException) -> bool:
    """A try worth repeating in this run: its call provably never reached WHMCS."""
    return isinstance(error, _Unsettled) and error.state is OutboxState.PENDING


def _moment(instant: datetime | None) -> str:
    return instant.isoformat() if instant is not None else "an earlier run"


def _committed(value: bool) -> Write[bool]:
    """A write already committed with ``value`` (the first row's claim, made in its client's opening)."""
    return Write(lambda _tx: value, value=value, done=True)


def _identity_missing(
    connection: Connection, client_id: int, link: int | None
) -> remote.ClientIdentity | None:
    """What an add_client row for the client would carry, when the client has neither a WHMCS link
    (``link``, as just read) nor an add_client row; None otherwise."""
    known = link is not None or store.by_reference(connection, client_reference(client_id)) is not None
    return None if known else remote.client_identity(connection, client_id)


def _in_order(rows: list[OutboxRow], link: int | None) -> list[OutboxRow]:
    """Oldest first, but a client not yet in WHMCS sends its add_client row before anything else."""
    if link is not None:
        return rows
    first = [row for row in rows if row.kind is EffectKind.ADD_CLIENT]
    return first + [row for row in rows if row.kind is not EffectKind.ADD_CLIENT]


def _link_client(connection: Connection, client_id: int, whmcs_id: int, now: datetime) -> str | None:
    """Link the client to its WHMCS client; a problem message if that WHMCS client belongs to another."""
    current = remote.whmcs_client_id(connection, client_id)
    if current is not None:
        return None
    owner = remote.whmcs_link_owner(connection, whmcs_id)
    if owner is not None and owner != client_id:
        return (
            f"WHMCS client {whmcs_id} (same email) is already linked to bridge client {owner}; "
            f"link client {client_id} by hand with `billing-bridge client link` and cancel this row"
        )
    remote.link_whmcs_client(connection, client_id, whmcs_id, now)
    return None


def _link_invoice(connection: Connection, row: OutboxRow, remote_id: str) -> None:
    reference = _invoice_reference(row)
    if reference is not None:
        remote.set_invoice_remote_id(connection, reference, int(remote_id))


def _invoice_reference(row: OutboxRow) -> str | None:
    """The bridge invoice a create_invoice or add_payment row is about, read from its typed intent; None
    for another kind, or a payload the push refuses (sending it fails the row with the reason)."""
    try:
        effect = row.effect()
    except ValueError:
        return None
    if isinstance(effect, CreateInvoice | AddPayment):
        return effect.invoice_reference or None
    return None


def _note(
    row: OutboxRow,
    result: Result,
    message: str | None,
    remote_id: str | None = None,
    action: str | None = None,
) -> RowNote:
    return RowNote(row.id, row.client_id, row.kind.value, row.reference, result, message, remote_id, action)


def _message(error: Exception) -> str:
    return str(error)[:1000]
