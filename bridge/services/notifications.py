"""Telling a client: every client notification goes through :class:`ClientNotifier`, as an outbox row.

A notification is decided in the transaction of what it is about (a crossed credit threshold, a
suspension, an issued invoice) and written there as an outbox row under a deterministic reference, so a
re-run, a crash or a retry never sends it twice and never loses it:

* when WHMCS is the billing system (``whmcs.enabled``), it is a ``send_email`` row, sent with WHMCS's
  ``SendEmail`` by the push (bridge/sync/push.py; WHMCS keeps no record of a mail, so a call whose
  answer was lost is not repeated);
* otherwise, and for a mail with an attachment (an invoice's PDF: ``SendEmail`` cannot attach one), it is
  a ``mail_client`` row, sent by the bridge's own transport (bridge/sync/mail_delivery.py: SMTP, or a file
  under ``<state_dir>/mail``).

Each notification is also kept in ``client_notifications`` (what the client was told, and by which
channel). The text is rendered when it is decided (the ``NoticeTexts`` port), so the outbox row shows
exactly what goes out.
"""

from __future__ import annotations

from datetime import datetime

from bridge.clock import Clock
from bridge.domain.clients import Client
from bridge.domain.effects import MailClient, SendEmail
from bridge.domain.notifications import InvoiceIssued, Notice
from bridge.services.ports import NoticeTexts
from bridge.store import credit as store
from bridge.store.outbox import enqueue_effect
from bridge.store.unit_of_work import Tx, UnitOfWork

SUBJECT_MAX = 255
"""What ``client_notifications.subject`` keeps."""


def notification_address(client: Client) -> str:
    """Where a client's notifications go: its email."""
    return client.email


class ClientNotifier:
    """Writes client notifications to the outbox (see the module docstring)."""

    def __init__(self, uow: UnitOfWork, clock: Clock, texts: NoticeTexts, *, whmcs_enabled: bool) -> None:
        self._uow = uow
        self._clock = clock
        self._texts = texts
        self._whmcs_enabled = whmcs_enabled

    def notify(self, tx: Tx, client: Client, notice: Notice, reference: str, at: datetime) -> bool:
        """Write ``notice`` for ``client`` under ``reference`` in the caller's transaction; False (and
        nothing written) when that reference was written before."""
        text = self._texts.render(notice, client)
        attachment = notice.invoice_reference if isinstance(notice, InvoiceIssued) else None
        through_whmcs = self._whmcs_enabled and attachment is None
        recorded = store.record_notification(
            tx,
            client_id=client.id,
            reference=reference,
            kind=notice.event.value,
            subject=text.subject[:SUBJECT_MAX],
            body=text.body,
            channel="whmcs" if through_whmcs else "mail",
            now=at,
        )
        if not recorded:
            return False
        effect: SendEmail | MailClient
        if through_whmcs:
            effect = SendEmail(text.subject, text.body)
        else:
            effect = MailClient(
                notice.event.value,
                notification_address(client),
                text.sender,
                text.subject,
                text.body,
                attachment,
            )
        enqueue_effect(tx, client_id=client.id, reference=reference, effect=effect, now=at)
        return True

    def notify_client(self, client: Client, notice: Notice, reference: str) -> bool:
        """:meth:`notify` in a transaction of its own, now (a staff action such as ``client suspend``)."""
        with self._uow.writing() as tx:
            return self.notify(tx, client, notice, reference, self._clock.now())
