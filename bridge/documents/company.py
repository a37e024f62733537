"""The provider's company block on an invoice (seed 001 "Company info" and the custom invoice logo).

:func:`company_block` turns a configuration's company settings into the value the invoice template
(templates/invoice.html.j2) reads as ``company``; an empty setting is left out of the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bridge.settings import ConfigurationSettings

DEFAULT_COMPANY_NAME = "Your hosting company"
"""The name printed when a configuration names none (as on invoices before the company block)."""


@dataclass(frozen=True)
class CompanyDetails:
    """Who issues the invoice and where to pay it, as the invoice prints it.

    Multi-line texts (``details``, ``address``, ``bank_details``, ``footer``) print line for line.
    ``logo_url`` is the ``file:`` URL of the logo, or None for the name only.
    """

    name: str
    details: str = ""
    address: str = ""
    vat_id: str = ""
    bank_details: str = ""
    logo_url: str | None = None
    footer: str = ""


def company_block(config: ConfigurationSettings) -> CompanyDetails:
    """The company block of the invoices of clients with this configuration."""
    return CompanyDetails(
        name=config.company_name.strip() or DEFAULT_COMPANY_NAME,
        details=config.company_details.strip(),
        address=config.company_address.strip(),
        vat_id=config.company_vat_id,
        bank_details=config.company_bank_details.strip(),
        logo_url=Path(config.company_logo).as_uri() if config.company_logo else None,
        footer=config.invoice_footer.strip(),
    )
