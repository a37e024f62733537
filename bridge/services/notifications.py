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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bridge.clock import Clock
from bridge.domain.clients import Client
from bridge.domain.effects import MailClient, SendEmail
from bridge.domain.notifications import InvoiceIssued, Notice
from bridge.services.ports import NoticeTexts
from bridge.store import credit as store
from bridge.store.outbox import Intent, enqueue_effects
from bridge.store.unit_of_work import Tx, UnitOfWork

SUBJECT_MAX = 255
"""What ``client_notifications.subject`` keeps."""


def notification_address(client: Client) -> str:
    """Where a client's notifications go: its email."""
    return client.email


@dataclass(frozen=True)
class Notification:
    """A notice to tell a client, once under ``reference``."""

    client: Client
    notice: Notice
    reference: str


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
        return bool(self.notify_many(tx, [Notification(client, notice, reference)], at))

    def notify_many(self, tx: Tx, notifications: Sequence[Notification], at: datetime) -> set[str]:
        """:meth:`notify` for many notifications in a few statements whatever their number (month end's
        invoice mails, a chunk at a time); returns the references written now."""
        rows: list[store.NotificationRow] = []
        intents: dict[str, Intent] = {}
        for item in notifications:
            row, intent = self._decided(item)
            rows.append(row)
            intents.setdefault(item.reference, intent)
        recorded = store.record_notifications(tx, rows, now=at)
        enqueue_effects(
            tx, [intent for reference, intent in intents.items() if reference in recorded], now=at
        )
        return recorded

    def _decided(self, item: Notification) -> tuple[store.NotificationRow, Intent]:
        """The notification's record and its outbox intent, its text rendered now."""
        client, notice = item.client, item.notice
        text = self._texts.render(notice, client)
        attachment = notice.invoice_reference if isinstance(notice, InvoiceIssued) else None
        through_whmcs = self._whmcs_enabled and attachment is None
        row = store.NotificationRow(
            client.id,
            item.reference,
            notice.event.value,
            text.subject[:SUBJECT_MAX],
            text.body,
            "whmcs" if through_whmcs else "mail",
        )
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
        return row, Intent(client.id, item.reference, effect)

    def notify_client(self, client: Client, notice: Notice, reference: str) -> bool:
        """:meth:`notify` in a transaction of its own, now (a staff action such as ``client suspend``)."""
        with self._uow.writing() as tx:
            return self.notify(tx, client, notice, reference, self._clock.now())
