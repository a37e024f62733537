"""Reconciliation of a month: 100,000 clients and 300,000 VMs, reconciled and written as JSON.

    .venv/bin/python bench/reconcile.py [--clients 100000] [--vms-per-client 3]

The evidence is generated as the store queries would stream it (bridge/domain/reconciliation/evidence.py):
per client one aggregate per resource-month, its invoice lines, its invoice and a ledger movement, with
the exceptions a real month has: every 50th VM on SolusVM under its token cap, every 7th capped by the
billable-seconds limit, every 100th client held for a missing price, every 150th with a zero invoice
skipped, every 80th suspended mid-month (its windows as two rows), every 60th with late usage waiting
for the next invoice, and every 200th owner linked to no client. Nova's monthly figure per project and
the SolusVM servers seen come along for the cloud side.

Printed beside each other, in one run: the wall time and peak RSS of generating the evidence, reconciling
it (domain.reconciliation.Reconciler) and writing the JSON (reports.json_report.JsonReportWriter); and a
floor: generating the same evidence and summing its hours per client in a plain loop.

Targets (issue 18): <= 120 s and <= 500 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bridge.domain.reconciliation import (
    BilledLine,
    ClientEvidence,
    ClientRef,
    CloudEvidence,
    Collected,
    HeldCycle,
    InvoiceDocument,
    LedgerMovement,
    Month,
    NovaProjectHours,
    OpenCycle,
    PushState,
    Reconciler,
    SkippedCycle,
    SkipReason,
    SolusVMServerSeen,
    Summary,
    SuspendedSpan,
    Unpriced,
)
from bridge.reports.json_report import JsonReportWriter

OCT = datetime(2022, 10, 1, tzinfo=UTC)
NOV = datetime(2022, 11, 1, tzinfo=UTC)
DEC = datetime(2022, 12, 1, tzinfo=UTC)
MONTH = Month.calendar("2022-10", "UTC", NOV + timedelta(days=1))
SUSPENDED_AT = datetime(2022, 10, 21, tzinfo=UTC)
PRICE = Decimal("0.0125")
TOKEN = Decimal("0.001")
CAP = Decimal("666.666667")
TARGET_SECONDS, TARGET_RSS_MB = 120, 500


def evidence(clients: int, vms: int) -> Iterator[ClientEvidence]:
    """Every client's month, one at a time, as the store would stream it."""
    vm = 0
    for number in range(1, clients + 1):
        rows: list[Collected] = []
        lines: list[BilledLine] = []
        suspended = number % 80 == 0
        for _ in range(vms):
            vm += 1
            rows.extend(_rows(vm, number, suspended))
            if number % 100 and number % 150:
                lines.append(_line(vm, number, suspended))
        total = sum((line.amount for line in lines), Decimal(0))
        label = f"INV-2022-{number:06d}"
        yield ClientEvidence(
            client=None if number % 200 == 0 else ClientRef(str(number), f"Client {number}", "EUR"),
            collected=tuple(rows),
            lines=tuple(lines) if number % 200 else (),
            invoices=(
                InvoiceDocument(
                    label, f"BB-{number}-2022-10", "usage", "unpaid", "EUR", total, PushState.PUSHED
                ),
            )
            if lines and number % 200
            else (),
            held=(
                HeldCycle(
                    OCT,
                    f"BB-{number}-2022-10",
                    (Unpriced("openstack", f"vm-{vm}", "no price", 'pricing.flavors."x"'),),
                ),
            )
            if number % 100 == 0
            else (),
            skipped=(SkippedCycle(OCT, f"BB-{number}-2022-10", SkipReason.ZERO_INVOICE),)
            if number % 150 == 0
            else (),
            suspended=(SuspendedSpan(SUSPENDED_AT),) if suspended else (),
            current_cycle=OpenCycle(NOV, DEC),
            ledger=(LedgerMovement("payment", "EUR", total),) if lines and number % 200 else (),
        )


def _rows(vm: int, client: int, suspended: bool) -> list[Collected]:
    source, plan = ("solusvm", "7") if vm % 50 == 0 else ("openstack", "m1.small")
    hours = Decimal(744)
    if suspended:
        return [
            Collected(
                source, f"vm-{vm}", f"vm-{vm}", f"p-{client}", plan, OCT, NOV, OCT, SUSPENDED_AT, Decimal(480)
            ),
            Collected(
                source, f"vm-{vm}", f"vm-{vm}", f"p-{client}", plan, OCT, NOV, SUSPENDED_AT, NOV, Decimal(264)
            ),
        ]
    return [Collected(source, f"vm-{vm}", f"vm-{vm}", f"p-{client}", plan, OCT, NOV, OCT, NOV, hours)]


def _line(vm: int, client: int, suspended: bool) -> BilledLine:
    hours = Decimal(480) if suspended else Decimal(744) if client % 60 else Decimal(724)
    label = f"INV-2022-{client:06d}"
    if vm % 50 == 0:
        return BilledLine(
            label, True, f"solusvm:vm-{vm}:7:2022-10", "solusvm", f"vm-{vm}", "7", OCT, NOV, hours, hours, TOKEN,
            Decimal("5.00"), "EUR", capped=True, tokens_per_hour=7, tokens=5000,
        )  # fmt: skip
    capped = vm % 7 == 0 and hours == 744
    billed = CAP if capped else hours
    return BilledLine(
        label, True, f"openstack:vm-{vm}:m1.small:2022-10", "openstack", f"vm-{vm}", "m1.small", OCT, NOV, hours,
        billed, PRICE, (billed * PRICE).quantize(Decimal("0.01")), "EUR", capped=capped,
    )  # fmt: skip


def clouds(clients: int, vms: int) -> CloudEvidence:
    return CloudEvidence(
        nova_projects=tuple(NovaProjectHours(f"p-{n}", Decimal(744 * vms)) for n in range(1, clients + 1)),
        solusvm_servers=tuple(
            SolusVMServerSeen(f"vm-{vm}", "u", f"vm-{vm}", 744, 0) for vm in range(50, clients * vms + 1, 50)
        ),
    )


def reconcile_month(clients: int, vms: int, out_path: str) -> tuple[float, Summary]:
    """Wall seconds and the summary of generating, reconciling and writing the month as JSON."""
    began = time.perf_counter()
    reconciler = Reconciler(MONTH, clouds(clients, vms))
    with open(out_path, "w", encoding="utf-8") as out, JsonReportWriter(out) as writer:
        for client in evidence(clients, vms):
            writer.client(reconciler.add(client))
        summary = reconciler.summary()
        writer.finish(summary)
    return time.perf_counter() - began, summary


def floor(clients: int, vms: int) -> float:
    """Generating the same evidence and summing its hours per client: the least any reconciliation costs."""
    began = time.perf_counter()
    clouds(clients, vms)
    totals: dict[str, Decimal] = {}
    for client in evidence(clients, vms):
        key = client.client.client_id if client.client else "unlinked"
        totals[key] = sum((row.hours for row in client.collected), totals.get(key, Decimal(0)))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--vms-per-client", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reconciliation-2022-10.json")
        elapsed, summary = reconcile_month(args.clients, args.vms_per_client, path)
        size_mb = os.path.getsize(path) / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    plain = floor(args.clients, args.vms_per_client)
    vms = args.clients * args.vms_per_client
    reconciled = summary.clients + summary.unlinked_owners
    print(
        f"evidence:   {args.clients:,} clients, {vms:,} VMs ({reconciled:,} reconciled, {summary.defect_count} defects)"
    )
    reasons = ", ".join(f"{bucket.value} {hours:,.0f}" for bucket, hours in summary.not_billed if hours)
    print(
        f"hours:      {summary.collected:,.0f} collected, {summary.billed:,.0f} billed; not billed: {reasons}"
    )
    verdict = "OK" if elapsed <= TARGET_SECONDS else "OVER"
    print(
        f"reconcile:  {elapsed:.1f} s with JSON ({size_mb:.0f} MB) (target <= {TARGET_SECONDS} s): {verdict}"
    )
    print(
        f"peak RSS:   {peak_mb:.0f} MB (target <= {TARGET_RSS_MB} MB): {'OK' if peak_mb <= TARGET_RSS_MB else 'OVER'}"
    )
    print(
        f"floor:      {plain:.1f} s to generate the same evidence and sum its hours = {elapsed / plain:.1f}x"
    )


if __name__ == "__main__":
    main()
