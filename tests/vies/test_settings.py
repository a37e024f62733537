"""The planned [vies] settings (issue 16): https only, a requester VAT ID that passes the offline checks."""

from __future__ import annotations

import pytest

from bridge.errors import ConfigError
from bridge.settings import parse_model
from bridge.settings_base import Section
from bridge.vies import VatId
from bridge.vies.settings import ViesSettings


class Planned(Section):
    """The settings root as it will hold [vies] once issue 16 wires it."""

    vies: ViesSettings = ViesSettings()


def parse_settings(raw: dict[str, object]) -> Planned:
    return parse_model(Planned, raw)


def test_the_default_is_the_eu_service_without_a_requester() -> None:
    vies = parse_settings({}).vies
    assert vies.url == "https://ec.europa.eu/taxation_customs/vies/rest-api"
    assert vies.requester() is None


def test_the_requester_is_kept_in_compact_form() -> None:
    vies = parse_settings({"vies": {"requester_vat_id": "de 136 695 976"}}).vies
    assert vies.requester_vat_id == "DE136695976"
    assert vies.requester() == VatId("DE", "136695976")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"requester_vat_id": "DE136695977"}, "vies.requester_vat_id: 'DE136695977' fails the check digits"),
        (
            {"url": "http://vies.example.com/rest-api"},
            "vies.url: 'http://vies.example.com/rest-api' uses plain http",
        ),
        ({"url": "ftp://vies.example.com"}, "vies.url: 'ftp://vies.example.com' is not an http(s) URL"),
        ({"attempts": 0}, "vies.attempts: Input should be greater than or equal to 1"),
        ({"read_timeout_seconds": 0}, "vies.read_timeout_seconds: Input should be greater than 0"),
    ],
)
def test_bad_values_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        parse_settings({"vies": raw})
    assert error.value.exit_code == 2


def test_a_local_test_server_may_use_http() -> None:
    assert parse_settings({"vies": {"url": "http://127.0.0.1:8080/"}}).vies.url == "http://127.0.0.1:8080"
