"""Post-pay invoicing: every client's ended billing cycles become invoices, each exactly once.

A run for an invoice date (the daemon's daily ``invoicing`` job, or ``billing-bridge invoice --date``)
invoices, per client, the last billing cycle that ended by that date: for calendar months and the date
2022-11-01, October 2022. Cycles of the last ``billing.catch_up_cycles`` that have usage but were never
invoiced (a missed run) are invoiced too, each on its own invoice. Usage that arrived after its cycle was
invoiced is billed on the next invoice, on lines marked late with their original period; an issued
invoice is never changed.

Only ended cycles: an invoice is dated its run's invoice date (local midnight), and every cycle a run
looks at ends by then, so a run whose invoice date is still to come would issue invoices for cycles that
have not ended (and the rest of such a cycle would later turn into "late usage"). The service refuses
such a run with :class:`CycleNotEnded`, whoever asks (the CLI, the daemon's job, a catch-up of
anniversary cycles); ``dry_run`` may preview it, each such invoice marked ``preview``.

Exactly once: an invoice's reference is derived from client and cycle and is unique in the store, so a
re-run, a second daemon or a catch-up finds it and creates nothing. With ``generate_invoices`` on, the
bridge numbers the invoice itself (gap-free, in the transaction that stores it); off, the same
transaction writes the outbox row that pushes it to WHMCS (both in bridge/services/issuing.py). A chunk
of clients is stored in one transaction, its invoices, lines, numbers, mails and outbox rows each
written in one batch (a few statements per chunk, not per invoice: issue 17).

The money is computed by the pure domain (bridge/domain/invoicing.py); this module only gathers the
inputs, stores the result and reports it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain import references
from bridge.domain.clients import Client
from bridge.domain.configuration import Configuration, InvoicingOption
from bridge.domain.cycles import (
    BillingCycle,
    anniversary_cycle_containing,
    calendar_cycle_containing,
    cycles_ended_by,
    local_midnight,
)
from bridge.domain.invoicing import (
    ALREADY_INVOICED,
    ClientPrices,
    CollectedUsage,
    ExistingInvoice,
    Held,
    InvoicePlan,
    PlannedInvoice,
    Skipped,
    can_become,
    client_items,
    credit_line,
    invoiced_line,
    issuer,
    line_items,
    needs_invoiced_lines,
    plan_invoices,
    usage_lines,
)
from bridge.domain.money import is_rounded
from bridge.domain.pricing import PriceBook, PricedLine
from bridge.domain.suspension import Suspension, billable_part
from bridge.domain.terms import DEFAULT_PLAN, ClientTerms, PriceSchedule
from bridge.errors import InputError
from bridge.logs import get_logger
from bridge.progress import Progress, Tally, no_progress
from bridge.services.chunks import ChunkTaken, SharedRuns, WorkChunk, chunk_lost
from bridge.services.clients import ClientService
from bridge.services.cycles import (
    ClientSchedule,
    invoiced_spans,
    owners_of,
    read_schedules,
    record_observed,
)
from bridge.services.issuing import (
    Issued,
    NewInvoice,
    issue,
    issue_many,
    record_payment,
    set_next_fiscal_number,
)
from bridge.services.notifications import ClientNotifier
from bridge.services.price_books import PriceBooks
from bridge.settings import Configurations
from bridge.store import invoices as store
from bridge.store import plans as plans_store
from bridge.store import suspensions as suspension_store
from bridge.store import usage as usage_store
from bridge.store import usage_rollups as rollups_store
from bridge.store.unit_of_work import Conflict, Tx, UnitOfWork

log = get_logger(__name__)

USAGE = "usage"


IssuedInvoice = PlannedInvoice
"""An invoice this run created (or, with --dry-run, would create): the domain's planned invoice, with the
bridge's numbers once it is stored."""


@dataclass(frozen=True)
class _ClientPlan:
    """One client in a run: its configuration, the (source, owner) accounts it bills, the cycles looked at."""

    client: Client
    config: Configuration
    owners: list[tuple[str, str]]
    cycles: tuple[BillingCycle, ...]


class CycleNotEnded(InputError):
    """A run asked to issue invoices for a billing cycle that has not ended yet."""


class RunListener(Protocol):
    """Hears a run's outcomes as they happen, so a caller can report a month end of any size without the
    run keeping them (``--json`` streams them; the daemon's job keeps only the held ones)."""

    def issued(self, invoice: IssuedInvoice) -> None: ...
    def already_invoiced(self, item: Skipped) -> None: ...
    def held(self, item: Held) -> None: ...
    def skipped(self, item: Skipped) -> None: ...


@dataclass
class RunCounts:
    """What a run did, counted as it goes (also when a listener takes the outcomes themselves)."""

    issued: int = 0
    already_invoiced: int = 0
    held: int = 0
    skipped: int = 0
    totals: dict[str, Decimal] = field(default_factory=dict)
    """The issued invoices' totals per currency."""


@dataclass
class InvoicingRun:
    """A run's outcomes. Without a ``listener`` they are kept in the four lists (a client's run, a dry run
    to look at); with one, each goes to it as it happens and the lists stay empty: memory stays flat in the
    number of clients. ``counts`` is kept either way."""

    invoice_date: date
    dry_run: bool
    issued: list[IssuedInvoice] = field(default_factory=list)
    already_invoiced: list[Skipped] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    next_numbers: dict[str, int] = field(default_factory=dict)
    """A dry run's number sequences as its last chunk left them before rolling back: the next chunk goes on
    from there, so the numbers shown are the ones the real run (committing chunk by chunk) assigns."""
    counts: RunCounts = field(default_factory=RunCounts)
    listener: RunListener | None = None

    def add(self, plan: InvoicePlan) -> None:
        """What one client's plan holds back (its invoices are added once they are stored)."""
        for item in plan.already:
            self.add_already_invoiced(item)
        for held in plan.held:
            self.counts.held += 1
            self.listener.held(held) if self.listener else self.held.append(held)
        for item in plan.skipped:
            self.counts.skipped += 1
            self.listener.skipped(item) if self.listener else self.skipped.append(item)

    def add_already_invoiced(self, item: Skipped) -> None:
        self.counts.already_invoiced += 1
        self.listener.already_invoiced(item) if self.listener else self.already_invoiced.append(item)

    def add_issued(self, invoice: IssuedInvoice) -> None:
        counts, draft = self.counts, invoice.draft
        counts.issued += 1
        counts.totals[draft.currency] = counts.totals.get(draft.currency, Decimal(0)) + draft.total
        self.listener.issued(invoice) if self.listener else self.issued.append(invoice)


class HeldOnly:
    """A :class:`RunListener` that keeps the held invoices only (they fail the daemon's job)."""

    def __init__(self) -> None:
        self.found: list[Held] = []

    def issued(self, invoice: IssuedInvoice) -> None:
        pass

    def already_invoiced(self, item: Skipped) -> None:
        pass

    def held(self, item: Held) -> None:
        self.found.append(item)

    def skipped(self, item: Skipped) -> None:
        pass


class InvoicingService:
    """Invoicing runs and an invoice's life after issue. ``zone`` is the billing time zone, and
    ``catch_up_cycles`` how many ended cycles a run may still invoice (``billing.catch_up_cycles``)."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        clients: ClientService,
        *,
        configurations: Configurations,
        price_books: PriceBooks,
        zone: ZoneInfo,
        catch_up_cycles: int,
        shared: SharedRuns,
        notifier: ClientNotifier | None = None,
    ) -> None:
        self._uow = uow
        self._shared = shared
        self._notifier = notifier
        self._clock = clock
        self._clients = clients
        self._configurations = configurations
        self._price_books = price_books
        self._zone = zone
        self._catch_up_cycles = catch_up_cycles
        self._books = price_books.for_run()

    def run(
        self,
        invoice_date: date,
        *,
        client_ref: str | None = None,
        dry_run: bool = False,
        checkpoint: Callable[[], None] = lambda: None,
        progress: Progress = no_progress,
        listener: RunListener | None = None,
    ) -> InvoicingRun:
        """Invoice every client's ended cycles as of ``invoice_date`` (see the module docstring).

        Clients are taken in chunks: their usage is read in one query and their invoices are written in one
        transaction (a savepoint each, so one that another run created first is skipped, not fatal). A
        real run over every client shares its chunks with the other workers on the database
        (bridge/services/chunks.py): each invoices the chunks it claims. ``progress`` hears how many
        clients are done after each chunk; ``listener`` each outcome, which the run then does not keep
        (:class:`InvoicingRun`).
        """
        if not dry_run:
            self._refuse_open_cycles(invoice_date)
        run = InvoicingRun(invoice_date, dry_run, listener=listener)
        self._books = self._price_books.for_run()
        self._ensure_rollups()
        tally = Tally(progress, total=1 if client_ref else self._clients.count())
        for chunk in self._chunks(invoice_date, client_ref, dry_run):
            checkpoint()
            try:
                self._invoice_chunk(chunk, run)
            except ChunkTaken as lost:
                chunk_lost(f"invoicing {invoice_date.isoformat()}", lost)
            tally.advance(len(chunk.clients))
        tally.finish()
        log.info(
            "invoicing finished",
            invoice_date=invoice_date.isoformat(),
            dry_run=dry_run,
            issued=run.counts.issued,
            already_invoiced=run.counts.already_invoiced,
            held=run.counts.held,
            skipped=run.counts.skipped,
        )
        return run

    def _chunks(self, invoice_date: date, client_ref: str | None, dry_run: bool) -> Iterator[WorkChunk]:
        """The run's clients: claimed chunk by chunk from the run ``invoicing <date>`` shared by every
        worker, or (a dry run, one client) read as they are."""
        if client_ref:
            return self._shared.unshared(iter([[self._clients.get(client_ref)]]))
        if dry_run:
            return self._shared.unshared(self._clients.chunks(self._shared.size))
        return self._shared.chunks(f"invoicing {invoice_date.isoformat()}")

    def _ensure_rollups(self) -> None:
        """Usage is read from the day rollups: built from the hourly rows first if they are of another
        zone or were never built (the first run after the upgrade; see bridge/store/usage_rollups.py)."""
        with self._uow.reading() as connection:
            current = rollups_store.state(connection)
        if current is None or current.zone != (self._zone.key or "UTC"):
            try:
                with self._uow.writing() as connection:
                    rebuilt = rollups_store.ensure(connection, self._zone)
            except Conflict:  # another worker's month end rebuilt them first (several daemons, one store)
                return
            log.info("usage rollups rebuilt", zone=self._zone.key, days=rebuilt)

    def _refuse_open_cycles(self, invoice_date: date) -> None:
        """Raise :class:`CycleNotEnded` when ``invoice_date`` is still to come.

        Every cycle of a run ends by the invoice date's local midnight (and its invoices carry that date),
        so a run is safe exactly when that midnight has passed; the message names the cycle that ends then.
        """
        now = self._clock.now()
        midnight = local_midnight(invoice_date, self._zone)
        if midnight <= now:
            return
        cycle = calendar_cycle_containing(midnight - timedelta(microseconds=1), self._zone)
        if cycle.end != midnight:
            cycle = anniversary_cycle_containing(
                midnight - timedelta(microseconds=1), invoice_date.day, self._zone
            )
        raise CycleNotEnded(
            f"invoice date {invoice_date.isoformat()} is still to come: billing cycle {cycle.label} ends "
            f"{_local(cycle.end, self._zone)}, after now ({_local(now, self._zone)}); an unended cycle is "
            "never invoiced: invoice it once it has ended, or preview it with --dry-run"
        )

    # -- a chunk of clients ----------------------------------------------------------------------

    def _invoice_chunk(self, chunk: WorkChunk, run: InvoicingRun) -> None:
        """Plan the chunk's invoices and store them, finishing the chunk in the same transaction."""
        self._store(self._planned(chunk.clients, run), run, chunk)

    def _planned(self, clients: Sequence[Client], run: InvoicingRun) -> list[IssuedInvoice]:
        """Read the chunk's invoices, terms, cycle schedules and usage; plan each client
        (domain/invoicing.py)."""
        linked = [client for client in clients if owners_of(client)]
        if not linked:
            return []
        ids = [client.id for client in linked]
        now = self._clock.now()
        with self._uow.reading() as connection:
            invoiced = store.usage_invoices_of_clients(connection, ids)
            terms = plans_store.terms_of_clients(connection, ids)
            schedules = read_schedules(connection, linked, self._configurations, self._zone, now=now)
            plans = [
                plan
                for client in linked
                if (plan := self._plan(client, schedules[client.id], invoiced.get(client.id, []), run))
            ]
            start = min((plan.cycles[0].start for plan in plans), default=now)
            end = max((plan.cycles[-1].end for plan in plans), default=now)
            suspended = suspension_store.overlapping(connection, ids, start, end)
            hourly = set(suspended) | {plan.client.id for plan in plans if _starts_mid_day(plan.cycles)}
            by_owner = _usage_of(connection, plans, terms, (start, end), hourly_clients=hourly)
        observed = [item for item in schedules.values() if item.unrecorded is not None]
        if observed and not run.dry_run:
            with self._uow.writing() as connection:
                record_observed(connection, observed, now=now)
        inputs = [
            (
                plan,
                _billable(
                    [item for owner in plan.owners for item in by_owner.get(owner, [])],
                    () if plan.config.bill_suspended_hours else suspended.get(plan.client.id, ()),
                ),
                invoiced.get(plan.client.id, []),
            )
            for plan in plans
        ]
        late = [
            invoice.id
            for plan, collected, stored in inputs
            if needs_invoiced_lines(plan.cycles, collected, _existing(stored, {}, self._zone))
            for invoice in stored
        ]
        lines = self._lines_of(late)
        pending: list[IssuedInvoice] = []
        for plan, collected, stored in inputs:
            planned = plan_invoices(
                plan.client,
                plan.config,
                plan.cycles,
                collected,
                _existing(stored, lines, self._zone),
                self._prices(plan.client, terms.get(plan.client.id)),
                invoice_date=run.invoice_date,
                now=now,
            )
            self._refuse_preview(planned, run)
            run.add(planned)
            pending += planned.issue
        return pending

    def _plan(
        self,
        client: Client,
        schedule: ClientSchedule,
        invoiced: Sequence[store.StoredInvoice],
        run: InvoicingRun,
    ) -> _ClientPlan | None:
        """Which cycles of the client this run looks at: the last one ended by the invoice date and the
        catch-up ones before it, on the client's timeline (its invoiced spans never overlap a new cycle);
        None before its first cycle has ended."""
        spans = invoiced_spans(invoiced)
        cycles = cycles_ended_by(schedule.schedule, spans, run.invoice_date, self._catch_up_cycles)
        if not cycles:
            return None
        return _ClientPlan(client, self._configuration(client), owners_of(client), cycles)

    def _lines_of(self, invoice_ids: list[int]) -> dict[int, list[store.StoredLine]]:
        """The lines of the invoices late usage is compared with, read in one query for the chunk."""
        if not invoice_ids:
            return {}
        with self._uow.reading() as connection:
            return store.lines_by_invoice(connection, invoice_ids)

    def _prices(self, client: Client, terms: ClientTerms | None) -> ClientPrices:
        """The client's price book and, with plans or discounts, the schedule of its terms."""
        book = self.price_book(client.configuration)
        if terms is None or terms.is_plain or book.currency != client.currency:
            return ClientPrices(book)
        try:
            schedule = PriceSchedule.build(terms, functools.partial(self.price_book, client.configuration))
        except ValueError as error:
            return ClientPrices(book, problem=str(error))
        return ClientPrices(book, schedule)

    def _refuse_preview(self, planned: InvoicePlan, run: InvoicingRun) -> None:
        """A real run never issues an invoice of a cycle that has not ended (run() refuses such a date first;
        this keeps the rule where the invoices are)."""
        for invoice in planned.issue:
            if invoice.preview and not run.dry_run:
                cycle = invoice.draft.cycle
                raise CycleNotEnded(
                    f"billing cycle {cycle.label} ends {_local(cycle.end, self._zone)}: not yet"
                )

    def _store(self, pending: list[IssuedInvoice], run: InvoicingRun, chunk: WorkChunk) -> None:
        """Write the chunk's invoices, with their numbers or outbox rows, in one transaction that first
        marks the chunk done (:class:`ChunkTaken`, and nothing written, if another worker took it over).

        An invoice whose time another run covered meanwhile is skipped. The rest are written as one
        batch (bridge/services/issuing.py ``issue_many``: a few statements per chunk); when another run
        wrote one of their references first, the batch's savepoint rolls back and they are written one
        by one, each in a savepoint of its own, so only that one is skipped."""
        if not pending and chunk.claim is None:
            return
        now = self._clock.now()
        with self._uow.writing(dry_run=run.dry_run) as connection:
            chunk.finish(connection, self._clock)
            if run.dry_run:
                store.carry_numbers(connection, run.next_numbers)
            fresh = self._not_covered(connection, pending, run)
            for invoice, issued in zip(fresh, self._issued(connection, fresh, run, now), strict=True):
                if issued is not None:
                    run.add_issued(_with_numbers(invoice, issued))
            if run.dry_run:
                run.next_numbers = store.next_numbers(connection)

    def _not_covered(
        self, connection: Tx, pending: list[IssuedInvoice], run: InvoicingRun
    ) -> list[IssuedInvoice]:
        """The invoices whose time no standing usage invoice covers (one query for the chunk); the others
        are reported already invoiced: another run, with another view of the cycles, came first."""
        spans = [(item.client.id, item.draft.cycle.start, item.draft.cycle.end) for item in pending]
        fresh = []
        for invoice, covering in zip(pending, store.usage_invoices_covering(connection, spans), strict=True):
            if covering is None:
                fresh.append(invoice)
            else:
                run.add_already_invoiced(Skipped(invoice.client, covering, ALREADY_INVOICED))
        return fresh

    def _issued(
        self, connection: Tx, fresh: list[IssuedInvoice], run: InvoicingRun, now: datetime
    ) -> list[Issued | None]:
        """Store the chunk's invoices in one batch; if another run wrote one of their references first,
        one by one instead (None for each such one)."""
        if not fresh:
            return []
        try:
            with connection.begin_nested():
                return [*self._issue_batch(connection, fresh, now)]
        except Conflict:
            return [self._issue_alone(connection, invoice, run, now) for invoice in fresh]

    def _issue_batch(self, connection: Tx, invoices: Sequence[IssuedInvoice], now: datetime) -> list[Issued]:
        """Store planned invoices, each with its client's configuration (the caller's savepoint)."""
        batch = [(_new_invoice(invoice), self._configuration(invoice.client)) for invoice in invoices]
        return issue_many(connection, batch, self._zone, now=now, notifier=self._notifier)

    def _issue_alone(
        self, connection: Tx, invoice: IssuedInvoice, run: InvoicingRun, now: datetime
    ) -> Issued | None:
        """One invoice of a chunk whose batch collided with another run, in a savepoint of its own; None
        (reported already invoiced) when another run wrote its reference first."""
        try:
            with connection.begin_nested():
                (issued,) = self._issue_batch(connection, [invoice], now)
                return issued
        except Conflict:
            if not store.reference_exists(connection, invoice.draft.reference):
                raise
        reason = "already invoiced by another run"
        run.add_already_invoiced(Skipped(invoice.client, invoice.draft.reference, reason))
        return None

    def add_credit_invoice(self, client_ref: str, amount: Decimal, given: str) -> store.StoredInvoice:
        """An add-credit invoice: the client buys ``amount`` of credit (net of tax; with "tax on add-credit
        invoices" on, the invoice is that amount plus tax, seed 001). ``given`` (the operator's reference)
        makes it once only. Paid, it adds ``amount`` to the credit."""
        client = self._clients.get(client_ref)
        if amount <= 0 or not is_rounded(amount, client.currency):
            raise InputError(
                f"AMOUNT {amount} is not a positive amount in {client.currency}'s minor unit; e.g. 50.00"
            )
        reference = references.credit_invoice(client.id, given)
        now = self._clock.now()
        try:
            with self._uow.writing() as connection:
                self.issue_credit_invoice(connection, client, amount, reference, now, kind="credit")
        except Conflict:
            raise InputError(f"--reference {given}: invoice {reference} exists already") from None
        with self._uow.reading() as connection:
            return self._require(connection, reference)

    def issue_credit_invoice(
        self,
        connection: Tx,
        client: Client,
        amount: Decimal,
        reference: str,
        at: datetime,
        kind: str = "auto",
    ) -> None:
        """A credit-addition invoice (a credit auto-invoice, seed 000, or ``kind`` ``credit``: one staff
        issue) in the caller's transaction.

        Numbered by the bridge, or handed to the WHMCS push, like a usage invoice.
        """
        config = self._configuration(client)
        line = credit_line(reference, amount, at)
        invoice = NewInvoice(
            client=client,
            reference=reference,
            kind=kind,
            period=None,
            issuer=issuer(config),
            issued_at=at,
            lines=(line,),
            total=amount,
            items=line_items([line]),
            notes=f"{reference}: credit auto-invoice" if kind == "auto" else f"{reference}: credit",
        )
        issue(connection, invoice, config, self._zone, now=at, notifier=self._notifier)

    def pay_from_credit(self, connection: Tx, invoice: store.StoredInvoice, at: datetime) -> None:
        """Mark an invoice paid from the client's credit (automatic settlements, seed 001): a proforma
        becomes fiscal as when ``invoice pay`` pays it."""
        config = self._configurations.of(invoice.series or "default")
        record_payment(connection, invoice, config, self._zone, paid_at=at, amount=invoice.total)

    # -- shared helpers ----------------------------------------------------------------------------

    def price_book(self, configuration: str, plan: str = DEFAULT_PLAN) -> PriceBook:
        """The prices in force for a configuration (and a plan over it), read once per run (see
        :class:`~bridge.services.price_books.RunBooks`)."""
        return self._books.book(configuration, plan)

    def _configuration(self, client: Client) -> Configuration:
        """The client's configuration as the domain reads it."""
        return self._configurations.of(client.configuration)

    # -- after issue -------------------------------------------------------------------------------

    def mark_paid(
        self, number: str, *, paid_at: datetime | None = None, amount: Decimal | None = None
    ) -> store.StoredInvoice:
        """Record a payment; a proforma becomes fiscal with the next fiscal number, dated the payment day."""
        paid_at = paid_at or self._clock.now()
        with self._uow.writing() as connection:
            invoice = self._require(connection, number)
            _require_transition(invoice, "paid")
            config = self._configurations.of(invoice.series or "default")
            paid = amount or invoice.total
            record_payment(connection, invoice, config, self._zone, paid_at=paid_at, amount=paid)
            return self._require(connection, invoice.reference)

    def set_next_fiscal_number(self, configuration: str, requested: int) -> tuple[int, str]:
        """Raise the next fiscal number of ``configuration``'s series (see
        :func:`~bridge.services.issuing.set_next_fiscal_number`)."""
        if configuration not in self._configurations.configurations:
            known = ", ".join(sorted(self._configurations.configurations))
            raise InputError(f"CONFIG {configuration!r} is not a configuration; use one of: {known}")
        config = self._configurations.of(configuration)
        if config.invoicing_option is InvoicingOption.PROFORMA_RANDOM:
            raise InputError(f"configuration {configuration} issues no fiscal numbers (invoicing_option)")
        with self._uow.writing() as connection:
            return set_next_fiscal_number(
                connection, configuration, config, self._zone, requested, now=self._clock.now()
            )

    def cancel(self, number: str) -> store.StoredInvoice:
        with self._uow.writing() as connection:
            invoice = self._require(connection, number)
            _require_transition(invoice, "cancelled")
            store.set_status(connection, invoice.id, status="cancelled")
            return self._require(connection, invoice.reference)

    def find(self, number: str) -> store.StoredInvoice:
        with self._uow.reading() as connection:
            return self._require(connection, number)

    def _require(self, connection: Tx, number: str) -> store.StoredInvoice:
        """The one invoice ``number`` names; a number several series share is refused, listing them."""
        matches = store.invoices_by_any_number(connection, number)
        if len(matches) > 1:
            listed = ", ".join(f"{found.reference} (series {found.series or 'WHMCS'})" for found in matches)
            raise InputError(f"invoice {number!r} is ambiguous: {listed}; give the invoice's reference")
        invoice = store.invoice_by_any_number(connection, number)
        if invoice is None:
            raise InputError(f"no invoice {number!r}; `billing-bridge invoice list` shows the invoices")
        return invoice


def _starts_mid_day(cycles: Sequence[BillingCycle]) -> bool:
    """Whether a cycle starts inside a day (a first cycle starts when the first service did): the day
    rollups cannot cut there, so such a client's usage is read hour by hour."""
    return any(
        cycle.local_start != cycle.local_start.replace(hour=0, minute=0, second=0, microsecond=0)
        for cycle in cycles
    )


def _billable(usage: list[CollectedUsage], suspensions: Sequence[Suspension]) -> list[CollectedUsage]:
    """The usage without its share inside the client's suspensions (``bill_suspended_hours`` off)."""
    if not suspensions:
        return usage
    found = []
    for collected in usage:
        record = billable_part(collected.record, suspensions)
        if record is not None:
            found.append(replace(collected, record=record))
    return found


def _usage_of(
    connection: Tx,
    plans: Sequence[_ClientPlan],
    terms: Mapping[int, ClientTerms],
    span: tuple[datetime, datetime],
    *,
    hourly_clients: Set[int],
) -> dict[tuple[str, str], list[CollectedUsage]]:
    """The chunk's usage by (source, owner): each cycle's totals from the day rollups, one query per cycle
    the chunk looks at (bridge/store/usage_rollups.py); the hourly rows for a client whose terms change
    inside a cycle, since those split its hours at the change (bridge/domain/terms.py), and for
    ``hourly_clients`` (suspended in the span: a suspension splits hours where it starts and ends)."""
    by_owner: dict[tuple[str, str], list[CollectedUsage]] = {}
    hourly = [
        plan
        for plan in plans
        if plan.client.id in hourly_clients or _terms_change_inside(terms.get(plan.client.id), plan.cycles)
    ]
    hourly_ids = {plan.client.id for plan in hourly}
    owners_by_cycle: dict[BillingCycle, list[tuple[str, str]]] = {}
    for plan in plans:
        if plan.client.id not in hourly_ids:
            for cycle in plan.cycles:
                owners_by_cycle.setdefault(cycle, []).extend(plan.owners)
    for cycle, owners in owners_by_cycle.items():
        for total in rollups_store.totals_of_owners(connection, owners, cycle.start, cycle.end):
            by_owner.setdefault((total.source, total.owner), []).append(
                CollectedUsage(total.record, total.collected_at)
            )
    owners = [owner for plan in hourly for owner in plan.owners]
    for row in usage_store.usage_of_owners(connection, owners, *span):
        by_owner.setdefault((row.source, row.owner), []).append(CollectedUsage(row.record, row.collected_at))
    return by_owner


def _terms_change_inside(terms: ClientTerms | None, cycles: Sequence[BillingCycle]) -> bool:
    return terms is not None and any(terms.changes_within(cycle.start, cycle.end) for cycle in cycles)


def _existing(
    invoices: Sequence[store.StoredInvoice], lines: dict[int, list[store.StoredLine]], zone: ZoneInfo
) -> list[ExistingInvoice]:
    """A client's standing usage invoices as the domain reads them, with their lines where they were read."""
    return [
        ExistingInvoice(
            invoice.reference,
            invoice.period_start,
            invoice.created_at,
            invoice.currency,
            _priced_lines(lines.get(invoice.id), invoice.currency, zone),
            invoice.period_end,
        )
        for invoice in invoices
        if invoice.period_start is not None
    ]


def _priced_lines(
    lines: list[store.StoredLine] | None, currency: str, zone: ZoneInfo
) -> tuple[PricedLine, ...] | None:
    return None if lines is None else tuple(invoiced_line(line, currency, _zone_key(zone)) for line in lines)


def _zone_key(zone: ZoneInfo) -> str:
    return zone.key or "UTC"


def _new_invoice(planned: PlannedInvoice) -> NewInvoice:
    """A usage invoice of a run as it is stored."""
    draft = planned.draft
    return NewInvoice(
        client=planned.client,
        reference=draft.reference,
        kind=USAGE,
        period=(draft.cycle.start, draft.cycle.end),
        issuer=planned.issuer,
        issued_at=planned.issued_at,
        lines=usage_lines(draft),
        total=draft.total,
        items=client_items(draft, planned.detail),
        notes=f"{draft.reference}: usage {draft.cycle.label}",
    )


def _with_numbers(invoice: IssuedInvoice, issued: Issued) -> IssuedInvoice:
    """A run's invoice as stored: with the bridge's numbers and taxes."""
    return replace(invoice, number=issued.number, proforma_number=issued.proforma_number, taxes=issued.taxes)


def _require_transition(invoice: store.StoredInvoice, to: str) -> None:
    if not can_become(invoice.status, to):
        raise InputError(f"invoice {invoice.display_number} is {invoice.status}; it cannot become {to}")


def _local(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as the operator reads it: ISO in the billing time zone, to the minute."""
    return instant.astimezone(zone).isoformat(timespec="minutes")
