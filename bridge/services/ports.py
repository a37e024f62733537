"""The vendors as the services see them: the billing system (WHMCS), the SolusVM accounts, the mailer,
the client notifications' texts, and the sign-up site's keys (their cryptography stays out of the
services).

Services import these Protocols, never a vendor package; the adapters satisfy them by their shape
(``whmcs.WhmcsClient``, ``solusvm.SolusVMClient``, ``web.enrollment.mailer.TemplateMail``,
``mail.notices.NoticeMail``) and are built
by the composition root. A vendor's failures reach the services as the kernel's errors
(:class:`~bridge.errors.VendorError`, :class:`~bridge.errors.VendorAccessDenied`,
:class:`~bridge.errors.VendorRefused`), which the adapters' own errors subclass.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from pydantic import SecretStr

from bridge.domain.clients import Client
from bridge.domain.notifications import MailText, Notice
from bridge.store.enrollment import TokenPurpose
from bridge.vies.answers import ViesAnswer
from bridge.vies.vatid import VatId


class VatIdChecker(Protocol):
    """The EU's VIES service (``vies.ViesClient``): whether a VAT ID, already checked offline, is valid.
    Every answer is a value, never raised: each is evidence for the 48-hour rule."""

    def check(self, vat_id: VatId) -> ViesAnswer: ...


class Payment(Protocol):
    """A payment (or refund) the billing system booked on an invoice."""

    @property
    def amount_in(self) -> Decimal: ...
    @property
    def amount_out(self) -> Decimal: ...


class BilledInvoice(Protocol):
    """An invoice as the billing system holds it: its status and what settled it.

    ``date_paid`` is naive, in the billing system's own time zone."""

    @property
    def status(self) -> str: ...
    @property
    def date_paid(self) -> datetime | None: ...
    @property
    def credit(self) -> Decimal: ...
    @property
    def transactions(self) -> Sequence[Payment]: ...


class BillingSystem(Protocol):
    """WHMCS, read back by the services (payments and agreements). The push of effects goes through the
    adapter's own effect table (bridge/whmcs/effects.py), driven by bridge/sync/push.py."""

    def get_invoice(self, invoice_id: int) -> BilledInvoice | None:
        """The invoice, or None when the billing system has no such id."""
        ...

    def has_agreement(self, client_id: int, gateways: Sequence[str] = ()) -> bool:
        """Whether the client holds a billing agreement with one of ``gateways`` (any when empty)."""
        ...

    def close(self) -> None: ...


class SolusVMUser(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...


class SolusVMAccounts(Protocol):
    """SolusVM's users, for enrollment and single sign-on; one per caller (not thread-safe)."""

    def users(self) -> Sequence[SolusVMUser]: ...

    def find_user_by_email(self, email: str) -> SolusVMUser | None: ...

    def ensure_user(self, email: str, password: SecretStr, billing_user_id: int | None = None) -> SolusVMUser:
        """The user with this address, created when missing; raises
        :class:`~bridge.errors.VendorRefused` when SolusVM refuses the user."""
        ...

    def create_login_token(self, user_id: int) -> str: ...

    def sso_url(self, token: str) -> str: ...

    def close(self) -> None: ...


class Mailer(Protocol):
    """Sends the two mails of the sign-up; implemented with templates in bridge/web/enrollment/mailer.py."""

    def sign_up_link(self, to: str, name: str, link: str, expires_at: datetime) -> None: ...

    def already_enrolled(self, to: str, name: str) -> None: ...


class NoticeTexts(Protocol):
    """Renders a client notification from its brandable template (bridge/mail/notices.py NoticeMail)."""

    def render(self, notice: Notice, client: Client) -> MailText:
        """The sender, subject and body of ``notice`` for ``client``; raises ConfigError for a template
        the operator broke."""
        ...


class SignUpKeys(Protocol):
    """Link tokens, their keyed digests and the password seal (bridge/web/enrollment/keys.py LinkKeys)."""

    def new_token(self) -> str:
        """A fresh random link token (URL-safe)."""
        ...

    def digest(self, purpose: TokenPurpose, token: str) -> str:
        """The keyed digest the store keeps instead of the token."""
        ...

    def seal(self, token: str, password: SecretStr, email: str) -> str:
        """The password sealed under a key only ``token`` opens."""
        ...

    def unseal(self, token: str, sealed: str, email: str) -> SecretStr | None:
        """The password, or None when the seal does not open."""
        ...

    def session_key(self) -> bytes:
        """The key that signs the session cookie."""
        ...

    def hash_password(self, password: SecretStr) -> str:
        """A salted, slow hash of a client's password, to keep instead of the password."""
        ...

    def password_matches(self, stored: str | None, password: SecretStr) -> bool:
        """Whether ``password`` is the one ``stored`` was made from (None: no password, never matches, in
        about the time a real check takes)."""
        ...
