"""The reconciliation as one JSON document, of a stable shape (``format`` names its version).

Hours and money are strings of exact decimals (never floats); instants are ISO 8601 in UTC; only the
per-day chart figures (``summary.daily``) are numbers, rounded to 6 decimals. Keys are fixed: a value
that does not apply is ``null`` (a bucket without hours is ``"0"``), so a reader never guesses::

    {
      "format": "billing-bridge.reconciliation/1",
      "month": {"label": "2022-10", "start", "end", "zone", "as_of"},
      "defects": {"count": 1, "hours": "1", "listed": [DEFECT, ...]},      <- first: they need action
      "summary": {
        "clients": 9, "unlinked_owners": 1,
        "hours": {"collected", "billed", "not_billed": {BUCKET: hours, ...},
                  "by_source": {"openstack": {"collected", "billed", "resources",
                                              "buckets": {BUCKET: hours, ...}}, "solusvm": {...}}},
        "money": [{"currency", "invoices", "invoiced", "confirmed", "pending", "in_doubt", "failed",
                   "issued_by_bridge", "paid", "auto_invoices", "auto_invoiced", "auto_paid",
                   "replaced_invoices", "replaced_total", "usage_amount", "not_charged",
                   "ledger": [{"kind", "amount", "count"}]}],
        "attention": [{"client_id", "invoice", "reference", "push", "total", "currency"}],
        "revenue": [{"currency", "source", "plan", "amount"}],
        "daily": [{"day", "source", "collected", "billed"}]
      },
      "cloud": {"nova": null | {"projects", "matching", "nova_hours", "forgotten_hours",
                                "collected_hours", "mismatches": [...], "recovered": [...]},
                "solusvm": null | {"seen", "collected", "billed", "observed_hours", "inferred_hours",
                                   "seen_not_collected": [...], "collected_not_seen": [...],
                                   "seen_not_billed", "servers": [{"server_id", "name", "user_id",
                                   "client_id", "plan", "observed_hours", "inferred_hours",
                                   "collected_hours", "billed_hours", "not_billed": {BUCKET: hours},
                                   "reason"}]}},
      "clients": [{"client_id" (null: unlinked), "name", "currency", "owners", "hours", "billed",
                   "buckets": {BUCKET: hours}, "amount", "defects": [DEFECT], "invoices": [...],
                   "ledger": [...], "resources": [{"source", "resource_id", "resource_name", "owner",
                   "plan", "cycle_start", "cycle_end", "hours", "amount", "currency",
                   "placements": [{"bucket", "hours", "detail", "invoice", "not_charged",
                   "settings_key"}], "defects": [DEFECT]}]}]
    }

BUCKET is one of invoiced, invoiced_late, below_cap, not_yet_invoiced, held, skipped, unlinked_owner,
suspended_not_billed, removed_by_recalculation; DEFECT is {"kind": "in_no_bucket" | "in_two_buckets",
"client_id", "source", "resource_id", "resource_name", "plan", "hours", "detail"}.

:class:`JsonReportWriter` writes the clients as they come (to a spool file) and puts the summary, known
only at the end, before them: memory stays flat however many clients a month has.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any, Final, TextIO

from bridge.domain.reconciliation import (
    NOT_BILLED,
    Bucket,
    ClientResult,
    CloudCheck,
    Defect,
    Month,
    Placement,
    Report,
    ResourceResult,
    SolusVMServerCheck,
    Summary,
)
from bridge.reports.labels import amount_value, hours_value

FORMAT: Final = "billing-bridge.reconciliation/1"
ZERO: Final = Decimal(0)


def render_json(report: Report) -> str:
    """The whole document of a month held in memory."""
    document = head_document(report.summary)
    document["clients"] = [client_document(result) for result in report.clients]
    return json.dumps(document, indent=2) + "\n"


class JsonReportWriter:
    """Writes the document to ``out`` with clients streamed: ``client`` each result, then ``finish``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed by finish)
        self._clients = 0

    def client(self, result: ClientResult) -> None:
        self._spool.write(",\n    " if self._clients else "\n    ")
        self._spool.write(json.dumps(client_document(result), separators=(",", ":")))
        self._clients += 1

    def finish(self, summary: Summary) -> None:
        """The head with the summary, then the spooled clients; the spool is removed."""
        head = json.dumps(head_document(summary), indent=2)
        self._out.write(head[:-2] + ',\n  "clients": [')
        self._spool.seek(0)
        shutil.copyfileobj(self._spool, self._out)
        self._out.write("\n  ]\n}\n" if self._clients else "]\n}\n")
        self._spool.close()

    def __enter__(self) -> JsonReportWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._spool.close()


def head_document(summary: Summary) -> dict[str, Any]:
    """Everything but the clients."""
    return {
        "format": FORMAT,
        "month": _month(summary.month),
        "defects": {
            "count": summary.defect_count,
            "hours": hours_value(summary.defect_hours),
            "listed": [_defect(defect) for defect in summary.defects],
        },
        "summary": _summary(summary),
        "cloud": _cloud(summary.cloud),
    }


def client_document(result: ClientResult) -> dict[str, Any]:
    client = result.client
    buckets = result.by_bucket()
    return {
        "client_id": None if client is None else client.client_id,
        "name": result.label if client is None else client.name,
        "currency": None if client is None else client.currency,
        "owners": list(result.owners),
        "hours": hours_value(result.hours),
        "billed": hours_value(_billed(buckets)),
        "buckets": {bucket.value: hours_value(hours) for bucket, hours in buckets.items()},
        "amount": amount_value(result.amount),
        "defects": [_defect(defect) for defect in result.defects],
        "invoices": [
            {
                "invoice": invoice.label,
                "reference": invoice.reference,
                "kind": invoice.kind,
                "status": invoice.status,
                "push": invoice.push.value,
                "total": amount_value(invoice.total),
                "paid": amount_value(invoice.paid),
                "currency": invoice.currency,
                "replaced_by": invoice.replaced_by,
            }
            for invoice in result.invoices
        ],
        "ledger": [
            {
                "kind": item.kind,
                "amount": amount_value(item.amount),
                "count": item.count,
                "currency": item.currency,
            }
            for item in result.ledger
        ],
        "resources": [_resource(resource) for resource in result.resources],
    }


def _billed(buckets: dict[Bucket, Decimal]) -> Decimal:
    """The client's billed hours, from its hours per bucket (the same sum as ``ClientResult.billed_hours``,
    without a second pass over every placement)."""
    return sum((hours for bucket, hours in buckets.items() if bucket.billed), ZERO)


def _resource(resource: ResourceResult) -> dict[str, Any]:
    return {
        "source": resource.source,
        "resource_id": resource.resource_id,
        "resource_name": resource.resource_name,
        "owner": resource.owner,
        "plan": resource.plan,
        "cycle_start": _instant(resource.cycle_start),
        "cycle_end": _instant(resource.cycle_end),
        "hours": hours_value(resource.hours),
        "amount": amount_value(resource.amount),
        "currency": resource.currency,
        "placements": [_placement(placement) for placement in resource.placements],
        "defects": [_defect(defect) for defect in resource.defects],
    }


def _placement(placement: Placement) -> dict[str, Any]:
    return {
        "bucket": placement.bucket.value,
        "hours": hours_value(placement.hours),
        "detail": placement.detail,
        "invoice": placement.invoice,
        "not_charged": None if placement.not_charged is None else amount_value(placement.not_charged),
        "settings_key": placement.settings_key,
    }


def _defect(defect: Defect) -> dict[str, Any]:
    return {
        "kind": defect.kind.value,
        "client_id": defect.client_id,
        "source": defect.source,
        "resource_id": defect.resource_id,
        "resource_name": defect.resource_name,
        "plan": defect.plan,
        "hours": hours_value(defect.hours),
        "detail": defect.detail,
    }


def _month(month: Month) -> dict[str, Any]:
    return {
        "label": month.label,
        "start": _instant(month.start),
        "end": _instant(month.end),
        "zone": month.zone,
        "as_of": _instant(month.as_of),
    }


def _summary(summary: Summary) -> dict[str, Any]:
    return {
        "clients": summary.clients,
        "unlinked_owners": summary.unlinked_owners,
        "hours": {
            "collected": hours_value(summary.collected),
            "billed": hours_value(summary.billed),
            "not_billed": {bucket.value: hours_value(hours) for bucket, hours in summary.not_billed},
            "by_source": {
                source.source: {
                    "collected": hours_value(source.collected),
                    "billed": hours_value(source.billed),
                    "resources": source.resources,
                    "buckets": {bucket.value: hours_value(hours) for bucket, hours in source.buckets},
                }
                for source in summary.hours
            },
        },
        "money": [
            {
                "currency": money.currency,
                "invoices": money.invoices,
                "invoiced": amount_value(money.invoiced),
                "confirmed": amount_value(money.confirmed),
                "pending": amount_value(money.pending),
                "in_doubt": amount_value(money.in_doubt),
                "failed": amount_value(money.failed),
                "issued_by_bridge": amount_value(money.issued_by_bridge),
                "paid": amount_value(money.paid),
                "auto_invoices": money.auto_invoices,
                "auto_invoiced": amount_value(money.auto_invoiced),
                "auto_paid": amount_value(money.auto_paid),
                "replaced_invoices": money.replaced_invoices,
                "replaced_total": amount_value(money.replaced_total),
                "usage_amount": amount_value(money.usage_amount),
                "not_charged": amount_value(money.not_charged),
                "ledger": [
                    {"kind": total.kind, "amount": amount_value(total.amount), "count": total.count}
                    for total in money.ledger
                ],
            }
            for money in summary.money
        ],
        "attention": [
            {
                "client_id": item.client_id,
                "invoice": item.invoice.label,
                "reference": item.invoice.reference,
                "push": item.invoice.push.value,
                "total": amount_value(item.invoice.total),
                "currency": item.invoice.currency,
            }
            for item in summary.attention
        ],
        "revenue": [
            {
                "currency": r.currency,
                "source": r.source,
                "plan": r.plan,
                "amount": amount_value(r.amount),
            }
            for r in summary.revenue
        ],
        "daily": [
            {"day": d.day.isoformat(), "source": d.source, "collected": d.collected, "billed": d.billed}
            for d in summary.daily
        ],
    }


def _cloud(cloud: CloudCheck) -> dict[str, Any]:
    nova, solusvm = cloud.nova, cloud.solusvm
    return {
        "nova": None
        if nova is None
        else {
            "projects": nova.projects,
            "matching": nova.matching,
            "nova_hours": hours_value(nova.nova_hours),
            "forgotten_hours": hours_value(nova.forgotten_hours),
            "collected_hours": hours_value(nova.collected_hours),
            "mismatches": [
                {
                    "project_id": check.project_id,
                    "nova_hours": hours_value(check.nova_hours),
                    "forgotten_hours": hours_value(check.forgotten_hours),
                    "collected_hours": hours_value(check.collected_hours),
                    "difference": hours_value(check.difference),
                }
                for check in nova.mismatches
            ],
            "recovered": [
                {
                    "project_id": server.project_id,
                    "server_id": server.server_id,
                    "name": server.name,
                    "action": server.action,
                    "at": _instant(server.at),
                    "hours": hours_value(server.hours),
                }
                for server in nova.recovered
            ],
        },
        "solusvm": None
        if solusvm is None
        else {
            "seen": solusvm.seen,
            "collected": solusvm.collected,
            "billed": solusvm.billed,
            "observed_hours": solusvm.observed_hours,
            "inferred_hours": solusvm.inferred_hours,
            "seen_not_collected": list(solusvm.seen_not_collected),
            "collected_not_seen": list(solusvm.collected_not_seen),
            "seen_not_billed": solusvm.seen_not_billed,
            "servers": [_solusvm_server(server) for server in solusvm.servers],
        },
    }


def _solusvm_server(server: SolusVMServerCheck) -> dict[str, Any]:
    return {
        "server_id": server.server_id,
        "name": server.name,
        "user_id": server.user_id,
        "client_id": server.client_id,
        "plan": server.plan,
        "observed_hours": server.observed_hours,
        "inferred_hours": server.inferred_hours,
        "collected_hours": hours_value(server.collected_hours),
        "billed_hours": hours_value(server.billed_hours),
        "not_billed": {bucket.value: hours_value(hours) for bucket, hours in server.not_billed},
        "reason": server.reason,
    }


def not_billed_by_reason(document: dict[str, Any]) -> Iterable[tuple[str, str, Decimal]]:
    """(source, reason, hours) for every not-billed bucket of a document's summary, read back exactly."""
    for source, figures in document["summary"]["hours"]["by_source"].items():
        for bucket in NOT_BILLED:
            yield source, bucket.value, Decimal(figures["buckets"][bucket.value])


def _instant(value: datetime) -> str:
    return _iso_text(value, value.utcoffset())


@functools.lru_cache(maxsize=1024)
def _iso_text(value: datetime, offset: timedelta | None) -> str:
    """An instant's ISO 8601 text, worked out once for each instant and offset (which the text depends on
    alone): every resource of a month repeats the same few cycle bounds."""
    return value.isoformat()
