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
