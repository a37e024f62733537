"""The enrollment service below the pages: the link keys, exactly-once finishing after a crash, login
links, forgetting what is no longer needed, the rate limiter, and the settings that configure it all."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from email import message_from_bytes, policy

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.errors import ConfigError
from bridge.services.enrollment import (
    EnrollmentService,
    LinkProblem,
    LinkState,
    NotEnrolled,
    SignUp,
)
from bridge.settings import parse_settings
from bridge.store import enrollment as store
from bridge.store.enrollment import EnrollmentState, TokenPurpose
from bridge.store.tables import ledger_entries, outbox
from bridge.web.enrollment.keys import LinkKeys, secret_key
from bridge.web.enrollment.mailer import mail_sink
from bridge.web.enrollment.ratelimit import RateLimiter
from tests.fakes.whmcs import FakeWhmcs
from tests.support.clock import START
from tests.support.whmcs_push import whmcs_section

ADA = SignUp(name="Ada Lovelace", company="", email="ada@example.com", password=SecretStr("Blue-Harbour-42"))


def mailed_token(app: App) -> str:
    """The token of the newest link in the file sink."""
    newest = max(mail_sink(app.settings).glob("*.eml"), key=lambda path: path.stat().st_mtime_ns)
    body = message_from_bytes(newest.read_bytes(), policy=policy.default).get_payload(decode=True)
    assert isinstance(body, bytes)
    match = re.search(rb"/verify/([A-Za-z0-9_\-]+)", body)
    assert match
    return match.group(1).decode()


def test_a_sign_up_interrupted_after_its_client_was_made_is_finished_once(
    make_app: Callable[..., App],
) -> None:
    with FakeWhmcs() as fake:
        app = make_app(
            whmcs=whmcs_section(fake),
            configurations={"default": {"client_initial_credit": "2.50"}},
        )
        service = app.enrollment
        service.request(ADA)
        token = mailed_token(app)
        now = app.clock.now()
        # The crash: the link was used and the client made, and the process died before attaching it.
        with app.engine.begin() as connection:
            digest = LinkKeys(secret_key(app.settings)).digest(TokenPurpose.VERIFY, token)
            assert store.consume(connection, digest, TokenPurpose.VERIFY, now)
            (pending,) = store.listed(connection, 10)
            store.mark_accepted(connection, pending.id, now, now)
        client = app.clients.add(email=ADA.email, name=ADA.name)

        assert service.retry_pending() == 0, "SolusVM is off: the client is finished, the user waits"
        assert service.retry_pending() == 0
        (enrollment,) = service.recent()
        assert enrollment.state is EnrollmentState.ACTIVE
        assert enrollment.client_id == client.id
        assert enrollment.sealed_password is None
        with app.engine.connect() as connection:
            credits = connection.execute(select(ledger_entries.c.reference, ledger_entries.c.amount)).all()
            rows = connection.execute(select(outbox.c.reference).order_by(outbox.c.id)).all()
        assert credits == [(f"BB-INITIAL-{client.id}", Decimal("2.50"))]
        assert rows == [(f"BB-CLIENT-{client.id}",), (f"BB-INITIAL-{client.id}-WHMCS",)]
        assert [c.email for c in app.clients.all()] == [ADA.email]
        # The initial credit reaches WHMCS (issue 15 point 6), once.
        assert app.runner.run("push").status == "succeeded"
        assert app.runner.run("push").status == "succeeded"
        (credit,) = fake.credits
        assert credit.amount == Decimal("2.50") and f"BB-INITIAL-{client.id}-WHMCS" in credit.description


@pytest.mark.parametrize("backend", ["sqlite"])
def test_login_links_work_once_and_expire(make_app: Callable[..., App], clock: FixedClock) -> None:
    app = make_app()
    service = app.enrollment
    app.clients.add(email="grace@example.com", name="Grace Hopper")
    with pytest.raises(NotEnrolled):
        service.login_link("grace@example.com")

    service.request(ADA)
    service.accept(mailed_token(app), {"terms"}, "192.0.2.1")
    link, expires_at = service.login_link(ADA.email)
    assert expires_at == START + timedelta(minutes=30)
    token = link.rsplit("/", 1)[1]
    client_id = service.use_login_link(token)
    assert app.clients.get(ADA.email).id == client_id
    with pytest.raises(LinkProblem) as used:
        service.use_login_link(token)
    assert used.value.state is LinkState.USED

    later, _ = service.login_link(ADA.email)
    clock.advance(timedelta(minutes=30))
    with pytest.raises(LinkProblem) as expired:
        service.use_login_link(later.rsplit("/", 1)[1])
    assert expired.value.state is LinkState.EXPIRED
    with pytest.raises(LinkProblem) as unknown:
        service.use_login_link("not-a-token")
    assert unknown.value.state is LinkState.UNKNOWN


def test_unconfirmed_sign_ups_and_old_links_are_forgotten(
    make_app: Callable[..., App], clock: FixedClock
) -> None:
    app = make_app()
    service: EnrollmentService = app.enrollment
    service.request(ADA)
    token = mailed_token(app)
    clock.advance(timedelta(days=8))
    service.retry_pending()
    assert service.check(token).state is LinkState.EXPIRED, "kept a week, so a late click can ask again"
    assert [item.email for item in service.recent()] == [ADA.email]
    clock.advance(timedelta(seconds=1))
    service.retry_pending()
    assert service.check(token).state is LinkState.UNKNOWN
    assert service.recent() == [], "a sign-up never confirmed is forgotten with its last link"


def test_the_rate_limiter_slides_with_the_clock() -> None:
    clock = FixedClock(START)
    limiter = RateLimiter(clock, timedelta(minutes=10))
    assert limiter.allow([("ip:a", 2)]) is None
    clock.advance(timedelta(minutes=4))
    assert limiter.allow([("ip:a", 2), ("email:x", 5)]) is None
    assert limiter.allow([("ip:a", 2), ("email:x", 5)]) == timedelta(minutes=6)
    assert limiter.allow([("ip:b", 2), ("email:x", 5)]) is None, "a refused request is not counted"
    clock.advance(timedelta(minutes=6))
    assert limiter.allow([("ip:a", 2)]) is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"enrollment": {"public_url": "http://signup.example.com"}}, "uses plain http; use https://"),
        ({"enrollment": {"secret_key": "short"}}, "enrollment.secret_key: is shorter than 32 characters"),
        ({"enrollment": {"trusted_proxies": ["10.0.0.300"]}}, "'10.0.0.300' is not an IP address or network"),
        ({"enrollment": {"postpay_terms_url": "https://x.example/t"}}, "set both"),
        ({"enrollment": {"smtp_host": "mail.example.com"}}, "smtp_host is set without smtp_from"),
        ({"enrollment": {"listen": "9181"}}, "enrollment.listen: '9181' is not \"host:port\""),
        ({"enrollment": {"logo_url": "javascript:alert(1)"}}, "is not a link"),
        (
            {"configurations": {"default": {"auto_order_on_signup": True}}},
            "auto_order_on_signup = true needs auto_order_service",
        ),
        ({"configurations": {"default": {"client_initial_credit": -1}}}, "client_initial_credit"),
    ],
)
def test_enrollment_settings_name_the_key_and_the_fix(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_settings(raw)
    assert message in str(error.value)
