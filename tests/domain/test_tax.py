"""Taxes on an invoice, the seed 001 exemption flow and the 48-hour rule, with plain values.

The provider's home country is DE (VAT 19 %); France has VAT 20 %; the US has no rule. Prices are
tax-exclusive: tax is added on top of the subtotal.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bridge.domain.money import tax_amount
from bridge.domain.tax import (
    BY_VIES,
    Charge,
    ClientTaxIdentity,
    ExemptionDecision,
    InvoicePurpose,
    TaxRule,
    TaxRules,
    VatIdStanding,
    ViesObservation,
    ViesOutcome,
    credit_cost,
    decide_exemption,
    is_taxed,
    net_of_tax,
    tax_lines,
    vat_id_standing,
)
from tests.domain.builders import utc

DE_VAT_ID = "DE136695976"
FR_VAT_ID = "FR40303265045"
SIGN_UP = utc(2024, 3, 1, 9)
CONFIRMED = VatIdStanding(True, "VIES confirmed it at 2024-03-01 09:00 UTC")


def rules(*, auto_eu_exemption: bool = True, tax_on_add_credit: bool = False) -> TaxRules:
    return TaxRules(
        home_country="DE",
        rules=(TaxRule("DE", "VAT", Decimal("19")), TaxRule("FR", "TVA", Decimal("20"))),
        tax_on_add_credit=tax_on_add_credit,
        auto_eu_exemption=auto_eu_exemption,
    )


def eur(*amounts: str) -> list[Charge]:
    return [Charge(Decimal(amount), "EUR") for amount in amounts]


def client(
    country: str, vat_id: str | None = None, *, tax_rules: TaxRules | None = None
) -> ClientTaxIdentity:
    """A client as the seed 001 flow leaves it at sign-up, VIES having confirmed any VAT ID."""
    identity = ClientTaxIdentity(country, vat_id)
    verdict = decide_exemption(tax_rules or rules(), identity, CONFIRMED)
    return ClientTaxIdentity(
        country, vat_id, ExemptionDecision(verdict.exempt, BY_VIES, SIGN_UP, verdict.why)
    )


class TestTheIssueNumbers:
    def test_a_german_client_with_a_valid_vat_id_is_taxed_at_home(self) -> None:
        taxes = tax_lines(rules(), client("DE", DE_VAT_ID), eur("100.00"))
        assert (taxes.subtotal, taxes.tax, taxes.total) == (
            Decimal("100.00"),
            Decimal("19.00"),
            Decimal("119.00"),
        )
        assert [(line.label, line.base, line.amount) for line in taxes.lines] == [
            ("VAT 19 %", Decimal("100.00"), Decimal("19.00"))
        ]
        assert taxes.reverse_charge is None

    def test_a_french_business_with_a_valid_vat_id_pays_no_tax_under_reverse_charge(self) -> None:
        taxes = tax_lines(rules(), client("FR", FR_VAT_ID), eur("100.00"))
        assert (taxes.subtotal, taxes.tax, taxes.total) == (
            Decimal("100.00"),
            Decimal("0.00"),
            Decimal("100.00"),
        )
        assert taxes.lines == ()
        assert taxes.reverse_charge is not None
        assert "Reverse charge" in taxes.reverse_charge and FR_VAT_ID in taxes.reverse_charge

    def test_the_same_french_client_without_a_vat_id_pays_french_vat(self) -> None:
        taxes = tax_lines(rules(), client("FR"), eur("100.00"))
        assert taxes.total == Decimal("120.00")
        assert [line.label for line in taxes.lines] == ["TVA 20 %"]
        assert taxes.reverse_charge is None

    def test_a_us_client_has_no_rule_and_no_tax_line(self) -> None:
        taxes = tax_lines(rules(), client("US"), eur("100.00"))
        assert (taxes.total, taxes.lines, taxes.why) == (Decimal("100.00"), (), "no tax rule for US")

    def test_an_add_credit_invoice_carries_tax_only_when_the_option_is_on(self) -> None:
        german = client("DE", DE_VAT_ID)
        on = tax_lines(rules(tax_on_add_credit=True), german, eur("50.00"), purpose=InvoicePurpose.ADD_CREDIT)
        off = tax_lines(
            rules(tax_on_add_credit=False), german, eur("50.00"), purpose=InvoicePurpose.ADD_CREDIT
        )
        assert on.total == Decimal("59.50")
        assert off.total == Decimal("50.00") and off.lines == ()

    def test_usage_invoices_are_taxed_whatever_the_add_credit_option(self) -> None:
        taxes = tax_lines(rules(tax_on_add_credit=False), client("DE"), eur("50.00"))
        assert taxes.total == Decimal("59.50")


class TestRoundingOncePerRate:
    def test_three_lines_of_a_third_of_a_cent_more_than_33_cents(self) -> None:
        """Three usage lines each worth 0.333 EUR unrounded, at 19 %.

        Invoice lines are rounded once each in money.py before tax, so each line reads 0.33:
        subtotal = 0.33 + 0.33 + 0.33 = 0.99
        tax      = 0.99 x 19 % = 0.1881 -> rounded once, half up, to 0.19
        total    = 0.99 + 0.19 = 1.18
        Taxing each line instead would give 0.33 x 19 % = 0.0627 -> 0.06, three times = 0.18.
        """
        lines = eur("0.33", "0.33", "0.33")
        taxes = tax_lines(rules(), client("DE"), lines)
        assert (taxes.subtotal, taxes.tax, taxes.total) == (Decimal("0.99"), Decimal("0.19"), Decimal("1.18"))
        per_line = sum(tax_amount(line.amount, Decimal("19"), "EUR") for line in lines)
        assert per_line == Decimal("0.18")

    def test_an_unrounded_line_is_refused_rather_than_rounded_twice(self) -> None:
        with pytest.raises(ValueError, match=r"0\.333 is not rounded"):
            tax_lines(rules(), client("DE"), eur("0.333"))

    def test_half_a_cent_of_tax_rounds_up(self) -> None:
        # 0.50 x 19 % = 0.095 -> 0.10 (half up, not to even)
        assert tax_lines(rules(), client("DE"), eur("0.50")).tax == Decimal("0.10")

    def test_yen_tax_has_no_decimals(self) -> None:
        taxes = tax_lines(rules(), client("DE"), [Charge(Decimal("1050"), "JPY")])
        assert (taxes.tax, taxes.total) == (Decimal("200"), Decimal("1250"))  # 199.5 -> 200

    def test_lines_in_two_currencies_are_refused(self) -> None:
        with pytest.raises(ValueError, match="EUR, USD"):
            tax_lines(rules(), client("DE"), [Charge(Decimal("1.00"), "EUR"), Charge(Decimal("1.00"), "USD")])

    def test_an_invoice_without_lines_names_its_currency(self) -> None:
        taxes = tax_lines(rules(), client("DE"), [], currency="EUR")
        assert (taxes.subtotal, taxes.tax, taxes.total) == (Decimal("0.00"), Decimal("0.00"), Decimal("0.00"))


class TestTheExemptionFlow:
    """Seed 001: "Auto set EU tax exemption", "Your home country", "VAT ID validation flow"."""

    def verdict(self, country: str, vat_id: str | None, **options: bool) -> tuple[bool, str]:
        result = decide_exemption(rules(**options), ClientTaxIdentity(country, vat_id), CONFIRMED)
        return result.exempt, result.why

    def test_an_eu_business_with_a_confirmed_vat_id_is_exempt(self) -> None:
        exempt, why = self.verdict("FR", FR_VAT_ID)
        assert exempt and "reverse charge" in why

    def test_the_home_country_is_always_taxed(self) -> None:
        assert self.verdict("DE", DE_VAT_ID) == (False, "clients of the home country DE are always taxed")

    def test_nobody_is_exempt_while_auto_exemption_is_off(self) -> None:
        assert self.verdict("FR", FR_VAT_ID, auto_eu_exemption=False) == (
            False,
            "auto EU tax exemption is off",
        )

    def test_a_client_outside_the_eu_is_never_marked_exempt_its_tax_follows_the_rules(self) -> None:
        exempt, why = self.verdict("CH", "CHE123456789")
        assert not exempt and "outside the EU" in why

    def test_an_eu_client_without_a_vat_id_is_taxed(self) -> None:
        assert self.verdict("FR", None) == (False, "no VAT ID")

    def test_a_vat_id_of_another_member_state_does_not_count(self) -> None:
        exempt, why = self.verdict("FR", DE_VAT_ID)
        assert not exempt and "not of the client's country FR" in why

    def test_a_greek_vat_id_carries_the_prefix_el(self) -> None:
        exempt, _ = self.verdict("GR", "EL094259216")
        assert exempt

    def test_a_vat_id_vies_did_not_confirm_is_taxed_and_says_why(self) -> None:
        standing = VatIdStanding(False, "VIES answered invalid at 2024-03-01 09:00 UTC")
        verdict = decide_exemption(rules(), ClientTaxIdentity("FR", FR_VAT_ID), standing)
        assert not verdict.exempt and "VIES answered invalid" in verdict.why

    def test_staff_may_exempt_anyone_and_the_invoice_says_who(self) -> None:
        decision = ExemptionDecision(True, "alice", SIGN_UP, "charity, certificate 42")
        taxes = tax_lines(rules(), ClientTaxIdentity("DE", None, decision), eur("100.00"))
        assert taxes.total == Decimal("100.00") and taxes.reverse_charge is None
        assert "charity, certificate 42" in taxes.why and "alice" in taxes.why


class TestTheWhmcsTaxedFlag:
    def test_items_are_taxed_unless_the_client_is_exempt_or_has_no_rule(self) -> None:
        assert is_taxed(rules(), client("DE", DE_VAT_ID))
        assert is_taxed(rules(), client("FR"))
        assert not is_taxed(rules(), client("FR", FR_VAT_ID))
        assert not is_taxed(rules(), client("US"))

    def test_add_credit_items_follow_the_add_credit_option(self) -> None:
        german = client("DE")
        assert not is_taxed(rules(tax_on_add_credit=False), german, InvoicePurpose.ADD_CREDIT)
        assert is_taxed(rules(tax_on_add_credit=True), german, InvoicePurpose.ADD_CREDIT)


def seen(hours_after_sign_up: float, outcome: ViesOutcome) -> ViesObservation:
    return ViesObservation(SIGN_UP + timedelta(hours=hours_after_sign_up), outcome)


class TestTheFortyEightHourRule:
    """VIES unavailable for 48 consecutive hours: "Tax exempt" becomes false (seed 001)."""

    def standing_at(self, hours: float, *history: ViesObservation) -> VatIdStanding:
        return vat_id_standing(history, SIGN_UP + timedelta(hours=hours))

    def test_47_hours_of_ms_unavailable_leave_the_exemption(self) -> None:
        history = [seen(0, ViesOutcome.VALID)] + [seen(h, ViesOutcome.UNAVAILABLE) for h in range(24, 72, 6)]
        standing = self.standing_at(71, *history)  # unavailable since hour 24: 47 h
        assert standing.confirmed
        assert "47 of 48 h" in standing.why
        verdict = decide_exemption(rules(), ClientTaxIdentity("FR", FR_VAT_ID), standing)
        assert verdict.exempt

    def test_at_48_hours_the_exemption_ends_and_the_next_invoice_is_taxed(self) -> None:
        history = [seen(0, ViesOutcome.VALID)] + [seen(h, ViesOutcome.UNAVAILABLE) for h in range(24, 73, 6)]
        standing = self.standing_at(72, *history)
        assert not standing.confirmed
        assert (
            standing.why
            == "VIES has been unavailable for 48 h in a row since 2024-03-02 09:00 UTC (limit 48 h)"
        )
        verdict = decide_exemption(rules(), ClientTaxIdentity("FR", FR_VAT_ID), standing)
        identity = ClientTaxIdentity(
            "FR",
            FR_VAT_ID,
            ExemptionDecision(verdict.exempt, BY_VIES, SIGN_UP + timedelta(hours=72), verdict.why),
        )
        assert tax_lines(rules(), identity, eur("100.00")).total == Decimal("120.00")

    def test_a_valid_answer_in_between_restarts_the_count(self) -> None:
        history = [
            seen(0, ViesOutcome.VALID),
            seen(10, ViesOutcome.UNAVAILABLE),
            seen(40, ViesOutcome.VALID),
            seen(50, ViesOutcome.UNAVAILABLE),
        ]
        assert self.standing_at(97, *history).confirmed  # unavailable since hour 50: 47 h
        assert not self.standing_at(98, *history).confirmed

    def test_an_invalid_answer_ends_it_at_once(self) -> None:
        standing = self.standing_at(1, seen(0, ViesOutcome.VALID), seen(1, ViesOutcome.INVALID))
        assert standing == VatIdStanding(False, "VIES answered invalid at 2024-03-01 10:00 UTC")

    def test_unavailable_after_an_invalid_answer_keeps_it_invalid(self) -> None:
        standing = self.standing_at(5, seen(0, ViesOutcome.INVALID), seen(4, ViesOutcome.UNAVAILABLE))
        assert not standing.confirmed and "answered invalid" in standing.why

    def test_a_vat_id_vies_never_answered_for_is_not_confirmed(self) -> None:
        assert self.standing_at(1, seen(0, ViesOutcome.UNAVAILABLE)) == VatIdStanding(
            False, "VIES has not answered since 2024-03-01 09:00 UTC"
        )
        assert not self.standing_at(1).confirmed

    def test_the_order_of_the_history_does_not_matter(self) -> None:
        history = [
            seen(30, ViesOutcome.UNAVAILABLE),
            seen(0, ViesOutcome.VALID),
            seen(20, ViesOutcome.UNAVAILABLE),
        ]
        assert self.standing_at(67, *history).confirmed  # since hour 20: 47 h
        assert not self.standing_at(68, *history).confirmed

    def test_an_answer_from_the_future_is_refused(self) -> None:
        with pytest.raises(ValueError, match="later than now"):
            self.standing_at(1, seen(2, ViesOutcome.VALID))


class TestTheRules:
    def test_a_home_country_without_a_rule_is_refused(self) -> None:
        with pytest.raises(ValueError, match="home country AT has no tax rule"):
            TaxRules("AT", (TaxRule("DE", "VAT", Decimal("19")),))

    @pytest.mark.parametrize("rate", ["-1", "100", "150"])
    def test_a_rate_outside_0_to_100_is_refused(self, rate: str) -> None:
        with pytest.raises(ValueError, match=r"\[0, 100\)"):
            TaxRule("DE", "VAT", Decimal(rate))

    def test_a_zero_rate_is_a_rule_that_taxes_nothing(self) -> None:
        zero = TaxRules("DE", (TaxRule("DE", "VAT", Decimal("0")),))
        taxes = tax_lines(zero, ClientTaxIdentity("DE"), eur("10.00"))
        assert (taxes.tax, [line.label for line in taxes.lines]) == (Decimal("0.00"), ["VAT 0 %"])
        assert not is_taxed(zero, ClientTaxIdentity("DE"))

    def test_a_fractional_rate_reads_as_written(self) -> None:
        assert TaxRule("LU", "TVA", Decimal("17.0")).label == "TVA 17 %"
        assert TaxRule("CH", "MWST", Decimal("8.1")).label == "MWST 8.1 %"

    def test_a_lowercase_country_is_refused(self) -> None:
        with pytest.raises(ValueError, match="ISO 3166-1"):
            ClientTaxIdentity("de")


class TestCreditNetOfTax:
    """Credit is counted net of tax (as Fleio does): what a payment adds, what paying from credit takes."""

    def test_paying_an_add_credit_invoice_of_59_50_adds_its_net_50_00(self) -> None:
        assert net_of_tax(Decimal("59.50"), Decimal("50.00"), Decimal("59.50"), "EUR") == Decimal("50.00")

    def test_a_part_payment_adds_its_net_share_rounded_once(self) -> None:
        # 20.00 of 59.50 is 33.61 % of the invoice: 16.806... net, rounded half up to 16.81
        assert net_of_tax(Decimal("20.00"), Decimal("50.00"), Decimal("59.50"), "EUR") == Decimal("16.81")

    def test_an_invoice_without_tax_adds_what_was_paid(self) -> None:
        assert net_of_tax(Decimal("70.00"), Decimal("50.00"), Decimal("50.00"), "EUR") == Decimal("70.00")

    def test_credit_pays_the_net_when_the_tax_was_paid_as_the_credit_was_bought(self) -> None:
        assert credit_cost(Decimal("100.00"), Decimal("119.00"), rules(tax_on_add_credit=True)) == Decimal(
            "100.00"
        )

    def test_credit_pays_the_total_when_the_credit_was_bought_without_tax(self) -> None:
        assert credit_cost(Decimal("100.00"), Decimal("119.00"), rules()) == Decimal("119.00")
        assert credit_cost(Decimal("100.00"), Decimal("100.00"), None) == Decimal("100.00")
