"""The --json shapes of the main commands are documented as JSON Schemas (docs/schemas/), and each
command's real output, on a real October of usage, matches its schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from bridge.store.database import make_engine
from tests.cli.test_invoices import october  # noqa: F401 (a fixture: October collected, a linked client)
from tests.cli.test_outbox import add_clients, write_config
from tests.fakes.whmcs import FakeWhmcs
from tests.support.cli import run_cli
from tests.support.whmcs_push import issue_invoice

SCHEMAS = Path(__file__).parents[2] / "docs" / "schemas"


def registry() -> Registry[Any]:
    """Every schema by its $id, so invoice.json can use invoice-show.json's $defs."""
    resources = [
        Resource.from_contents(json.loads(path.read_text())) for path in sorted(SCHEMAS.glob("*.json"))
    ]
    return Registry().with_resources((resource.id() or "", resource) for resource in resources)


def check(name: str, output: str) -> Any:
    """The command's output parsed, after validating it against docs/schemas/NAME (every error listed)."""
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, registry=registry(), format_checker=FormatChecker())
    document = json.loads(output)
    errors = [f"{list(error.absolute_path)}: {error.message}" for error in validator.iter_errors(document)]
    assert errors == [], f"{name}: {errors}"
    return document


def test_every_schema_is_a_valid_2020_12_schema_with_its_own_id() -> None:
    names = sorted(path.name for path in SCHEMAS.glob("*.json"))
    assert names == [
        "invoice-list.json",
        "invoice-show.json",
        "invoice.json",
        "process-clients.json",
        "push.json",
        "reconcile.json",
        "sync.json",
    ]
    for name in names:
        schema = json.loads((SCHEMAS / name).read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$id"].endswith(name)


def test_the_main_commands_json_matches_their_schemas(
    october: list[str],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    def json_of(*args: str) -> str:
        code, out, err = run_cli(capsys, *october, *args)
        assert code == 0, err
        return out

    check("sync.json", json_of("sync", "--until", "2022-11-01T00:00:00Z", "--json"))
    dry = check("invoice.json", json_of("invoice", "--date", "2022-11-01", "--dry-run", "--json"))
    issued = check("invoice.json", json_of("invoice", "--date", "2022-11-01", "--json"))
    assert len(dry["invoices"]) == len(issued["invoices"]) == 1  # the schemas saw a real invoice
    again = check("invoice.json", json_of("invoice", "--date", "2022-11-01", "--json"))
    assert len(again["already_invoiced"]) == 1
    (listed,) = check("invoice-list.json", json_of("invoice", "list", "--json"))
    shown = check("invoice-show.json", json_of("invoice", "show", listed["number"], "--json"))
    assert shown["groups"][0]["lines"]
    decided = check(
        "process-clients.json", json_of("process-clients", "--at", "2022-11-02T00:00:00Z", "--json")
    )
    assert decided["clients"][0]["decisions"]
    reconciled = check("reconcile.json", json_of("reconcile", "--month", "2022-10", "--json"))
    assert reconciled["clients"][0]["resources"][0]["placements"]


def test_push_json_matches_its_schema(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeWhmcs(hold_seconds=2.0) as fake:
        config = write_config(tmp_path / "settings.toml", database_url, fake, invoice_status="Unpaid")
        add_clients(capsys, config, 1)
        engine = make_engine(database_url)
        issue_invoice(engine, 1, "2022-10", ["10.00"])
        engine.dispose()
        cfg = ["--config", str(config)]

        planned = check("push.json", run_cli(capsys, *cfg, "push", "--dry-run", "--json")[1])
        code, out, err = run_cli(capsys, *cfg, "push", "--json")

    assert code == 0, err
    pushed = check("push.json", out)
    assert [note["result"] for note in planned["rows"]] == ["planned", "planned"]
    assert [note["result"] for note in pushed["rows"]] == ["sent", "sent"]


def test_a_schema_refuses_a_shape_that_drifted() -> None:
    """The schemas are closed where the shape is the command's own: a renamed field is caught."""
    drifted = {
        "invoice_date": "2022-11-01",
        "dry_run": False,
        "invoices": [],
        "already_invoiced": [],
        "held": [],
        "skipped": [],
        "skiped": [],
    }
    with pytest.raises(AssertionError, match="skiped"):
        check("invoice.json", json.dumps(drifted))
