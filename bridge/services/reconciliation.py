"""The reconciliation of a month, as a read model: the store's evidence, streamed client by client into
the domain's :class:`~bridge.domain.reconciliation.Reconciler`, and out to whatever writes the report.

Read-only: every read goes through ``uow.reading()``. Two things the store does not keep come through
ports, built by the composition root:

- **the invoicing run's decisions** (:class:`CycleDecisions`): which ended cycles were held (no price:
  the settings key to add) or skipped (a zero invoice, a cut-off). Only clients with hours in an ended
  cycle that no invoice line bills are asked about: :class:`InvoicingDecisions` runs invoicing as a dry
  run (nothing written, rolled back) for each of them, as of the month's end and as of the day the
  evidence is read, which covers the cycles ending in the month and those crossing its end;
- **Nova's own figures** (:class:`CloudFigures`): its hours per project for the month;
  :class:`NoCloudFigures` where it is not asked.

The SolusVM servers seen in the month come from the evidence the SolusVM sync stored (servers kept after
deletion, polls, tasks and activity: :meth:`ReconciliationService.solusvm_seen`), not from the live API.

A client's cycles are the ones invoicing draws (:meth:`ReconciliationService._plans`): anchored on its first
service, following its recorded schedule switches, its invoiced spans as they were invoiced.

Clients come in id order, :data:`CLIENTS_PER_CHUNK` at a time (a few queries per chunk), then the owners
linked to no client. An owner linked to no client whose resource an invoice line of the month bills stays
with that client (it was unlinked after its hours were invoiced).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.clients import Client
from bridge.domain.cycles import BillingCycle, CycleSchedule, cycle_at, cycle_timeline
from bridge.domain.cycles import Span as Invoiced
from bridge.domain.invoicing import BEFORE_CUTOFF, Held
from bridge.domain.reconciliation import (
    BilledLine,
    ClientEvidence,
    ClientRef,
    ClientResult,
    CloudEvidence,
    Collected,
    HeldCycle,
    Month,
    NovaMonth,
    NovaServerHistory,
    NovaServerHours,
    OpenCycle,
    Reconciler,
    SkippedCycle,
    SkipReason,
    SolusVMServerSeen,
    Summary,
    Unpriced,
)
from bridge.domain.references import cycle_label_of
from bridge.domain.usage import as_source
from bridge.services.cycles import owners_of, read_schedules
from bridge.services.invoicing import InvoicingRun
from bridge.settings import Configurations
from bridge.store import reconciliation as store
from bridge.store.invoices import usage_spans_of_clients
from bridge.store.reconciliation import Owner, Span
from bridge.store.unit_of_work import Tx, UnitOfWork
from bridge.usage.solusvm_runtime import servers_seen

CLIENTS_PER_CHUNK = 500
ZERO = Decimal(0)
NOVA_TOLERANCE_HOURS = Decimal("0.01")
"""Nova counts hours as floats: a server within 36 seconds of the collected hours is not looked into."""


# -- ports --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """The invoicing run held (no ``skip_reason``) or skipped the invoice ``reference``
    (``BB-<client>-<cycle label>``): what it could not price, or why it made none."""

    client_id: int
    reference: str
    unpriced: tuple[Unpriced, ...] = ()
    problem: str | None = None
    skip_reason: SkipReason | None = None
    detail: str = ""


class CycleDecisions(Protocol):
    """What the invoicing run decides for the ended cycles the store has no invoice for."""

    def decisions(self, month: Month, client_ids: Sequence[int]) -> Iterable[Decision]: ...


class CloudFigures(Protocol):
    """Nova's own figures for the month: a port the fleio adapter implements, built in bootstrap. (SolusVM
    publishes no usage: its side is read from the evidence the sync stored, not from the live API.)"""

    def nova_month(self, month: Month) -> NovaMonth | None:
        """Nova's figure for the month in one (paged) query; None when not asked (or not settled)."""
        ...

    def nova_history(self, server: NovaServerHours) -> NovaServerHistory | None:
        """The server's instance actions (``os-instance-actions``), to recover the hours Nova forgot."""
        ...


class NoCloudFigures:
    """Nova not asked: the report's cloud side says so."""

    def nova_month(self, month: Month) -> NovaMonth | None:
        return None

    def nova_history(self, server: NovaServerHours) -> NovaServerHistory | None:
        return None


DryRun = Callable[[date, str], InvoicingRun]
"""Runs invoicing as a dry run as of a date for one client (the invoicing service's ``run``)."""


class InvoicingDecisions:
    """Held and skipped cycles from invoicing dry runs (nothing written), client by client, as of the
    month's end and as of the day the evidence is read: the cycles ending in the month and those crossing
    its end."""

    def __init__(self, dry_run: DryRun, zone: ZoneInfo) -> None:
        self._dry_run = dry_run
        self._zone = zone

    def decisions(self, month: Month, client_ids: Sequence[int]) -> Iterator[Decision]:
        days = sorted(
            {
                self._day(min(month.end, month.as_of)),
                self._day(min(month.as_of, month.end + timedelta(days=31))),
            }
        )
        seen: set[str] = set()
        for client_id, day in ((client_id, day) for client_id in client_ids for day in days):
            run = self._dry_run(day, str(client_id))
            for held in run.held:
                if held.reference not in seen:
                    seen.add(held.reference)
                    yield _held(held)
            for skipped in run.skipped:
                if skipped.reference not in seen:
                    seen.add(skipped.reference)
                    reason = (
                        SkipReason.CUT_OFF if skipped.reason == BEFORE_CUTOFF else SkipReason.ZERO_INVOICE
                    )
                    yield Decision(
                        skipped.client.id, skipped.reference, skip_reason=reason, detail=skipped.reason
                    )

    def _day(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()


def _held(held: Held) -> Decision:
    unpriced = tuple(
        Unpriced(as_source(error.source), error.resource_id, error.reason, error.settings_key)
        for error in held.errors
    )
    return Decision(held.client.id, held.reference, unpriced, held.problem)


# -- the service --------------------------------------------------------------------------------------------


class ClientsSource(Protocol):
    def get(self, reference: str) -> Client: ...

    def chunks(self, size: int) -> Iterator[list[Client]]: ...


@dataclass(frozen=True)
class _Timeline:
    """A client's cycles overlapping the month, and its cycle open when the evidence is read."""

    cycles: tuple[BillingCycle, ...]
    current: OpenCycle


@dataclass(frozen=True)
class _Plan:
    """One client's cycles overlapping the month, the owners billed to it, and its open cycle."""

    client: Client
    cycles: tuple[BillingCycle, ...]
    owners: tuple[Owner, ...]
    current: OpenCycle


class ReconciliationService:
    """Reads a month's evidence and reconciles it, client by client."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        clients: ClientsSource,
        *,
        zone: ZoneInfo,
        configurations: Configurations,
        decisions: CycleDecisions,
        cloud: CloudFigures | None = None,
        solusvm: bool = False,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._clients = clients
        self._zone = zone
        self._configurations = configurations
        self._decisions = decisions
        self._cloud = cloud or NoCloudFigures()
        self._solusvm = solusvm

    def month(self, label: str) -> Month:
        """The calendar month ``label`` (``2022-10``) read now; a ValueError names the expected form."""
        return Month.calendar(label, self._zone.key, self._clock.now())

    def recent_months(self, count: int) -> list[Month]:
        """The ``count`` calendar months before the current one in the billing zone, oldest first (the
        daemon job reconciles last month and the one before: late usage and WHMCS's confirmations still
        change a month after it ended)."""
        first = self._clock.now().astimezone(self._zone).date().replace(day=1)
        months: list[Month] = []
        for _ in range(count):
            first = (first - timedelta(days=1)).replace(day=1)
            months.insert(0, self.month(f"{first.year:04d}-{first.month:02d}"))
        return months

    def reconcile(
        self,
        month: Month,
        *,
        client_ref: str | None = None,
        each: Callable[[ClientResult], None] = lambda _: None,
    ) -> Summary:
        """Reconcile the month (one client with ``client_ref``), handing each client's result to ``each``."""
        reconciler, evidence = self.begin(month, client_ref=client_ref)
        for one in evidence:
            each(reconciler.add(one))
        return reconciler.summary()

    def begin(
        self, month: Month, *, client_ref: str | None = None, cloud: bool = True
    ) -> tuple[Reconciler, Iterator[ClientEvidence]]:
        """A reconciler for the month and its evidence, client by client, for the caller to drive (so a
        writer can pull the results as they come). ``cloud``: ask the clouds (the whole month only)."""
        figures = self.cloud(month) if cloud and client_ref is None else CloudEvidence()
        return Reconciler(month, figures), self.evidence(month, client_ref=client_ref)

    def cloud(self, month: Month) -> CloudEvidence:
        """What the clouds say: Nova's month per project, with the instance actions of each server whose
        Nova hours fall short of the hours collected, and the SolusVM servers seen."""
        nova = self._cloud.nova_month(month)
        histories: list[NovaServerHistory] = []
        if nova is not None:
            with self._uow.reading() as tx:
                collected = store.hours_by_resource(tx, "openstack", month)
            short = [
                server
                for server in nova.servers
                if collected.get(server.server_id, ZERO) - server.hours > NOVA_TOLERANCE_HOURS
            ]
            histories = [history for server in short if (history := self._cloud.nova_history(server))]
        return CloudEvidence(
            nova_projects=nova.projects if nova is not None else None,
            nova_servers=tuple(histories),
            solusvm_servers=self.solusvm_seen(month) if self._solusvm else None,
        )

    def solusvm_seen(self, month: Month) -> tuple[SolusVMServerSeen, ...]:
        """Every SolusVM server the stored evidence shows in the month (deleted ones included), with the
        hours its runtime rule counts, observed and inferred: not the live API, which forgets deleted
        servers and says nothing of the past."""
        with self._uow.reading() as tx:
            seen = list(servers_seen(tx, month.start, month.end))
            clients = store.linked_clients(tx, "solusvm", {str(server.user_id) for server, _ in seen})
        return tuple(
            SolusVMServerSeen(
                str(server.server_id),
                str(server.user_id),
                server.name,
                split.observed_hours,
                split.inferred_hours,
                plan=str(server.plan_id),
                client_id=_client_id(clients.get(str(server.user_id))),
            )
            for server, split in seen
        )

    def evidence(self, month: Month, *, client_ref: str | None = None) -> Iterator[ClientEvidence]:
        """Every client's evidence in id order, then the owners linked to no client (all clients only)."""
        with self._uow.reading() as tx:
            unlinked = store.unlinked_owners(tx, month)
            adopted = store.billing_clients_of(tx, unlinked, month)
        kept: dict[int, list[Owner]] = defaultdict(list)
        for owner, client_id in adopted.items():
            kept[client_id].append(owner)
        chunks = [[self._clients.get(client_ref)]] if client_ref else self._clients.chunks(CLIENTS_PER_CHUNK)
        for chunk in chunks:
            yield from self._chunk(self._plans(chunk, month, kept), month)
        if client_ref is None:
            yield from self._unlinked([owner for owner in unlinked if owner not in adopted], month)

    def _plans(
        self, clients: Sequence[Client], month: Month, kept: Mapping[int, Sequence[Owner]]
    ) -> list[_Plan]:
        """Each client's cycles overlapping the month, on the timeline invoicing draws (one rule for both):
        its schedule from :func:`~bridge.services.cycles.read_schedules` (anchored on its first service,
        with its recorded switches between calendar months and anniversaries) and the spans its standing
        usage invoices cover (:func:`~bridge.domain.cycles.cycle_timeline`)."""
        ids = [client.id for client in clients]
        with self._uow.reading() as tx:
            schedules = read_schedules(tx, clients, self._configurations, self._zone, now=self._clock.now())
            invoiced = usage_spans_of_clients(tx, ids)
        timelines: dict[tuple[CycleSchedule, tuple[Invoiced, ...]], _Timeline] = {}
        plans: list[_Plan] = []
        for client in clients:
            schedule = schedules[client.id].schedule
            spans = tuple(invoiced.get(client.id, ()))
            timeline = timelines.get((schedule, spans))
            if timeline is None:
                timeline = timelines[(schedule, spans)] = _timeline(schedule, spans, month)
            owners = (*owners_of(client), *kept.get(client.id, ()))
            plans.append(_Plan(client, timeline.cycles, owners, timeline.current))
        return plans

    def _chunk(self, plans: list[_Plan], month: Month) -> Iterator[ClientEvidence]:
        ids = [plan.client.id for plan in plans]
        with self._uow.reading() as tx:
            unbilled = {plan.client.id for plan in plans if not self._bills_suspended_hours(plan.client)}
            suspended = {
                client_id: spans
                for client_id, spans in store.suspensions(tx, ids, month).items()
                if client_id in unbilled
            }
            collected = self._collected(tx, plans, month, suspended.keys())
            lines = store.billed_lines(tx, ids, month)
            documents = store.invoice_documents(tx, ids, month)
            ledger = store.ledger_movements(tx, ids, month)
        undecided = [plan.client.id for plan in plans if _unbilled(plan, month, collected, lines)]
        decided: dict[int, list[Decision]] = defaultdict(list)
        for decision in self._decisions.decisions(month, undecided) if undecided else ():
            decided[decision.client_id].append(decision)
        for plan in plans:
            client = plan.client
            held, skipped = _decided(plan, decided.get(client.id, ()))
            yield ClientEvidence(
                ClientRef(str(client.id), client.name, client.currency),
                collected=tuple(collected.get(client.id, ())),
                lines=tuple(lines.get(client.id, ())),
                invoices=tuple(documents.get(client.id, ())),
                held=held,
                skipped=skipped,
                suspended=suspended.get(client.id, ()),
                current_cycle=plan.current,
                ledger=tuple(ledger.get(client.id, ())),
            )

    def _bills_suspended_hours(self, client: Client) -> bool:
        """Whether the client's configuration invoices its suspended hours: then they are not a bucket."""
        return self._configurations.of(client.configuration).bill_suspended_hours

    def _collected(
        self, tx: Tx, plans: list[_Plan], month: Month, suspended: Iterable[int]
    ) -> dict[int, list[Collected]]:
        """One query per distinct cycle (and per suspended client), each row handed to its owner's client."""
        windowed = set(suspended)
        groups: dict[tuple[Span, bool], list[_Plan]] = defaultdict(list)
        for plan in plans:
            for cycle in plan.cycles:
                groups[(Span(cycle.start, cycle.end), plan.client.id in windowed)].append(plan)
        found: dict[int, list[Collected]] = defaultdict(list)
        for (span, windows), members in groups.items():
            client_of = {owner: plan.client.id for plan in members for owner in plan.owners}
            for row in store.collected_in_cycle(tx, client_of.keys(), span, month, windows=windows):
                found[client_of[(row.source, row.owner)]].append(row)
        return found

    def _unlinked(self, owners: Sequence[Owner], month: Month) -> Iterator[ClientEvidence]:
        span = Span(month.start, month.end)
        for start in range(0, len(owners), CLIENTS_PER_CHUNK):
            chunk = owners[start : start + CLIENTS_PER_CHUNK]
            with self._uow.reading() as tx:
                rows = store.collected_in_cycle(tx, chunk, span, month)
            by_owner: dict[Owner, list[Collected]] = defaultdict(list)
            for row in rows:
                by_owner[(row.source, row.owner)].append(row)
            for owner in chunk:
                yield ClientEvidence(None, collected=tuple(by_owner[owner]))


def _client_id(client_id: int | None) -> str | None:
    return None if client_id is None else str(client_id)


def _timeline(schedule: CycleSchedule, spans: Sequence[Invoiced], month: Month) -> _Timeline:
    """The client's cycles overlapping the month, and its cycle open when the evidence is read."""
    cycles = cycle_timeline(schedule, spans, month.end, since=month.start)
    now = cycle_at(schedule, spans, month.as_of)
    return _Timeline(cycles, OpenCycle(now.start, now.end))


def _unbilled(
    plan: _Plan,
    month: Month,
    collected: Mapping[int, Sequence[Collected]],
    lines: Mapping[int, Sequence[BilledLine]],
) -> bool:
    """Whether the client has hours in an ended cycle that no invoice line bills: only then can the
    invoicing run have held or skipped it."""
    billed = {line.period_start for line in lines.get(plan.client.id, ())}
    return any(
        row.cycle_end <= month.as_of
        and row.cycle_start not in billed
        and (row.hours or row.hours_outside_month)
        for row in collected.get(plan.client.id, ())
    )


def _decided(
    plan: _Plan, decisions: Sequence[Decision]
) -> tuple[tuple[HeldCycle, ...], tuple[SkippedCycle, ...]]:
    """The decisions about the client's cycles of the month, each with its cycle's start."""
    if not decisions:
        return (), ()
    starts = {cycle.label: cycle.start for cycle in plan.cycles}
    held: list[HeldCycle] = []
    skipped: list[SkippedCycle] = []
    for decision in decisions:
        start = starts.get(cycle_label_of(decision.reference, plan.client.id))
        if start is None:
            continue
        if decision.skip_reason is None:
            held.append(HeldCycle(start, decision.reference, decision.unpriced, decision.problem))
        else:
            skipped.append(SkippedCycle(start, decision.reference, decision.skip_reason, decision.detail))
    return tuple(held), tuple(skipped)
