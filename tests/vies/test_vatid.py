"""VAT IDs are checked offline, with python-stdnum, before VIES hears of them."""

from __future__ import annotations

import pytest

from bridge.domain.tax import EU_MEMBER_STATES, VAT_PREFIX_COUNTRY
from bridge.vies import InvalidVatId, VatId, parse_vat_id
from bridge.vies.vatid import VIES_PREFIXES


class TestWritingStyles:
    @pytest.mark.parametrize(
        ("text", "compact"),
        [
            ("DE136695976", "DE136695976"),
            ("de 136 695 976", "DE136695976"),
            ("FR 40 303 265 045", "FR40303265045"),
            ("ATU57194903", "ATU57194903"),
            ("GR094259216", "EL094259216"),
        ],
    )
    def test_are_read_into_the_compact_form_vies_takes(self, text: str, compact: str) -> None:
        assert str(parse_vat_id(text)) == compact

    def test_the_clients_country_adds_a_missing_prefix(self) -> None:
        assert parse_vat_id("094259216", country="GR") == VatId("EL", "094259216")
        assert parse_vat_id("136695976", country="DE").country == "DE"


class TestRefusals:
    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("DE136695977", "fails the check digits"),
            ("DE13669597", "wrong length"),
            ("US136695976", "does not start with the prefix of an EU member state"),
            ("GB980780684", "does not start with the prefix of an EU member state"),
            ("   ", "is empty"),
        ],
    )
    def test_name_the_field_and_what_is_wrong(self, text: str, problem: str) -> None:
        with pytest.raises(InvalidVatId, match=problem) as error:
            parse_vat_id(text, field="vat_id")
        assert str(error.value).startswith("vat_id: ")
        assert error.value.exit_code == 2

    def test_a_vat_id_of_another_country_than_the_clients(self) -> None:
        with pytest.raises(InvalidVatId, match="is a VAT ID of DE, not of the client's country FR"):
            parse_vat_id("DE136695976", country="FR")

    def test_a_vat_id_cannot_be_made_around_the_checks(self) -> None:
        with pytest.raises(InvalidVatId, match="check digits"):
            VatId("DE", "136695977")


def test_the_domains_member_states_are_python_stdnums() -> None:
    """The tax domain keeps its own list (it imports nothing); this keeps it equal to the kept library's."""
    vies_countries = {VAT_PREFIX_COUNTRY.get(prefix, prefix) for prefix in VIES_PREFIXES} - {"XI"}
    assert vies_countries == EU_MEMBER_STATES
