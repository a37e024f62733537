"""Automatic settlements with `make run`'s example settings (seed 001, issue 15 point 3): nothing is marked
paid without money. A post-pay invoice is paid from credit only when the credit covers it and leaves the
minimum up-to-date credit; usage invoices and the recurring invoices of billing periods alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.settings import Settings
from bridge.store import usage as usage_store
from bridge.store.database import make_engine
from tests.support.cli import run_cli
from tests.support.usage import OCT, hourly

EXAMPLE = Path(__file__).parents[2] / "settings.example.toml"
ISSUED = datetime(2022, 11, 1, 0, 45, tzinfo=UTC)  # after the invoicing (00:30) and recurring (00:45) jobs
PROCESSED = datetime(2022, 11, 1, 0, 50, tzinfo=UTC)  # the next process_clients


class Operator:
    """`billing-bridge --config <the example settings> ARGS` at the test's clock."""

    def __init__(self, config: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.clock = clock
        self.capsys = capsys

    def __call__(self, *args: str) -> str:
        code, out, err = run_cli(self.capsys, "--config", str(self.config), *args, app_factory=self._build)
        assert code == 0, err
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json"))

    def _build(self, settings: Settings, **edges: Any) -> App:
        return build_app(settings, clock=self.clock, **edges)

    def invoices(self) -> list[tuple[str, Decimal, str]]:
        listed = self.json("invoice", "list")
        return [(item["reference"], Decimal(item["total"]), item["status"]) for item in listed]

    def credit(self) -> str:
        """Client 1's up-to-date credit."""
        return str(self.json("credit", "show", "1")["up_to_date_credit"])


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2022, 10, 1, tzinfo=UTC))


@pytest.fixture
def operator(
    tmp_path: Path, database_url: str, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> Operator:
    """The example settings as shipped, with a database and one flavor's price, and a fresh client 1 (no
    credit) whose OpenStack project is p-1."""
    text = EXAMPLE.read_text()
    for shipped, ours in (
        ('\nurl = ""\n', f'\nurl = "{database_url}"\n'),  # [database] url: the only url key
        ("[pricing.flavors]\n", '[pricing.flavors]\n"m1.large" = "1.00"\n'),
    ):
        assert text.count(shipped) == 1, shipped
        text = text.replace(shipped, ours)
    config = tmp_path / "settings.toml"
    config.write_text(text)
    operator = Operator(config, clock, capsys)
    operator("client", "add", "--email", "ops@acme.com", "--name", "Acme")
    operator("client", "link", "1", "--openstack-project", "p-1")
    return operator


def october_usage(database_url: str) -> None:
    """48 hours of an m1.large at 1.00 an hour in October 2022, collected: a 48.00 usage invoice on Nov 1."""
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for record in hourly("vm-1", "p-1", "m1.large", OCT, 48):
            usage_store.ingest_window(connection, "openstack", record.window, [record], record.window.end)
    engine.dispose()


def invoiced(operator: Operator, clock: FixedClock) -> None:
    clock.set(ISSUED)
    operator("invoice", "--date", "2022-11-01")


def monthly_support_fee(operator: Operator) -> None:
    """A 20.00 support fee recharged monthly on the 1st (post-pay, seed 004): a recurring invoice on Nov 1."""
    operator("period", "create", "1", "--frequency", "monthly", "--invoice-day", "1")
    operator("subscription", "add", "1", "--name", "support", "--amount", "20", "--period", "1")


def processed(operator: Operator, clock: FixedClock) -> None:
    clock.set(PROCESSED)
    operator("process-clients")


def test_a_fresh_client_with_no_credit_keeps_its_usage_invoice_unpaid(
    operator: Operator, database_url: str, clock: FixedClock
) -> None:
    october_usage(database_url)
    invoiced(operator, clock)
    processed(operator, clock)
    assert operator.invoices() == [("BB-1-2022-10", Decimal("48.00"), "unpaid")]
    assert operator.credit() == "0.00"


def test_credit_that_covers_part_of_an_invoice_pays_none_of_it_and_credit_that_covers_it_pays_it(
    operator: Operator, database_url: str, clock: FixedClock
) -> None:
    october_usage(database_url)
    operator("credit", "add", "1", "47.99", "--reference", "bank-1")
    invoiced(operator, clock)
    processed(operator, clock)
    assert operator.invoices() == [("BB-1-2022-10", Decimal("48.00"), "unpaid")]
    assert operator.credit() == "47.99"
    operator("credit", "add", "1", "52.01", "--reference", "bank-2")
    processed(operator, clock)
    assert operator.invoices() == [("BB-1-2022-10", Decimal("48.00"), "paid")]
    assert operator.credit() == "52.00"


def test_a_recurring_invoice_stays_unpaid_without_credit_and_is_paid_from_credit_that_covers_it(
    operator: Operator, clock: FixedClock
) -> None:
    monthly_support_fee(operator)
    clock.set(ISSUED)
    (billed,) = operator.json("period", "recharge")
    processed(operator, clock)
    assert operator.invoices() == [(billed["reference"], Decimal("20.00"), "unpaid")]
    assert operator.credit() == "0.00"
    operator("credit", "add", "1", "30", "--reference", "bank-1")
    processed(operator, clock)
    assert operator.invoices() == [(billed["reference"], Decimal("20.00"), "paid")]
    assert operator.credit() == "10.00"


def test_a_recurring_invoice_paid_with_money_is_not_credit_to_spend(
    operator: Operator, clock: FixedClock
) -> None:
    monthly_support_fee(operator)
    clock.set(ISSUED)
    (billed,) = operator.json("period", "recharge")
    operator("invoice", "pay", billed["reference"])
    processed(operator, clock)
    assert operator.invoices() == [(billed["reference"], Decimal("20.00"), "paid")]
    assert operator.credit() == "0.00"  # 20.00 came in and paid the 20.00 fee
