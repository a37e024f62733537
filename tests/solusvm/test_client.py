"""The SolusVM 2 client against the fake node over real HTTP on 127.0.0.1: paging, types, errors, retries."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from bridge.clock import FixedClock
from bridge.errors import VendorError
from bridge.solusvm.client import (
    Plan,
    Server,
    SolusVMClient,
    SolusVMOutcomeUnknown,
    SolusVMValidationError,
    Task,
    User,
    parse_timestamp,
)
from tests.fakes.solusvm import FakeSolusVM

ClientFactory = Callable[..., SolusVMClient]


def seed_servers(fake: FakeSolusVM, count: int) -> tuple[int, int]:
    """``count`` servers of two users on one plan; returns (first user id, plan id)."""
    ann = fake.add_user("ann@example.com")
    bob = fake.add_user("bob@example.com")
    plan = fake.add_plan("Small", tokens_per_hour=7, tokens_per_month=5000)
    for index in range(count):
        owner = ann if index % 2 == 0 else bob
        fake.add_server(
            f"vps-{index}",
            user_id=owner["id"],
            plan_id=plan["id"],
            status="started" if index % 3 else "stopped",
            created_at="2024-05-01 10:15:00",
        )
    return ann["id"], plan["id"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------- listing and paging


def test_servers_are_read_over_every_page(fake: FakeSolusVM, client: SolusVMClient) -> None:
    _, plan_id = seed_servers(fake, 250)

    servers = client.servers()

    assert len(servers) == 250
    assert [s.id for s in servers] == list(range(1, 251))
    pages = [r.query["page"] for r in fake.requests_to("GET", "/api/v1/servers")]
    assert pages == [["1"], ["2"], ["3"]]
    first = servers[0]
    assert first == Server(
        id=1,
        uuid="00000000-0000-4000-8000-000000000001",
        name="vps-0",
        status="stopped",
        is_suspended=False,
        user_id=1,
        user_email="ann@example.com",
        plan_id=plan_id,
        created_at=datetime(2024, 5, 1, 10, 15, tzinfo=UTC),
    )
    assert servers[1].is_running and not first.is_running


def test_servers_of_one_user_use_the_filter(fake: FakeSolusVM, client: SolusVMClient) -> None:
    ann_id, _ = seed_servers(fake, 9)

    servers = client.servers(user_id=ann_id)

    assert {s.user_id for s in servers} == {ann_id}
    assert len(servers) == 5
    assert fake.requests_to("GET", "/api/v1/servers")[0].query["filter[user_id]"] == [str(ann_id)]


def test_a_list_without_meta_is_one_page(make_client: ClientFactory) -> None:
    with FakeSolusVM(per_page=2, unpaginated=frozenset({"plans"})) as node:
        for size in ("S", "M", "L"):
            node.add_plan(size)
        plans = make_client(url=node.url, token=node.token).plans()
        assert [p.name for p in plans] == ["S", "M", "L"]
        assert len(node.requests_to("GET", "/api/v1/plans")) == 1


def test_requests_carry_the_contract_headers(fake: FakeSolusVM, client: SolusVMClient) -> None:
    client.plans()
    headers = fake.requests[0].headers
    assert headers["authorization"] == f"Bearer {fake.token}"
    assert headers["accept"] == "application/json"
    assert headers["content-type"] == "application/json"


def test_plans_have_whole_tokens_and_decimal_prices(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.add_plan(
        "Small", tokens_per_hour=7, tokens_per_month=5000, ip_tokens_per_hour=1, ip_tokens_per_month=500
    )
    fake.add_plan("Free", tokens_per_hour=0, tokens_per_month=0, price_per_hour=None, price_per_month=None)
    numeric = fake.add_plan("Numeric")
    numeric["price"]["per_hour"] = 0.1  # a JSON number must become Decimal("0.1"), never a float
    numeric["tokens_per_month"] = "720"  # a numeric string is accepted as a whole number

    small, free, parsed_numeric = client.plans()

    assert small == Plan(
        id=1,
        name="Small",
        tokens_per_hour=7,
        tokens_per_month=5000,
        ip_tokens_per_hour=1,
        ip_tokens_per_month=500,
        price_per_hour=Decimal("0.00100"),
        price_per_month=Decimal("0.70000"),
        currency_code="USD",
    )
    assert isinstance(small.tokens_per_hour, int)
    assert free.price_per_hour is None and free.price_per_month is None
    assert parsed_numeric.price_per_hour == Decimal("0.1")
    assert str(parsed_numeric.price_per_hour) == "0.1"
    assert parsed_numeric.tokens_per_month == 720


def test_fractional_tokens_are_refused(fake: FakeSolusVM, client: SolusVMClient) -> None:
    plan = fake.add_plan("Odd")
    plan["tokens_per_hour"] = 1.5

    with pytest.raises(VendorError) as raised:
        client.plans()

    assert raised.value.field == "tokens_per_hour"
    assert "1.5" in str(raised.value) and "not a whole number" in str(raised.value)


def test_users_are_listed(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.add_user("ann@example.com", billing_user_id="42", created_at="2023-02-03T04:05:06.000000Z")
    fake.add_user("bob@example.com", status="locked")

    ann, bob = client.users()

    assert ann == User(
        id=1,
        email="ann@example.com",
        status="active",
        billing_user_id=42,
        created_at=datetime(2023, 2, 3, 4, 5, 6, tzinfo=UTC),
    )
    assert bob.status == "locked" and bob.billing_user_id is None


# --------------------------------------------------------------------------- users, tokens, actions


def test_find_user_by_email_matches_exactly(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.add_user("joann@example.com")
    ann = fake.add_user("ann@example.com")
    fake.add_user("ann@example.com.au")

    found = client.find_user_by_email("ann@example.com")

    assert found is not None and found.id == ann["id"]
    assert fake.requests_to("GET", "/api/v1/users")[0].query["filter[search]"] == ["ann@example.com"]
    upper = client.find_user_by_email("ANN@Example.com")
    assert upper is not None and upper.id == ann["id"]
    assert client.find_user_by_email("nobody@example.com") is None


def test_create_user_sends_the_contract_body(fake: FakeSolusVM, client: SolusVMClient) -> None:
    user = client.create_user("new@example.com", "S3cret-pass", billing_user_id=42)

    assert user.email == "new@example.com" and user.billing_user_id == 42 and user.status == "active"
    assert user.created_at.tzinfo is not None
    body = fake.requests_to("POST", "/api/v1/users")[0].body
    assert body == {
        "email": "new@example.com",
        "password": "S3cret-pass",
        "status": "active",
        "billing_user_id": "42",
    }


def test_duplicate_user_is_a_clear_validation_error(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.add_user("ann@example.com")

    with pytest.raises(SolusVMValidationError) as raised:
        client.create_user("Ann@example.com", "S3cret-pass")

    error = raised.value
    assert error.field == "email"
    assert error.errors == {"email": ["The email has already been taken."]}
    assert str(error) == (
        "solusvm /api/v1/users field 'email': refused the request (HTTP 422): "
        "email: The email has already been taken."
    )
    assert len(fake.requests_to("POST", "/api/v1/users")) == 1


def test_create_user_dropped_after_commit_is_not_repeated(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.commit_then_drop_next(method="POST", path="/api/v1/users")

    with pytest.raises(SolusVMOutcomeUnknown) as raised:
        client.create_user("new@example.com", "S3cret-pass")

    assert "may or may not have applied it" in str(raised.value)
    assert len(fake.requests_to("POST", "/api/v1/users")) == 1
    settled = client.find_user_by_email("new@example.com")
    assert settled is not None  # the lookup the caller uses to settle the outcome


def test_create_user_is_not_retried_after_a_server_error(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.fail_next(1, 500, method="POST")

    with pytest.raises(SolusVMOutcomeUnknown, match=r"server error \(HTTP 500\)"):
        client.create_user("new@example.com", "S3cret-pass")

    assert len(fake.requests_to("POST", "/api/v1/users")) == 1


def test_create_user_is_retried_after_a_rate_limit(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    fake.rate_limit_next("3", method="POST")

    user = client.create_user("new@example.com", "S3cret-pass")

    assert user.email == "new@example.com"
    assert sleeps == [3.0]
    assert len(fake.requests_to("POST", "/api/v1/users")) == 2


def test_ensure_user_settles_a_dropped_create(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.commit_then_drop_next(method="POST", path="/api/v1/users")

    user = client.ensure_user("new@example.com", "S3cret-pass", billing_user_id=7)

    assert user.email == "new@example.com" and user.billing_user_id == 7
    assert len(fake.users) == 1
    assert len(fake.requests_to("POST", "/api/v1/users")) == 1


def test_ensure_user_returns_an_existing_user(fake: FakeSolusVM, client: SolusVMClient) -> None:
    existing = fake.add_user("ann@example.com")

    user = client.ensure_user("ann@example.com", "S3cret-pass")

    assert user.id == existing["id"]
    assert fake.requests_to("POST", "/api/v1/users") == []


def test_login_token_and_sso_url(fake: FakeSolusVM, client: SolusVMClient) -> None:
    ann = fake.add_user("ann@example.com")

    token = client.create_login_token(ann["id"])

    assert fake.login_tokens == [(ann["id"], token)]
    assert fake.requests_to("POST", f"/api/v1/users/{ann['id']}/tokens")[0].body == {"is_one_time": True}
    assert client.sso_url(token) == f"{fake.url}/auth/by_token?token=1%7Cone-time%2Btoken%2F0001%3D%3D"


def test_sso_url_follows_the_configured_template(fake: FakeSolusVM, make_client: ClientFactory) -> None:
    client = make_client(sso_url_template="{url}/sso#{token}")
    assert client.sso_url("a b") == f"{fake.url}/sso#a%20b"


def test_login_token_dropped_after_commit_is_not_repeated(fake: FakeSolusVM, client: SolusVMClient) -> None:
    ann = fake.add_user("ann@example.com")
    fake.commit_then_drop_next(method="POST")

    with pytest.raises(SolusVMOutcomeUnknown):
        client.create_login_token(ann["id"])

    assert len(fake.login_tokens) == 1


def test_login_token_for_a_missing_user(client: SolusVMClient) -> None:
    with pytest.raises(VendorError, match=r"solusvm /api/v1/users/99/tokens: not found \(HTTP 404\)"):
        client.create_login_token(99)


def test_suspend_and_resume(fake: FakeSolusVM, client: SolusVMClient) -> None:
    seed_servers(fake, 1)

    task = client.suspend_server(1)
    assert task == Task(id=1, action="vm-suspend", status="pending")
    assert fake.servers[1]["is_suspended"] is True
    assert client.server(1).is_suspended is True

    resumed = client.resume_server(1)
    assert resumed is not None and resumed.action == "vm-resume"
    assert fake.servers[1]["is_suspended"] is False


def test_suspend_is_retried_as_it_only_sets_a_state(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    seed_servers(fake, 1)
    fake.commit_then_drop_next(method="POST")

    assert client.suspend_server(1) is not None
    assert sleeps == [0.5]
    assert fake.servers[1]["is_suspended"] is True


def test_suspending_a_missing_server(client: SolusVMClient) -> None:
    with pytest.raises(VendorError, match=r"/api/v1/servers/404/suspend: not found"):
        client.suspend_server(404)


# --------------------------------------------------------------------------- errors and retries


def test_refused_token_names_source_and_path_but_never_the_token(
    fake: FakeSolusVM, make_client: ClientFactory
) -> None:
    wrong = "wrong-token-that-must-not-leak"
    client = make_client(token=wrong)

    with capture_logs() as logs, pytest.raises(VendorError) as raised:
        client.find_user_by_email("secret.customer@example.com")

    error = raised.value
    assert error.source == "solusvm" and error.path == "/api/v1/users"
    assert "HTTP 401" in str(error) and "Account -> API Tokens" in str(error)
    for text in (str(error), repr(error), repr(client), str(logs)):
        assert wrong not in text
        assert fake.token not in text
        assert "secret.customer" not in text and "filter" not in text
    assert len(fake.requests) == 1  # a 401 is never retried


def test_forbidden_is_not_retried(fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]) -> None:
    fake.fail_next(1, 403)

    with pytest.raises(VendorError, match=r"HTTP 403.*administrator"):
        client.users()

    assert sleeps == [] and len(fake.requests) == 1


def test_server_errors_are_retried_then_succeed(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    seed_servers(fake, 3)
    fake.fail_next(2, 500)

    with capture_logs() as logs:
        servers = client.servers()

    assert len(servers) == 3
    assert sleeps == [0.5, 1.0]
    assert len(fake.requests_to("GET", "/api/v1/servers")) == 3
    retries = [entry for entry in logs if entry["event"] == "solusvm.retry"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert retries[0]["path"] == "/api/v1/servers" and retries[0]["wait"] == 0.5
    assert fake.token not in str(logs)


def test_server_errors_give_up_after_the_bound(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    fake.fail_next(10, 503)

    with pytest.raises(VendorError, match=r"server error \(HTTP 503\) on each of 3 attempt\(s\)"):
        client.plans()

    assert len(fake.requests) == 3 and len(sleeps) == 2


def test_default_backoff_is_bounded_jittered_exponential(
    fake: FakeSolusVM, make_client: ClientFactory
) -> None:
    sleeps: list[float] = []
    client = make_client(backoff=None, sleep=sleeps.append, max_attempts=5, max_retry_wait=1.5)
    fake.fail_next(4, 502)

    client.plans()

    assert len(sleeps) == 4
    assert all(0 <= wait <= 1.5 for wait in sleeps)


def test_rate_limit_honours_retry_after(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    fake.add_plan("Small")
    fake.rate_limit_next("7")

    assert [p.name for p in client.plans()] == ["Small"]
    assert sleeps == [7.0]


def test_rate_limit_with_an_http_date(
    fake: FakeSolusVM, make_client: ClientFactory, sleeps: list[float]
) -> None:
    clock = FixedClock(datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC))
    client = make_client(clock=clock)
    fake.rate_limit_next("Wed, 01 May 2024 12:00:30 GMT")

    client.plans()

    assert sleeps == [30.0]


def test_rate_limit_without_retry_after_backs_off(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    fake.rate_limit_next(None)
    client.plans()
    assert sleeps == [0.5]


def test_rate_limit_longer_than_allowed_fails_at_once(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    fake.rate_limit_next("3600")

    with pytest.raises(VendorError, match=r"asks to wait 3600 s, more than solusvm.max_retry_wait_seconds"):
        client.plans()

    assert sleeps == [] and len(fake.requests) == 1


def test_html_page_is_a_clear_error(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.html_next()

    with pytest.raises(VendorError) as raised:
        client.servers()

    assert str(raised.value) == (
        "solusvm /api/v1/servers: answered HTTP 200 with an HTML page instead of JSON; check that "
        "solusvm.url is the SolusVM 2 management node and not a proxy or login page"
    )
    assert len(fake.requests) == 1


def test_html_error_page_from_a_proxy_is_retried(
    fake: FakeSolusVM, client: SolusVMClient, sleeps: list[float]
) -> None:
    fake.html_next(status=502)
    assert client.servers() == []
    assert sleeps == [0.5]


def test_redirect_is_not_followed(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.fail_next(1, 302)
    with pytest.raises(VendorError, match=r"redirected \(HTTP 302\)"):
        client.plans()


@pytest.mark.parametrize(
    ("dotted", "call"),
    [
        ("user.email", "servers"),
        ("plan", "servers"),
        ("created_at", "servers"),
        ("tokens_per_month", "plans"),
        ("email", "users"),
    ],
)
def test_missing_field_is_named(fake: FakeSolusVM, client: SolusVMClient, dotted: str, call: str) -> None:
    seed_servers(fake, 2)
    fake.drop_field_next(dotted)

    with pytest.raises(VendorError) as raised:
        getattr(client, call)()

    error = raised.value
    expected_field = "plan.id" if dotted == "plan" else dotted
    assert error.field == expected_field
    assert f"field {expected_field!r}: missing in page 1 item 0 (id 1)" in str(error)


def test_unreadable_timestamp_is_named(fake: FakeSolusVM, client: SolusVMClient) -> None:
    fake.add_user("ann@example.com", created_at="yesterday")
    with pytest.raises(VendorError, match=r"field 'created_at': 'yesterday' is not a timestamp"):
        client.users()


def test_unreachable_node_is_retried_then_named(make_client: ClientFactory, sleeps: list[float]) -> None:
    client = make_client(url=f"http://127.0.0.1:{free_port()}")

    with pytest.raises(VendorError, match=r"cannot connect on each of 3 attempt\(s\)"):
        client.create_user("new@example.com", "S3cret-pass")  # never sent, so even a create is retried

    assert sleeps == [0.5, 1.0]


def test_tls_failure_is_named_and_not_retried(
    fake: FakeSolusVM, make_client: ClientFactory, sleeps: list[float]
) -> None:
    client = make_client(url=fake.url.replace("http://", "https://"))  # TLS against a plain HTTP port

    with pytest.raises(VendorError, match=r"TLS handshake failed.*solusvm.ca_bundle"):
        client.plans()

    assert sleeps == []


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2000-01-01 01:01:01", datetime(2000, 1, 1, 1, 1, 1, tzinfo=UTC)),
        ("2024-05-01T10:00:00.000000Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("20240501T100000Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
    ],
)
def test_timestamps_become_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None and parsed.tzinfo == UTC


def test_unreadable_timestamp_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_timestamp("01/05/2024")
