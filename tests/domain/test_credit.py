"""Credit decisions with the numbers of seeds 000 and 001: auto-invoices, notifications, suspension."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.configuration import (
    AutoInvoiceMode,
    AutoInvoicing,
    Configuration,
    SuspensionRule,
    TerminationRule,
)
from bridge.domain.credit import (
    AUTO_INVOICE_LEAD_TIME_HOURS,
    CreditState,
    Decision,
    DecisionKind,
    ResourceUsage,
    account,
    auto_invoice_amount,
    can_auto_pay_invoice,
    can_create_services,
    can_pay_from_credit,
    hours_until,
    notifications_due,
    running_horizon,
    suspension_decision,
)
from bridge.domain.money import Money
from tests.domain.builders import HOUR, book, utc

NOW = utc(2024, 3, 10, 12)
SECOND = timedelta(seconds=1)
DAY = 24 * HOUR
TEN_DOLLARS_A_DAY = Money(Decimal(10) / Decimal(24), "USD")
AUTO_INVOICING = Configuration(auto_invoicing=AutoInvoicing(enabled=True))


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def credit_after(start_credit: Decimal, per_day: Decimal, elapsed: timedelta) -> Decimal:
    """The up-to-date credit ``elapsed`` after ``start_credit``, burning ``per_day`` (exact to the second)."""
    return start_credit - per_day * Decimal(int(elapsed.total_seconds())) / Decimal(86_400)


def auto_invoice(
    up_to_date: str,
    hourly: Money = TEN_DOLLARS_A_DAY,
    *,
    config: Configuration = AUTO_INVOICING,
    limit: str = "0",
    unpaid: str = "0",
    unpaid_auto_invoice: bool = False,
    lead_time_hours: int = AUTO_INVOICE_LEAD_TIME_HOURS,
) -> tuple[Decimal | None, str]:
    decision = auto_invoice_amount(
        config,
        hourly,
        Decimal(up_to_date),
        Decimal(limit),
        Decimal(unpaid),
        has_unpaid_auto_invoice=unpaid_auto_invoice,
        lead_time_hours=lead_time_hours,
    )
    return decision.amount, decision.reason


class TestCreditState:
    def test_up_to_date_credit_is_credit_minus_unsettled_usage(self) -> None:
        assert CreditState(Decimal("100.00"), Decimal("12.34")).up_to_date == Decimal("87.66")

    def test_100_dollars_burning_10_dollars_a_day_last_240_hours(self) -> None:
        state = CreditState(Decimal(100), Decimal(0))
        assert state.hours_until(Decimal(0), Decimal("0.5")) == Decimal(200)
        assert round(state.hours_until(Decimal(0), TEN_DOLLARS_A_DAY.amount) or 0, 6) == Decimal(240)

    def test_hours_until_a_negative_credit_limit_count_the_debt_allowed(self) -> None:
        assert hours_until(Decimal(0), Decimal(-100), Decimal(1)) == Decimal(100)

    def test_a_client_already_at_the_level_has_zero_hours_left_even_with_nothing_running(self) -> None:
        assert hours_until(Decimal(-5), Decimal(0), Decimal(0)) == Decimal(0)
        assert hours_until(Decimal(0), Decimal(0), Decimal(1)) == Decimal(0)

    def test_with_nothing_running_the_credit_never_reaches_the_level(self) -> None:
        assert CreditState(Decimal(10), Decimal(0)).hours_until(Decimal(0), Decimal(0)) is None

    def test_money_as_a_float_is_refused(self) -> None:
        with pytest.raises(TypeError, match="credit must be a finite Decimal"):
            CreditState(100.0, Decimal(0))  # type: ignore[arg-type]

    def test_a_negative_burn_rate_is_refused(self) -> None:
        with pytest.raises(ValueError, match="burn rate -1 per hour is negative"):
            hours_until(Decimal(10), Decimal(0), Decimal(-1))


class TestAutoInvoiceTiming:
    """Seed 000: AUTO_INVOICE_LEAD_TIME_HOURS = 120 before the credit reaches the credit limit."""

    def test_the_lead_time_is_fleios_120_hours(self) -> None:
        assert AUTO_INVOICE_LEAD_TIME_HOURS == 120

    def test_10_dollars_a_day_from_100_dollars_is_not_due_at_the_start_240_hours_away(self) -> None:
        amount, reason = auto_invoice("100")
        assert amount is None
        assert "reaches the credit limit 0.00 USD in 240.00 h" in reason
        assert "later than the lead time of 120 h" in reason

    def test_not_due_when_120_hours_and_1_second_remain(self) -> None:
        up_to_date = credit_after(Decimal(100), Decimal(10), 5 * DAY - SECOND)
        decision = auto_invoice_amount(
            AUTO_INVOICING,
            TEN_DOLLARS_A_DAY,
            up_to_date,
            Decimal(0),
            Decimal(0),
            has_unpaid_auto_invoice=False,
        )
        assert decision.amount is None
        assert decision.hours_until_limit == Decimal("120.000278")  # 120 h + 1 s

    def test_due_exactly_when_120_hours_remain_at_50_dollars(self) -> None:
        up_to_date = credit_after(Decimal(100), Decimal(10), 5 * DAY)
        assert up_to_date == Decimal(50)
        decision = auto_invoice_amount(
            AUTO_INVOICING,
            TEN_DOLLARS_A_DAY,
            up_to_date,
            Decimal(0),
            Decimal(0),
            has_unpaid_auto_invoice=False,
        )
        assert decision.hours_until_limit == Decimal("120.000000")
        assert decision.amount == Decimal("277.78")  # 666.666667 billable h x 10/24, not 300.00
        assert decision.reason == (
            "up-to-date credit 50.00 USD reaches the credit limit 0.00 USD in 120.00 h at 0.4167 USD/h, "
            "within the lead time of 120 h: auto-invoice 277.78 USD = the estimated monthly consumption "
            "277.78 USD (at most 2,400,000 billable seconds) - unpaid invoices of 0.00 USD"
        )

    def test_still_due_after_the_moment_and_once_the_limit_is_passed(self) -> None:
        assert auto_invoice("10")[0] == Decimal("277.78")
        assert auto_invoice("-3")[0] == Decimal("277.78")

    def test_the_lead_time_counts_to_a_negative_credit_limit(self) -> None:
        # -50 up-to-date credit, limit -100, 0.50/h: 100 h to the limit, within 120 h.
        amount, reason = auto_invoice("-50", usd("0.50"), limit="-100")
        assert amount == Decimal("333.33") and "in 100.00 h" in reason
        assert auto_invoice("0", usd("0.50"), limit="-100")[0] is None  # 200 h away

    def test_the_agreement_credit_limit_moves_the_moment(self) -> None:
        config = replace(AUTO_INVOICING, credit_limit_on_agreement=Decimal(-100))
        without = auto_invoice("40", config=config, limit=str(config.effective_credit_limit(False)))
        on_agreement = auto_invoice("40", config=config, limit=str(config.effective_credit_limit(True)))
        assert without[0] == Decimal("277.78") and on_agreement[0] is None

    def test_a_shorter_lead_time_issues_later(self) -> None:
        assert auto_invoice("50", lead_time_hours=24)[0] is None
        assert auto_invoice("10", lead_time_hours=24)[0] == Decimal("277.78")


class TestAutoInvoiceAmount:
    def test_100_dollars_needed_and_30_unpaid_gives_an_invoice_of_70(self) -> None:
        # 0.15/h x 666.666667 billable hours = 100.00 estimated monthly consumption.
        decision = auto_invoice_amount(
            AUTO_INVOICING, usd("0.15"), Decimal(10), Decimal(0), Decimal(30), has_unpaid_auto_invoice=False
        )
        assert (decision.needed, decision.amount) == (Decimal("100.00"), Decimal("70.00"))
        assert decision.reason.endswith(
            "auto-invoice 70.00 USD = the estimated monthly consumption 100.00 USD "
            "(at most 2,400,000 billable seconds) - unpaid invoices of 30.00 USD"
        )

    def test_the_billable_seconds_cap_lowers_the_estimate_of_10_cents_an_hour_to_66_67_not_72(self) -> None:
        assert auto_invoice("5", usd("0.10"))[0] == Decimal("66.67")
        uncapped = replace(AUTO_INVOICING, billable_seconds_per_month=None)
        amount, reason = auto_invoice("5", usd("0.10"), config=uncapped)
        assert amount == Decimal("72.00")  # 24 h x 30 days x 0.10
        assert "(no billable-seconds limit)" in reason

    def test_a_fixed_amount_is_invoiced_whatever_the_burn_rate(self) -> None:
        fixed = replace(
            AUTO_INVOICING,
            auto_invoicing=AutoInvoicing(enabled=True, mode=AutoInvoiceMode.FIXED, fixed_amount=Decimal(250)),
        )
        amount, reason = auto_invoice("10", usd("0.10"), config=fixed)
        assert amount == Decimal("250.00")
        assert "auto-invoice 250.00 USD = the fixed amount 250.00 USD - unpaid invoices of 0.00 USD" in reason
        assert auto_invoice("10", usd("3.00"), config=fixed, unpaid="30")[0] == Decimal("220.00")

    def test_the_clients_own_choice_overrides_the_configuration(self) -> None:
        choice = AutoInvoicing(enabled=True, mode=AutoInvoiceMode.FIXED, fixed_amount=Decimal("40.5"))
        decision = auto_invoice_amount(
            Configuration(),
            usd("1"),
            Decimal(10),
            Decimal(0),
            Decimal(0),
            has_unpaid_auto_invoice=False,
            choice=choice,
        )
        assert decision.amount == Decimal("40.50")
        off = auto_invoice_amount(
            AUTO_INVOICING,
            usd("1"),
            Decimal(10),
            Decimal(0),
            Decimal(0),
            has_unpaid_auto_invoice=False,
            choice=AutoInvoicing(enabled=False),
        )
        assert off.amount is None

    def test_nothing_when_unpaid_invoices_already_cover_the_need(self) -> None:
        amount, reason = auto_invoice("10", usd("0.15"), unpaid="100")
        assert amount is None
        assert (
            "unpaid invoices of 100.00 USD already cover the estimated monthly consumption 100.00 USD"
            in reason
        )
        assert auto_invoice("10", usd("0.15"), unpaid="130")[0] is None

    def test_no_second_auto_invoice_while_one_is_unpaid(self) -> None:
        amount, reason = auto_invoice("10", unpaid_auto_invoice=True)
        assert amount is None and "an auto-invoice is still unpaid" in reason

    def test_nothing_for_a_client_without_auto_invoicing(self) -> None:
        amount, reason = auto_invoice("10", config=Configuration())
        assert amount is None and reason == "credit auto-invoicing is off for this client"

    def test_nothing_for_a_client_with_nothing_running(self) -> None:
        amount, reason = auto_invoice("-10", usd("0"))
        assert amount is None and "nothing is running" in reason

    def test_the_amount_follows_the_currencys_minor_unit(self) -> None:
        decision = auto_invoice_amount(
            AUTO_INVOICING,
            Money(Decimal("15.5"), "JPY"),
            Decimal(0),
            Decimal(0),
            Decimal(0),
            has_unpaid_auto_invoice=False,
        )
        assert decision.amount == Decimal(10333) and decision.currency == "JPY"  # 666.666667 x 15.5

    def test_a_negative_unpaid_total_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unpaid invoices total -1 is negative"):
            auto_invoice("10", unpaid="-1")

    def test_issuing_it_changes_the_next_run_to_nothing(self) -> None:
        assert auto_invoice("50")[0] == Decimal("277.78")
        assert auto_invoice("50", unpaid_auto_invoice=True)[0] is None


class TestCreditNotifications:
    """Seed 001: up to three notifications, each "N hours before the credit reaches zero"."""

    THRESHOLDS = (72, 24, 6)

    def test_three_notifications_are_each_sent_once_as_the_credit_runs_down_hour_by_hour(self) -> None:
        sent: frozenset[int] = frozenset()
        log: list[tuple[int, int]] = []
        for hour in range(0, 101):  # 100.00 at 1.00/h, down to 0
            due = notifications_due(self.THRESHOLDS, Decimal(100 - hour), Decimal(1), sent)
            log += [(hour, threshold) for threshold in due.to_send]
            sent = (sent | set(due.to_send)) - set(due.to_reset)
        assert log == [(28, 72), (76, 24), (94, 6)]  # 72, 24 and 6 hours before zero
        assert sent == {72, 24, 6}

    def test_a_threshold_fires_when_exactly_that_many_hours_remain(self) -> None:
        assert notifications_due((72,), Decimal("72.01"), Decimal(1), frozenset()).to_send == ()
        due = notifications_due((72,), Decimal(72), Decimal(1), frozenset())
        assert due.to_send == (72,) and due.hours_until_zero == Decimal("72.000000")
        assert (
            due.reason
            == "up-to-date credit 72.00: it reaches zero in 72.00 h at 1/h; send the 72 h notification"
        )

    def test_a_new_client_at_zero_with_nothing_running_is_told_nothing(self) -> None:
        idle = notifications_due(self.THRESHOLDS, Decimal(0), Decimal(0), frozenset())
        assert (idle.to_send, idle.hours_until_zero) == ((), None)
        assert (
            idle.reason
            == "up-to-date credit 0.00: nothing is running, so it does not go down; no notification due"
        )

    def test_at_zero_with_something_running_or_under_zero_every_threshold_is_crossed(self) -> None:
        assert notifications_due(self.THRESHOLDS, Decimal(0), Decimal(1), frozenset()).to_send == (72, 24, 6)
        owing = notifications_due(self.THRESHOLDS, Decimal("-0.01"), Decimal(0), frozenset())
        assert owing.to_send == (72, 24, 6)  # stopped, but owing: still told

    def test_a_sent_notification_is_not_sent_again_at_the_same_moment(self) -> None:
        due = notifications_due(self.THRESHOLDS, Decimal(20), Decimal(1), frozenset({72, 24}))
        assert (due.to_send, due.to_reset) == ((), ())
        assert due.reason.endswith("no notification due")

    def test_a_big_drop_sends_every_crossed_threshold_largest_first(self) -> None:
        due = notifications_due(self.THRESHOLDS, Decimal(5), Decimal(1), frozenset())
        assert due.to_send == (72, 24, 6)
        assert due.reason.endswith("send the 72 h, 24 h, 6 h notifications")

    def test_topping_up_resets_them_so_they_are_sent_again_at_the_next_crossing(self) -> None:
        due = notifications_due(self.THRESHOLDS, Decimal(500), Decimal(1), frozenset({72, 24, 6}))
        assert (due.to_send, due.to_reset) == ((), (72, 24, 6))
        partly = notifications_due(self.THRESHOLDS, Decimal(30), Decimal(1), frozenset({72, 24, 6}))
        assert (partly.to_send, partly.to_reset) == ((), (24, 6))  # still within 72 h of zero
        again = notifications_due(self.THRESHOLDS, Decimal(24), Decimal(1), frozenset({72}))
        assert again.to_send == (24,)

    def test_with_nothing_running_no_notification_is_due_and_sent_ones_reset(self) -> None:
        due = notifications_due(self.THRESHOLDS, Decimal(10), Decimal(0), frozenset({72}))
        assert (due.to_send, due.to_reset, due.hours_until_zero) == ((), (72,), None)
        assert "nothing is running" in due.reason

    def test_a_client_already_at_zero_is_notified_of_every_threshold(self) -> None:
        assert notifications_due(self.THRESHOLDS, Decimal(-1), Decimal(0), frozenset()).to_send == (72, 24, 6)


def decide(
    config: Configuration,
    up_to_date: str,
    *,
    now: datetime = NOW,
    under_since: datetime | None = None,
    suspended_at: datetime | None = None,
    has_agreement: bool = False,
    burn_rate: str = "0",
) -> Decision:
    state = CreditState(Decimal(up_to_date), Decimal(0))
    return suspension_decision(
        config, state, has_agreement, now, under_since, suspended_at, burn_rate=Decimal(burn_rate)
    )


class TestSuspension:
    def test_a_client_under_the_credit_limit_is_suspended_when_no_delay_is_set(self) -> None:
        decision = decide(Configuration(), "-0.01")
        assert decision.kind is DecisionKind.SUSPEND and not decision.shelve
        assert decision.reason == (
            "up-to-date credit -0.01 is under the credit limit 0.00; "
            "no suspension delay is configured: suspend"
        )

    def test_unsettled_usage_counts_towards_the_credit_limit(self) -> None:
        state = CreditState(Decimal(10), Decimal("10.01"))
        assert (
            suspension_decision(Configuration(), state, False, NOW, None, None).kind is DecisionKind.SUSPEND
        )

    def test_a_client_exactly_at_the_credit_limit_is_not_under_it(self) -> None:
        decision = decide(Configuration(credit_limit=Decimal(-100)), "-100")
        assert decision.kind is DecisionKind.NONE
        assert decision.reason == "up-to-date credit -100.00 is at or above the credit limit -100.00"

    def test_instances_are_shelved_when_the_configuration_says_so(self) -> None:
        decision = decide(Configuration(shelve_instances_on_suspend=True), "-1")
        assert decision.kind is DecisionKind.SUSPEND and decision.shelve
        assert decision.reason.endswith("suspend, shelving the instances")

    def test_nobody_is_suspended_when_automatic_suspension_is_off(self) -> None:
        decision = decide(Configuration(suspension=SuspensionRule(enabled=False)), "-500")
        assert decision.kind is DecisionKind.NONE
        assert decision.reason.endswith("but automatic suspension is off")

    def test_agreement_clients_are_measured_against_their_own_credit_limit(self) -> None:
        config = Configuration(credit_limit=Decimal(0), credit_limit_on_agreement=Decimal(-100))
        assert decide(config, "-50").kind is DecisionKind.SUSPEND
        on_agreement = decide(config, "-50", has_agreement=True)
        assert on_agreement.kind is DecisionKind.NONE
        assert (
            on_agreement.reason
            == "up-to-date credit -50.00 is at or above the credit limit -100.00 (on agreement)"
        )
        assert decide(config, "-100.01", has_agreement=True).kind is DecisionKind.SUSPEND


class TestSuspensionDelays:
    """Seed 001: delay by hours and/or until credit is used; with both, the first matched wins."""

    BY_HOURS = Configuration(suspension=SuspensionRule(delay_hours=48))
    BY_CREDIT = Configuration(suspension=SuspensionRule(delay_credit=Decimal(10)))
    BOTH = Configuration(suspension=SuspensionRule(delay_hours=48, delay_credit=Decimal(10)))

    def test_delay_by_hours_waits_48_hours_from_when_the_client_went_under_the_limit(self) -> None:
        went_under = NOW - 48 * HOUR
        waiting = decide(self.BY_HOURS, "-500", under_since=went_under + SECOND)
        assert waiting.kind is DecisionKind.NONE
        assert waiting.due_at == NOW + SECOND
        assert "suspension delayed: under the limit for 48.00 h of the 48 h delay" in waiting.reason
        due = decide(self.BY_HOURS, "-500", under_since=went_under)
        assert due.kind is DecisionKind.SUSPEND
        assert "longer than the delay of 48 h" in due.reason

    def test_a_client_first_seen_under_the_limit_now_starts_the_hours_delay_now(self) -> None:
        decision = decide(self.BY_HOURS, "-500", under_since=None)
        assert decision.kind is DecisionKind.NONE and decision.due_at == NOW + 48 * HOUR

    def test_delay_until_credit_is_used_suspends_once_the_shortfall_reaches_10(self) -> None:
        within = decide(self.BY_CREDIT, "-9.99")
        assert within.kind is DecisionKind.NONE
        assert within.reason.endswith(
            "suspension delayed: 9.99 under the limit, 0.01 left of the delay of 10.00"
        )
        reached = decide(self.BY_CREDIT, "-10")
        assert reached.kind is DecisionKind.SUSPEND
        assert "it is 10.00 under the limit, the delay of 10.00 is used: suspend" in reached.reason

    def test_the_credit_delay_ends_when_the_burn_rate_uses_the_rest_of_it(self) -> None:
        """-4.00 under a limit of 0 with a delay of 10: 6.00 left at 0.75/h is used in 8 h, at 20:00."""
        waiting = decide(self.BY_CREDIT, "-4", burn_rate="0.75")
        assert waiting.kind is DecisionKind.NONE and waiting.due_at == NOW + 8 * HOUR
        assert waiting.reason.endswith(
            "4.00 under the limit, 6.00 left of the delay of 10.00, used at 2024-03-10T20:00:00+00:00 "
            "at 0.75/h"
        )
        eight_hours_on = decide(self.BY_CREDIT, "-10", now=NOW + 8 * HOUR, burn_rate="0.75")
        assert eight_hours_on.kind is DecisionKind.SUSPEND

    def test_the_first_delay_to_end_is_the_decision_s_due_moment(self) -> None:
        """The hours end 46 h from now, the credit delay (8.00 left at 2/h) in 4 h: due in 4 h."""
        decision = decide(self.BOTH, "-2", under_since=NOW - 2 * HOUR, burn_rate="2")
        assert decision.due_at == NOW + 4 * HOUR

    def test_the_credit_delay_counts_from_the_agreement_limit(self) -> None:
        config = replace(self.BY_CREDIT, credit_limit_on_agreement=Decimal(-100))
        assert decide(config, "-105", has_agreement=True).kind is DecisionKind.NONE
        assert decide(config, "-111", has_agreement=True).kind is DecisionKind.SUSPEND

    def test_with_both_delays_the_hours_win_when_they_pass_first(self) -> None:
        decision = decide(self.BOTH, "-2", under_since=NOW - 48 * HOUR)
        assert decision.kind is DecisionKind.SUSPEND
        assert "longer than the delay of 48 h" in decision.reason and "more than" not in decision.reason

    def test_with_both_delays_the_credit_wins_when_it_is_used_first(self) -> None:
        decision = decide(self.BOTH, "-25", under_since=NOW - 2 * HOUR)
        assert decision.kind is DecisionKind.SUSPEND
        assert "it is 25.00 under the limit, the delay of 10.00 is used" in decision.reason
        assert "48 h" not in decision.reason

    def test_with_both_delays_pending_the_reason_gives_both(self) -> None:
        decision = decide(self.BOTH, "-2", under_since=NOW - 2 * HOUR)
        assert decision.kind is DecisionKind.NONE and decision.due_at == NOW + 46 * HOUR
        assert decision.reason == (
            "up-to-date credit -2.00 is under the credit limit 0.00; suspension delayed: under the limit for "
            "2.00 h of the 48 h delay (ends 2024-03-12T10:00:00+00:00); 2.00 under the limit, 8.00 left of "
            "the delay of 10.00"
        )


class TestResumeAndTermination:
    SUSPENDED = NOW - 72 * HOUR
    TERMINATING = Configuration(termination=TerminationRule(enabled=True, delay_hours=72))

    def test_a_suspended_client_back_at_the_credit_limit_is_resumed(self) -> None:
        decision = decide(Configuration(), "0", suspended_at=self.SUSPENDED)
        assert decision.kind is DecisionKind.RESUME
        assert "unshelve what was shelved" in decision.reason

    def test_a_suspended_agreement_client_resumes_at_its_own_limit(self) -> None:
        config = Configuration(credit_limit_on_agreement=Decimal(-100))
        assert decide(config, "-50", suspended_at=self.SUSPENDED).kind is DecisionKind.KEEP_SUSPENDED
        assert (
            decide(config, "-50", suspended_at=self.SUSPENDED, has_agreement=True).kind is DecisionKind.RESUME
        )

    def test_a_suspended_client_is_never_terminated_unless_termination_is_enabled(self) -> None:
        decision = decide(Configuration(), "-1000", suspended_at=NOW - 3650 * DAY)
        assert decision.kind is DecisionKind.KEEP_SUSPENDED
        assert decision.reason.endswith("automatic termination is off")

    def test_termination_comes_once_the_72_hour_delay_since_suspension_has_passed(self) -> None:
        at_delay = decide(self.TERMINATING, "-1", suspended_at=self.SUSPENDED)
        assert at_delay.kind is DecisionKind.KEEP_SUSPENDED and at_delay.due_at == NOW
        after = decide(self.TERMINATING, "-1", suspended_at=self.SUSPENDED, now=NOW + SECOND)
        assert after.kind is DecisionKind.TERMINATE
        assert after.reason == (
            "up-to-date credit -1.00 is still under the credit limit 0.00; suspended at "
            "2024-03-07T12:00:00+00:00; the termination delay of 72 h has passed: terminate"
        )

    def test_suspend_instead_of_termination_keeps_the_client_suspended(self) -> None:
        config = Configuration(
            termination=TerminationRule(enabled=True, delay_hours=72, suspend_instead=True)
        )
        decision = decide(config, "-1", suspended_at=self.SUSPENDED, now=NOW + DAY)
        assert decision.kind is DecisionKind.KEEP_SUSPENDED
        assert "suspends instead of terminating" in decision.reason

    def test_a_client_paying_before_the_termination_is_resumed_instead(self) -> None:
        assert (
            decide(self.TERMINATING, "5", suspended_at=self.SUSPENDED, now=NOW + DAY).kind
            is DecisionKind.RESUME
        )

    def test_with_no_termination_delay_the_termination_still_waits_for_the_next_run(self) -> None:
        config = Configuration(termination=TerminationRule(enabled=True, delay_hours=0))
        assert decide(config, "-1").kind is DecisionKind.SUSPEND
        assert decide(config, "-1", suspended_at=NOW).kind is DecisionKind.KEEP_SUSPENDED
        assert decide(config, "-1", suspended_at=NOW, now=NOW + SECOND).kind is DecisionKind.TERMINATE

    def test_re_running_for_the_same_moment_after_suspending_changes_nothing(self) -> None:
        assert decide(self.TERMINATING, "-1").kind is DecisionKind.SUSPEND
        again = decide(self.TERMINATING, "-1", suspended_at=NOW)
        assert again.kind is DecisionKind.KEEP_SUSPENDED and again.due_at == NOW + 72 * HOUR

    def test_naive_moments_are_refused(self) -> None:
        with pytest.raises(ValueError, match="naive datetime"):
            decide(Configuration(), "-1", now=datetime(2024, 3, 10))


class TestPayingFromCredit:
    """Seed 001: auto pay only when enough credit leaves the minimum up-to-date credit."""

    def test_auto_pay_is_refused_when_the_minimum_would_be_broken(self) -> None:
        allowed, reason = can_pay_from_credit(Decimal(30), Decimal(40), Decimal(20), only_when_enough=True)
        assert not allowed
        assert reason == (
            "paying 30.00 from up-to-date credit 40.00 leaves 10.00, under the minimum up-to-date credit of "
            "20.00 to be left after paying an invoice"
        )

    def test_leaving_exactly_the_minimum_is_enough(self) -> None:
        verdict = can_pay_from_credit(Decimal(30), Decimal(50), Decimal(20), only_when_enough=True)
        assert verdict and verdict.reason.endswith("leaves 20.00, at least the minimum of 20.00")

    def test_without_only_when_enough_an_invoice_is_paid_even_into_debt(self) -> None:
        verdict = can_pay_from_credit(Decimal(30), Decimal(10), Decimal(20), only_when_enough=False)
        assert verdict.allowed and "leaves -20.00; auto pay only when enough credit is off" in verdict.reason

    def test_the_configuration_decides_whether_invoices_are_auto_paid(self) -> None:
        config = Configuration(
            generate_invoices=True,
            automatic_settlements=True,
            auto_pay_only_when_enough_credit=True,
            minimum_credit_after_payment=Decimal(20),
        )
        assert not can_auto_pay_invoice(config, Decimal(30), Decimal(40))
        assert can_auto_pay_invoice(config, Decimal(30), Decimal(50))
        no_settlements = replace(config, automatic_settlements=False)
        assert can_auto_pay_invoice(no_settlements, Decimal(1), Decimal(100)) == (
            False,
            "automatic settlements are off",
        )
        external = replace(config, generate_invoices=False)
        assert not can_auto_pay_invoice(external, Decimal(1), Decimal(100))

    def test_by_default_an_invoice_is_paid_from_credit_only_when_the_credit_covers_it(self) -> None:
        config = Configuration(generate_invoices=True)
        assert not can_auto_pay_invoice(config, Decimal(48), Decimal(0))
        assert not can_auto_pay_invoice(config, Decimal(48), Decimal("47.99"))
        assert can_auto_pay_invoice(config, Decimal(48), Decimal(48))


class TestCreatingServices:
    def test_a_client_with_the_required_credit_can_create_services(self) -> None:
        config = Configuration(required_credit_for_new_services=Decimal(10))
        allowed, reason = can_create_services(
            config, CreditState(Decimal(15), Decimal(5)), has_agreement=False
        )
        assert allowed
        assert reason == "up-to-date credit 10.00 is at least the required credit for new services of 10.00"

    def test_a_client_under_the_required_credit_is_told_how_much_to_add(self) -> None:
        config = Configuration(required_credit_for_new_services=Decimal(10))
        verdict = can_create_services(config, CreditState(Decimal(15), Decimal("5.01")), has_agreement=False)
        assert not verdict
        assert verdict.reason.endswith("add 0.01 to create or upgrade resources")

    def test_an_agreement_client_may_create_services_down_to_minus_5000(self) -> None:
        config = Configuration(required_credit_on_agreement=Decimal(-5000))
        state = CreditState(Decimal(-4999), Decimal(0))
        assert not can_create_services(config, state, has_agreement=False)
        verdict = can_create_services(config, state, has_agreement=True)
        assert verdict and "required credit for new services on agreement of -5000.00" in verdict.reason


# Properties -------------------------------------------------------------------------------------------------

amounts = st.decimals(min_value=-1000, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=0, max_value=20, places=4, allow_nan=False, allow_infinity=False)
offsets = st.none() | st.integers(min_value=0, max_value=400 * 3600).map(lambda s: NOW - timedelta(seconds=s))
suspension_rules = st.builds(
    SuspensionRule,
    enabled=st.booleans(),
    delay_hours=st.none() | st.integers(min_value=0, max_value=200),
    delay_credit=st.none() | st.decimals(min_value=0, max_value=100, places=2),
)
termination_rules = st.builds(
    TerminationRule,
    enabled=st.booleans(),
    delay_hours=st.integers(min_value=0, max_value=200),
    suspend_instead=st.booleans(),
)
configurations = st.builds(
    Configuration,
    credit_limit=amounts,
    credit_limit_on_agreement=st.none() | amounts,
    suspension=suspension_rules,
    termination=termination_rules,
    shelve_instances_on_suspend=st.booleans(),
    billable_seconds_per_month=st.none() | st.integers(min_value=1, max_value=3_000_000),
    auto_invoicing=st.one_of(
        st.builds(AutoInvoicing, enabled=st.booleans()),
        st.builds(
            AutoInvoicing,
            enabled=st.just(True),
            mode=st.just(AutoInvoiceMode.FIXED),
            fixed_amount=st.decimals(min_value="0.01", max_value=1000, places=3),
        ),
    ),
)


@given(configurations, amounts, amounts, st.booleans(), offsets, offsets)
def test_deciding_twice_gives_the_same_decision_and_carrying_it_out_then_re_running_changes_nothing(
    config: Configuration,
    credit: Decimal,
    unsettled: Decimal,
    has_agreement: bool,
    under_limit_since: datetime | None,
    suspended_at: datetime | None,
) -> None:
    state = CreditState(credit, unsettled)
    first = suspension_decision(config, state, has_agreement, NOW, under_limit_since, suspended_at)
    assert suspension_decision(config, state, has_agreement, NOW, under_limit_since, suspended_at) == first
    assert first.reason
    if first.kind is DecisionKind.SUSPEND:
        again = suspension_decision(config, state, has_agreement, NOW, under_limit_since, NOW)
        assert again.kind is DecisionKind.KEEP_SUSPENDED
    if first.kind is DecisionKind.RESUME:
        again = suspension_decision(config, state, has_agreement, NOW, None, None)
        assert again.kind is DecisionKind.NONE
    if first.kind is DecisionKind.TERMINATE:
        assert config.termination.enabled and not config.termination.suspend_instead


@given(
    configurations, rates, amounts, amounts, st.decimals(min_value=0, max_value=500, places=2), st.booleans()
)
def test_an_auto_invoice_is_a_positive_amount_in_cents_decided_the_same_way_twice(
    config: Configuration,
    hourly: Decimal,
    up_to_date: Decimal,
    limit: Decimal,
    unpaid: Decimal,
    has_unpaid_auto_invoice: bool,
) -> None:
    def run() -> tuple[Decimal | None, str]:
        decision = auto_invoice_amount(
            config,
            usd(str(hourly)),
            up_to_date,
            limit,
            unpaid,
            has_unpaid_auto_invoice=has_unpaid_auto_invoice,
        )
        return decision.amount, decision.reason

    amount, reason = run()
    assert run() == (amount, reason) and reason
    if amount is not None:
        assert isinstance(amount, Decimal) and amount > 0
        assert amount.as_tuple().exponent == -2
        assert not has_unpaid_auto_invoice and config.auto_invoicing.enabled
        issued = auto_invoice_amount(
            config, usd(str(hourly)), up_to_date, limit, unpaid, has_unpaid_auto_invoice=True
        )
        assert issued.amount is None


@given(
    st.lists(st.integers(min_value=1, max_value=200), max_size=3, unique=True),
    amounts,
    rates,
    st.frozensets(st.integers(min_value=1, max_value=200), max_size=3),
)
def test_notifications_once_sent_are_not_sent_again_for_the_same_moment(
    thresholds: list[int], up_to_date: Decimal, burn_rate: Decimal, already_sent: frozenset[int]
) -> None:
    already_sent = already_sent & set(thresholds)
    due = notifications_due(thresholds, up_to_date, burn_rate, already_sent)
    assert notifications_due(thresholds, up_to_date, burn_rate, already_sent) == due
    assert not set(due.to_send) & already_sent and set(due.to_reset) <= already_sent
    sent = (already_sent | set(due.to_send)) - set(due.to_reset)
    again = notifications_due(thresholds, up_to_date, burn_rate, sent)
    assert (again.to_send, again.to_reset) == ((), ())


class TestTheUpToDateCredit:
    """``account``: credit less the unsettled usage at current prices, the running hours included."""

    AT = datetime(2022, 11, 1, 12, tzinfo=UTC)
    HORIZON = running_horizon(timedelta(hours=1), timedelta(minutes=30))

    def usage(self, **fields: object) -> ResourceUsage:
        values: dict[str, object] = {
            "source": "openstack",
            "resource_id": "vm-1",
            "name": "web",
            "plan": "m1.small",
            "hours": Decimal(10),
            "tokens": None,
            "last_window_end": self.AT - timedelta(hours=2),
        }
        values.update(fields)
        return ResourceUsage(**values)  # type: ignore[arg-type]

    def test_a_running_server_costs_its_collected_hours_and_the_hours_since(self) -> None:
        balance = account(Decimal("50"), [self.usage()], book(), "EUR", self.AT, self.HORIZON)
        assert balance.burn_rate == Decimal("0.10")
        assert balance.unsettled == Decimal("1.20")  # 10 collected hours and 2 since, at 0.10
        assert balance.up_to_date == Decimal("48.80")
        assert [resource.resource_id for resource in balance.running] == ["vm-1"]

    def test_a_server_whose_last_window_is_old_no_longer_runs(self) -> None:
        stopped = self.usage(last_window_end=self.AT - timedelta(hours=3))
        assert timedelta(hours=2, minutes=30) == self.HORIZON
        balance = account(Decimal("50"), [stopped], book(), "EUR", self.AT, self.HORIZON)
        assert (balance.running, balance.burn_rate, balance.unsettled) == ((), Decimal(0), Decimal("1.00"))

    def test_solusvm_usage_costs_its_tokens(self) -> None:
        vps = self.usage(source="solusvm", resource_id="42", plan="7", tokens=Decimal(700))
        balance = account(Decimal(0), [vps], book(), "EUR", self.AT, self.HORIZON)
        assert balance.unsettled == Decimal("0.71")  # 700 tokens and 2 hours at 7 tokens, at 0.001

    def test_a_missing_price_is_left_out_and_said(self) -> None:
        unknown = self.usage(plan="m9.huge")
        balance = account(Decimal(5), [unknown], book(), "EUR", self.AT, self.HORIZON)
        assert (balance.unsettled, balance.burn_rate) == (Decimal(0), Decimal(0))
        assert [problem.rsplit("; ", 1)[1] for problem in balance.problems] == [
            "it is left out of the burn rate",
            "its usage is left out of the up-to-date credit",
        ]
        assert all("m9.huge" in problem for problem in balance.problems)
