"""Money and the one rounding rule, as a client reading an invoice would check them."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.money import Money, minor_units, money_sum, parse_money, round_money, tax_amount


class TestTheRoundingRule:
    def test_half_a_cent_rounds_up_not_to_even(self) -> None:
        assert round_money(Decimal("0.125"), "EUR") == Decimal("0.13")
        assert Decimal("0.125").quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN) == Decimal("0.12")

    def test_the_amount_a_float_gets_wrong_is_right(self) -> None:
        # round(2.675, 2) == 2.67 with floats; the exact decimal rounds half up to 2.68.
        assert round_money(Decimal("2.675"), "USD") == Decimal("2.68")

    def test_just_below_half_a_cent_rounds_down(self) -> None:
        assert round_money(Decimal("0.12499999"), "EUR") == Decimal("0.12")

    def test_a_negative_half_goes_away_from_zero(self) -> None:
        assert round_money(Decimal("-0.005"), "EUR") == Decimal("-0.01")

    def test_yen_have_no_decimals(self) -> None:
        assert round_money(Decimal("100.5"), "JPY") == Decimal("101")
        assert minor_units("JPY") == 0

    def test_dinars_have_three_decimals(self) -> None:
        assert round_money(Decimal("1.2345"), "KWD") == Decimal("1.235")
        assert round_money(Decimal("0.0005"), "BHD") == Decimal("0.001")

    def test_other_currencies_have_two_decimals(self) -> None:
        assert minor_units("EUR") == minor_units("CHF") == minor_units("NZD") == 2

    def test_a_rounded_amount_keeps_its_cents_visible(self) -> None:
        assert str(round_money(Decimal("5"), "EUR")) == "5.00"

    def test_a_float_is_never_rounded_as_money(self) -> None:
        with pytest.raises(TypeError, match="never a float"):
            round_money(0.125, "EUR")  # type: ignore[arg-type]

    def test_a_lowercase_currency_is_refused(self) -> None:
        with pytest.raises(ValueError, match="three capitals"):
            round_money(Decimal(1), "eur")


class TestManySmallLines:
    """An invoice of a thousand half-cent lines: the total is what the client can add up from the lines."""

    def test_total_is_the_sum_of_rounded_lines(self) -> None:
        lines = [round_money(Decimal("0.005"), "EUR") for _ in range(1000)]
        assert all(line == Decimal("0.01") for line in lines)
        assert sum(lines) == Decimal("10.00")

    def test_rounding_the_sum_instead_would_disagree_with_the_lines(self) -> None:
        unrounded_sum = sum([Decimal("0.005")] * 1000, Decimal(0))
        assert round_money(unrounded_sum, "EUR") == Decimal("5.00")
        assert round_money(unrounded_sum, "EUR") != sum([round_money(Decimal("0.005"), "EUR")] * 1000)


class TestMoney:
    def test_same_currency_adds_and_subtracts(self) -> None:
        total = Money(Decimal("1.10"), "EUR") + Money(Decimal("2.20"), "EUR") - Money(Decimal("0.30"), "EUR")
        assert total == Money(Decimal("3.00"), "EUR")

    def test_euros_and_dollars_do_not_mix(self) -> None:
        with pytest.raises(ValueError, match="EUR and USD"):
            Money(Decimal(1), "EUR") + Money(Decimal(1), "USD")
        with pytest.raises(ValueError, match="compare EUR and USD"):
            _ = Money(Decimal(1), "EUR") < Money(Decimal(2), "USD")

    def test_comparisons_in_one_currency(self) -> None:
        small, large = Money(Decimal("0.99"), "EUR"), Money(Decimal("1.00"), "EUR")
        assert small < large <= large and large > small >= small

    def test_multiplying_by_a_quantity_keeps_every_digit_until_rounded(self) -> None:
        rate = Money(Decimal("0.00100"), "USD")
        assert rate * Decimal(4907) == Money(Decimal("4.907"), "USD")
        assert (7 * rate).amount == Decimal("0.00700")
        assert (rate * Decimal(4907)).rounded() == Money(Decimal("4.91"), "USD")

    def test_multiplying_by_a_float_is_refused(self) -> None:
        with pytest.raises(TypeError, match="float"):
            Money(Decimal(1), "EUR") * 1.5  # type: ignore[operator]

    def test_a_float_amount_is_refused(self) -> None:
        with pytest.raises(TypeError, match="Decimal"):
            Money(0.1, "EUR")  # type: ignore[arg-type]

    def test_not_a_number_is_refused(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            Money(Decimal("NaN"), "EUR")

    def test_sum_of_nothing_is_zero_in_the_currency(self) -> None:
        assert money_sum([], "JPY") == Money.zero("JPY")
        assert money_sum([Money(Decimal(1), "JPY")] * 3, "JPY") == Money(Decimal(3), "JPY")

    def test_printed_with_its_currency(self) -> None:
        assert str(Money.parse("12.50", "EUR")) == "12.50 EUR"


class TestParseMoney:
    @pytest.mark.parametrize(
        ("text", "amount"),
        [("12.50", "12.50"), (" 0.00100 ", "0.00100"), ("-3", "-3"), ("+7.1", "7.1"), (7, "7")],
    )
    def test_plain_decimals_are_read_exactly(self, text: str | int, amount: str) -> None:
        parsed = parse_money(text)
        assert parsed == Decimal(amount) and str(parsed) == amount.lstrip("+")

    def test_a_token_price_keeps_its_five_places(self) -> None:
        assert str(parse_money("0.00100")) == "0.00100"

    def test_a_float_from_toml_is_refused_with_the_fix(self) -> None:
        with pytest.raises(ValueError, match=r'floating-point.*quoted decimal string such as "0.1"'):
            parse_money(0.1)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        "garbage", ["", "abc", "1,50", "1.234,56", "1e3", "NaN", "Infinity", "12.50 EUR", ".5", "5.", "١٢"]
    )
    def test_garbage_is_refused_with_an_example(self, garbage: str) -> None:
        with pytest.raises(ValueError, match=r'write it like "12.50"'):
            parse_money(garbage)

    @pytest.mark.parametrize("garbage", [None, True, Decimal("NaN"), Decimal("-Infinity"), [1]])
    def test_other_types_are_refused(self, garbage: object) -> None:
        with pytest.raises(ValueError, match="not a decimal number"):
            parse_money(garbage)  # type: ignore[arg-type]


CURRENCIES = st.sampled_from(["EUR", "USD", "JPY", "KWD", "BHD", "CLF"])
AMOUNTS = st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, allow_infinity=False, places=8)


@given(AMOUNTS, CURRENCIES)
def test_rounding_lands_on_the_minor_unit_within_half_of_it(amount: Decimal, currency: str) -> None:
    rounded = round_money(amount, currency)
    unit = Decimal(1).scaleb(-minor_units(currency))
    assert rounded.as_tuple().exponent == -minor_units(currency)
    assert abs(rounded - amount) <= unit / 2
    assert round_money(rounded, currency) == rounded


class TestTaxAmount:
    """Tax is rounded once per invoice per rate, by the same rule as the lines."""

    def test_the_tax_of_a_rounded_base_is_rounded_half_up_once(self) -> None:
        assert tax_amount(Decimal("0.99"), Decimal("19"), "EUR") == Decimal("0.19")  # 0.1881
        assert tax_amount(Decimal("0.50"), Decimal("19"), "EUR") == Decimal("0.10")  # 0.095

    def test_a_float_rate_is_refused(self) -> None:
        with pytest.raises(TypeError, match="tax rate must be a Decimal"):
            tax_amount(Decimal("1.00"), 19.0, "EUR")  # type: ignore[arg-type]
