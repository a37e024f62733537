"""SolusVM usage from runtime, not from polls (issue 14; docs/solusvm-runtime.md section 5).

Each SolusVM sync stores its evidence (the servers as listed, one poll per server whose status says
something, and every task and activity-log entry about the servers of the open months) and, in the same
unit of work as its watermark, rebuilds each server's timeline from everything stored
(:func:`bridge.domain.runtime.build_timeline`) and writes the runtime it supports as usage records: per
UTC clock hour, the exact part of that hour the server was billable (running), to 8 places rounded down.

So a month's records add up to the month's exact runtime, and invoicing (bridge/domain/pricing.py) bills
it as :func:`bridge.domain.runtime.month_runtime` does: the runtime rounded up to whole hours ("any
started hour billed in full"), tokens capped by the plan's ``tokens_per_month``. How often syncs run does
not matter: between two observations the state carries, so polls a day apart, hourly polls and a daemon
down for three days give the same records once a later sync has seen the server again.

Idempotent and resumable: polls and records are keyed, usage records are upserted and never lowered
(bridge/store/usage.py), and the watermark moves in the same transaction. A sync rewrites only the hours
from the first instant its new evidence can change (the previous sync, or the earliest timestamp of a
record new or changed in this one) back to the server's last evidence before it, within the open months
(the billing month before now's and now's).

:func:`runtime_split` answers "why these hours": the month's hours observed (a poll, a timed event or the
creation in the same clock hour) and inferred (carried between observations); :func:`servers_seen` gives
it for every server seen in a month (the reconciliation's SolusVM side).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Final
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.pricing import PlanRate
from bridge.domain.runtime import (
    HOUR,
    Evidence,
    Poll,
    PowerState,
    Timeline,
    build_timeline,
    month_runtime,
)
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.errors import VendorError
from bridge.solusvm import evidence as solusvm_evidence
from bridge.solusvm.client import Plan
from bridge.solusvm.events import ActivityLogEntry, ServerTask
from bridge.solusvm.runtime_reader import RuntimeReading, SolusVMRuntimeReader
from bridge.store import solusvm_evidence as store
from bridge.store import usage as usage_store
from bridge.store.unit_of_work import Tx, UnitOfWork

SOURCE: Final[Source] = "solusvm"
_PLACES: Final = Decimal("0.00000001")
_BILLED: Final = frozenset({PowerState.RUNNING})
_NO_RATE: Final = PlanRate(0)  # the split needs hours, not tokens


class SolusVMRuntime:
    """The SolusVM usage source of the sync loop (bridge/usage/sync.py): :meth:`collect` reads SolusVM
    outside any transaction, :meth:`derive` stores the evidence and returns the runtime's hours inside the
    batch's transaction, the one that moves the watermark. ``zone`` is the billing time zone (the open
    months)."""

    source: Source = "solusvm"

    def __init__(self, uow: UnitOfWork, clock: Clock, reader: SolusVMRuntimeReader, zone: ZoneInfo) -> None:
        self._uow = uow
        self._clock = clock
        self._reader = reader
        self._zone = zone
        self._reading: RuntimeReading | None = None

    def collect(self, window: Window) -> list[UsageRecord]:
        """Read SolusVM now (raises :class:`~bridge.errors.VendorError`); the records come from
        :meth:`derive`."""
        now = self._clock.now()
        with self._uow.reading() as tx:
            known = [
                server.server_id for server in store.servers_listed_since(tx, open_months(now, self._zone))
            ]
        self._reading = self._reader.read(now, known)
        return []

    def plans_seen(self) -> tuple[Plan, ...]:
        """The plans (with their token rates) of the last reading."""
        return self._reading.plans if self._reading else ()

    def derive(self, tx: Tx, window: Window) -> list[UsageRecord]:
        """Store the last reading's evidence; the hours it changes, from everything stored."""
        if self._reading is None:
            return []
        return derive_runtime(tx, self._reading, open_months(self._reading.at, self._zone))


def open_months(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of the billing month (in ``zone``) before ``now``'s: what a sync may still rewrite."""
    local = now.astimezone(zone)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (month_start - timedelta(days=1)).replace(day=1)
    return previous.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC)


def derive_runtime(tx: Tx, reading: RuntimeReading, open_start: datetime) -> list[UsageRecord]:
    """Store ``reading``'s evidence and return, per server of the open months, the runtime per hour it
    may have changed (see the module docstring)."""
    mark = usage_store.watermark(tx, SOURCE)
    previous = mark.collected_until if mark else None
    changed = _store_evidence(tx, reading, previous)
    rates = _rates(tx, reading)
    servers = store.servers_listed_since(tx, open_start)
    ids = [server.server_id for server in servers]
    since = min([previous or open_start, *changed])
    last = store.last_polls_at(tx, ids, since)
    polls = store.polls_from(tx, {server_id: last.get(server_id) for server_id in ids})
    records = store.records_of(tx, ids)
    usage: list[UsageRecord] = []
    for server in servers:
        timeline = build_timeline(_evidence(server, polls.get(server.server_id, []), records))
        start = max(open_start, _last_evidence_before(timeline, since))
        usage += hour_records(server, timeline, _hour(start), reading.at, rates)
    return usage


@dataclass(frozen=True)
class RuntimeSplit:
    """Why a SolusVM server's span bills what it bills: its exact runtime, the billed (started) hours,
    and of those the hours observed (a poll, a timed event or the creation in the same clock hour) and
    inferred (carried between observations)."""

    runtime: timedelta
    billed_hours: int
    observed_hours: int
    inferred_hours: int


def runtime_split(
    tx: Tx, server_ids: Iterable[int], start: datetime, end: datetime
) -> dict[int, RuntimeSplit]:
    """Each stored server's [start, end) as :func:`~bridge.domain.runtime.month_runtime` bills it from
    everything stored (servers never stored are left out)."""
    servers = store.servers_by_id(tx, server_ids)
    ids = list(servers)
    polls, records = store.polls_of(tx, ids), store.records_of(tx, ids)
    split: dict[int, RuntimeSplit] = {}
    for server_id, server in servers.items():
        timeline = build_timeline(_evidence(server, polls.get(server_id, []), records))
        month = month_runtime(timeline, start, end, _NO_RATE)
        split[server_id] = RuntimeSplit(
            month.runtime, month.billed_hours, month.observed_hours, month.inferred_hours
        )
    return split


def servers_seen(
    tx: Tx, start: datetime, end: datetime, *, chunk: int = 500
) -> Iterator[tuple[store.StoredServer, RuntimeSplit]]:
    """Every server the evidence shows in ``[start, end)`` (deleted ones included) with its split of the
    span, ``chunk`` servers' polls and records at a time (the reconciliation's SolusVM side)."""
    servers = store.servers_seen_between(tx, start, end)
    for first in range(0, len(servers), chunk):
        part = servers[first : first + chunk]
        splits = runtime_split(tx, [server.server_id for server in part], start, end)
        for server in part:
            yield server, splits[server.server_id]


# -- storing one sync's evidence --------------------------------------------------------------------------


def _store_evidence(tx: Tx, reading: RuntimeReading, previous: datetime | None) -> list[datetime]:
    """Save servers, polls and records; the earliest instants the new or changed records speak of."""
    at = reading.at
    store.save_servers(
        tx,
        [store.StoredServer(s.id, s.name, s.user_id, s.plan_id, s.created_at, at) for s in reading.servers],
    )
    polls = [(s.id, solusvm_evidence.poll(s, at)) for s in reading.servers]
    store.save_polls(tx, [store.StoredPoll(sid, at, p.state.value) for sid, p in polls if p is not None])
    records = [_task_record(task, previous, at) for task in reading.tasks]
    records += [_entry_record(entry, previous, at) for entry in reading.entries]
    changed = store.save_records(tx, records)
    return [min(instants) for record in changed if (instants := _instants(record))]


def _task_record(task: ServerTask, previous: datetime | None, at: datetime) -> store.StoredRecord:
    return store.StoredRecord(
        store.TASK,
        task.id,
        task.server_id,
        task.action,
        task.status,
        task.created_at,
        task.started_at,
        task.finished_at,
        previous,
        at,
    )


def _entry_record(entry: ActivityLogEntry, previous: datetime | None, at: datetime) -> store.StoredRecord:
    return store.StoredRecord(
        store.ACTIVITY,
        entry.id,
        entry.server_id,
        entry.event,
        None,
        entry.created_at,
        None,
        None,
        previous,
        at,
    )


def _instants(record: store.StoredRecord) -> list[datetime]:
    stamps = (record.created_at, record.started_at, record.finished_at, record.listed_after)
    return [stamp for stamp in stamps if stamp is not None]


def _rates(tx: Tx, reading: RuntimeReading) -> dict[int, int]:
    """tokens_per_hour by plan id: as listed now, else as last stored (a plan deleted in SolusVM)."""
    rates = {int(plan_id): rate.tokens_per_hour for plan_id, rate in usage_store.plan_rates(tx).items()}
    rates.update({plan.id: plan.tokens_per_hour for plan in reading.plans})
    return rates


# -- from stored evidence to hours ------------------------------------------------------------------------


def _evidence(
    server: store.StoredServer,
    polls: Sequence[store.StoredPoll],
    records: Mapping[int, Sequence[store.StoredRecord]],
) -> Evidence:
    own = records.get(server.server_id, [])
    tasks = [
        ServerTask(
            r.record_id, server.server_id, r.action, r.status or "", r.created_at, r.started_at, r.finished_at
        )
        for r in own
        if r.kind == store.TASK
    ]
    entries = [
        ActivityLogEntry(r.record_id, r.action, None, r.created_at, server.server_id)
        for r in own
        if r.kind == store.ACTIVITY
    ]
    return solusvm_evidence.server_evidence(
        server.server_id,
        server.created_at,
        [Poll(p.at, PowerState(p.state)) for p in polls],
        tasks,
        entries,
        listed_between={r.key: (r.listed_after, r.listed_at) for r in own},
    )


def _last_evidence_before(timeline: Timeline, since: datetime) -> datetime:
    """The last instant of evidence at or before ``since`` (the carry from it may change), else ``since``."""
    earlier = [at for at in timeline.evidence_at if at <= since]
    return earlier[-1] if earlier else since


def hour_records(
    server: store.StoredServer, timeline: Timeline, start: datetime, end: datetime, rates: Mapping[int, int]
) -> list[UsageRecord]:
    """The billable runtime in each UTC hour of [start, end), as one usage record per hour that has any."""
    per_hour: dict[datetime, timedelta] = {}
    for interval in timeline.intervals:
        if interval.state not in _BILLED:
            continue
        begin, finish = max(interval.start, start), min(interval.end, end)
        while begin < finish:
            hour = _hour(begin)
            part_end = min(hour + HOUR, finish)
            per_hour[hour] = per_hour.get(hour, timedelta(0)) + (part_end - begin)
            begin = part_end
    if not per_hour:
        return []
    tokens_per_hour = rates.get(server.plan_id)
    if tokens_per_hour is None:
        raise VendorError(
            SOURCE,
            "/api/v1/plans",
            f"server {server.server_id}: no tokens_per_hour for plan {server.plan_id}; keep the rate of "
            "every plan a server ran on, also after the plan is deleted in SolusVM",
            field="plan",
        )
    return [
        UsageRecord(
            source=SOURCE,
            resource_id=str(server.server_id),
            resource_name=server.name,
            owner=str(server.user_id),
            plan=str(server.plan_id),
            window=Window(hour, hour + HOUR),
            hours=(hours := _hours(ran)),
            tokens=hours * tokens_per_hour,
        )
        for hour, ran in sorted(per_hour.items())
    ]


def _hours(ran: timedelta) -> Decimal:
    """Exact hours to 8 places, rounded down: a month's sum never exceeds its runtime (so never an hour
    more after rounding up), and an exact hour stays exactly 1."""
    micros = Decimal(ran // timedelta(microseconds=1))
    return (micros / Decimal(3_600_000_000)).quantize(_PLACES, rounding=ROUND_DOWN)


def _hour(instant: datetime) -> datetime:
    return instant.replace(minute=0, second=0, microsecond=0)
