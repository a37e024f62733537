"""`billing-bridge push`, `outbox`, `payments-sync` and the client commands, as an operator uses them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bridge.bootstrap import build_app
from bridge.clock import FixedClock, SystemClock
from bridge.services.outbox import client_reference
from bridge.settings import load_settings
from bridge.store.database import make_engine
from bridge.store.outbox import OutboxState
from bridge.whmcs import WhmcsClient
from tests.fakes.whmcs import FakeWhmcs
from tests.support.cli import run_cli
from tests.support.whmcs_push import issue_invoice, row, rows, whmcs_invoices_carrying


class FirstReplyDroppingWhmcs(FakeWhmcs):
    """Applies every call, but the first time it sees a request it hangs up instead of answering."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.seen: set[tuple[tuple[str, str], ...]] = set()

    def handle(self, params: dict[str, str]) -> tuple[int, str, bytes] | None:
        key = tuple(sorted(params.items()))
        with self._lock:
            first = key not in self.seen
            self.seen.add(key)
        reply = super().handle(params)
        return None if first else reply


@pytest.fixture
def fake() -> Iterator[FakeWhmcs]:
    with FakeWhmcs(hold_seconds=2.0) as server:
        yield server


def write_config(path: Path, database_url: str, fake: FakeWhmcs, **whmcs: object) -> Path:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in whmcs.items())
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[logging]\nformat = "json"\n'
        f'[whmcs]\nenabled = true\nurl = "{fake.url}"\nidentifier = "{fake.identifier}"\n'
        f'secret = "{fake.secret}"\nretry_wait_max_seconds = 0\n{extra}'
    )
    return path


@pytest.fixture
def config(tmp_path: Path, database_url: str, fake: FakeWhmcs) -> Path:
    return write_config(tmp_path / "settings.toml", database_url, fake, invoice_status="Unpaid")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def push_after_settling(config: Path, most: int = 10) -> int:
    """The pushes that come once WHMCS can no longer be applying the calls whose answers were lost, until
    no row is left: the daemon's push job, each whmcs.in_doubt_settle_seconds later (the CLI reads the
    wall clock, and a test does not wait). Returns how many it took, at most ``most``."""
    app = build_app(load_settings(config), clock=FixedClock(SystemClock().now()))
    settle = timedelta(seconds=app.settings.whmcs.in_doubt_settle_seconds)
    try:
        for done in range(1, most + 1):
            assert isinstance(app.clock, FixedClock)
            app.clock.advance(settle)
            assert app.runner.run("push").status == "succeeded"
            if not rows(app.engine, OutboxState.PENDING, OutboxState.IN_DOUBT, OutboxState.FAILED):
                return done
    finally:
        app.close()
    raise AssertionError(f"rows still unsettled after {most} pushes")


def add_clients(capsys: pytest.CaptureFixture[str], config: Path, count: int) -> None:
    for n in range(count):
        code, _, err = run_cli(
            capsys,
            "--config",
            str(config),
            "client",
            "add",
            "--email",
            f"c{n}@example.com",
            "--name",
            f"C {n}",
        )
        assert code == 0, err


def test_push_creates_each_invoice_once_even_when_every_first_reply_is_dropped(
    tmp_path: Path, database_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """The acceptance test: invoices the bridge created, then `billing-bridge push`, against a fake that
    applies every call but drops the reply the first time it sees it (writes and reads alike). A write
    whose answer was lost waits in doubt until WHMCS can no longer be applying it, then is looked up."""
    with FirstReplyDroppingWhmcs(hold_seconds=2.0) as fake:
        config = write_config(tmp_path / "settings.toml", database_url, fake, invoice_status="Draft")
        add_clients(capsys, config, 3)
        references = [
            issue_invoice(engine, client_id, period, ["10.00", "0.50"])
            for client_id in (1, 2, 3)
            for period in ("2022-09", "2022-10")
        ]

        code, out, err = run_cli(capsys, "--config", str(config), "push")
        assert code == 1, "rows put off: their calls may have been applied"
        assert "3 put off" in out
        push_after_settling(config)  # clients found by email, then invoices by reference, one by one

        code, out, err = run_cli(capsys, "--config", str(config), "push")
        assert code == 0, out + err
        assert "0 rows pushed" in out
        assert len(fake.clients) == 3
        for reference in references:
            (invoice,) = whmcs_invoices_carrying(fake, reference)
            assert (invoice.status, invoice.total) == ("Unpaid", Decimal("10.50"))
        assert len(fake.invoices) == 6
        assert {item.state for item in rows(engine)} == {OutboxState.DONE}


def test_a_refused_row_is_listed_with_its_reason_then_retried_or_cancelled(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    add_clients(capsys, config, 2)
    first = issue_invoice(engine, 1, "2022-10", ["10.00"])
    later = issue_invoice(engine, 1, "2022-11", ["11.00"])
    other = issue_invoice(engine, 2, "2022-10", ["12.00"])
    fake.fail("error", action="CreateInvoice", message="Invalid Payment Method")
    base = ["--config", str(config)]

    code, out, _ = run_cli(capsys, *base, "push")

    assert code == 1, "a failed row makes the push exit 1"
    assert "CreateInvoice: WHMCS refused: Invalid Payment Method" in out
    failed_id = (
        row(engine, first).id if row(engine, first).state is OutboxState.FAILED else row(engine, other).id
    )
    code, out, _ = run_cli(capsys, *base, "outbox")
    assert code == 0
    assert f"#{failed_id:<6} failed" in out
    assert "last error: whmcs /includes/api.php: CreateInvoice: WHMCS refused: Invalid Payment Method" in out
    code, out, _ = run_cli(capsys, *base, "outbox", "--state", "failed", "--json")
    (listed,) = json.loads(out)
    assert (listed["id"], listed["state"], listed["kind"]) == (failed_id, "failed", "create_invoice")

    code, out, _ = run_cli(capsys, *base, "outbox", "retry", str(failed_id))
    assert code == 0
    assert "is in-doubt; it goes at the next push" in out, "looked up in WHMCS first, so never sent twice"
    code, out, _ = run_cli(capsys, *base, "push")
    assert code == 0, out
    for reference in (first, later, other):
        assert len(whmcs_invoices_carrying(fake, reference)) == 1
    code, out, _ = run_cli(capsys, *base, "outbox")
    assert "no outbox rows waiting" in out

    code, _, err = run_cli(capsys, *base, "outbox", "cancel", str(failed_id))
    assert code == 2
    assert f"outbox row {failed_id} is done; only unsettled rows can be cancelled" in err
    issue_invoice(engine, 2, "2022-12", ["1.00"])
    code, out, _ = run_cli(capsys, *base, "outbox", "cancel", str(row(engine, "BB-2-2022-12").id))
    assert "cancelled; it will not be sent" in out
    code, _, err = run_cli(capsys, *base, "outbox", "retry", "999")
    assert (code, err.strip()) == (2, "error: no outbox row 999; `billing-bridge outbox` lists them")


def test_push_stops_on_403_with_one_line_and_no_secret(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    add_clients(capsys, config, 2)
    fake.fail("forbidden", times=None)

    code, out, err = run_cli(capsys, "--config", str(config), "push")

    assert code == 1
    (message,) = [line for line in err.splitlines() if not line.startswith("{")]  # the rest are JSON logs
    assert message.startswith("error: push stopped, nothing more was sent: whmcs /includes/api.php: ")
    assert "Authentication Failed (HTTP 403); check whmcs.identifier and whmcs.secret" in message
    assert fake.secret not in out + err
    assert fake.call_count() <= 2, "stopped at the first refusal of each thread"


def test_push_dry_run_lists_what_would_go_and_sends_nothing(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    add_clients(capsys, config, 1)
    issue_invoice(engine, 1, "2022-10", ["10.00"])

    code, out, _ = run_cli(capsys, "--config", str(config), "push", "--dry-run")

    assert code == 0
    assert "GetClientsDetails email=c0@example.com, then AddClient if WHMCS has no such client" in out
    assert "CreateInvoice 1 lines, total 10.00" in out
    assert "dry run: 2 rows would be sent, 0 wait; nothing was sent" in out
    assert fake.call_count() == 0


def test_push_needs_whmcs_enabled(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "off.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n')

    code, _, err = run_cli(capsys, "--config", str(path), "push")

    assert code == 2
    assert "whmcs.enabled is false" in err


def test_a_renamed_client_is_renamed_in_whmcs_and_client_show_tells_its_agreement(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(config)]
    add_clients(capsys, config, 1)
    assert run_cli(capsys, *base, "push")[0] == 0
    code, out, _ = run_cli(capsys, *base, "client", "show", "1")
    assert "agreement      unknown (not read from WHMCS yet)" in out

    run_cli(capsys, *base, "client", "update", "1", "--name", "Ada Byron", "--email", "ada@example.com")
    fake.add_pay_method(1, gateway_name="stripe", remote_token="cus_1")
    assert run_cli(capsys, *base, "push")[0] == 0
    code, out, _ = run_cli(capsys, *base, "payments-sync")
    assert code == 0
    assert "1 agreements read, 1 changed" in out

    (whmcs_client,) = fake.clients.values()
    assert (whmcs_client.email, whmcs_client.fields["lastname"]) == ("ada@example.com", "Byron")
    code, out, _ = run_cli(capsys, *base, "client", "show", "1")
    assert "agreement      yes (since " in out
    code, out, _ = run_cli(capsys, *base, "client", "show", "ada@example.com", "--json")
    assert json.loads(out)["agreement"]["has_agreement"] is True


def test_payments_sync_marks_a_paid_invoice_paid(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(config)]
    add_clients(capsys, config, 1)
    reference = issue_invoice(engine, 1, "2022-10", ["10.00"])
    run_cli(capsys, *base, "push")
    (invoice,) = whmcs_invoices_carrying(fake, reference)
    with WhmcsClient(fake.url, fake.identifier, fake.secret) as whmcs:
        whmcs.add_invoice_payment(invoice.id, "ch_1", "stripe", Decimal("10.00"), datetime(2022, 11, 2, 8))

    code, out, _ = run_cli(capsys, *base, "payments-sync", "--json")

    assert code == 0
    assert json.loads(out)["paid"] == [reference]


def test_invoice_date_then_push_creates_each_october_invoice_once_though_every_first_reply_drops(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 6's acceptance: `invoice --date 2022-11-01` then `push`, through the real invoicing run."""
    from datetime import UTC

    from bridge.bootstrap import build_app
    from bridge.settings import load_settings
    from tests.support.usage import run_vm

    with FirstReplyDroppingWhmcs(hold_seconds=2.0) as fake:
        config = write_config(tmp_path / "settings.toml", database_url, fake)
        config.write_text(
            config.read_text()
            + '[billing]\ngenerate_invoices = false\n[pricing.flavors]\n"m1.large" = 0.10\n'
        )
        cfg = ["--config", str(config)]
        add_clients(capsys, config, 2)
        for client in (1, 2):
            assert (
                run_cli(capsys, *cfg, "client", "link", str(client), "--openstack-project", f"p-{client}")[0]
                == 0
            )
        app = build_app(load_settings(config))
        run_vm(app, "p-1", "m1.large", 100, start=datetime(2022, 10, 3, tzinfo=UTC), vm="vm-a")
        run_vm(app, "p-2", "m1.large", 30, start=datetime(2022, 10, 9, tzinfo=UTC), vm="vm-b")
        app.close()

        code, out, err = run_cli(capsys, *cfg, "invoice", "--date", "2022-11-01")
        assert code == 0, err
        # each client's first cycle starts with its first service (seed 001): 10-03 and 10-09
        assert "to WHMCS (BB-1-2022-10-03)" in out and "to WHMCS (BB-2-2022-10-09)" in out
        code, out, err = run_cli(capsys, *cfg, "push")
        assert code == 1, "rows put off: their calls may have been applied"
        push_after_settling(config)
        assert run_cli(capsys, *cfg, "push")[0] == 0  # a later push sends nothing new

    for reference, total in (("BB-1-2022-10-03", Decimal("10.00")), ("BB-2-2022-10-09", Decimal("3.00"))):
        (invoice,) = whmcs_invoices_carrying(fake, reference)
        assert invoice.total == total
    assert len(fake.invoices) == 2 and len(fake.clients) == 2


def test_a_credit_notification_goes_out_through_whmcs_once_and_cloud_rows_never_block_the_push(
    tmp_path: Path, database_url: str, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC

    from bridge.bootstrap import build_app
    from bridge.settings import load_settings
    from tests.support.usage import run_vm

    config = write_config(tmp_path / "settings.toml", database_url, fake)
    config.write_text(
        config.read_text()
        + '[pricing.flavors]\n"m1.large" = 1.00\n'
        + "[configurations.default]\ncredit_notifications = [48]\n"
        + "[configurations.default.suspension]\nenabled = true\n"
    )
    cfg = ["--config", str(config)]
    add_clients(capsys, config, 1)
    run_cli(capsys, *cfg, "client", "link", "1", "--openstack-project", "p-1")
    app = build_app(load_settings(config))
    run_vm(app, "p-1", "m1.large", 5, start=datetime(2026, 3, 2, tzinfo=UTC))
    app.close()
    run_cli(capsys, *cfg, "credit", "add", "1", "3", "--reference", "bank-7")

    code, out, _ = run_cli(capsys, *cfg, "process-clients", "--at", "2026-03-02T05:00:00Z")
    assert code == 0 and "notify" in out and "suspend" in out
    assert "cloud: suspend_server openstack:vm-1: openstack.enabled is false" in out
    assert run_cli(capsys, *cfg, "push")[0] == 0
    assert run_cli(capsys, *cfg, "push")[0] == 0
    assert [email.subject for email in fake.emails] == [  # below zero: it says so, never "runs out in"
        "Your credit with Cloud services is below zero",
        "Your services with Cloud services are suspended",
    ]
    message = fake.last_params("SendEmail")["custommessage"]  # plain text as HTML, escaped, lines kept
    assert "openstack:vm-1 (name-vm-1)<br>" in message and "<br>\n-- <br>\nCloud services" in message
    states = {item.kind.value: item.state for item in rows(engine)}
    assert states["send_email"] is OutboxState.DONE and states["add_client"] is OutboxState.DONE
    assert states["suspend_server"] is OutboxState.PENDING  # waits for the cloud, not for WHMCS


def test_credit_added_in_the_bridge_reaches_whmcs_once(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 point 6: `credit add` with WHMCS as the billing system puts the credit on the client in
    WHMCS too, once, whatever the re-runs of the command and of the push."""
    base = ["--config", str(config)]
    add_clients(capsys, config, 1)
    assert run_cli(capsys, *base, "credit", "add", "1", "40.00", "--reference", "bank-7")[0] == 0
    assert run_cli(capsys, *base, "credit", "add", "1", "40.00", "--reference", "bank-7")[0] == 0

    code, out, err = run_cli(capsys, *base, "push")
    assert code == 0, out + err
    code, out, err = run_cli(capsys, *base, "push")
    assert code == 0, out + err

    (whmcs_client,) = fake.clients.values()
    (credit,) = fake.credits
    assert (credit.clientid, credit.amount) == (whmcs_client.id, Decimal("40.00"))
    assert "BB-PAYMENT-1-bank-7" in credit.description
    assert {item.state for item in rows(engine)} == {OutboxState.DONE}


def add_client_in(capsys: pytest.CaptureFixture[str], config: Path, email: str, currency: str) -> None:
    code, _, err = run_cli(
        capsys, "--config", str(config), "client", "add", "--email", email, "--name", "Euro Client",
        "--currency", currency,
    )  # fmt: skip
    assert code == 0, err


def test_clients_are_created_in_whmcs_in_their_own_currency_looked_up_once_per_push(
    config: Path, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    """No whmcs.currency_ids: the push asks WHMCS for its currencies (once, however many clients it
    creates) and gives each new client the id of its own currency, never WHMCS's default (USD here)."""
    for n in range(3):
        add_client_in(capsys, config, f"eu{n}@example.com", "EUR")
    add_client_in(capsys, config, "uk@example.com", "GBP")
    issue_invoice(engine, 1, "2022-10", ["10.00"])

    code, out, err = run_cli(capsys, "--config", str(config), "push")

    assert code == 0, out + err
    by_email = {client.email: fake.currencies[client.currency] for client in fake.clients.values()}
    assert by_email == {
        "eu0@example.com": "EUR",
        "eu1@example.com": "EUR",
        "eu2@example.com": "EUR",
        "uk@example.com": "GBP",
    }
    assert fake.call_count("GetCurrencies") == 1


def test_whmcs_currency_ids_name_the_id_and_no_lookup_is_made(
    tmp_path: Path, database_url: str, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.currencies[7] = "CHF"
    config = tmp_path / "settings.toml"
    write_config(config, database_url, fake)
    config.write_text(config.read_text() + "currency_ids = { CHF = 7 }\n")
    add_client_in(capsys, config, "ch@example.com", "CHF")

    assert run_cli(capsys, "--config", str(config), "push")[0] == 0

    (created,) = fake.clients.values()
    assert created.currency == 7
    assert fake.call_count("GetCurrencies") == 0


def test_a_client_whose_currency_whmcs_lacks_is_not_created_and_push_says_which_setting(
    tmp_path: Path, database_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """WHMCS bills only in USD: a EUR client would be created in USD and billed so. Nothing is created
    and nothing of the client's is sent; the push exits 1 with one line naming EUR and the setting. Once
    WHMCS has EUR, a retry creates the client in EUR and sends its invoice."""
    with FakeWhmcs(hold_seconds=2.0, currencies={1: "USD"}) as fake:
        config = write_config(tmp_path / "settings.toml", database_url, fake, invoice_status="Unpaid")
        add_client_in(capsys, config, "eu@example.com", "EUR")
        reference = issue_invoice(engine, 1, "2022-10", ["10.00"])

        code, out, _ = run_cli(capsys, "--config", str(config), "push")

        assert code == 1
        (line,) = [line for line in out.splitlines() if "failed:" in line]
        assert "add_client" in line
        assert "WHMCS has no currency EUR" in line
        assert "set whmcs.currency_ids.EUR to its id" in line
        assert (fake.clients, fake.invoices) == ({}, {})
        assert fake.call_count("AddClient") == fake.call_count("CreateInvoice") == 0

        fake.currencies[2] = "EUR"  # the operator adds EUR in WHMCS
        retried = str(row(engine, client_reference(1)).id)
        assert run_cli(capsys, "--config", str(config), "outbox", "retry", retried)[0] == 0
        push_after_settling(config)

        (created,) = fake.clients.values()
        assert fake.currencies[created.currency] == "EUR"
        assert len(whmcs_invoices_carrying(fake, reference)) == 1


def test_an_add_client_whose_answer_was_lost_is_found_in_its_currency_not_refused(
    tmp_path: Path, database_url: str, engine: Engine, fake: FakeWhmcs, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lost AddClient was applied: the lookup after the settle time finds the client, in EUR as it was
    asked, and links it (a client created in WHMCS's default currency would be refused as another's)."""
    config = write_config(tmp_path / "settings.toml", database_url, fake, invoice_status="Unpaid")
    add_client_in(capsys, config, "eu@example.com", "EUR")
    reference = issue_invoice(engine, 1, "2022-10", ["10.00"])
    fake.fail("commit_then_drop", action="AddClient")

    code, out, _ = run_cli(capsys, "--config", str(config), "push")
    assert code == 1, "the add_client row is in doubt, put off"
    assert "1 put off" in out
    push_after_settling(config)

    (created,) = fake.clients.values()
    assert fake.currencies[created.currency] == "EUR"
    assert len(whmcs_invoices_carrying(fake, reference)) == 1
    assert {item.state for item in rows(engine)} == {OutboxState.DONE}
