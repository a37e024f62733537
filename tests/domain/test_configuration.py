"""The per-client configuration of seed 001: Fleio's defaults, agreement limits, refusals naming the key."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal

import pytest

from bridge.domain.configuration import (
    AutoInvoiceMode,
    AutoInvoicing,
    Configuration,
    InvoicingOption,
    SuspensionRule,
    TerminationRule,
)
from bridge.domain.pricing import DEFAULT_BILLABLE_SECONDS_PER_MONTH, billable_hours_cap
from tests.domain.builders import utc


class TestDefaults:
    def test_a_new_configuration_has_fleios_credit_limit_of_zero_and_needs_no_credit_for_new_services(
        self,
    ) -> None:
        config = Configuration()
        assert config.credit_limit == Decimal(0)
        assert config.required_credit_for_new_services == Decimal(0)
        assert config.minimum_credit_after_payment == Decimal(0)
        assert config.client_initial_credit == Decimal(0)

    def test_billable_seconds_default_to_2_400_000_which_is_27_78_days(self) -> None:
        config = Configuration()
        assert config.billable_seconds_per_month == DEFAULT_BILLABLE_SECONDS_PER_MONTH == 2_400_000
        assert round(billable_hours_cap(2_400_000) / 24, 2) == Decimal("27.78")

    def test_suspension_is_on_without_delay_but_termination_needs_an_explicit_setting(self) -> None:
        config = Configuration()
        assert config.suspension == SuspensionRule(enabled=True, delay_hours=None, delay_credit=None)
        assert config.termination == TerminationRule(enabled=False, delay_hours=0, suspend_instead=False)
        assert not config.shelve_instances_on_suspend

    def test_auto_invoicing_is_off_until_chosen_and_then_estimates_the_monthly_consumption(self) -> None:
        config = Configuration()
        assert config.auto_invoicing == AutoInvoicing(enabled=False, mode=AutoInvoiceMode.ESTIMATED)
        assert config.auto_invoicing.fixed_amount is None

    def test_invoices_are_fiscal_numbered_plainly_and_cycles_are_calendar_months(self) -> None:
        config = Configuration()
        assert config.invoicing_option is InvoicingOption.ALWAYS_FISCAL
        assert config.fiscal_number_format == "{{ number }}" and config.next_fiscal_number == 1
        assert config.billing_cycle_as_calendar_month
        assert config.do_not_invoice_zero_prices and config.automatic_settlements
        assert not config.generate_invoices and config.auto_pay_only_when_enough_credit
        assert config.credit_notifications == ()

    def test_a_configuration_is_frozen(self) -> None:
        with pytest.raises(dataclasses.FrozenInstanceError):
            Configuration().credit_limit = Decimal(5)  # type: ignore[misc]


class TestAgreementLimits:
    def test_a_client_on_agreement_gets_its_own_credit_limit_and_required_credit(self) -> None:
        config = Configuration(
            credit_limit=Decimal(0),
            required_credit_for_new_services=Decimal(10),
            credit_limit_on_agreement=Decimal(-100),
            required_credit_on_agreement=Decimal(-5000),
        )
        assert config.effective_credit_limit(has_agreement=False) == Decimal(0)
        assert config.effective_credit_limit(has_agreement=True) == Decimal(-100)
        assert config.effective_required_credit(has_agreement=False) == Decimal(10)
        assert config.effective_required_credit(has_agreement=True) == Decimal(-5000)

    def test_without_agreement_values_a_client_on_agreement_gets_the_ordinary_ones(self) -> None:
        config = Configuration(credit_limit=Decimal(-20), required_credit_for_new_services=Decimal(3))
        assert config.effective_credit_limit(has_agreement=True) == Decimal(-20)
        assert config.effective_required_credit(has_agreement=True) == Decimal(3)

    def test_agreement_limits_may_be_positive(self) -> None:
        config = Configuration(credit_limit_on_agreement=Decimal(25))
        assert config.effective_credit_limit(has_agreement=True) == Decimal(25)


class TestCreditNotifications:
    def test_up_to_three_thresholds_are_kept_largest_first(self) -> None:
        assert Configuration(credit_notifications=(6, 72, 24)).credit_notifications == (72, 24, 6)

    def test_a_fourth_notification_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"credit_notifications has 4 thresholds .* at most 3"):
            Configuration(credit_notifications=(96, 72, 24, 6))

    @pytest.mark.parametrize("bad", [0, -24, True])
    def test_a_threshold_must_be_a_positive_number_of_hours(self, bad: int) -> None:
        with pytest.raises(ValueError, match="credit_notifications has"):
            Configuration(credit_notifications=(72, bad))

    def test_the_same_threshold_twice_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"credit_notifications .* repeats a threshold"):
            Configuration(credit_notifications=(24, 24))


class TestRefusals:
    def test_money_as_a_float_is_refused_naming_the_key(self) -> None:
        with pytest.raises(ValueError, match=r'credit_limit is the float -5\.5; .* "-5\.5"'):
            Configuration(credit_limit=-5.5)  # type: ignore[arg-type]

    def test_an_agreement_limit_as_a_float_is_refused_naming_the_key(self) -> None:
        with pytest.raises(ValueError, match="credit_limit_on_agreement is the float"):
            Configuration(credit_limit_on_agreement=-100.0)  # type: ignore[arg-type]

    def test_zero_billable_seconds_is_refused_and_none_turns_the_limit_off(self) -> None:
        with pytest.raises(ValueError, match="billable_seconds_per_month is 0; use None"):
            Configuration(billable_seconds_per_month=0)
        assert Configuration(billable_seconds_per_month=None).billable_seconds_per_month is None

    def test_negative_billable_seconds_are_refused(self) -> None:
        with pytest.raises(ValueError, match="billable_seconds_per_month is -1"):
            Configuration(billable_seconds_per_month=-1)

    def test_the_invoicing_cutoff_must_carry_a_time_zone(self) -> None:
        with pytest.raises(ValueError, match="generate_invoices_after: naive datetime"):
            Configuration(generate_invoices_after=datetime(2022, 11, 1))
        cutoff = utc(2022, 11, 1)
        assert Configuration(generate_invoices_after=cutoff).generate_invoices_after == cutoff

    def test_the_invoicing_option_is_read_from_its_settings_spelling(self) -> None:
        config = Configuration(invoicing_option="proforma_random")  # type: ignore[arg-type]
        assert config.invoicing_option is InvoicingOption.PROFORMA_RANDOM

    def test_an_unknown_invoicing_option_lists_the_known_ones(self) -> None:
        with pytest.raises(ValueError, match="invoicing_option is 'fiscal'; use one of proforma_then_fiscal"):
            Configuration(invoicing_option="fiscal")  # type: ignore[arg-type]

    def test_the_number_format_may_use_number_year_month_and_day(self) -> None:
        template = "{{ number }}{{ year }}{{ month }}{{ day }}"
        assert Configuration(fiscal_number_format=template).fiscal_number_format == template

    def test_a_number_format_without_the_number_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"'\{\{ year \}\}-' has no \{\{ number \}\}"):
            Configuration(fiscal_number_format="{{ year }}-")

    def test_a_number_format_with_an_unknown_placeholder_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"fiscal_number_format .* uses client"):
            Configuration(fiscal_number_format="{{ client }}-{{ number }}")

    def test_the_next_fiscal_number_starts_at_one(self) -> None:
        with pytest.raises(ValueError, match="next_fiscal_number is 0"):
            Configuration(next_fiscal_number=0)

    def test_a_negative_suspension_delay_is_refused_naming_the_key(self) -> None:
        with pytest.raises(ValueError, match=r"suspension\.delay_hours is -1"):
            SuspensionRule(delay_hours=-1)
        with pytest.raises(ValueError, match=r"suspension\.delay_credit is -10"):
            SuspensionRule(delay_credit=Decimal(-10))

    def test_a_negative_termination_delay_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"termination\.delay_hours is -24"):
            TerminationRule(enabled=True, delay_hours=-24)

    def test_a_fixed_amount_auto_invoice_needs_an_amount_above_zero(self) -> None:
        with pytest.raises(ValueError, match=r"auto_invoicing\.fixed_amount is None"):
            AutoInvoicing(enabled=True, mode=AutoInvoiceMode.FIXED)
        with pytest.raises(ValueError, match=r"auto_invoicing\.fixed_amount is 0"):
            AutoInvoicing(enabled=True, mode=AutoInvoiceMode.FIXED, fixed_amount=Decimal(0))

    def test_an_unknown_auto_invoice_mode_is_refused(self) -> None:
        with pytest.raises(
            ValueError, match=r"auto_invoicing\.mode is 'monthly'; use one of estimated, fixed"
        ):
            AutoInvoicing(mode="monthly")  # type: ignore[arg-type]

    def test_a_rule_of_the_wrong_kind_is_refused(self) -> None:
        with pytest.raises(TypeError, match="suspension must be a SuspensionRule"):
            Configuration(suspension=TerminationRule())  # type: ignore[arg-type]
