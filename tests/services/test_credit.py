"""The credit engine over time (seeds 000 and 001): each test a client's story, clock stepped, no sleeps."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.domain.clients import Client, LinkKind
from bridge.domain.usage import UsageRecord, Window
from bridge.services.credit import CreditService
from bridge.store import usage as usage_store
from bridge.store.tables import (
    client_agreements,
    client_credit_states,
    client_notifications,
    invoices,
    ledger_entries,
    outbox,
)
from bridge.sync.cloud_actions import CloudActions
from tests.support.usage import CREDIT_START as START
from tests.support.usage import run_vm

TEN_A_DAY = "0.41666667"  # $10 a day, per hour (to the 8 places the store keeps)


@pytest.fixture
def credit(
    make_app: Callable[..., App], clock: FixedClock
) -> Iterator[Callable[..., tuple[App, CreditService, Client]]]:
    def build(
        configuration: dict[str, Any] | None = None, **sections: Any
    ) -> tuple[App, CreditService, Client]:
        sections.setdefault(
            "pricing", {"flavors": {"daily10": TEN_A_DAY, "m1.small": "0.10", "m1.large": "1.00"}}
        )
        sections["configurations"] = {"default": configuration or {}}
        app = make_app(**sections)
        clock.set(START)
        client = app.clients.add(email="ops@acme.com", name="Acme")
        app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
        return app, app.credit, app.clients.get("1")

    yield build


def decisions(service: CreditService, at: datetime) -> list[str]:
    return [decision["action"] for report in service.process(at) for decision in report.decisions]


def auto_invoices(app: App) -> list[tuple[str, Decimal]]:
    with app.engine.connect() as connection:
        rows = connection.execute(
            select(invoices.c.reference, invoices.c.total).where(invoices.c.kind == "auto")
        )
        return [(row.reference, row.total) for row in rows]


AUTO = {"auto_invoicing": {"enabled": True}, "generate_invoices": True}


def test_a_client_burning_10_a_day_with_100_credit_is_auto_invoiced_exactly_120_hours_before_the_limit(
    credit: Callable[..., Any],
) -> None:
    app, service, client = credit(AUTO)
    service.add_credit("1", Decimal(100), "initial")
    run_vm(app, "p-1", "daily10", 119)
    assert "auto_invoice" not in decisions(service, START + timedelta(hours=119))
    assert auto_invoices(app) == []
    run_vm(app, "p-1", "daily10", 120)
    assert "auto_invoice" in decisions(service, START + timedelta(hours=120))
    ((reference, amount),) = auto_invoices(app)
    assert reference == f"BB-{client.id}-AUTO-20260307T0000"
    assert amount == Decimal("277.78")  # the 2,400,000 s cap: 666.666667 h x $10/24, not 720 h x = $300


def test_a_second_run_for_the_same_moment_changes_nothing(credit: Callable[..., Any]) -> None:
    app, service, _ = credit({**AUTO, "credit_notifications": [72, 48], "suspension": {"enabled": True}})
    service.add_credit("1", Decimal(10), "initial")
    run_vm(app, "p-1", "m1.large", 20)
    at = START + timedelta(hours=20)
    first = decisions(service, at)
    assert {"notify", "suspend", "auto_invoice"} <= set(first)

    def everything() -> list[Any]:
        with app.engine.connect() as connection:
            return [
                connection.execute(select(table)).all()
                for table in (ledger_entries, client_credit_states, client_notifications, invoices, outbox)
            ]

    before = everything()
    service.process(at)
    assert everything() == before


def test_needing_100_with_30_unpaid_issues_70(credit: Callable[..., Any]) -> None:
    app, service, client = credit(
        {
            "auto_invoicing": {"enabled": True, "mode": "fixed", "fixed_amount": "100"},
            "generate_invoices": True,
        }
    )
    with app.engine.begin() as connection:
        connection.execute(
            insert(invoices).values(
                client_id=client.id,
                reference="BB-1-2026-02",
                kind="usage",
                period_start=START - timedelta(days=28),
                period_end=START,
                currency="USD",
                status="unpaid",
                issuer="whmcs",
                issued_at=START,
                due_at=START,
                total=Decimal(30),
                created_at=START,
            )
        )
    run_vm(app, "p-1", "m1.small", 10)
    service.process(START + timedelta(hours=10))
    assert [amount for _, amount in auto_invoices(app)] == [Decimal(70)]


def test_a_fixed_amount_is_invoiced_as_configured_and_not_again_while_unpaid(
    credit: Callable[..., Any],
) -> None:
    app, service, _ = credit(
        {
            "auto_invoicing": {"enabled": True, "mode": "fixed", "fixed_amount": "250"},
            "generate_invoices": True,
        }
    )
    run_vm(app, "p-1", "m1.small", 10)
    service.process(START + timedelta(hours=10))
    run_vm(app, "p-1", "m1.small", 20)
    actions = decisions(service, START + timedelta(hours=20))
    assert [amount for _, amount in auto_invoices(app)] == [Decimal(250)]
    assert "auto_invoice" not in actions


def test_the_billable_seconds_cap_lowers_the_estimate(credit: Callable[..., Any]) -> None:
    app, service, _ = credit(AUTO)
    run_vm(app, "p-1", "m1.small", 5)
    service.process(START + timedelta(hours=5))
    assert [amount for _, amount in auto_invoices(app)] == [Decimal("66.67")]  # not 720 h x 0.10 = 72.00


def test_three_notifications_are_sent_once_each_and_again_after_a_top_up(credit: Callable[..., Any]) -> None:
    app, service, _ = credit({"credit_notifications": [72, 48, 24]})
    service.add_credit("1", Decimal(100), "initial")  # $1/h: zero after 100 h
    sent = []
    for hour in (20, 28, 29, 52, 53, 76, 77):
        run_vm(app, "p-1", "m1.large", hour)
        reports = service.process(START + timedelta(hours=hour))
        sent += [
            (hour, d["threshold_hours"]) for r in reports for d in r.decisions if d["action"] == "notify"
        ]
    assert sent == [(28, 72), (52, 48), (76, 24)]
    service.add_credit("1", Decimal(100), "top-up")  # 123 h left: every threshold resets
    run_vm(app, "p-1", "m1.large", 78)
    assert "reset_notifications" in decisions(service, START + timedelta(hours=78))
    with app.engine.connect() as connection:
        assert len(connection.execute(select(client_notifications)).all()) == 3


def test_suspension_waits_for_the_delay_by_hours_or_by_credit_whichever_matches_first(
    credit: Callable[..., Any],
) -> None:
    app, service, _ = credit({"suspension": {"enabled": True, "delay_hours": 24, "delay_credit": "5"}})
    service.add_credit("1", Decimal(10), "initial")  # $1/h: under the limit of 0 after 10 h
    run_vm(app, "p-1", "m1.large", 11)
    assert "suspend" not in decisions(service, START + timedelta(hours=11))  # $1 under: neither delay over
    run_vm(app, "p-1", "m1.large", 16)
    assert "suspend" in decisions(service, START + timedelta(hours=16))  # $6 under: the credit delay matched


def test_a_suspended_solusvm_server_that_no_longer_reports_running_is_still_resumed(
    credit: Callable[..., Any],
) -> None:
    """A suspended SolusVM server stops showing as running; resume acts on what the suspension suspended."""
    app, service, _ = credit({"suspension": {"enabled": True}}, pricing={"token_price": "0.01"})
    app.clients.link("1", LinkKind.SOLUSVM_USER, "42")
    with app.engine.begin() as connection:
        for hour in range(3):
            window = Window(START + timedelta(hours=hour), START + timedelta(hours=hour + 1))
            record = UsageRecord("solusvm", "7", "solus-7", "42", "1", window, Decimal(1), Decimal(100))
            usage_store.ingest_window(connection, "solusvm", window, [record], window.end)
        usage_store.save_plan_rates(connection, [usage_store.PlanRate("1", "small", 100, 0, START)])
    assert decisions(service, START + timedelta(hours=3)) == ["suspend"]
    service.add_credit("1", Decimal(50), "paid")
    assert decisions(service, START + timedelta(days=2)) == ["resume"]  # no usage for two days by now
    with app.engine.connect() as connection:
        kinds = [row.kind for row in connection.execute(select(outbox.c.kind).order_by(outbox.c.id))]
    # the client's OpenStack project (p-1, linked by the fixture) is disabled and enabled with it, and the
    # client is told of the suspension and of its end
    assert kinds == [
        "suspend_server",
        "disable_project",
        "mail_client",
        "enable_project",
        "resume_server",
        "mail_client",
    ]


def test_a_suspended_client_is_shelved_and_unshelved_after_paying(credit: Callable[..., Any]) -> None:
    from tests.fakes.nova import FakeOpenStack

    app, service, _ = credit({"suspension": {"enabled": True}, "shelve_instances_on_suspend": True})
    run_vm(app, "p-1", "m1.large", 3)
    assert decisions(service, START + timedelta(hours=3)) == ["suspend"]
    with FakeOpenStack(app.clock) as nova:
        from bridge.fleio.connection import connect
        from bridge.fleio.server_actions import NovaServerActions
        from bridge.fleio.settings import OpenStackSettings

        server = nova.create_server("p-1", at=START, server_id="vm-1")
        settings = OpenStackSettings(
            enabled=True,
            auth_url=nova.auth_url,
            username=nova.username,
            password=nova.password,
            project_name=nova.project_name,
            region_name=nova.region,
        )
        actions = CloudActions(
            app.uow, app.clock, openstack=NovaServerActions(connect(settings)), solusvm=None
        )
        assert actions.run().done == ["shelve_server openstack:vm-1"]
        service.add_credit("1", Decimal(50), "paid")
        assert decisions(service, START + timedelta(hours=3, minutes=10)) == ["resume"]
        assert actions.run().done == ["unshelve_server openstack:vm-1"]
        assert [(call.server_id, call.action) for call in nova.actions] == [
            (server, "shelve"),
            (server, "unshelve"),
        ]
        assert actions.run().done == []  # each action once


def test_termination_comes_only_after_its_delay_since_suspension(
    credit: Callable[..., Any],
) -> None:
    app, service, _ = credit(
        {"suspension": {"enabled": True}, "termination": {"enabled": True, "delay_hours": 48}}
    )
    run_vm(app, "p-1", "m1.large", 2)
    assert decisions(service, START + timedelta(hours=2)) == ["suspend"]
    run_vm(app, "p-1", "m1.large", 3)
    assert "terminate" not in decisions(service, START + timedelta(hours=49))
    reports = service.process(START + timedelta(hours=50, minutes=1))
    (terminate,) = [d for r in reports for d in r.decisions if d["action"] == "terminate"]
    assert terminate["removed"] == ["openstack:vm-1 (name-vm-1)"]  # what the suspension acted on


def test_suspend_instead_of_termination_keeps_the_client_suspended(credit: Callable[..., Any]) -> None:
    app, service, _ = credit(
        {
            "suspension": {"enabled": True},
            "termination": {"enabled": True, "delay_hours": 1, "suspend_instead": True},
        }
    )
    run_vm(app, "p-1", "m1.large", 2)
    service.process(START + timedelta(hours=2))
    assert "terminate" not in decisions(service, START + timedelta(hours=5))


def test_clients_with_an_agreement_use_the_agreement_limits(credit: Callable[..., Any]) -> None:
    app, service, client = credit(
        {
            "suspension": {"enabled": True},
            "credit_limit_on_agreement": "-500",
            "required_credit_on_agreement": "-100",
        }
    )
    run_vm(app, "p-1", "m1.large", 20)  # $20 used, no credit
    app.clock.set(START + timedelta(hours=20))  # type: ignore[attr-defined]
    with app.engine.begin() as connection:
        connection.execute(
            insert(client_agreements).values(
                client_id=client.id, has_agreement=True, changed_at=START, checked_at=START
            )
        )
    assert decisions(service, START + timedelta(hours=20)) == []
    assert service.can_create("1").allowed
    with app.engine.begin() as connection:
        connection.execute(client_agreements.update().values(has_agreement=False))
    assert "suspend" in decisions(service, START + timedelta(hours=20))
    assert not service.can_create("1").allowed


def test_auto_pay_is_refused_when_the_minimum_credit_would_not_remain(credit: Callable[..., Any]) -> None:
    from datetime import date

    app, service, _ = credit(
        {
            "generate_invoices": True,
            "auto_pay_only_when_enough_credit": True,
            "minimum_credit_after_payment": "50",
        }
    )
    run_vm(app, "p-1", "m1.large", 24 * 10, start=datetime(2026, 2, 1, tzinfo=UTC))  # February: $240
    app.invoicing.run(date(2026, 3, 1))
    service.add_credit("1", Decimal(260), "payment")
    reports = service.process(START)
    (refused,) = [d for r in reports for d in r.decisions if d["action"] == "auto_pay_refused"]
    assert "50" in refused["reason"]
    service.add_credit("1", Decimal(100), "more")
    assert "auto_pay" in decisions(service, START + timedelta(minutes=5))
    account = service.account("1", START + timedelta(minutes=5))
    assert account.credit == Decimal(120)  # 360 paid in, 240 settled by the invoice


def test_a_payment_with_the_same_reference_is_recorded_once(credit: Callable[..., Any]) -> None:
    _, service, _ = credit()
    assert service.add_credit("1", Decimal("25.50"), "stripe-ch_1")[0] is True
    created, account = service.add_credit("1", Decimal("25.50"), "stripe-ch_1")
    assert (created, account.credit) == (False, Decimal("25.50"))


def test_each_run_prices_with_the_solusvm_plan_rates_of_its_time(credit: Callable[..., Any]) -> None:
    """The daemon's credit engine is built once and lives as long as the process: each run reads the plan
    rates again, as the usage sync refreshes them."""
    app, service, _ = credit(pricing={"token_price": "0.01"})
    app.clients.link("1", LinkKind.SOLUSVM_USER, "42")
    window = Window(START, START + timedelta(hours=1))
    with app.engine.begin() as connection:
        record = UsageRecord("solusvm", "7", "solus-7", "42", "1", window, Decimal(1), Decimal(100))
        usage_store.ingest_window(connection, "solusvm", window, [record], window.end)
        usage_store.save_plan_rates(connection, [usage_store.PlanRate("1", "small", 100, 0, START)])
    first = service.process(window.end)[0].burn_rate
    with app.engine.begin() as connection:
        usage_store.save_plan_rates(connection, [usage_store.PlanRate("1", "small", 200, 0, START)])
    assert app.credit is service
    assert (first, service.process(window.end)[0].burn_rate) == (Decimal(1), Decimal(2))


@pytest.mark.parametrize(("bill_suspended_hours", "owed"), [(False, "-3.00"), (True, "-10.00")])
def test_hours_nova_counts_while_the_client_is_suspended_are_owed_only_when_they_are_billed(
    credit: Callable[..., Any], bill_suspended_hours: bool, owed: str
) -> None:
    """$1/h and no credit: suspended after 3 h; Nova goes on counting the suspended VM's hours to 10 h."""
    config = {"suspension": {"enabled": True}, "bill_suspended_hours": bill_suspended_hours}
    app, service, _ = credit(config)
    run_vm(app, "p-1", "m1.large", 3)
    assert decisions(service, START + timedelta(hours=3)) == ["suspend"]
    run_vm(app, "p-1", "m1.large", 10)
    assert service.account("1", START + timedelta(hours=10)).up_to_date == Decimal(owed)


def test_a_client_staff_suspended_stays_suspended_whatever_its_credit(credit: Callable[..., Any]) -> None:
    _, service, _ = credit({"suspension": {"enabled": True}})
    service.add_credit("1", Decimal(100), "paid")
    done = service.suspend("1", reason="abuse report")
    assert done.acted_on == ("openstack project p-1",)  # nothing runs yet: the project is disabled
    report = service.process(START + timedelta(hours=1))[0]
    assert report.decisions == [
        {
            "action": "keep_suspended",
            "reason": f"suspended by staff at {START.isoformat()} (abuse report); only `billing-bridge "
            "client resume` ends it",
        }
    ]
    service.resume("1")
    assert decisions(service, START + timedelta(hours=2)) == []
