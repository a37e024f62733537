"""The command line as an operator meets it: exit codes, one-line errors, nothing changed on bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.cli.base import StreamedJson, indented_json, json_default, print_json
from bridge.sync.registry import registry
from tests.support.cli import run_cli


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\n')
    return path


BAD_CONFIGS = {
    "unknown key": ("[billing]\ntimezoen = 'UTC'\n", "billing.timezoen: unknown key"),
    "wrong type": (
        "[health]\nlisten = 12\n",
        'health.listen: Input should be a valid string, got 12; set it like listen = "127.0.0.1:9180"',
    ),
    "bad zone": (
        "[billing]\ntimezone = 'Europe/Berlinn'\n",
        "billing.timezone: unknown time zone 'Europe/Berlinn'",
    ),
    "not toml": ("[billing\n", "not valid TOML"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_exits_2_naming_the_key_and_creates_no_database(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body, message = BAD_CONFIGS[case]
    path = tmp_path / "settings.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + body)
    for command in (["run"], ["migrate"], ["client", "list"]):
        code, _, err = run_cli(capsys, "--config", str(path), *command)
        assert code == 2
        assert message in err
        assert err.count("\n") == 1, "one line, no traceback"
    assert not (tmp_path / "state").exists()


def test_a_missing_settings_file_says_how_to_give_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "--config", str(tmp_path / "nope.toml"), "status")
    assert code == 2
    assert "not found; pass --config PATH or set BRIDGE_CONFIG" in err


def test_config_comes_from_bridge_config_when_no_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.toml"
    path.write_text("[billing]\ncurrency = 'usd'\n")
    monkeypatch.setenv("BRIDGE_CONFIG", str(path))
    code, _, err = run_cli(capsys, "check-config")
    assert code == 2
    assert f"{path}: billing.currency" in err


def test_check_config_refuses_two_series_that_could_issue_the_same_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        "[configurations.default]\n[configurations.resellers]\nfiscal_number_format = '{{ number }}'\n"
    )
    code, _, err = run_cli(capsys, "--config", str(path), "check-config")
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {path}: configurations.default.fiscal_number_format '{{{{ number }}}}' and "
        "configurations.resellers.fiscal_number_format '{{ number }}' can both issue number '1'; numbers "
        "must identify one invoice: set configurations.resellers.fiscal_number_format = "
        "'RESELLERS-{{ number }}'"
    ]
    path.write_text("[configurations.default]\n[configurations.resellers]\n")
    assert run_cli(capsys, "--config", str(path), "check-config")[0] == 0


def test_client_add_then_duplicate_email_exits_2_and_changes_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "--config", str(config), "client", "add", "--email", "Ops@Acme.com", "--name", "Acme"
    )
    assert code == 0
    assert "client 1: Acme <ops@acme.com>" in out
    code, _, err = run_cli(
        capsys, "--config", str(config), "client", "add", "--email", "ops@acme.com", "--name", "Other"
    )
    assert code == 2
    assert "a client with email ops@acme.com already exists" in err
    code, out, _ = run_cli(capsys, "--config", str(config), "client", "list", "--json")
    listed = json.loads(out)
    assert [(item["email"], item["name"]) for item in listed] == [("ops@acme.com", "Acme")]


def test_client_add_refuses_a_bad_email_currency_or_configuration(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(config), "client", "add", "--name", "Acme"]
    assert "is not a valid address" in run_cli(capsys, *base, "--email", "not-an-email")[2]
    assert (
        "--currency 'US' is not an ISO 4217 code"
        in run_cli(capsys, *base, "--email", "a@b.org", "--currency", "us")[2]
    )
    assert (
        "--configuration 'gold' is not defined; use one of: default"
        in run_cli(capsys, *base, "--email", "a@b.org", "--configuration", "gold")[2]
    )
    assert json.loads(run_cli(capsys, "--config", str(config), "client", "list", "--json")[1]) == []


def test_client_link_and_show(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ["--config", str(config)]
    run_cli(capsys, *cfg, "client", "add", "--email", "a@acme.com", "--name", "Acme")
    run_cli(capsys, *cfg, "client", "add", "--email", "b@beta.org", "--name", "Beta")
    assert run_cli(capsys, *cfg, "client", "link", "1", "--openstack-project", "p-1")[0] == 0
    assert run_cli(capsys, *cfg, "client", "link", "a@acme.com", "--whmcs-client", "77")[0] == 0
    code, _, err = run_cli(capsys, *cfg, "client", "link", "2", "--openstack-project", "p-1")
    assert (code, err.strip()) == (2, "error: openstack_project p-1 is already linked to client 1")
    code, _, err = run_cli(capsys, *cfg, "client", "link", "1", "--whmcs-client", "78")
    assert code == 2 and "already linked to WHMCS client 77" in err
    code, _, err = run_cli(capsys, *cfg, "client", "link", "1", "--whmcs-client", "78", "--solusvm-user", "5")
    assert code == 2 and "exactly one of" in err
    code, out, _ = run_cli(capsys, *cfg, "client", "show", "1", "--json")
    shown = json.loads(out)
    assert [(link["kind"], link["external_id"]) for link in shown["links"]] == [
        ("openstack_project", "p-1"),
        ("whmcs_client", "77"),
    ]
    code, _, err = run_cli(capsys, *cfg, "client", "show", "nobody@x.org")
    assert code == 2 and "no client 'nobody@x.org'" in err


def test_status_json_shows_schema_and_jobs(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--config", str(config), "status", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["database"]["at_head"] is True
    jobs = {job["name"]: job for job in report["jobs"]}
    assert set(jobs) == set(registry()) >= {"usage_sync", "invoicing", "housekeeping"}
    assert jobs["housekeeping"]["last_run"]["status"] is None
    assert jobs["usage_sync"]["schedule"] == "*/15 * * * *"
    assert jobs["usage_sync"]["next_run"]
    assert report["usage"]["openstack"] == {
        "watermark": None,
        "lag_seconds": None,
        "records_collected": 0,
        "last_error": None,
        "last_error_at": None,
    }


def test_run_refuses_a_schema_behind_and_says_to_migrate(
    tmp_path: Path, empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if empty_database_url.startswith("sqlite"):
        from bridge.store.database import make_engine

        make_engine(empty_database_url).connect().close()  # an existing file with no schema
    path = tmp_path / "settings.toml"
    path.write_text(f'[database]\nurl = "{empty_database_url}"\n[health]\nenabled = false\n')
    code, _, err = run_cli(capsys, "--config", str(path), "run")
    assert code == 1
    assert "run `billing-bridge migrate` first" in err


def test_secrets_never_show_in_check_config_help_or_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token_file = tmp_path / "admin.token"
    token_file.write_text("s3cr3t-admin-token\n")
    monkeypatch.setenv("BRIDGE_DATABASE_PASSWORD", "db-pa55word")
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[database]\nurl = "mysql+pymysql://bridge@127.0.0.1:1/bridge"\nconnect_timeout_seconds = 1\n'
        f'[health]\nadmin_token_file = "{token_file}"\n'
    )
    outputs = [
        run_cli(capsys, "--config", str(path), "check-config"),
        run_cli(capsys, "--config", str(path), "check-config", "--json"),
        run_cli(capsys, "--config", str(path), "--help"),
        run_cli(capsys, "--config", str(path), "client", "list"),  # the database refuses: an error line
    ]
    assert outputs[0][0] == 0 and outputs[3][0] == 1
    for _, out, err in outputs:
        assert "s3cr3t-admin-token" not in out + err
        assert "db-pa55word" not in out + err
    assert "bridge:***@127.0.0.1" in outputs[1][1]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "version")
    assert code == 0 and out.startswith("billing-bridge ")


@pytest.mark.parametrize(
    "lists",
    [
        {"invoices": [], "held": []},
        {"invoices": [{"total": Decimal("1.50"), "lines": [{"a": 1}, {"b": [1, 2]}]}], "held": []},
        {"invoices": [{"n": n, "when": datetime(2022, 11, 1, tzinfo=UTC)} for n in range(3)], "held": [{}]},
    ],
)
def test_a_streamed_document_prints_byte_for_byte_what_print_json_prints(
    lists: dict[str, list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    document = {"invoice_date": "2022-11-01", "dry_run": True}
    print_json({**document, **lists})
    expected = capsys.readouterr().out
    with StreamedJson(document, list(lists)) as streamed:
        for name, items in lists.items():
            for item in items:
                streamed.add(name, item)
        streamed.print()
    assert capsys.readouterr().out == expected


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.decimals(allow_nan=False)
    | st.datetimes(timezones=st.just(UTC))
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=3)
    ),
    max_leaves=30,
)


@given(document=_DOCUMENTS, level=st.integers(min_value=0, max_value=3))
def test_the_fast_indented_json_is_json_dumps_byte_for_byte(document: Any, level: int) -> None:
    expected = json.dumps(document, indent=2, sort_keys=True, default=json_default)
    assert indented_json(document, level=level) == expected.replace("\n", "\n" + "  " * level)
