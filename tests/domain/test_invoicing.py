"""Invoice drafts: what a client receives on the 1st, and what a re-run or a late collector changes."""

from __future__ import annotations

import dataclasses
import random
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.domain.cycles import anniversary_cycle_containing, cycle_for_invoice_date, next_cycle
from bridge.domain.invoicing import DraftResult, InvoiceDraft, LateUsage, draft_invoice, price_late_usage
from bridge.domain.pricing import PricedLine, price_usage
from bridge.domain.usage import UsageRecord
from tests.domain.builders import HOUR, book, usage, utc, whole_cycle

OCTOBER = cycle_for_invoice_date(date(2022, 11, 1), "Europe/Berlin")
NOVEMBER = next_cycle(OCTOBER)


def october_usage() -> list[UsageRecord]:
    """A client with two OpenStack VMs (one always on) and one SolusVM server."""
    return [
        whole_cycle(OCTOBER, resource_id="vm-b", name="web"),
        usage(OCTOBER.start, OCTOBER.start + 100 * HOUR, resource_id="vm-a", name="db", plan="m1.large"),
        usage(
            OCTOBER.start,
            OCTOBER.start + 700 * HOUR,
            source="solusvm",
            resource_id="42",
            name="vps",
            plan="7",
        ),
    ]


def draft(records: list[UsageRecord], **options: object) -> DraftResult:
    return draft_invoice("42", "EUR", OCTOBER, records, book(), **options)  # type: ignore[arg-type]


class TestTheMonthlyInvoice:
    def test_the_november_1st_run_bills_october_itemised_per_vm(self) -> None:
        result = draft(october_usage())
        assert not result.held
        invoice = result.draft
        assert invoice.reference == "BB-42-2022-10"
        assert [(line.source, line.resource_name) for line in invoice.lines] == [
            ("openstack", "db"),
            ("openstack", "web"),
            ("solusvm", "vps"),
        ]
        assert [line.amount for line in invoice.lines] == [
            Decimal("40.00"),
            Decimal("66.67"),
            Decimal("4.90"),
        ]
        assert invoice.total == Decimal("111.57")

    def test_lines_are_grouped_by_source_with_subtotals(self) -> None:
        invoice = draft(october_usage()).draft
        groups = invoice.by_source()
        assert list(groups) == ["openstack", "solusvm"]
        assert [line.resource_name for line in groups["solusvm"]] == ["vps"]
        assert invoice.subtotal("openstack") == Decimal("106.67") and invoice.subtotal("solusvm") == Decimal(
            "4.90"
        )

    def test_a_rerun_with_records_in_another_order_gives_the_identical_invoice(self) -> None:
        extra = usage(OCTOBER.start, OCTOBER.start + HOUR * 5, resource_id="vm-c", name="web")
        records = [*october_usage(), extra]
        shuffled = list(records)
        random.Random(7).shuffle(shuffled)
        assert draft(shuffled) == draft(records)
        assert [line.resource_id for line in draft(records).draft.lines[1:3]] == ["vm-b", "vm-c"]

    def test_an_anniversary_invoice_is_named_by_its_start_date(self) -> None:
        cycle = anniversary_cycle_containing(utc(2024, 2, 10), 31, "UTC")
        result = draft_invoice("42", "EUR", cycle, [whole_cycle(cycle)], book())
        assert result.draft.reference == "BB-42-2024-01-31"

    def test_a_client_without_usage_gets_an_empty_draft(self) -> None:
        result = draft([])
        assert result.draft.is_empty and result.draft.total == 0 and not result.held

    def test_a_price_book_in_another_currency_is_refused(self) -> None:
        with pytest.raises(ValueError, match="price book is in USD, the invoice in EUR"):
            draft_invoice("42", "EUR", OCTOBER, october_usage(), book("USD"))


class TestRounding:
    def test_a_thousand_half_cent_lines_total_what_the_client_can_add_up(self) -> None:
        # 1000 VMs ran 3 minutes each at 0.10/h: 0.005 each, 0.01 per line after rounding.
        records = [
            usage(
                OCTOBER.start,
                OCTOBER.start + HOUR,
                hours="0.05",
                resource_id=f"vm-{n:04}",
                name=f"batch-{n:04}",
            )
            for n in range(1000)
        ]
        invoice = draft(records).draft
        assert {line.amount for line in invoice.lines} == {Decimal("0.01")}
        assert invoice.total == Decimal("10.00") == sum(line.amount for line in invoice.lines)
        unrounded = sum((line.billed_hours * line.unit_price for line in invoice.lines), Decimal(0))
        assert unrounded == Decimal("5.000") and invoice.total != unrounded


class TestHeldInvoices:
    def test_a_missing_flavor_price_holds_only_that_clients_invoice(self) -> None:
        records = [*october_usage(), whole_cycle(OCTOBER, resource_id="vm-gpu", name="gpu", plan="g1.huge")]
        held = draft(records)
        assert held.held
        (error,) = held.errors
        assert error.resource_name == "gpu" and error.settings_key == 'pricing.flavors."g1.huge"'
        assert "add pricing.flavors" in error.reason
        assert [line.resource_name for line in held.draft.lines] == ["db", "web", "vps"]

        other_client = draft_invoice("43", "EUR", OCTOBER, [whole_cycle(OCTOBER, resource_id="vm-x")], book())
        assert not other_client.held and other_client.draft.total == Decimal("66.67")


class TestLateUsage:
    """Usage that arrives after its month was invoiced goes on the next invoice, marked with its month."""

    def invoiced_october(self, records: list[UsageRecord]) -> tuple[PricedLine, ...]:
        return price_usage(records, OCTOBER, book()).lines

    def test_late_hours_are_billed_next_month_with_their_original_period(self) -> None:
        early = usage(OCTOBER.start, OCTOBER.start + 200 * HOUR)
        late = usage(OCTOBER.start + 200 * HOUR, OCTOBER.start + 300 * HOUR)
        result = draft_invoice(
            "42",
            "EUR",
            NOVEMBER,
            [],
            book(),
            late_usage=[LateUsage(OCTOBER, (early, late), self.invoiced_october([early]))],
        )
        (line,) = result.draft.lines
        assert line.late and line.period == OCTOBER and line.period.label == "2022-10"
        assert (line.billed_hours, line.amount) == (Decimal("100.000000"), Decimal("10.00"))
        assert line.reference == "openstack:vm-1:m1.small:2022-10:late"
        assert result.draft.late_lines == (line,)
        assert result.draft.reference == "BB-42-2022-11"

    def test_a_late_line_and_this_months_line_of_the_same_vm_have_different_references(self) -> None:
        early = usage(OCTOBER.start, OCTOBER.start + 200 * HOUR)
        late = usage(OCTOBER.start + 200 * HOUR, OCTOBER.start + 300 * HOUR)
        late_usage = [LateUsage(OCTOBER, (early, late), self.invoiced_october([early]))]
        result = draft_invoice("42", "EUR", NOVEMBER, [whole_cycle(NOVEMBER)], book(), late_usage=late_usage)
        assert [line.reference for line in result.draft.lines] == [
            "openstack:vm-1:m1.small:2022-10:late",
            "openstack:vm-1:m1.small:2022-11",
        ]
        assert result.draft.total == Decimal("10.00") + Decimal("66.67")

    def test_late_hours_only_fill_up_to_the_cap(self) -> None:
        early = usage(OCTOBER.start, OCTOBER.start + 600 * HOUR)
        late = usage(OCTOBER.start + 600 * HOUR, OCTOBER.end)
        (line,) = price_late_usage(
            LateUsage(OCTOBER, (early, late), self.invoiced_october([early])), book()
        ).lines
        assert line.billed_hours == Decimal("66.666667") and line.capped and line.amount == Decimal("6.67")

    def test_late_hours_after_the_cap_was_reached_cost_nothing_more_yet_are_on_a_late_line(self) -> None:
        """The hours are on the next invoice at 0.00, capped: on no line, reconciliation would find them
        collected in an ended cycle and billed nowhere (a defect), though the bill is right."""
        early = usage(OCTOBER.start, OCTOBER.start + 700 * HOUR)
        late = usage(OCTOBER.start + 700 * HOUR, OCTOBER.end)
        (line,) = price_late_usage(
            LateUsage(OCTOBER, (early, late), self.invoiced_october([early])), book()
        ).lines
        assert (line.late, line.capped, line.period) == (True, True, OCTOBER)
        assert (line.hours, line.billed_hours, line.amount) == (Decimal(45), Decimal(0), Decimal("0.00"))

    def test_late_hours_beyond_the_cap_of_a_full_month_add_no_money_to_the_next_invoice(self) -> None:
        """A VM billed at the cap for 672 hours, then 48 more hours collected late: 48 hours on a late line
        of the next invoice, 0.00; its total is this month's usage alone."""
        early = usage(OCTOBER.start, OCTOBER.start + 672 * HOUR)
        late = usage(OCTOBER.start + 672 * HOUR, OCTOBER.start + 720 * HOUR)
        invoiced = self.invoiced_october([early])
        result = draft_invoice(
            "42",
            "EUR",
            NOVEMBER,
            [whole_cycle(NOVEMBER)],
            book(),
            late_usage=[LateUsage(OCTOBER, (early, late), invoiced)],
        )
        (late_line,) = result.draft.late_lines
        assert sum(line.hours for line in (*invoiced, late_line)) == Decimal(720)
        assert (late_line.hours, late_line.amount) == (Decimal("48.000000"), Decimal("0.00"))
        assert result.draft.total == Decimal("66.67")

    def test_a_late_half_hour_inside_an_already_billed_solusvm_hour_is_not_billed_again(self) -> None:
        early = usage(OCTOBER.start, OCTOBER.start + 701 * HOUR, hours="700.2", source="solusvm", plan="7")
        late = usage(
            OCTOBER.start + 701 * HOUR, OCTOBER.start + 702 * HOUR, hours="0.5", source="solusvm", plan="7"
        )
        invoiced = self.invoiced_october([early])
        assert invoiced[0].tokens == 4907
        (line,) = price_late_usage(LateUsage(OCTOBER, (early, late), invoiced), book()).lines
        assert (line.hours, line.tokens, line.amount) == (Decimal("0.500000"), 0, Decimal("0.00"))

    def test_a_late_hour_beyond_the_billed_ones_adds_one_hour_of_tokens(self) -> None:
        early = usage(OCTOBER.start, OCTOBER.start + 701 * HOUR, hours="700.2", source="solusvm", plan="7")
        late = usage(
            OCTOBER.start + 701 * HOUR, OCTOBER.start + 702 * HOUR, hours="1", source="solusvm", plan="7"
        )
        (line,) = price_late_usage(
            LateUsage(OCTOBER, (early, late), self.invoiced_october([early])), book()
        ).lines
        assert (line.tokens, line.billed_hours, line.amount) == (7, Decimal(1), Decimal("0.01"))

    def test_a_resource_never_invoiced_is_billed_in_full(self) -> None:
        late = whole_cycle(OCTOBER, resource_id="vm-late", name="late-vm")
        (line,) = price_late_usage(LateUsage(OCTOBER, (late,)), book()).lines
        assert line.late and line.amount == Decimal("66.67")

    def test_usage_that_shrank_since_it_was_invoiced_is_reported_not_refunded(self) -> None:
        invoiced = self.invoiced_october([usage(OCTOBER.start, OCTOBER.start + 200 * HOUR)])
        shrunk = usage(OCTOBER.start, OCTOBER.start + 100 * HOUR)
        priced = price_late_usage(LateUsage(OCTOBER, (shrunk,), invoiced), book())
        assert priced.lines == ()
        (error,) = priced.errors
        assert "100.000000 hours more of plan m1.small were invoiced" in error.reason

    def test_late_usage_must_be_of_an_earlier_cycle(self) -> None:
        with pytest.raises(ValueError, match="not of a cycle before"):
            draft_invoice("42", "EUR", OCTOBER, [], book(), late_usage=[LateUsage(NOVEMBER, ())])

    def test_the_same_late_cycle_twice_is_refused(self) -> None:
        twice = [LateUsage(OCTOBER, ()), LateUsage(OCTOBER, ())]
        with pytest.raises(ValueError, match="given twice"):
            draft_invoice("42", "EUR", NOVEMBER, [], book(), late_usage=twice)

    def test_invoiced_lines_of_another_cycle_are_refused(self) -> None:
        november_line = price_usage([whole_cycle(NOVEMBER)], NOVEMBER, book()).lines
        with pytest.raises(ValueError, match="not of the late usage's cycle"):
            LateUsage(OCTOBER, (), november_line)


class TestInvoiceDraftValue:
    def test_lines_in_another_currency_are_refused(self) -> None:
        lines = price_usage([whole_cycle(OCTOBER)], OCTOBER, book("USD")).lines
        with pytest.raises(ValueError, match="is in USD, the invoice in EUR"):
            InvoiceDraft("42", "EUR", OCTOBER, lines)

    def test_a_line_of_another_month_is_refused_unless_it_is_late(self) -> None:
        november_lines = price_usage([whole_cycle(NOVEMBER)], NOVEMBER, book()).lines
        with pytest.raises(ValueError, match="not of the invoice's"):
            InvoiceDraft("42", "EUR", OCTOBER, november_lines)
        late_november = tuple(dataclasses.replace(line, late=True) for line in november_lines)
        with pytest.raises(ValueError, match="not of a cycle before"):
            InvoiceDraft("42", "EUR", OCTOBER, late_november)

    def test_a_blank_client_id_is_refused(self) -> None:
        with pytest.raises(ValueError, match="client id"):
            InvoiceDraft(" ", "EUR", OCTOBER)

    def test_lines_are_put_in_order_whatever_order_they_come_in(self) -> None:
        lines = draft(october_usage()).draft.lines
        assert InvoiceDraft("42", "EUR", OCTOBER, lines[::-1]).lines == lines


HOURS = st.decimals(min_value=0, max_value=500, places=6, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(st.sampled_from(["m1.small", "m1.large", "7", "10"]), HOURS), max_size=30))
def test_the_total_is_always_the_sum_of_the_lines(usages: list[tuple[str, Decimal]]) -> None:
    records = [
        usage(
            OCTOBER.start,
            OCTOBER.start + timedelta(hours=500),
            hours=hours,
            source="solusvm" if plan.isdigit() else "openstack",
            plan=plan,
            resource_id=f"r{number}",
        )
        for number, (plan, hours) in enumerate(usages)
    ]
    invoice = draft(records).draft
    assert invoice.total == sum((line.amount for line in invoice.lines), Decimal(0))
    assert isinstance(invoice.total, Decimal)
    assert invoice.total == sum((invoice.subtotal(source) for source in invoice.by_source()), Decimal(0))
