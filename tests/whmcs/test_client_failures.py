"""Failures: typed errors, retries for reads only, in-doubt writes, no credential in any message or log."""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.request
from datetime import date, datetime
from decimal import Decimal

import pytest
from structlog.testing import capture_logs

from bridge.errors import BridgeError, VendorError
from bridge.whmcs import (
    InvoiceLine,
    WhmcsAuthError,
    WhmcsBusinessError,
    WhmcsClient,
    WhmcsError,
    WhmcsResponseError,
    WhmcsTransportError,
)
from tests.fakes.whmcs import FakeWhmcs
from tests.whmcs.conftest import make_client

MARCH = date(2025, 3, 1)
LINE = [InvoiceLine("Usage March", Decimal("9.99"))]


def create_invoice(client: WhmcsClient, user_id: int, notes: str = "BB-7-2025-03-usage") -> int:
    return client.create_invoice(user_id, LINE, date=MARCH, due_date=MARCH, notes=notes).invoice_id


def test_errors_form_one_family_under_bridge_error() -> None:
    for kind in (WhmcsAuthError, WhmcsBusinessError, WhmcsTransportError, WhmcsResponseError):
        assert issubclass(kind, WhmcsError)
    assert issubclass(WhmcsError, VendorError) and issubclass(WhmcsError, BridgeError)


# -- authentication -------------------------------------------------------------------------------------


def test_wrong_secret_is_an_auth_error_that_never_shows_a_credential(fake: FakeWhmcs) -> None:
    secret, access_key = "wrong-secret-a8f3k2", "access-key-9x7w"
    client = WhmcsClient(fake.url, "identifier-q2w9", secret, access_key=access_key, read_attempts=3)
    with capture_logs() as logs, pytest.raises(WhmcsAuthError) as caught:
        client.get_invoices(1)
    error = caught.value
    assert (error.http_status, error.message, error.action) == (403, "Authentication Failed", "GetInvoices")
    assert fake.call_count("GetInvoices") == 1  # auth failures are not retried
    for text in (str(error), repr(error), repr(logs)):
        for credential in (secret, access_key, "identifier-q2w9"):
            assert credential not in text
    assert any(entry["event"] == "whmcs.call_failed" for entry in logs)


@pytest.mark.parametrize(
    "message",
    [
        "Invalid IP 2001:db8::1",
        "invalid ip 10.0.0.1",
        "Forbidden IP",
        'Invalid Permissions: API action "getinvoices" is not allowed',
        "AUTHENTICATION FAILED",
    ],
)
def test_auth_messages_are_auth_errors_even_with_http_200(
    client: WhmcsClient, fake: FakeWhmcs, message: str
) -> None:
    fake.fail("error", action="GetClients", message=message)
    with pytest.raises(WhmcsAuthError) as caught:
        client.get_clients()
    assert caught.value.http_status == 200
    assert caught.value.message == message


def test_a_403_fault_is_an_auth_error(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("forbidden", message="Invalid IP 192.0.2.1")
    with pytest.raises(WhmcsAuthError, match=r"Invalid IP 192\.0\.2\.1"):
        client.get_clients()


def test_access_key_is_sent_when_configured() -> None:
    with FakeWhmcs(access_key="the-access-key") as fake:
        without = make_client(fake)
        with pytest.raises(WhmcsAuthError, match="Invalid IP"):
            without.get_clients()
        with make_client(fake, access_key="the-access-key") as keyed:
            assert keyed.get_clients().total == 0


def test_whmcs_text_echoing_a_credential_is_redacted(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("error", action="GetClients", message=f"Bad value {fake.secret} for {fake.identifier}")
    with capture_logs() as logs, pytest.raises(WhmcsBusinessError) as caught:
        client.get_clients()
    for text in (str(caught.value), caught.value.message, repr(logs)):
        assert fake.secret not in text and fake.identifier not in text
    assert "[redacted]" in caught.value.message


# -- business errors ------------------------------------------------------------------------------------


def test_result_error_is_a_business_error_with_whmcs_message(client: WhmcsClient, fake: FakeWhmcs) -> None:
    with pytest.raises(WhmcsBusinessError) as caught:
        client.add_credit(4242, Decimal("1.00"), "BB-x")
    assert caught.value.message == "Client ID Not Found"
    assert "Client ID Not Found" in str(caught.value)
    assert fake.call_count("AddCredit") == 1


def test_business_errors_on_reads_are_not_retried(client: WhmcsClient, fake: FakeWhmcs) -> None:
    with pytest.raises(WhmcsBusinessError, match="Client Not Found"):
        client.get_pay_methods(4242)
    assert fake.call_count("GetPayMethods") == 1


# -- reads: retried on transport failures ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "html", "commit_then_drop"])
def test_read_transport_failures_are_retried_then_succeed(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int, kind: str
) -> None:
    create_invoice(client, client_id)
    fake.fail(kind, action="GetInvoices", times=2)  # type: ignore[arg-type]
    with capture_logs() as logs:
        invoices = client.get_invoices(client_id)
    assert len(invoices) == 1
    assert fake.call_count("GetInvoices") == 3
    retries = [entry for entry in logs if entry["event"] == "whmcs.retry"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert fake.secret not in repr(logs)


def test_read_timeout_is_retried_then_succeeds(fast_client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("timeout", action="GetClients")
    assert fast_client.get_clients().total == 0
    assert fake.call_count("GetClients") == 2


def test_reads_give_up_after_the_bounded_attempts(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("http_500", action="GetClients", times=None)
    with pytest.raises(WhmcsTransportError) as caught:
        client.get_clients()
    assert caught.value.in_doubt is False
    assert "HTTP 500" in str(caught.value)
    assert fake.call_count("GetClients") == 4


def test_slow_answers_still_arrive(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("slow", latency_ms=30, times=None)
    assert client.get_clients().total == 0
    assert fake.call_count("GetClients") == 1


# -- writes: never retried, in doubt --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_500", "html", "timeout", "commit_then_drop"])
def test_write_transport_failure_is_in_doubt_and_sent_once(
    fast_client: WhmcsClient, fake: FakeWhmcs, kind: str
) -> None:
    user = fast_client.add_client(firstname="W", lastname="W", email="w@example.com", skip_validation=True)
    fake.fail(kind, action="AddCredit")  # type: ignore[arg-type]
    with pytest.raises(WhmcsTransportError) as caught:
        fast_client.add_credit(user, Decimal("5.00"), "Top-up BB-w-1")
    assert caught.value.in_doubt is True
    assert "look it up" in str(caught.value)
    assert fake.call_count("AddCredit") == 1
    applied = fast_client.find_credit_by_reference(user, "BB-w-1")
    assert (applied is not None) is (kind == "commit_then_drop")


def test_commit_then_drop_on_create_invoice_is_settled_by_the_reference(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    create_invoice(client, client_id, notes="BB-7-2025-02-usage")
    fake.fail("commit_then_drop", action="CreateInvoice")
    with pytest.raises(WhmcsTransportError) as caught:
        create_invoice(client, client_id, notes="Usage for March, ref BB-7-2025-03-usage")
    assert caught.value.in_doubt is True
    assert fake.call_count("CreateInvoice") == 2  # one before the fault, one faulted: never retried
    found = client.find_invoices_by_reference(client_id, "BB-7-2025-03-usage")
    assert len(found) == 1
    assert found[0].total == Decimal("9.99")
    assert client.find_invoice_by_reference(client_id, "BB-7-2025-03-usage") == found[0]


def test_payment_in_doubt_is_settled_by_its_transaction_id(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    invoice_id = create_invoice(client, client_id)
    fake.fail("commit_then_drop", action="AddInvoicePayment")
    with pytest.raises(WhmcsTransportError) as caught:
        client.add_invoice_payment(
            invoice_id, "ch_77", "stripe", Decimal("9.99"), datetime(2025, 3, 2, 10, 0)
        )
    assert caught.value.in_doubt
    found = client.find_transaction("ch_77")
    assert found is not None and found.invoice_id == invoice_id


def test_client_in_doubt_is_settled_by_email(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("commit_then_drop", action="AddClient")
    with pytest.raises(WhmcsTransportError) as caught:
        client.add_client(firstname="D", lastname="D", email="d@example.com", skip_validation=True)
    assert caught.value.in_doubt
    assert client.get_clients_details(email="d@example.com") is not None


def test_business_error_on_a_write_is_not_in_doubt(
    client: WhmcsClient, fake: FakeWhmcs, client_id: int
) -> None:
    fake.fail("error", action="CreateInvoice", message="Invalid status Pending")
    with pytest.raises(WhmcsBusinessError, match="Invalid status Pending") as caught:
        create_invoice(client, client_id)
    assert not isinstance(caught.value, WhmcsTransportError)


def test_write_that_never_left_is_not_in_doubt() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WhmcsClient(f"http://127.0.0.1:{port}", "i", "s", read_attempts=2)
    with pytest.raises(WhmcsTransportError) as caught:
        client.add_credit(1, Decimal("1.00"), "BB-refused")
    assert caught.value.in_doubt is False
    assert "refused" in str(caught.value)


def test_success_without_the_new_id_is_in_doubt(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("reply", action="CreateInvoice", body={"result": "success"})
    with pytest.raises(WhmcsResponseError) as caught:
        create_invoice(client, 1)
    assert caught.value.in_doubt and caught.value.field == "invoiceid"


def test_an_unreadable_success_body_on_a_read_is_not_retried(client: WhmcsClient, fake: FakeWhmcs) -> None:
    body = {"result": "success", "credits": {"credit": [{"id": "1", "amount": "ten"}]}}
    fake.fail("reply", action="GetCredits", body=body)
    with pytest.raises(WhmcsResponseError) as caught:
        client.get_credits(1)
    assert caught.value.field == "credits.credit[0].amount"
    assert caught.value.in_doubt is False
    assert fake.call_count("GetCredits") == 1


def test_an_answer_without_a_result_is_in_doubt_for_a_write(client: WhmcsClient, fake: FakeWhmcs) -> None:
    fake.fail("reply", action="AddCredit", body={"newbalance": "1.00"})
    with pytest.raises(WhmcsTransportError) as caught:
        client.add_credit(1, Decimal("1.00"), "BB-x")
    assert caught.value.in_doubt


def test_a_wrong_url_is_a_transport_error(fake: FakeWhmcs) -> None:
    client = WhmcsClient(fake.url + "/nowhere", fake.identifier, fake.secret, read_attempts=1)
    with pytest.raises(WhmcsTransportError, match="HTTP 404") as caught:
        client.get_clients()
    assert "not a JSON object" in str(caught.value)


# -- proxies ----------------------------------------------------------------------------------------------

PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


class ForwardingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards each request to where it names, and remembers the URLs."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                proxy.urls.append(self.path)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                forwarded = urllib.request.Request(self.path, data=body, headers=dict(self.headers))
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(forwarded) as answer:
                    content = answer.read()
                    self.send_response(answer.status)
                    self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                """Quiet."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ForwardingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_proxy_named_in_the_environment_carries_the_calls_unless_no_proxy_exempts_whmcs(
    fake: FakeWhmcs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is read once, when the client is made (not per call), as requests reads it."""
    for name in (*PROXY_VARIABLES, "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with ForwardingProxy() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        with make_client(fake) as client:
            assert client.get_invoices(1) == ()
        assert proxy.urls == [f"{fake.url}/includes/api.php"]

        monkeypatch.setenv("no_proxy", "127.0.0.1")
        with make_client(fake) as client:
            assert client.get_invoices(1) == ()
        assert len(proxy.urls) == 1, "WHMCS's host is exempt: the call went straight to it"
