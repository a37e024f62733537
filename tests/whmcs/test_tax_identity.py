"""WHMCS mode: WHMCS computes the tax from the client's country and tax-exempt flag, so the bridge tells
WHMCS the client's tax identity (issue 16), through the command line (and the sign-up page) with the
fakes at the HTTP boundary: AddClient carries the country and the VAT ID as ``tax_id``; every change of
country, VAT ID or exemption (staff, sign-up, the VIES flow, its 48-hour lapse) goes out once as
UpdateClient country, tax_id, taxexempt, even when the call's answer is lost or the push is killed
mid-call; a WHMCS client adopted by email is given the bridge's identity."""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.context
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.settings import load_settings
from bridge.store.database import make_engine
from tests.cli.test_taxes import FRENCH_VAT_ID, GERMAN_VAT_ID, ISSUED, add, settings_text
from tests.cli.test_taxes import clock as clock  # the fixtures: November 2022, VIES knowing both VAT IDs
from tests.cli.test_taxes import vies as vies
from tests.fakes.vies import FakeVies
from tests.fakes.whmcs import CLIENT_FIELDS, FakeClient, FakeWhmcs, Trap
from tests.support.cli import cli_at
from tests.support.crash_pusher import FileClock, Victim, killable_push
from tests.support.whmcs_push import HOLD, READ_TIMEOUT, issue_invoice, whmcs_section
from tests.web.enrollment_site import accept_terms, running_site, sign_up

Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def whmcs() -> Iterator[FakeWhmcs]:
    with FakeWhmcs(hold_seconds=HOLD) as fake:
        yield fake


@pytest.fixture
def section(whmcs: FakeWhmcs) -> dict[str, Any]:
    """``[whmcs]`` for the fake, with a read timeout short enough for the lost-answer tests; the bridge's
    EUR is WHMCS's currency 2."""
    return whmcs_section(
        whmcs, read_timeout_seconds=READ_TIMEOUT, in_doubt_settle_seconds=60.0, currency_ids={"EUR": 2}
    )


def settle_time(section: dict[str, Any]) -> timedelta:
    """How long after its claim a row in doubt is looked up (whmcs.in_doubt_settle_seconds)."""
    return timedelta(seconds=section["in_doubt_settle_seconds"])


@pytest.fixture
def config(tmp_path: Path, database_url: str, vies: FakeVies, section: dict[str, Any]) -> Path:
    """The taxes of tests/cli/test_taxes.py (home country DE, VIES exemption on), with WHMCS on."""
    whmcs = "".join(f"{key} = {toml_value(value)}\n" for key, value in section.items())
    path = tmp_path / "settings.toml"
    path.write_text(settings_text(database_url, vies.url) + "[whmcs]\n" + whmcs)
    return path


def toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {json.dumps(item)}" for key, item in value.items()) + " }"
    return json.dumps(value)


@pytest.fixture
def cli(config: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]) -> Cli:
    return cli_at(config, clock, capsys)


@pytest.fixture
def app(config: Path, clock: FixedClock) -> Iterator[App]:
    """The daemon, for its tax_revalidation job."""
    app = build_app(load_settings(config), clock=clock)
    yield app
    app.close()


@pytest.fixture(scope="module")
def forkserver() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.support.crash_pusher"])
    return context


def whmcs_client(whmcs: FakeWhmcs, email: str) -> FakeClient:
    (found,) = (client for client in whmcs.clients.values() if client.email == email)
    return found


def tax_identity(client: FakeClient) -> tuple[str, str, bool]:
    """The client as WHMCS's tax rules see it: country, tax ID, tax exempt."""
    return client.fields["country"], client.fields["tax_id"], client.tax_exempt


def sent(whmcs: FakeWhmcs, action: str) -> list[dict[str, str]]:
    """Every ``action`` call's parameters, without what every call carries."""
    common = {"action", "responsetype"}
    return [
        {key: value for key, value in request.params.items() if key not in common}
        for request in whmcs.requests
        if request.action == action
    ]


def test_a_german_client_with_a_vat_id_reaches_whmcs_with_its_country_and_tax_id(
    cli: Cli, whmcs: FakeWhmcs
) -> None:
    german = add(cli, "de@example.com", "--country", "DE", "--vat-id", GERMAN_VAT_ID)
    add(cli, "nowhere@example.com")

    code, _, err = cli("push")

    assert code == 0, err
    added = {call["email"]: call for call in sent(whmcs, "AddClient")}  # clients go out in parallel
    to_germany, to_nowhere = added["de@example.com"], added["nowhere@example.com"]
    assert (to_germany["country"], to_germany["tax_id"]) == ("DE", GERMAN_VAT_ID)
    assert to_nowhere["country"] == "US" and "tax_id" not in to_nowhere, "whmcs.default_country, no tax ID"
    assert tax_identity(whmcs_client(whmcs, "de@example.com")) == ("DE", GERMAN_VAT_ID, False)
    assert sent(whmcs, "UpdateClient") == [], "a client of the home country is never exempt: nothing to add"
    assert json.loads(cli("client", "show", str(german["id"]), "--json")[1])["tax"]["tax_exempt"] is False


def test_a_french_client_exempt_by_vies_is_tax_exempt_in_whmcs(cli: Cli, whmcs: FakeWhmcs) -> None:
    add(cli, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)

    code, out, _ = cli("push", "--dry-run")
    assert code == 0
    assert f"UpdateClient country=FR, tax_id={FRENCH_VAT_ID}, taxexempt=true" in out
    code, _, err = cli("push")

    assert code == 0, err
    ((added,), (updated,)) = sent(whmcs, "AddClient"), sent(whmcs, "UpdateClient")
    assert (added["country"], added["tax_id"]) == ("FR", FRENCH_VAT_ID)
    french = whmcs_client(whmcs, "fr@example.com")
    assert updated == {"clientid": str(french.id), "country": "FR", "tax_id": FRENCH_VAT_ID, "taxexempt": "1"}
    assert tax_identity(french) == ("FR", FRENCH_VAT_ID, True)


def test_a_french_business_signing_up_reaches_whmcs_with_its_tax_identity(
    make_app: Callable[..., App], vies: FakeVies, whmcs: FakeWhmcs, section: dict[str, Any]
) -> None:
    taxes = {
        "enabled": True,
        "home_country": "DE",
        "auto_eu_exemption": True,
        "rules": {"DE": {"name": "VAT", "rate": "19"}, "FR": {"name": "TVA", "rate": "20"}},
    }
    vies_section = {"url": vies.url, "attempts": 1, "retry_wait_max_seconds": 0}
    with running_site(make_app, taxes=taxes, vies=vies_section, whmcs=section) as site:
        browser = requests.Session()
        sign_up(site, browser, email="ada@example.fr", country="FR", vat_id="FR 403 032 650 45")
        accept_terms(site, browser, site.last_link("ada@example.fr"))
        assert site.app.runner.run("push").status == "succeeded"

    ((added,), (exempted,)) = sent(whmcs, "AddClient"), sent(whmcs, "UpdateClient")
    assert (added["country"], added["tax_id"]) == ("FR", FRENCH_VAT_ID)
    assert (exempted["country"], exempted["tax_id"], exempted["taxexempt"]) == ("FR", FRENCH_VAT_ID, "1")
    assert tax_identity(whmcs_client(whmcs, "ada@example.fr")) == ("FR", FRENCH_VAT_ID, True)


def test_staff_changes_of_exemption_vat_id_and_country_reach_whmcs_in_order(
    cli: Cli, whmcs: FakeWhmcs
) -> None:
    client = str(add(cli, "charity@example.com", "--country", "DE")["id"])
    assert cli("push")[0] == 0
    exempt = ("client", "set", client, "--tax-exempt", "--reason", "registered charity")
    assert cli(*exempt)[0] == 0
    assert cli("client", "set", client, "--country", "AT")[0] == 0
    assert cli("client", "set", client, "--no-tax-exempt", "--reason", "charity status ended")[0] == 0

    code, _, err = cli("push")

    assert code == 0, err
    taxes = [(call["country"], call["tax_id"], call["taxexempt"]) for call in sent(whmcs, "UpdateClient")]
    assert taxes == [("DE", "", "1"), ("AT", "", "1"), ("AT", "", "0")]
    assert tax_identity(whmcs_client(whmcs, "charity@example.com")) == ("AT", "", False)


def test_a_whmcs_client_adopted_by_email_is_given_the_bridges_tax_identity(
    cli: Cli, whmcs: FakeWhmcs
) -> None:
    """WHMCS already has both clients (in EUR, like the bridge): the French one in GB, the German one
    exempt. Each is adopted and given what the bridge knows: the French one's country and VAT ID (then
    its VIES exemption), the German one's end of an exemption the bridge never gave."""
    empty = dict.fromkeys(CLIENT_FIELDS, "")
    for whmcs_id, email, country, exempt in (
        (7, "fr@example.com", "GB", False),
        (8, "de@example.com", "DE", True),
    ):
        fields = {**empty, "email": email, "country": country, "status": "Active"}
        whmcs.clients[whmcs_id] = FakeClient(whmcs_id, fields, currency=2, tax_exempt=exempt)
    add(cli, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)
    add(cli, "de@example.com", "--country", "DE")

    code, _, err = cli("push")

    assert code == 0, err
    assert sent(whmcs, "AddClient") == [], "the clients WHMCS has are adopted"
    updates = sorted(sent(whmcs, "UpdateClient"), key=lambda call: (call["clientid"], len(call)))
    assert updates == [
        {"clientid": "7", "country": "FR", "tax_id": FRENCH_VAT_ID},
        {"clientid": "7", "country": "FR", "tax_id": FRENCH_VAT_ID, "taxexempt": "1"},
        {"clientid": "8", "taxexempt": "0"},
    ]
    assert tax_identity(whmcs.clients[7]) == ("FR", FRENCH_VAT_ID, True)
    assert tax_identity(whmcs.clients[8]) == ("DE", "", False)


@pytest.mark.parametrize(
    ("trouble", "calls"),
    [(None, 1), ("commit_then_drop", 1), ("timeout", 2)],
    ids=["answered", "applied-answer-lost", "not-applied-no-answer"],
)
def test_a_client_exempt_before_whmcs_was_on_reaches_whmcs_exempt_once(
    trouble: str | None,
    calls: int,
    tmp_path: Path,
    database_url: str,
    vies: FakeVies,
    clock: FixedClock,
    cli: Cli,
    whmcs: FakeWhmcs,
    section: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """AddClient cannot say "tax exempt", so an UpdateClient follows it; when that one's answer is lost,
    the add_client row stays in doubt and its lookup finds the client, then exempts it only if it is not
    (``calls`` UpdateClient calls in all)."""
    without_whmcs = tmp_path / "before.toml"
    without_whmcs.write_text(settings_text(database_url, vies.url))
    before = cli_at(without_whmcs, clock, capsys)
    french = add(before, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)
    engine = make_engine(database_url)
    issue_invoice(engine, french["id"], "2022-10", ["100.00"])  # work for WHMCS: its client must exist
    engine.dispose()
    if trouble is not None:
        whmcs.fail(trouble, action="UpdateClient")  # type: ignore[arg-type]
        assert cli("push")[0] == 1
        clock.advance(settle_time(section))

    code, _, err = cli("push")

    assert code == 0, err
    (added,) = sent(whmcs, "AddClient")
    assert (added["country"], added["tax_id"]) == ("FR", FRENCH_VAT_ID)
    assert [call["taxexempt"] for call in sent(whmcs, "UpdateClient")] == ["1"] * calls
    assert tax_identity(whmcs_client(whmcs, "fr@example.com")) == ("FR", FRENCH_VAT_ID, True)
    assert json.loads(cli("outbox", "--json")[1]) == [], "nothing left unsettled"


def lapse_the_exemption(app: App, clock: FixedClock, vies: FakeVies) -> None:
    """VIES cannot answer from the day after; at 48 h in a row the exemption lapses (seed 001)."""
    vies.script("error", country="FR", code="MS_UNAVAILABLE")
    for hours in (24, 24 + 47, 24 + 48):
        clock.set(ISSUED + timedelta(hours=hours))
        assert app.runner.run("tax_revalidation").status == "succeeded"


@pytest.mark.parametrize(
    ("trouble", "calls"),
    [("commit_then_drop", 1), ("timeout", 2), ("kill", 1)],
    ids=["applied-answer-lost", "not-applied-no-answer", "push-killed-after-apply"],
)
def test_the_48_hour_lapse_reaches_whmcs_once_though_the_call_fails_midway(
    trouble: str,
    calls: int,
    app: App,
    cli: Cli,
    clock: FixedClock,
    vies: FakeVies,
    whmcs: FakeWhmcs,
    section: dict[str, Any],
    database_url: str,
    tmp_path: Path,
    forkserver: multiprocessing.context.BaseContext,
) -> None:
    """``calls`` UpdateClient calls: the lost answer's call was applied, so it is looked up, not repeated;
    the call held unanswered was never applied, so it is sent again once; the killed push's call was
    applied, so it is looked up."""
    add(cli, "fr@example.com", "--country", "FR", "--vat-id", FRENCH_VAT_ID)
    assert cli("push")[0] == 0
    french = whmcs_client(whmcs, "fr@example.com")
    assert french.tax_exempt
    lapse_the_exemption(app, clock, vies)
    whmcs.reset_calls()

    if trouble == "kill":
        killed = push_killed_at_the_next_write(whmcs, section, database_url, clock, tmp_path, forkserver)
        assert killed == -signal.SIGKILL
    else:
        whmcs.fail(trouble, action="UpdateClient")  # type: ignore[arg-type]
        code, _, err = cli("push")
        assert code == 1 and "put off" in err
    assert json.loads(cli("outbox", "--json")[1])[0]["state"] == "in_doubt"

    clock.advance(settle_time(section))
    code, _, err = cli("push")

    assert code == 0, err
    assert [call["taxexempt"] for call in sent(whmcs, "UpdateClient")] == ["0"] * calls
    assert whmcs.call_count("GetClientsDetails") == 1, "looked up once, after the settle time"
    assert tax_identity(french) == ("FR", FRENCH_VAT_ID, False)
    assert json.loads(cli("outbox", "--json")[1]) == [], "nothing left unsettled"


def push_killed_at_the_next_write(
    whmcs: FakeWhmcs,
    section: dict[str, Any],
    database_url: str,
    clock: FixedClock,
    tmp_path: Path,
    forkserver: multiprocessing.context.BaseContext,
) -> int | None:
    """The daemon's push in a child process, SIGKILLed once WHMCS has applied its next write and before
    WHMCS answers it; returns the child's exit code."""
    shared = FileClock(tmp_path / "clock")
    shared.set(clock.now())
    victim = Victim()
    whmcs.trap(Trap(whmcs.received + 1, "applied", victim.kill, writes_only=True))
    return killable_push(forkserver, victim, database_url, section, str(tmp_path / "clock"))
