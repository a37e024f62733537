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
bridge numbers the invoice itself (gap-free, in the invoice's own transaction); off, the same
transaction writes the outbox row that pushes it to WHMCS.

The money is computed by the pure domain (bridge/domain/invoicing.py); this module only gathers the
inputs, stores the result and reports it.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.clients import OWNER_LINK_KIND, Client
from bridge.domain.cycles import (
    BillingCycle,
    anniversary_cycle_containing,
    calendar_cycle_containing,
    local_midnight,
    previous_cycle,
)
from bridge.domain.invoicing import DraftResult, InvoiceDraft, LateUsage, draft_invoice
from bridge.domain.money import round_money
from bridge.domain.plans import DEFAULT_PLAN, ClientTerms, PriceSchedule, draft_with_terms
from bridge.domain.pricing import PlanRate, PriceBook, PricedLine, UnpricedResource
from bridge.domain.usage import UsageRecord, Window, as_source
from bridge.errors import InputError
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.settings import ConfigurationSettings, Settings
from bridge.store import invoices as store
from bridge.store import plans as plans_store
from bridge.store import usage as usage_store
from bridge.store.outbox import EffectKind, enqueue
from bridge.store.unit_of_work import Conflict, Tx, UnitOfWork

log = get_logger(__name__)

USAGE = "usage"
Status = Literal["draft", "unpaid", "paid", "cancelled"]
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"unpaid", "cancelled"}),
    "unpaid": frozenset({"paid", "cancelled"}),
    "paid": frozenset(),
    "cancelled": frozenset(),
}
_PLACEHOLDER = re.compile(r"{{\s*(\w+)\s*}}")


CLIENTS_PER_CHUNK = 500


@dataclass(frozen=True)
class _ClientPlan:
    """One client in a run: its configuration, the (source, owner) accounts it bills, the cycles looked at."""

    client: Client
    config: ConfigurationSettings
    owners: list[tuple[str, str]]
    cycles: list[BillingCycle]


class CycleNotEnded(InputError):
    """A run asked to issue invoices for a billing cycle that has not ended yet."""


@dataclass(frozen=True)
class IssuedInvoice:
    """An invoice this run created (or, with --dry-run, would create).

    ``preview`` marks a dry run's invoice for a cycle that has not ended yet: what it would hold if the
    cycle ended now; a real run never issues it.
    """

    client: Client
    draft: InvoiceDraft
    issuer: str
    status: str
    number: str | None
    proforma_number: str | None
    issued_at: datetime
    due_at: datetime
    detail: str
    preview: bool = False


@dataclass(frozen=True)
class Held:
    client: Client
    reference: str
    errors: tuple[UnpricedResource, ...]
    problem: str | None = None


@dataclass(frozen=True)
class Skipped:
    client: Client
    reference: str
    reason: str


@dataclass
class InvoicingRun:
    invoice_date: date
    dry_run: bool
    issued: list[IssuedInvoice] = field(default_factory=list)
    already_invoiced: list[Skipped] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


class InvoicingService:
    def __init__(self, uow: UnitOfWork, clock: Clock, settings: Settings, clients: ClientService) -> None:
        self._uow = uow
        self._clock = clock
        self._settings = settings
        self._clients = clients
        self._zone = settings.billing.zone()
        self._books: dict[str, PriceBook] = {}
        self._terms: dict[int, ClientTerms] = {}  # the current chunk's clients with plans or discounts

    def run(
        self,
        invoice_date: date,
        *,
        client_ref: str | None = None,
        dry_run: bool = False,
        checkpoint: Callable[[], None] = lambda: None,
    ) -> InvoicingRun:
        """Invoice every client's ended cycles as of ``invoice_date`` (see the module docstring).

        Clients are taken in chunks: their usage is read in one query and their invoices are written in one
        transaction (a savepoint each, so one that another run created first is skipped, not fatal).
        """
        if not dry_run:
            self._refuse_open_cycles(invoice_date)
        run = InvoicingRun(invoice_date, dry_run)
        self._books = {}
        chunks = [[self._clients.get(client_ref)]] if client_ref else self._clients.chunks(CLIENTS_PER_CHUNK)
        for chunk in chunks:
            checkpoint()
            self._invoice_chunk(chunk, run)
        log.info(
            "invoicing finished",
            invoice_date=invoice_date.isoformat(),
            dry_run=dry_run,
            issued=len(run.issued),
            already_invoiced=len(run.already_invoiced),
            held=len(run.held),
            skipped=len(run.skipped),
        )
        return run

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

    def _invoice_chunk(self, clients: list[Client], run: InvoicingRun) -> None:
        plans = [plan for client in clients if (plan := self._plan(client, run.invoice_date)) is not None]
        if not plans:
            return
        owners = [owner for plan in plans for owner in plan.owners]
        start = min(plan.cycles[0].start for plan in plans)
        end = max(plan.cycles[-1].end for plan in plans)
        with self._uow.reading() as connection:
            usage = usage_store.usage_of_owners(connection, owners, start, end)
            invoiced = store.usage_invoices_of_clients(connection, [plan.client.id for plan in plans])
            self._terms = plans_store.terms_of_clients(connection, [plan.client.id for plan in plans])
        by_owner: dict[tuple[str, str], list[usage_store.StoredUsage]] = {}
        for row in usage:
            by_owner.setdefault((row.source, row.owner), []).append(row)
        pending: list[IssuedInvoice] = []
        for plan in plans:
            rows = [row for owner in plan.owners for row in by_owner.get(owner, [])]
            pending += self._decide(plan, rows, invoiced.get(plan.client.id, []), run)
        self._store(pending, run)

    def _plan(self, client: Client, invoice_date: date) -> _ClientPlan | None:
        """Which cycles of the client this run looks at; None for a client with no linked account."""
        owners = [
            (source, owner) for source, kind in OWNER_LINK_KIND.items() for owner in client.external_ids(kind)
        ]
        if not owners:
            return None
        config = self._configuration(client)
        anchor = None if config.billing_cycle_calendar else client.created_at.astimezone(self._zone).day
        cycles = _cycles_to_invoice(anchor, self._zone, invoice_date, self._settings.billing.catch_up_cycles)
        return _ClientPlan(client, config, owners, list(cycles))

    def _decide(
        self,
        plan: _ClientPlan,
        usage: list[usage_store.StoredUsage],
        invoiced: list[store.StoredInvoice],
        run: InvoicingRun,
    ) -> list[IssuedInvoice]:
        """The invoices one client needs: missed cycles, then the last ended one with any late usage."""
        client, config, cycles = plan.client, plan.config, plan.cycles
        target = cycles[-1]
        by_cycle = _records_by_cycle(usage, cycles)
        done = {invoice.period_start: invoice for invoice in invoiced}
        drafts: list[IssuedInvoice] = []
        late: list[LateUsage] = []
        for cycle in cycles[:-1]:
            records = by_cycle[cycle.start]
            if cycle.start in done:
                late_usage = self._late_usage(cycle, records, invoiced, done[cycle.start].created_at)
                if late_usage is not None:
                    late.append(late_usage)
            elif records:
                drafts += self._issue(client, config, cycle, [record for record, _ in records], [], run)
        if target.start in done:
            run.already_invoiced.append(Skipped(client, done[target.start].reference, "already invoiced"))
            return drafts
        return drafts + self._issue(
            client, config, target, [record for record, _ in by_cycle[target.start]], late, run
        )

    def _late_usage(
        self,
        cycle: BillingCycle,
        records: list[tuple[UsageRecord, datetime]],
        invoiced: list[store.StoredInvoice],
        invoiced_at: datetime,
    ) -> LateUsage | None:
        """The cycle's usage for re-pricing when any of it was collected after the cycle was invoiced."""
        if not any(collected_at > invoiced_at for _, collected_at in records):
            return None
        with self._uow.reading() as connection:
            lines = store.lines_of_invoices(connection, [invoice.id for invoice in invoiced])
        currency = invoiced[0].currency
        earlier = [_priced_line(line, cycle, currency) for line in lines if line.period_start == cycle.start]
        return LateUsage(cycle, tuple(record for record, _ in records), tuple(earlier))

    def _issue(
        self,
        client: Client,
        config: ConfigurationSettings,
        cycle: BillingCycle,
        records: list[UsageRecord],
        late: list[LateUsage],
        run: InvoicingRun,
    ) -> list[IssuedInvoice]:
        """The invoice for one cycle, or nothing (held, skipped, no usage) with the reason in ``run``."""
        if not records and not late:
            return []
        try:
            result = self._draft(client, config, cycle, records, late)
        except ValueError as error:
            run.held.append(Held(client, f"BB-{client.id}-{cycle.label}", (), problem=str(error)))
            return []
        draft = result.draft
        if result.held:
            run.held.append(Held(client, draft.reference, result.errors))
            return []
        if config.generate_invoices_after is not None and cycle.end <= _aware(config.generate_invoices_after):
            run.skipped.append(Skipped(client, draft.reference, "cycle ended before generate_invoices_after"))
            return []
        if draft.is_empty or (draft.total == 0 and not config.invoice_zero_amounts):
            run.skipped.append(Skipped(client, draft.reference, "zero amount (invoice_zero_amounts is off)"))
            return []
        issued_at = local_midnight(run.invoice_date, self._zone)
        ended = cycle.end <= self._clock.now()
        if not ended and not run.dry_run:  # run() refuses such a date first; this keeps the rule local
            raise CycleNotEnded(f"billing cycle {cycle.label} ends {_local(cycle.end, self._zone)}: not yet")
        internal = self._generates_invoices(config)
        return [
            IssuedInvoice(
                client=client,
                draft=draft,
                issuer="bridge" if internal else "whmcs",
                status="unpaid",
                number=None,
                proforma_number=None,
                issued_at=issued_at,
                due_at=issued_at + timedelta(days=config.invoice_due_days),
                detail=config.invoice_detail,
                preview=not ended,
            )
        ]

    def _draft(
        self,
        client: Client,
        config: ConfigurationSettings,
        cycle: BillingCycle,
        records: list[UsageRecord],
        late: list[LateUsage],
    ) -> DraftResult:
        book = self.price_book(client.configuration)
        if book.currency != client.currency:
            raise ValueError(
                f"client {client.id} is billed in {client.currency} but the prices are in {book.currency}; "
                "change the client's currency or add prices in it"
            )
        terms = self._terms.get(client.id)
        if terms is not None and not terms.is_plain:
            schedule = PriceSchedule.build(terms, functools.partial(self.price_book, client.configuration))
            return draft_with_terms(
                str(client.id),
                client.currency,
                cycle,
                records,
                schedule,
                late_usage=late,
                billable_seconds_per_month=config.billable_seconds_per_month or None,
            )
        return draft_invoice(
            str(client.id),
            client.currency,
            cycle,
            records,
            book,
            late_usage=late,
            billable_seconds_per_month=config.billable_seconds_per_month or None,
        )

    def _store(self, pending: list[IssuedInvoice], run: InvoicingRun) -> None:
        """Write the chunk's invoices, with their numbers or outbox rows, in one transaction."""
        if not pending:
            return
        now = self._clock.now()
        with self._uow.writing(dry_run=run.dry_run) as connection:
            for invoice in pending:
                try:
                    with connection.begin_nested():
                        numbered = self._numbered(connection, invoice)
                        store.insert_invoice(
                            connection, _invoice_row(numbered, now), line_rows(numbered.draft)
                        )
                        if numbered.issuer == "whmcs":
                            self._enqueue_push(connection, numbered)
                except Conflict:
                    if not store.reference_exists(connection, invoice.draft.reference):
                        raise
                    reason = "already invoiced by another run"
                    run.already_invoiced.append(Skipped(invoice.client, invoice.draft.reference, reason))
                    continue
                run.issued.append(numbered)

    def _numbered(self, connection: Tx, invoice: IssuedInvoice) -> IssuedInvoice:
        if invoice.issuer != "bridge":
            return invoice
        config = self._configuration(invoice.client)
        local = invoice.issued_at.astimezone(self._zone)
        number, proforma = invoice_numbers(connection, invoice.client, config, invoice.draft.reference, local)
        return replace(invoice, number=number, proforma_number=proforma)

    def _enqueue_push(self, connection: Tx, issued: IssuedInvoice) -> None:
        draft = issued.draft
        enqueue_create_invoice(
            connection,
            client_id=issued.client.id,
            reference=draft.reference,
            issued_on=issued.issued_at.astimezone(self._zone).date(),
            due_on=issued.due_at.astimezone(self._zone).date(),
            items=invoice_items(draft, issued.detail),
            notes=f"{draft.reference}: usage {draft.cycle.label}",
            now=self._clock.now(),
        )

    def issue_credit_invoice(
        self, connection: Tx, client: Client, amount: Decimal, reference: str, at: datetime
    ) -> None:
        """A credit-addition invoice (a credit auto-invoice, seed 000) in the caller's transaction.

        Numbered by the bridge, or handed to the WHMCS push, like a usage invoice.
        """
        config = self._configuration(client)
        internal = self._generates_invoices(config)
        issued_at = at
        due_at = at + timedelta(days=config.invoice_due_days)
        description = f"Credit for the next 30 days of usage ({reference})"
        number, proforma = (None, None)
        if internal:
            number, proforma = invoice_numbers(
                connection, client, config, reference, at.astimezone(self._zone)
            )
        store.insert_invoice(
            connection,
            {
                "client_id": client.id,
                "reference": reference,
                "kind": "auto",
                "period_start": None,
                "period_end": None,
                "currency": client.currency,
                "status": "unpaid",
                "issuer": "bridge" if internal else "whmcs",
                "series": client.configuration if internal else None,
                "number": number,
                "proforma_number": proforma,
                "issued_at": issued_at,
                "due_at": due_at,
                "total": amount,
                "created_at": at,
            },
            [
                {
                    "position": 1,
                    "line_reference": f"credit:{reference}",
                    "source": "credit",
                    "resource_id": "credit",
                    "resource_name": "Credit",
                    "plan": "",
                    "period_start": at,
                    "period_end": at,
                    "hours": Decimal(0),
                    "billed_hours": Decimal(0),
                    "unit_price": amount,
                    "tokens_per_hour": None,
                    "tokens": None,
                    "amount": amount,
                    "capped": False,
                    "late": False,
                    "description": description,
                }
            ],
        )
        if not internal:
            local_day = at.astimezone(self._zone).date()
            enqueue_create_invoice(
                connection,
                client_id=client.id,
                reference=reference,
                issued_on=local_day,
                due_on=local_day + timedelta(days=config.invoice_due_days),
                items=[(description, amount)],
                notes=f"{reference}: credit auto-invoice",
                now=at,
            )

    def pay_from_credit(self, connection: Tx, invoice: store.StoredInvoice, at: datetime) -> None:
        """Mark an invoice paid from the client's credit (automatic settlements, seed 001)."""
        store.set_status(connection, invoice.id, status="paid", paid_at=at, paid_amount=invoice.total)

    # -- shared helpers ----------------------------------------------------------------------------

    def price_book(self, configuration: str, plan: str = DEFAULT_PLAN) -> PriceBook:
        """The prices in force for a configuration: [pricing], its overrides, SolusVM plan rates; with a
        ``plan``, that plan's prices over them (``[plans.<plan>]``; ValueError if it is not defined).

        Read once per run, configuration and plan: a run prices every client of one plan with the same book.
        """
        key = configuration if plan == DEFAULT_PLAN else f"{configuration}\0{plan}"
        if key not in self._books:
            if plan == DEFAULT_PLAN:
                self._books[key] = self._read_price_book(configuration)
            else:
                self._books[key] = self._plan_book(self.price_book(configuration), plan)
        return self._books[key]

    def _plan_book(self, base: PriceBook, plan: str) -> PriceBook:
        settings = self._settings.plans.get(plan)
        if settings is None:
            raise ValueError(
                f"pricing plan {plan!r} is not in the settings; add [plans.{plan}] back or assign the client "
                "another plan with `billing-bridge plan assign`"
            )
        token_price = settings.token_price if settings.token_price is not None else base.token_price
        return PriceBook(base.currency, {**base.flavor_prices, **settings.flavors}, token_price, base.plans)

    def _read_price_book(self, configuration: str) -> PriceBook:
        pricing = self._settings.pricing
        override = pricing.overrides.get(configuration)
        flavors = {**pricing.flavors, **(override.flavors if override else {})}
        token_price = (
            override.token_price if override and override.token_price is not None else pricing.token_price
        )
        with self._uow.reading() as connection:
            cached = usage_store.plan_rates(connection)
        plans = {
            plan_id: PlanRate(rate.tokens_per_hour, rate.tokens_per_month or None)
            for plan_id, rate in cached.items()
        }
        for plan_id, configured in pricing.solusvm_plans.items():
            plans[plan_id] = PlanRate(configured.tokens_per_hour, configured.tokens_per_month or None)
        return PriceBook(self._settings.billing.currency, flavors, token_price, plans)

    def _configuration(self, client: Client) -> ConfigurationSettings:
        return self._settings.configurations.get(
            client.configuration, self._settings.configurations["default"]
        )

    def _generates_invoices(self, config: ConfigurationSettings) -> bool:
        if config.generate_invoices is not None:
            return config.generate_invoices
        return self._settings.billing.generate_invoices

    # -- after issue -------------------------------------------------------------------------------

    def mark_paid(
        self, number: str, *, paid_at: datetime | None = None, amount: Decimal | None = None
    ) -> store.StoredInvoice:
        """Record a payment; a proforma becomes fiscal with the next fiscal number, dated the payment day."""
        paid_at = paid_at or self._clock.now()
        client = self._clients.get(str(self.find(number).client_id))
        config = self._configuration(client)
        with self._uow.writing() as connection:
            invoice = self._require(connection, number)
            _require_transition(invoice, "paid")
            values: dict[str, Any] = {
                "status": "paid",
                "paid_at": paid_at,
                "paid_amount": amount or invoice.total,
            }
            if (
                invoice.issuer == "bridge"
                and invoice.number is None
                and config.invoicing_option == "proforma_then_fiscal"
            ):
                sequence = store.take_number(
                    connection, f"fiscal:{client.configuration}", config.next_fiscal_number
                )
                values["number"] = render_number(
                    config.fiscal_number_format, sequence, paid_at.astimezone(self._zone)
                )
                values["issued_at"] = paid_at
            store.set_status(connection, invoice.id, **values)
            return self._require(connection, invoice.reference)

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
        invoice = store.invoice_by_any_number(connection, number)
        if invoice is None:
            raise InputError(f"no invoice {number!r}; `billing-bridge invoice list` shows the invoices")
        return invoice


@functools.lru_cache(maxsize=256)
def _cycles_to_invoice(
    anchor_day: int | None, zone: ZoneInfo, invoice_date: date, catch_up: int
) -> tuple[BillingCycle, ...]:
    """The last cycle ended by ``invoice_date`` and the ``catch_up`` before it (calendar when no anchor day).

    Cached: in one run every calendar-month client (and every client of one anniversary day) shares them.
    """
    midnight = local_midnight(invoice_date, zone)
    instant = midnight - timedelta(microseconds=1)
    if anchor_day is None:
        cycle = calendar_cycle_containing(instant, zone)
    else:
        cycle = anniversary_cycle_containing(instant, anchor_day, zone)
    cycles = [cycle if cycle.end <= midnight else previous_cycle(cycle)]
    for _ in range(catch_up):
        cycles.insert(0, previous_cycle(cycles[0]))
    return tuple(cycles)


def invoice_numbers(
    connection: Tx, client: Client, config: ConfigurationSettings, reference: str, local: datetime
) -> tuple[str | None, str | None]:
    """(fiscal number, proforma number) as the configuration's invoicing option says, in the caller's
    transaction (so a rollback gives a sequence number back: fiscal numbering has no gaps)."""
    if config.invoicing_option == "always_fiscal":
        sequence = store.take_number(connection, f"fiscal:{client.configuration}", config.next_fiscal_number)
        return render_number(config.fiscal_number_format, sequence, local), None
    if config.invoicing_option == "proforma_then_fiscal":
        sequence = store.take_number(connection, f"proforma:{client.configuration}", 1)
        return None, render_number(config.proforma_number_format, sequence, local)
    return None, random_proforma_number(reference)


def enqueue_create_invoice(
    connection: Tx,
    *,
    client_id: int,
    reference: str,
    issued_on: date,
    due_on: date,
    items: Iterable[tuple[str, Decimal]],
    notes: str,
    now: datetime,
) -> None:
    """The outbox row that creates an invoice in WHMCS (the payload bridge/whmcs/effects.py reads)."""
    enqueue(
        connection,
        client_id=client_id,
        kind=EffectKind.CREATE_INVOICE,
        reference=reference,
        payload={
            "invoice_reference": reference,
            "date": issued_on.isoformat(),
            "due_date": due_on.isoformat(),
            "items": [{"description": text, "amount": amount, "taxed": False} for text, amount in items],
            "notes": notes,
        },
        now=now,
    )


def render_number(template: str, number: int, on: datetime) -> str:
    """A number from the configuration's template: {{ number }}, {{ year }}, {{ month }}, {{ day }}.

    Rendered as the Jinja templates it was written for render those placeholders: an unknown name is
    empty, and one trailing newline is dropped."""
    values = {
        "number": str(number),
        "year": f"{on.year:04d}",
        "month": f"{on.month:02d}",
        "day": f"{on.day:02d}",
    }
    text = template.removesuffix("\n")
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), text)


def random_proforma_number(reference: str) -> str:
    """A non-sequential proforma number for "proforma only with random numbers".

    Derived from the invoice's reference rather than drawn at random, so a replay gives the same number.
    """
    return "R" + str(int(hashlib.sha256(reference.encode()).hexdigest()[:12], 16)).zfill(15)[:10]


def invoice_items(draft: InvoiceDraft, detail: str) -> list[tuple[str, Decimal]]:
    """The lines a client sees: one per resource (detailed), or one per source (simple)."""
    if detail == "detailed":
        return [(line.description(), line.amount) for line in draft.lines]
    items = []
    for source, lines in draft.by_source().items():
        subtotal = round_money(sum((line.amount for line in lines), Decimal(0)), draft.currency)
        label = "OpenStack instances" if source == "openstack" else "SolusVM servers"
        items.append((f"{label}, {draft.cycle.label} ({len(lines)} resources)", subtotal))
    return items


def _records_by_cycle(
    usage: Iterable[usage_store.StoredUsage], cycles: list[BillingCycle]
) -> dict[datetime, list[tuple[UsageRecord, datetime]]]:
    """Each usage row as a UsageRecord (with when it was collected), under the cycle its window starts in."""
    starts = [cycle.start for cycle in cycles]
    grouped: dict[datetime, list[tuple[UsageRecord, datetime]]] = {start: [] for start in starts}
    for row in usage:
        index = bisect.bisect_right(starts, row.window_start) - 1
        if index < 0 or row.window_start >= cycles[-1].end:  # a chunk reads the widest range of its clients
            continue
        record = UsageRecord(
            source=as_source(row.source),
            resource_id=row.resource_id,
            resource_name=row.resource_name,
            owner=row.owner,
            plan=row.plan,
            window=Window(row.window_start, row.window_end),
            hours=row.hours,
            tokens=row.tokens,
        )
        grouped[starts[index]].append((record, row.collected_at))
    return grouped


def _priced_line(line: store.StoredLine, cycle: BillingCycle, currency: str) -> PricedLine:
    return PricedLine(
        source=as_source(line.source),
        resource_id=line.resource_id,
        resource_name=line.resource_name,
        plan=line.plan,
        period=cycle,
        hours=line.hours,
        billed_hours=line.billed_hours,
        unit_price=line.unit_price,
        amount=line.amount,
        currency=currency,
        capped=line.capped,
        tokens_per_hour=line.tokens_per_hour,
        tokens=line.tokens,
        late=line.late,
    )


def _invoice_row(issued: IssuedInvoice, now: datetime) -> dict[str, Any]:
    draft = issued.draft
    return {
        "client_id": issued.client.id,
        "reference": draft.reference,
        "kind": USAGE,
        "period_start": draft.cycle.start,
        "period_end": draft.cycle.end,
        "currency": draft.currency,
        "status": issued.status,
        "issuer": issued.issuer,
        "series": issued.client.configuration if issued.issuer == "bridge" else None,
        "number": issued.number,
        "proforma_number": issued.proforma_number,
        "issued_at": issued.issued_at,
        "due_at": issued.due_at,
        "total": draft.total,
        "created_at": now,
    }


def line_rows(draft: InvoiceDraft) -> list[dict[str, Any]]:
    """The stored lines of a usage draft, in its line order (usage invoices and their replacements)."""
    return [
        {
            "position": position,
            "line_reference": line.reference,
            "source": line.source,
            "resource_id": line.resource_id,
            "resource_name": line.resource_name,
            "plan": line.plan,
            "period_start": line.period.start,
            "period_end": line.period.end,
            "hours": line.hours.quantize(Decimal("0.00000001")),
            "billed_hours": line.billed_hours,
            "unit_price": line.unit_price,
            "tokens_per_hour": line.tokens_per_hour,
            "tokens": line.tokens,
            "amount": line.amount,
            "capped": line.capped,
            "late": line.late,
            "description": line.description(),
        }
        for position, line in enumerate(draft.lines, 1)
    ]


def _require_transition(invoice: store.StoredInvoice, to: str) -> None:
    if to not in TRANSITIONS.get(invoice.status, frozenset()):
        raise InputError(f"invoice {invoice.display_number} is {invoice.status}; it cannot become {to}")


def _local(instant: datetime, zone: ZoneInfo) -> str:
    """An instant as the operator reads it: ISO in the billing time zone, to the minute."""
    return instant.astimezone(zone).isoformat(timespec="minutes")


def _aware(instant: datetime) -> datetime:
    """A cutoff from the settings file; one written without an offset is read as UTC."""
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)
