"""Pricing one resource's usage in one cycle: the numbers of seeds 000, 001 and the SolusVM docs."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.cycles import BillingCycle, BillingPeriod, calendar_cycle_containing, first_calendar_cycle
from bridge.domain.money import Money, minor_units, round_money
from bridge.domain.pricing import (
    DEFAULT_BILLABLE_SECONDS_PER_MONTH,
    HOURS_PLACES,
    MissingPrice,
    PlanRate,
    PriceBook,
    RunningResource,
    UnusableUsage,
    billable_hours_cap,
    burn_rate_per_hour,
    estimated_monthly_cost,
    price_resource,
    price_usage,
)
from bridge.domain.usage import SOURCES, UsageRecord
from tests.domain.builders import HOUR, book, daily, usage, utc, whole_cycle

JANUARY = calendar_cycle_containing(utc(2024, 1, 15), "UTC")  # 31 days, 744 h
FEBRUARY_2023 = calendar_cycle_containing(utc(2023, 2, 15), "UTC")  # 28 days, 672 h


class TestBillableSecondsCap:
    """Seed 001: 2,400,000 billable seconds a month = 666.66667 hours = 27.78 days."""

    def test_the_cap_in_hours_is_computed_exactly_then_kept_to_six_places(self) -> None:
        exact = Decimal(2_400_000) / Decimal(3600)
        assert exact == Decimal("666.6666666666666666666666667")
        assert billable_hours_cap(DEFAULT_BILLABLE_SECONDS_PER_MONTH) == Decimal("666.666667")
        assert HOURS_PLACES == 6
        assert round(exact, 2) == Decimal("666.67") and round(exact / 24, 2) == Decimal("27.78")

    def test_a_vm_running_all_of_a_31_day_month_bills_666_67_hours(self) -> None:
        (line,) = price_resource([whole_cycle(JANUARY)], JANUARY, book())
        assert line.hours == 744
        assert line.billed_hours == Decimal("666.666667") and line.capped
        assert line.amount == Decimal("66.67")  # 666.666667 x 0.10, rounded once

    def test_collected_day_by_day_it_bills_the_same(self) -> None:
        (line,) = price_resource(daily(JANUARY.start, 31), JANUARY, book())
        assert (line.billed_hours, line.amount, line.capped) == (
            Decimal("666.666667"),
            Decimal("66.67"),
            True,
        )

    def test_february_and_january_cost_the_same_for_an_always_on_vm(self) -> None:
        (february,) = price_resource([whole_cycle(FEBRUARY_2023)], FEBRUARY_2023, book())
        (january,) = price_resource([whole_cycle(JANUARY)], JANUARY, book())
        assert february.hours == 672 and february.amount == january.amount == Decimal("66.67")

    def test_a_vm_under_the_cap_bills_every_hour(self) -> None:
        (line,) = price_resource(daily(JANUARY.start, 20), JANUARY, book())
        assert line.billed_hours == 480 and not line.capped and line.amount == Decimal("48.00")

    def test_not_capped_when_the_flavor_changed_mid_cycle(self) -> None:
        resized_at = JANUARY.start + timedelta(hours=400)
        records = [
            usage(JANUARY.start, resized_at, plan="m1.small"),
            usage(resized_at, JANUARY.end, plan="m1.large"),
        ]
        large, small = price_resource(records, JANUARY, book())
        assert (large.plan, large.billed_hours, large.amount) == ("m1.large", Decimal(344), Decimal("137.60"))
        assert (small.plan, small.billed_hours, small.amount) == ("m1.small", Decimal(400), Decimal("40.00"))
        assert not large.capped and not small.capped

    def test_not_capped_on_a_yearly_cycle(self) -> None:
        year = BillingPeriod.yearly(1, 1).cycle_containing(utc(2024, 6, 1), "UTC")
        (line,) = price_resource([whole_cycle(JANUARY)], year, book())
        assert line.billed_hours == 744 and not line.capped and line.amount == Decimal("74.40")

    def test_not_capped_when_the_limit_is_switched_off(self) -> None:
        (line,) = price_resource([whole_cycle(JANUARY)], JANUARY, book(), billable_seconds_per_month=None)
        assert line.billed_hours == 744 and not line.capped

    def test_a_smaller_limit_from_the_clients_configuration(self) -> None:
        (line,) = price_resource([whole_cycle(JANUARY)], JANUARY, book(), billable_seconds_per_month=360_000)
        assert line.billed_hours == 100 and line.amount == Decimal("10.00")

    @pytest.mark.parametrize(
        "cycle", [JANUARY, BillingPeriod.yearly(1, 1).cycle_containing(utc(2024, 6, 1), "UTC")]
    )
    def test_a_zero_limit_is_refused_rather_than_billing_nothing(self, cycle: BillingCycle) -> None:
        with pytest.raises(ValueError, match="pass None"):
            price_resource([whole_cycle(JANUARY)], cycle, book(), billable_seconds_per_month=0)


class TestVmCreatedMidMonth:
    def test_a_vm_created_on_march_17_in_berlin_bills_its_hours_to_month_end(self) -> None:
        berlin = ZoneInfo("Europe/Berlin")
        created = datetime(2024, 3, 17, 10, 30, tzinfo=berlin)
        march = calendar_cycle_containing(created, berlin)
        (line,) = price_resource([usage(created, march.end)], march, book())
        assert line.hours == Decimal("348.5") and not line.capped
        assert line.amount == Decimal("34.85")
        assert line.period == march

    def test_the_same_vm_in_its_clients_first_calendar_cycle(self) -> None:
        created = datetime(2024, 3, 17, 10, 30, tzinfo=ZoneInfo("Europe/Berlin"))
        first = first_calendar_cycle(created, "Europe/Berlin")
        (line,) = price_resource([usage(first.start, first.end)], first, book())
        assert line.amount == Decimal("34.85") and line.period.label == "2024-03-17"


class TestSolusVmTokens:
    """research/solusvm2-api.md section 5: tokens = min(ceil(hours) x tokens_per_hour, tokens_per_month)."""

    def solusvm(self, hours: str, plan: str = "7") -> list[UsageRecord]:
        return [usage(JANUARY.start, JANUARY.end, hours=hours, source="solusvm", plan=plan)]

    def test_744_hours_at_7_tokens_is_capped_at_5000(self) -> None:
        (line,) = price_resource(self.solusvm("744"), JANUARY, book())
        assert (line.billed_hours, line.tokens, line.capped) == (Decimal(744), 5000, True)
        assert line.amount == Decimal("5.00")

    def test_700_hours_is_4900_tokens_under_the_cap(self) -> None:
        (line,) = price_resource(self.solusvm("700"), JANUARY, book())
        assert (line.tokens, line.capped, line.amount) == (4900, False, Decimal("4.90"))

    def test_the_billable_seconds_cap_does_not_apply_to_solusvm(self) -> None:
        (line,) = price_resource(self.solusvm("700"), JANUARY, book())
        assert line.billed_hours == 700 and line.tokens_per_hour == 7

    def test_five_minutes_is_billed_as_a_whole_hour(self) -> None:
        (line,) = price_resource(self.solusvm("0.0833"), JANUARY, book())
        assert (line.billed_hours, line.tokens) == (Decimal(1), 7)
        assert line.amount == Decimal("0.01")  # 7 x 0.00100 = 0.007, half up to a cent

    def test_hours_are_rounded_up_once_per_server_per_cycle_not_per_window(self) -> None:
        starts = [JANUARY.start + timedelta(days=day) for day in range(10)]
        windows = [usage(start, start + HOUR, hours="0.25", source="solusvm", plan="7") for start in starts]
        (line,) = price_resource(windows, JANUARY, book())
        assert line.hours == Decimal("2.50") and line.billed_hours == 3 and line.tokens == 21

    def test_no_token_cap_when_the_plan_changed_mid_cycle(self) -> None:
        upgraded = JANUARY.start + timedelta(hours=400)
        records = [
            usage(JANUARY.start, upgraded, source="solusvm", plan="7"),
            usage(upgraded, JANUARY.end, source="solusvm", plan="10"),
        ]
        ten, seven = price_resource(records, JANUARY, book())
        assert (seven.tokens, ten.tokens) == (2800, 3440)  # plan 10 alone would be capped at 3000
        assert not seven.capped and not ten.capped
        assert ten.amount == Decimal("3.44")

    def test_a_plan_without_a_monthly_amount_is_not_capped(self) -> None:
        prices = dataclasses.replace(book(), plans={"7": PlanRate(tokens_per_hour=7)})
        (line,) = price_resource(self.solusvm("744"), JANUARY, prices)
        assert line.tokens == 5208 and line.amount == Decimal("5.21")


class TestMissingPrices:
    def test_a_flavor_without_a_price_names_the_key_to_add(self) -> None:
        with pytest.raises(MissingPrice) as caught:
            price_resource([whole_cycle(JANUARY, plan="m1.xlarge")], JANUARY, book())
        assert caught.value.settings_key == 'pricing.flavors."m1.xlarge"'
        assert str(caught.value) == (
            'no price for OpenStack flavor "m1.xlarge"; add pricing.flavors."m1.xlarge" to the settings file'
        )

    def test_a_solusvm_plan_without_a_rate_names_the_key_to_add(self) -> None:
        with pytest.raises(MissingPrice, match=r'SolusVM plan "12"; add pricing.solusvm_plans."12"'):
            price_resource([whole_cycle(JANUARY, source="solusvm", plan="12")], JANUARY, book())

    def test_no_token_price_names_the_key_to_add(self) -> None:
        prices = dataclasses.replace(book(), token_price=None)
        with pytest.raises(MissingPrice, match=r"add pricing\.token_price"):
            price_resource([whole_cycle(JANUARY, source="solusvm", plan="7")], JANUARY, prices)

    def test_other_resources_are_still_priced(self) -> None:
        records = [
            whole_cycle(JANUARY, resource_id="vm-1", name="web-1"),
            whole_cycle(JANUARY, resource_id="vm-2", name="gpu-1", plan="g1.huge"),
            whole_cycle(JANUARY, resource_id="vm-3", name="db-1", plan="m1.large"),
        ]
        priced = price_usage(records, JANUARY, book())
        assert [line.resource_name for line in priced.lines] == ["db-1", "web-1"]
        (error,) = priced.errors
        assert (error.resource_id, error.resource_name, error.settings_key) == (
            "vm-2",
            "gpu-1",
            'pricing.flavors."g1.huge"',
        )
        assert error.period == JANUARY

    def test_a_quoted_flavor_name_gives_a_valid_toml_key(self) -> None:
        with pytest.raises(MissingPrice) as caught:
            price_resource([whole_cycle(JANUARY, plan='odd"name')], JANUARY, book())
        assert caught.value.settings_key == 'pricing.flavors."odd\\"name"'


class TestZeroAndOddUsage:
    def test_a_resource_that_did_not_run_gets_no_line_and_needs_no_price(self) -> None:
        assert price_resource([whole_cycle(JANUARY, hours="0", plan="unpriced")], JANUARY, book()) == ()

    def test_a_free_flavor_still_shows_on_the_invoice(self) -> None:
        (line,) = price_resource([whole_cycle(JANUARY, plan="free.tiny")], JANUARY, book())
        assert line.amount == Decimal("0.00") and line.billed_hours > 0

    def test_a_few_seconds_round_to_zero_but_keep_their_line(self) -> None:
        (line,) = price_resource([whole_cycle(JANUARY, hours="0.0005")], JANUARY, book())
        assert line.billed_hours == Decimal("0.000500") and line.amount == Decimal("0.00")

    def test_a_window_across_the_month_edge_is_refused_not_guessed(self) -> None:
        straddling = usage(JANUARY.end - timedelta(hours=1), JANUARY.end + timedelta(hours=1))
        with pytest.raises(UnusableUsage, match="not inside the billing cycle"):
            price_resource([straddling], JANUARY, book())

    def test_the_same_window_twice_is_refused_rather_than_billed_twice(self) -> None:
        record = usage(JANUARY.start, JANUARY.start + timedelta(days=1))
        with pytest.raises(UnusableUsage, match="bill the same hours twice"):
            price_resource([record, record], JANUARY, book())

    def test_records_of_two_resources_are_a_programming_error(self) -> None:
        with pytest.raises(ValueError, match="exactly one resource"):
            price_resource([whole_cycle(JANUARY), whole_cycle(JANUARY, resource_id="vm-2")], JANUARY, book())

    def test_a_renamed_vm_is_shown_under_its_latest_name(self) -> None:
        middle = JANUARY.start + timedelta(days=10)
        records = [usage(middle, JANUARY.end, name="web-new"), usage(JANUARY.start, middle, name="web-old")]
        (line,) = price_resource(records, JANUARY, book())
        assert line.resource_name == "web-new"

    def test_yen_lines_are_whole_yen(self) -> None:
        prices = PriceBook("JPY", flavor_prices={"m1.small": Decimal("15.5")})
        (line,) = price_resource([whole_cycle(JANUARY, hours="3")], JANUARY, prices)
        assert line.amount == Decimal("47") and line.currency == "JPY"  # 46.5 half up


class TestTheLineTellsItsOwnStory:
    def test_amount_is_quantity_times_unit_price_rounded_once(self) -> None:
        (openstack,) = price_resource([whole_cycle(JANUARY)], JANUARY, book())
        (solusvm,) = price_resource([whole_cycle(JANUARY, source="solusvm", plan="7")], JANUARY, book())
        for line in (openstack, solusvm):
            assert line.amount == round_money(line.quantity * line.unit_price, line.currency)
        assert (openstack.unit, solusvm.unit) == ("hour", "token")

    def test_reference_and_description(self) -> None:
        (line,) = price_resource([whole_cycle(JANUARY)], JANUARY, book())
        assert line.reference == "openstack:vm-1:m1.small:2024-01"
        assert line.description() == (
            "web-1 (m1.small) 2024-01-01 to 2024-01-31: 666.666667 hours x 0.10 EUR, capped"
        )


class TestPriceBook:
    def test_a_float_price_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r'pricing.flavors."m1.small" must be a Decimal'):
            PriceBook("EUR", flavor_prices={"m1.small": 0.1})  # type: ignore[dict-item]

    def test_a_negative_token_price_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"pricing\.token_price"):
            PriceBook("EUR", token_price=Decimal("-0.001"))

    def test_a_negative_token_rate_is_refused(self) -> None:
        with pytest.raises(ValueError, match="tokens_per_hour"):
            PlanRate(-1, 10)

    def test_the_book_cannot_be_changed_behind_its_back(self) -> None:
        prices = {"m1.small": Decimal("0.10")}
        frozen = PriceBook("EUR", flavor_prices=prices)
        prices["m1.small"] = Decimal("99")
        assert frozen.hourly_price("m1.small") == Decimal("0.10")
        with pytest.raises(TypeError):
            frozen.flavor_prices["m1.small"] = Decimal(1)  # type: ignore[index]


class TestCreditEstimates:
    """Seed 000: the auto-invoice estimate is lowered by the billable-seconds cap."""

    def test_the_estimate_with_the_cap_is_less_than_24_h_x_30_days(self) -> None:
        hourly = Money(Decimal("0.10"), "EUR")
        with_cap = estimated_monthly_cost(hourly)
        assert with_cap == Money(Decimal("66.67"), "EUR")
        assert with_cap < (hourly * 24 * 30).rounded() == Money(Decimal("72.00"), "EUR")

    def test_without_the_cap_it_is_30_days(self) -> None:
        assert estimated_monthly_cost(Money(Decimal("0.10"), "EUR"), None) == Money(Decimal("72.00"), "EUR")

    def test_a_cap_above_30_days_does_not_raise_the_estimate(self) -> None:
        assert estimated_monthly_cost(Money(Decimal("0.10"), "EUR"), 3_000_000) == Money(
            Decimal("72.00"), "EUR"
        )

    def test_burn_rate_adds_every_running_resource(self) -> None:
        running = [
            RunningResource("openstack", "vm-1", "m1.small"),
            RunningResource("openstack", "vm-2", "m1.large"),
            RunningResource("solusvm", "42", "7"),
        ]
        assert burn_rate_per_hour(running, book()) == Money(Decimal("0.50700"), "EUR")
        assert burn_rate_per_hour([], book()) == Money.zero("EUR")

    def test_burn_rate_refuses_to_underestimate_an_unpriced_flavor(self) -> None:
        with pytest.raises(MissingPrice, match=r"g1\.huge"):
            burn_rate_per_hour([RunningResource("openstack", "vm-9", "g1.huge")], book())


HOURS = st.decimals(min_value=0, max_value=744, places=4, allow_nan=False, allow_infinity=False)
PLANS = {"openstack": ["m1.small", "m1.large"], "solusvm": ["7", "10"]}


@st.composite
def resource_usage(draw: st.DrawFn) -> list[UsageRecord]:
    """Up to 5 resources, each with up to 4 daily windows of random hours on random plans."""
    records = []
    for number in range(draw(st.integers(1, 5))):
        source = draw(st.sampled_from(SOURCES))
        for day in range(draw(st.integers(1, 4))):
            start = JANUARY.start + timedelta(days=day)
            record = usage(
                start,
                start + timedelta(days=1),
                hours=min(draw(HOURS), Decimal(24)),
                source=source,
                plan=draw(st.sampled_from(PLANS[source])),
                resource_id=f"r{number}",
                name=f"name-{number % 3}",
            )
            records.append(record)
    return records


@given(resource_usage(), st.sampled_from(["EUR", "JPY", "KWD"]))
def test_pricing_never_produces_a_float(records: list[UsageRecord], currency: str) -> None:
    priced = price_usage(records, JANUARY, book(currency))
    assert not priced.errors
    for line in priced.lines:
        values = [getattr(line, field.name) for field in dataclasses.fields(line)]
        assert not any(isinstance(value, float) for value in values)
        assert isinstance(line.amount, Decimal) and isinstance(line.billed_hours, Decimal)
        assert line.amount.as_tuple().exponent == -minor_units(currency)
        assert line.amount == round_money(line.quantity * line.unit_price, currency)
        assert line.billed_hours <= line.hours.to_integral_value(rounding="ROUND_CEILING")
