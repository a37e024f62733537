"""Every ``BB-…`` reference the bridge writes, built in one place.

A reference is how the bridge recognises its own work again: the store keeps each unique (an invoice, a
ledger row, an outbox row), and WHMCS keeps it in a text field it gives back (invoice notes, a credit's
description), so a re-run, a second daemon or a settlement after a lost answer finds what was made and
makes nothing twice. Each is therefore a pure function of what it is about (client, cycle, period, day,
moment), never of a counter or the clock's reading. Changing one of these formats changes which records
the bridge recognises: a re-run after such a change would bill again.
"""

from __future__ import annotations

import re
from datetime import date, datetime

PREFIX = "BB"
PAID_PREFIX = f"{PREFIX}-PAID-"
"""A ledger row recording the payment of an invoice: ``BB-PAID-<invoice reference>``."""
SETTLED_PREFIX = f"{PREFIX}-SETTLED-"
"""A ledger row settling an invoice's usage from credit: ``BB-SETTLED-<invoice reference>``."""

_REPLACEMENT = re.compile(r"-R(\d+)$")


# -- invoices ---------------------------------------------------------------------------------------------


def usage_invoice(client_id: int | str, cycle_label: str) -> str:
    """A client's usage invoice for a billing cycle: ``BB-42-2022-10``, ``BB-42-2024-01-31``."""
    return f"{PREFIX}-{client_id}-{cycle_label}"


def cycle_label_of(reference: str, client_id: int | str) -> str:
    """The cycle label a usage invoice's reference carries (``BB-42-2022-10`` -> ``2022-10``)."""
    return reference.removeprefix(f"{PREFIX}-{client_id}-")


def recurring_invoice(client_id: int | str, period_id: int, recharged_on: date) -> str:
    """A billing period's recurring-charges invoice (seed 004): ``BB-42-P7-2022-11-01``."""
    return f"{PREFIX}-{client_id}-P{period_id}-{recharged_on.isoformat()}"


def auto_invoice(client_id: int | str, at: datetime) -> str:
    """A credit auto-invoice (seed 000), one per client and minute: ``BB-42-AUTO-20221101T0000``."""
    return f"{PREFIX}-{client_id}-AUTO-{at:%Y%m%dT%H%M}"


def credit_invoice(client_id: int | str, given: str) -> str:
    """An add-credit invoice staff issued under their reference ``given``: ``BB-42-CREDIT-order-7``."""
    return f"{PREFIX}-{client_id}-CREDIT-{given}"


def replacement_base(reference: str) -> str:
    """The invoice a chain of replacements started from: ``BB-1-2022-10-R2`` -> ``BB-1-2022-10``."""
    return _REPLACEMENT.sub("", reference)


def replacement_prefix(reference: str) -> str:
    """What every replacement of ``reference`` starts with (``BB-1-2022-10-R``), to look them up."""
    return f"{replacement_base(reference)}-R"


def replacement_invoice(reference: str, taken: list[str] | tuple[str, ...]) -> str:
    """The next replacement of ``reference`` (issue 8): ``BB-1-2022-10`` -> ``BB-1-2022-10-R1``; the next
    ``-R<n>`` after the replacements in ``taken`` (references found starting with the prefix)."""
    base = replacement_base(reference)
    numbers = [
        int(match.group(1)) for found in taken if (match := re.fullmatch(re.escape(base) + r"-R(\d+)", found))
    ]
    return f"{base}-R{max(numbers, default=0) + 1}"


def invoice_cancellation(invoice_reference: str) -> str:
    """The outbox row that cancels a replaced invoice in WHMCS: ``BB-1-2022-10-cancel``."""
    return f"{invoice_reference}-cancel"


# -- the ledger -------------------------------------------------------------------------------------------


def payment(client_id: int | str, given: str) -> str:
    """A payment the operator records with its own reference (the gateway's id): ``BB-PAYMENT-42-tx9``."""
    return f"{PREFIX}-PAYMENT-{client_id}-{given}"


def initial_credit(client_id: int | str) -> str:
    """The credit a client gets once, at sign-up."""
    return f"{PREFIX}-INITIAL-{client_id}"


def whmcs_credit(ledger_reference: str) -> str:
    """The add_credit row that brings a credit recorded in the bridge to WHMCS, once per ledger row:
    ``BB-PAYMENT-42-tx9-WHMCS``."""
    return f"{ledger_reference}-WHMCS"


def invoice_paid(invoice_reference: str) -> str:
    """The ledger row of an invoice's payment (no money in when credit paid it)."""
    return f"{PAID_PREFIX}{invoice_reference}"


def invoice_settled(invoice_reference: str) -> str:
    """The ledger row that settles an invoice's usage."""
    return f"{SETTLED_PREFIX}{invoice_reference}"


# -- notifications and outbox rows ------------------------------------------------------------------------


def credit_notification(client_id: int | str, threshold_hours: int, at: datetime) -> str:
    """A "credit runs out in N hours" notification, once per threshold and minute."""
    return f"{PREFIX}-NOTIFY-{client_id}-{threshold_hours}h-{at:%Y%m%dT%H%M}"


def notification(client_id: int | str, event: str, about: str) -> str:
    """A client notification other than a credit threshold, once per event and what it is about (an
    invoice reference, a suspension's moment): ``BB-NOTIFY-42-suspended-20260303T0600``."""
    return f"{PREFIX}-NOTIFY-{client_id}-{event}-{about}"


def whmcs_payment(invoice_reference: str) -> str:
    """The add_payment row that brings a payment recorded in the bridge to the invoice WHMCS holds, once
    per invoice (it is WHMCS's ``transid`` too): ``BB-PAID-BB-42-2022-10-WHMCS``."""
    return f"{invoice_paid(invoice_reference)}-WHMCS"


def whmcs_client(client_id: int | str) -> str:
    """The add_client row: one WHMCS client per bridge client, ever."""
    return f"{PREFIX}-CLIENT-{client_id}"


def whmcs_client_update(client_id: int | str, number: int) -> str:
    """The ``number``-th update_client row of a client (so changing a name back and forth sends each)."""
    return f"{whmcs_client(client_id)}-UPDATE-{number}"


def server_action(kind: str, client_id: int | str, source: str, resource_id: str, since: datetime) -> str:
    """A cloud action (``suspend_server``, ...) on one resource, for the suspension that began at ``since``
    (a resume or termination names the suspension it ends): ``BB-SUSPEND_SERVER-42-openstack-vm1-…``."""
    return f"{PREFIX}-{kind.upper()}-{client_id}-{source}-{resource_id}-{since:%Y%m%dT%H%M%S}"
