"""The [taxes] and [vies] settings (issue 16): what check-config accepts and refuses, and the rules the
domain gets from them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.domain.tax import TaxRule, TaxRules
from bridge.errors import ConfigError
from bridge.settings import Configurations, TaxSettings, parse_settings

GERMANY = {"name": "VAT", "rate": "19"}


def parse_taxes(raw: dict[str, object]) -> TaxSettings:
    return parse_settings(raw).taxes


def taxes(**values: object) -> dict[str, object]:
    return {"taxes": {"enabled": True, "home_country": "DE", "rules": {"DE": GERMANY}, **values}}


def test_taxes_are_off_by_default() -> None:
    section = parse_taxes({})
    assert not section.enabled
    assert section.rules == {}


def test_a_complete_section_is_read_with_exact_rates() -> None:
    section = parse_taxes(
        taxes(
            rules={"de": GERMANY, "CH": {"name": "MWST", "rate": Decimal("8.1")}},
            tax_on_add_credit_invoices=True,
            auto_eu_exemption=True,
        )
    )
    assert set(section.rules) == {"DE", "CH"}
    assert section.rules["CH"].rate == Decimal("8.1")
    assert section.rules["DE"].rate == Decimal("19")
    assert section.tax_on_add_credit_invoices and section.auto_eu_exemption


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (taxes(rules={"DE": {"name": "VAT", "rate": "100"}}), "taxes.rules.DE.rate: 100 is outside [0, 100)"),
        (taxes(rules={"DE": {"name": "VAT", "rate": "-1"}}), "taxes.rules.DE.rate: -1 is outside [0, 100)"),
        (
            taxes(rules={"DE": GERMANY, "XX": GERMANY}),
            "taxes.rules: [taxes.rules.XX]: 'XX' is not a country code",
        ),
        (taxes(rules={"DE": GERMANY, "EL": GERMANY}), "Greece is GR (EL is only its VAT prefix)"),
        (
            taxes(home_country="UK"),
            "taxes.home_country: 'UK' is not a country code; the United Kingdom is GB",
        ),
        (taxes(home_country="AT"), "taxes.home_country 'AT' has no tax rule; add [taxes.rules.AT]"),
        (taxes(home_country=""), "taxes.home_country is required when taxes.enabled = true"),
        (taxes(rules={"DE": GERMANY, "de": GERMANY}), "[taxes.rules.de] repeats the rule of DE"),
        (taxes(rules={"DE": {"name": " ", "rate": "19"}}), "taxes.rules.DE.name: is blank"),
        (taxes(rules={"DE": {"rate": "19"}}), "taxes.rules.DE.name: required but missing"),
        (
            taxes(revalidation_interval_hours=72),
            "taxes.revalidation_interval_hours: Input should be less than",
        ),
        (taxes(vat="19"), "taxes.vat: unknown key"),
    ],
)
def test_check_config_refuses_rules_that_cannot_be_applied(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_taxes(raw)
    assert message in str(error.value)


def test_a_home_country_without_a_rule_is_refused_even_while_taxes_are_off() -> None:
    with pytest.raises(ConfigError, match="has no tax rule"):
        parse_taxes({"taxes": {"home_country": "DE"}})


def test_every_configuration_follows_the_rules_once_taxes_are_on() -> None:
    settings = parse_settings({**taxes(tax_on_add_credit_invoices=True), "configurations": {"eu": {}}})
    expected = TaxRules("DE", (TaxRule("DE", "VAT", Decimal("19")),), tax_on_add_credit=True)
    configurations = Configurations.from_settings(settings)
    assert configurations.of("default").taxes == expected
    assert configurations.of("eu").taxes == expected


def test_with_taxes_off_no_configuration_has_rules() -> None:
    settings = parse_settings({"taxes": {"home_country": "DE", "rules": {"DE": GERMANY}}})
    assert Configurations.from_settings(settings).of("default").taxes is None


def write_settings(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n{body}')
    return path


def test_check_config_accepts_taxes_and_vies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_settings(
        tmp_path,
        '[taxes]\nenabled = true\nhome_country = "DE"\n[taxes.rules.DE]\nname = "VAT"\nrate = "19"\n'
        '[vies]\nrequester_vat_id = "DE136695976"\nattempts = 2\n',
    )
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "check-config"])
    assert exited.value.code == 0, capsys.readouterr().err


def test_check_config_refuses_a_rate_of_100_percent_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_settings(
        tmp_path,
        '[taxes]\nenabled = true\nhome_country = "DE"\n[taxes.rules.DE]\nname = "VAT"\nrate = "100"\n',
    )
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "check-config"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "taxes.rules.DE.rate: 100 is outside [0, 100)" in err
    assert len(err.strip().splitlines()) == 1


def test_a_requester_vat_id_failing_its_check_digits_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"vies\.requester_vat_id: 'DE136695977' fails the check digits"):
        parse_settings({"vies": {"requester_vat_id": "DE136695977"}})
