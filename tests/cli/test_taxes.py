"""Taxes end to end through the command line (issue 16, seed 001): a client's country, VAT ID and tax
exemption; VIES (a fake at the HTTP boundary) deciding the EU reverse charge; invoices with per-rate tax
lines; add-credit invoices; and the 48-hour rule of the daemon's revalidation job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.settings import load_settings
from bridge.store import usage as usage_store
from tests.cli.test_json_schemas import check
from tests.fakes.vies import FakeVies
from tests.support.cli import cli_at
from tests.support.usage import OCT, hourly

Cli = Callable[..., tuple[int, str, str]]

GERMAN_VAT_ID = "DE136695976"
FRENCH_VAT_ID = "FR40303265045"
ISSUED = datetime(2022, 11, 1, 2, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(ISSUED)


@pytest.fixture
def vies(clock: FixedClock) -> Iterator[FakeVies]:
    with FakeVies(now=clock.now) as fake:
        fake.register(GERMAN_VAT_ID)
        fake.register(FRENCH_VAT_ID)
        yield fake


def settings_text(database_url: str, vies_url: str, *, tax_on_add_credit: bool = False) -> str:
    return f"""
[database]
url = "{database_url}"
[logging]
format = "json"
level = "warning"
[billing]
currency = "EUR"
[pricing]
token_price = "0.01"
[pricing.flavors]
"m1.large" = "1.00"
"m1.third" = "0.333"
[taxes]
enabled = true
home_country = "DE"
auto_eu_exemption = true
tax_on_add_credit_invoices = {str(tax_on_add_credit).lower()}
revalidation_interval_hours = 24
[taxes.rules.DE]
name = "VAT"
rate = "19"
[taxes.rules.FR]
name = "TVA"
rate = "20"
[vies]
url = "{vies_url}"
attempts = 1
retry_wait_max_seconds = 0
"""


@pytest.fixture
def config(tmp_path: Path, database_url: str, vies: FakeVies) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(settings_text(database_url, vies.url))
    return path


@pytest.fixture
def app(config: Path, clock: FixedClock) -> Iterator[App]:
    app = build_app(load_settings(config), clock=clock)
    yield app
    app.close()


@pytest.fixture
def cli(config: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]) -> Cli:
    """`billing-bridge --config ... ARGS` at the test's clock."""
    return cli_at(config, clock, capsys)


def add(cli: Cli, email: str, *options: str) -> dict[str, Any]:
    code, out, err = cli("client", "add", "--email", email, "--name", email.split("@")[0], *options, "--json")
    assert code == 0, err
    added: dict[str, Any] = json.loads(out)
    return added


def october_usage(app: App, client_id: int, hours: int = 100, flavor: str = "m1.large") -> None:
    """``hours`` of one VM in October 2022 at 1.00 EUR an hour (m1.large): a 100.00 EUR usage invoice."""
    project = f"p-{client_id}"
    app.clients.link(str(client_id), LinkKind.OPENSTACK_PROJECT, project)
    with app.uow.writing() as tx:
        for record in hourly(f"vm-{client_id}", project, flavor, OCT, hours):
            usage_store.ingest_window(tx, record.source, record.window, [record], record.window.end)


def invoice_of(cli: Cli, client_id: int) -> dict[str, Any]:
    """``invoice show --json`` of the client's October, checked against docs/schemas/invoice-show.json."""
    code, out, err = cli("invoice", "show", f"BB-{client_id}-2022-10", "--json")
    assert code == 0, err
    shown: dict[str, Any] = check("invoice-show.json", out)
    return shown


def figures(invoice: dict[str, Any]) -> tuple[str, list[tuple[str, str]], str, str]:
    taxes = invoice["taxes"]
    lines = [(line["label"], line["amount"]) for line in taxes["lines"]]
    return taxes["subtotal"], lines, taxes["tax"], invoice["total"]


def test_invoices_are_taxed_by_the_clients_country_and_exemption(app: App, cli: Cli, vies: FakeVies) -> None:
    german = add(cli, "de@example.com", "--country", "DE", "--vat-id", GERMAN_VAT_ID)
    french = add(cli, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)
    consumer = add(cli, "fr-consumer@example.com", "--country", "FR")
    american = add(cli, "us@example.com", "--country", "US")
    for client in (german, french, consumer, american):
        october_usage(app, client["id"])
    out = cli("invoice", "--date", "2022-11-01", "--dry-run", "--json")[1]
    previews = {item["client"]["id"]: item for item in check("invoice.json", out)["invoices"]}
    assert figures(previews[german["id"]]) == ("100.00", [("VAT 19 %", "19.00")], "19.00", "119.00")
    assert cli("invoice", "--date", "2022-11-01")[0] == 0

    assert figures(invoice_of(cli, german["id"])) == ("100.00", [("VAT 19 %", "19.00")], "19.00", "119.00")
    exempt = invoice_of(cli, french["id"])
    assert figures(exempt) == ("100.00", [], "0.00", "100.00")
    assert "Reverse charge" in exempt["taxes"]["reverse_charge"]
    assert f"Customer VAT ID: {FRENCH_VAT_ID}" in exempt["taxes"]["reverse_charge"]
    assert figures(invoice_of(cli, consumer["id"])) == ("100.00", [("TVA 20 %", "20.00")], "20.00", "120.00")
    assert figures(invoice_of(cli, american["id"])) == ("100.00", [], "0.00", "100.00")
    assert vies.numbers_asked() == [FRENCH_VAT_ID], "the home country's clients are never exempted"


def test_the_html_invoice_shows_the_tax_lines_and_the_reverse_charge(app: App, cli: Cli) -> None:
    german = add(cli, "de@example.com", "--country", "DE")
    french = add(cli, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)
    for client in (german, french):
        october_usage(app, client["id"])
    assert cli("invoice", "--date", "2022-11-01")[0] == 0
    html = cli("invoice", "show", f"BB-{german['id']}-2022-10", "--html")[1]
    assert "Subtotal (net)" in html and "VAT 19 % on 100.00" in html and "119.00 EUR" in html
    html = cli("invoice", "show", f"BB-{french['id']}-2022-10", "--html")[1]
    assert "Reverse charge" in html and FRENCH_VAT_ID in html


def test_tax_is_rounded_once_per_rate_not_per_line(app: App, cli: Cli) -> None:
    """Three VMs of one hour at 0.333 EUR: each line is 0.33 (rounded once); the subtotal 0.99 at 19 % is
    0.1881, so the tax is 0.19 and the total 1.18. Taxing each line (0.0627 -> 0.06) would give 0.18."""
    german = add(cli, "de@example.com", "--country", "DE")
    project = f"p-{german['id']}"
    app.clients.link(str(german["id"]), LinkKind.OPENSTACK_PROJECT, project)
    with app.uow.writing() as tx:
        for vm in ("a", "b", "c"):
            for record in hourly(f"vm-{vm}", project, "m1.third", OCT, 1):
                usage_store.ingest_window(tx, record.source, record.window, [record], record.window.end)
    assert cli("invoice", "--date", "2022-11-01")[0] == 0
    invoice = invoice_of(cli, german["id"])
    assert [line["amount"] for group in invoice["groups"] for line in group["lines"]] == ["0.33"] * 3
    assert figures(invoice) == ("0.99", [("VAT 19 %", "0.19")], "0.19", "1.18")


@pytest.mark.parametrize(("tax_on_add_credit", "total"), [(True, "59.50"), (False, "50.00")])
def test_an_add_credit_invoice_follows_the_add_credit_tax_option(
    tmp_path: Path,
    database_url: str,
    vies: FakeVies,
    clock: FixedClock,
    capsys: pytest.CaptureFixture[str],
    tax_on_add_credit: bool,
    total: str,
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(settings_text(database_url, vies.url, tax_on_add_credit=tax_on_add_credit))

    cli = cli_at(path, clock, capsys)
    german = add(cli, "de@example.com", "--country", "DE", "--vat-id", GERMAN_VAT_ID)
    code, out, err = cli("credit", "invoice", str(german["id"]), "50.00", "--reference", "order-1", "--json")
    assert code == 0, err
    invoice = json.loads(out)
    assert (invoice["taxes"]["subtotal"], invoice["total"]) == ("50.00", total)
    assert cli("invoice", "pay", invoice["reference"])[0] == 0
    assert cli("process-clients")[0] == 0
    credit = json.loads(cli("credit", "show", str(german["id"]), "--json")[1])
    assert Decimal(credit["credit"]) == Decimal("50.00"), "credit is counted net of tax"


def test_a_malformed_vat_id_is_refused_naming_the_field_and_changes_nothing(cli: Cli, vies: FakeVies) -> None:
    french = add(cli, "fr@example.com", "--country", "FR")
    code, _, err = cli("client", "set", str(french["id"]), "--vat-id", "FR40303265046")
    assert code == 2
    assert err.startswith("error: --vat-id: 'FR40303265046' fails the check digits")
    assert len(err.strip().splitlines()) == 1
    shown = json.loads(cli("client", "show", str(french["id"]), "--json")[1])
    assert (shown["country"], shown["vat_id"], shown["tax"]["tax_exempt"]) == ("FR", None, False)
    code, _, err = cli(
        "client",
        "add",
        "--email",
        "x@example.com",
        "--name",
        "X",
        "--vat-id",
        "DE136695977",
        "--country",
        "DE",
    )
    assert code == 2 and "--vat-id" in err
    assert cli("client", "show", "x@example.com")[0] == 2
    assert vies.numbers_asked() == [], "a number failing its checksum never reaches VIES"


def test_staff_exempt_a_client_with_who_when_and_why(cli: Cli) -> None:
    charity = add(cli, "charity@example.com", "--country", "DE")
    code, _, err = cli("client", "set", str(charity["id"]), "--tax-exempt")
    assert code == 2 and "--reason is required" in err
    code, _, err = cli(
        "client", "set", str(charity["id"]), "--tax-exempt", "--reason", "registered charity", "--by", "anna"
    )
    assert code == 0, err
    shown = json.loads(cli("client", "show", str(charity["id"]), "--json")[1])
    (decision,) = shown["tax"]["exemption_history"]
    assert shown["tax"]["tax_exempt"] is True
    assert (decision["by"], decision["why"], decision["at"]) == (
        "anna",
        "registered charity",
        ISSUED.isoformat(),
    )


def test_vies_unavailable_for_47_hours_keeps_the_exemption_and_at_48_hours_it_lapses(
    app: App, cli: Cli, vies: FakeVies, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    french = add(cli, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)
    assert json.loads(cli("client", "show", str(french["id"]), "--json")[1])["tax"]["tax_exempt"] is True
    vies.script("error", country="FR", code="MS_UNAVAILABLE")

    clock.set(ISSUED + timedelta(hours=24))  # the daily revalidation: VIES cannot answer
    assert app.runner.run("tax_revalidation").status == "succeeded"
    clock.set(ISSUED + timedelta(hours=24 + 47))
    assert app.runner.run("tax_revalidation").status == "succeeded"
    shown = json.loads(cli("client", "show", str(french["id"]), "--json")[1])
    assert shown["tax"]["tax_exempt"] is True
    assert "unavailable since" in shown["tax"]["vies"]["why"]

    clock.set(ISSUED + timedelta(hours=24 + 48))
    capsys.readouterr()
    assert app.runner.run("tax_revalidation").status == "succeeded"
    logged = capsys.readouterr()
    assert "tax exemption lapsed" in logged.out + logged.err
    shown = json.loads(cli("client", "show", str(french["id"]), "--json")[1])
    assert shown["tax"]["tax_exempt"] is False
    lapsed = shown["tax"]["exemption_history"][-1]
    assert lapsed["by"] == "vies" and "unavailable for 48 h in a row" in lapsed["why"]
    assert [check["code"] for check in shown["tax"]["vies_checks"]] == [None] + ["MS_UNAVAILABLE"] * 3
    text = cli("client", "show", str(french["id"]))[1]
    assert "not tax exempt (by vies" in text

    october_usage(app, french["id"])
    assert cli("invoice", "--date", "2022-11-01")[0] == 0
    assert figures(invoice_of(cli, french["id"])) == ("100.00", [("TVA 20 %", "20.00")], "20.00", "120.00")
