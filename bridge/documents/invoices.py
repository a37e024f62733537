"""Invoices as documents: the JSON the CLI prints and the HTML a client could receive.

Both come from one shape, whether the invoice is a fresh draft of this run or read back from the store.
Money and quantities are strings (never floats); nothing depends on the clock, so the same usage, prices
and date give byte-identical JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bridge.documents.company import company_block
from bridge.documents.taxes import stored_taxes, with_taxes
from bridge.domain.clients import Client
from bridge.domain.invoicing import Held, InvoiceLine, Skipped, draft_lines
from bridge.domain.money import minor_units, round_money
from bridge.domain.references import cycle_label_of
from bridge.services.invoicing import InvoicingRun, IssuedInvoice
from bridge.settings import ConfigurationSettings
from bridge.store.invoices import StoredInvoice

TEMPLATES = Path(__file__).parent.parent / "templates"
_html = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
SOURCE_TITLES = {"openstack": "OpenStack instances", "solusvm": "SolusVM servers", "credit": "Credit"}


def run_document(run: InvoicingRun, zone: ZoneInfo) -> dict[str, Any]:
    """What `billing-bridge invoice --json` prints (the CLI streams the same items: :func:`run_item`)."""
    return {
        "invoice_date": run.invoice_date.isoformat(),
        "dry_run": run.dry_run,
        "invoices": [run_item(issued, zone) for issued in run.issued],
        "already_invoiced": [skipped_item(item) for item in run.already_invoiced],
        "held": [held_item(item) for item in run.held],
        "skipped": [skipped_item(item) for item in run.skipped],
    }


def run_item(issued: IssuedInvoice, zone: ZoneInfo) -> dict[str, Any]:
    """One invoice of a run's document."""
    return {**issued_document(issued, zone), "preview": issued.preview}


def with_runtime(
    document: dict[str, Any], splits: Mapping[tuple[str, str], tuple[int, int]]
) -> dict[str, Any]:
    """``document`` (a :func:`run_document`) with each SolusVM line's billed hours split into
    ``observed_hours`` and ``inferred_hours`` (issue 14), keyed by (resource id, ``period_start``)."""
    for invoice in document["invoices"]:
        for group in invoice["groups"]:
            for line in group["lines"] if group["source"] == "solusvm" else ():
                split = splits.get((line["resource_id"], line["period_start"]))
                if split is not None and not line["late"]:
                    line["observed_hours"], line["inferred_hours"] = split
    return document


def issued_document(issued: IssuedInvoice, zone: ZoneInfo) -> dict[str, Any]:
    draft = issued.draft
    document = _document(
        client=issued.client,
        reference=draft.reference,
        number=issued.number,
        proforma_number=issued.proforma_number,
        status=issued.status,
        issuer=issued.issuer,
        currency=draft.currency,
        period=(draft.cycle.start, draft.cycle.end, draft.cycle.label),
        issued_at=issued.issued_at,
        due_at=issued.due_at,
        total=draft.total,
        lines=draft_lines(draft),
        zone=zone,
    )
    return document if issued.taxes is None else with_taxes(document, issued.taxes)


def stored_document(invoice: StoredInvoice, client: Client, zone: ZoneInfo) -> dict[str, Any]:
    period = None
    if invoice.period_start is not None and invoice.period_end is not None:
        label = cycle_label_of(invoice.reference, client.id)
        period = (invoice.period_start, invoice.period_end, label)
    document = _document(
        client=client,
        reference=invoice.reference,
        number=invoice.number,
        proforma_number=invoice.proforma_number,
        status=invoice.status,
        issuer=invoice.issuer,
        currency=invoice.currency,
        period=period,
        issued_at=invoice.issued_at,
        due_at=invoice.due_at,
        total=invoice.total,
        lines=invoice.lines,
        zone=zone,
    )
    if invoice.taxed:
        document = with_taxes(document, stored_taxes(invoice))
    document["paid_at"] = invoice.paid_at.isoformat() if invoice.paid_at else None
    document["paid_amount"] = _money(invoice.paid_amount, invoice.currency) if invoice.paid_amount else None
    document["remote_id"] = invoice.remote_id
    return document


def _document(
    *,
    client: Client,
    reference: str,
    number: str | None,
    proforma_number: str | None,
    status: str,
    issuer: str,
    currency: str,
    period: tuple[datetime, datetime, str] | None,
    issued_at: datetime,
    due_at: datetime,
    total: Decimal,
    lines: Sequence[InvoiceLine],
    zone: ZoneInfo,
) -> dict[str, Any]:
    return {
        "reference": reference,
        "number": number,
        "proforma_number": proforma_number,
        "status": status,
        "issuer": issuer,
        "client": {"id": client.id, "email": client.email, "name": client.name},
        "currency": currency,
        "period": None
        if period is None
        else {"start": period[0].isoformat(), "end": period[1].isoformat(), "label": period[2]},
        "date": issued_at.astimezone(zone).date().isoformat(),
        "due_date": due_at.astimezone(zone).date().isoformat(),
        "total": _money(total, currency),
        "groups": [
            {
                "source": source,
                "title": SOURCE_TITLES.get(source, source),
                "subtotal": _money(sum((line.amount for line in group), Decimal(0)), currency),
                "lines": [_line(line, currency, zone) for line in group],
            }
            for source, group in _groups(lines)
        ],
    }


def _groups(lines: Sequence[InvoiceLine]) -> list[tuple[str, list[InvoiceLine]]]:
    grouped: dict[str, list[InvoiceLine]] = {}
    for line in lines:
        grouped.setdefault(line.source, []).append(line)
    return list(grouped.items())


def _line(line: InvoiceLine, currency: str, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "resource_id": line.resource_id,
        "resource_name": line.resource_name,
        "plan": line.plan,
        "period_start": line.period_start.isoformat(),
        "period_end": line.period_end.isoformat(),
        "last_day": (line.period_end.astimezone(zone) - timedelta(microseconds=1)).date().isoformat(),
        "first_day": line.period_start.astimezone(zone).date().isoformat(),
        "hours": _quantity(line.hours),
        "billed_hours": _quantity(line.billed_hours),
        "tokens_per_hour": line.tokens_per_hour,
        "tokens": line.tokens,
        "unit_price": _price(line.unit_price, currency),
        "amount": _money(line.amount, currency),
        "capped": line.capped,
        "late": line.late,
        "description": line.description,
    }


def _money(amount: Decimal, currency: str) -> str:
    return str(round_money(amount, currency))


def _quantity(value: Decimal) -> str:
    """Without trailing zeros and never in exponent form: 744.000000 -> "744", 0.00100 -> "0.001"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _price(value: Decimal, currency: str) -> str:
    """A unit price with at least the currency's decimals (0.10, not 0.1) and no trailing zeros beyond."""
    text = _quantity(value)
    places = len(text.partition(".")[2])
    minimum = minor_units(currency)
    return text if places >= minimum else format(value.quantize(Decimal(1).scaleb(-minimum)), "f")


def skipped_item(item: Skipped) -> dict[str, Any]:
    return {"client": item.client.id, "reference": item.reference, "reason": item.reason}


def held_item(item: Held) -> dict[str, Any]:
    return {
        "client": item.client.id,
        "reference": item.reference,
        "problem": item.problem,
        "errors": [
            {
                "source": error.source,
                "resource_id": error.resource_id,
                "resource_name": error.resource_name,
                "reason": error.reason,
                "settings_key": error.settings_key,
            }
            for error in item.errors
        ],
    }


def render_html(document: dict[str, Any], config: ConfigurationSettings) -> str:
    """A clean, printable invoice (templates/invoice.html.j2), branded from the configuration."""
    template = _html.get_template("invoice.html.j2")
    return template.render(
        invoice=document,
        company_name=config.company_name or "Your hosting company",
        company_details=config.company_details,
        company=company_block(config),
        detailed=config.invoice_detail == "detailed",
    )


def stored_html(invoice: StoredInvoice, client: Client, zone: ZoneInfo, config: ConfigurationSettings) -> str:
    """A stored invoice as the printable HTML its client receives (the CLI's ``--html``, the client's
    page), branded from the client's configuration."""
    return render_html(stored_document(invoice, client, zone), config)


def stored_pdf(
    invoice: StoredInvoice, client: Client, zone: ZoneInfo, config: ConfigurationSettings
) -> bytes:
    """The stored invoice's PDF: the same bytes every time (dated the invoice's issue)."""
    from bridge.documents.pdf import render_pdf

    return render_pdf(stored_html(invoice, client, zone, config), base_url=None, created=invoice.issued_at)
