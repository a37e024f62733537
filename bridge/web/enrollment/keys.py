"""The sign-up site's keys: random link tokens, their keyed digests, the password seal and the session key,
all derived from ``enrollment.secret_key`` (or the key file the first daemon made).

Light to import: the cryptography library (~10 MB) is loaded at the first seal, not with this module.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from bridge.settings import Settings
from bridge.store.enrollment import TokenPurpose

KEY_FILE = "enrollment.key"
_UNUSABLE_HASH = (
    "scrypt:32768:8:1$unusable$"
    "6c1d9ad1c1a8b65bd0b1d1cde3a3d7d1c8a3e0b7e6f1c4d2a5b8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6"
    "0718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f607"
)
"""A well-formed hash no password produces: the work of a check for an address with no password."""


class LinkKeys:
    """Random tokens, their keyed digests, and the password seal, all keyed by ``enrollment.secret_key``.

    A token is 256 random bits (URL-safe); the database holds HMAC-SHA256(secret, purpose, token), so a
    stolen database yields no working link. The seal is AES-256-GCM with a key derived from the secret and
    the token, and the email address as associated data.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    def digest(self, purpose: TokenPurpose, token: str) -> str:
        return self._mac(b"link:" + purpose.value.encode(), token).hex()

    def seal(self, token: str, password: SecretStr, email: str) -> str:
        nonce = os.urandom(12)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # ~10 MB: loaded at the first sign-up

        sealed = AESGCM(self._mac(b"seal", token)).encrypt(
            nonce, password.get_secret_value().encode(), email.encode()
        )
        return base64.urlsafe_b64encode(nonce + sealed).decode()

    def unseal(self, token: str, sealed: str, email: str) -> SecretStr | None:
        """The password, or None when the seal does not open (another token, a changed secret key)."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = base64.urlsafe_b64decode(sealed.encode())
        try:
            plain = AESGCM(self._mac(b"seal", token)).decrypt(raw[:12], raw[12:], email.encode())
        except InvalidTag:
            return None
        return SecretStr(plain.decode())

    @staticmethod
    def hash_password(password: SecretStr) -> str:
        """Werkzeug's salted scrypt hash (the kept library Flask already brings), never the password."""
        from werkzeug.security import generate_password_hash

        return generate_password_hash(password.get_secret_value())

    @staticmethod
    def password_matches(stored: str | None, password: SecretStr) -> bool:
        from werkzeug.security import check_password_hash

        if stored is None:  # check against a throw-away hash, so an unknown address takes as long
            stored = _UNUSABLE_HASH
        return check_password_hash(stored, password.get_secret_value()) and stored != _UNUSABLE_HASH

    def session_key(self) -> bytes:
        """The key that signs the session cookie: derived, so it never equals the link key."""
        return self._mac(b"session", "")

    def _mac(self, label: bytes, token: str) -> bytes:
        return hmac.new(self._secret, label + b"\0" + token.encode(), hashlib.sha256).digest()


def secret_key(settings: Settings) -> bytes:
    """``enrollment.secret_key``, or the random key kept in ``<state_dir>/enrollment.key`` (made on first use,
    readable by the bridge's user only). Every daemon serving the same site needs the same key."""
    configured = settings.enrollment.secret_key
    if configured is not None:
        return configured.get_secret_value().encode()
    path = settings.daemon.resolved_state_dir() / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first; read theirs
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    return Path(path).read_text(encoding="utf-8").strip().encode()


def stored_secret_key(settings: Settings) -> str | None:
    """The generated key already kept in the state directory, for the log masker; reads, never makes one.

    None when ``enrollment.secret_key`` is set (a setting: masked with the others), when no key was made
    yet, or when this user may not read it (an operator's shell: then it cannot leak from here either).
    """
    if settings.enrollment.secret_key is not None:
        return None
    try:
        return (settings.daemon.resolved_state_dir() / KEY_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None
