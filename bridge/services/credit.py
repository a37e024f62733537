"""The credit engine's service layer: ledger, up-to-date credit, and the periodic ``process_clients`` task.

Credit is the sum of the client's ledger rows (payments and credit added, usage settled); unsettled usage
is the client's collected usage since ``settled_until`` priced at current prices, plus the running hours
since the last collected window; up-to-date credit = credit - unsettled usage (seed 001). The decisions
(notifications, suspension, termination, auto-invoicing, auto pay) are the pure rules of
bridge/domain/credit.py; this module gathers their inputs, records their effects, and reports them.

Effects on the clouds (suspend, shelve, resume, unshelve, delete) are written as outbox rows in the same
transaction as the decision, and carried out by bridge/sync/cloud_actions.py: exactly once, and visible
to the operator in ``billing-bridge outbox``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bridge.clock import Clock
from bridge.domain import references
from bridge.domain.bounds import DESCRIPTION_MAX, NAME_MAX, REFERENCE_MAX, check_amount, check_text
from bridge.domain.clients import OWNER_LINK_KIND, Client, LinkKind
from bridge.domain.configuration import (
    AUTO_INVOICING_OFF,
    AutoInvoiceMode,
    AutoInvoicing,
    Configuration,
    parse_auto_invoicing,
)
from bridge.domain.credit import (
    AutoInvoiceDecision,
    CreditState,
    Decision,
    DecisionKind,
    ResourceUsage,
    RunningResource,
    Verdict,
    auto_invoice_amount,
    can_auto_pay_invoice,
    can_create_services,
    notifications_due,
    suspension_decision,
)
from bridge.domain.credit import (
    account as account_balance,
)
from bridge.domain.effects import (
    CreditAction,
    DisableProject,
    EnableProject,
    ServerAction,
    server_action,
)
from bridge.domain.invoicing import BRIDGE
from bridge.domain.money import Money, round_money
from bridge.domain.notifications import InvoiceOverdue, Resumed, Suspended, Terminated, credit_notice
from bridge.domain.pricing import PriceBook
from bridge.domain.suspension import Suspension
from bridge.domain.tax import credit_cost, net_of_tax
from bridge.errors import InputError, checked
from bridge.logs import get_logger
from bridge.progress import Progress, Tally, no_progress
from bridge.services.chunks import ChunkTaken, SharedRuns, WorkChunk, chunk_lost
from bridge.services.clients import ClientService
from bridge.services.invoicing import InvoicingService
from bridge.services.notifications import ClientNotifier
from bridge.services.price_books import PriceBooks, RunBooks
from bridge.settings import Configurations
from bridge.store import credit as store
from bridge.store import invoices as invoice_store
from bridge.store import outbox as outbox_store
from bridge.store import suspensions as suspension_store
from bridge.store import usage as usage_store
from bridge.store import whmcs as whmcs_store
from bridge.store.outbox import EffectKind, enqueue_effect
from bridge.store.unit_of_work import Tx, UnitOfWork

log = get_logger(__name__)

PROCESS_RUN = "process_clients"
"""The shared run every worker's process_clients takes its chunks from (bridge/services/chunks.py)."""
USAGE = "usage"
SETTLED_KINDS = frozenset({USAGE, "recurring"})
"""The invoices that bill what the client used or subscribed to, post-pay: paying one (from credit or with
money) settles it. A credit auto-invoice (``auto``) is the other kind: paying it adds credit."""
ZERO = Decimal(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ENGINE = "process_clients"
"""Who suspends and resumes a client for its credit, in the suspension history."""
STAFF = "staff"


@dataclass(frozen=True)
class Account:
    """A client's money as the credit rules see it, at one moment."""

    client: Client
    configuration: Configuration
    credit: Decimal
    unsettled: Decimal
    burn_rate: Decimal
    running: tuple[RunningResource, ...]
    has_agreement: bool
    state: store.CreditStateRow
    unpaid_invoices: Decimal
    has_unpaid_auto_invoice: bool
    unpaid: tuple[invoice_store.StoredInvoice, ...] = ()
    problems: tuple[str, ...] = ()
    suspension: Suspension | None = None
    own_auto_invoicing: AutoInvoicing | None = None
    """The client's own auto-invoicing choice (seed 000), None when it never chose: then the
    configuration's applies."""

    @property
    def up_to_date(self) -> Decimal:
        return self.credit - self.unsettled

    @property
    def suspended_by_staff(self) -> bool:
        """Suspended by hand (``client suspend``): only ``client resume`` ends it, whatever the credit."""
        return self.suspension is not None and self.suspension.by != ENGINE

    @property
    def auto_invoicing(self) -> AutoInvoicing:
        """The auto-invoicing that applies: the client's own choice over the configuration's default."""
        return self.own_auto_invoicing or self.configuration.auto_invoicing

    @property
    def credit_limit(self) -> Decimal:
        return self.configuration.effective_credit_limit(self.has_agreement)

    def hours_until(self, level: Decimal) -> Decimal | None:
        return CreditState(self.credit, self.unsettled).hours_until(level, self.burn_rate)


@dataclass(frozen=True)
class CreationCheck:
    """The answer to "may this client create or upgrade services now?", with its figures."""

    client: Client
    verdict: Verdict
    required_credit: Decimal
    up_to_date_credit: Decimal
    suspended_at: datetime | None

    def document(self) -> dict[str, Any]:
        """The JSON answer (money as strings)."""
        return {
            "client": self.client.id,
            "allowed": self.verdict.allowed,
            "reason": self.verdict.reason,
            "required_credit": str(self.required_credit),
            "up_to_date_credit": str(self.up_to_date_credit),
            "currency": self.client.currency,
            "suspended": self.suspended_at is not None,
        }


@dataclass(frozen=True)
class StaffAction:
    """A suspension or resume staff asked for: when, what the outbox rows act on, why, and warnings."""

    client: Client
    at: datetime
    acted_on: tuple[str, ...]
    reason: str
    warnings: tuple[str, ...]


@dataclass
class ClientReport:
    """What process_clients decided for one client, and why (the --dry-run --json document)."""

    client: Client
    up_to_date: Decimal
    burn_rate: Decimal
    decisions: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        return {
            "client": self.client.id,
            "email": self.client.email,
            "up_to_date_credit": str(self.up_to_date),
            "burn_rate_per_hour": str(self.burn_rate.normalize()),
            "decisions": self.decisions,
        }


class CreditService:
    """The ledger, up-to-date credit and the periodic decisions. ``running_horizon`` is how recent a
    resource's last usage must be for it to count as running (from the OpenStack window and settle delay);
    ``whmcs_enabled`` brings credit recorded in the bridge to WHMCS; ``notifier`` tells clients (through
    WHMCS or by mail); ``auto_invoicing`` and ``auto_invoice_lead_time_hours`` are
    ``billing.credit_auto_invoicing`` and its lead time."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        clients: ClientService,
        invoicing: InvoicingService,
        notifier: ClientNotifier,
        *,
        configurations: Configurations,
        price_books: PriceBooks,
        running_horizon: timedelta,
        whmcs_enabled: bool,
        auto_invoicing: bool,
        auto_invoice_lead_time_hours: int,
        shared: SharedRuns,
    ) -> None:
        self._uow = uow
        self._shared = shared
        self._clock = clock
        self._clients = clients
        self._invoicing = invoicing
        self._notifier = notifier
        self._configurations = configurations
        self._price_books = price_books
        self._running_horizon = running_horizon
        self._whmcs_enabled = whmcs_enabled
        self._auto_invoicing = auto_invoicing
        self._lead_time_hours = auto_invoice_lead_time_hours

    # -- ledger --------------------------------------------------------------------------------------

    def add_credit(
        self, client_ref: str, amount: Decimal, reference: str, description: str | None = None
    ) -> tuple[bool, Account]:
        """Record a payment or credit; the same reference twice is one payment."""
        checked(check_amount, amount, "AMOUNT")
        if amount <= 0:
            raise InputError(f"AMOUNT {amount} must be above 0; record refunds as a separate adjustment")
        if not reference.strip():
            raise InputError("--reference is empty; give the payment's reference (e.g. the gateway's id)")
        reference = checked(check_text, reference, "--reference", max_length=REFERENCE_MAX)
        if description is not None:
            description = checked(check_text, description, "--description", max_length=DESCRIPTION_MAX)
        client = self._clients.get(client_ref)
        if round_money(amount, client.currency) != amount:
            raise InputError(f"AMOUNT {amount} has more decimals than {client.currency} has")
        now = self._clock.now()
        ledger_reference = references.payment(client.id, reference)
        description = description or f"payment {reference}"
        with self._uow.writing() as connection:
            created = store.add_entry(
                connection,
                client_id=client.id,
                kind="payment",
                amount=amount,
                currency=client.currency,
                reference=ledger_reference,
                description=description,
                occurred_at=now,
                now=now,
            )
            if created and self._whmcs_enabled:
                outbox_store.enqueue_credit(
                    connection,
                    client_id=client.id,
                    ledger_reference=ledger_reference,
                    amount=amount,
                    description=description,
                    now=now,
                )
        return created, self.account(str(client.id))

    # -- auto-invoicing choices (seed 000) ------------------------------------------------------------

    @property
    def auto_invoicing_feature(self) -> bool:
        """``billing.credit_auto_invoicing``: without it no client is auto-invoiced, whatever it chose."""
        return self._auto_invoicing

    def set_auto_invoicing(
        self, client_ref: str, choice: str, *, changed_by: str, option: str = "--auto-invoicing"
    ) -> store.AutoInvoicingChange | None:
        """Make ``choice`` (``off``, ``estimated`` or ``fixed:AMOUNT`` in the client's currency) the client's
        own auto-invoicing, with a ledger row saying who changed it, when, and from what; None when it
        already was the client's choice (nothing is written). The only choice here that concerns money."""
        client = self._clients.get(client_ref)
        chosen = self._parse_choice(choice, client.currency, option)
        changed_by = checked(check_text, changed_by, "who changed it", max_length=NAME_MAX)
        now = self._clock.now()
        with self._uow.writing() as connection:
            state = store.states(connection, [client.id])[client.id]
            own = own_auto_invoicing(state, client.currency)
            old = own.choice if own is not None else None
            if old == chosen.choice:
                return None
            change = store.AutoInvoicingChange(client.id, old, chosen.choice, changed_by, now)
            mode = chosen.mode.value if chosen.enabled else AUTO_INVOICING_OFF
            store.set_auto_invoicing(
                connection, client.id, mode=mode, amount=chosen.fixed_amount, change=change
            )
        log.info(
            "auto-invoicing choice changed",
            client_id=client.id,
            old=old or "configuration default",
            new=chosen.choice,
            changed_by=changed_by,
        )
        return change

    def auto_invoicing_history(self, client_id: int, limit: int = 20) -> list[store.AutoInvoicingChange]:
        """The client's auto-invoicing changes, newest first."""
        with self._uow.reading() as connection:
            return store.auto_invoicing_history(connection, client_id, limit)

    @staticmethod
    def _parse_choice(text: str, currency: str, option: str) -> AutoInvoicing:
        try:
            chosen = parse_auto_invoicing(checked(check_text, text, option, max_length=48))
        except ValueError as error:
            raise InputError(f"{option} {error}") from None
        if chosen.fixed_amount is None:
            return chosen
        amount = checked(check_amount, chosen.fixed_amount, option)
        if round_money(amount, currency) != amount:
            raise InputError(f"{option} {text.strip()!r}: {amount} has more decimals than {currency} has")
        return replace(chosen, fixed_amount=round_money(amount, currency))

    # -- accounts ------------------------------------------------------------------------------------

    def account(self, client_ref: str, at: datetime | None = None) -> Account:
        client = self._clients.get(client_ref)
        return self._accounts([client], at or self._clock.now(), self._price_books.for_run())[0]

    def can_create(self, client_ref: str) -> Verdict:
        return self.creation_check(client_ref).verdict

    def creation_check(self, client_ref: str, *, whmcs: bool = False) -> CreationCheck:
        """Whether the client may create or upgrade services now, why, and the figures behind it: what
        ``client can-create`` and the operator endpoint's ``/clients/<id>/can-create`` answer. ``whmcs``:
        ``client_ref`` is the client's WHMCS id (what the WHMCS panel knows)."""
        client = self._clients.by_whmcs_id(client_ref) if whmcs else self._clients.get(client_ref)
        account = self.account(str(client.id))
        verdict = can_create_services(
            account.configuration,
            CreditState(account.credit, account.unsettled),
            account.has_agreement,
            account.state.suspended_at,
        )
        required = account.configuration.effective_required_credit(account.has_agreement)
        return CreationCheck(client, verdict, required, account.up_to_date, account.state.suspended_at)

    def _accounts(
        self, clients: list[Client], at: datetime, books: RunBooks, connection: Tx | None = None
    ) -> list[Account]:
        """The clients' accounts, read on ``connection`` when the caller has one open (SQLite allows one
        writer: a second connection would wait for the caller's own transaction)."""
        if connection is None:
            with self._uow.reading() as own:
                return self._read_accounts(own, clients, at, books)
        return self._read_accounts(connection, clients, at, books)

    def _read_accounts(
        self, connection: Tx, clients: list[Client], at: datetime, books: RunBooks
    ) -> list[Account]:
        ids = [client.id for client in clients]
        credits = store.balances(connection, ids)
        states = store.states(connection, ids)
        agreements = whmcs_store.agreements_of(connection, ids)
        open_invoices = _open_invoices(connection, ids)
        invoiced = invoice_store.invoiced_until(connection, ids)
        since = {
            client_id: max(state.settled_until or EPOCH, invoiced.get(client_id, EPOCH))
            for client_id, state in states.items()
        }
        suspended = suspension_store.open_of(connection, ids)
        until = {
            client.id: min(at, suspended[client.id].start)
            for client in clients
            if client.id in suspended
            and not self._configurations.of(client.configuration).bill_suspended_hours
        }
        usage = self._recent_usage(connection, clients, since, at, until)
        return [
            replace(
                self._account(
                    client,
                    credits[client.id],
                    states[client.id],
                    agreements.get(client.id, False),
                    open_invoices.get(client.id, []),
                    usage.get(client.id, []),
                    at,
                    books.book(client.configuration),
                ),
                suspension=suspended.get(client.id),
            )
            for client in clients
        ]

    def _recent_usage(
        self,
        connection: Tx,
        clients: list[Client],
        since: dict[int, datetime],
        at: datetime,
        until: dict[int, datetime],
    ) -> dict[int, list[usage_store.ResourceTotal]]:
        """Each client's unsettled usage up to ``at``, per resource: what neither a settlement nor an
        invoice covers yet. Usage from before the client was added to the bridge counts too: an imported
        client owes for it. A client in ``until`` (suspended, its suspended hours not billed) owes only
        for the usage before that moment: the clouds keep counting suspended servers' hours."""
        owners = {
            (source, owner): client.id
            for client in clients
            for source, kind in OWNER_LINK_KIND.items()
            for owner in client.external_ids(kind)
        }
        by_end: dict[datetime, dict[tuple[str, str], datetime]] = {}
        for owner, client_id in owners.items():
            by_end.setdefault(until.get(client_id, at), {})[owner] = since[client_id]
        found: dict[int, list[usage_store.ResourceTotal]] = {}
        for end, owners_since in by_end.items():
            for total in usage_store.totals_since(connection, owners_since, end):
                found.setdefault(owners[(total.source, total.owner)], []).append(total)
        return found

    def _account(
        self,
        client: Client,
        credit: Decimal,
        state: store.CreditStateRow,
        has_agreement: bool,
        open_invoices: list[invoice_store.StoredInvoice],
        usage: list[usage_store.ResourceTotal],
        at: datetime,
        book: PriceBook,
    ) -> Account:
        balance = account_balance(
            credit, map(_resource_usage, usage), book, client.currency, at, self._running_horizon
        )
        unpaid = [invoice for invoice in open_invoices if invoice.status == "unpaid"]
        configuration = self._configurations.of(client.configuration)
        return Account(
            client=client,
            configuration=configuration,
            credit=balance.credit,
            unsettled=balance.unsettled,
            burn_rate=balance.burn_rate,
            running=balance.running,
            has_agreement=has_agreement,
            state=state,
            unpaid_invoices=sum((_credit_cost(invoice, configuration) for invoice in unpaid), ZERO),
            has_unpaid_auto_invoice=any(invoice.kind == "auto" for invoice in unpaid),
            unpaid=tuple(unpaid),
            problems=balance.problems,
            own_auto_invoicing=own_auto_invoicing(state, client.currency),
        )

    # -- staff suspension --------------------------------------------------------------------------

    def suspend(
        self, client_ref: str, *, shelve: bool | None = None, reason: str | None = None
    ) -> StaffAction:
        """Suspend CLIENT by hand (``client suspend``): its running servers suspended (or shelved: the
        configuration's ``shelve_instances_on_suspend`` unless ``shelve`` says), its OpenStack projects
        disabled, its suspension opened in the history, the client told (staff's reason stays internal).
        Only ``client resume`` ends it: the credit engine neither resumes nor terminates a client staff
        suspended."""
        reason = checked(
            check_text, reason or "suspended by staff", "--reason", max_length=DESCRIPTION_MAX
        ).strip()
        client = self._clients.get(client_ref)
        now = self._clock.now()
        books = self._price_books.for_run()
        with self._uow.writing() as connection:
            account = self._accounts([client], now, books, connection)[0]
            state = account.state
            if state.terminated_at is not None:
                raise InputError(
                    f"client {client.id} was terminated at {state.terminated_at.isoformat()}: nothing to "
                    "suspend"
                )
            if state.suspended_at is not None:
                raise InputError(
                    f"client {client.id} is already suspended since {state.suspended_at.isoformat()}; "
                    f"`billing-bridge client resume {client.id}` resumes it"
                )
            shelving = account.configuration.shelve_instances_on_suspend if shelve is None else shelve
            named = self._suspend(connection, account, now, shelve=shelving, reason=reason, by=STAFF)
            notice = Suspended(
                account.up_to_date,
                client.currency,
                account.credit_limit,
                tuple(named),
                shelving,
                None,  # the credit engine never terminates a client staff suspended
                by_staff=True,
            )
            reference = references.notification(client.id, notice.event, f"{now:%Y%m%dT%H%M%S}")
            self._notifier.notify(connection, client, notice, reference, now)
            store.save_state(
                connection,
                client.id,
                now,
                exists=state.updated_at is not None,
                suspended_at=now,
                shelved=shelving,
            )
        return StaffAction(client, now, tuple(named), reason, ())

    def resume(self, client_ref: str) -> StaffAction:
        """Resume CLIENT by hand (``client resume``): its projects enabled, then what its suspension
        suspended resumed (or unshelved). A client still under its credit limit is warned about: the credit
        engine suspends it again at its next run unless credit is added."""
        client = self._clients.get(client_ref)
        now = self._clock.now()
        books = self._price_books.for_run()
        with self._uow.writing() as connection:
            account = self._accounts([client], now, books, connection)[0]
            if account.state.suspended_at is None:
                raise InputError(f"client {client.id} is not suspended; nothing to resume")
            named = self._resume(connection, account, now, by=STAFF)
            store.save_state(
                connection,
                client.id,
                now,
                exists=True,
                suspended_at=None,
                shelved=False,
                under_limit_since=None,
            )
        warnings: tuple[str, ...] = ()
        if account.up_to_date < account.credit_limit and account.configuration.suspension.enabled:
            warnings = (
                f"up-to-date credit {account.up_to_date:.2f} is under the credit limit "
                f"{account.credit_limit:.2f}: process_clients suspends the client again unless credit is "
                "added",
            )
        return StaffAction(client, now, tuple(named), "resumed by staff", warnings)

    def suspensions(self, client_ref: str) -> list[Suspension]:
        """The client's suspension history, oldest first."""
        client = self._clients.get(client_ref)
        with self._uow.reading() as connection:
            return suspension_store.history(connection, client.id)

    # -- process_clients ---------------------------------------------------------------------------

    def process(
        self,
        at: datetime,
        *,
        dry_run: bool = False,
        client_ref: str | None = None,
        progress: Progress = no_progress,
    ) -> list[ClientReport]:
        """Decide and record, per client, everything the credit rules ask for at ``at``.

        Each effect is keyed by a deterministic reference, so running again for the same moment changes
        nothing. A real run over every client shares its chunks with the other workers on the database
        (bridge/services/chunks.py); each chunk is decided, recorded and marked done in one transaction.
        ``progress`` hears how many clients are done after each chunk.
        """
        reports: list[ClientReport] = []
        books = self._price_books.for_run()
        for name in self._configurations.names():  # read before any transaction holds the store
            books.book(name)
        tally = Tally(progress, total=1 if client_ref else self._clients.count())
        for chunk in self._chunks(client_ref, dry_run):
            try:
                reports += self._process_chunk(chunk, at, books, dry_run)
            except ChunkTaken as lost:
                chunk_lost(PROCESS_RUN, lost)
            tally.advance(len(chunk.clients))
        tally.finish()
        return reports

    def _chunks(self, client_ref: str | None, dry_run: bool) -> Iterator[WorkChunk]:
        """Chunks claimed from the shared run, or (a dry run, one client) the clients as they are."""
        if client_ref:
            return self._shared.unshared(iter([[self._clients.get(client_ref)]]))
        if dry_run:
            return self._shared.unshared(self._clients.chunks(self._shared.size))
        return self._shared.chunks(PROCESS_RUN)

    def _process_chunk(
        self, chunk: WorkChunk, at: datetime, books: RunBooks, dry_run: bool
    ) -> list[ClientReport]:
        """One transaction: the chunk marked done first, then every client's decisions recorded."""
        with self._uow.writing(dry_run=dry_run) as connection:
            chunk.finish(connection, self._clock)
            self._settle_paid_invoices(connection, chunk.clients, at)
            accounts = self._accounts(chunk.clients, at, books, connection)
            return [self._process_client(connection, account, at) for account in accounts]

    def _process_client(self, connection: Tx, account: Account, at: datetime) -> ClientReport:
        report = ClientReport(account.client, account.up_to_date, account.burn_rate)
        for problem in account.problems:
            report.decisions.append({"action": "warning", "reason": problem})
        changes: dict[str, Any] = {}
        paid: set[str] = set()
        up_to_date = self._auto_pay(connection, account, at, report, changes, paid)
        self._notify(connection, account, at, report, changes)
        self._remind_overdue(connection, account, at, report, paid)
        self._suspend_or_resume(connection, account, at, report, changes)
        self._auto_invoice(connection, account, at, report)
        if changes:
            store.save_state(
                connection, account.client.id, at, exists=account.state.updated_at is not None, **changes
            )
        report.up_to_date = up_to_date
        return report

    def _auto_pay(
        self,
        connection: Tx,
        account: Account,
        at: datetime,
        report: ClientReport,
        changes: dict[str, Any],
        paid: set[str],
    ) -> Decimal:
        """Pay the bridge's own unpaid post-pay invoices (usage and recurring fees) from credit, when the
        configuration allows it (domain/credit.py's :func:`can_auto_pay_invoice`); adds the references of
        the invoices it paid to ``paid``."""
        up_to_date = account.up_to_date
        config = account.configuration
        if not (config.automatic_settlements and config.generate_invoices):
            return up_to_date
        for invoice in account.unpaid:
            if invoice.issuer != BRIDGE or invoice.kind not in SETTLED_KINDS or invoice.period_end is None:
                continue
            cost = _credit_cost(invoice, config)
            verdict = can_auto_pay_invoice(config, cost, up_to_date)
            if not verdict.allowed:
                report.decisions.append(
                    {
                        "action": "auto_pay_refused",
                        "invoice": invoice.display_number,
                        "reason": verdict.reason,
                    }
                )
                continue
            self._pay_from_credit(connection, invoice, cost, at)
            paid.add(invoice.reference)
            settled = changes.get("settled_until") or account.state.settled_until
            if invoice.kind == USAGE and (settled is None or settled < invoice.period_end):
                changes["settled_until"] = invoice.period_end
            up_to_date -= cost
            report.decisions.append(
                {"action": "auto_pay", "invoice": invoice.display_number, "reason": verdict.reason}
            )
        return up_to_date

    def _pay_from_credit(
        self, connection: Tx, invoice: invoice_store.StoredInvoice, cost: Decimal, at: datetime
    ) -> None:
        """Credit pays the invoice: what it bills (usage, fees) is settled from credit (``cost``: see
        :func:`~bridge.domain.tax.credit_cost`); no money comes in."""
        number = invoice.display_number
        _book(
            connection,
            invoice,
            invoice.kind,
            -cost,
            references.invoice_settled(invoice.reference),
            f"invoice {number} paid from credit",
            at,
            at,
        )
        _book(
            connection,
            invoice,
            "payment",
            ZERO,
            references.invoice_paid(invoice.reference),
            f"invoice {number}: paid from credit, no money in",
            at,
            at,
        )
        self._invoicing.pay_from_credit(connection, invoice, at)

    def _notify(
        self,
        connection: Tx,
        account: Account,
        at: datetime,
        report: ClientReport,
        changes: dict[str, Any],
    ) -> None:
        due = notifications_due(
            account.configuration.credit_notifications,
            account.up_to_date,
            account.burn_rate,
            account.state.thresholds_sent,
        )
        sent = set(account.state.thresholds_sent) - set(due.to_reset)
        for threshold in due.to_send:
            sent.add(threshold)
            report.decisions.append({"action": "notify", "threshold_hours": threshold, "reason": due.reason})
        if due.to_send:
            # One mail for the thresholds crossed together (a client found below zero crossed them all):
            # the most urgent, saying what is true now.
            threshold = min(due.to_send)
            notice = credit_notice(
                account.configuration,
                threshold_hours=threshold,
                up_to_date=account.up_to_date,
                currency=account.client.currency,
                burn_rate=account.burn_rate,
                credit_limit=account.credit_limit,
                now=at,
                under_limit_since=account.state.under_limit_since,
            )
            reference = references.credit_notification(account.client.id, threshold, at)
            self._notifier.notify(connection, account.client, notice, reference, at)
        if due.to_reset:
            report.decisions.append({"action": "reset_notifications", "thresholds": list(due.to_reset)})
        if set(sent) != set(account.state.thresholds_sent):
            changes["notifications_sent"] = ",".join(map(str, sorted(sent)))

    def _remind_overdue(
        self, connection: Tx, account: Account, at: datetime, report: ClientReport, paid: set[str]
    ) -> None:
        """Remind the client once of each of the bridge's invoices that is past due and still unpaid, when
        its configuration says ``notify_on_unpaid_invoices``."""
        if not account.configuration.notify_on_unpaid_invoices:
            return
        for invoice in account.unpaid:
            if invoice.issuer != BRIDGE or invoice.reference in paid or invoice.due_at > at:
                continue
            notice = InvoiceOverdue(
                invoice.reference,
                invoice.display_number,
                invoice.total,
                invoice.currency,
                invoice.issued_at,
                invoice.due_at,
            )
            reference = references.notification(account.client.id, notice.event, invoice.reference)
            if self._notifier.notify(connection, account.client, notice, reference, at):
                report.decisions.append(
                    {
                        "action": "remind_overdue",
                        "invoice": invoice.display_number,
                        "reason": f"unpaid since its due date {invoice.due_at.isoformat()}",
                    }
                )

    def _suspend_or_resume(
        self,
        connection: Tx,
        account: Account,
        at: datetime,
        report: ClientReport,
        changes: dict[str, Any],
    ) -> None:
        state = account.state
        under = account.up_to_date < account.credit_limit
        under_since = state.under_limit_since if under else None
        if under and under_since is None:
            under_since = at
        if under_since != state.under_limit_since:
            changes["under_limit_since"] = under_since
        if state.terminated_at is not None:
            return
        if account.suspended_by_staff and account.suspension is not None:
            reason = (
                f"suspended by {account.suspension.by} at {account.suspension.start.isoformat()} "
                f"({account.suspension.reason}); only `billing-bridge client resume` ends it"
            )
            report.decisions.append({"action": DecisionKind.KEEP_SUSPENDED.value, "reason": reason})
            return
        decision = suspension_decision(
            account.configuration,
            CreditState(account.credit, account.unsettled),
            account.has_agreement,
            at,
            under_since,
            state.suspended_at,
            burn_rate=account.burn_rate,
        )
        if decision.kind is DecisionKind.NONE:
            return
        report.decisions.append({"action": decision.kind.value, "reason": decision.reason})
        if decision.kind is DecisionKind.SUSPEND:
            suspended = self._suspend(
                connection, account, at, shelve=decision.shelve, reason=decision.reason, by=ENGINE
            )
            changes.update(suspended_at=at, shelved=decision.shelve)
            notice = Suspended(
                account.up_to_date,
                account.client.currency,
                account.credit_limit,
                tuple(suspended),
                decision.shelve,
                _termination_at(account.configuration, at),
            )
            reference = references.notification(account.client.id, notice.event, f"{at:%Y%m%dT%H%M%S}")
            self._notifier.notify(connection, account.client, notice, reference, at)
        elif decision.kind is DecisionKind.RESUME:
            self._resume(connection, account, at, by=ENGINE)
            changes.update(suspended_at=None, shelved=False)
        elif decision.kind is DecisionKind.TERMINATE:
            removed = self._cloud(connection, account, "terminate", at, since=state.suspended_at)
            log.warning(
                "client terminated", client=account.client.id, removed=removed, reason=decision.reason
            )
            report.decisions[-1]["removed"] = removed
            changes["terminated_at"] = at
            gone = Terminated(account.up_to_date, account.client.currency, tuple(removed))
            reference = references.notification(account.client.id, gone.event, f"{at:%Y%m%dT%H%M%S}")
            self._notifier.notify(connection, account.client, gone, reference, at)

    def _suspend(
        self, connection: Tx, account: Account, at: datetime, *, shelve: bool, reason: str, by: str
    ) -> list[str]:
        """Suspend (or shelve) the client's running servers and disable its OpenStack projects, and open its
        suspension in the history; returns what the outbox rows name."""
        named = self._cloud(connection, account, "suspend", at, shelve=shelve)
        named += self._projects(connection, account, DisableProject, at, since=at)
        suspension_store.open_suspension(
            connection, account.client.id, at, reason=reason, by=by, shelved=shelve
        )
        return named

    def _resume(self, connection: Tx, account: Account, at: datetime, *, by: str) -> list[str]:
        """Enable the client's projects again, then resume (or unshelve) what its suspension suspended, and
        close the suspension in the history."""
        state = account.state
        since = state.suspended_at
        named = self._projects(connection, account, EnableProject, at, since=since)
        named += self._cloud(connection, account, "resume", at, shelve=state.shelved, since=since)
        suspension_store.close_suspension(connection, account.client.id, at, by=by)
        notice = Resumed(
            account.up_to_date,
            account.client.currency,
            tuple(named),
            state.shelved,
            by_staff=by == STAFF,
        )
        # keyed by the suspension it ends: one mail per suspension, however often the run repeats
        reference = references.notification(account.client.id, notice.event, f"{since or at:%Y%m%dT%H%M%S}")
        self._notifier.notify(connection, account.client, notice, reference, at)
        return named

    def _projects(
        self,
        connection: Tx,
        account: Account,
        action: type[DisableProject] | type[EnableProject],
        at: datetime,
        *,
        since: datetime | None,
    ) -> list[str]:
        """One outbox row per OpenStack project of the client, disabling or enabling it in Keystone (as
        Fleio suspends a client's project); keyed by the suspension, so a re-run writes none twice."""
        named = []
        for project in account.client.external_ids(LinkKind.OPENSTACK_PROJECT):
            effect = action("openstack", project, f"project {project}")
            reference = references.server_action(
                effect.kind.value, account.client.id, "openstack", project, since or at
            )
            enqueue_effect(
                connection, client_id=account.client.id, reference=reference, effect=effect, now=at
            )
            named.append(f"openstack project {project}")
        return named

    def _cloud(
        self,
        connection: Tx,
        account: Account,
        action: CreditAction,
        at: datetime,
        *,
        shelve: bool = False,
        since: datetime | None = None,
    ) -> list[str]:
        """Write one outbox row per resource for the cloud action; returns the resources it names."""
        named = []
        acted_on = (
            account.running if action == "suspend" else _suspended_resources(connection, account, since)
        )
        for resource in acted_on:
            effect = server_action(action, resource.source, shelve=shelve)(
                resource.source, resource.resource_id, resource.name
            )
            reference = references.server_action(
                effect.kind.value, account.client.id, resource.source, resource.resource_id, since or at
            )
            enqueue_effect(
                connection, client_id=account.client.id, reference=reference, effect=effect, now=at
            )
            named.append(f"{resource.source}:{resource.resource_id} ({resource.name})")
        return named

    def _auto_invoice(self, connection: Tx, account: Account, at: datetime, report: ClientReport) -> None:
        choice = account.auto_invoicing
        if not (self._auto_invoicing and choice.enabled) or account.burn_rate <= 0:
            return
        decision: AutoInvoiceDecision = auto_invoice_amount(
            account.configuration,
            Money(account.burn_rate, account.client.currency),
            account.up_to_date,
            account.credit_limit,
            account.unpaid_invoices,
            has_unpaid_auto_invoice=account.has_unpaid_auto_invoice,
            lead_time_hours=self._lead_time_hours,
            choice=choice,
        )
        if decision.amount is None:
            if decision.hours_until_limit is not None:
                report.decisions.append({"action": "no_auto_invoice", "reason": decision.reason})
            return
        reference = references.auto_invoice(account.client.id, at)
        self._invoicing.issue_credit_invoice(connection, account.client, decision.amount, reference, at)
        report.decisions.append(
            {
                "action": "auto_invoice",
                "amount": str(decision.amount),
                "reference": reference,
                "reason": decision.reason,
            }
        )

    def _net_paid(self, invoice: invoice_store.StoredInvoice) -> Decimal:
        """What a payment of ``invoice`` adds to the credit: its part net of tax. An invoice WHMCS issued
        is stored net and WHMCS adds its own tax on top, so with taxes on its payment counts up to the
        stored (net) total."""
        paid = invoice.paid_amount or invoice.total
        if invoice.issuer != BRIDGE and self._configurations.of("default").taxes is not None:
            paid = min(paid, invoice.total)
        return net_of_tax(paid, invoice.net_total, invoice.total, invoice.currency)

    def _settle_paid_invoices(self, connection: Tx, clients: list[Client], at: datetime) -> None:
        """Paid invoices move money: an auto-invoice adds credit; a usage invoice settles its period, and a
        recurring invoice its fees (the money paid them, so it is not credit to spend)."""
        ids = [client.id for client in clients]
        for invoice in invoice_store.paid_invoices_not_in_ledger(connection, ids):
            occurred = invoice.paid_at or at
            paid = self._net_paid(invoice)
            description = f"payment of invoice {invoice.display_number}"
            paid_reference = references.invoice_paid(invoice.reference)
            _book(connection, invoice, "payment", paid, paid_reference, description, occurred, at)
            if invoice.kind in SETTLED_KINDS and invoice.period_end is not None:
                description = f"{invoice.kind} {invoice.reference} settled"
                settled = references.invoice_settled(invoice.reference)
                amount = -invoice.net_total
                _book(connection, invoice, invoice.kind, amount, settled, description, occurred, at)
            if invoice.kind == USAGE and invoice.period_end is not None:
                state = store.states(connection, [invoice.client_id])[invoice.client_id]
                if state.settled_until is None or state.settled_until < invoice.period_end:
                    store.save_state(connection, invoice.client_id, at, settled_until=invoice.period_end)


def _credit_cost(invoice: invoice_store.StoredInvoice, config: Configuration) -> Decimal:
    """What paying ``invoice`` from credit takes from it (credit is counted net of tax)."""
    return credit_cost(invoice.net_total, invoice.total, config.taxes)


def _book(
    connection: Tx,
    invoice: invoice_store.StoredInvoice,
    kind: str,
    amount: Decimal,
    reference: str,
    description: str,
    occurred_at: datetime,
    now: datetime,
) -> None:
    """One ledger row about ``invoice``, under its ``reference`` (once only)."""
    store.add_entry(
        connection,
        client_id=invoice.client_id,
        kind=kind,
        amount=amount,
        currency=invoice.currency,
        reference=reference,
        description=description,
        occurred_at=occurred_at,
        now=now,
    )


def _suspended_resources(
    connection: Tx, account: Account, since: datetime | None
) -> tuple[RunningResource, ...]:
    """The resources the client's last suspension acted on (its outbox rows), to resume or terminate.

    Not the resources running now: a suspended SolusVM server stops reporting as running, so it would
    be neither resumed nor removed.
    """
    if since is None:
        return ()
    kinds = (EffectKind.SUSPEND_SERVER, EffectKind.SHELVE_SERVER)
    found: dict[tuple[str, str], RunningResource] = {}
    acted_on = outbox_store.effects_since(connection, account.client.id, kinds, since)
    for acted in (effect for effect in acted_on if isinstance(effect, ServerAction)):
        key = (acted.source, acted.resource_id)
        found[key] = RunningResource(acted.source, acted.resource_id, acted.name, "", ZERO)
    return tuple(found.values())


def own_auto_invoicing(state: store.CreditStateRow, currency: str) -> AutoInvoicing | None:
    """The client's own auto-invoicing choice as the store keeps it, None when it never chose."""
    if state.auto_invoicing is None:
        return None
    if state.auto_invoicing == AUTO_INVOICING_OFF:
        return AutoInvoicing(enabled=False)
    if state.auto_invoicing == AutoInvoiceMode.FIXED.value and state.auto_invoice_amount is not None:
        amount = round_money(state.auto_invoice_amount, currency)
        return AutoInvoicing(enabled=True, mode=AutoInvoiceMode.FIXED, fixed_amount=amount)
    return AutoInvoicing(enabled=True, mode=AutoInvoiceMode.ESTIMATED)


def _resource_usage(total: usage_store.ResourceTotal) -> ResourceUsage:
    return ResourceUsage(
        total.source,
        total.resource_id,
        total.name,
        total.plan,
        total.hours,
        total.tokens,
        total.last_window_end,
    )


def _termination_at(config: Configuration, suspended_at: datetime) -> datetime | None:
    """When a client suspended at ``suspended_at`` is terminated, if its configuration terminates."""
    rule = config.termination
    if not rule.enabled or rule.suspend_instead:
        return None
    return suspended_at + timedelta(hours=rule.delay_hours)


def _open_invoices(connection: Tx, ids: list[int]) -> dict[int, list[invoice_store.StoredInvoice]]:
    found: dict[int, list[invoice_store.StoredInvoice]] = {}
    for invoice in invoice_store.unpaid_invoices_of_clients(connection, ids):
        found.setdefault(invoice.client_id, []).append(invoice)
    return found


__all__ = ["Account", "ClientReport", "CreationCheck", "CreditService", "Decision", "StaffAction"]
