"""A client's own pages (issue 19): sign in, see the up-to-date credit and invoices, choose auto-invoicing.

What a signed-in client may do here is read, plus one choice that concerns money: its credit
auto-invoicing (seed 000), kept in the ledger of changes with who and when (:meth:`CreditService.
set_auto_invoicing`). Everything else a page shows comes from the same services the operator's CLI uses,
so the client sees the numbers the operator sees.

Signing in: with the password chosen at sign-up (kept as a salted hash, never the password), or with a
single-use link the WHMCS panel or an operator asks for (:meth:`SelfService.account_link`). The pages keep
the client's id in a signed session cookie that expires (``enrollment.session_hours``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import SecretStr

from bridge.clock import Clock
from bridge.domain.bounds import EMAIL_MAX, check_text, parse_id
from bridge.domain.clients import Client
from bridge.errors import InputError, NotFound, checked
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.services.credit import Account, CreditService
from bridge.services.enrollment import EnrollmentService, Status
from bridge.services.notifications import notification_address
from bridge.services.ports import SignUpKeys
from bridge.store import clients as client_store
from bridge.store import invoices as invoice_store
from bridge.store.credit import AutoInvoicingChange
from bridge.store.enrollment import TokenPurpose
from bridge.store.invoices import StoredInvoice
from bridge.store.unit_of_work import UnitOfWork

log = get_logger(__name__)

SHOWN_INVOICES = 50
"""How many of the newest invoices the client's page lists."""


@dataclass(frozen=True)
class ClientPage:
    """Everything the client's page shows, read at one moment."""

    client: Client
    account: Account
    invoices: tuple[StoredInvoice, ...]
    changes: tuple[AutoInvoicingChange, ...]
    enrollment: Status
    auto_invoicing_feature: bool
    notification_address: str

    @property
    def hours_until_zero(self) -> Decimal | None:
        """Hours until the up-to-date credit reaches zero at the burn rate (None: nothing burns)."""
        return self.account.hours_until(Decimal(0))

    @property
    def hours_until_limit(self) -> Decimal | None:
        return self.account.hours_until(self.account.credit_limit)


class SelfService:
    """The client's pages; safe to share between the web server's threads."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        keys: SignUpKeys,
        *,
        clients: ClientService,
        credit: CreditService,
        enrollment: EnrollmentService,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._keys = keys
        self._clients = clients
        self._credit = credit
        self._enrollment = enrollment

    # -- signing in ----------------------------------------------------------------------------------

    def sign_in(self, email: str, password: SecretStr) -> int | None:
        """The client whose email and password these are, or None (the same answer, and about the same
        time, for an unknown address, a client with no password and a wrong password)."""
        address = email.strip().lower()
        stored: str | None = None
        client_id: int | None = None
        if 0 < len(address) <= EMAIL_MAX:
            with self._uow.reading() as connection:
                found = client_store.client_by_email(connection, address)
                if found is not None:
                    client_id = found.id
                    stored = client_store.password_hash(connection, found.id)
        if not self._keys.password_matches(stored, password) or client_id is None:
            log.info("client sign-in refused")
            return None
        log.info("client signed in with a password", client_id=client_id)
        return client_id

    def client(self, client_id: int) -> Client:
        return self._clients.get(str(client_id))

    def set_password(self, client_id: int, password: SecretStr) -> None:
        """Keep (a hash of) the password the client signs in with, replacing an earlier one."""
        hashed = self._keys.hash_password(password)
        with self._uow.writing() as connection:
            client_store.set_password_hash(connection, client_id, hashed, self._clock.now())

    def account_link(self, client_ref: str) -> tuple[str, datetime]:
        """A single-use link that signs the client in to its page, and its expiry (for the WHMCS panel and
        support staff; ``enrollment.sso_link_ttl_minutes``). Works for any client, enrolled or not."""
        client = self._clients.get(client_ref)
        found = self._enrollment.client_link(client.id, TokenPurpose.ACCOUNT, "signin")
        log.info("client sign-in link issued", client_id=client.id)
        return found

    def use_account_link(self, token: str) -> int:
        """The client a sign-in link signs in; :class:`LinkProblem` when used, expired or unknown."""
        client_id = self._enrollment.use_client_link(token, TokenPurpose.ACCOUNT)
        log.info("client signed in with a link", client_id=client_id)
        return client_id

    # -- the page ------------------------------------------------------------------------------------

    def page(self, client_id: int) -> ClientPage:
        """The client's page: up-to-date credit, burn rate, hours left, invoices, auto-invoicing."""
        client = self._clients.get(str(client_id))
        with self._uow.reading() as connection:
            invoices = invoice_store.list_invoices(connection, client_id=client.id, limit=SHOWN_INVOICES)
        return ClientPage(
            client=client,
            account=self._credit.account(str(client.id)),
            invoices=tuple(invoice for invoice in invoices if invoice.status != "draft"),
            changes=tuple(self._credit.auto_invoicing_history(client.id, limit=5)),
            enrollment=self._enrollment.status(str(client.id)),
            auto_invoicing_feature=self._credit.auto_invoicing_feature,
            notification_address=notification_address(client),
        )

    def invoice(self, client_id: int, invoice_ref: str) -> tuple[StoredInvoice, Client]:
        """One of the client's own invoices (with its lines) by its id; :class:`NotFound` for any other,
        a draft, or another client's, so the answer does not tell which invoices exist."""
        invoice_id = checked(parse_id, checked(check_text, invoice_ref, "invoice", max_length=20), "invoice")
        with self._uow.reading() as connection:
            found = invoice_store.invoice_by_id(connection, invoice_id)
        if found is None or found.client_id != client_id or found.status == "draft":
            raise NotFound(f"no invoice {invoice_ref} of this client")
        return found, self._clients.get(str(client_id))

    def choose_auto_invoicing(self, client_id: int, choice: str, *, from_address: str) -> bool:
        """The client's own auto-invoicing choice from its page; True when it changed. The change is kept
        with who made it (the client, and from which address). :class:`InputError` on a bad choice."""
        if not self._credit.auto_invoicing_feature:
            raise InputError("credit auto-invoicing is not offered")
        changed_by = f"client {client_id} (self-service from {from_address})"
        change = self._credit.set_auto_invoicing(
            str(client_id), choice, changed_by=changed_by, option="auto-invoicing"
        )
        return change is not None
