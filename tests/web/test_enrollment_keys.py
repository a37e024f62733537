"""The sign-up site's keys: digests per purpose, a seal only the token and address open, one key file."""

from __future__ import annotations

import stat
from pathlib import Path

from pydantic import SecretStr

from bridge.settings import parse_settings
from bridge.store.enrollment import TokenPurpose
from bridge.web.enrollment.keys import LinkKeys, secret_key


def test_link_keys_digest_per_purpose_and_seal_only_for_the_token_and_address() -> None:
    keys = LinkKeys(b"k" * 32)
    token = keys.new_token()
    assert len(token) >= 43
    assert keys.digest(TokenPurpose.VERIFY, token) != keys.digest(TokenPurpose.LOGIN, token)
    assert keys.digest(TokenPurpose.VERIFY, token) != LinkKeys(b"x" * 32).digest(TokenPurpose.VERIFY, token)
    sealed = keys.seal(token, SecretStr("Blue-Harbour-42"), "ada@example.com")
    assert "Blue-Harbour-42" not in sealed
    opened = keys.unseal(token, sealed, "ada@example.com")
    assert opened is not None and opened.get_secret_value() == "Blue-Harbour-42"
    assert keys.unseal(keys.new_token(), sealed, "ada@example.com") is None
    assert keys.unseal(token, sealed, "eve@example.com") is None
    assert LinkKeys(b"x" * 32).unseal(token, sealed, "ada@example.com") is None


def test_without_a_configured_key_one_is_made_once_readable_by_the_bridge_only(tmp_path: Path) -> None:
    settings = parse_settings({"daemon": {"state_dir": str(tmp_path / "state")}})
    first = secret_key(settings)
    assert len(first) == 64
    assert secret_key(settings) == first
    mode = (tmp_path / "state" / "enrollment.key").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    configured = parse_settings({"enrollment": {"secret_key": "s" * 40}})
    assert secret_key(configured) == b"s" * 40
