"""The company block of a configuration (seed 001 "Company info", custom invoice logo): optional, and
check-config refuses a VAT ID or a logo an invoice could not carry, naming the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.settings import ConfigurationSettings, parse_settings


def company(**values: str) -> ConfigurationSettings:
    return parse_settings({"configurations": {"default": values}}).configurations["default"]


def test_every_company_key_is_optional_and_empty_by_default() -> None:
    default = company()
    assert (
        default.company_address,
        default.company_vat_id,
        default.company_bank_details,
        default.company_logo,
        default.invoice_footer,
    ) == ("", "", "", "", "")


def test_an_eu_vat_id_is_checked_offline_and_kept_compact() -> None:
    assert company(company_vat_id="de 136 695 976").company_vat_id == "DE136695976"
    assert company(company_vat_id="GR 094259216").company_vat_id == "EL094259216"


def test_a_vat_id_outside_the_eu_is_printed_as_written() -> None:
    assert company(company_vat_id=" CHE-116.281.710 MWST ").company_vat_id == "CHE-116.281.710 MWST"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"company_vat_id": "DE136695977"},
            "configurations.default.company_vat_id: 'DE136695977' fails the check digits",
        ),
        (
            {"company_logo": "logo.png"},
            "configurations.default.company_logo: 'logo.png' is not an absolute path; give the full path",
        ),
        (
            {"company_logo": "/nowhere/logo.png"},
            "configurations.default.company_logo: '/nowhere/logo.png' is not a file; put the logo there",
        ),
    ],
)
def test_a_bad_company_value_names_the_key_and_the_fix(values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=r"^settings: ") as error:
        company(**values)
    assert message in str(error.value)


def test_a_logo_must_be_an_image_the_invoice_can_show(tmp_path: Path) -> None:
    text = tmp_path / "logo.txt"
    text.write_text("not an image")
    with pytest.raises(ConfigError, match=r"company_logo: .* is not a PNG, JPEG or SVG file"):
        company(company_logo=str(text))
    logo = tmp_path / "logo.PNG"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert company(company_logo=str(logo)).company_logo == str(logo)
