"""The plan of an invoicing run for one client: which cycles it bills, and what it holds back and why.

Plain values in, a plan out: the client's usage (with when it was collected), its standing invoices and
its prices. What the 1st of November issues, what a re-run finds already invoiced, how a missed run is
caught up, and where late usage goes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bridge.domain.clients import Client
from bridge.domain.configuration import Configuration
from bridge.domain.cycles import BillingCycle, billing_anchor, client_cycle, cycles_to_invoice
from bridge.domain.invoicing import (
    ALREADY_INVOICED,
    BEFORE_CUTOFF,
    TRANSITIONS,
    ZERO_AMOUNT,
    ClientPrices,
    CollectedUsage,
    ExistingInvoice,
    InvoicePlan,
    can_become,
    client_items,
    needs_invoiced_lines,
    plan_invoices,
    usage_lines,
)
from bridge.domain.pricing import PricedLine
from bridge.domain.terms import ClientTerms, Discount, PriceSchedule
from bridge.domain.usage import UsageRecord
from tests.domain.builders import HOUR, book, usage, utc, whole_cycle

ZONE = "Europe/Berlin"
NOV_1 = date(2022, 11, 1)
AFTER_NOV_1 = utc(2022, 11, 1, 12)
CLIENT = Client(7, "ada@example.com", "Ada", "EUR", "default", utc(2021, 3, 15))
SEPTEMBER, OCTOBER = cycles_to_invoice(None, ZONE, NOV_1, 1)


def collected(record: UsageRecord, at: datetime = AFTER_NOV_1 - 12 * HOUR) -> CollectedUsage:
    return CollectedUsage(record, at)


def plan(
    usage_: list[CollectedUsage],
    existing: tuple[ExistingInvoice, ...] = (),
    *,
    configuration: Configuration | None = None,
    prices: ClientPrices | None = None,
    client: Client = CLIENT,
    now: datetime = AFTER_NOV_1,
    cycles: tuple[BillingCycle, ...] = (SEPTEMBER, OCTOBER),
) -> InvoicePlan:
    return plan_invoices(
        client,
        configuration or Configuration(),
        cycles,
        usage_,
        existing,
        prices or ClientPrices(book()),
        invoice_date=NOV_1,
        now=now,
    )


def invoiced(
    cycle: BillingCycle, at: datetime, lines: tuple[PricedLine, ...] | None = None
) -> ExistingInvoice:
    return ExistingInvoice(f"BB-7-{cycle.label}", cycle.start, at, "EUR", lines)


class TestTheCyclesARunLooksAt:
    def test_the_1st_bills_the_month_before_and_catches_up_the_ones_before_it(self) -> None:
        cycles = cycles_to_invoice(None, ZONE, NOV_1, 2)
        assert [cycle.label for cycle in cycles] == ["2022-08", "2022-09", "2022-10"]
        assert cycles[-1].end == datetime(2022, 10, 31, 23, tzinfo=UTC)  # Berlin midnight, in UTC

    def test_an_anniversary_client_is_billed_for_its_last_ended_cycle(self) -> None:
        anchor = billing_anchor(False, utc(2021, 3, 15, 10), ZONE)
        assert anchor == 15
        (cycle,) = cycles_to_invoice(anchor, ZONE, NOV_1, 0)
        assert cycle.label == "2022-09-15"
        assert client_cycle(anchor, utc(2022, 10, 20), ZONE).label == "2022-10-15"

    def test_calendar_months_have_no_anchor(self) -> None:
        assert billing_anchor(True, utc(2021, 3, 15), ZONE) is None
        assert client_cycle(None, utc(2022, 10, 20), ZONE) == OCTOBER


class TestTheMonthlyRun:
    def test_october_usage_is_one_unpaid_invoice_dated_the_1st_and_due_14_days_later(self) -> None:
        result = plan([collected(whole_cycle(OCTOBER))])
        (invoice,) = result.issue
        assert invoice.draft.reference == "BB-7-2022-10"
        assert invoice.draft.total == Decimal("66.67")
        assert invoice.status == "unpaid"
        assert invoice.issued_at == datetime(2022, 10, 31, 23, tzinfo=UTC)
        assert invoice.due_at == invoice.issued_at + timedelta(days=14)
        assert (invoice.issuer, invoice.detail, invoice.preview) == ("whmcs", "detailed", False)
        assert (result.held, result.skipped, result.already) == ((), (), ())

    def test_the_bridge_issues_when_the_configuration_generates_invoices(self) -> None:
        configuration = Configuration(generate_invoices=True, invoice_due_days=30, invoice_detail="simple")
        (invoice,) = plan([collected(whole_cycle(OCTOBER))], configuration=configuration).issue
        assert invoice.issuer == "bridge"
        assert invoice.due_at - invoice.issued_at == timedelta(days=30)
        assert invoice.detail == "simple"

    def test_a_client_without_usage_gets_nothing(self) -> None:
        assert plan([]) == InvoicePlan()

    def test_a_re_run_finds_the_invoice_and_issues_nothing(self) -> None:
        result = plan([collected(whole_cycle(OCTOBER))], (invoiced(OCTOBER, AFTER_NOV_1),))
        assert result.issue == ()
        assert [(item.reference, item.reason) for item in result.already] == [
            ("BB-7-2022-10", ALREADY_INVOICED)
        ]

    def test_a_missed_month_is_invoiced_on_its_own_invoice_before_the_last_one(self) -> None:
        result = plan([collected(whole_cycle(SEPTEMBER)), collected(whole_cycle(OCTOBER))])
        assert [invoice.draft.reference for invoice in result.issue] == ["BB-7-2022-09", "BB-7-2022-10"]
        assert all(not invoice.draft.late_lines for invoice in result.issue)

    def test_a_dry_run_before_the_cycle_ends_is_a_preview(self) -> None:
        (invoice,) = plan([collected(whole_cycle(OCTOBER))], now=utc(2022, 10, 30)).issue
        assert invoice.preview


class TestLateUsage:
    def september_invoiced(self, *, lines: bool = True) -> ExistingInvoice:
        first = plan([collected(usage(SEPTEMBER.start, SEPTEMBER.start + 100 * HOUR))]).issue[0]
        return invoiced(SEPTEMBER, utc(2022, 10, 1), first.draft.lines if lines else None)

    def test_usage_collected_after_its_cycle_was_invoiced_is_billed_late_on_the_next_invoice(self) -> None:
        usage_ = [
            collected(usage(SEPTEMBER.start, SEPTEMBER.start + 100 * HOUR), utc(2022, 9, 30)),
            collected(usage(SEPTEMBER.start + 100 * HOUR, SEPTEMBER.start + 150 * HOUR), utc(2022, 10, 20)),
            collected(whole_cycle(OCTOBER)),
        ]
        existing = (self.september_invoiced(),)
        assert needs_invoiced_lines((SEPTEMBER, OCTOBER), usage_, existing)
        (invoice,) = plan(usage_, existing).issue
        (late,) = invoice.draft.late_lines
        assert (late.period, late.billed_hours, late.amount) == (SEPTEMBER, Decimal(50), Decimal("5.00"))

    def test_usage_collected_before_the_invoice_is_not_late(self) -> None:
        usage_ = [collected(usage(SEPTEMBER.start, SEPTEMBER.start + 100 * HOUR), utc(2022, 9, 30))]
        existing = (self.september_invoiced(lines=False),)
        assert not needs_invoiced_lines((SEPTEMBER, OCTOBER), usage_, existing)
        assert plan(usage_, existing) == InvoicePlan()

    def test_late_usage_without_the_invoiced_lines_is_refused_rather_than_billed_twice(self) -> None:
        usage_ = [collected(usage(SEPTEMBER.start, SEPTEMBER.start + HOUR), utc(2022, 10, 20))]
        with pytest.raises(ValueError, match="were not read"):
            plan(usage_, (self.september_invoiced(lines=False),))


class TestHeldAndSkipped:
    def test_usage_without_a_price_holds_the_invoice_naming_the_resource(self) -> None:
        result = plan([collected(whole_cycle(OCTOBER, plan="m9.huge"))])
        (held,) = result.held
        assert held.reference == "BB-7-2022-10"
        assert [error.resource_id for error in held.errors] == ["vm-1"]
        assert result.issue == ()

    def test_prices_in_another_currency_hold_the_invoice_with_the_fix(self) -> None:
        (held,) = plan([collected(whole_cycle(OCTOBER))], prices=ClientPrices(book("USD"))).held
        assert held.problem == (
            "client 7 is billed in EUR but the prices are in USD; "
            "change the client's currency or add prices in it"
        )

    def test_a_plan_missing_from_the_settings_holds_the_invoice(self) -> None:
        prices = ClientPrices(book(), problem="pricing plan 'gold' is not in the settings")
        (held,) = plan([collected(whole_cycle(OCTOBER))], prices=prices).held
        assert (held.reference, held.problem) == (
            "BB-7-2022-10",
            "pricing plan 'gold' is not in the settings",
        )

    def test_a_zero_invoice_is_skipped_unless_the_configuration_issues_zero_invoices(self) -> None:
        free = [collected(whole_cycle(OCTOBER, plan="free.tiny"))]
        assert [item.reason for item in plan(free).skipped] == [ZERO_AMOUNT]
        (invoice,) = plan(free, configuration=Configuration(do_not_invoice_zero_prices=False)).issue
        assert invoice.draft.total == 0

    def test_a_cycle_that_ended_before_the_cut_off_is_skipped(self) -> None:
        configuration = Configuration(generate_invoices_after=OCTOBER.end)
        result = plan([collected(whole_cycle(OCTOBER))], configuration=configuration)
        assert [(item.reference, item.reason) for item in result.skipped] == [("BB-7-2022-10", BEFORE_CUTOFF)]
        before_the_end = Configuration(generate_invoices_after=OCTOBER.end - HOUR)
        assert len(plan([collected(whole_cycle(OCTOBER))], configuration=before_the_end).issue) == 1


class TestUnderTerms:
    def test_a_discount_in_the_schedule_prices_the_invoice(self) -> None:
        terms = ClientTerms(discounts=(Discount("percentage", Decimal(10), OCTOBER.start),))
        schedule = PriceSchedule(terms, {"default": book()})
        (invoice,) = plan([collected(whole_cycle(OCTOBER))], prices=ClientPrices(book(), schedule)).issue
        assert invoice.draft.total == Decimal("60.00")  # 66.67 (capped) less 10%


class TestWhatIsStoredAndShown:
    def test_the_stored_lines_follow_the_draft_with_positions_from_one(self) -> None:
        (invoice,) = plan(
            [collected(whole_cycle(OCTOBER)), collected(whole_cycle(OCTOBER, resource_id="vm-2"))]
        ).issue
        lines = usage_lines(invoice.draft)
        assert [(line.position, line.resource_id, line.amount) for line in lines] == [
            (1, "vm-1", Decimal("66.67")),
            (2, "vm-2", Decimal("66.67")),
        ]
        assert lines[0].description == invoice.draft.lines[0].description()

    def test_a_simple_invoice_shows_one_item_per_source(self) -> None:
        (invoice,) = plan(
            [collected(whole_cycle(OCTOBER)), collected(whole_cycle(OCTOBER, resource_id="vm-2"))]
        ).issue
        items = client_items(invoice.draft, "simple")
        assert [(item.description, item.amount) for item in items] == [
            ("OpenStack instances, 2022-10 (2 resources)", Decimal("133.34"))
        ]
        assert len(client_items(invoice.draft, "detailed")) == 2


class TestStatus:
    def test_unpaid_invoices_are_paid_or_cancelled_and_those_never_change_again(self) -> None:
        assert can_become("unpaid", "paid") and can_become("unpaid", "cancelled")
        assert not can_become("paid", "cancelled") and not can_become("cancelled", "paid")
        assert TRANSITIONS["paid"] == TRANSITIONS["cancelled"] == frozenset()
