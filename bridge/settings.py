"""The settings file: one TOML document, validated whole before anything is created or changed.

Where the file comes from: ``--config PATH``, else ``$BRIDGE_CONFIG``, else ``./settings.toml``.
A bad file raises :class:`~bridge.errors.ConfigError` whose message names each bad key, what is wrong
with its value, and the fix; secrets never appear in it. settings.example.toml documents every key.
"""

from __future__ import annotations

import os
import tomllib
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url

from bridge.errors import ConfigError
from bridge.fleio.settings import OpenStackSettings
from bridge.settings_base import Section, is_secret_field
from bridge.solusvm.settings import SolusVMSettings
from bridge.whmcs.settings import WhmcsSettings

DEFAULT_CONFIG = "settings.toml"
CONFIG_ENV = "BRIDGE_CONFIG"
JOB_OFF = "off"


class DaemonSettings(Section):
    section = "daemon"

    state_dir: str = Field(
        "", description="directory for the SQLite file and other state; empty = $STATE_DIRECTORY or ./var"
    )
    lease_seconds: int = Field(300, ge=30, description="how long a job's lease lasts before it is renewed")
    job_run_retention_days: int = Field(90, ge=1, description="job_runs rows older than this are pruned")
    shutdown_timeout_seconds: int = Field(25, ge=1, le=120, description="time a job step gets to finish")

    def resolved_state_dir(self) -> Path:
        return Path(self.state_dir or os.environ.get("STATE_DIRECTORY", "") or "var")


class DatabaseSettings(Section):
    section = "database"

    url: str = Field(
        "", description='SQLAlchemy URL, e.g. "postgresql+psycopg://bridge@db/bridge"; empty = SQLite'
    )
    password: SecretStr | None = Field(None, description="password added to url when url has none")
    connect_timeout_seconds: int = Field(10, ge=1)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, url: str) -> str:
        if not url:
            return url
        try:
            backend = make_url(url).get_backend_name()
        except Exception:
            raise ValueError('not a database URL; use e.g. "mysql+pymysql://user@host/db"') from None
        if backend not in ("sqlite", "mysql", "mariadb", "postgresql"):
            raise ValueError(
                f"backend {backend!r} is not supported; use sqlite, mysql+pymysql or postgresql+psycopg"
            )
        return url


class BillingSettings(Section):
    section = "billing"

    timezone: str = Field("UTC", description="IANA time zone in which months begin, e.g. Europe/Berlin")
    currency: str = Field("USD", description="ISO 4217 code of new clients' currency")
    generate_invoices: bool = Field(True, description="issue invoices in the bridge; false = push to WHMCS")
    catch_up_cycles: int = Field(3, ge=0, le=36, description="earlier cycles an invoice run also catches up")

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
            ) from None
        return name

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, code: str) -> str:
        if len(code) != 3 or not code.isalpha() or not code.isupper():
            raise ValueError(f"{code!r} is not an ISO 4217 code; use three capitals such as 'USD' or 'EUR'")
        return code

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class HealthSettings(Section):
    section = "health"

    enabled: bool = True
    listen: str = Field("127.0.0.1:9180", description='"host:port" of the operator endpoint')
    admin_token: SecretStr | None = Field(
        None, description="when set, /status and /metrics need it as Bearer"
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        split_address(listen)
        return listen


def split_address(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9180"`` -> ``("127.0.0.1", 9180)``; ``[::1]:9180`` for IPv6."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f'{listen!r} is not "host:port"; use e.g. "127.0.0.1:9180"')
    return host.strip("[]"), int(port)


class ScheduleSettings(Section):
    """Cron expressions (minute hour day month weekday) in billing.timezone, or "off", per job."""

    section = "schedule"

    usage_sync: str = Field(
        "*/15 * * * *", description="collect usage; SolusVM uptime is observed on each run"
    )
    invoicing: str = Field("30 0 * * *", description="invoice ended cycles; calendar months end on the 1st")
    housekeeping: str = Field("17 3 * * *", description="prune old job runs")

    @field_validator("*")
    @classmethod
    def _cron(cls, expression: str) -> str:
        if expression != JOB_OFF:
            try:
                CronTrigger.from_crontab(expression)
            except ValueError as error:
                raise ValueError(f'{error}; use five cron fields such as "0 * * * *", or "off"') from None
        return expression


class LoggingSettings(Section):
    section = "logging"

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = console on a TTY, else JSON"
    )


class PlanRateSettings(Section):
    """A SolusVM plan's token rates, overriding what the SolusVM API says."""

    section = "pricing.solusvm_plans"

    tokens_per_hour: int = Field(ge=0)
    tokens_per_month: int | None = Field(None, ge=0, description="monthly cap; unset = no cap")


class PriceOverrides(Section):
    """Prices of one configuration that differ from the default price book."""

    section = "pricing.overrides"

    token_price: Decimal | None = Field(None, ge=0)
    flavors: dict[str, Decimal] = Field(default_factory=dict)


class PricingSettings(Section):
    """The default price book, in billing.currency; ``overrides.<configuration>`` changes parts of it."""

    section = "pricing"

    token_price: Decimal | None = Field(None, ge=0, description="price of one SolusVM token, e.g. 0.00100")
    flavors: dict[str, Decimal] = Field(
        default_factory=dict, description="OpenStack flavor -> price per hour"
    )
    solusvm_plans: dict[str, PlanRateSettings] = Field(default_factory=dict)
    overrides: dict[str, PriceOverrides] = Field(default_factory=dict)

    @field_validator("flavors")
    @classmethod
    def _prices_not_negative(cls, flavors: dict[str, Decimal]) -> dict[str, Decimal]:
        for flavor, price in flavors.items():
            if price < 0:
                raise ValueError(f'the price of flavor "{flavor}" is negative ({price})')
        return flavors


InvoicingOption = Literal["always_fiscal", "proforma_then_fiscal", "proforma_random"]


class ConfigurationSettings(Section):
    """A named group of per-client settings (seed 001); new clients get ``default``."""

    section = "configurations"

    generate_invoices: bool | None = Field(None, description="overrides billing.generate_invoices")
    billing_cycle_calendar: bool = Field(
        True, description="calendar months; false = the client's anniversary"
    )
    billable_seconds_per_month: int = Field(2_400_000, ge=0, description="0 turns the limit off")
    generate_invoices_after: datetime | None = Field(None, description="only cycles ending after this")
    invoice_zero_amounts: bool = Field(False, description="issue invoices whose total is zero")
    invoicing_option: InvoicingOption = "always_fiscal"
    fiscal_number_format: str = Field(
        "{{ number }}", description="{{ number }} {{ year }} {{ month }} {{ day }}"
    )
    next_fiscal_number: int = Field(1, ge=1, description="the first fiscal number, when none was issued yet")
    proforma_number_format: str = "P{{ number }}"
    invoice_detail: Literal["detailed", "simple"] = "detailed"
    invoice_due_days: int = Field(14, ge=0, description="days from an invoice's date to its due date")
    company_name: str = ""
    company_details: str = ""

    @field_validator("fiscal_number_format", "proforma_number_format")
    @classmethod
    def _has_number(cls, template: str) -> str:
        if "{{ number }}" not in template:
            raise ValueError(f"{template!r} has no {{{{ number }}}}; numbers must stay unique")
        return template


class Settings(BaseModel):
    """The whole settings file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daemon: DaemonSettings = DaemonSettings()
    database: DatabaseSettings = DatabaseSettings()
    billing: BillingSettings = BillingSettings()
    health: HealthSettings = HealthSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    logging: LoggingSettings = LoggingSettings()
    openstack: OpenStackSettings = OpenStackSettings()
    solusvm: SolusVMSettings = SolusVMSettings()
    whmcs: WhmcsSettings = WhmcsSettings()
    pricing: PricingSettings = PricingSettings()
    configurations: dict[str, ConfigurationSettings] = Field(
        default_factory=lambda: {"default": ConfigurationSettings()}
    )

    @field_validator("configurations")
    @classmethod
    def _has_default(cls, value: dict[str, ConfigurationSettings]) -> dict[str, ConfigurationSettings]:
        return {"default": ConfigurationSettings(), **value}

    def database_url(self) -> str:
        """The URL to connect with, password included; never log it (use :func:`masked_database_url`)."""
        if not self.database.url:
            return f"sqlite:///{self.daemon.resolved_state_dir() / 'billing-bridge.sqlite3'}"
        url = make_url(self.database.url)
        if self.database.password is not None and url.password is None:
            url = url.set(password=self.database.password.get_secret_value())
        return url.render_as_string(hide_password=False)

    def masked_database_url(self) -> str:
        return make_url(self.database_url()).render_as_string(hide_password=True)

    def secret_values(self) -> list[str]:
        """Every secret in force, so the log processor can mask them wherever they turn up."""
        values: list[str] = []
        for section in self._sections():
            for name in section.secret_fields():
                secret = getattr(section, name)
                if isinstance(secret, SecretStr) and secret.get_secret_value():
                    values.append(secret.get_secret_value())
        password = make_url(self.database_url()).password
        if password:
            values.append(str(password))
        return values

    def _sections(self) -> list[Section]:
        found = [value for value in self.__dict__.values() if isinstance(value, Section)]
        return found + list(self.configurations.values())


def config_path(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: Path) -> Settings:
    """Read and validate the settings file; raises ConfigError naming every bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        raise ConfigError(
            f"settings file {path} not found; pass --config PATH or set {CONFIG_ENV} "
            "(settings.example.toml documents every key)"
        ) from None
    except OSError as error:
        raise ConfigError(f"settings file {path}: cannot read it ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"settings file {path}: not valid TOML ({error}); fix the syntax there") from None
    return parse_settings(raw, source=str(path))


def parse_settings(raw: dict[str, Any], *, source: str = "settings") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_describe(detail) for detail in error.errors())
        raise ConfigError(f"{source}: {problems}") from None


def _describe(detail: ErrorDetails) -> str:
    key = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    if kind == "extra_forbidden":
        return f"{key}: unknown key; remove it or correct its spelling (settings.example.toml lists the keys)"
    if kind == "missing":
        return f"{key}: required but missing; add it"
    message = detail["msg"].removeprefix("Value error, ")
    if kind.startswith("value_error") or _is_secret_key(key) or isinstance(detail["input"], dict | list):
        return f"{key}: {message}"
    example = _example(detail["loc"])
    fix = f"set it like {example}" if example else "see settings.example.toml for its type"
    return f"{key}: {message}, got {detail['input']!r}; {fix}"


def _example(loc: tuple[int | str, ...]) -> str | None:
    """The key's default rendered as TOML, to show the operator a value of the right type."""
    model: Any = Settings
    default: Any = None
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if not isinstance(part, str) or not fields or part not in fields:
            return None
        default = fields[part].default
        model = fields[part].annotation
    if isinstance(default, bool):
        return f"{loc[-1]} = {str(default).lower()}"
    if isinstance(default, str) and default:
        return f'{loc[-1]} = "{default}"'
    if isinstance(default, int):
        return f"{loc[-1]} = {default}"
    return None


def _is_secret_key(key: str) -> bool:
    name = key.rsplit(".", 1)[-1]
    return any(word in name for word in ("secret", "token", "password", "key"))


__all__ = ["Settings", "config_path", "is_secret_field", "load_settings", "parse_settings", "split_address"]
