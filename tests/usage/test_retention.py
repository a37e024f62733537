"""The hourly usage evidence is kept for billing.hourly_usage_months; its daily totals for good.

Issue 17: month end reads the day rollups, so pruning the hours of an old month changes no invoice, and
a re-collection of a pruned window changes nothing either (its hours can no longer be compared).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.store.tables import usage_records
from bridge.usage.retention import kept_from
from tests.support.invoicing import PRICING, client_with
from tests.support.usage import NOV, OCT, collect, hourly

SEP = datetime(2022, 9, 1, tzinfo=UTC)


def test_kept_from_is_the_start_of_the_billing_month_that_many_months_back() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2022, 11, 15, tzinfo=UTC)
    assert kept_from(now, berlin, 1) == datetime(2022, 9, 30, 22, tzinfo=UTC)  # October 1st, Berlin
    assert kept_from(now, berlin, 3) == datetime(2022, 7, 31, 22, tzinfo=UTC)


def totals(app: App) -> list[tuple[str, str, object]]:
    run = app.invoicing.run(date(2022, 11, 1), dry_run=True)
    return [(i.draft.reference, i.draft.cycle.label, i.draft.total) for i in run.issued]


def test_pruning_september_hours_changes_no_invoice_and_their_windows_are_final(
    make_app: Callable[..., Any], clock: FixedClock
) -> None:
    clock.set(datetime(2022, 11, 10, tzinfo=UTC))
    app: App = make_app(pricing=PRICING)
    client_with(app, "ops@acme.com", project="p-1")
    collect(app, hourly("a", "p-1", "m1.small", SEP, 200))  # a missed September: caught up
    collect(app, hourly("a", "p-1", "m1.small", OCT, 744))
    before = totals(app)

    outcome = app.runner.run("housekeeping")

    assert outcome.status == "succeeded" and outcome.result == {"job_runs": 0, "usage_hours": 200}
    assert totals(app) == before and [label for _, label, _ in before] == ["2022-09", "2022-10"]
    collect(app, hourly("b", "p-1", "m1.large", SEP, 5))  # arrives after its hours were pruned
    assert totals(app) == before
    with app.uow.reading() as tx:
        kept = tx.scalar(select(func.min(usage_records.c.window_start)))
    assert kept == OCT and timedelta(days=31) == NOV - OCT
