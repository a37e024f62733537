"""What a credit notification may say (issue 15 point 5): "runs out in about N hours" only above zero and
burning; at or below zero, that it is so and when the suspension rule acts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.domain.configuration import Configuration, SuspensionRule
from bridge.domain.notifications import (
    CreditExhausted,
    CreditLow,
    about_hours,
    credit_notice,
    suspension_expected,
)

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def notice(up_to_date: str, burn: str, **config: object) -> CreditLow | CreditExhausted:
    return credit_notice(
        Configuration(**config),  # type: ignore[arg-type]
        threshold_hours=24,
        up_to_date=Decimal(up_to_date),
        currency="USD",
        burn_rate=Decimal(burn),
        credit_limit=Decimal(config.get("credit_limit", 0)),  # type: ignore[arg-type]
        now=NOW,
        under_limit_since=None,
    )


def test_above_zero_and_burning_it_runs_out_at_the_burn_rate() -> None:
    low = notice("12.50", "0.50")
    assert isinstance(low, CreditLow)
    assert (low.facts()["hours_left"], low.runs_out_at) == (25, NOW + timedelta(hours=25))


@pytest.mark.parametrize(("up_to_date", "burn"), [("0", "1"), ("-5", "1"), ("-5", "0"), ("0", "0")])
def test_at_or_below_zero_it_never_runs_out_it_is_exhausted(up_to_date: str, burn: str) -> None:
    assert isinstance(notice(up_to_date, burn), CreditExhausted)


def test_a_credit_low_notice_cannot_be_made_below_zero() -> None:
    with pytest.raises(ValueError, match="credit above zero"):
        CreditLow(24, Decimal(-1), "USD", Decimal(1), Decimal(1), NOW)


def test_suspension_is_expected_by_the_rule_first_delay_matched() -> None:
    def expected(up_to_date: str, burn: str, rule: SuspensionRule, limit: str = "0") -> datetime | None:
        config = Configuration(suspension=rule, credit_limit=Decimal(limit))
        return suspension_expected(config, Decimal(up_to_date), Decimal(burn), Decimal(limit), NOW, None)

    assert expected("-5", "1", SuspensionRule(enabled=False)) is None
    assert expected("-5", "1", SuspensionRule(enabled=True)) == NOW
    assert expected("-5", "1", SuspensionRule(enabled=True, delay_hours=24)) == NOW + timedelta(hours=24)
    # 5 under the limit, delay until 10 under it: 5 more hours at 1/h, before the 24 h delay
    both = SuspensionRule(enabled=True, delay_hours=24, delay_credit=Decimal(10))
    assert expected("-5", "1", both) == NOW + timedelta(hours=5)
    # a limit of -50: reached in 45 h at 1/h; nothing burns: never
    assert expected("-5", "1", SuspensionRule(enabled=True), "-50") == NOW + timedelta(hours=45)
    assert expected("-5", "0", SuspensionRule(enabled=True), "-50") is None


def test_hours_are_told_whole_and_never_as_zero() -> None:
    assert [about_hours(Decimal(h)) for h in ("0.2", "1.5", "71.49")] == [1, 2, 71]
