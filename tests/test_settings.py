"""The settings file: strict, explained when wrong, secrets from file or environment."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.settings import Configurations, Settings, config_path, load_settings, parse_settings

EXAMPLE = Path(__file__).parents[1] / "settings.example.toml"


def commented_keys(text: str) -> dict[str, set[str]]:
    """Keys shown commented out (``# key = ...``) per section: how the example shows keys with no default."""
    found: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        header = re.match(r"^\[([\w.]+)\]", line)
        if header:
            section = header.group(1)
        key = re.match(r"^#\s*(\w+)\s*=", line)
        if key:
            found.setdefault(section.split(".")[0], set()).add(key.group(1).removesuffix("_file"))
        table = re.match(r"^#\s*\[(\w+)\.(\w+)", line)
        if table:
            found.setdefault(table.group(1), set()).add(table.group(2))
    return found


def test_the_example_file_is_valid_and_lists_every_key_with_its_default() -> None:
    settings = load_settings(EXAMPLE)
    text = EXAMPLE.read_text()
    raw = tomllib.loads(text)
    commented = commented_keys(text)
    for section, values in raw.items():
        if section == "configurations":
            continue
        model = getattr(settings, section)
        assert set(values) <= set(type(model).model_fields), section
        for key, value in values.items():
            assert getattr(model, key) == value, f"{section}.{key} in the example is not its default"
        documented = set(values) | commented.get(section, set())
        missing = set(type(model).model_fields) - documented
        assert not missing, f"[{section}] in settings.example.toml does not document {sorted(missing)}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"health": {"lisen": "x"}}, "health.lisen: unknown key"),
        (
            {"daemon": {"lease_seconds": 5}},
            "daemon.lease_seconds: Input should be greater than or equal to 30",
        ),
        ({"health": {"listen": "localhost"}}, "health.listen: 'localhost' is not \"host:port\""),
        ({"schedule": {"housekeeping": "every day"}}, "schedule.housekeeping: "),
        ({"database": {"url": "oracle://x/y"}}, "backend 'oracle' is not supported"),
        ({"billing": {"currency": "euro"}}, "billing.currency: 'euro' is not an ISO 4217 code"),
        (  # the settings read a number template as invoicing renders it (domain/numbers.py), both kinds
            {"configurations": {"default": {"proforma_number_format": "P{{ client }}-{{number}}"}}},
            "proforma_number_format 'P{{ client }}-{{number}}' uses client; only {{ number }}",
        ),
        (  # numbers identify one invoice: a proforma_random series and an "R" fiscal series could meet
            {
                "configurations": {
                    "default": {"invoicing_option": "proforma_random"},
                    "resellers": {"fiscal_number_format": "R{{ number }}"},
                }
            },
            "configurations.default.invoicing_option (proforma_random) 'R{{ random }}' and configurations."
            "resellers.fiscal_number_format 'R{{ number }}' can both issue number 'R1000000000'",
        ),
        (  # a key that no longer acts is refused with where its job went, not silently accepted
            {"whmcs": {"due_days": 14}},
            "whmcs.due_days: removed: every invoice's due date, in WHMCS too, is its configuration's "
            "invoice_due_days; set that in [configurations.<name>]",
        ),
    ],
)
def test_bad_values_name_the_key_and_the_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(raw)
    assert message in str(error.value)


def test_a_secret_comes_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file-token\n")
    settings = parse_settings({"health": {"admin_token_file": str(tmp_path / "token")}})
    assert settings.health.admin_token is not None
    assert settings.health.admin_token.get_secret_value() == "from-file-token"


def test_the_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("from-file-token")
    monkeypatch.setenv("BRIDGE_HEALTH_ADMIN_TOKEN", "from-env-token")
    settings = parse_settings({"health": {"admin_token_file": str(tmp_path / "token")}})
    assert settings.health.admin_token is not None
    assert settings.health.admin_token.get_secret_value() == "from-env-token"


def test_an_unreadable_secret_file_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"health": {"admin_token_file": str(tmp_path / "missing")}})
    assert "cannot read admin_token_file" in str(error.value)
    assert "make the file readable" in str(error.value)


def test_a_secret_of_the_wrong_type_does_not_echo_its_value() -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings({"health": {"admin_token": 123456789}})
    assert "123456789" not in str(error.value)


def test_database_password_joins_the_url_and_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_DATABASE_PASSWORD", "pw-123456")
    settings = parse_settings({"database": {"url": "postgresql+psycopg://bridge@db/bridge"}})
    assert settings.database_url() == "postgresql+psycopg://bridge:pw-123456@db/bridge"
    assert settings.masked_database_url() == "postgresql+psycopg://bridge:***@db/bridge"
    assert "pw-123456" in settings.secret_values()


def test_default_database_is_sqlite_in_the_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/billing-bridge")
    assert Settings().database_url() == "sqlite:////var/lib/billing-bridge/billing-bridge.sqlite3"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert (
        parse_settings({"daemon": {"state_dir": "/srv/bb"}}).database_url()
        == "sqlite:////srv/bb/billing-bridge.sqlite3"
    )


def test_config_path_order_flag_then_env_then_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    assert config_path(None) == Path("settings.toml")
    monkeypatch.setenv("BRIDGE_CONFIG", "/etc/billing-bridge/settings.toml")
    assert config_path(None) == Path("/etc/billing-bridge/settings.toml")
    assert config_path("/tmp/x.toml") == Path("/tmp/x.toml")


def test_every_client_has_a_default_configuration() -> None:
    settings = parse_settings({"configurations": {"gold": {"generate_invoices": False}}})
    assert set(settings.configurations) == {"default", "gold"}


def test_the_example_documents_every_configuration_key() -> None:
    from bridge.settings import ConfigurationSettings

    text = EXAMPLE.read_text()
    block = text[text.index("[configurations.default]") :]
    written = set(tomllib.loads(text)["configurations"]["default"])
    commented = set(re.findall(r"^#\s*(\w+)\s*=", block, flags=re.MULTILINE))
    missing = set(ConfigurationSettings.model_fields) - written - commented
    assert not missing, f"[configurations.default] does not document {sorted(missing)}"


INSECURE = {
    "WHMCS over http to another host": (
        {"whmcs": {"url": "http://billing.example.com"}},
        "whmcs.url 'http://billing.example.com' is plain http to another host",
        {"whmcs": {"url": "http://billing.example.com", "allow_insecure_url": True}},
    ),
    "SolusVM over http to another host": (
        {"solusvm": {"url": "http://solus.example.com"}},
        "solusvm.url: url 'http://solus.example.com' uses plain http",
        {"solusvm": {"url": "http://127.0.0.1:8080"}},
    ),
    "the health endpoint on all addresses without a token": (
        {"health": {"listen": "0.0.0.0:9180"}},
        "health.admin_token is required: health.listen '0.0.0.0:9180' is reachable from other hosts",
        {"health": {"listen": "127.0.0.1:9180"}},
    ),
    "the health endpoint on all addresses with a token but plain HTTP": (
        {"health": {"listen": "[::]:9180", "admin_token": "a" * 32}},
        "health.tls_cert_file is required: health.listen '[::]:9180' is reachable from other hosts",
        {"health": {"listen": "[::]:9180", "admin_token": "a" * 32, "allow_insecure_listen": True}},
    ),
    "the sign-up site on all addresses without an https public_url": (
        {"enrollment": {"listen": "192.0.2.10:9181"}},
        "enrollment.public_url must be https:// when enrollment.listen '192.0.2.10:9181' is reachable",
        {"enrollment": {"listen": "192.0.2.10:9181", "public_url": "https://signup.example.com"}},
    ),
}


@pytest.mark.parametrize("case", INSECURE)
def test_a_secret_or_a_session_in_clear_text_beyond_loopback_is_refused_naming_the_key(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.cli import run_cli

    refused, message, accepted = INSECURE[case]
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_settings(refused)
    parse_settings(accepted)  # the safe form, or the explicit lab opt-in, is accepted

    section, values = next(iter(refused.items()))
    path = tmp_path / "settings.toml"
    path.write_text(f"[{section}]\n" + "".join(f"{key} = {_toml(value)}\n" for key, value in values.items()))
    code, _, err = run_cli(capsys, "--config", str(path), "check-config")
    assert code == 2 and message in err and err.count("\n") == 1


def _toml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else f'"{value}"'


def test_configurations_left_at_their_defaults_number_in_series_of_their_own() -> None:
    configurations = Configurations.from_settings(
        parse_settings({"configurations": {"resellers": {"invoicing_option": "proforma_then_fiscal"}}})
    )
    default, resellers = configurations.of("default"), configurations.of("resellers")
    assert (default.fiscal_number_format, default.proforma_number_format) == ("{{ number }}", "P{{ number }}")
    assert (resellers.fiscal_number_format, resellers.proforma_number_format) == (
        "RESELLERS-{{ number }}",
        "P-RESELLERS-{{ number }}",
    )
