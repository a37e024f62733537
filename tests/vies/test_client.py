"""The VIES client against the fake: every kind of answer comes back typed, and bad numbers stay home."""

from __future__ import annotations

import threading

import pytest

from bridge.vies import InvalidVatId, ViesClient, ViesInvalidInput, ViesUnavailable, ViesVerdict, parse_vat_id
from tests.fakes.vies import FakeVies
from tests.vies.conftest import FAST_READ_TIMEOUT, VIES_NOW, make_client

FRENCH = parse_vat_id("FR40303265045")


class TestVerdicts:
    def test_a_registered_number_is_valid_with_its_date_consultation_number_and_name(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        fake.register("FR40303265045", name="Exemple SA", address="1 rue de la Paix\n75002 PARIS")
        answer = client.check(FRENCH)
        assert answer == ViesVerdict(
            FRENCH,
            valid=True,
            request_date=VIES_NOW,
            consultation_number="WAPIAAAA00000001",
            name="Exemple SA",
            address="1 rue de la Paix\n75002 PARIS",
        )
        assert answer.outcome == "valid"

    def test_the_request_names_our_requester_so_vies_gives_a_consultation_number(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        client.check(FRENCH)
        assert fake.requests == [
            {
                "countryCode": "FR",
                "vatNumber": "40303265045",
                "requesterMemberStateCode": "DE",
                "requesterNumber": "136695976",
            }
        ]

    def test_without_a_requester_there_is_no_consultation_number(self, fake: FakeVies) -> None:
        fake.register("FR40303265045")
        with make_client(fake, requester=None) as client:
            answer = client.check(FRENCH)
        assert isinstance(answer, ViesVerdict) and answer.valid and answer.consultation_number is None
        assert answer.name is None  # VIES sent "---": withheld

    def test_an_unregistered_number_is_invalid(self, client: ViesClient) -> None:
        answer = client.check(FRENCH)
        assert isinstance(answer, ViesVerdict) and not answer.valid and answer.outcome == "invalid"

    def test_a_greek_number_is_asked_with_the_prefix_el(self, fake: FakeVies, client: ViesClient) -> None:
        client.check_text("GR 094259216")
        assert fake.numbers_asked() == ["EL094259216"]


class TestANumberFailingTheChecksum:
    def test_never_reaches_vies(self, fake: FakeVies, client: ViesClient) -> None:
        with pytest.raises(InvalidVatId, match="check digits"):
            client.check_text("DE136695977")
        assert fake.requests == []


class TestUnavailable:
    def test_ms_unavailable_is_asked_again_then_reported_as_unavailable(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        fake.script("error", country="FR", code="MS_UNAVAILABLE")
        answer = client.check(FRENCH)
        assert answer == ViesUnavailable(FRENCH, "MS_UNAVAILABLE", "VIES answered MS_UNAVAILABLE (HTTP 200)")
        assert answer.outcome == "unavailable"
        assert len(fake.requests) == 3

    def test_a_member_state_back_on_the_second_try_gives_its_verdict(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        fake.register("FR40303265045")
        fake.script("error", country="FR", code="MS_MAX_CONCURRENT_REQ", times=1)
        assert client.check(FRENCH).outcome == "valid"
        assert len(fake.requests) == 2

    def test_another_member_state_being_down_does_not_matter(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        fake.script("error", country="DE")
        assert client.check(FRENCH).outcome == "invalid"

    def test_no_answer_in_time(self, fake: FakeVies) -> None:
        fake.script("timeout", number="FR40303265045")
        with make_client(fake, read_timeout=FAST_READ_TIMEOUT, attempts=1) as client:
            answer = client.check(FRENCH)
        assert isinstance(answer, ViesUnavailable) and answer.code == "NO_ANSWER"
        assert f"no answer within {FAST_READ_TIMEOUT} s" in answer.detail

    def test_nobody_listening(self) -> None:
        with FakeVies() as gone:
            url = gone.url
        with ViesClient(url, attempts=1) as client:
            answer = client.check(FRENCH)
        assert isinstance(answer, ViesUnavailable) and answer.code == "NO_CONNECTION"

    def test_vies_failing_with_http_500_is_unavailable(self, fake: FakeVies) -> None:
        fake.script("http_500")
        with make_client(fake, attempts=1) as client:
            answer = client.check(FRENCH)
        assert isinstance(answer, ViesUnavailable) and answer.code == "HTTP_500"
        assert "VOW-ERR-1" in answer.detail

    def test_the_get_shape_with_user_error_is_understood(self, fake: FakeVies) -> None:
        fake.script("malformed", body={"isValid": False, "userError": "MS_UNAVAILABLE"})
        with make_client(fake, attempts=1) as client:
            answer = client.check(FRENCH)
        assert isinstance(answer, ViesUnavailable) and answer.code == "MS_UNAVAILABLE"


class TestMalformedReplies:
    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (None, "not a JSON object"),
            (
                {"countryCode": "FR", "vatNumber": "40303265045", "requestDate": "2024-03-01T09:00:00Z"},
                "'valid'",
            ),
            ({"valid": "yes", "requestDate": "2024-03-01T09:00:00Z"}, "'valid'"),
            ({"countryCode": "FR", "vatNumber": "12345678901", "valid": True}, "about FR12345678901"),
            ({"valid": True, "requestDate": "2024-03-01T09:00:00"}, "is not a date"),
            ({"valid": True}, "is not a date"),
        ],
    )
    def test_are_unavailable_never_a_verdict_and_not_asked_again(
        self, fake: FakeVies, client: ViesClient, body: object, detail: str
    ) -> None:
        fake.script("malformed", body=body)
        answer = client.check(FRENCH)
        assert isinstance(answer, ViesUnavailable) and answer.code == "MALFORMED_REPLY"
        assert detail in answer.detail
        assert len(fake.requests) == 1

    def test_a_date_with_its_offset_is_read_as_the_start_of_that_day(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        fake.script("malformed", body={"valid": True, "requestDate": "2024-03-01+01:00"})
        answer = client.check(FRENCH)
        assert isinstance(answer, ViesVerdict)
        assert answer.request_date.isoformat() == "2024-02-29T23:00:00+00:00"


class TestInvalidInput:
    def test_invalid_input_is_about_the_clients_number(self, fake: FakeVies, client: ViesClient) -> None:
        fake.script("error", code="INVALID_INPUT")
        answer = client.check(FRENCH)
        assert isinstance(answer, ViesInvalidInput) and answer.field == "vat_number"
        assert answer.outcome == "invalid"
        assert len(fake.requests) == 1

    def test_invalid_requester_info_is_ours_and_says_nothing_about_the_client(
        self, fake: FakeVies, client: ViesClient
    ) -> None:
        fake.script("error", code="INVALID_REQUESTER_INFO")
        answer = client.check(FRENCH)
        assert isinstance(answer, ViesInvalidInput) and answer.field == "requester"
        assert answer.outcome == "unavailable"


class TestStopping:
    def test_no_retry_once_the_daemon_is_stopping(self, fake: FakeVies) -> None:
        fake.script("error", code="MS_UNAVAILABLE")
        stop = threading.Event()
        stop.set()
        with make_client(fake, stop_event=stop, attempts=5) as client:
            assert client.check(FRENCH).outcome == "unavailable"
        assert len(fake.requests) == 1

    def test_a_stop_during_the_wait_ends_the_retries(self, fake: FakeVies) -> None:
        fake.script("error", code="SERVICE_UNAVAILABLE")
        stop = threading.Event()

        def shutdown_arrives(attempt: int) -> float:
            stop.set()
            return 3600.0  # returns at once: the stop event is already set

        with make_client(fake, stop_event=stop, attempts=5, backoff=shutdown_arrives) as client:
            answer = client.check(FRENCH)
        assert isinstance(answer, ViesUnavailable) and answer.code == "SERVICE_UNAVAILABLE"
        assert len(fake.requests) == 1
