"""Billing periods and the subscriptions in them (seed 004): create, list, modify, move, delete, recharge.

A billing period is a schedule (monthly on an invoice day, or yearly on a day and month, for a number of
periods or open-ended) and its current span. Each subscription (a recurring fee, optionally prorated) is
in exactly one period of its own frequency; a period may hold many. Nothing happens with a period until a
subscription is in it: an empty period only rolls its dates forward.

A recharge (on the period's next recharge date, by :meth:`PeriodsService.recharge`) bills the span that
ends then, post-pay like usage: one invoice (kind ``recurring``, reference ``BB-<client>-P<period>-<date>``)
with each subscription's fee and the charges added to them, numbered by the bridge or pushed to WHMCS
like usage invoices. A subscription's fee is its plan's ``fees.<name>`` if the client's plan in force sets
one, else its own amount, less the client's discounts on ``fees``.

Changing the billing date follows seed 004 exactly: the current span keeps its start and now ends on the
first new invoice day after today, with no proration for the change itself (bridge/domain/periods.py);
charges added before the change stay prorated to the old date, charges added after use the new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.clients import Client
from bridge.domain.cycles import BillingPeriod
from bridge.domain.invoicing import issuer
from bridge.domain.money import parse_money
from bridge.domain.periods import (
    Charge,
    PendingCharge,
    PeriodSpan,
    Subscription,
    period_of,
    recharge,
)
from bridge.domain.terms import ClientTerms
from bridge.errors import InputError, NotFound
from bridge.logs import get_logger
from bridge.services.clients import ClientService
from bridge.services.issuing import NewInvoice, issue
from bridge.services.notifications import ClientNotifier
from bridge.settings import Configurations
from bridge.store import clients as client_store
from bridge.store import plans as store
from bridge.store.plans import StoredCharge, StoredPeriod, StoredSubscription
from bridge.store.unit_of_work import Conflict, Tx, UnitOfWork

log = get_logger(__name__)


@dataclass(frozen=True)
class PeriodView:
    """A billing period and the subscriptions in it."""

    period: StoredPeriod
    subscriptions: tuple[StoredSubscription, ...]


@dataclass(frozen=True)
class DateChange:
    """A billing date moved: the span before and after (seed 004: no proration for the change itself)."""

    period_id: int
    before: PeriodSpan
    after: PeriodSpan

    @property
    def days_added(self) -> int:
        """How many days the current span got longer (negative: shorter)."""
        return self.after.days - self.before.days


@dataclass(frozen=True)
class NewPeriod:
    """What ``period move --new`` creates; the frequency is the subscription's."""

    invoice_day: int
    invoice_month: int | None = None
    periods: int | None = None
    frequency: str | None = None


@dataclass(frozen=True)
class ChargeView:
    """A charge added to a subscription, and what it will bill at the period's end."""

    charge: StoredCharge
    bills: Decimal
    currency: str


@dataclass(frozen=True)
class Recharged:
    """One recharge: the span it billed, and its invoice (None when it had nothing to bill)."""

    period_id: int
    client_id: int
    span: PeriodSpan
    reference: str | None
    number: str | None
    total: Decimal
    lines: tuple[tuple[str, Decimal], ...]


class PeriodsService:
    """A client's billing periods and subscriptions, and the recharges that bill them (module docstring)."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        clients: ClientService,
        *,
        configurations: Configurations,
        plan_fees: Mapping[str, Mapping[str, Decimal]],
        zone: ZoneInfo,
        notifier: ClientNotifier | None = None,
    ) -> None:
        self._uow = uow
        self._notifier = notifier
        self._clock = clock
        self._clients = clients
        self._configurations = configurations
        self._plan_fees = plan_fees
        self._zone = zone

    def today(self) -> date:
        return self._clock.now().astimezone(self._zone).date()

    # -- periods -------------------------------------------------------------------------------------------

    def create(
        self,
        client_ref: str,
        *,
        frequency: str,
        invoice_day: int,
        invoice_month: int | None = None,
        periods: int | None = None,
    ) -> PeriodView:
        """A new, empty period of the client; its span is the one of its schedule containing today."""
        client = self._clients.get(client_ref)
        with self._uow.writing() as connection:
            period_id = self._create(connection, client.id, frequency, invoice_day, invoice_month, periods)
            return self._view(connection, period_id)

    def _create(
        self,
        connection: Tx,
        client_id: int,
        frequency: str,
        invoice_day: int,
        invoice_month: int | None,
        periods: int | None,
    ) -> int:
        schedule = _schedule(frequency, invoice_day, invoice_month)
        if periods is not None and periods < 1:
            raise InputError(
                f"--periods {periods} is not a number of periods; give 1 or more, or leave it out"
            )
        span = PeriodSpan.opened(schedule, self.today())
        return store.insert_period(connection, client_id, span, periods, self._clock.now())

    def of_client(self, client_ref: str) -> tuple[Client, list[PeriodView]]:
        client = self._clients.get(client_ref)
        with self._uow.reading() as connection:
            found = store.periods_of_client(connection, client.id)
            subscriptions = store.subscriptions_of_periods(connection, [period.id for period in found])
        return client, [
            PeriodView(period, tuple(item for item in subscriptions if item.period_id == period.id))
            for period in found
        ]

    def get(self, period_id: int) -> PeriodView:
        with self._uow.reading() as connection:
            return self._view(connection, period_id)

    def modify(self, period_id: int, *, invoice_day: int, invoice_month: int | None = None) -> DateChange:
        """Move the period's billing date (seed 004): its current span keeps its start and ends on the first
        new invoice day after today; nothing is prorated for the change."""
        with self._uow.writing() as connection:
            period = self._require_period(connection, period_id, for_update=True)
            if period.ended_on is not None:
                raise InputError(f"period {period_id} ended on {period.ended_on}; it no longer recharges")
            schedule = _schedule(period.frequency, invoice_day, invoice_month)
            after = period.span.with_schedule(schedule, self.today())
            store.save_span(connection, period_id, after)
        log.info(
            "billing date changed",
            period=period_id,
            next_recharge_before=period.span.next_recharge_on.isoformat(),
            next_recharge_after=after.next_recharge_on.isoformat(),
        )
        return DateChange(period_id, period.span, after)

    def delete(self, period_id: int) -> StoredPeriod:
        """Delete an empty period, for good."""
        with self._uow.writing() as connection:
            period = self._require_period(connection, period_id, for_update=True)
            held = store.subscriptions_of_periods(connection, [period_id])
            if held:
                ids = ", ".join(str(item.id) for item in held)
                raise InputError(
                    f"period {period_id} still holds subscription(s) {ids}; move them to another period "
                    f"first (`billing-bridge period move {held[0].id} --to PERIOD`), then delete it"
                )
            store.delete_period(connection, period_id)
        return period

    # -- subscriptions -------------------------------------------------------------------------------------

    def subscribe(
        self, client_ref: str, *, name: str, amount: str, period_id: int, prorate: bool = False
    ) -> StoredSubscription:
        """A recurring fee in the client's period ``period_id`` (of the period's frequency), from now on."""
        client = self._clients.get(client_ref)
        name = name.strip()
        if not name:
            raise InputError("--name is empty; name the subscription, e.g. --name support")
        value = _amount("--amount", amount)
        now = self._clock.now()
        with self._uow.writing() as connection:
            period = self._require_period(connection, period_id)
            if period.client_id != client.id:
                raise InputError(
                    f"period {period_id} belongs to client {period.client_id}, not {client.id}; "
                    f"`billing-bridge period list {client.id}` shows the client's periods"
                )
            if period.ended_on is not None:
                raise InputError(
                    f"period {period_id} ended on {period.ended_on}; put the subscription elsewhere"
                )
            subscription_id = store.insert_subscription(
                connection,
                {
                    "client_id": client.id,
                    "period_id": period_id,
                    "name": name,
                    "frequency": period.frequency,
                    "amount": value,
                    "prorate": prorate,
                    "started_at": now,
                    "billed_until": None,
                    "created_at": now,
                },
            )
            found = store.subscription(connection, subscription_id)
        assert found is not None
        return found

    def charge(self, subscription_id: int, *, amount: str, description: str, prorate: bool) -> ChargeView:
        """A one-off charge billed at the end of the subscription's period; prorated from today to the
        billing date in force now, which it keeps whatever happens to that date later (seed 004)."""
        description = description.strip()
        if not description:
            raise InputError("--description is empty; say what the charge is for")
        value = _amount("--amount", amount)
        today = self.today()
        with self._uow.writing() as connection:
            subscription = self._require_subscription(connection, subscription_id)
            period = self._require_period(connection, subscription.period_id)
            charge = Charge.added(value, today, period.span, prorate)
            charge_id = store.insert_charge(
                connection,
                {
                    "subscription_id": subscription_id,
                    "description": description,
                    "amount": value,
                    "prorate": prorate,
                    "added_on": today,
                    "span_start": charge.span_start,
                    "bill_until": charge.bill_until,
                    "invoice_id": None,
                    "created_at": self._clock.now(),
                },
            )
            stored = next(
                item for item in store.unbilled_charges(connection, [subscription_id]) if item.id == charge_id
            )
            client = client_store.client_by_id(connection, subscription.client_id)
            assert client is not None
        return ChargeView(stored, charge.value(), client.currency)

    def move(
        self, subscription_id: int, *, to: int | None = None, new: NewPeriod | None = None
    ) -> PeriodView:
        """Put the subscription in another period of the client (existing, or new with ``new``); refused for a
        period of another frequency: a subscription's frequency never changes."""
        if (to is None) == (new is None):
            raise InputError("give exactly one of --to PERIOD or --new (with --invoice-day ...)")
        with self._uow.writing() as connection:
            subscription = self._require_subscription(connection, subscription_id)
            if new is not None:
                frequency = new.frequency or subscription.frequency
                self._same_frequency(subscription, frequency, "the new period")
                to = self._create(
                    connection,
                    subscription.client_id,
                    frequency,
                    new.invoice_day,
                    new.invoice_month,
                    new.periods,
                )
            assert to is not None
            target = self._require_period(connection, to, for_update=True)
            if target.client_id != subscription.client_id:
                raise InputError(
                    f"period {to} belongs to client {target.client_id}, not to subscription "
                    f"{subscription_id}'s client {subscription.client_id}"
                )
            self._same_frequency(subscription, target.frequency, f"period {to}")
            if target.ended_on is not None:
                raise InputError(f"period {to} ended on {target.ended_on}; move the subscription elsewhere")
            store.move_subscription(connection, subscription_id, to)
            return self._view(connection, to)

    def _same_frequency(self, subscription: StoredSubscription, frequency: str, where: str) -> None:
        if frequency != subscription.frequency:
            raise InputError(
                f"subscription {subscription.id} ({subscription.name}) is {subscription.frequency} and "
                f"{where} is {frequency}; a subscription's frequency never changes: move it to a "
                f"{subscription.frequency} period (or create one with --new --invoice-day D)"
            )

    # -- recharging ----------------------------------------------------------------------------------------

    def recharge(self, today: date | None = None, *, dry_run: bool = False) -> list[Recharged]:
        """Recharge every period whose next recharge date is ``today`` (default: today) or earlier, each
        missed recharge on its own invoice; each period in its own transaction."""
        today = today or self.today()
        with self._uow.reading() as connection:
            due = [period.id for period in store.due_periods(connection, today)]
        done: list[Recharged] = []
        for period_id in due:
            done += self._recharge_period(period_id, today, dry_run)
        return done

    def _recharge_period(self, period_id: int, today: date, dry_run: bool) -> list[Recharged]:
        done: list[Recharged] = []
        try:
            with self._uow.writing(dry_run=dry_run) as connection:
                period = store.period(connection, period_id, for_update=True)
                while (
                    period is not None and period.ended_on is None and period.span.next_recharge_on <= today
                ):
                    done.append(self._recharge_once(connection, period))
                    period = store.period(connection, period_id)
        except Conflict:
            log.info("recharge made by another run meanwhile", period=period_id)
            return []
        return done

    def _recharge_once(self, connection: Tx, period: StoredPeriod) -> Recharged:
        """Bill the span ending on the period's next recharge date (domain/periods.py), and start the next."""
        client = client_store.client_by_id(connection, period.client_id)
        assert client is not None  # a period's client is never deleted (foreign key)
        held = store.subscriptions_of_periods(connection, [period.id])
        charges = store.unbilled_charges(connection, [item.id for item in held]) if held else []
        config = self._configurations.of(client.configuration)
        done = recharge(
            client_id=client.id,
            period_id=period.id,
            span=period.span,
            charged=period.charged,
            periods=period.periods,
            subscriptions=[self._subscription(item) for item in held],
            charges=[_pending(charge) for charge in charges],
            terms=store.terms_of_client(connection, client.id) if held else ClientTerms(),
            plan_fees=self._plan_fees,
            currency=client.currency,
            invoice_zero_amounts=not config.do_not_invoice_zero_prices,
            zone=self._zone,
        )
        if done.charged is None:  # an empty period: nothing happens but its dates
            store.save_span(connection, period.id, done.next_span)
            return Recharged(period.id, client.id, done.span, None, None, Decimal(0), ())
        reference, number = None, None
        if done.invoice is not None:
            invoice = done.invoice
            reference = invoice.reference
            now = self._clock.now()
            recurring = NewInvoice(
                client=client,
                reference=reference,
                kind="recurring",
                period=invoice.period,
                issuer=issuer(config),
                issued_at=now,
                lines=invoice.lines,
                total=invoice.total,
                items=invoice.items,
                notes=invoice.notes,
            )
            issued = issue(connection, recurring, config, self._zone, now=now, notifier=self._notifier)
            number = issued.shown_number
            store.mark_charges_billed(connection, list(done.charges), issued.id)
        store.set_billed_until(connection, list(done.subscriptions), done.recharged_on)
        store.save_span(connection, period.id, done.next_span, charged=done.charged, ended_on=done.ended_on)
        log.info(
            "period recharged",
            period=period.id,
            client=client.id,
            on=done.recharged_on.isoformat(),
            reference=reference,
        )
        return Recharged(period.id, client.id, done.span, reference, number, done.total, done.lines)

    def _subscription(self, item: StoredSubscription) -> Subscription:
        return Subscription(
            item.id, item.name, item.amount, item.prorate, self._local_day(item.started_at), item.billed_until
        )

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self._zone).date()

    # -- helpers -------------------------------------------------------------------------------------------

    def _view(self, connection: Tx, period_id: int) -> PeriodView:
        period = self._require_period(connection, period_id)
        return PeriodView(period, tuple(store.subscriptions_of_periods(connection, [period_id])))

    def _require_period(self, connection: Tx, period_id: int, *, for_update: bool = False) -> StoredPeriod:
        period = store.period(connection, period_id, for_update=for_update)
        if period is None:
            raise NotFound(
                f"no billing period {period_id}; `billing-bridge period list CLIENT` shows a client's periods"
            )
        return period

    def _require_subscription(self, connection: Tx, subscription_id: int) -> StoredSubscription:
        found = store.subscription(connection, subscription_id)
        if found is None:
            raise NotFound(
                f"no subscription {subscription_id}; `billing-bridge period list CLIENT` shows the client's "
                "subscriptions"
            )
        return found


def _schedule(frequency: str, invoice_day: int, invoice_month: int | None) -> BillingPeriod:
    try:
        return period_of(frequency, invoice_day, invoice_month)
    except ValueError as error:
        raise InputError(str(error)) from None


def _amount(option: str, text: str) -> Decimal:
    try:
        value = parse_money(text)
    except ValueError as error:
        raise InputError(f"{option}: {error}") from None
    if value < 0:
        raise InputError(f"{option} {text} is negative; give an amount of 0 or more, e.g. {option} 10.00")
    return value


def _pending(charge: StoredCharge) -> PendingCharge:
    added = Charge(charge.amount, charge.added_on, charge.span_start, charge.bill_until, charge.prorate)
    return PendingCharge(charge.id, charge.subscription_id, charge.description, added)
