"""What comes back from WHMCS: which pushed invoices were paid, and which clients have an agreement.

Paid invoices: with external billing WHMCS collects the money, so the bridge reads each pushed, still open
invoice (GetInvoice) and marks the ones WHMCS reports ``Paid`` as paid in the bridge, with when and how
much ("mark invoiced periods as paid when using external billing").

Agreements: a client has one when WHMCS holds a pay method with a remote token (a card or billing
agreement stored at the gateway) from one of ``whmcs.agreement_gateways`` (any gateway when empty). The
flag and when it last changed are kept in ``client_agreements`` for the credit engine. A lookup that fails
is not "no agreement": the last known status is kept and the failure reported.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.errors import VendorAccessDenied, VendorError
from bridge.logs import get_logger
from bridge.services.ports import BilledInvoice, BillingSystem
from bridge.store import whmcs as remote
from bridge.store.unit_of_work import UnitOfWork
from bridge.store.whmcs import Agreement, PushedInvoice

log = get_logger(__name__)

ZERO = Decimal(0)


@dataclass(frozen=True)
class PaymentsReport:
    """One payments sync: invoices read and those found paid (by reference), WHMCS invoices gone missing,
    agreements read and the clients whose agreement changed, and every lookup that failed."""

    invoices_checked: int = 0
    paid: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    agreements_checked: int = 0
    agreements_changed: tuple[int, ...] = ()
    errors: tuple[str, ...] = field(default_factory=tuple)


class PaymentsSync:
    """Reads payments and agreements back from WHMCS; ``client_factory`` gives the billing system to use."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        *,
        zone: ZoneInfo,
        agreement_gateways: Collection[str],
        client_factory: Callable[[], BillingSystem],
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._zone = zone
        self._gateways = tuple(agreement_gateways)
        self._factory = client_factory

    def agreement(self, client_id: int) -> Agreement | None:
        """The client's last known agreement status, or None if it was never read."""
        with self._uow.reading() as connection:
            return remote.agreement(connection, client_id)

    def run(self, checkpoint: Callable[[], None] = lambda: None) -> PaymentsReport:
        """Both reads. An authentication refusal stops the run (raised); any other failure of one lookup
        is reported and the run goes on with the next."""
        with closing(self._factory()) as whmcs:
            checked, paid, missing, errors = self._payments(whmcs, checkpoint)
            agreements, changed, agreement_errors = self._agreements(whmcs, checkpoint)
        report = PaymentsReport(
            invoices_checked=checked,
            paid=tuple(paid),
            missing=tuple(missing),
            agreements_checked=agreements,
            agreements_changed=tuple(changed),
            errors=tuple(errors + agreement_errors),
        )
        log.info(
            "payments sync finished",
            invoices_checked=checked,
            paid=len(paid),
            missing=len(missing),
            agreements_checked=agreements,
            agreements_changed=len(changed),
            errors=len(report.errors),
        )
        return report

    # -- invoices --------------------------------------------------------------------------------------

    def _payments(
        self, whmcs: BillingSystem, checkpoint: Callable[[], None]
    ) -> tuple[int, list[str], list[str], list[str]]:
        with self._uow.reading() as connection:
            pushed = remote.open_pushed_invoices(connection)
        paid: list[str] = []
        missing: list[str] = []
        errors: list[str] = []
        for invoice in pushed:
            checkpoint()
            try:
                found = whmcs.get_invoice(invoice.remote_id)
            except VendorAccessDenied:
                raise
            except VendorError as error:
                errors.append(f"invoice {invoice.reference} (WHMCS {invoice.remote_id}): {error}")
                continue
            if found is None:
                missing.append(invoice.reference)
                log.warning(
                    "pushed invoice not in WHMCS", reference=invoice.reference, remote=invoice.remote_id
                )
                continue
            if found.status == "Paid" and self._record_paid(invoice, found):
                paid.append(invoice.reference)
        return len(pushed), paid, missing, errors

    def _record_paid(self, invoice: PushedInvoice, found: BilledInvoice) -> bool:
        paid_at = self._instant(found.date_paid) if found.date_paid else self._clock.now()
        with self._uow.writing() as connection:
            marked = remote.mark_invoice_paid(connection, invoice.id, paid_at, paid_amount(found, invoice))
        if marked:
            log.info("invoice paid in WHMCS", reference=invoice.reference, paid_at=paid_at.isoformat())
        return marked

    def _instant(self, wall_time: datetime) -> datetime:
        """WHMCS's naive wall time, read in billing.timezone (WHMCS should run in the same zone)."""
        return wall_time.replace(tzinfo=self._zone)

    # -- agreements ------------------------------------------------------------------------------------

    def _agreements(
        self, whmcs: BillingSystem, checkpoint: Callable[[], None]
    ) -> tuple[int, list[int], list[str]]:
        gateways = self._gateways
        with self._uow.reading() as connection:
            linked = remote.linked_clients(connection)
        changed: list[int] = []
        errors: list[str] = []
        checked = 0
        for client_id, whmcs_id in linked:
            checkpoint()
            try:
                has = whmcs.has_agreement(whmcs_id, gateways)
            except VendorAccessDenied:
                raise
            except VendorError as error:
                errors.append(
                    f"agreement of client {client_id} (WHMCS {whmcs_id}), last status kept: {error}"
                )
                continue
            checked += 1
            with self._uow.writing() as connection:
                if remote.record_agreement(connection, client_id, has, self._clock.now()):
                    changed.append(client_id)
                    log.info("agreement changed", client=client_id, has_agreement=has)
        return checked, changed, errors


def paid_amount(found: BilledInvoice, invoice: PushedInvoice) -> Decimal:
    """What settled the invoice: payments less refunds on it, plus credit applied; the bridge's total when
    WHMCS records neither (an admin marked it paid by hand)."""
    settled = sum((t.amount_in - t.amount_out for t in found.transactions), ZERO) + found.credit
    return settled if settled > 0 else invoice.total
