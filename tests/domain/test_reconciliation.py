"""Reconciliation: every collected hour of October lands in exactly one bucket, or is named a defect."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from bridge.domain.reconciliation import (
    Bucket,
    ClientEvidence,
    ClientResult,
    CloudEvidence,
    DefectKind,
    InstanceAction,
    Month,
    NovaServerHistory,
    OpenCycle,
    Reconciler,
    Report,
    capped_hours,
    forgotten_hours,
    not_charged,
    reconcile,
    reconcile_client,
)
from tests.domain import reconciliation_scenario as story
from tests.domain.reconciliation_scenario import OCTOBER, collected, line, utc

D = Decimal


@pytest.fixture(scope="module")
def report() -> Report:
    return reconcile(OCTOBER, story.every_bucket(), story.clouds())


def client_named(report: Report, name: str) -> ClientResult:
    return next(result for result in report.clients if result.client and result.client.name == name)


def buckets_of(result: ClientResult) -> dict[Bucket, Decimal]:
    return {bucket: result.hours_in(bucket) for bucket in Bucket if result.hours_in(bucket)}


# -- every hour in exactly one bucket ----------------------------------------------------------------------


def test_every_collected_hour_of_every_resource_is_in_exactly_one_bucket(report: Report) -> None:
    for result in report.clients:
        for resource in result.resources:
            placed = sum((placement.hours for placement in resource.placements), D(0))
            assert placed == resource.hours, (result.label, resource.resource_id)
    assert report.summary.defect_count == 0
    assert report.summary.defects == ()


def test_the_month_adds_up_per_source_and_bucket(report: Report) -> None:
    openstack, solusvm = report.summary.hours
    assert openstack.collected == D("7266")
    assert {bucket: hours for bucket, hours in openstack.buckets if hours} == {
        Bucket.INVOICED: D("4789.333334"),
        Bucket.INVOICED_LATE: D("9.333333"),
        Bucket.BELOW_CAP: D("77.333333"),
        Bucket.NOT_YET_INVOICED: D("188"),
        Bucket.HELD: D("1044"),
        Bucket.SKIPPED: D("744"),
        Bucket.UNLINKED: D("50"),
        Bucket.SUSPENDED: D("264"),
        Bucket.REMOVED: D("100"),
    }
    assert solusvm.collected == D("844")
    assert {bucket: hours for bucket, hours in solusvm.buckets if hours} == {
        Bucket.INVOICED: D("714.285714"),
        Bucket.BELOW_CAP: D("29.714286"),
        Bucket.SKIPPED: D("100"),
    }
    assert report.summary.collected == D("8110")
    assert report.summary.billed == D("5512.952381")
    assert sum((hours for _, hours in report.summary.not_billed), D(0)) == D("2597.047619")


def test_a_month_long_vm_and_a_resized_vm_are_invoiced_line_by_line(report: Report) -> None:
    ada = client_named(report, "Ada Analytics")
    assert buckets_of(ada) == {Bucket.INVOICED: D("1488")}
    db_large, db_small = (r for r in ada.resources if r.resource_id == "db-1")
    assert (db_small.plan, db_small.hours, db_large.plan, db_large.hours) == (
        "m1.small",
        200,
        "m1.large",
        544,
    )
    assert db_large.placements[0].invoice == "INV-2022-0001"
    assert db_large.placements[0].detail == "INV-2022-0001, line openstack:db-1:m1.large:2022-10"


def test_the_cap_leaves_hours_below_it_with_the_amount_not_charged(report: Report) -> None:
    bob = client_named(report, "Bob's Bakery")
    app, vps = (next(r for r in bob.resources if r.resource_id == name) for name in ("app-1", "vps-1"))
    assert [(p.bucket, p.hours, p.not_charged) for p in app.placements] == [
        (Bucket.INVOICED, D("666.666667"), None),
        (Bucket.BELOW_CAP, D("77.333333"), D("7.73")),
    ]
    assert app.placements[1].detail.startswith("the billable-seconds cap")
    assert [(p.bucket, p.hours, p.not_charged) for p in vps.placements] == [
        (Bucket.INVOICED, D("714.285714"), None),
        (Bucket.BELOW_CAP, D("29.714286"), D("0.21")),
    ]
    assert vps.placements[1].detail.startswith("the plan's monthly tokens")


def test_usage_that_arrived_after_the_invoice_waits_for_the_next_one(report: Report) -> None:
    batch = next(r for r in client_named(report, "Bob's Bakery").resources if r.resource_id == "batch-1")
    assert [(p.bucket, p.hours) for p in batch.placements] == [
        (Bucket.INVOICED, D("100")),
        (Bucket.NOT_YET_INVOICED, D("20")),
    ]
    assert batch.placements[1].detail == "late usage: goes on the invoice of the cycle ending 2022-12-01"


def test_late_usage_on_a_later_invoice_and_cycles_across_the_month_edge(report: Report) -> None:
    carol = client_named(report, "Carol's Clinic")
    september_cycle, october_cycle = carol.resources
    # 336 of the cycle's 720 hours fall in October: its share of the 700 invoiced and of the 20 late
    assert [(p.bucket, p.hours, p.invoice) for p in september_cycle.placements] == [
        (Bucket.INVOICED, D("326.666667"), "INV-2022-0003"),
        (Bucket.INVOICED_LATE, D("9.333333"), "INV-2022-0010"),
    ]
    assert [(p.bucket, p.hours) for p in october_cycle.placements] == [(Bucket.INVOICED, D("408"))]


def test_a_cycle_that_has_not_ended_is_not_yet_invoiced(report: Report) -> None:
    ivy = client_named(report, "Ivy's Ink")
    assert buckets_of(ivy) == {Bucket.INVOICED: D("576"), Bucket.NOT_YET_INVOICED: D("168")}
    open_cycle = ivy.resources[1]
    assert open_cycle.placements[0].detail == "the cycle ends 2022-11-25"


def test_an_unpriced_flavor_holds_the_invoice_and_names_the_setting_to_add(report: Report) -> None:
    dan = client_named(report, "Dan's Data")
    gpu, small = dan.resources
    assert (gpu.placements[0].bucket, gpu.placements[0].settings_key) == (Bucket.HELD, story.UNPRICED_KEY)
    assert gpu.placements[0].detail == f"no price: add {story.UNPRICED_KEY}"
    assert small.placements[0].bucket is Bucket.HELD
    assert small.placements[0].detail == f"the invoice waits for {story.UNPRICED_KEY}"


def test_an_owner_linked_to_no_client_says_how_to_link_it(report: Report) -> None:
    orphan = next(result for result in report.clients if result.client is None)
    assert orphan.owners == ("p-orphan",)
    (placement,) = orphan.resources[0].placements
    assert (placement.bucket, placement.hours) == (Bucket.UNLINKED, D("50"))
    assert "billing-bridge client link CLIENT --openstack-project p-orphan" in placement.detail
    assert report.summary.unlinked_owners == 1


def test_a_recalculation_that_no_longer_bills_hours_says_which_invoice_replaced_which(report: Report) -> None:
    eve = client_named(report, "Eve's Events")
    assert buckets_of(eve) == {Bucket.INVOICED: D("744"), Bucket.REMOVED: D("100")}
    old = next(r for r in eve.resources if r.resource_id == "eve-old")
    assert old.placements[0].invoice == "INV-2022-0004"
    assert old.placements[0].detail.startswith("INV-2022-0004 was replaced by INV-2022-0008")


def test_hours_of_a_suspended_client_are_suspended_and_not_billed(report: Report) -> None:
    assert buckets_of(client_named(report, "Fay's Foundry")) == {
        Bucket.INVOICED: D("480"),
        Bucket.SUSPENDED: D("264"),
    }


def test_zero_invoices_and_cycles_before_the_cut_off_are_skipped_with_the_reason(report: Report) -> None:
    (gus,) = client_named(report, "Gus's Garage").resources
    (hal,) = client_named(report, "Hal's Hosting").resources
    assert (gus.placements[0].bucket, gus.placements[0].detail) == (
        Bucket.SKIPPED,
        "zero invoice (the configuration's invoice_zero_amounts is off)",
    )
    assert (hal.placements[0].bucket, hal.placements[0].detail) == (
        Bucket.SKIPPED,
        "the cycle ended before generate_invoices_after",
    )


# -- defects ----------------------------------------------------------------------------------------------


def test_a_double_billed_hour_is_a_defect_with_the_resource_and_the_hour() -> None:
    ada = story.ada()
    twice = replace(ada, lines=(*ada.lines, line("INV-2022-0009", "web-1", "1", "0.10", late=True)))
    result = reconcile(OCTOBER, [twice])
    (defect,) = result.summary.defects
    assert (defect.kind, defect.client_id, defect.resource_id, defect.hours) == (
        DefectKind.IN_TWO_BUCKETS,
        "1",
        "web-1",
        D("1"),
    )
    assert defect.detail.startswith("billed on INV-2022-0001 and INV-2022-0009")
    assert result.summary.defect_hours == D("1")
    web = result.clients[0].resources[-1]
    assert web.hours == sum((p.hours for p in web.placements), D(0)) == D("744")


def test_hours_with_no_line_and_no_reason_are_in_no_bucket() -> None:
    ada = story.ada()
    forgotten = replace(ada, collected=(*ada.collected, collected("cron-1", "p-ada", "5", end=utc(10, 1, 5))))
    (pending,) = reconcile_client(OCTOBER, forgotten).resources[0].placements
    assert pending.bucket is Bucket.NOT_YET_INVOICED
    # a month later the November invoice should have carried them as late usage, and did not
    december = Month.calendar("2022-10", "UTC", utc(12, 2))
    later = replace(forgotten, current_cycle=OpenCycle(utc(12, 1), utc(1, 1, year=2023)))
    (defect,) = reconcile_client(december, later).defects
    assert (defect.kind, defect.resource_id, defect.hours) == (DefectKind.IN_NO_BUCKET, "cron-1", D("5"))
    assert "ended 2022-11-01, on no invoice line" in defect.detail


def test_a_line_billing_more_than_was_collected_is_a_defect_of_one_invoice() -> None:
    evidence = ClientEvidence(
        story.client(1, "Ada"),
        collected=(collected("web-1", "p-ada", "700"),),
        lines=(line("INV-1", "web-1", "744", "74.40"),),
    )
    (defect,) = reconcile_client(OCTOBER, evidence).defects
    assert (defect.kind, defect.hours, defect.detail) == (
        DefectKind.IN_TWO_BUCKETS,
        D("44"),
        "INV-1 bills more hours than were collected",
    )


def test_a_line_without_any_collected_hours_is_billed_beyond_the_evidence() -> None:
    evidence = ClientEvidence(story.client(1, "Ada"), lines=(line("INV-1", "ghost-1", "10", "1.00"),))
    (resource,) = reconcile_client(OCTOBER, evidence).resources
    assert (resource.hours, resource.placements) == (D(0), ())
    assert [(d.kind, d.hours) for d in resource.defects] == [(DefectKind.IN_TWO_BUCKETS, D("10"))]


# -- caps, line by line -----------------------------------------------------------------------------------


def test_capped_hours_and_the_amount_not_charged_follow_the_line() -> None:
    openstack = line("I", "vm", "744", "66.67", billed="666.666667", capped=True)
    solusvm = line(
        "I", "s", "744", "5.00", plan="7", price=D("0.001"), capped=True, source="solusvm", tokens=(7, 5000)
    )
    uncapped = line("I", "vm", "100", "10.00")
    assert (capped_hours(openstack), not_charged(openstack)) == (D("77.333333"), D("7.73"))
    assert (capped_hours(solusvm), not_charged(solusvm)) == (D("29.714286"), D("0.21"))
    assert (capped_hours(uncapped), not_charged(uncapped)) == (D(0), D(0))


# -- money ------------------------------------------------------------------------------------------------


def test_money_invoiced_confirmed_paid_and_the_ledger(report: Report) -> None:
    (eur,) = report.summary.money
    # standing invoices: 312.00 + 81.67 + 70.00 + 59.52 + 48.00 + 20.00 (auto) + 72.00
    assert eur.invoices == 7
    assert eur.invoiced == D("663.19")
    assert eur.confirmed == D("483.67")  # pushed: Ada, Bob, Carol, Fay's auto-invoice
    assert (eur.in_doubt, eur.failed, eur.issued_by_bridge, eur.pending) == (
        D("59.52"),
        D("48.00"),
        D("72.00"),
        0,
    )
    assert eur.paid == D("402.00")
    assert (eur.auto_invoices, eur.auto_invoiced, eur.auto_paid) == (1, D("20.00"), D("20.00"))
    assert (eur.replaced_invoices, eur.replaced_total) == (1, D("84.40"))
    assert eur.not_charged == D("7.94")
    assert [(t.kind, t.amount, t.count) for t in eur.ledger] == [
        ("invoice_paid_from_credit", D("-20.00"), 1),
        ("payment", D("332.00"), 2),
    ]
    assert [(a.client_id, a.invoice.label) for a in report.summary.attention] == [
        ("5", "INV-2022-0008"),
        ("6", "INV-2022-0006"),
    ]


def test_revenue_per_source_and_plan_counts_the_cycles_ending_in_the_month(report: Report) -> None:
    revenue = {(r.source, r.plan): r.amount for r in report.summary.revenue}
    # Carol's Oct 15 - Nov 15 cycle ends in November, Ivy's Sep 25 - Oct 25 in October
    assert revenue == {
        ("openstack", "m1.small"): D("74.40")
        + D("20.00")
        + D("66.67")
        + D("10.00")
        + D("72.00")
        + D("59.52")
        + D("48.00")
        + D("72.00"),
        ("openstack", "m1.large"): D("217.60"),
        ("solusvm", "7"): D("5.00"),
    }


# -- days -------------------------------------------------------------------------------------------------


def test_hours_per_day_collected_and_billed(report: Report) -> None:
    days = {(day.day, day.source): day for day in report.summary.daily}
    assert len(days) == 62
    first = days[(date(2022, 10, 1), "openstack")]
    # Oct 1: web-1, db-1, app-1, carol-vm, gpu-1, small-1, stray-1, eve-1, eve-old, fay-1, free-1, ivy-1
    assert first.collected == pytest.approx(12 * 24)
    last = days[(date(2022, 10, 31), "openstack")]
    assert last.collected == pytest.approx(
        9 * 24
    )  # web-1, db-1, app-1, carol, small-1, eve-1, fay-1, free-1, ivy
    # billed on the 31st: web-1, db-1, app-1 (666.67 of 744), carol (408 of 408), eve-1
    assert last.billed == pytest.approx(24 * (4 + 666.666667 / 744))
    total = sum(day.collected for day in report.summary.daily)
    assert total == pytest.approx(float(report.summary.collected))


def test_month_days_follow_the_billing_zone() -> None:
    berlin = Month.calendar("2022-10", "Europe/Berlin", utc(11, 2))
    assert berlin.start == utc(9, 30, 22)
    assert len(berlin.days()) == 31
    assert berlin.day_starts()[-1] == utc(10, 31, 23)
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.calendar("October", "UTC", utc(11, 2))


# -- the clouds ---------------------------------------------------------------------------------------------


def test_nova_s_month_plus_the_hours_it_forgot_at_a_resize_matches_the_collected_hours(
    report: Report,
) -> None:
    nova = report.summary.cloud.nova
    assert nova is not None
    assert (nova.projects, nova.matching, nova.mismatches) == (10, 10, ())
    (recovered,) = nova.recovered
    assert (recovered.server_id, recovered.action, recovered.hours) == ("db-1", "resize", D("200"))
    assert nova.nova_hours + nova.forgotten_hours == nova.collected_hours == D("7266")


def test_hours_nova_ran_that_were_never_collected_show_as_a_project_mismatch() -> None:
    clouds = story.clouds()
    assert clouds.nova_projects is not None
    more = tuple(
        replace(p, hours=p.hours + 30) if p.project_id == "p-gus" else p for p in clouds.nova_projects
    )
    nova = reconcile(OCTOBER, story.every_bucket(), replace(clouds, nova_projects=more)).summary.cloud.nova
    assert nova is not None
    (mismatch,) = nova.mismatches
    assert (mismatch.project_id, mismatch.difference) == ("p-gus", D("-30"))


def test_forgotten_hours_run_from_the_first_launch_to_the_last_reset_of_the_month() -> None:
    history = NovaServerHistory(
        "p",
        "vm",
        "vm",
        launched_at=utc(10, 3),
        actions=(
            InstanceAction("create", utc(10, 3)),
            InstanceAction("rebuild", utc(10, 5)),
            InstanceAction("unshelve", utc(10, 7, 12)),
            InstanceAction("stop", utc(10, 9)),
        ),
    )
    hours, action = forgotten_hours(history, OCTOBER)
    assert (hours, action) == (D("108"), InstanceAction("unshelve", utc(10, 7, 12)))
    quiet = replace(history, actions=(InstanceAction("create", utc(10, 3)),))
    assert forgotten_hours(quiet, OCTOBER) == (D(0), None)


def test_solusvm_servers_seen_against_collected_and_billed(report: Report) -> None:
    solusvm = report.summary.cloud.solusvm
    assert solusvm is not None
    assert (solusvm.seen, solusvm.collected, solusvm.billed) == (3, 2, 1)
    assert (solusvm.observed_hours, solusvm.inferred_hours) == (800, 44)
    assert (solusvm.seen_not_collected, solusvm.collected_not_seen) == (("vps-3",), ())


def test_each_solusvm_server_seen_shows_the_hours_billed_for_it_or_why_none_were(report: Report) -> None:
    solusvm = report.summary.cloud.solusvm
    assert solusvm is not None
    assert solusvm.seen_not_billed == 2
    rows = {
        server.server_id: (server.billed, server.collected_hours, server.billed_hours, server.reason)
        for server in solusvm.servers
    }
    assert [server.server_id for server in solusvm.servers] == ["vps-2", "vps-3", "vps-1"]
    assert rows["vps-1"][:3] == (True, D("744"), D("714.285714"))
    assert rows["vps-1"][3].startswith("below_cap: the plan's monthly tokens")
    assert rows["vps-2"] == (
        False,
        D("100"),
        D(0),
        "skipped: the cycle ended before generate_invoices_after",
    )
    assert rows["vps-3"] == (False, D(0), D(0), "not running in the month: no runtime to bill")


def test_without_cloud_evidence_the_cloud_side_is_absent() -> None:
    summary = reconcile(OCTOBER, story.every_bucket()).summary
    assert (summary.cloud.nova, summary.cloud.solusvm) == (None, None)
    assert reconcile(OCTOBER, [], CloudEvidence()).summary.collected == 0


# -- streaming --------------------------------------------------------------------------------------------


def test_the_streamed_reconciler_gives_the_same_summary_as_the_whole_month(report: Report) -> None:
    reconciler = Reconciler(OCTOBER, story.clouds())
    results = [reconciler.add(evidence) for evidence in story.every_bucket()]
    assert tuple(results) == report.clients
    assert reconciler.summary() == report.summary
