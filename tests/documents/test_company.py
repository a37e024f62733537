"""The company block an invoice prints comes from the client's configuration, line for line."""

from __future__ import annotations

from pathlib import Path

from bridge.documents.company import CompanyDetails, company_block
from bridge.settings import ConfigurationSettings


def test_a_configuration_without_company_settings_prints_the_placeholder_name_only() -> None:
    assert company_block(ConfigurationSettings()) == CompanyDetails(name="Your hosting company")


def test_every_company_setting_reaches_the_block(tmp_path: Path) -> None:
    logo = tmp_path / "logo.svg"
    logo.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    config = ConfigurationSettings(
        company_name=" Nimbus Hosting GmbH ",
        company_details="Cloud servers\n",
        company_address="Hauptstraße 5\n10115 Berlin\n",
        company_vat_id="DE136695976",
        company_bank_details="IBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX\n",
        company_logo=str(logo),
        invoice_footer="HRB 123456 B\n",
    )
    assert company_block(config) == CompanyDetails(
        name="Nimbus Hosting GmbH",
        details="Cloud servers",
        address="Hauptstraße 5\n10115 Berlin",
        vat_id="DE136695976",
        bank_details="IBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX",
        logo_url=logo.as_uri(),
        footer="HRB 123456 B",
    )
