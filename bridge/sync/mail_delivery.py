"""Sends the client notifications the bridge mails itself (``mail_client`` outbox rows), exactly once.

The decision wrote the row (intent first, in its own transaction: bridge/services/notifications.py); this
sends it, under the lease ``job:mail`` so two processes never work the queue at once, in the push's way:

* each row is *claimed* (marked in doubt, fenced on the lease, committed) before the mail leaves, so a
  crash at any moment leaves either a pending row (never sent: sent at the next run) or an in-doubt one;
* an in-doubt row is settled by asking the transport (:meth:`~bridge.mail.transport.Transport.delivered`)
  once ``settle`` has passed since its claim: the file sink knows exactly (the mail's file exists or not:
  the row is done, or the mail is written now), so with it every notification is written exactly once;
  SMTP cannot be asked, so the mail is sent again with the same Message-ID (derived from the row's
  reference), which is the documented limit: a crash after the server accepted the DATA and before the
  row was marked done sends it twice, and a client or server that deduplicates by Message-ID shows it
  once;
* the server's permanent refusal (5xx, a refused recipient) parks the row as failed for the operator
  (``billing-bridge outbox retry|cancel``); a connection that never reached the server leaves it pending;
  anything else leaves it in doubt; either waits 5 minutes, doubling up to 6 hours, for a later run. A
  row still unsent after ``MAX_ATTEMPTS`` is parked as failed.

An invoice notification carries the invoice's PDF (bridge/documents/pdf.py, the same bytes every time),
attached when it renders; when it cannot (WeasyPrint's libraries missing, the logo file gone) the mail
goes without it and the log says why.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from bridge.clock import Clock
from bridge.domain.effects import MailClient
from bridge.errors import BridgeError
from bridge.logs import get_logger
from bridge.mail.transport import Transport, safe_key
from bridge.store import outbox as store
from bridge.store.outbox import MAIL_KINDS, Fence, FencedOut, OutboxRow, OutboxState
from bridge.store.unit_of_work import UnitOfWork
from bridge.sync.jobs import Lease, LeaseLost, hold_lease, job_lease

log = get_logger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(minutes=5)
BACKOFF_CAP = timedelta(hours=6)
LEASE = "mail"

Attachment = tuple[str, bytes]
"""A file name and its bytes."""
Attachments = Callable[[str], Attachment | None]
"""The PDF of the invoice with this reference, or None when it cannot be rendered (the reason logged)."""


@dataclass
class MailReport:
    """One delivery run: the references sent, found already sent, left for later, and parked."""

    sent: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    busy: bool = False

    def counts(self) -> dict[str, int]:
        return {
            "sent": len(self.sent),
            "found": len(self.found),
            "waiting": len(self.waiting),
            "failed": len(self.failed),
        }


class _Unsent(Exception):
    """The mail did not leave, or may have: ``state`` says which (pending, in doubt, failed)."""

    def __init__(self, state: OutboxState, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


class MailDelivery:
    """Sends due ``mail_client`` rows through ``transport``; ``host`` names the Message-IDs, ``settle`` is
    how long an in-doubt row waits after its claim before it is settled, ``attachments`` renders an
    invoice's PDF."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        transport: Transport,
        *,
        host: str,
        settle: timedelta,
        lease_ttl: timedelta,
        owner: str,
        attachments: Attachments,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._transport = transport
        self._host = host
        self._settle = settle
        self._lease_ttl = lease_ttl
        self._owner = owner
        self._attachments = attachments

    def run(self) -> MailReport:
        """Send every due row, under the lease ``job:mail`` (a run elsewhere: nothing done, ``busy``)."""
        report = MailReport()
        with hold_lease(self._uow, self._clock, job_lease(LEASE), self._owner, self._lease_ttl) as lease:
            if lease is None:
                report.busy = True
                return report
            with self._uow.reading() as connection:
                rows = store.due_rows(connection, MAIL_KINDS)
            for row in rows:
                self._deliver(row, lease, report)
        if report.sent or report.failed:
            log.info("client mails delivered", **report.counts())
        return report

    def _deliver(self, row: OutboxRow, lease: Lease, report: MailReport) -> None:
        now = self._clock.now()
        settles = row.settles_at(self._settle)
        if settles is not None and settles > now:
            report.waiting.append(f"{row.reference}: in doubt, settled after {settles.isoformat()}")
            return
        if row.attempts and row.next_attempt_at > now:  # a first attempt never waits (--at in the future)
            report.waiting.append(f"{row.reference}: next attempt at {row.next_attempt_at.isoformat()}")
            return
        fence = Fence(lease.name, lease.token)
        with self._uow.writing() as connection:
            if not store.claim(connection, row, fence, now, self._settle):
                return
        try:
            lease.check()
            mail = row.effect()
            assert isinstance(mail, MailClient)  # the rows read are of MAIL_KINDS only
            if row.state is OutboxState.IN_DOUBT and self._transport.delivered(row.reference):
                self._settle_row(row.id, fence, OutboxState.DONE, None)
                report.found.append(row.reference)
                return
            self._send(row.reference, mail)
        except _Unsent as unsent:
            state = unsent.state
            if state is not OutboxState.FAILED and row.attempts + 1 >= MAX_ATTEMPTS:
                state = OutboxState.FAILED
            self._settle_row(row.id, fence, state, unsent.message, row.attempts + 1)
            (report.failed if state is OutboxState.FAILED else report.waiting).append(
                f"{row.reference}: {unsent.message}"
            )
            log.warning(
                "client mail not sent", reference=row.reference, state=state.value, error=unsent.message
            )
            return
        except ValueError as error:  # a payload that cannot be read: parked, never guessed at
            self._settle_row(row.id, fence, OutboxState.FAILED, f"cannot send this payload: {error}")
            report.failed.append(f"{row.reference}: {error}")
            return
        except LeaseLost:
            return  # the row stays in doubt for the next holder to settle
        self._settle_row(row.id, fence, OutboxState.DONE, None)
        report.sent.append(row.reference)

    def _send(self, reference: str, mail: MailClient) -> None:
        message = self._message(reference, mail)
        try:
            self._transport.send(message, key=reference)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as error:
            raise _Unsent(OutboxState.FAILED, f"the mail server refused it: {error}") from None
        except smtplib.SMTPResponseException as error:
            state = OutboxState.FAILED if error.smtp_code >= 500 else OutboxState.PENDING
            raise _Unsent(state, f"the mail server answered {error.smtp_code}") from None
        except (ConnectionRefusedError, socket.gaierror) as error:
            raise _Unsent(OutboxState.PENDING, f"the mail server was not reached: {error}") from None
        except OSError as error:  # a timeout or a dropped connection: it may have been accepted
            raise _Unsent(OutboxState.IN_DOUBT, f"the mail may have been sent: {error}") from None

    def _message(self, reference: str, mail: MailClient) -> EmailMessage:
        message = EmailMessage()
        message["From"] = mail.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = f"<{safe_key(reference)}@{self._host}>"
        message["Auto-Submitted"] = "auto-generated"
        body = mail.body + "\n"
        message.set_content(body, cte="7bit" if body.isascii() else "8bit")
        if mail.invoice_reference is not None:
            attachment = self._attachments(mail.invoice_reference)
            if attachment is not None:
                name, data = attachment
                message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
        return message

    def _settle_row(
        self, row_id: int, fence: Fence, state: OutboxState, message: str | None, attempts: int = 1
    ) -> None:
        now = self._clock.now()
        later = now + min(BACKOFF_CAP, BACKOFF_BASE * 2 ** min(attempts - 1, 10))
        try:
            with self._uow.writing() as connection:
                if state is OutboxState.DONE:
                    store.mark_done(connection, row_id, None, now, fence=fence)
                elif state is OutboxState.FAILED:
                    store.mark_failed(connection, row_id, message or "", now, fence=fence)
                else:
                    store.mark_unsettled(connection, row_id, state, message or "", now, later, fence=fence)
        except FencedOut:
            log.warning("mail row left for the next holder of the lease", row=row_id)


def invoice_pdf(render: Callable[[str], tuple[str, bytes]]) -> Attachments:
    """``render`` (reference -> file name and PDF) with its failures logged and turned into None."""

    def attachment(reference: str) -> Attachment | None:
        try:
            return render(reference)
        except (BridgeError, OSError) as error:
            log.warning("invoice PDF not attached", invoice=reference, error=str(error))
            return None

    return attachment


__all__ = ["MailDelivery", "MailReport", "invoice_pdf"]
