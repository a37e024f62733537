"""Post-pay enrollment (seed 002): a sign-up request, a mailed single-use link, terms, then the client
and its SolusVM user, each made exactly once; and single sign-on into SolusVM afterwards.

What happens at each step:

1-3. :meth:`EnrollmentService.request` keeps the request (name, company, email) and mails a link. The
     password cannot be dropped yet (SolusVM needs it at step 5), so it is kept *sealed*: AES-GCM under a
     key derived from the link's token and ``enrollment.secret_key``. The bridge stores only a keyed
     digest of the token, so neither the database nor the key alone opens the seal. An address that
     already has an account gets a mail saying so instead; the page looks the same either way.
4-5. :meth:`EnrollmentService.accept` consumes the link (one conditional UPDATE decides the one winner),
     records which version of each document was accepted, when and from where, and takes the SolusVM
     claim; then :meth:`EnrollmentService.finish` creates the client through :class:`ClientService`
     (which writes the WHMCS ``add_client`` outbox row in the same transaction), books the configuration's
     initial credit as ledger entry ``BB-INITIAL-<client id>``, records the auto order service, and creates
     the SolusVM user with the unsealed password. The seal is dropped when the client is attached.
6.   A reload or a second submit within a few minutes finds the link used and answers as the first did;
     nothing is made twice. If SolusVM is off or does not answer, the client exists and the SolusVM user
     is created later (``[schedule] enrollment``, or at the first login) with a random password, because
     the chosen one is gone: single sign-on is then the way in, and the pages say so.

Single sign-on: :meth:`EnrollmentService.sso_url` asks SolusVM for a one-time login token.
:meth:`EnrollmentService.login_link` makes a single-use, expiring bridge link (for support staff and
the WHMCS panel) that leads there.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import SecretStr

from bridge.clock import Clock
from bridge.domain import references
from bridge.domain.clients import Client, LinkKind
from bridge.errors import BridgeError, InputError, NotFound, VendorError, VendorRefused
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.services.ports import Mailer, SignUpKeys, SolusVMAccounts
from bridge.settings import Configurations, ConfigurationSettings, EnrollmentSettings
from bridge.store import clients as client_store
from bridge.store import credit as credit_store
from bridge.store import enrollment as store
from bridge.store import outbox as outbox_store
from bridge.store.enrollment import Enrollment, EnrollmentState, SolusVMState, TokenPurpose
from bridge.store.unit_of_work import Conflict, Tx, UnitOfWork
from bridge.store.whmcs import whmcs_client_id, whmcs_link_owner

log = get_logger(__name__)

REPLAY_GRACE = timedelta(minutes=10)
"""A used sign-up link opened again this soon is the same person reloading or submitting twice."""
SOLUSVM_CLAIM = timedelta(minutes=2)
"""How long one caller may hold the right to create an enrollment's SolusVM user."""
TOKEN_KEEP = timedelta(days=7)
"""Expired links are kept this long (so a late click says "expired" and can ask for a new link), then
deleted together with the sign-up they belonged to, if it was never confirmed."""
RETRY_BATCH = 200
TERMS = "terms"
POSTPAY_TERMS = "postpay_terms"


class LinkState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    UNKNOWN = "unknown"


class LinkProblem(InputError):
    """A link that cannot be used: unknown (or replaced by a newer one), expired, or already used."""

    def __init__(self, state: LinkState, enrollment: Enrollment | None = None) -> None:
        super().__init__(f"the link is {state.value}")
        self.state = state
        self.enrollment = enrollment


class TermsNotAccepted(InputError):
    """Not every required document was accepted."""

    def __init__(self, missing: list[Document]) -> None:
        super().__init__("accept " + " and ".join(document.title for document in missing) + " to continue")
        self.missing = missing


class NotEnrolled(NotFound):
    """The client has no SolusVM user and no sign-up that will make one."""


class SolusVMUnavailable(BridgeError):
    """SolusVM is not configured, did not answer, or the user is not made yet; ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MailFailed(BridgeError):
    """The mail could not be handed to the mail server."""


@dataclass(frozen=True)
class SignUp:
    """A validated sign-up form; ``email`` normalised (lower case), ``company`` may be empty."""

    name: str
    company: str
    email: str
    password: SecretStr
    country: str | None = None
    """ISO 3166-1 alpha-2, or None when not given; ``vat_id`` checked offline (issue 16)."""
    vat_id: str | None = None


@dataclass(frozen=True)
class Document:
    """A document to accept: ``key`` names it in the record, ``url`` is where it is shown."""

    key: str
    title: str
    version: str
    url: str


@dataclass(frozen=True)
class LinkCheck:
    state: LinkState
    enrollment: Enrollment | None


@dataclass(frozen=True)
class Status:
    """What the login page and the WHMCS panel show about a client."""

    client: Client
    enrollment: Enrollment | None
    solusvm_user_id: str | None
    solusvm_configured: bool

    @property
    def enrolled(self) -> bool:
        """Has a SolusVM user, or a sign-up that will make one."""
        return self.solusvm_user_id is not None or (
            self.enrollment is not None and self.enrollment.state is EnrollmentState.ACTIVE
        )


class EnrollmentService:
    """The sign-up flow and single sign-on; safe to share between the web server's threads."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        config: EnrollmentSettings,
        clients: ClientService,
        keys: SignUpKeys,
        *,
        configurations: Configurations,
        mail: Mailer | None = None,
        solusvm: Callable[[], SolusVMAccounts] | None = None,
        whmcs_enabled: bool = False,
        tax_flow: Callable[[Client], object] = lambda client: client,
    ) -> None:
        self._uow = uow
        self._tax_flow = tax_flow
        """The VAT ID validation flow (seed 001): VIES may mark a new client tax exempt."""
        self._whmcs_enabled = whmcs_enabled
        self._clock = clock
        self._config = config
        self._configurations = configurations
        self._clients = clients
        self._keys = keys
        self._mail = mail
        self._solusvm = solusvm

    def session_key(self) -> bytes:
        """The key that signs the pages' session cookie."""
        return self._keys.session_key()

    @property
    def solusvm_configured(self) -> bool:
        return self._solusvm is not None

    def documents(self) -> list[Document]:
        """The documents a sign-up must accept: the Terms of Service, and post-pay T&C when configured."""
        found = [
            Document(
                TERMS, "the Terms of Service", self._config.terms_version, self._config.terms_url or "/terms"
            )
        ]
        if self._config.postpay_terms_version is not None:
            found.append(
                Document(
                    POSTPAY_TERMS,
                    "the Post-Pay Terms & Conditions",
                    self._config.postpay_terms_version,
                    self._config.postpay_terms_url or "/terms/postpay",
                )
            )
        return found

    # -- steps 1-3: the request and its mail -----------------------------------------------------------

    def request(self, sign_up: SignUp) -> None:
        """Mail a sign-up link (or, for an address with an account, a mail saying so). Same outcome to see."""
        now = self._clock.now()
        token = self._keys.new_token()
        sealed = self._keys.seal(token, sign_up.password, sign_up.email)
        try:
            enrollment_id = self._keep_request(sign_up, token, sealed, now)
        except Conflict:  # a simultaneous request for the same address inserted first: renew it
            enrollment_id = self._keep_request(sign_up, token, sealed, now)
        if enrollment_id is None:
            log.info("sign-up for an address that already has an account")
            self._send(lambda mail: mail.already_enrolled(sign_up.email, sign_up.name))
            return
        log.info("sign-up requested", enrollment_id=enrollment_id)
        self._send_link(sign_up.email, sign_up.name, token, now)

    def _keep_request(self, sign_up: SignUp, token: str, sealed: str, now: datetime) -> int | None:
        """The pending request's id, with ``token`` as its only link; None when the address has an account."""
        with self._uow.reading() as connection:
            taken = client_store.client_by_email(connection, sign_up.email) is not None
            existing = store.by_email(connection, sign_up.email)
        if taken or (existing is not None and existing.state is not EnrollmentState.PENDING):
            return None
        # Each write transaction starts with its write, so SQLite takes its lock before anything is read.
        with self._uow.writing() as connection:
            if existing is None:
                enrollment_id = store.insert_request(
                    connection,
                    email=sign_up.email,
                    name=sign_up.name,
                    company=sign_up.company,
                    sealed_password=sealed,
                    now=now,
                    country=sign_up.country,
                    vat_id=sign_up.vat_id,
                )
            else:
                enrollment_id = existing.id
                renewed = store.renew_request(
                    connection,
                    existing.id,
                    sealed_password=sealed,
                    now=now,
                    name=sign_up.name,
                    company=sign_up.company,
                    tax_identity=(sign_up.country, sign_up.vat_id),
                )
                if not renewed:  # accepted meanwhile
                    return None
            self._new_link(connection, enrollment_id, token, now)
        return enrollment_id

    def renew(self, token: str) -> Enrollment:
        """A fresh link for the request an unused (typically expired) link belongs to; the old one stops."""
        checked = self.check(token)
        enrollment = checked.enrollment
        if enrollment is None or enrollment.state is not EnrollmentState.PENDING:
            raise LinkProblem(LinkState.UNKNOWN if enrollment is None else LinkState.USED, enrollment)
        if checked.state is LinkState.USED:
            raise LinkProblem(LinkState.USED, enrollment)
        password = self._unseal(token, enrollment)
        if password is None:
            raise LinkProblem(LinkState.UNKNOWN, enrollment)
        now = self._clock.now()
        fresh = self._keys.new_token()
        sealed = self._keys.seal(fresh, password, enrollment.email)
        with self._uow.writing() as connection:
            if not store.renew_request(connection, enrollment.id, sealed_password=sealed, now=now):
                raise LinkProblem(LinkState.USED, enrollment)
            self._new_link(connection, enrollment.id, fresh, now)
        log.info("sign-up link renewed", enrollment_id=enrollment.id)
        self._send_link(enrollment.email, enrollment.name, fresh, now)
        return enrollment

    def _new_link(self, connection: Tx, enrollment_id: int, token: str, now: datetime) -> None:
        store.drop_unused_links(connection, enrollment_id)
        store.insert_token(
            connection,
            digest=self._keys.digest(TokenPurpose.VERIFY, token),
            purpose=TokenPurpose.VERIFY,
            enrollment_id=enrollment_id,
            now=now,
            expires_at=now + timedelta(hours=self._config.link_ttl_hours),
        )

    def _send_link(self, email: str, name: str, token: str, now: datetime) -> None:
        link = f"{self._config.base_url()}/verify/{token}"
        expires_at = now + timedelta(hours=self._config.link_ttl_hours)
        self._send(lambda mail: mail.sign_up_link(email, name, link, expires_at))

    def _send(self, write: Callable[[Mailer], None]) -> None:
        if self._mail is None:
            raise MailFailed("no mailer is configured for enrollment")
        try:
            write(self._mail)
        except OSError as error:
            log.error("sign-up mail not sent", error=str(error))
            raise MailFailed(f"the mail could not be sent ({error})") from None

    # -- steps 4-5: the link, the terms, the account ---------------------------------------------------

    def check(self, token: str) -> LinkCheck:
        """What a sign-up link is now, without using it."""
        with self._uow.reading() as connection:
            found = store.token_by_digest(
                connection, self._keys.digest(TokenPurpose.VERIFY, token), TokenPurpose.VERIFY
            )
            enrollment = (
                store.by_id(connection, found.enrollment_id) if found and found.enrollment_id else None
            )
        if found is None or enrollment is None:
            return LinkCheck(LinkState.UNKNOWN, None)
        if found.used_at is not None:
            return LinkCheck(LinkState.USED, enrollment)
        if found.expires_at <= self._clock.now():
            return LinkCheck(LinkState.EXPIRED, enrollment)
        return LinkCheck(LinkState.VALID, enrollment)

    def accept(
        self,
        token: str,
        accepted: Collection[str],
        accepted_from: str | None,
        browser: str | None = None,
    ) -> Enrollment:
        """Use the link: record the accepted terms and make the client and its SolusVM user, once.

        ``browser`` is a secret the using browser holds (the pages pass its session's CSRF token); the
        first use records a digest of it with the link. A second call with the same link and the same
        browser within :data:`REPLAY_GRACE` (a reload, a double submit) makes nothing and returns the same
        enrollment; from any other browser, or later, it raises :class:`LinkProblem` (used), so a link
        seen by someone else never signs them in.
        """
        now = self._clock.now()
        checked = self.check(token)
        enrollment = checked.enrollment
        if enrollment is None:
            raise LinkProblem(LinkState.UNKNOWN)
        replay = checked.state is LinkState.USED
        if replay and (enrollment.accepted_at is None or now - enrollment.accepted_at > REPLAY_GRACE):
            raise LinkProblem(LinkState.USED, enrollment)
        if checked.state is LinkState.EXPIRED:
            raise LinkProblem(LinkState.EXPIRED, enrollment)
        if not replay:
            missing = [document for document in self.documents() if document.key not in accepted]
            if missing:
                raise TermsNotAccepted(missing)
            with self._uow.writing() as connection:
                digest = self._keys.digest(TokenPurpose.VERIFY, token)
                replay = not store.consume(connection, digest, TokenPurpose.VERIFY, now)
                if not replay:
                    self._bind_browser(connection, enrollment.id, token, browser, now)
                    for document in self.documents():
                        store.record_acceptance(
                            connection,
                            enrollment_id=enrollment.id,
                            document=document.key,
                            version=document.version,
                            at=now,
                            accepted_from=accepted_from,
                        )
                    store.mark_accepted(connection, enrollment.id, now, now + SOLUSVM_CLAIM)
            if replay:  # another request used the link first (a double submit), or it just expired
                again = self.check(token)
                if again.state is not LinkState.USED:
                    raise LinkProblem(again.state, enrollment)
        if replay:
            if not self._bound_to(token, browser, now):
                log.warning(
                    "sign-up link used again from another browser; refused", enrollment_id=enrollment.id
                )
                raise LinkProblem(LinkState.USED, enrollment)
            log.info("sign-up link used again; nothing is made twice", enrollment_id=enrollment.id)
            return self.finish(enrollment.id, provision=False)
        log.info("terms accepted", enrollment_id=enrollment.id)
        password = self._unseal(token, enrollment)
        finished = self.finish(enrollment.id, password, claim_held=True)
        if password is not None and finished.client_id is not None:
            self._keep_password(finished.client_id, password)
        return finished

    def _keep_password(self, client_id: int, password: SecretStr) -> None:
        """The password chosen at sign-up signs the client in to its own pages: kept as a salted hash (the
        seal goes when the client is attached), unless the client already has one."""
        hashed = self._keys.hash_password(password)
        with self._uow.writing() as connection:
            if client_store.password_hash(connection, client_id) is None:
                client_store.set_password_hash(connection, client_id, hashed, self._clock.now())

    # -- issue 15 point 10: an existing client activates post-pay ----------------------------------------

    def activate(self, client_id: int, accepted: Collection[str], accepted_from: str | None) -> Enrollment:
        """Post-pay for a client that already exists (a WHMCS client signed in, or sent by the WHMCS
        panel with a sign-in link): the documents accepted and recorded, then its SolusVM user found by
        email or made (with a random password: single sign-on is the way in), exactly as a sign-up's.
        Once: a client already enrolled gets its enrollment back, nothing is made twice. No credit is
        booked and nothing is ordered: an existing client's money stays as it is."""
        status = self.status(str(client_id))
        if status.enrollment is not None and status.enrollment.state is not EnrollmentState.PENDING:
            return status.enrollment
        missing = [document for document in self.documents() if document.key not in accepted]
        if missing:
            raise TermsNotAccepted(missing)
        client = status.client
        now = self._clock.now()
        try:
            with self._uow.writing() as connection:
                enrollment_id = store.insert_activation(
                    connection,
                    client_id=client.id,
                    email=client.email,
                    name=client.name,
                    now=now,
                    claim_until=now + SOLUSVM_CLAIM,
                )
                for document in self.documents():
                    store.record_acceptance(
                        connection,
                        enrollment_id=enrollment_id,
                        document=document.key,
                        version=document.version,
                        at=now,
                        accepted_from=accepted_from,
                    )
        except Conflict:  # a double submit, or a sign-up of the same address: the first one stands
            with self._uow.reading() as connection:
                found = store.by_client(connection, client.id) or store.by_email(connection, client.email)
            if found is None or found.client_id != client.id:
                raise InputError(
                    f"a sign-up for {client.email} is pending; finish it from its mail, or ask support"
                ) from None
            return found
        log.info("post-pay activated by an existing client", client_id=client.id, enrollment_id=enrollment_id)
        return self.finish(enrollment_id, None, claim_held=True)

    def _bind_browser(
        self, connection: Tx, enrollment_id: int, token: str, browser: str | None, now: datetime
    ) -> None:
        """Remember (as a keyed digest, until the grace ends) which browser used the link."""
        if browser:
            store.insert_token(
                connection,
                digest=self._keys.digest(TokenPurpose.BROWSER, f"{token}\0{browser}"),
                purpose=TokenPurpose.BROWSER,
                enrollment_id=enrollment_id,
                now=now,
                expires_at=now + REPLAY_GRACE,
            )

    def _bound_to(self, token: str, browser: str | None, now: datetime) -> bool:
        """Whether ``browser`` is the one that used the link, within the grace."""
        if not browser:
            return False
        with self._uow.reading() as connection:
            found = store.token_by_digest(
                connection,
                self._keys.digest(TokenPurpose.BROWSER, f"{token}\0{browser}"),
                TokenPurpose.BROWSER,
            )
        return found is not None and found.expires_at > now

    def finish(
        self,
        enrollment_id: int,
        password: SecretStr | None = None,
        *,
        provision: bool = True,
        claim_held: bool = False,
    ) -> Enrollment:
        """Bring an accepted sign-up as far as it goes: its client (with initial credit and auto order) and,
        when ``provision``, its SolusVM user. Idempotent, so safe after a crash and from every path."""
        with self._uow.reading() as connection:
            enrollment = store.by_id(connection, enrollment_id)
        if enrollment is None or enrollment.state is EnrollmentState.PENDING:
            raise NotFound(f"no accepted sign-up {enrollment_id}")
        if enrollment.client_id is None:
            self._make_client(enrollment)
        if provision:
            self._provision(enrollment_id, password, claim_held=claim_held)
        elif claim_held:
            self._release_claim(enrollment_id)
        with self._uow.reading() as connection:
            finished = store.by_id(connection, enrollment_id)
        assert finished is not None
        return finished

    def _make_client(self, enrollment: Enrollment) -> None:
        try:
            client = self._clients.add(
                email=enrollment.email,
                name=enrollment.name,
                country=enrollment.country,
                vat_id=enrollment.vat_id,
            )
        except InputError:
            # The client was made by an earlier, interrupted attempt (or by an operator since the request):
            # the address is verified, so it is this person's client. (Its VAT ID, if the flow did not run,
            # is asked about by the tax_revalidation job.)
            client = self._clients.get(enrollment.email)
        else:
            if client.vat_id is not None:
                self._tax_flow(client)
        configuration = self._configurations.section(client.configuration)
        now = self._clock.now()
        order = configuration.auto_order_service.strip() if configuration.auto_order_on_signup else None
        with self._uow.writing() as connection:
            attached = store.attach_client(connection, enrollment.id, client.id, order, now)
            if attached and configuration.client_initial_credit > 0:
                self._book_initial_credit(connection, client.id, client.currency, configuration, now)
        if attached:
            log.info(
                "client created from sign-up",
                enrollment_id=enrollment.id,
                client_id=client.id,
                auto_order=order,
            )

    def _book_initial_credit(
        self,
        connection: Tx,
        client_id: int,
        currency: str,
        configuration: ConfigurationSettings,
        now: datetime,
    ) -> None:
        """The sign-up's initial credit in the ledger, and (WHMCS billing) its AddCredit intent with it."""
        reference = references.initial_credit(client_id)
        created = credit_store.add_entry(
            connection,
            client_id=client_id,
            kind="initial_credit",
            amount=configuration.client_initial_credit,
            currency=currency,
            reference=reference,
            description="initial credit at sign-up",
            occurred_at=now,
            now=now,
        )
        if created and self._whmcs_enabled:
            outbox_store.enqueue_credit(
                connection,
                client_id=client_id,
                ledger_reference=reference,
                amount=configuration.client_initial_credit,
                description="initial credit at sign-up",
                now=now,
            )

    def _provision(self, enrollment_id: int, password: SecretStr | None, *, claim_held: bool) -> None:
        """Create (or find and link) the SolusVM user; a failure leaves it pending for a later try."""
        now = self._clock.now()
        if self._solusvm is None:
            if claim_held:
                self._release_claim(enrollment_id)
            return
        with self._uow.writing() as connection:
            if not claim_held and not store.claim_solusvm(
                connection, enrollment_id, now, now + SOLUSVM_CLAIM
            ):
                return
            enrollment = store.by_id(connection, enrollment_id)
            if enrollment is None or enrollment.client_id is None:
                return
            billing_id = whmcs_client_id(connection, enrollment.client_id)
        client_id = enrollment.client_id
        solusvm = self._solusvm()
        try:
            existing = solusvm.find_user_by_email(enrollment.email)
            if existing is not None:
                user, state = existing, SolusVMState.EXISTING
            else:
                secret = password or SecretStr(secrets.token_urlsafe(24))
                state = SolusVMState.CREATED if password is not None else SolusVMState.NO_PASSWORD
                user = solusvm.ensure_user(enrollment.email, secret, billing_user_id=billing_id)
        except VendorRefused as error:
            self._record(enrollment_id, SolusVMState.FAILED, error=str(error))
            log.error(
                "SolusVM refused the user", enrollment_id=enrollment_id, client_id=client_id, error=str(error)
            )
            return
        except VendorError as error:
            self._record(enrollment_id, SolusVMState.PENDING, error=str(error))
            log.warning(
                "SolusVM user deferred", enrollment_id=enrollment_id, client_id=client_id, error=str(error)
            )
            return
        finally:
            solusvm.close()
        with self._uow.writing() as connection:
            store.record_solusvm(connection, enrollment_id, state=state, user_id=str(user.id), now=now)
            owner = client_store.find_link_owner(connection, LinkKind.SOLUSVM_USER, str(user.id))
            if owner is None:
                client_store.insert_link(
                    connection,
                    client_id=client_id,
                    kind=LinkKind.SOLUSVM_USER,
                    external_id=str(user.id),
                    created_at=now,
                )
            elif owner != client_id:
                problem = f"SolusVM user {user.id} is already linked to client {owner}"
                store.record_solusvm(
                    connection,
                    enrollment_id,
                    state=SolusVMState.FAILED,
                    error=problem,
                    now=now,
                    attempted=False,
                )
                log.error(
                    "SolusVM user belongs to another client", enrollment_id=enrollment_id, problem=problem
                )
                return
        log.info(
            "SolusVM user ready",
            enrollment_id=enrollment_id,
            client_id=client_id,
            solusvm_user=user.id,
            state=state.value,
        )

    def _record(self, enrollment_id: int, state: SolusVMState, *, error: str) -> None:
        with self._uow.writing() as connection:
            store.record_solusvm(connection, enrollment_id, state=state, error=error, now=self._clock.now())

    def _release_claim(self, enrollment_id: int) -> None:
        with self._uow.writing() as connection:
            store.release_claim(connection, enrollment_id)

    def _unseal(self, token: str, enrollment: Enrollment) -> SecretStr | None:
        if enrollment.sealed_password is None:
            return None
        return self._keys.unseal(token, enrollment.sealed_password, enrollment.email)

    def retry_pending(self) -> int:
        """Finish interrupted sign-ups and create deferred SolusVM users; forget old links, and sign-ups
        never confirmed whose last link is gone.

        Run by the daemon on ``[schedule] enrollment``; returns how many SolusVM users are ready now.
        """
        now = self._clock.now()
        with self._uow.writing() as connection:
            store.prune_tokens(connection, now - TOKEN_KEEP)
            link_ttl = timedelta(hours=self._config.link_ttl_hours)
            store.prune_stale_requests(connection, now - link_ttl - TOKEN_KEEP)
            waiting = store.unfinished(connection, RETRY_BATCH)
        ready = 0
        for enrollment in waiting:
            try:
                finished = self.finish(enrollment.id, provision=self.solusvm_configured)
            except BridgeError as error:
                log.error("sign-up not finished", enrollment_id=enrollment.id, error=str(error))
                continue
            ready += finished.solusvm_state is not SolusVMState.PENDING
        return ready

    # -- step 6 and after: status and single sign-on ---------------------------------------------------

    def status(self, client_ref: str) -> Status:
        client = self._clients.get(client_ref)
        with self._uow.reading() as connection:
            enrollment = store.by_client(connection, client.id)
        users = client.external_ids(LinkKind.SOLUSVM_USER)
        return Status(client, enrollment, users[0] if users else None, self.solusvm_configured)

    def sso_url(self, client_id: int) -> str:
        """The SolusVM control panel URL with a fresh one-time login token for the client's user.

        A sign-up whose SolusVM user is still to be made gets it made now (with a random password).
        Raises :class:`NotEnrolled`, or :class:`SolusVMUnavailable` naming why there is no way in yet.
        """
        status = self.status(str(client_id))
        if not status.enrolled:
            raise NotEnrolled(f"client {client_id} is not enrolled in SolusVM")
        if self._solusvm is None:
            raise SolusVMUnavailable("SolusVM is not connected to this billing system yet")
        if status.solusvm_user_id is None and status.enrollment is not None:
            self.finish(status.enrollment.id)
            status = self.status(str(client_id))
        if status.solusvm_user_id is None:
            raise SolusVMUnavailable("your SolusVM login is not ready yet")
        solusvm = self._solusvm()
        try:
            token = solusvm.create_login_token(int(status.solusvm_user_id))
            url = solusvm.sso_url(token)
        except VendorError as error:
            log.warning("SolusVM login token not issued", client_id=client_id, error=str(error))
            raise SolusVMUnavailable("SolusVM did not answer") from None
        finally:
            solusvm.close()
        log.info("single sign-on into SolusVM", client_id=client_id)
        return url

    def login_link(self, client_ref: str) -> tuple[str, datetime]:
        """A single-use bridge link that signs the client in and goes on to SolusVM, and its expiry."""
        status = self.status(client_ref)
        if not status.enrolled:
            raise NotEnrolled(
                f"client {status.client.id} ({status.client.email}) is not enrolled in SolusVM; "
                f"they can sign up at {self._config.base_url()}/"
            )
        return self.client_link(status.client.id, TokenPurpose.LOGIN, "sso")

    def use_login_link(self, token: str) -> int:
        """The client a login link signs in; raises :class:`LinkProblem` if it is used, expired or unknown."""
        return self.use_client_link(token, TokenPurpose.LOGIN)

    def client_link(self, client_id: int, purpose: TokenPurpose, path: str) -> tuple[str, datetime]:
        """A single-use link ``<public url>/<path>/<token>`` that signs the client in (``purpose`` keeps
        the kinds apart), and its expiry (``enrollment.sso_link_ttl_minutes``)."""
        now = self._clock.now()
        token = self._keys.new_token()
        expires_at = now + timedelta(minutes=self._config.sso_link_ttl_minutes)
        with self._uow.writing() as connection:
            store.insert_token(
                connection,
                digest=self._keys.digest(purpose, token),
                purpose=purpose,
                client_id=client_id,
                now=now,
                expires_at=expires_at,
            )
        return f"{self._config.base_url()}/{path}/{token}", expires_at

    def use_client_link(self, token: str, purpose: TokenPurpose) -> int:
        """The client a link of ``purpose`` signs in, using it up; :class:`LinkProblem` if it is used,
        expired or unknown."""
        digest = self._keys.digest(purpose, token)
        with self._uow.writing() as connection:
            used = store.consume(connection, digest, purpose, self._clock.now())
            found = store.token_by_digest(connection, digest, purpose)
        if found is None or found.client_id is None:
            raise LinkProblem(LinkState.UNKNOWN)
        if not used:
            raise LinkProblem(LinkState.USED if found.used_at is not None else LinkState.EXPIRED)
        return found.client_id

    def panel(
        self,
        *,
        email: str | None,
        whmcs_client: int | None,
        account_link: Callable[[str], tuple[str, datetime]] | None = None,
    ) -> dict[str, object]:
        """The WHMCS panel's answer: enrolled with a fresh login link, or not with the sign-up page; a
        client the bridge knows that is not enrolled (an existing WHMCS client) gets, with
        ``account_link``, a single-use link that signs it in to activate post-pay (issue 15 point 10)."""
        client_id: int | None = None
        with self._uow.reading() as connection:
            if whmcs_client is not None:
                client_id = whmcs_link_owner(connection, whmcs_client)
            if client_id is None and email:
                found = client_store.client_by_email(connection, email.strip().lower())
                client_id = found.id if found else None
        signup_url = f"{self._config.base_url()}/"
        if client_id is not None and self.status(str(client_id)).enrolled:
            link, expires_at = self.login_link(str(client_id))
            return {
                "enrolled": True,
                "login_url": link,
                "expires_at": expires_at.isoformat(),
                "signup_url": signup_url,
            }
        if client_id is not None and account_link is not None:
            link, expires_at = account_link(str(client_id))
            return {
                "enrolled": False,
                "login_url": None,
                "expires_at": expires_at.isoformat(),
                "signup_url": signup_url,
                "activate_url": link,
            }
        return {"enrolled": False, "login_url": None, "expires_at": None, "signup_url": signup_url}

    def recent(self, limit: int = 100) -> list[Enrollment]:
        with self._uow.reading() as connection:
            return store.listed(connection, limit)
