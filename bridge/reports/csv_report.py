"""The reconciliation as CSV for a spreadsheet: one row per client and bucket, or per resource and bucket.

Defects come as rows too, their bucket column reading ``defect:in_no_bucket`` or ``defect:in_two_buckets``,
so a filter on the column shows them. Hours and amounts are exact decimals; rows are written as results
arrive, so a month of any size streams through. After the clients, when the SolusVM side was asked, one
row per SolusVM server seen in the month (:func:`write_solusvm_servers`): bucket ``solusvm:billed`` or
``solusvm:not_billed``, hours billed, and in ``detail`` the hours its runtime counts, collected and billed,
and the reason for those not billed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Final, Literal, TextIO

from bridge.domain.reconciliation import (
    Bucket,
    ClientResult,
    Defect,
    ResourceResult,
    SolusVMCheck,
    SolusVMServerCheck,
)
from bridge.reports.labels import amount_value, hours_value

Grain = Literal["client", "resource"]
CLIENT_COLUMNS: Final = (
    "month",
    "client_id",
    "client",
    "source",
    "bucket",
    "hours",
    "resources",
    "not_charged",
    "invoices",
    "detail",
)
RESOURCE_COLUMNS: Final = (
    "month",
    "client_id",
    "client",
    "source",
    "resource_id",
    "resource_name",
    "owner",
    "plan",
    "cycle_start",
    "cycle_end",
    "bucket",
    "hours",
    "invoice",
    "not_charged",
    "settings_key",
    "detail",
)


def write_csv(month: str, results: Iterable[ClientResult], out: TextIO, grain: Grain = "client") -> None:
    """Every result of ``month`` as rows of ``grain``, with a header line."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CLIENT_COLUMNS if grain == "client" else RESOURCE_COLUMNS)
    rows = _client_rows if grain == "client" else _resource_rows
    for result in results:
        writer.writerows(rows(month, result))


def write_solusvm_servers(
    month: str, check: SolusVMCheck | None, out: TextIO, grain: Grain = "client"
) -> None:
    """One row per SolusVM server seen (those not billed first), in ``grain``'s columns, after the clients."""
    if check is None:
        return
    writer = csv.writer(out, lineterminator="\n")
    for server in check.servers:
        bucket = "solusvm:billed" if server.billed else "solusvm:not_billed"
        hours = hours_value(server.billed_hours)
        detail = _seen_detail(server)
        client_id = server.client_id or ""
        if grain == "client":
            writer.writerow([month, client_id, "", "solusvm", bucket, hours, "1", "", "", detail])
        else:
            who = [
                month,
                client_id,
                "",
                "solusvm",
                server.server_id,
                server.name,
                server.user_id,
                server.plan,
            ]
            writer.writerow([*who, "", "", bucket, hours, "", "", "", detail])


def _seen_detail(server: SolusVMServerCheck) -> str:
    runtime = server.observed_hours + server.inferred_hours
    seen = (
        f"server {server.server_id} {server.name} (user {server.user_id}): runtime {runtime} h "
        f"({server.observed_hours} observed, {server.inferred_hours} inferred), "
        f"collected {hours_value(server.collected_hours)} h, billed {hours_value(server.billed_hours)} h"
    )
    return f"{seen}; {server.reason}" if server.reason else seen


def _client_rows(month: str, result: ClientResult) -> Iterator[list[str]]:
    client_id, name = _who(result)
    for source in sorted({resource.source for resource in result.resources}):
        resources = [resource for resource in result.resources if resource.source == source]
        for bucket in Bucket:
            placements = [p for r in resources for p in r.placements if p.bucket is bucket]
            if not placements:
                continue
            charged = [p.not_charged for p in placements if p.not_charged is not None]
            yield [
                month,
                client_id,
                name,
                source,
                bucket.value,
                hours_value(sum((p.hours for p in placements), Decimal(0))),
                str(sum(1 for r in resources if r.hours_in(bucket))),
                amount_value(sum(charged, Decimal(0))) if charged else "",
                " ".join(sorted({p.invoice for p in placements if p.invoice})),
                "; ".join(sorted({p.detail for p in placements}))[:500],
            ]
        for defect in (d for r in resources for d in r.defects):
            yield [
                month,
                client_id,
                name,
                source,
                _defect_bucket(defect),
                hours_value(defect.hours),
                "1",
                "",
                "",
                defect.detail,
            ]


def _resource_rows(month: str, result: ClientResult) -> Iterator[list[str]]:
    client_id, name = _who(result)
    for resource in result.resources:
        first = _resource_columns(month, client_id, name, resource)
        for placement in resource.placements:
            not_charged = "" if placement.not_charged is None else amount_value(placement.not_charged)
            yield [
                *first,
                placement.bucket.value,
                hours_value(placement.hours),
                placement.invoice or "",
                not_charged,
                placement.settings_key or "",
                placement.detail,
            ]
        for defect in resource.defects:
            yield [*first, _defect_bucket(defect), hours_value(defect.hours), "", "", "", defect.detail]


def _resource_columns(month: str, client_id: str, name: str, resource: ResourceResult) -> list[str]:
    return [
        month,
        client_id,
        name,
        resource.source,
        resource.resource_id,
        resource.resource_name,
        resource.owner,
        resource.plan,
        resource.cycle_start.isoformat(),
        resource.cycle_end.isoformat(),
    ]


def _who(result: ClientResult) -> tuple[str, str]:
    if result.client is None:
        return "", result.label
    return result.client.client_id, result.client.name


def _defect_bucket(defect: Defect) -> str:
    return f"defect:{defect.kind.value}"
