"""The golden invoice: Nimbus Hosting GmbH bills Acme Ltd for October 2022, as the store gives it back.

The document is made by the real ``invoice_documents.stored_document`` from a stored invoice, so it has
exactly the shape the CLI prints and the template reads; the tax block comes from the real tax domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bridge.documents.invoices import stored_document
from bridge.documents.taxes import with_taxes
from bridge.domain.clients import Client
from bridge.domain.money import round_money
from bridge.domain.tax import (
    Charge,
    ClientTaxIdentity,
    ExemptionDecision,
    TaxRule,
    TaxRules,
    tax_lines,
)
from bridge.settings import ConfigurationSettings
from bridge.store.invoices import StoredInvoice, StoredLine

ZONE = ZoneInfo("Europe/Berlin")
ISSUED = datetime(2022, 10, 31, 23, 0, tzinfo=UTC)  # 2022-11-01 00:00 in Berlin
OCTOBER = (datetime(2022, 9, 30, 22, 0, tzinfo=UTC), ISSUED)
CLIENT = Client(7, "ops@acme.example", "Acme Ltd", "EUR", "default", datetime(2022, 1, 10, tzinfo=UTC))
RULES = TaxRules("DE", (TaxRule("DE", "VAT", Decimal(19)), TaxRule("FR", "VAT", Decimal(20))))

COMPANY = {
    "company_name": "Nimbus Hosting GmbH",
    "company_details": "Cloud servers and VPS hosting",
    "company_address": "Hauptstraße 5\n10115 Berlin\nGermany",
    "company_vat_id": "DE 136 695 976",
    "company_bank_details": "Berliner Volksbank eG\nIBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX",
    "invoice_footer": (
        "Nimbus Hosting GmbH · Managing director: Ada Lovelace · "
        "Amtsgericht Berlin-Charlottenburg HRB 123456 B · billing@nimbus.example"
    ),
}
LOGO = """<svg xmlns="http://www.w3.org/2000/svg" width="240" height="64" viewBox="0 0 240 64">
<rect x="0" y="4" width="56" height="56" rx="12" fill="#1d4ed8"/>
<path d="M14 42a10 10 0 0 1 2-19.8A14 14 0 0 1 43 25a9 9 0 0 1-1 17z" fill="#ffffff"/>
<text x="68" y="30" font-family="Liberation Sans" font-size="22" font-weight="bold"
 fill="#1d2430">Nimbus</text>
<text x="68" y="52" font-family="Liberation Sans" font-size="15" fill="#5b6675">Hosting</text>
</svg>
"""


@dataclass(frozen=True)
class Resource:
    """A billed resource of the golden invoice: ``quantity`` is billed hours (OpenStack) or tokens."""

    source: str
    name: str
    plan: str
    hours: str
    quantity: str
    unit_price: str
    tokens_per_hour: int | None = None
    capped: bool = False


OCTOBER_RESOURCES = (
    Resource("openstack", "web-1", "m1.small", "744", "666.666667", "0.0125", capped=True),
    Resource("openstack", "db-1", "m1.large", "227.5", "227.5", "0.10"),
    Resource("openstack", "build-runner", "m1.medium", "120", "120", "0.05"),
    Resource("openstack", "k8s-node-1", "m1.xlarge", "744", "666.666667", "0.20", capped=True),
    Resource("openstack", "k8s-node-2", "m1.xlarge", "744", "666.666667", "0.20", capped=True),
    Resource("openstack", "k8s-node-3", "m1.xlarge", "312", "312", "0.20"),
    Resource("solusvm", "vps-berlin-1", "VPS S", "744", "7440", "0.001", tokens_per_hour=10),
    Resource("solusvm", "vps-berlin-2", "VPS M", "96", "1920", "0.001", tokens_per_hour=20),
)


def many_resources(count: int) -> tuple[Resource, ...]:
    """``count`` OpenStack instances, enough to fill more than one page."""
    return tuple(
        Resource("openstack", f"worker-{n:03d}", "m1.small", str(10 + n), str(10 + n), "0.0125")
        for n in range(1, count + 1)
    )


def stored_invoice(resources: tuple[Resource, ...] = OCTOBER_RESOURCES) -> StoredInvoice:
    lines = tuple(_line(position, resource) for position, resource in enumerate(resources, start=1))
    return StoredInvoice(
        id=41,
        client_id=CLIENT.id,
        reference=f"BB-{CLIENT.id}-2022-10",
        kind="usage",
        period_start=OCTOBER[0],
        period_end=OCTOBER[1],
        currency="EUR",
        status="unpaid",
        issuer="bridge",
        series="default",
        number="2022-0041",
        proforma_number=None,
        issued_at=ISSUED,
        due_at=datetime(2022, 11, 14, 23, 0, tzinfo=UTC),
        total=sum((line.amount for line in lines), Decimal(0)),
        paid_at=None,
        paid_amount=None,
        remote_id=None,
        replaces_id=None,
        created_at=ISSUED,
        lines=lines,
    )


def _line(position: int, resource: Resource) -> StoredLine:
    quantity = Decimal(resource.quantity)
    unit_price = Decimal(resource.unit_price)
    tokens = int(quantity) if resource.source == "solusvm" else None
    return StoredLine(
        position=position,
        line_reference=f"BB-{CLIENT.id}-2022-10-{position}",
        source=resource.source,
        resource_id=f"{resource.name}-0000-4000-8000-{position:012d}",
        resource_name=resource.name,
        plan=resource.plan,
        period_start=OCTOBER[0],
        period_end=OCTOBER[1],
        hours=Decimal(resource.hours),
        billed_hours=Decimal(resource.hours) if tokens is not None else quantity,
        unit_price=unit_price,
        tokens_per_hour=resource.tokens_per_hour,
        tokens=tokens,
        amount=round_money(quantity * unit_price, "EUR"),
        capped=resource.capped,
        late=False,
        description=f"{resource.name} ({resource.plan}) October 2022",
    )


def document(
    resources: tuple[Resource, ...] = OCTOBER_RESOURCES, *, identity: ClientTaxIdentity | None = None
) -> dict[str, Any]:
    """The golden invoice document; with ``identity``, taxed by the rules for that client."""
    invoice = stored_invoice(resources)
    plain = stored_document(invoice, CLIENT, ZONE)
    if identity is None:
        return plain
    charges = [Charge(line.amount, invoice.currency) for line in invoice.lines]
    return with_taxes(plain, tax_lines(RULES, identity, charges))


GERMAN_CLIENT = ClientTaxIdentity("DE")
FRENCH_BUSINESS = ClientTaxIdentity(
    "FR",
    "FR40303265045",
    ExemptionDecision(True, "vies", datetime(2022, 1, 10, tzinfo=UTC), "EU business, VIES confirmed"),
)


def configuration(logo: Path | None = None, **overrides: str) -> ConfigurationSettings:
    values = {**COMPANY, **overrides}
    if logo is not None:
        values["company_logo"] = str(logo)
    return ConfigurationSettings.model_validate(values)


def write_logo(directory: Path) -> Path:
    logo = directory / "nimbus-logo.svg"
    logo.write_text(LOGO)
    return logo
