"""Values no operator means, refused the same way on SQLite, MariaDB and PostgreSQL: exit 2, one line
naming the argument, and not one row changed (issue 12, point 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.store_dump import dump_store


@pytest.fixture
def cfg(config: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    args = ["--config", str(config)]
    assert run_cli(capsys, *args, "client", "add", "--email", "ops@acme.com", "--name", "Acme")[0] == 0
    return args


def refused(capsys: pytest.CaptureFixture[str], database_url: str, *args: str) -> str:
    """Run the command; assert exit 2 with one line on stderr and an unchanged store; return the line."""
    before = dump_store(database_url)
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    assert "unexpected" not in err
    assert dump_store(database_url) == before
    return err


AMOUNTS = ["NaN", "Infinity", "+Infinity", "1e9999", "1e3", "1" * 30, "1000000000000000", "0.123456789", ""]


@pytest.mark.parametrize("amount", AMOUNTS)
def test_an_amount_that_is_no_payment_exits_2_naming_the_argument(
    amount: str, cfg: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(capsys, database_url, *cfg, "credit", "add", "1", amount, "--reference", "bank-1")
    assert "AMOUNT" in line


TEXTS = {
    "10,000 characters": "A" * 10_000,
    "a newline": "Acme\nLtd",
    "NUL": "Acme\x00Ltd",
    "bytes that were not UTF-8": "Acme\udcff",
}


@pytest.mark.parametrize("text", TEXTS)
def test_a_name_too_long_or_with_control_characters_exits_2_on_every_database(
    text: str, cfg: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    value = TEXTS[text]
    assert "--name" in refused(
        capsys, database_url, *cfg, "client", "add", "--email", "b@beta.org", "--name", value
    )
    assert "--name" in refused(capsys, database_url, *cfg, "client", "update", "1", "--name", value)
    assert "--reference" in refused(
        capsys, database_url, *cfg, "credit", "add", "1", "10", "--reference", value
    )
    assert "id" in refused(capsys, database_url, *cfg, "client", "link", "1", "--openstack-project", value)


@pytest.mark.parametrize(
    "args",
    [
        ["invoice", "--date", "0001-01-01"],
        ["invoice", "--date", "9999-12-31"],
        ["invoice", "--date", ""],
        ["invoice", "--date", " "],
        ["process-clients", "--at", "0001-01-01"],
        ["process-clients", "--at", "9999-12-31T23:59:59"],
        ["process-clients", "--at", ""],
        ["usage", "show", "--client", "1", "--from", "0001-01-01", "--to", "2022-11-01"],
        ["period", "recharge", "--date", ""],
        ["invoice", "pay", "1", "--date", ""],
    ],
    ids=lambda args: " ".join(args),
)
def test_a_date_out_of_range_or_empty_exits_2_naming_the_option(
    args: list[str], cfg: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    option = next(arg for arg in args if arg.startswith("--") and arg != "--client")
    line = refused(capsys, database_url, *cfg, *args)
    assert option in line


@pytest.mark.parametrize(
    "args",
    [
        ["client", "show", "9" * 30],
        ["outbox", "retry", "9" * 30],
        ["period", "delete", "-1"],
        ["enrollment", "list", "--limit", "9" * 30],
    ],
    ids=lambda args: " ".join(args),
)
def test_an_id_beyond_the_store_exits_2_instead_of_an_sql_error(
    args: list[str], cfg: list[str], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(capsys, database_url, *cfg, *args)


def test_a_price_finer_than_the_store_keeps_is_refused_by_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[pricing.flavors]\n"m1.small" = 0.0000000001\n')
    code, _, err = run_cli(capsys, "--config", str(path), "check-config")
    assert code == 2
    assert err.count("\n") == 1
    assert "pricing.flavors.m1.small: the amount '0.0000000001' has 10 decimal places; use at most 8" in err


def test_status_without_a_database_file_says_to_migrate_in_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    database = tmp_path / "state" / "bridge.sqlite3"
    path.write_text(f'[database]\nurl = "sqlite:///{database}"\n')
    for state in ("no directory", "no file"):
        code, out, err = run_cli(capsys, "--config", str(path), "status")
        assert (code, out) == (1, ""), state
        assert err.count("\n") == 1, state
        assert "run `billing-bridge migrate` first" in err, state
        assert not database.exists(), state
        database.parent.mkdir(exist_ok=True)


def test_status_on_an_unmigrated_database_says_to_migrate_in_one_line(
    tmp_path: Path, empty_database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(f'[database]\nurl = "{empty_database_url}"\n')
    code, _, err = run_cli(capsys, "--config", str(path), "status")
    assert code == 1
    assert err.count("\n") == 1
    assert "database schema is at revision none" in err and "run `billing-bridge migrate` first" in err


def test_status_on_an_unreachable_database_names_it_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        '[database]\nurl = "postgresql+psycopg://bridge@127.0.0.1:1/bridge"\nconnect_timeout_seconds = 1\n'
    )
    code, _, err = run_cli(capsys, "--config", str(path), "status")
    assert code == 1
    assert err.count("\n") == 1
    assert "database does not answer" in err and "check [database] url" in err
