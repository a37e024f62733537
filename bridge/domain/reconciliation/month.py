"""A month, streamed: clients reconciled one at a time, only the month's totals kept.

:class:`Reconciler` is what the CLI, the daemon job and the bench drive: ``add`` each client's evidence,
write the :class:`ClientResult` it returns wherever it goes, and ask for the :class:`Summary` at the end.
:func:`reconcile` keeps every client in memory as well, for tests and small installations.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from bridge.domain.reconciliation.clouds import ServerTally, nova_check, solusvm_check
from bridge.domain.reconciliation.evidence import (
    ZERO,
    ClientEvidence,
    CloudEvidence,
    Collected,
    InvoiceDocument,
    Month,
    PushState,
)
from bridge.domain.reconciliation.placing import place_client
from bridge.domain.reconciliation.results import (
    LISTED_AT_MOST,
    Bucket,
    ClientResult,
    CloudCheck,
    CurrencyMoney,
    DayHours,
    Defect,
    InvoiceAttention,
    LedgerTotal,
    NovaCheck,
    Report,
    ResourceResult,
    Revenue,
    SolusVMCheck,
    SourceHours,
    Summary,
)
from bridge.domain.usage import SOURCES, as_source


class Reconciler:
    """Reconciles a month one client at a time and keeps only the month's totals.

    ``add`` returns each client's result for the caller to write out (JSON, CSV, a table) and forget;
    ``summary`` gives the totals once every client went through.
    """

    def __init__(self, month: Month, cloud: CloudEvidence | None = None) -> None:
        self.month = month
        self._cloud = cloud or CloudEvidence()
        self._days = _DayGrid(month)
        self._buckets: dict[tuple[str, Bucket], Decimal] = defaultdict(lambda: ZERO)
        self._collected: dict[str, Decimal] = defaultdict(lambda: ZERO)
        self._resources: dict[str, int] = defaultdict(int)
        self._clients = 0
        self._unlinked = 0
        self._defects: list[Defect] = []
        self._defect_count = 0
        self._defect_hours = ZERO
        self._money = _MoneyTally()
        self._revenue: dict[tuple[str, str, str], Decimal] = defaultdict(lambda: ZERO)
        self._nova_collected: dict[str, Decimal] = defaultdict(lambda: ZERO)
        self._solusvm: dict[str, ServerTally] = {}

    def add(self, evidence: ClientEvidence) -> ClientResult:
        result, rows = place_client(self.month, evidence)
        if evidence.client is None:
            self._unlinked += 1
        else:
            self._clients += 1
        client_id = None if evidence.client is None else evidence.client.client_id
        for resource in result.resources:
            key = (resource.source, resource.resource_id, resource.plan, resource.cycle_start)
            self._count(resource, rows.get(key, ()), client_id)
        self._money.add(result)
        return result

    def _count(self, resource: ResourceResult, rows: Sequence[Collected], client_id: str | None) -> None:
        source = resource.source
        self._collected[source] += resource.hours
        self._resources[source] += 1
        billed = ZERO
        for placement in resource.placements:
            self._buckets[(source, placement.bucket)] += placement.hours
            if placement.bucket.billed:
                billed += placement.hours
        if resource.currency is not None and resource.amount:
            self._revenue[(resource.currency, source, resource.plan)] += resource.amount
        self._days.add(source, rows, float(billed))
        for defect in resource.defects:
            self._defect_count += 1
            self._defect_hours += defect.hours
            if len(self._defects) < LISTED_AT_MOST:
                self._defects.append(defect)
        if source == "openstack" and self._cloud.nova_projects is not None:
            self._nova_collected[resource.owner] += resource.hours
        if source == "solusvm" and self._cloud.solusvm_servers is not None:
            tally = self._solusvm.get(resource.resource_id)
            if tally is None:
                tally = self._solusvm[resource.resource_id] = ServerTally(client_id)
            tally.add(resource)

    def summary(self) -> Summary:
        hours = tuple(
            SourceHours(
                source,
                self._collected[source],
                tuple((bucket, self._buckets[(source, bucket)]) for bucket in Bucket),
                self._resources[source],
            )
            for source in SOURCES
        )
        return Summary(
            month=self.month,
            clients=self._clients,
            unlinked_owners=self._unlinked,
            hours=hours,
            defect_count=self._defect_count,
            defect_hours=self._defect_hours,
            defects=tuple(self._defects),
            money=self._money.totals(),
            attention=tuple(self._money.attention),
            revenue=tuple(
                Revenue(currency, as_source(source), plan, amount)
                for (currency, source, plan), amount in sorted(self._revenue.items())
            ),
            daily=self._days.days(),
            cloud=CloudCheck(self._nova_check(), self._solusvm_check()),
        )

    def _nova_check(self) -> NovaCheck | None:
        projects = self._cloud.nova_projects
        if projects is None:
            return None
        return nova_check(self.month, projects, self._cloud.nova_servers, self._nova_collected)

    def _solusvm_check(self) -> SolusVMCheck | None:
        servers = self._cloud.solusvm_servers
        if servers is None:
            return None
        return solusvm_check(servers, self._solusvm)


def reconcile(month: Month, clients: Iterable[ClientEvidence], cloud: CloudEvidence | None = None) -> Report:
    """The whole month in memory: every client's result and the summary."""
    reconciler = Reconciler(month, cloud)
    results = tuple(reconciler.add(evidence) for evidence in clients)
    return Report(reconciler.summary(), results)


@dataclass
class _CurrencyTally:
    invoices: int = 0
    invoiced: Decimal = ZERO
    by_push: dict[PushState, Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    paid: Decimal = ZERO
    auto_invoices: int = 0
    auto_invoiced: Decimal = ZERO
    auto_paid: Decimal = ZERO
    replaced: int = 0
    replaced_total: Decimal = ZERO
    usage_amount: Decimal = ZERO
    not_charged: Decimal = ZERO
    ledger: dict[str, tuple[Decimal, int]] = field(default_factory=dict)


class _MoneyTally:
    def __init__(self) -> None:
        self._currencies: dict[str, _CurrencyTally] = defaultdict(_CurrencyTally)
        self.attention: list[InvoiceAttention] = []

    def add(self, result: ClientResult) -> None:
        client_id = "" if result.client is None else result.client.client_id
        for invoice in result.invoices:
            self._invoice(client_id, invoice)
        for resource in result.resources:
            if resource.currency is not None:
                tally = self._currencies[resource.currency]
                tally.usage_amount += resource.amount
                for placement in resource.placements:
                    if placement.not_charged is not None:
                        tally.not_charged += placement.not_charged
        for movement in result.ledger:
            tally = self._currencies[movement.currency]
            amount, count = tally.ledger.get(movement.kind, (ZERO, 0))
            tally.ledger[movement.kind] = (amount + movement.amount, count + movement.count)

    def _invoice(self, client_id: str, invoice: InvoiceDocument) -> None:
        tally = self._currencies[invoice.currency]
        if not invoice.standing:
            if invoice.replaced_by is not None:
                tally.replaced += 1
                tally.replaced_total += invoice.total
            return
        tally.invoices += 1
        tally.invoiced += invoice.total
        tally.by_push[invoice.push] += invoice.total
        tally.paid += invoice.paid
        if invoice.kind == "auto":
            tally.auto_invoices += 1
            tally.auto_invoiced += invoice.total
            tally.auto_paid += invoice.paid
        if invoice.push in (PushState.IN_DOUBT, PushState.FAILED) and len(self.attention) < LISTED_AT_MOST:
            self.attention.append(InvoiceAttention(client_id, invoice))

    def totals(self) -> tuple[CurrencyMoney, ...]:
        return tuple(
            CurrencyMoney(
                currency=currency,
                invoices=tally.invoices,
                invoiced=tally.invoiced,
                confirmed=tally.by_push[PushState.PUSHED],
                pending=tally.by_push[PushState.PENDING],
                in_doubt=tally.by_push[PushState.IN_DOUBT],
                failed=tally.by_push[PushState.FAILED],
                issued_by_bridge=tally.by_push[PushState.ISSUED_BY_BRIDGE],
                paid=tally.paid,
                auto_invoices=tally.auto_invoices,
                auto_invoiced=tally.auto_invoiced,
                auto_paid=tally.auto_paid,
                replaced_invoices=tally.replaced,
                replaced_total=tally.replaced_total,
                usage_amount=tally.usage_amount,
                not_charged=tally.not_charged,
                ledger=tuple(
                    LedgerTotal(kind, amount, count) for kind, (amount, count) in sorted(tally.ledger.items())
                ),
            )
            for currency, tally in sorted(self._currencies.items())
        )


class _DayGrid:
    """Hours per local day and source, from rows spread evenly over their spans.

    Each row adds its rate (hours per second) where it starts and takes it away where it ends; the days
    are integrated once at the end over the few distinct instants, so a month-long row costs the same as
    an hourly one.
    """

    def __init__(self, month: Month) -> None:
        self._month = month
        self._bounds = [start.timestamp() for start in month.day_starts()]
        self._collected: dict[str, dict[float, float]] = {source: defaultdict(float) for source in SOURCES}
        self._billed: dict[str, dict[float, float]] = {source: defaultdict(float) for source in SOURCES}

    def add(self, source: str, rows: Sequence[Collected], billed: float) -> None:
        """One resource's rows; its ``billed`` hours fill them in time order (a cap frees the last hours)."""
        ordered = rows if len(rows) == 1 else sorted(rows, key=lambda row: row.start)
        for row in ordered:
            hours = float(row.hours)
            start, end = row.start.timestamp(), row.end.timestamp()
            if end <= start or hours <= 0:
                continue
            rate = hours / (end - start)
            _step(self._collected[source], start, end, rate)
            if billed > 0:
                _step(self._billed[source], start, end, rate * min(1.0, billed / hours))
                billed -= hours

    def days(self) -> tuple[DayHours, ...]:
        days = self._month.days()
        result: list[DayHours] = []
        for source in SOURCES:
            collected = _integrate(self._collected[source], self._bounds)
            billed = _integrate(self._billed[source], self._bounds)
            result.extend(
                DayHours(day, source, round(c, 6), round(b, 6))
                for day, c, b in zip(days, collected, billed, strict=True)
            )
        return tuple(result)


def _step(changes: dict[float, float], start: float, end: float, rate: float) -> None:
    changes[start] += rate
    changes[end] -= rate


def _integrate(changes: dict[float, float], bounds: Sequence[float]) -> list[float]:
    """The integral of the step function given by rate ``changes`` over each [bounds[i], bounds[i+1])."""
    totals = [0.0] * (len(bounds) - 1)
    instants = sorted(set(changes) | set(bounds))
    rate = 0.0
    for here, there in itertools.pairwise(instants):
        rate += changes.get(here, 0.0)
        if rate <= 1e-12 or there <= bounds[0] or here >= bounds[-1]:
            continue
        _spread(totals, bounds, max(here, bounds[0]), min(there, bounds[-1]), rate)
    return totals


def _spread(totals: list[float], bounds: Sequence[float], start: float, end: float, rate: float) -> None:
    index = bisect.bisect_right(bounds, start) - 1
    while start < end and index < len(totals):
        stop = min(end, bounds[index + 1])
        totals[index] += (stop - start) * rate
        start = stop
        index += 1
