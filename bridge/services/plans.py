"""Assigning pricing plans and adding discounts, and recalculating the invoices they reach (seed 003).

What "the open invoice" means here. The bridge bills post-pay: a period's usage invoice is issued after the
period ends (bridge/services/invoicing.py), so the current period has no invoice in the store yet. Its
*open invoice* is the invoice that period's usage so far would make; a plan or discount given with
``--start current-period`` replaces it in the sense that the invoice, when issued, is computed with the new
terms from the period's start (``--dry-run`` shows it before and after). ``--start previous-period``
reaches the invoice already issued for the previous period, allowed only while it is in its grace period
(``billing.grace_period_days`` after the period ended): that invoice, being issued and immutable, is never
edited. It is cancelled and replaced by a new invoice computed from all the period's usage with the new
terms, under the next reference (``BB-<client>-<label>-R1``, ``-R2``, ...), with a new number and
``replaces_id`` pointing at the old one; late usage of earlier periods it carried is carried over
unchanged. A paid invoice, or one whose period's late usage was billed on a later invoice, is refused.
Any other start applies from that moment on, splitting the period it falls in (bridge/domain/terms.py).

WHMCS. When the replaced invoice went to WHMCS, the replacement goes through the outbox in the same
transaction: if the old invoice's create_invoice row is still pending (never sent, so WHMCS holds nothing
to edit) it is withdrawn; otherwise a ``cancel_invoice`` row (reference ``<old reference>-cancel``) cancels
it in WHMCS, after looking it up by reference. Then a create_invoice row issues the replacement. Drafts
never stand in WHMCS (the create_invoice effect publishes its draft at once), so "edit a draft" is the
withdrawn row; everything sent is cancelled and re-issued, each exactly once through the outbox.

A recalculation that would change nothing (the same terms given again, or an invoice that already has
them) changes nothing, so re-running a command is harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.clients import OWNER_LINK_KIND, Client
from bridge.domain.configuration import Configuration
from bridge.domain.cycles import BillingCycle, current_and_previous
from bridge.domain.effects import CancelInvoice
from bridge.domain.invoicing import (
    DraftResult,
    InvoiceDraft,
    carried_line,
    client_items,
    draft_with_terms,
    usage_lines,
)
from bridge.domain.money import parse_money
from bridge.domain.pricing import PriceBook
from bridge.domain.references import invoice_cancellation, replacement_invoice, replacement_prefix
from bridge.domain.terms import (
    DEFAULT_PLAN,
    DISCOUNT_SOURCES,
    ClientTerms,
    Discount,
    PlanAssignment,
    PriceSchedule,
    ResolvedStart,
    resolve_start,
)
from bridge.domain.usage import UsageRecord
from bridge.errors import InputError
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.services.cycles import invoiced_spans, read_schedules
from bridge.services.invoicing import InvoicingService
from bridge.services.issuing import NewInvoice, issue
from bridge.services.notifications import ClientNotifier
from bridge.settings import Configurations, PlanSettings, PricingSettings
from bridge.store import invoices as invoice_store
from bridge.store import plans as store
from bridge.store import usage as usage_store
from bridge.store.invoices import StoredInvoice
from bridge.store.outbox import enqueue_effect
from bridge.store.unit_of_work import Tx, UnitOfWork

log = get_logger(__name__)

InvoiceState = Literal["open", "issued", "not issued"]
Books = dict[str, PriceBook]


@dataclass(frozen=True)
class LineView:
    """One invoice line as the client reads it."""

    reference: str
    description: str
    amount: Decimal


@dataclass(frozen=True)
class InvoiceChange:
    """One invoice before and after the new terms.

    ``state``: ``open`` (the current period, not issued yet), ``issued`` (the previous period's invoice),
    ``not issued`` (the previous period has no invoice yet: it will be issued with the new terms).
    ``action`` says what was (or, on a dry run, would be) done; ``replacement`` is the new invoice's
    reference when the issued one is replaced. ``problems`` lists usage that could not be priced.
    """

    period: str
    state: InvoiceState
    currency: str
    old_total: Decimal
    new_total: Decimal
    old_lines: tuple[LineView, ...]
    new_lines: tuple[LineView, ...]
    action: str
    reference: str | None = None
    replacement: str | None = None
    replacement_number: str | None = None
    problems: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        return self.new_total - self.old_total


@dataclass(frozen=True)
class Recalculation:
    """What a plan assignment or discount did: whether the terms changed, and each invoice it reaches."""

    client: Client
    change: str
    start: ResolvedStart
    recorded: bool
    dry_run: bool
    invoices: tuple[InvoiceChange, ...]


@dataclass(frozen=True)
class PlanView:
    name: str
    description: str
    flavors: dict[str, Decimal]
    token_price: Decimal | None
    fees: dict[str, Decimal]


class PlansService:
    """Plan assignments and discounts, and the recalculation of the invoices they reach (module docstring).

    Each change runs in one transaction with the client's row locked, so a recalculation and its outbox
    rows are written together or not at all, and ``--dry-run`` is the same work rolled back.
    """

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        clients: ClientService,
        invoicing: InvoicingService,
        *,
        configurations: Configurations,
        pricing: PricingSettings,
        plans: Mapping[str, PlanSettings],
        zone: ZoneInfo,
        grace_period_days: int,
        notifier: ClientNotifier | None = None,
    ) -> None:
        self._uow = uow
        self._notifier = notifier
        self._clock = clock
        self._clients = clients
        self._invoicing = invoicing
        self._configurations = configurations
        self._pricing = pricing
        self._plans = plans
        self._zone = zone
        self._grace_period_days = grace_period_days

    # -- reading ---------------------------------------------------------------------------------------

    def plans(self) -> list[PlanView]:
        """The default plan ([pricing]) and every ``[plans.<name>]``, by name after the default."""
        pricing = self._pricing
        found = [
            PlanView(DEFAULT_PLAN, "the [pricing] price book", dict(pricing.flavors), pricing.token_price, {})
        ]
        for name, plan in sorted(self._plans.items()):
            found.append(
                PlanView(name, plan.description, dict(plan.flavors), plan.token_price, dict(plan.fees))
            )
        return found

    def terms(self, client_ref: str) -> tuple[Client, ClientTerms]:
        client = self._clients.get(client_ref)
        with self._uow.reading() as connection:
            return client, store.terms_of_client(connection, client.id)

    # -- changing ----------------------------------------------------------------------------------------

    def assign(self, client_ref: str, plan: str, start: str, *, dry_run: bool = False) -> Recalculation:
        """Put the client on ``plan`` from ``start`` and recalculate the invoices that reaches."""
        plan = plan.strip()
        if plan != DEFAULT_PLAN and plan not in self._plans:
            known = ", ".join([DEFAULT_PLAN, *sorted(self._plans)])
            raise InputError(
                f"plan {plan!r} is not defined; use one of: {known} (add a [plans.{plan}] table to define it)"
            )
        client = self._clients.get(client_ref)

        def record(connection: Tx, at: datetime) -> None:
            store.insert_assignment(connection, client.id, PlanAssignment(plan, at), self._clock.now())

        return self._change(
            client,
            f"plan {plan}",
            start,
            lambda terms, at: terms.with_assignment(plan, at),
            record,
            dry_run=dry_run,
        )

    def add_discount(
        self,
        client_ref: str,
        *,
        percent: str | None,
        amount: str | None,
        start: str,
        end: datetime | None = None,
        source: str | None = None,
        resource_kind: str | None = None,
        dry_run: bool = False,
    ) -> Recalculation:
        """Give the client a discount from ``start`` and recalculate the invoices that reaches."""
        if (percent is None) == (amount is None):
            raise InputError(
                "give exactly one of --percent (e.g. --percent 10) or --amount (e.g. --amount 5.00)"
            )
        option, text = ("--percent", percent) if percent is not None else ("--amount", amount)
        assert text is not None
        try:
            value = parse_money(text)
        except ValueError as error:
            raise InputError(f"{option}: {error}") from None
        kind: Literal["percentage", "fixed"] = "percentage" if percent is not None else "fixed"
        if kind == "percentage" and not Decimal(0) < value <= Decimal(100):
            raise InputError(
                f"--percent {text} is not a percentage above 0 and at most 100; e.g. --percent 10"
            )
        if kind == "fixed" and value <= 0:
            raise InputError(f"--amount {text} is not an amount above 0; e.g. --amount 5.00")
        if source is not None and source not in DISCOUNT_SOURCES:
            raise InputError(f"--source {source!r} is unknown; use one of {', '.join(DISCOUNT_SOURCES)}")
        if resource_kind is not None and not resource_kind.strip():
            raise InputError(
                "--resource-kind is empty; give a flavor, a SolusVM plan id or a subscription name"
            )
        resource_kind = resource_kind.strip() if resource_kind is not None else None
        client = self._clients.get(client_ref)
        label = Discount(kind, value, self._clock.now(), None, source, resource_kind).label

        def discount_from(at: datetime) -> Discount:
            if end is not None and end <= at:
                raise InputError(
                    f"--end {end.isoformat()} is not after the start {at.isoformat()}; "
                    "give a later end or none"
                )
            return Discount(kind, value, at, end, source, resource_kind)

        def record(connection: Tx, at: datetime) -> None:
            store.insert_discount(connection, client.id, discount_from(at), self._clock.now())

        return self._change(
            client,
            f"discount {label}",
            start,
            lambda terms, at: terms.with_discount(discount_from(at)),
            record,
            dry_run=dry_run,
        )

    def _change(
        self,
        client: Client,
        change: str,
        start_text: str,
        terms_after: Callable[[ClientTerms, datetime], ClientTerms],
        record: Callable[[Tx, datetime], None],
        *,
        dry_run: bool,
    ) -> Recalculation:
        now = self._clock.now()
        config = self._configurations.of(client.configuration)
        current, previous = self._cycles(client, now)
        try:
            start = resolve_start(start_text, now, current, self._grace_period_days, previous=previous)
        except ValueError as error:
            raise InputError(str(error)) from None
        books = self._books(client)  # read before the transaction: it must not open a second connection
        with self._uow.writing(dry_run=dry_run) as connection:
            store.lock_client(connection, client.id)
            old = store.terms_of_client(connection, client.id)
            new = terms_after(old, start.at)
            recorded = new != old
            if recorded:
                record(connection, start.at)
            invoices: list[InvoiceChange] = []
            if start.reaches_previous:
                invoices.append(
                    self._issued(connection, client, config, books, start.previous, old, new, dry_run)
                )
            invoices.append(self._open(connection, client, config, books, current, old, new))
        if recorded and not dry_run:
            log.info("client terms changed", client=client.id, change=change, start=start.at.isoformat())
        return Recalculation(client, change, start, recorded, dry_run, tuple(invoices))

    def _cycles(self, client: Client, now: datetime) -> tuple[BillingCycle, BillingCycle]:
        """The client's current cycle and the one before it, on its timeline (bridge/services/cycles.py)."""
        with self._uow.reading() as connection:
            schedules = read_schedules(connection, [client], self._configurations, self._zone, now=now)
            invoiced = invoice_store.usage_invoices_of_clients(connection, [client.id]).get(client.id, [])
        return current_and_previous(schedules[client.id].schedule, invoiced_spans(invoiced), now)

    # -- the invoices a change reaches -------------------------------------------------------------------

    def _open(
        self,
        connection: Tx,
        client: Client,
        config: Configuration,
        books: Books,
        cycle: BillingCycle,
        old: ClientTerms,
        new: ClientTerms,
    ) -> InvoiceChange:
        """The current period's open invoice: its usage so far, under the old terms and the new."""
        records = self._records(connection, client, cycle.start, min(cycle.end, self._clock.now()))
        changed = "computed with the new terms when issued"
        return self._compared(client, config, books, cycle, records, (old, new), "open", changed)

    def _compared(
        self,
        client: Client,
        config: Configuration,
        books: Books,
        cycle: BillingCycle,
        records: Sequence[UsageRecord],
        terms: tuple[ClientTerms, ClientTerms],
        state: InvoiceState,
        changed: str,
    ) -> InvoiceChange:
        """An invoice not issued yet, drafted under the old ``terms`` and the new: ``changed`` is what
        happens to it when their lines differ."""
        before = self._draft(client, config, books, cycle, records, terms[0])
        after = self._draft(client, config, books, cycle, records, terms[1])
        old_lines, new_lines = _views(before.draft.lines), _views(after.draft.lines)
        return InvoiceChange(
            period=cycle.label,
            state=state,
            currency=client.currency,
            old_total=before.draft.total,
            new_total=after.draft.total,
            old_lines=old_lines,
            new_lines=new_lines,
            action="unchanged" if old_lines == new_lines else changed,
            problems=_problems(after),
        )

    def _issued(
        self,
        connection: Tx,
        client: Client,
        config: Configuration,
        books: Books,
        cycle: BillingCycle,
        old: ClientTerms,
        new: ClientTerms,
        dry_run: bool,
    ) -> InvoiceChange:
        """The previous period's invoice, in its grace period: replaced if the new terms change it."""
        records = self._records(connection, client, cycle.start, cycle.end)
        standing = store.standing_usage_invoice(connection, client.id, cycle.start)
        if standing is None:
            changed = "issued with the new terms"
            return self._compared(client, config, books, cycle, records, (old, new), "not issued", changed)
        self._require_replaceable(connection, client, cycle, standing)
        result = self._draft(client, config, books, cycle, records, new)
        if result.held:
            reasons = "; ".join(_problems(result))
            raise InputError(
                f"the recalculated invoice of {cycle.label} cannot be priced ({reasons}); fix the settings "
                "and try again. Nothing was changed"
            )
        carried = [carried_line(line, client.currency, cycle.zone) for line in standing.lines if line.late]
        draft = InvoiceDraft(str(client.id), client.currency, cycle, (*result.draft.lines, *carried))
        old_lines = tuple(
            LineView(line.line_reference, line.description, line.amount) for line in standing.lines
        )
        new_lines = _views(draft.lines)
        change = InvoiceChange(
            period=cycle.label,
            state="issued",
            currency=client.currency,
            old_total=standing.net_total,
            new_total=draft.total,
            old_lines=old_lines,
            new_lines=new_lines,
            action="unchanged",
            reference=standing.reference,
        )
        if _same(old_lines, new_lines):
            return change
        taken = store.references_starting(connection, replacement_prefix(standing.reference))
        reference = replacement_invoice(standing.reference, taken)
        if dry_run:
            return _with(change, action="would be cancelled and replaced", replacement=reference)
        number = self._replace(connection, client, config, standing, draft, reference)
        return _with(
            change, action="cancelled and replaced", replacement=reference, replacement_number=number
        )

    def _require_replaceable(
        self, connection: Tx, client: Client, cycle: BillingCycle, standing: StoredInvoice
    ) -> None:
        if standing.status == "paid":
            raise InputError(
                f"invoice {standing.display_number} of {cycle.label} is paid, so it is not recalculated; "
                "give the plan or discount with --start current-period (or credit the client). "
                "Nothing was changed"
            )
        later = store.late_lines_elsewhere(connection, client.id, cycle.start, standing.id)
        if later:
            raise InputError(
                f"late usage of {cycle.label} was billed on {', '.join(later)} already, so "
                f"{standing.reference} cannot be recalculated alone; use --start current-period. "
                "Nothing was changed"
            )

    def _replace(
        self,
        connection: Tx,
        client: Client,
        config: Configuration,
        standing: StoredInvoice,
        draft: InvoiceDraft,
        reference: str,
    ) -> str | None:
        """Cancel ``standing`` and issue ``draft`` in its place as ``reference``; its number, if any."""
        now = self._clock.now()
        invoice_store.set_status(connection, standing.id, status="cancelled")
        replacement = NewInvoice(
            client=client,
            reference=reference,
            kind="usage",
            period=(draft.cycle.start, draft.cycle.end),
            issuer=standing.issuer,
            issued_at=now,
            lines=usage_lines(draft),
            total=draft.total,
            items=client_items(draft, config.invoice_detail),
            notes=f"{reference}: usage {draft.cycle.label} (recalculated)",
            replaces_id=standing.id,
        )
        issued = issue(
            connection,
            replacement,
            config,
            self._zone,
            now=now,
            before_push=lambda: self._cancel_in_whmcs(connection, client, standing, now),
            notifier=self._notifier,
        )
        log.info(
            "invoice replaced",
            client=client.id,
            replaced=standing.reference,
            replacement=reference,
            old_total=str(standing.net_total),
            new_total=str(draft.total),
        )
        return issued.shown_number

    def _cancel_in_whmcs(
        self, connection: Tx, client: Client, standing: StoredInvoice, now: datetime
    ) -> None:
        """Withdraw the old invoice's push if it never went out; otherwise cancel it in WHMCS (outbox)."""
        if store.withdraw_unsent_push(connection, standing.reference, now):
            return
        enqueue_effect(
            connection,
            client_id=client.id,
            reference=invoice_cancellation(standing.reference),
            effect=CancelInvoice(standing.reference, standing.remote_id),
            now=now,
        )

    # -- helpers -----------------------------------------------------------------------------------------

    def _books(self, client: Client) -> Books:
        """The price book of the default plan and of every configured plan, for the client's configuration."""
        book_of = functools.partial(self._invoicing.price_book, client.configuration)
        return {plan: book_of(plan) for plan in [DEFAULT_PLAN, *self._plans]}

    def _draft(
        self,
        client: Client,
        config: Configuration,
        books: Books,
        cycle: BillingCycle,
        records: Sequence[UsageRecord],
        terms: ClientTerms,
    ) -> DraftResult:
        def book_of(plan: str) -> PriceBook:
            if plan not in books:
                raise ValueError(
                    f"pricing plan {plan!r} is not in the settings; add [plans.{plan}] back or assign the "
                    "client another plan"
                )
            return books[plan]

        try:
            schedule = PriceSchedule.build(terms, book_of)
            return draft_with_terms(
                str(client.id),
                client.currency,
                cycle,
                records,
                schedule,
                billable_seconds_per_month=config.billable_seconds_per_month or None,
            )
        except ValueError as error:
            raise InputError(f"client {client.id} cannot be priced: {error}") from None

    def _records(self, connection: Tx, client: Client, start: datetime, end: datetime) -> list[UsageRecord]:
        owners = [
            (source, owner) for source, kind in OWNER_LINK_KIND.items() for owner in client.external_ids(kind)
        ]
        if end <= start:
            return []
        return [
            row.record
            for row in usage_store.usage_of_owners(connection, owners, start, end)
            if row.window_end <= end
        ]


def _views(lines: Sequence[Any]) -> tuple[LineView, ...]:
    return tuple(LineView(line.reference, line.description(), line.amount) for line in lines)


def _same(old: Sequence[LineView], new: Sequence[LineView]) -> bool:
    def key(view: LineView) -> tuple[str, str, Decimal]:
        return (view.reference, view.description, view.amount.normalize())

    return sorted(map(key, old)) == sorted(map(key, new))


def _problems(result: DraftResult) -> tuple[str, ...]:
    return tuple(
        f"{error.source} {error.resource_name} ({error.resource_id}): {error.reason}"
        for error in result.errors
    )


def _with(change: InvoiceChange, **values: Any) -> InvoiceChange:
    return replace(change, **values)
