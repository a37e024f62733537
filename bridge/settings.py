"""The settings file: one TOML document, validated whole before anything is created or changed.

Where the file comes from: ``--config PATH``, else ``$BRIDGE_CONFIG``, else ``./settings.toml``.
A bad file raises :class:`~bridge.errors.ConfigError` whose message names each bad key, what is wrong
with its value, and the fix; secrets never appear in it. settings.example.toml documents every key.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pycountry
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url

from bridge.domain import configuration as domain_configuration
from bridge.domain.bounds import COUNT_MAX, ID_MAX, check_amount
from bridge.domain.configuration import (
    AutoInvoiceMode,
    AutoInvoicing,
    Configuration,
    SuspensionRule,
    TerminationRule,
)
from bridge.domain.numbers import (
    RANDOM_PROFORMA_TEMPLATE,
    NumberSeries,
    check_template,
    colliding_series,
    default_number_formats,
)
from bridge.domain.tax import TaxRule, TaxRules
from bridge.errors import ConfigError
from bridge.fleio.settings import OpenStackSettings
from bridge.settings_base import Section, is_loopback_host, is_secret_field
from bridge.solusvm.settings import SolusVMSettings
from bridge.vies.settings import ViesSettings
from bridge.vies.vatid import VIES_PREFIXES, InvalidVatId, parse_vat_id
from bridge.whmcs.settings import WhmcsSettings

DEFAULT_CONFIG = "settings.toml"
LOGO_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg")
CONFIG_ENV = "BRIDGE_CONFIG"
JOB_OFF = "off"


def _bounded_amount(value: Decimal) -> Decimal:
    return check_amount(value, "the amount")


Amount = Annotated[Decimal, AfterValidator(_bounded_amount)]
TOKENS_MAX = 1_000_000_000
"""Token rates above this would overflow an invoice line's token count."""
"""A price, fee or credit amount: finite, with no more decimal places than the store keeps and within the
bounds of bridge/domain/bounds.py, so a value `check-config` accepts never stops an invoicing run."""


class DaemonSettings(Section):
    section = "daemon"

    state_dir: str = Field(
        "", description="directory for the SQLite file and other state; empty = $STATE_DIRECTORY or ./var"
    )
    lease_seconds: int = Field(300, ge=30, description="how long a job's lease lasts before it is renewed")
    job_run_retention_days: int = Field(90, ge=1, description="job_runs rows older than this are pruned")
    shutdown_timeout_seconds: int = Field(
        25, ge=1, le=120, description="on SIGTERM, time running jobs get before they are abandoned"
    )
    run_on_start: list[str] = Field(
        default_factory=list, description="jobs run once as soon as the daemon starts, besides their schedule"
    )

    @field_validator("run_on_start")
    @classmethod
    def _known_jobs(cls, names: list[str]) -> list[str]:
        known = list(ScheduleSettings.model_fields)
        unknown = [name for name in names if name not in known]
        if unknown:
            raise ValueError(f"unknown job {unknown[0]!r}; use job names from [schedule]: {', '.join(known)}")
        return names

    def resolved_state_dir(self) -> Path:
        return Path(self.state_dir or os.environ.get("STATE_DIRECTORY", "") or "var")


class DatabaseSettings(Section):
    section = "database"

    url: str = Field(
        "", description='SQLAlchemy URL, e.g. "postgresql+psycopg://bridge@db/bridge"; empty = SQLite'
    )
    password: SecretStr | None = Field(None, description="password added to url when url has none")
    connect_timeout_seconds: int = Field(10, ge=1)
    lock_timeout_seconds: int = Field(
        30, ge=1, le=3600, description="longest wait for a lock another transaction holds"
    )
    statement_timeout_seconds: int = Field(
        600, ge=0, le=86400, description="MariaDB/PostgreSQL cancel longer statements; 0 = no limit"
    )

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
    credit_auto_invoicing: bool = Field(True, description="the credit auto-invoicing feature (seed 000)")
    auto_invoice_lead_time_hours: int = Field(120, ge=1, description="hours before credit runs out")
    grace_period_days: int = Field(
        3, ge=0, le=27, description="days after a period ends in which its invoice may be recalculated"
    )
    hourly_usage_months: int = Field(
        1,
        ge=1,
        le=120,
        description="billing months before the current one whose hourly usage rows are kept; older ones are "
        "pruned by the housekeeping job, their daily totals kept",
    )

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
        None, description="when set, /status and /metrics need it as Bearer; required beyond loopback"
    )
    tls_cert_file: str = Field(
        "", description="PEM certificate: the endpoint speaks HTTPS (with tls_key_file)"
    )
    tls_key_file: str = Field("", description="PEM private key of tls_cert_file")
    allow_insecure_listen: bool = Field(
        False, description="a lab only: plain HTTP on a non-loopback address (the token still required)"
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        split_address(listen)
        return listen

    @model_validator(mode="after")
    def _private_or_protected(self) -> HealthSettings:
        """Nothing listens beyond loopback without a token and TLS (or the explicit lab opt-in)."""
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("health.tls_cert_file and health.tls_key_file go together; set both or neither")
        if self.tls_cert_file:
            try:
                ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
                    self.tls_cert_file, self.tls_key_file
                )
            except (OSError, ssl.SSLError) as error:
                raise ValueError(
                    f"health.tls_cert_file/tls_key_file: cannot load a certificate and its key ({error}); "
                    "give PEM files the bridge's user can read"
                ) from None
        host, _ = split_address(self.listen)
        if not self.enabled or is_loopback_host(host):
            return self
        if self.admin_token is None or not self.admin_token.get_secret_value().strip():
            raise ValueError(
                f"health.admin_token is required: health.listen {self.listen!r} is reachable from other "
                'hosts; set admin_token_file = "/path" (or BRIDGE_HEALTH_ADMIN_TOKEN), or listen on 127.0.0.1'
            )
        if not self.tls_cert_file and not self.allow_insecure_listen:
            raise ValueError(
                f"health.tls_cert_file is required: health.listen {self.listen!r} is reachable from other "
                "hosts and the admin token must not cross the network in clear text; set tls_cert_file and "
                "tls_key_file, listen on 127.0.0.1 behind a TLS proxy, or set allow_insecure_listen = true "
                "for a lab"
            )
        return self


def split_address(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9180"`` -> ``("127.0.0.1", 9180)``; ``[::1]:9180`` for IPv6."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f'{listen!r} is not "host:port"; use e.g. "127.0.0.1:9180"')
    return host.strip("[]"), int(port)


class EnrollmentSettings(Section):
    """The sign-up pages and single sign-on into SolusVM (seed 002), served on their own address.

    ``public_url`` is the address customers use (behind the reverse proxy); links in mails and the
    WHMCS panel are built from it, never from a request's Host header. Empty: ``http://<listen>``.
    ``secret_key`` signs the session cookie and the links; unset, a random key is kept in
    ``<state_dir>/enrollment.key``. ``smtp_host`` empty writes mails as files to ``mail_sink_dir``.
    """

    section = "enrollment"

    enabled: bool = Field(True, description="serve the sign-up pages (on loopback unless listen says else)")
    listen: str = Field("127.0.0.1:9181", description='"host:port" of the sign-up pages')
    public_url: str = Field("", description="the address customers use; empty = http://<listen>")
    company_name: str = Field("", description="shown on the pages and in mails")
    logo_url: str = Field("", description="https URL or /path of the logo; empty = the name only")
    template_dir: str = Field("", description="directory of templates that replace the bundled ones")
    terms_url: str = Field("", description="the Terms of Service; empty = the terms.html template")
    terms_version: str = Field("1", min_length=1, max_length=64)
    postpay_terms_url: str = Field("", description="post-pay T&C; empty = the postpay_terms.html template")
    postpay_terms_version: str | None = Field(None, max_length=64, description="set to ask for post-pay T&C")
    link_ttl_hours: int = Field(24, ge=1, le=168, description="lifetime of the mailed sign-up link")
    sso_link_ttl_minutes: int = Field(30, ge=1, le=1440, description="lifetime of a one-time login link")
    session_hours: int = Field(12, ge=1, le=720, description="how long a signed-in browser stays signed in")
    secret_key: SecretStr | None = Field(None, description="signs cookies and links; 32+ characters")
    panel_token: SecretStr | None = Field(None, description="Bearer token of the WHMCS panel endpoint")
    smtp_host: str = Field("", description="SMTP server; empty = write mails to mail_sink_dir")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr | None = None
    smtp_from: str = Field("", description='From address, e.g. "Example Cloud <cloud@example.com>"')
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    mail_sink_dir: str = Field("", description="where mails go without SMTP; empty = <state_dir>/mail")
    trusted_proxies: list[str] = Field(default_factory=list, description="proxies whose X-Forwarded-* count")
    signup_limit_per_ip: int = Field(10, ge=1, description="sign-up and link requests per IP per window")
    signup_limit_per_email: int = Field(3, ge=1, description="sign-up and link requests per email per window")
    link_limit_per_ip: int = Field(
        30, ge=1, description="opened sign-up and login links and single sign-ons per IP per window"
    )
    signin_limit_per_ip: int = Field(
        20, ge=1, description="client sign-ins with a password per IP per window"
    )
    signin_limit_per_email: int = Field(
        5, ge=1, description="client sign-ins with a password per email per window"
    )
    rate_limit_window_minutes: int = Field(60, ge=1, le=1440)
    password_min_length: int = Field(10, ge=8, le=64)
    workers: int = Field(16, ge=1, le=256, description="requests served at once; more wait their turn")
    request_timeout_seconds: int = Field(
        10, ge=1, le=300, description="time a client gets to send its whole request (headers and form)"
    )
    allow_insecure_listen: bool = Field(
        False, description="a lab only: a non-loopback listen without an https public_url"
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        split_address(listen)
        return listen

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str) -> str:
        if not url:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"{url!r} is not a base URL; use e.g. https://signup.example.com")
        if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError(f"{url!r} uses plain http; use https:// (the sign-up form carries passwords)")
        return url.rstrip("/")

    @field_validator("logo_url", "terms_url", "postpay_terms_url")
    @classmethod
    def _link(cls, url: str) -> str:
        if url and not url.startswith(("https://", "http://", "/")):
            raise ValueError(f"{url!r} is not a link; use an https:// URL or a /path on this site")
        return url

    @field_validator("secret_key")
    @classmethod
    def _long_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) < 32:
            raise ValueError("is shorter than 32 characters; make one with `openssl rand -hex 32`")
        return key

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network, e.g. 10.0.0.5 or 10.0.0.0/24"
                ) from None
        return proxies

    @model_validator(mode="after")
    def _complete(self) -> EnrollmentSettings:
        host, _ = split_address(self.listen)
        secure = self.public_url.startswith("https://")
        if self.enabled and not is_loopback_host(host) and not secure and not self.allow_insecure_listen:
            raise ValueError(
                f"enrollment.public_url must be https:// when enrollment.listen {self.listen!r} is reachable "
                "from other hosts (the session cookie is Secure only then and the form carries passwords); "
                'set public_url = "https://signup.example.com" (TLS at your proxy), listen on 127.0.0.1, '
                "or set allow_insecure_listen = true for a lab"
            )
        if self.postpay_terms_url and self.postpay_terms_version is None:
            raise ValueError("postpay_terms_url is set without postpay_terms_version; set both")
        if self.smtp_host and not self.smtp_from:
            raise ValueError('smtp_host is set without smtp_from; set e.g. smtp_from = "cloud@example.com"')
        return self

    def base_url(self) -> str:
        """The address customers use, without a trailing slash."""
        if self.public_url:
            return self.public_url
        host, port = split_address(self.listen)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"


class ScheduleSettings(Section):
    """Cron expressions (minute hour day month weekday) in billing.timezone, or "off", per job."""

    section = "schedule"

    usage_sync: str = Field(
        "*/15 * * * *",
        description="collect usage; SolusVM runtime carries between runs (daily bills as hourly)",
    )
    invoicing: str = Field("30 0 * * *", description="invoice ended cycles; calendar months end on the 1st")
    push: str = Field("*/5 * * * *", description="push pending outbox rows to WHMCS")
    payments_sync: str = Field("7 * * * *", description="read paid invoices and agreements from WHMCS")
    process_clients: str = Field(
        "*/10 * * * *", description="credit notifications, suspension, auto-invoices"
    )
    enrollment: str = Field("*/10 * * * *", description="create SolusVM users that sign-up had to defer")
    recurring: str = Field("45 0 * * *", description="bill recurring fees of billing periods due today")
    housekeeping: str = Field("17 3 * * *", description="prune old job runs")
    tax_revalidation: str = Field(
        "23 * * * *",
        description="ask VIES again about VAT IDs (taxes.revalidation_interval_hours); 48 h unanswered ends "
        "an exemption",
    )
    reconcile: str = Field(
        "30 3 * * *",
        description="reconcile last month and the one before into <state_dir>/reports, after the day's "
        "invoicing",
    )

    @field_validator("*")
    @classmethod
    def _cron(cls, expression: str) -> str:
        if expression != JOB_OFF:
            try:
                CronTrigger.from_crontab(expression)
            except ValueError as error:
                raise ValueError(f'{error}; use five cron fields such as "0 * * * *", or "off"') from None
        return expression

    def expression(self, job: str) -> str:
        """``job``'s cron expression, or "off" (also for a name that is no job)."""
        found: str = getattr(self, job, JOB_OFF)
        return found

    def next_run(self, job: str, after: datetime, zone: ZoneInfo) -> datetime | None:
        """When ``job`` fires next after ``after``, its expression read in ``zone``; None when it is off."""
        expression = self.expression(job)
        if expression == JOB_OFF:
            return None
        fire: datetime | None = CronTrigger.from_crontab(expression, timezone=zone).get_next_fire_time(
            None, after
        )
        return fire


class LoggingSettings(Section):
    section = "logging"

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto = console on a TTY, else JSON"
    )


class PlanRateSettings(Section):
    """A SolusVM plan's token rates, overriding what the SolusVM API says."""

    section = "pricing.solusvm_plans"

    tokens_per_hour: int = Field(ge=0, le=TOKENS_MAX)
    tokens_per_month: int | None = Field(None, ge=0, le=TOKENS_MAX, description="monthly cap; unset = no cap")


class PriceOverrides(Section):
    """Prices of one configuration that differ from the default price book."""

    section = "pricing.overrides"

    token_price: Amount | None = Field(None, ge=0)
    flavors: dict[str, Amount] = Field(default_factory=dict)


class PricingSettings(Section):
    """The default price book, in billing.currency; ``overrides.<configuration>`` changes parts of it."""

    section = "pricing"

    token_price: Amount | None = Field(None, ge=0, description="price of one SolusVM token, e.g. 0.00100")
    flavors: dict[str, Amount] = Field(default_factory=dict, description="OpenStack flavor -> price per hour")
    solusvm_plans: dict[str, PlanRateSettings] = Field(default_factory=dict)
    overrides: dict[str, PriceOverrides] = Field(default_factory=dict)

    @field_validator("flavors")
    @classmethod
    def _prices_not_negative(cls, flavors: dict[str, Decimal]) -> dict[str, Decimal]:
        for flavor, price in flavors.items():
            if price < 0:
                raise ValueError(f'the price of flavor "{flavor}" is negative ({price})')
        return flavors


class PlanSettings(Section):
    """A named pricing plan (issue 8): prices that replace the default book's for clients assigned to it.

    Flavors and the token price it leaves out are the default book's (with the client's configuration
    overrides); ``fees`` prices recurring subscriptions by name, per billing period.
    """

    section = "plans"

    description: str = Field("", description="what the plan is, for `billing-bridge plan list`")
    token_price: Amount | None = Field(None, ge=0, description="price of one SolusVM token")
    flavors: dict[str, Amount] = Field(default_factory=dict, description="OpenStack flavor -> price per hour")
    fees: dict[str, Amount] = Field(
        default_factory=dict, description="subscription name -> fee per billing period"
    )

    @field_validator("flavors", "fees")
    @classmethod
    def _not_negative(cls, prices: dict[str, Decimal]) -> dict[str, Decimal]:
        for name, price in prices.items():
            if price < 0:
                raise ValueError(f'the price of "{name}" is negative ({price})')
        return prices


InvoicingOption = Literal["always_fiscal", "proforma_then_fiscal", "proforma_random"]


class SuspensionSettings(Section):
    """Automatic suspension when up-to-date credit is under the credit limit; delays: first match wins.

    Off unless enabled: post-pay clients run below a credit limit of 0 by design.
    """

    section = "configurations.suspension"

    enabled: bool = False
    delay_hours: int | None = Field(None, ge=0, description="not before this many hours under the limit")
    delay_credit: Amount | None = Field(None, ge=0, description="once this far under the limit")


class TerminationSettings(Section):
    """Automatic termination after suspension; off unless enabled (it deletes the client's servers)."""

    section = "configurations.termination"

    enabled: bool = False
    delay_hours: int = Field(0, ge=0, description="hours after suspension")
    suspend_instead: bool = Field(False, description="keep the client suspended instead of terminating")


class AutoInvoicingSettings(Section):
    """Credit auto-invoicing (seed 000): an invoice before credit reaches the limit."""

    section = "configurations.auto_invoicing"

    enabled: bool = False
    mode: Literal["estimated", "fixed"] = Field(
        "estimated", description="estimated 30-day consumption, or fixed"
    )
    fixed_amount: Amount | None = Field(None, gt=0)


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
        "{{ number }}",
        description="{{ number }} {{ year }} {{ month }} {{ day }}; unset: 1, 2, … (default) or NAME-1, …",
    )
    next_fiscal_number: int = Field(
        1, ge=1, le=ID_MAX, description="the first fiscal number, when none was issued yet"
    )
    proforma_number_format: str = Field("P{{ number }}", description="unset: P1, … (default) or P-NAME-1, …")
    invoice_detail: Literal["detailed", "simple"] = "detailed"
    invoice_due_days: int = Field(14, ge=0, description="days from an invoice's date to its due date")
    notify_on_unpaid_invoices: bool = Field(
        True, description="mail each issued invoice (PDF attached) and a reminder when it is overdue"
    )
    notification_sender_name: str = Field(
        "", max_length=128, description='the "From" name of client notifications; empty = the address only'
    )
    notification_sender_email: str = Field(
        "", max_length=254, description="the From address of client notifications; empty = enrollment's"
    )
    company_name: str = ""
    company_details: str = ""
    company_address: str = Field("", description="postal address, one line per line of the address")
    company_vat_id: str = Field("", description="the provider's VAT ID, e.g. DE136695976")
    company_bank_details: str = Field("", description="where clients pay: bank, IBAN, BIC")
    company_logo: str = Field("", description="absolute path of a PNG, JPEG or SVG logo for invoices")
    invoice_footer: str = Field("", description="printed at the foot of every invoice page")
    credit_limit: Amount = Field(Decimal(0), description="notify, suspend, terminate under this")
    required_credit_for_new_services: Amount = Decimal(0)
    minimum_credit_after_payment: Amount = Decimal(0)
    credit_limit_on_agreement: Amount | None = None
    required_credit_on_agreement: Amount | None = None
    automatic_settlements: bool = True
    auto_pay_only_when_enough_credit: bool = Field(
        True, description="pay from credit only when minimum_credit_after_payment remains"
    )
    credit_notifications: list[Annotated[int, Field(ge=1, le=COUNT_MAX)]] = Field(
        default_factory=list, max_length=3, description="hours before zero"
    )
    shelve_instances_on_suspend: bool = False
    bill_suspended_hours: bool = Field(
        False, description="invoice the hours clouds count while the client is suspended"
    )
    suspension: SuspensionSettings = SuspensionSettings()
    termination: TerminationSettings = TerminationSettings()
    auto_invoicing: AutoInvoicingSettings = AutoInvoicingSettings()
    client_initial_credit: Amount = Field(Decimal(0), ge=0, description="credit a client gets at sign-up")
    auto_order_on_signup: bool = Field(False, description="order auto_order_service when a client signs up")
    auto_order_service: str = Field("", max_length=128, description="the service ordered at sign-up")

    @model_validator(mode="after")
    def _auto_order_named(self) -> ConfigurationSettings:
        if self.auto_order_on_signup and not self.auto_order_service.strip():
            raise ValueError("auto_order_on_signup = true needs auto_order_service; name the service")
        return self

    @field_validator("notification_sender_email")
    @classmethod
    def _sender_address(cls, address: str) -> str:
        address = address.strip()
        local, at, domain = address.rpartition("@")
        if address and (not at or not local or "." not in domain or any(c in address for c in ' <>,"')):
            raise ValueError(f"{address!r} is not an email address; use e.g. billing@example.com")
        return address

    @field_validator("notification_sender_name")
    @classmethod
    def _sender_name(cls, name: str) -> str:
        if any(character in name for character in "\r\n"):
            raise ValueError("holds a line break; write the name on one line")
        return name.strip()

    @field_validator("company_vat_id")
    @classmethod
    def _provider_vat_id(cls, text: str) -> str:
        """An EU VAT ID is checked offline (python-stdnum) and kept compact; another is printed as written."""
        written = text.strip()
        prefix = "".join(written.split())[:2].upper()
        if not written or prefix not in VIES_PREFIXES | {"GR"}:
            return written
        try:
            return str(parse_vat_id(written, field="company_vat_id"))
        except InvalidVatId as error:
            raise ValueError(f"{error.text!r} {error.problem}") from None

    @field_validator("company_logo")
    @classmethod
    def _logo_file(cls, path: str) -> str:
        if not path:
            return path
        logo = Path(path)
        if not logo.is_absolute():
            raise ValueError(
                f"{path!r} is not an absolute path; give the full path, e.g. /etc/billing-bridge/logo.png"
            )
        if logo.suffix.lower() not in LOGO_SUFFIXES:
            raise ValueError(
                f"{path!r} is not a PNG, JPEG or SVG file; use one of {', '.join(LOGO_SUFFIXES)}"
            )
        if not logo.is_file():
            raise ValueError(f"{path!r} is not a file; put the logo there or correct the path")
        return path

    @field_validator("fiscal_number_format", "proforma_number_format")
    @classmethod
    def _number_template(cls, template: str, info: ValidationInfo) -> str:
        check_template(str(info.field_name), template)
        return template

    def number_formats(self, name: str) -> tuple[str, str]:
        """The (fiscal, proforma) templates configuration ``name`` numbers with: as written, or default."""
        fiscal, proforma = default_number_formats(name)
        if "fiscal_number_format" in self.model_fields_set:
            fiscal = self.fiscal_number_format
        if "proforma_number_format" in self.model_fields_set:
            proforma = self.proforma_number_format
        return fiscal, proforma

    def number_series(self, name: str) -> list[NumberSeries]:
        """The series of numbers configuration ``name`` can issue, named by the settings key to change."""
        fiscal, proforma = self.number_formats(name)
        key = f"configurations.{name}"
        series = [NumberSeries(f"{key}.fiscal_number_format", fiscal)]
        if self.invoicing_option == "proforma_then_fiscal":
            series.append(NumberSeries(f"{key}.proforma_number_format", proforma))
        elif self.invoicing_option == "proforma_random":
            series.append(NumberSeries(f"{key}.invoicing_option (proforma_random)", RANDOM_PROFORMA_TEMPLATE))
        return series


_COUNTRY_HINTS = {"EL": "Greece is GR (EL is only its VAT prefix)", "UK": "the United Kingdom is GB"}


def iso_country(code: str) -> str:
    """``code`` in capitals if it is an ISO 3166-1 alpha-2 country (pycountry's list), else a ValueError."""
    upper = code.strip().upper()
    if len(upper) == 2 and pycountry.countries.get(alpha_2=upper) is not None:
        return upper
    hint = _COUNTRY_HINTS.get(upper, 'use an ISO 3166-1 alpha-2 code such as "DE" or "FR"')
    raise ValueError(f"{code!r} is not a country code; {hint}")


class TaxRuleSettings(Section):
    """The tax of one country: ``[taxes.rules.DE]`` name = "VAT", rate = "19" (percent)."""

    section = "taxes.rules"

    name: str = Field(min_length=1, max_length=64, description='the name invoices show, e.g. "VAT"')
    rate: Decimal = Field(description='percent of the net amount, in [0, 100): "19", "8.1"')

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not name.strip():
            raise ValueError('is blank; name the tax as invoices show it, e.g. name = "VAT"')
        return name.strip()

    @field_validator("rate")
    @classmethod
    def _percent(cls, rate: Decimal) -> Decimal:
        if not rate.is_finite() or not Decimal(0) <= rate < Decimal(100):
            raise ValueError(f'{rate} is outside [0, 100); write the percentage, e.g. rate = "19" for 19 %')
        return rate


class TaxSettings(Section):
    """Taxes (issue 16, seed 001). Prices are tax-exclusive: tax is added on top of the net amounts.

    Off by default. Invoices issued by the bridge get tax lines from these rules; in WHMCS mode WHMCS
    applies its own tax rules and the bridge only sets each item's ``taxed`` flag.
    """

    section = "taxes"

    enabled: bool = Field(False, description="compute taxes; false = no invoice carries tax")
    home_country: str = Field("", description="the provider's country: its clients are always taxed")
    rules: dict[str, TaxRuleSettings] = Field(default_factory=dict, description="country -> name and rate")
    tax_on_add_credit_invoices: bool = Field(False, description="add tax on top of credit a client buys")
    auto_eu_exemption: bool = Field(False, description="exempt EU businesses whose VAT ID VIES confirms")
    revalidation_interval_hours: int = Field(24, ge=1, le=48, description="how often VIES is asked again")

    @field_validator("home_country")
    @classmethod
    def _home_iso(cls, code: str) -> str:
        return iso_country(code) if code.strip() else ""

    @field_validator("rules")
    @classmethod
    def _rule_countries(cls, rules: dict[str, TaxRuleSettings]) -> dict[str, TaxRuleSettings]:
        by_country: dict[str, TaxRuleSettings] = {}
        for key, rule in rules.items():
            try:
                country = iso_country(key)
            except ValueError as error:
                raise ValueError(f"[taxes.rules.{key}]: {error}") from None
            if country in by_country:
                raise ValueError(f"[taxes.rules.{key}] repeats the rule of {country}; keep one")
            by_country[country] = rule
        return by_country

    @model_validator(mode="after")
    def _home_has_a_rule(self) -> TaxSettings:
        if self.enabled and not self.home_country:
            raise ValueError(
                'taxes.home_country is required when taxes.enabled = true; set e.g. home_country = "DE"'
            )
        if self.home_country and self.home_country not in self.rules:
            raise ValueError(
                f"taxes.home_country {self.home_country!r} has no tax rule; "
                f'add [taxes.rules.{self.home_country}] with name = "VAT" and its rate'
            )
        return self

    def rules_in_force(self) -> TaxRules | None:
        """The rules as the domain takes them, or None while taxes are off."""
        if not self.enabled:
            return None
        return TaxRules(
            home_country=self.home_country,
            rules=tuple(TaxRule(country, rule.name, rule.rate) for country, rule in self.rules.items()),
            tax_on_add_credit=self.tax_on_add_credit_invoices,
            auto_eu_exemption=self.auto_eu_exemption,
        )


class Settings(BaseModel):
    """The whole settings file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daemon: DaemonSettings = DaemonSettings()
    database: DatabaseSettings = DatabaseSettings()
    billing: BillingSettings = BillingSettings()
    health: HealthSettings = HealthSettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    logging: LoggingSettings = LoggingSettings()
    openstack: OpenStackSettings = OpenStackSettings()
    solusvm: SolusVMSettings = SolusVMSettings()
    whmcs: WhmcsSettings = WhmcsSettings()
    pricing: PricingSettings = PricingSettings()
    taxes: TaxSettings = TaxSettings()
    vies: ViesSettings = ViesSettings()
    plans: dict[str, PlanSettings] = Field(default_factory=dict)
    configurations: dict[str, ConfigurationSettings] = Field(
        default_factory=lambda: {"default": ConfigurationSettings()}
    )

    @field_validator("configurations")
    @classmethod
    def _has_default(cls, value: dict[str, ConfigurationSettings]) -> dict[str, ConfigurationSettings]:
        return {"default": ConfigurationSettings(), **value}

    @model_validator(mode="after")
    def _numbers_identify_one_invoice(self) -> Settings:
        """Refuse two number series that could one day issue the same number (issue 15 point 4)."""
        series = [one for name, section in self.configurations.items() for one in section.number_series(name)]
        clashes = colliding_series(series)
        if clashes:
            first, second, number = clashes[0]
            raise ValueError(
                f"{first.key} {first.template!r} and {second.key} {second.template!r} can both issue "
                f"number {number!r}; numbers must identify one invoice: {_own_prefix(second, first)}"
            )
        return self

    @field_validator("plans")
    @classmethod
    def _default_is_pricing(cls, value: dict[str, PlanSettings]) -> dict[str, PlanSettings]:
        if "default" in value:
            raise ValueError("the default plan is [pricing]; give this plan another name than 'default'")
        return value

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


def _own_prefix(preferred: NumberSeries, other: NumberSeries) -> str:
    """The fix for two colliding series: a prefix for one whose template the operator writes."""
    series = preferred if preferred.key.endswith("_format") else other
    configuration, key = series.key.split(".")[1:3]
    fiscal, proforma = default_number_formats(configuration if configuration != "default" else "D")
    return f"set {series.key} = {fiscal if key == 'fiscal_number_format' else proforma!r}"


# -- the named configurations, as the operator writes them and as the domain reads them -----------------


@dataclass(frozen=True)
class Configurations:
    """Every ``[configurations.<name>]``: its section, and the domain's :class:`Configuration` of it (made
    once, when the app is built). A client whose configuration name is not (or no longer) in the settings
    has ``default``: the one place that choice is made.

    The settings file speaks the operator's language (0 turns the billable-seconds limit off,
    invoice_zero_amounts); the domain speaks seed 001's. :func:`to_domain` is the one place the two meet.
    """

    sections: Mapping[str, ConfigurationSettings]
    configurations: Mapping[str, Configuration]

    @classmethod
    def from_settings(cls, settings: Settings) -> Configurations:
        default = settings.billing.generate_invoices
        taxes = settings.taxes.rules_in_force()
        return cls(
            sections=dict(settings.configurations),
            configurations={
                name: to_domain(section, name=name, generate_invoices_default=default, taxes=taxes)
                for name, section in settings.configurations.items()
            },
        )

    def names(self) -> list[str]:
        return sorted(self.sections)

    def section(self, name: str) -> ConfigurationSettings:
        """The section a client of configuration ``name`` has."""
        return self.sections.get(name, self.sections["default"])

    def of(self, name: str) -> Configuration:
        """The domain's configuration a client of configuration ``name`` has."""
        return self.configurations.get(name, self.configurations["default"])


def to_domain(
    section: ConfigurationSettings,
    *,
    name: str,
    generate_invoices_default: bool,
    taxes: TaxRules | None = None,
) -> Configuration:
    fiscal_number_format, proforma_number_format = section.number_formats(name)
    generate = (
        section.generate_invoices if section.generate_invoices is not None else generate_invoices_default
    )
    return Configuration(
        required_credit_for_new_services=section.required_credit_for_new_services,
        credit_limit=section.credit_limit,
        minimum_credit_after_payment=section.minimum_credit_after_payment,
        required_credit_on_agreement=section.required_credit_on_agreement,
        credit_limit_on_agreement=section.credit_limit_on_agreement,
        client_initial_credit=section.client_initial_credit,
        billing_cycle_as_calendar_month=section.billing_cycle_calendar,
        billable_seconds_per_month=section.billable_seconds_per_month or None,
        generate_invoices=generate,
        generate_invoices_after=_aware(section.generate_invoices_after),
        do_not_invoice_zero_prices=not section.invoice_zero_amounts,
        automatic_settlements=section.automatic_settlements,
        auto_pay_only_when_enough_credit=section.auto_pay_only_when_enough_credit,
        invoicing_option=domain_configuration.InvoicingOption(section.invoicing_option),
        next_fiscal_number=section.next_fiscal_number,
        fiscal_number_format=fiscal_number_format,
        proforma_number_format=proforma_number_format,
        invoice_due_days=section.invoice_due_days,
        invoice_detail=section.invoice_detail,
        notify_on_unpaid_invoices=section.notify_on_unpaid_invoices,
        credit_notifications=tuple(section.credit_notifications),
        suspension=SuspensionRule(
            enabled=section.suspension.enabled,
            delay_hours=section.suspension.delay_hours,
            delay_credit=section.suspension.delay_credit,
        ),
        termination=TerminationRule(
            enabled=section.termination.enabled,
            delay_hours=section.termination.delay_hours,
            suspend_instead=section.termination.suspend_instead,
        ),
        shelve_instances_on_suspend=section.shelve_instances_on_suspend,
        bill_suspended_hours=section.bill_suspended_hours,
        auto_invoicing=AutoInvoicing(
            enabled=section.auto_invoicing.enabled,
            mode=AutoInvoiceMode(section.auto_invoicing.mode),
            fixed_amount=section.auto_invoicing.fixed_amount,
        ),
        taxes=taxes,
    )


def _aware(instant: datetime | None) -> datetime | None:
    """A cutoff from the settings file; one written without an offset is read as UTC."""
    if instant is None or instant.tzinfo is not None:
        return instant
    return instant.replace(tzinfo=UTC)


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


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_settings(raw: dict[str, Any], *, source: str = "settings") -> Settings:
    return parse_model(Settings, raw, source=source)


def parse_model(model: type[ModelT], raw: dict[str, Any], *, source: str = "settings") -> ModelT:
    """``raw`` validated as ``model``, or one ConfigError naming every bad key and its fix."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(_describe(detail) for detail in error.errors())
        raise ConfigError(f"{source}: {problems}") from None


REMOVED_KEYS = {
    "whmcs.due_days": "removed: every invoice's due date, in WHMCS too, is its configuration's "
    "invoice_due_days; set that in [configurations.<name>] and delete this key",
    "configurations.*.mark_invoiced_periods_paid": "not accepted yet: nothing marks externally billed "
    "periods paid (issue 15 point 6); invoices paid in WHMCS reach the bridge through the payments_sync job; "
    "delete this key",
    "configurations.*.issue_invoice_days_before_due": "not accepted yet: the bridge issues no pre-paid "
    "service invoices, so nothing is issued before a due date (issue 15 point 4); delete this key",
}
"""Keys that do not act (no longer, or not yet), with what to do instead: a setting acts or is refused.
``*`` stands for one configuration's name."""


def _removed(key: str) -> str | None:
    """What to do about ``key`` if it is a key that does not act, else None."""
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "configurations":
        key = f"configurations.*.{parts[2]}"
    return REMOVED_KEYS.get(key)


def _describe(detail: ErrorDetails) -> str:
    key = ".".join(str(part) for part in detail["loc"])
    kind = detail["type"]
    if not key:
        return detail["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden" and (removed := _removed(key)) is not None:
        return f"{key}: {removed}"
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
