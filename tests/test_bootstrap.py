"""The composition root: the edges given to build_app are the ones the jobs use; building costs nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import tenacity

from bridge.bootstrap import build_app
from bridge.clock import FixedClock
from bridge.settings import Settings
from bridge.web.enrollment.keys import KEY_FILE
from bridge.whmcs import WhmcsClient
from tests.fakes.whmcs import FakeWhmcs
from tests.support.whmcs_push import whmcs_section

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

UNREACHABLE = "http://127.0.0.1:9/includes/api.php"


def test_the_push_job_sends_through_the_whmcs_client_the_app_was_given(
    database_url: str, clock: FixedClock, make_settings: Callable[..., Settings]
) -> None:
    with FakeWhmcs() as fake:
        made: list[WhmcsClient] = []

        def whmcs_client() -> WhmcsClient:
            made.append(WhmcsClient(fake.url, fake.identifier, fake.secret, wait=tenacity.wait_none()))
            return made[-1]

        # The settings name an address nobody listens on: only the injected client reaches the fake.
        settings = make_settings(database_url, whmcs=whmcs_section(fake, url=UNREACHABLE))
        app = build_app(settings, clock=clock, whmcs_client=whmcs_client)
        try:
            app.clients.add(email="ada@example.com", name="Ada Lovelace")
            outcome = app.runner.run("push")
        finally:
            app.close()
        assert outcome.status == "succeeded", outcome.error
        assert made, "the job made its WHMCS client with the app's factory"
        assert [client.email for client in fake.clients.values()] == ["ada@example.com"]


def test_building_the_app_and_billing_make_no_sign_up_key(
    database_url: str, clock: FixedClock, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = build_app(make_settings(database_url), clock=clock)
    try:
        app.clients.add(email="ada@example.com", name="Ada Lovelace")
        assert app.invoicing is app.invoicing, "one invoicing service per app"
        assert not (tmp_path / "state" / KEY_FILE).exists(), "the key is made when sign-up is first used"
        app.enrollment.documents()
        assert (tmp_path / "state" / KEY_FILE).exists()
    finally:
        app.close()
