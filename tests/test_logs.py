"""Logs are JSON lines off a terminal and never carry a secret."""

from __future__ import annotations

import io
import json

import structlog

from bridge.logs import SecretMasker, configure, masker


def test_json_lines_mask_registered_secrets_and_secret_keys() -> None:
    stream = io.StringIO()
    masker.register(["whmcs-secret-value"])
    configure("info", "json", stream=stream)
    log = structlog.get_logger("test")
    log.info(
        "calling whmcs", url="https://billing.example.com/includes/api.php?x=whmcs-secret-value", secret="abc"
    )
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["event"] == "calling whmcs"
    assert line["level"] == "info"
    assert "whmcs-secret-value" not in stream.getvalue()
    assert line["url"].endswith("x=***")
    assert line["secret"] == "***"


def test_exceptions_are_rendered_masked() -> None:
    local = SecretMasker()
    local.register(["tok-98765"])
    event = local(None, "error", {"event": "x", "error": RuntimeError("bad token tok-98765")})
    assert event["error"] == "RuntimeError: bad token ***"


def test_short_values_are_not_registered_as_secrets() -> None:
    local = SecretMasker()
    local.register(["ab"])
    assert local.mask_text("about") == "about"
