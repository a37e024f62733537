"""Logs are JSON lines off a terminal and never carry a secret, whichever library writes them."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import structlog

from bridge.logs import SecretMasker, configure


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_mask_the_given_secrets_and_secret_keys() -> None:
    stream = io.StringIO()
    configure("info", "json", masker=SecretMasker(["whmcs-secret-value"]), stream=stream)
    log = structlog.get_logger("test")
    log.info(
        "calling whmcs", url="https://billing.example.com/includes/api.php?x=whmcs-secret-value", secret="abc"
    )
    line = lines(stream)[-1]
    assert line["event"] == "calling whmcs"
    assert line["level"] == "info"
    assert "whmcs-secret-value" not in stream.getvalue()
    assert line["url"].endswith("x=***")
    assert line["secret"] == "***"


def test_a_library_record_keeps_its_level_logger_fields_and_traceback_masked() -> None:
    stream = io.StringIO()
    configure("debug", "json", masker=SecretMasker(["nova-pass-4242"]), stream=stream)
    library = logging.getLogger("keystoneauth.session")
    library.debug("REQ: curl -H 'X-Auth: %s'", "nova-pass-4242", extra={"attempt": 2})
    try:
        raise RuntimeError("auth with nova-pass-4242 refused")
    except RuntimeError:
        library.exception("request failed")
    debug, failure = lines(stream)[-2:]
    assert (debug["level"], debug["logger"], debug["attempt"]) == ("debug", "keystoneauth.session", 2)
    assert debug["event"] == "REQ: curl -H 'X-Auth: ***'"
    assert failure["level"] == "error"
    assert "RuntimeError: auth with *** refused" in failure["exception"]
    assert "nova-pass-4242" not in stream.getvalue()


def test_an_exception_logged_by_the_bridge_carries_its_masked_traceback() -> None:
    stream = io.StringIO()
    configure("info", "json", masker=SecretMasker(["tok-98765"]), stream=stream)
    try:
        raise RuntimeError("bad token tok-98765")
    except RuntimeError:
        structlog.get_logger("test").error("job failed", exc_info=True)
    line = lines(stream)[-1]
    assert line["event"] == "job failed"
    assert 'raise RuntimeError("bad token ***")' in line["exception"]
    assert "tok-98765" not in stream.getvalue()


def test_debug_lines_show_only_at_debug_and_chatty_libraries_only_at_debug() -> None:
    stream = io.StringIO()
    configure("info", "json", stream=stream)
    structlog.get_logger("test").debug("hidden")
    logging.getLogger("urllib3.connectionpool").info("noise")
    structlog.get_logger("test").info("shown")
    assert [line["event"] for line in lines(stream)] == ["shown"]


def test_exceptions_are_rendered_masked() -> None:
    event = SecretMasker(["tok-98765"])(
        None, "error", {"event": "x", "error": RuntimeError("bad token tok-98765")}
    )
    assert event["error"] == "RuntimeError: bad token ***"


def test_short_values_are_not_masked() -> None:
    assert SecretMasker(["ab"]).mask_text("about") == "about"
