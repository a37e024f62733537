"""The planned [taxes] settings (issue 16): the model's rules, and a settings file refusing the section until
taxes are applied to invoices (a setting acts or is refused)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.errors import ConfigError
from bridge.settings import TaxSettings, parse_model, parse_settings
from bridge.settings_base import Section

GERMANY = {"name": "VAT", "rate": "19"}


class Planned(Section):
    """The settings root as it will hold [taxes] once issue 16 wires it."""

    taxes: TaxSettings = TaxSettings()


def parse_taxes(raw: dict[str, object]) -> TaxSettings:
    return parse_model(Planned, raw).taxes


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


def test_check_config_refuses_the_section_until_taxes_act(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\n'
        '[taxes]\nenabled = true\nhome_country = "DE"\n[taxes.rules.DE]\nname = "VAT"\nrate = "19"\n'
    )
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "check-config"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "taxes: not accepted yet: invoices carry no tax until tax support is wired in" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ConfigError, match="vies: not accepted yet"):
        parse_settings({"vies": {"attempts": 3}})
