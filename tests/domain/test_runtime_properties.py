"""The runtime rule against random true histories: never bills more than ran, bills all when it can know.

Each example draws a server's true history (created, then starts, stops, restarts, suspensions,
resumptions and maybe a deletion at random instants), polls at random instants (days may pass without
one), and the task log that records every transition, with or without its timestamps. The truth is the
history itself; the rule sees only the evidence.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.domain.pricing import PlanRate
from bridge.domain.runtime import Evidence, build_timeline, month_runtime, started_hours
from tests.support.solusvm_histories import (
    MONTH_END,
    MONTH_START,
    History,
    evidence,
    histories,
    poll_instants,
)


def billed(history: History, ev: Evidence, suspended_billed: bool) -> tuple[int, int]:
    bill = month_runtime(
        build_timeline(ev), MONTH_START, MONTH_END, PlanRate(2), suspended_billed=suspended_billed
    )
    assert bill.observed_hours + bill.inferred_hours == bill.billed_hours
    assert bill.tokens == 2 * bill.billed_hours
    truth = started_hours(history.runtime(MONTH_START, MONTH_END, suspended_billed))
    return bill.billed_hours, truth


@settings(max_examples=500, derandomize=True, deadline=None)
@given(data=st.data(), suspended_billed=st.booleans())
def test_a_task_log_with_timestamps_bills_exactly_the_true_runtime(
    data: st.DataObject, suspended_billed: bool
) -> None:
    history = data.draw(histories())
    polled = data.draw(poll_instants(history))
    every_timestamp = [True] * len(history.transitions)

    hours, truth = billed(history, evidence(history, polled, every_timestamp), suspended_billed)

    assert hours == truth


@settings(max_examples=500, derandomize=True, deadline=None)
@given(data=st.data(), suspended_billed=st.booleans())
def test_without_timestamps_the_rule_never_bills_more_than_ran(
    data: st.DataObject, suspended_billed: bool
) -> None:
    history = data.draw(histories())
    polled = data.draw(poll_instants(history))
    timed = data.draw(
        st.lists(st.booleans(), min_size=len(history.transitions), max_size=len(history.transitions))
    )

    hours, truth = billed(history, evidence(history, polled, timed), suspended_billed)

    assert hours <= truth
