"""The bad-input table: values no one means, fed to the real command line, each one refused.

Three kinds of input: **settings** (a settings file with one bad key, then a command that would write),
**CLI arguments** (one bad argument of a command that would write or look something up), and **vendor
replies** (the fake Nova or SolusVM answers with a field missing or a value out of shape, then
``sync`` or ``clients import``). For each case the table shows the exit code and the message, and checks
what the operator must see: exit 2, one line naming the field (no traceback, no "unexpected"), and a
store unchanged (every row of every table compared before and after; the only cells left out are the
note of the last collection error on a usage watermark, which is how ``/status`` tells of the refusal).

The store is SQLite, seeded once through the same command line: a client linked to an OpenStack project
and a SolusVM user, collected usage, an invoice, a billing period with a subscription.
``table("ci")`` runs every third case (what ``make test`` runs); ``table("full")`` runs all of them.
"""

from __future__ import annotations

import io
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bridge.cli import main
from bridge.clock import FixedClock
from tests.fakes.nova import FakeOpenStack, Fault
from tests.fakes.solusvm import FakeSolusVM
from tests.reliability.table import Size, Table
from tests.support.store_dump import StoreDump, dump_store

COLUMNS = ("case", "input", "exit", "message", "store unchanged", "handled")
REPORTED_ERROR = frozenset(
    {"usage_watermarks.last_error", "usage_watermarks.last_error_at", "usage_watermarks.updated_at"}
)
"""The cells a refused vendor reply may change: the note that the last collection failed, and when."""
LONG = "x" * 10_000
NOVA_NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _short(value: str) -> str:
    """A bad value as the table shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "...'"


@dataclass
class Fakes:
    nova: FakeOpenStack
    solus: FakeSolusVM


Arrange = Callable[[Fakes], None]


@dataclass(frozen=True)
class Case:
    """One bad input: ``argv`` after ``--config``; ``field`` is what the message must name.

    ``settings`` is TOML for a settings case (with only [database] and [logging] beside it); ``vendor``
    arranges a vendor's bad reply on fresh fakes for a vendor case.
    """

    name: str
    shown: str
    field: str
    argv: tuple[str, ...]
    settings: str | None = None
    vendor: Arrange | None = None


@dataclass(frozen=True)
class Outcome:
    case: Case
    code: int
    message: str
    one_line: bool
    unchanged: bool

    @property
    def handled(self) -> bool:
        return (
            self.code == 2
            and self.one_line
            and self.unchanged
            and self.case.field.lower() in self.message.lower()
            and "unexpected" not in self.message
            and "Traceback" not in self.message
        )

    def row(self) -> tuple[str, ...]:
        message = self.message if len(self.message) <= 90 else self.message[:87] + "..."
        return (
            self.case.name,
            self.case.shown,
            str(self.code),
            message,
            "yes" if self.unchanged else "NO",
            "yes" if self.handled else "NO",
        )


# -- the cases -----------------------------------------------------------------------------------------

WRITE = ("client", "add", "--email", "new@example.org", "--name", "New Client")
"""What a settings case runs: a command that would write, had the settings been read."""


def _setting(name: str, toml: str, field: str) -> Case:
    return Case(f"settings: {name}", _short(toml), field, WRITE, settings=toml)


SETTINGS = [
    _setting("unknown key", "[billing]\ntimezoen = 'UTC'\n", "billing.timezoen"),
    _setting("not TOML", "[billing\n", "not valid TOML"),
    _setting("unknown time zone", "[billing]\ntimezone = 'Mars/Olympus'\n", "billing.timezone"),
    _setting("lower-case currency", "[billing]\ncurrency = 'usd'\n", "billing.currency"),
    _setting("catch-up beyond 36", "[billing]\ncatch_up_cycles = 37\n", "billing.catch_up_cycles"),
    _setting("grace period of 28 days", "[billing]\ngrace_period_days = 28\n", "billing.grace_period_days"),
    _setting("lease of 10 s", "[daemon]\nlease_seconds = 10\n", "daemon.lease_seconds"),
    _setting("shutdown timeout 0", "[daemon]\nshutdown_timeout_seconds = 0\n", "daemon.shutdown_timeout"),
    _setting("cron of words", "[schedule]\ninvoicing = 'every day'\n", "schedule.invoicing"),
    _setting("log level loud", "[logging]\nlevel = 'loud'\n", "logging.level"),
    _setting("health listen without port", "[health]\nlisten = 'localhost'\n", "health.listen"),
    _setting("price NaN", "[pricing.flavors]\n'm1.small' = nan\n", "pricing.flavors.m1.small"),
    _setting("price infinity", "[pricing.flavors]\n'm1.small' = inf\n", "pricing.flavors.m1.small"),
    _setting("price 1e9999", "[pricing.flavors]\n'm1.small' = 1e9999\n", "pricing.flavors.m1.small"),
    _setting(
        "price of 30 digits", f"[pricing.flavors]\n'm1.small' = {'9' * 30}\n", "pricing.flavors.m1.small"
    ),
    _setting("price with 9 decimals", "[pricing.flavors]\n'm1.small' = 0.012500001\n", "pricing.flavors"),
    _setting("negative price", "[pricing.flavors]\n'm1.small' = -0.01\n", "pricing.flavors"),
    _setting(
        "token price with 12 decimals", "[pricing]\ntoken_price = 0.000000000001\n", "pricing.token_price"
    ),
    _setting(
        "override price NaN", "[pricing.overrides.gold.flavors]\n'm1.small' = nan\n", "pricing.overrides"
    ),
    _setting("plan fee 1e15", "[plans.gold.fees]\nbackup = 1000000000000000\n", "plans.gold.fees.backup"),
    _setting("plan named default", "[plans.default]\ndescription = 'x'\n", "plans"),
    _setting(
        "tokens per hour negative", "[pricing.solusvm_plans.7]\ntokens_per_hour = -1\n", "tokens_per_hour"
    ),
    _setting(
        "tokens per hour 1e20",
        "[pricing.solusvm_plans.7]\ntokens_per_hour = 100000000000000000000\n",
        "tokens_per_hour",
    ),
    _setting("credit limit 1e15", "[configurations.default]\ncredit_limit = 1e15\n", "credit_limit"),
    _setting(
        "initial credit negative",
        "[configurations.default]\nclient_initial_credit = -5\n",
        "client_initial_credit",
    ),
    _setting(
        "fixed auto-invoice 0",
        "[configurations.default.auto_invoicing]\nenabled = true\nmode = 'fixed'\nfixed_amount = 0\n",
        "fixed_amount",
    ),
    _setting(
        "fiscal number beyond the store",
        "[configurations.default]\nnext_fiscal_number = 2147483648\n",
        "next_fiscal_number",
    ),
    _setting(
        "notification 0 hours",
        "[configurations.default]\ncredit_notifications = [0]\n",
        "credit_notifications",
    ),
    _setting(
        "four notifications",
        "[configurations.default]\ncredit_notifications = [1, 2, 3, 4]\n",
        "credit_notifications",
    ),
    _setting(
        "number format without number",
        "[configurations.default]\nfiscal_number_format = 'INV'\n",
        "fiscal_number_format",
    ),
    _setting("WHMCS over http to another host", "[whmcs]\nurl = 'http://billing.example.com'\n", "whmcs.url"),
    _setting("WHMCS url with a query", "[whmcs]\nurl = 'https://billing.example.com/?a=1'\n", "whmcs.url"),
    _setting(
        "WHMCS on without a secret",
        "[whmcs]\nenabled = true\nurl = 'https://b.example.com'\nidentifier = 'x'\n",
        "whmcs.secret",
    ),
    _setting("WHMCS country of 3 letters", "[whmcs]\ndefault_country = 'USA'\n", "whmcs.default_country"),
    _setting(
        "SolusVM over http to another host", "[solusvm]\nurl = 'http://solus.example.com'\n", "solusvm.url"
    ),
    _setting("SolusVM page size 0", "[solusvm]\nper_page = 0\n", "solusvm.per_page"),
    _setting(
        "health on all addresses, no token", "[health]\nlisten = '0.0.0.0:9180'\n", "health.admin_token"
    ),
    _setting(
        "health beyond loopback, no TLS",
        "[health]\nlisten = '0.0.0.0:9180'\nadmin_token = '0123456789abcdef0123456789abcdef'\n",
        "health.tls_cert_file",
    ),
    _setting(
        "health certificate missing", "[health]\ntls_cert_file = '/nonexistent.pem'\n", "health.tls_cert_file"
    ),
    _setting(
        "sign-up beyond loopback without https",
        "[enrollment]\nlisten = '192.0.2.1:9181'\n",
        "enrollment.public_url",
    ),
    _setting(
        "sign-up public_url over http",
        "[enrollment]\npublic_url = 'http://signup.example.com'\n",
        "enrollment.public_url",
    ),
    _setting(
        "sign-up key of 8 characters", "[enrollment]\nsecret_key = 'short123'\n", "enrollment.secret_key"
    ),
    _setting(
        "trusted proxy not an address",
        "[enrollment]\ntrusted_proxies = ['proxy.local']\n",
        "enrollment.trusted_proxies",
    ),
    _setting("sign-up workers 0", "[enrollment]\nworkers = 0\n", "enrollment.workers"),
    _setting("OpenStack window of 5 h", "[openstack]\nwindow = 5\n", "openstack.window"),
    _setting("OpenStack on without credentials", "[openstack]\nenabled = true\n", "openstack.cloud"),
]


def _cli(name: str, field: str, command: str, value: str) -> Case:
    """A CLI case: ``command``'s words, with ``{}`` standing for the one bad ``value`` (whatever it holds)."""
    argv = tuple(value if word == "{}" else word for word in command.split())
    return Case(f"cli: {name}", _short(value), field, argv)


AMOUNTS = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "+Infinity": "+Infinity",
    "1e9999": "1e9999",
    "1e3": "1e3",
    "30 digits": "9" * 30,
    "1e15": "1000000000000000",
    "9 decimals": "0.123456789",
    "empty": "",
    "comma": "1,50",
    "two dots": "1.2.3",
    "Arabic digits": "\u0661\u0662",
}
DATES = {
    "0001-01-01": "0001-01-01",
    "9999-12-31": "9999-12-31",
    "empty": "",
    "blank": " ",
    "2022-13-01": "2022-13-01",
}
HUGE = "9" * 30


def _texts(limit: int) -> dict[str, str]:
    return {
        f"{limit + 1} characters": "y" * (limit + 1),
        "10,000 characters": LONG,
        "a newline": "Acme\nLtd",
        "NUL": "Acme\x00",
        "not UTF-8": "Acme\udcff",
    }


def _each(name: str, field: str, command: str, values: dict[str, str]) -> list[Case]:
    return [_cli(f"{name} {label}", field, command, value) for label, value in values.items()]


EMAILS = {
    "not an address": "not-an-address",
    "of 300 characters": "a" * 290 + "@example.org",
    "with a newline": "n@example.org\nBcc: x@example.org",
    "empty": "",
    "taken": "ops@acme.com",
}
PAY = "credit add 1 10 --reference bank-9"
ADD = "client add --email n@example.org --name N"
MONTHLY = "period create 1 --frequency monthly"
SUBSCRIBE = "subscription add 1 --name backup2 --period 1"
DISCOUNT = "discount add 1 --start now"
CLI = [
    *_each("credit add AMOUNT", "AMOUNT", "credit add 1 {} --reference bank-9", AMOUNTS),
    *_each("credit add --reference", "--reference", "credit add 1 10 --reference {}", _texts(64)),
    _cli("credit add --reference empty", "--reference", "credit add 1 10 --reference {}", ""),
    *_each("credit add --description", "--description", f"{PAY} --description {{}}", _texts(255)),
    _cli("credit add to client 0", "CLIENT", "credit add {} 10 --reference bank-9", "0"),
    _cli("credit add to a 30-digit client", "CLIENT", "credit add {} 10 --reference bank-9", HUGE),
    *_each("client add --name", "--name", "client add --email n@example.org --name {}", _texts(200)),
    _cli("client add --name empty", "--name", "client add --email n@example.org --name {}", " "),
    *_each("client add --email", "email", "client add --email {} --name N", EMAILS),
    _cli("client add --currency US", "--currency", f"{ADD} --currency {{}}", "US"),
    _cli("client add --currency of symbols", "--currency", f"{ADD} --currency {{}}", "\u20ac\u20ac\u20ac"),
    _cli("client add --configuration unknown", "--configuration", f"{ADD} --configuration {{}}", "gold"),
    *_each("client update --name", "--name", "client update 1 --name {}", _texts(200)),
    _cli("client update --email invalid", "--email", "client update 1 --email {}", "a@"),
    *_each(
        "client link --openstack-project",
        "openstack_project id",
        "client link 1 --openstack-project {}",
        _texts(128),
    ),
    _cli(
        "client link two kinds at once",
        "exactly one of",
        "client link 1 --whmcs-client 5 --solusvm-user {}",
        "5",
    ),
    _cli("client show a 30-digit id", "CLIENT", "client show {}", HUGE),
    _cli("client show id 0", "CLIENT", "client show {}", "0"),
    _cli("client show a NUL", "CLIENT", "client show {}", "a\x00"),
    _cli("client show 10,000 characters", "CLIENT", "client show {}", LONG),
    _cli("client set --configuration unknown", "--configuration", "client set 1 --configuration {}", "gold"),
    *_each("invoice --date", "--date", "invoice --date {}", DATES),
    _cli("invoice --date of a cycle not ended", "invoice date", "invoice --date {}", "2999-12-01"),
    _cli("invoice --client 30 digits", "CLIENT", "invoice --date 2022-11-01 --client {}", HUGE),
    _cli("invoice show 10,000 characters", "NUMBER", "invoice show {}", LONG),
    _cli("invoice show a NUL", "NUMBER", "invoice show {}", "1\x00"),
    _cli("invoice pay --date empty", "--date", "invoice pay 1 --date {}", ""),
    _cli("invoice pay --date 0001-01-01", "--date", "invoice pay 1 --date {}", "0001-01-01"),
    _cli("invoice cancel not-UTF-8", "NUMBER", "invoice cancel {}", "\udcff"),
    *_each("process-clients --at", "--at", "process-clients --at {}", DATES),
    _cli("sync --until empty", "--until", "sync --until {}", ""),
    _cli("sync --from 0001-01-01", "--from", "sync --from {}", "0001-01-01"),
    _cli("sync --source nova", "--source", "sync --source {}", "nova"),
    _cli(
        "usage show --from 9999-12-31",
        "--from",
        "usage show --client 1 --from {} --to 2022-11-01",
        "9999-12-31",
    ),
    _cli(
        "usage show --to before --from",
        "--to",
        "usage show --client 1 --from 2022-11-01 --to {}",
        "2022-10-01",
    ),
    _cli("outbox retry 30 digits", "ID", "outbox retry {}", HUGE),
    _cli("outbox retry 0", "ID", "outbox retry {}", "0"),
    _cli("outbox cancel abc", "ID", "outbox cancel {}", "abc"),
    _cli("outbox --state lost", "--state", "outbox --state {}", "lost"),
    _cli("period create --invoice-day 32", "--invoice-day", f"{MONTHLY} --invoice-day {{}}", "32"),
    _cli("period create --invoice-day 30 digits", "--invoice-day", f"{MONTHLY} --invoice-day {{}}", HUGE),
    _cli("period create --periods 30 digits", "--periods", f"{MONTHLY} --invoice-day 1 --periods {{}}", HUGE),
    _cli("period create --periods 0", "--periods", f"{MONTHLY} --invoice-day 1 --periods {{}}", "0"),
    _cli(
        "period create --frequency weekly",
        "--frequency",
        "period create 1 --frequency {} --invoice-day 1",
        "weekly",
    ),
    _cli(
        "period create yearly without a month",
        "--invoice-month",
        "period create 1 --frequency {} --invoice-day 1",
        "yearly",
    ),
    _cli("period delete 30 digits", "PERIOD", "period delete {}", HUGE),
    _cli("period modify 0", "PERIOD", "period modify {} --invoice-day 1", "0"),
    _cli("period recharge --date empty", "--date", "period recharge --date {}", ""),
    _cli("period recharge --date 9999-12-31", "--date", "period recharge --date {}", "9999-12-31"),
    *_each("subscription add --amount", "--amount", f"{SUBSCRIBE} --amount {{}}", AMOUNTS),
    *_each(
        "subscription add --name", "--name", "subscription add 1 --name {} --amount 5 --period 1", _texts(128)
    ),
    _cli(
        "subscription add --period 30 digits",
        "--period",
        "subscription add 1 --name b --amount 5 --period {}",
        HUGE,
    ),
    _cli(
        "subscription charge 30 digits",
        "SUBSCRIPTION",
        "subscription charge {} --amount 5 --description d",
        HUGE,
    ),
    _cli(
        "subscription charge --amount NaN",
        "--amount",
        "subscription charge 1 --amount {} --description d",
        "NaN",
    ),
    _cli(
        "subscription charge --description 10,000",
        "--description",
        "subscription charge 1 --amount 5 --description {}",
        LONG,
    ),
    _cli("discount add --percent NaN", "--percent", f"{DISCOUNT} --percent {{}}", "NaN"),
    _cli("discount add --percent 101", "--percent", f"{DISCOUNT} --percent {{}}", "101"),
    _cli("discount add --amount 1e9999", "--amount", f"{DISCOUNT} --amount {{}}", "1e9999"),
    _cli("discount add --start empty", "--start", "discount add 1 --percent 10 --start {}", ""),
    _cli("discount add --start 30 digits", "--start", "discount add 1 --percent 10 --start {}", HUGE),
    _cli("discount add --end 0001-01-01", "--end", f"{DISCOUNT} --percent 10 --end {{}}", "0001-01-01"),
    _cli(
        "discount add --resource-kind 10,000",
        "--resource-kind",
        f"{DISCOUNT} --percent 10 --resource-kind {{}}",
        LONG,
    ),
    _cli("plan assign an unknown plan", "gold", "plan assign 1 {} --start now", "gold"),
    _cli("enrollment list --limit 0", "--limit", "enrollment list --limit {}", "0"),
    _cli("enrollment list --limit 30 digits", "--limit", "enrollment list --limit {}", HUGE),
    _cli("an unknown command", "bill", "{}", "bill"),
    _cli("an unknown option", "--force", "invoice {}", "--force"),
]


def _nova(name: str, dropped: str) -> Case:
    def arrange(fakes: Fakes) -> None:
        fakes.nova.fail_next(Fault.missing_field(dropped), times=50)

    argv = ("sync", "--source", "openstack", "--until", "2022-10-01T04:00:00Z")
    return Case(f"vendor: Nova {name}", f"no {dropped}", dropped, argv, vendor=arrange)


def _nova_server(label: str, shown: str, field: str, **server: str) -> Case:
    def arrange(fakes: Fakes) -> None:
        fakes.nova.create_server("p-1", at=datetime(2022, 10, 1, 2, tzinfo=UTC), **server)

    argv = ("sync", "--source", "openstack", "--until", "2022-10-01T04:00:00Z")
    return Case(f"vendor: Nova {label}", shown, field, argv, vendor=arrange)


def _solus_drop(name: str, dotted: str, path: str, argv: tuple[str, ...]) -> Case:
    def arrange(fakes: Fakes) -> None:
        fakes.solus.drop_field_next(dotted, n=50, path=path)

    return Case(f"vendor: SolusVM {name}", f"no {dotted}", dotted, argv, vendor=arrange)


def _solus_user(name: str, shown: str, field: str, email: str) -> Case:
    def arrange(fakes: Fakes) -> None:
        fakes.solus.add_user(email)

    return Case(f"vendor: SolusVM {name}", shown, field, IMPORT, vendor=arrange)


def _solus_server(label: str, shown: str, field: str, **server: object) -> Case:
    def arrange(fakes: Fakes) -> None:
        fakes.solus.add_server(name="odd", user_id=1, plan_id=1, **server)  # type: ignore[arg-type]

    return Case(f"vendor: SolusVM {label}", shown, field, SOLUS_SYNC, vendor=arrange)


SOLUS_SYNC = ("sync", "--source", "solusvm")
IMPORT = ("clients", "import", "--from", "solusvm")
VENDOR = [
    *[
        _nova(f"usage without {dropped}", dropped)
        for dropped in ("hours", "instance_id", "flavor", "tenant_id", "server_usages", "tenant_usages")
    ],
    _nova_server("server name of 10,000 characters", _short(LONG), "name", name=LONG),
    _nova_server("server id of 300 characters", "'i' * 300", "instance_id", server_id="i" * 300),
    *[
        _solus_drop(f"server without {dotted}", dotted, "/servers", SOLUS_SYNC)
        for dotted in ("id", "status", "plan.id", "user.id", "created_at")
    ],
    *[
        _solus_drop(f"plan without {dotted}", dotted, "/plans", SOLUS_SYNC)
        for dotted in ("id", "tokens_per_hour", "tokens_per_month")
    ],
    _solus_server("server created at garbage", "garbage", "created_at", created_at="garbage"),
    _solus_server("server status a number", "7", "status", status=7),  # type: ignore[arg-type]
    *[_solus_drop(f"user without {dotted}", dotted, "/users", IMPORT) for dotted in ("id", "email")],
    _solus_user("user email not an address", "not-an-address", "email", "not-an-address"),
    _solus_user("user email of 300 characters", "'a' * 290 + ...", "email", "a" * 290 + "@example.org"),
    _solus_user("user email with a newline", "'x@y.org\\nBcc'", "email", "x@example.org\nBcc: y@example.org"),
]

CASES: list[Case] = [*SETTINGS, *CLI, *VENDOR]


# -- running them ---------------------------------------------------------------------------------------


@dataclass
class Bench:
    """The seeded store, the settings files, and the fakes every case runs against."""

    root: Path
    url: str
    fakes: Fakes

    @property
    def database(self) -> Path:
        return self.root / "bridge.sqlite3"

    def keep(self) -> None:
        """Copy the seeded store aside, so a case that changed it can be undone before the next."""
        _copy(self.database, self.root / "seeded.sqlite3")

    def restore(self) -> None:
        _copy(self.root / "seeded.sqlite3", self.database)

    def settings(self, fakes: Fakes) -> str:
        return f"""
[database]
url = "{self.url}"
[daemon]
state_dir = "{self.root / "state"}"
[logging]
format = "json"
level = "error"
[health]
enabled = false
[openstack]
enabled = true
auth_url = "{fakes.nova.auth_url}"
username = "{fakes.nova.username}"
password = "{fakes.nova.password}"
project_name = "{fakes.nova.project_name}"
region_name = "{fakes.nova.region}"
[solusvm]
enabled = true
url = "{fakes.solus.url}"
token = "{fakes.solus.token}"
max_attempts = 1
[pricing]
token_price = 0.00100
[pricing.flavors]
"m1.small" = 0.0125
"m1.large" = 0.10
"""

    def config(self, name: str, text: str) -> Path:
        path = self.root / f"{name}.toml"
        path.write_text(text)
        return path


def run_cli(config: Path, argv: tuple[str, ...]) -> tuple[int, str, str]:
    """``billing-bridge --config CONFIG ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(["--config", str(config), *argv])
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@contextmanager
def fakes() -> Iterator[Fakes]:
    """A Nova with a server in project p-1 since September 2022; a SolusVM with its user, plan and server."""
    with FakeOpenStack(FixedClock(NOVA_NOW)) as nova, FakeSolusVM() as solus:
        nova.create_server("p-1", at=datetime(2022, 9, 15, tzinfo=UTC), name="web-1", server_id="a" * 8)
        user = solus.add_user("ops@acme.com")
        plan = solus.add_plan("small")
        solus.add_server("vps-1", user_id=user["id"], plan_id=plan["id"])
        yield Fakes(nova, solus)


SEED = [
    ("client", "add", "--email", "ops@acme.com", "--name", "Acme"),
    ("client", "link", "1", "--openstack-project", "p-1"),
    ("client", "link", "1", "--solusvm-user", "1"),
    ("sync", "--source", "openstack", "--from", "2022-10-01", "--until", "2022-10-01T02:00:00Z"),
    ("sync", "--source", "solusvm"),
    ("invoice", "--date", "2022-11-01"),
    ("period", "create", "1", "--frequency", "monthly", "--invoice-day", "1"),
    ("subscription", "add", "1", "--name", "backup", "--amount", "5", "--period", "1"),
]


@contextmanager
def bench() -> Iterator[Bench]:
    with tempfile.TemporaryDirectory(prefix="bad-input-") as directory, fakes() as seeded:
        root = Path(directory)
        url = f"sqlite:///{root / 'bridge.sqlite3'}"
        made = Bench(root, url, seeded)
        config = made.config("seed", made.settings(seeded))
        for argv in (("migrate",), *SEED):
            code, out, err = run_cli(config, argv)
            if code != 0:
                raise RuntimeError(f"seeding failed at {' '.join(argv)}: {err or out}")
        made.keep()
        yield made


def attempt(made: Bench, case: Case) -> Outcome:
    """Run one case and judge it."""
    if case.settings is not None:
        config = made.config("case", f'[database]\nurl = "{made.url}"\n' + case.settings)
        return _judge(made, case, config, frozenset())
    if case.vendor is None:
        return _judge(made, case, made.config("case", made.settings(made.fakes)), frozenset())
    with fakes() as fresh:
        case.vendor(fresh)
        return _judge(made, case, made.config("case", made.settings(fresh)), REPORTED_ERROR)


def _judge(made: Bench, case: Case, config: Path, ignore: frozenset[str]) -> Outcome:
    before = dump_store(made.url, ignore=ignore)
    code, out, err = run_cli(config, case.argv)
    after: StoreDump = dump_store(made.url, ignore=ignore)
    said = [line for line in err.splitlines() if line.strip() and not line.startswith("{")]
    stopped = [line for line in out.splitlines() if "stopped:" in line]
    message = (said or stopped or [""])[0]
    return Outcome(
        case, code, message, one_line=len(said) <= 1 and "Traceback" not in err, unchanged=before == after
    )


def table(size: Size) -> Table:
    cases = CASES if size == "full" else CASES[::3]
    with bench() as made:
        outcomes = []
        for case in cases:
            outcomes.append(attempt(made, case))
            if not outcomes[-1].unchanged:  # each case starts from the seeded store
                made.restore()
    handled = sum(outcome.handled for outcome in outcomes)
    return Table(
        title=f"Bad input ({size}): exit 2, one line naming the field, store unchanged",
        columns=COLUMNS,
        rows=tuple(outcome.row() for outcome in outcomes),
        totals={"tried": len(outcomes), "handled": handled},
    )


def healthy(result: Table) -> bool:
    return result.totals["handled"] == result.totals["tried"]


def _copy(source: Path, target: Path) -> None:
    """One SQLite database onto another, through SQLite's backup API (safe with its WAL journal)."""
    with closing(sqlite3.connect(source)) as origin, closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)
