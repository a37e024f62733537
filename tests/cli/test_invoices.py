"""`billing-bridge invoice` with usage collected from the fake clouds: October 2022, once."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine

from bridge.domain.usage import UsageRecord, Window
from bridge.store.database import make_engine
from bridge.store.usage import ingest_window
from tests.documents.conftest import pdf_text, pdf_tools  # noqa: F401 (pdf_tools: a fixture)
from tests.support.cli import run_cli
from tests.support.systemd import UNITS, parse_unit


@pytest.fixture
def october(config: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    cfg = ["--config", str(config)]
    assert run_cli(capsys, *cfg, "sync", "--source", "openstack", "--until", "2022-11-01T00:00:00Z")[0] == 0
    run_cli(capsys, *cfg, "client", "add", "--email", "ops@acme.com", "--name", "Acme Ltd")
    run_cli(capsys, *cfg, "client", "link", "ops@acme.com", "--openstack-project", "p-1")
    return cfg


def test_dry_run_json_prints_october_then_a_real_run_creates_it_once(
    october: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, dry, _ = run_cli(capsys, *october, "invoice", "--date", "2022-11-01", "--dry-run", "--json")
    assert code == 0
    document = json.loads(dry)
    (invoice,) = document["invoices"]
    assert (document["dry_run"], invoice["period"]["label"], invoice["client"]["email"]) == (
        True,
        "2022-10",
        "ops@acme.com",
    )
    lines = {line["resource_name"]: line for line in invoice["groups"][0]["lines"]}
    assert (lines["web-1"]["billed_hours"], lines["web-1"]["amount"]) == ("666.666667", "8.33")
    assert (lines["db-1"]["hours"], lines["db-1"]["amount"]) == ("227.5", "22.75")
    assert invoice["total"] == "31.08"
    assert run_cli(capsys, *october, "invoice", "list", "--json")[1].strip() == "[]"

    code, out, _ = run_cli(capsys, *october, "invoice", "--date", "2022-11-01")
    assert code == 0
    assert re.fullmatch(r"invoiced client 1 2022-10: 31.08 USD, 2 lines, 1\n", out)
    code, out, _ = run_cli(capsys, *october, "invoice", "--date", "2022-11-01")
    assert out == "client 1 BB-1-2022-10: already invoiced, nothing new\n"
    assert len(json.loads(run_cli(capsys, *october, "invoice", "list", "--json")[1])) == 1


def test_invoice_show_prints_the_numbered_invoice_and_its_html(
    october: list[str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_cli(capsys, *october, "invoice", "--date", "2022-11-01")
    code, out, _ = run_cli(capsys, *october, "invoice", "show", "1")
    assert code == 0
    assert out.splitlines()[0] == "invoice 1 (unpaid) for Acme Ltd <ops@acme.com>"
    assert "total 31.08 USD" in out
    code, html, _ = run_cli(capsys, *october, "invoice", "show", "1", "--html")
    assert "<h1>Invoice</h1>" in html and "31.08 USD" in html and "2022-10-01 &ndash; 2022-10-31" in html
    (tmp_path / "invoice-1.html").write_text(html)
    code, _, err = run_cli(capsys, *october, "invoice", "show", "99")
    assert code == 2 and "no invoice '99'" in err


COMPANY = """
[configurations.default]
company_name = "Nimbus Hosting GmbH"
company_address = \"\"\"Hauptstraße 5
10115 Berlin\"\"\"
company_vat_id = "DE 136 695 976"
company_bank_details = "IBAN DE89 3704 0044 0532 0130 00"
"""


@pytest.mark.usefixtures("pdf_tools")
def test_invoice_show_pdf_writes_the_same_file_each_time_with_the_company_every_line_and_the_total(
    october: list[str], config: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with config.open("a", encoding="utf-8") as settings:
        settings.write(COMPANY)
    run_cli(capsys, *october, "invoice", "--date", "2022-11-01")
    first, second = tmp_path / "first.pdf", tmp_path / "second.pdf"

    code, out, _ = run_cli(capsys, *october, "invoice", "show", "1", "--pdf", str(first))
    assert (code, out) == (0, f"invoice 1: PDF written to {first}\n")
    run_cli(capsys, *october, "invoice", "show", "BB-1-2022-10", "--pdf", str(second))

    assert first.read_bytes() == second.read_bytes()
    text = pdf_text(first)
    for shown in ("Nimbus Hosting GmbH", "Hauptstraße 5", "10115 Berlin", "VAT ID DE136695976", "IBAN DE89"):
        assert shown in text
    assert re.search(r"web-1 .*8\.33", text) and re.search(r"db-1 .*22\.75", text), text
    assert re.search(r"Total .*31\.08", text), text
    code, _, err = run_cli(capsys, *october, "invoice", "show", "1", "--pdf", str(tmp_path / "no" / "x.pdf"))
    assert code == 2 and "--pdf" in err and "does not exist" in err


def test_a_missing_price_exits_1_naming_the_key_and_invoices_nothing_for_that_client(
    october: list[str], capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    config.write_text(config.read_text().replace('"m1.large" = 0.10\n', ""))
    code, _, err = run_cli(capsys, *october, "invoice", "--date", "2022-11-01")
    assert code == 1
    assert 'add pricing.flavors."m1.large" to the settings' in err
    assert run_cli(capsys, *october, "invoice", "list", "--json")[1].strip() == "[]"


def test_a_bad_date_is_refused_with_the_format(
    october: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, *october, "invoice", "--date", "2022-13-01")
    assert (code, err.strip()) == (
        2,
        "error: --date '2022-13-01' is not a date; use YYYY-MM-DD, e.g. --date 2022-11-01",
    )


def test_a_date_whose_cycle_has_not_ended_exits_2_with_its_end_and_dry_run_labels_a_preview(
    october: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing on the wall clock ends before 2999: the cycle of --date 2999-12-01 is still to come."""
    code, _, err = run_cli(capsys, *october, "invoice", "--date", "2999-12-01")
    assert code == 2 and err.count("\n") == 1
    assert "billing cycle 2999-11 ends 2999-12-01T00:00+00:00, after now" in err
    assert "preview it with --dry-run" in err
    assert run_cli(capsys, *october, "invoice", "list", "--json")[1].strip() == "[]"

    code, out, _ = run_cli(capsys, *october, "invoice", "--date", "2022-11-01", "--dry-run")
    assert code == 0 and "would invoice client 1 2022-10" in out and "PREVIEW" not in out

    november = datetime(2999, 11, 5, tzinfo=UTC)
    window = Window(november, november + timedelta(hours=1))
    record = UsageRecord("openstack", "x" * 8, "web-9", "p-1", "m1.small", window, Decimal(1), None)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        ingest_window(connection, "openstack", window, [record], november)
    engine.dispose()
    code, out, _ = run_cli(capsys, *october, "invoice", "--date", "2999-12-01", "--dry-run")
    assert code == 0
    assert "PREVIEW, the cycle ends 2999-12-01T00:00+00:00: would invoice client 1 2999-11" in out
    code, out, _ = run_cli(capsys, *october, "invoice", "--date", "2999-12-01", "--dry-run", "--json")
    assert [entry["preview"] for entry in json.loads(out)["invoices"]] == [True]
    assert run_cli(capsys, *october, "invoice", "list", "--json")[1].strip() == "[]"


def test_the_monthly_systemd_units_command_at_the_timers_hour_invoices_the_month_that_ended(
    october: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    (command,) = parse_unit(UNITS / "billing-bridge-invoice.service")["Service"]["ExecStart"]
    arguments = command.split()[1:]
    with time_machine.travel(datetime(2022, 11, 1, 12, 0, tzinfo=UTC), tick=False):
        code, out, _ = run_cli(capsys, *october, *arguments)
    assert code == 0
    assert out.startswith("invoiced client 1 2022-10: 31.08 USD")


def test_invoice_numbering_set_raises_the_next_number_and_refuses_lowering_it(
    october: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, *october, "invoice", "--date", "2022-11-01")[0] == 0  # fiscal number 1
    code, _, err = run_cli(capsys, *october, "invoice", "numbering", "set", "default", "--next", "1")
    assert code == 2
    assert err.strip().endswith(
        "--next 1 is below 2, the next fiscal number of default: fiscal numbers only go up; "
        "give --next 2 or more"
    )
    code, out, _ = run_cli(capsys, *october, "invoice", "numbering", "set", "default", "--next", "500")
    assert (code, out) == (0, "configuration default: next fiscal number 500 (was 2), e.g. 500\n")
    code, _, err = run_cli(capsys, *october, "invoice", "numbering", "set", "nope", "--next", "600")
    assert code == 2 and "CONFIG 'nope' is not a configuration; use one of: default" in err
