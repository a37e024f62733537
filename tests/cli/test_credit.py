"""The credit engine from the command line: payments, can-create, process-clients --dry-run --json."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.store.database import make_engine
from tests.support.cli import run_cli
from tests.support.usage import run_vm


@pytest.fixture
def cfg(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    path = tmp_path / "settings.toml"
    path.write_text(
        f"""
[database]
url = "{database_url}"
[logging]
format = "json"
[pricing.flavors]
"m1.large" = 1.00
[configurations.default]
credit_notifications = [48]
[configurations.default.suspension]
enabled = true
[configurations.prepaid]
credit_limit = 5
required_credit_for_new_services = 10
"""
    )
    args = ["--config", str(path)]
    run_cli(capsys, *args, "client", "add", "--email", "ops@acme.com", "--name", "Acme")
    run_cli(capsys, *args, "client", "link", "1", "--openstack-project", "p-1")
    return args


def test_process_clients_dry_run_json_shows_each_decision_and_why_and_changes_nothing(
    cfg: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from bridge.bootstrap import build_app
    from bridge.settings import load_settings

    app = build_app(load_settings(Path(cfg[1])))
    run_vm(app, "p-1", "m1.large", 30)
    app.close()
    assert run_cli(capsys, *cfg, "credit", "add", "1", "40", "--reference", "bank-1")[0] == 0
    at = "2026-03-03T06:00:00Z"
    code, out, _ = run_cli(capsys, *cfg, "process-clients", "--at", at, "--dry-run", "--json")
    document = json.loads(out)
    assert (code, document["dry_run"], document["at"]) == (0, True, "2026-03-03T06:00:00+00:00")
    (client,) = document["clients"]
    assert client["up_to_date_credit"] == "10.00"
    assert [d["action"] for d in client["decisions"]] == ["notify"]
    assert "reaches zero in 10.00 h" in client["decisions"][0]["reason"]
    code, out, _ = run_cli(capsys, *cfg, "credit", "show", "1", "--json")
    assert json.loads(out)["suspended_at"] is None
    code, out, _ = run_cli(capsys, *cfg, "process-clients", "--at", at)
    assert out.startswith("client 1: notify:")
    code, out, _ = run_cli(capsys, *cfg, "process-clients", "--at", at)
    assert out.strip() == f"nothing to do at {datetime(2026, 3, 3, 6, tzinfo=UTC).isoformat()}"
    make_engine(database_url).dispose()


def test_payments_are_idempotent_and_can_create_follows_the_configuration(
    cfg: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(capsys, *cfg, "credit", "add", "1", "7.50", "--reference", "pp-9")[1].startswith(
        "payment pp-9: recorded"
    )
    code, out, _ = run_cli(capsys, *cfg, "credit", "add", "1", "7.50", "--reference", "pp-9")
    assert "already recorded (same reference), nothing changed; credit 7.50" in out
    assert run_cli(capsys, *cfg, "client", "can-create", "1")[0] == 0
    assert run_cli(capsys, *cfg, "client", "set", "1", "--configuration", "prepaid")[0] == 0
    code, out, _ = run_cli(capsys, *cfg, "client", "can-create", "1")
    assert code == 1 and out.startswith("no: up-to-date credit 7.50")
    code, _, err = run_cli(capsys, *cfg, "credit", "add", "1", "ten", "--reference", "x")
    assert code == 2 and "AMOUNT 'ten' is not a number" in err
    code, _, err = run_cli(capsys, *cfg, "client", "set", "1", "--configuration", "gold")
    assert code == 2 and "'gold' is not defined" in err


# -- issue 15 point 7: each client's own auto-invoicing choice (seed 000) ----------------------------------

AUTO_AT = "2026-03-03T04:00:00Z"  # 28 hours after the VM started: up-to-date credit -28.00 at 1.00/h


def run_28_hours(cfg: list[str]) -> None:
    from bridge.bootstrap import build_app
    from bridge.settings import load_settings

    app = build_app(load_settings(Path(cfg[1])))
    run_vm(app, "p-1", "m1.large", 28)
    app.close()


def auto_invoices(capsys: pytest.CaptureFixture[str], cfg: list[str]) -> list[str]:
    code, out, _ = run_cli(capsys, *cfg, "invoice", "list", "--client", "1", "--json")
    assert code == 0
    return [item["total"] for item in json.loads(out) if "-AUTO-" in item["reference"]]


def test_a_client_that_chose_a_fixed_200_top_up_gets_a_200_auto_invoice(
    cfg: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 point 7 (seed 000): the client's own choice over its configuration's default (off)."""
    run_28_hours(cfg)
    run_cli(capsys, *cfg, "process-clients", "--at", AUTO_AT)
    assert auto_invoices(capsys, cfg) == []  # the configuration's default: off

    code, out, _ = run_cli(capsys, *cfg, "client", "set", "1", "--auto-invoicing", "fixed:200")
    assert (code, out.strip()) == (
        0,
        "client 1 auto-invoicing now: on, a fixed amount of 200.00 USD (the client's choice)",
    )
    code, out, _ = run_cli(capsys, *cfg, "process-clients", "--at", AUTO_AT)
    assert code == 0 and "client 1: auto_invoice:" in out and "the fixed amount 200.00 USD" in out
    assert auto_invoices(capsys, cfg) == ["200.00"]


def test_client_show_has_the_choice_and_the_ledger_of_changes(
    cfg: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_cli(capsys, *cfg, "client", "show", "1")[1]
    assert "auto-invoicing     off (the configuration's default)" in out
    run_cli(capsys, *cfg, "client", "set", "1", "--auto-invoicing", "estimated")
    run_cli(capsys, *cfg, "client", "set", "1", "--auto-invoicing", "fixed:200")
    out = run_cli(capsys, *cfg, "client", "set", "ops@acme.com", "--auto-invoicing", "FIXED:200.00")[1]
    assert out.startswith("client 1 auto-invoicing unchanged: on, a fixed amount of 200.00 USD")

    out = run_cli(capsys, *cfg, "client", "show", "1")[1]
    assert "auto-invoicing     on, a fixed amount of 200.00 USD (the client's choice)" in out
    assert "-> estimated" in out and "configuration default -> estimated" in out
    assert "estimated -> fixed:200.00" in out
    out = run_cli(capsys, *cfg, "client", "show", "1", "--json")[1]
    document = json.loads(out)
    assert document["credit"]["auto_invoicing"] == {
        "choice": "fixed:200.00",
        "chosen_by_client": True,
        "description": "on, a fixed amount of 200.00 USD",
    }
    newest, oldest = document["auto_invoicing_changes"]
    assert (oldest["old"], oldest["new"], newest["old"], newest["new"]) == (
        None,
        "estimated",
        "estimated",
        "fixed:200.00",
    )
    assert newest["by"].startswith("operator ")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("sometimes", "'sometimes' is not a choice; use off, estimated or fixed:AMOUNT (e.g. fixed:200)"),
        ("fixed:", "the fixed amount is not a number"),
        ("fixed:abc", "the fixed amount is not a number"),
        ("fixed:-5", "the fixed amount must be above 0"),
        ("fixed:0", "the fixed amount must be above 0"),
        ("fixed:200.001", "200.001 has more decimals than USD has"),
    ],
)
def test_a_bad_choice_exits_2_naming_the_option_and_changes_nothing(
    cfg: list[str], capsys: pytest.CaptureFixture[str], value: str, says: str
) -> None:
    code, _, err = run_cli(capsys, *cfg, "client", "set", "1", "--auto-invoicing", value)
    assert code == 2
    assert "--auto-invoicing" in err and says in err and len(err.strip().splitlines()) == 1
    out = run_cli(capsys, *cfg, "client", "show", "1", "--json")[1]
    assert json.loads(out)["auto_invoicing_changes"] == []
