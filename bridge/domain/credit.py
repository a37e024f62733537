"""Credit decisions: notifications, suspension, termination, auto-invoices and payments from credit.

Pure functions of values the store hands over, and of ``now`` as a parameter (never a clock read), so the
daemon's ``process_clients``, a manual run for a past moment and ``--dry-run --json`` all decide alike.
Every decision carries a ``reason`` with its numbers, for the operator reading a dry run.

Vocabulary (seeds 000 and 001), all amounts Decimal in the client's currency:

* **credit**: payments and credit added, minus the usage already settled;
* **unsettled usage**: usage cost collected so far and not yet settled (the running hour included);
* **up-to-date credit** = credit - unsettled usage; every rule looks at this one;
* **burn rate**: what the client's running resources cost per hour at current prices
  (:func:`bridge.domain.pricing.burn_rate_per_hour`), which gives the hours until the up-to-date credit
  reaches zero (credit notifications) and the credit limit (suspension, auto-invoices);
* **credit limit**: under it the client is suspended, and later terminated (or kept suspended).

Re-deciding for the same moment after the previous decision was carried out changes nothing: a sent
notification is in ``already_sent``, a suspended client has ``suspended_at`` (and is never terminated in
the same moment it was suspended), and an issued auto-invoice is unpaid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import NamedTuple

from bridge.domain.configuration import AutoInvoiceMode, AutoInvoicing, Configuration
from bridge.domain.instants import as_utc
from bridge.domain.money import Money, round_money
from bridge.domain.pricing import MissingPrice, PriceBook, estimated_monthly_cost, quantize_hours

AUTO_INVOICE_LEAD_TIME_HOURS = 120
"""Fleio's default: an auto-invoice is issued 120 hours before the credit reaches the credit limit."""

_ZERO = Decimal(0)
_HOUR = Decimal(3600)
_MICROSECONDS_PER_HOUR = Decimal(3_600_000_000)
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class CreditState:
    """A client's ledger at one moment: ``credit`` and the ``unsettled`` usage cost, in its currency."""

    credit: Decimal
    unsettled: Decimal

    def __post_init__(self) -> None:
        _require_amount(self.credit, "credit")
        _require_amount(self.unsettled, "unsettled")

    @property
    def up_to_date(self) -> Decimal:
        """The up-to-date credit: credit minus the unsettled usage cost."""
        return self.credit - self.unsettled

    def hours_until(self, level: Decimal, burn_rate_per_hour: Decimal) -> Decimal | None:
        """Hours until the up-to-date credit falls to ``level`` at ``burn_rate_per_hour``.

        0 when it is already at or under ``level``; None when nothing burns (it never gets there).
        """
        return hours_until(self.up_to_date, level, burn_rate_per_hour)


def hours_until(up_to_date: Decimal, level: Decimal, burn_rate_per_hour: Decimal) -> Decimal | None:
    """Hours until ``up_to_date`` credit falls to ``level``: 0 if already there, None if nothing burns."""
    _require_amount(up_to_date, "up-to-date credit")
    _require_amount(level, "level")
    _require_rate(burn_rate_per_hour)
    if up_to_date <= level:
        return Decimal(0)
    if burn_rate_per_hour == 0:
        return None
    return (up_to_date - level) / burn_rate_per_hour


class Verdict(NamedTuple):
    """A yes/no answer and why: unpacks as ``(allowed, reason)``, and is truthy only when allowed."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


# Credit notifications ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationsDue:
    """Which credit notification thresholds (hours before zero) to send now, and which to reset.

    ``to_send``: thresholds crossed and not sent yet, largest first. ``to_reset``: thresholds sent before
    that the client is back above (topped up, or burning less), so they can be sent again at the next
    crossing. ``hours_until_zero`` (to six places) is None when nothing burns.
    """

    to_send: tuple[int, ...]
    to_reset: tuple[int, ...]
    hours_until_zero: Decimal | None
    reason: str


def notifications_due(
    thresholds_hours: Iterable[int],
    up_to_date: Decimal,
    burn_rate: Decimal,
    already_sent: frozenset[int],
) -> NotificationsDue:
    """The credit notifications to send: each threshold once per crossing.

    A threshold of N hours is crossed when the up-to-date credit reaches zero in N hours or less at the
    current burn rate (a client already under zero, or at zero with something running, has crossed them
    all); it resets when the hours until zero are above N again, "when credit goes back above it". A
    client at exactly zero with nothing running (a new client that has not paid or used anything) has
    nothing to be told: its credit is not running out.
    """
    idle_at_zero = up_to_date == 0 and burn_rate == 0
    hours = None if idle_at_zero else hours_until(up_to_date, Decimal(0), burn_rate)
    thresholds = sorted(set(thresholds_hours), reverse=True)
    crossed = {threshold for threshold in thresholds if hours is not None and hours <= threshold}
    to_send = tuple(threshold for threshold in thresholds if threshold in crossed - already_sent)
    to_reset = tuple(sorted(already_sent - crossed, reverse=True))
    when = (
        "nothing is running, so it does not go down"
        if hours is None
        else f"it reaches zero in {_shown(hours)} h at {_rate(burn_rate)}/h"
    )
    reason = f"up-to-date credit {_shown(up_to_date)}: {when}"
    if to_send:
        reason += f"; send the {_hours_list(to_send)} notification{_plural(to_send)}"
    if to_reset:
        reason += f"; reset the {_hours_list(to_reset)} notification{_plural(to_reset)} (back above)"
    if not to_send and not to_reset:
        reason += "; no notification due"
    return NotificationsDue(to_send, to_reset, None if hours is None else quantize_hours(hours), reason)


# Suspension, resume and termination ----------------------------------------------------------------------


class DecisionKind(StrEnum):
    """What to do with a client's services because of its credit."""

    NONE = "none"
    SUSPEND = "suspend"
    RESUME = "resume"
    TERMINATE = "terminate"
    KEEP_SUSPENDED = "keep_suspended"


@dataclass(frozen=True)
class Decision:
    """A suspension decision and its reason.

    ``shelve``: on SUSPEND, shelve the instances first (*shelve instances on suspend*); a RESUME unshelves
    whatever was shelved. ``due_at``: when a delayed action comes due (the end of the suspension delay by
    hours, or the termination), if there is such a moment.
    """

    kind: DecisionKind
    reason: str
    shelve: bool = False
    due_at: datetime | None = None


def suspension_decision(
    config: Configuration,
    state: CreditState,
    has_agreement: bool,
    now: datetime,
    under_limit_since: datetime | None,
    suspended_at: datetime | None,
    burn_rate: Decimal = _ZERO,
) -> Decision:
    """Suspend, resume, terminate or keep suspended, from the up-to-date credit and the credit limit.

    ``under_limit_since``: when the client was first seen under the credit limit (None = not before now).
    ``suspended_at``: when the client was suspended for low credit (None = not suspended for it).

    * Not suspended and under the credit limit (on agreement or not): SUSPEND when automatic suspension is
      on and no delay is configured, or as soon as the first delay is matched: *delay by hours* (under
      the limit for that many hours) or *delay until credit is used*, which counts from the moment the
      shortfall under the limit reaches the delay amount (10 under a delay of 10 suspends). While a delay
      runs, ``due_at`` is when the first one ends: the hours' end, or the moment the shortfall reaches the
      delay amount at ``burn_rate`` per hour (none while nothing burns).
    * Suspended and back at or above the credit limit: RESUME.
    * Suspended and still under it: TERMINATE once more than the termination delay has passed since the
      suspension, only when termination is enabled and not replaced by *suspend instead of termination*;
      else KEEP_SUSPENDED. Never in the same moment as the suspension, so a re-run changes nothing.
    """
    now = as_utc(now)
    limit = config.effective_credit_limit(has_agreement)
    up_to_date = state.up_to_date
    position = f"up-to-date credit {_shown(up_to_date)}"
    limit_text = f"the credit limit {_shown(limit)}" + (" (on agreement)" if has_agreement else "")
    if suspended_at is not None:
        suspended_at = as_utc(suspended_at)
        if up_to_date >= limit:
            return Decision(
                DecisionKind.RESUME,
                f"{position} is back at or above {limit_text}; resume the services suspended at "
                f"{suspended_at.isoformat()} and unshelve what was shelved",
            )
        return _after_suspension(config, f"{position} is still under {limit_text}", now, suspended_at)
    if up_to_date >= limit:
        return Decision(DecisionKind.NONE, f"{position} is at or above {limit_text}")
    under = f"{position} is under {limit_text}"
    if not config.suspension.enabled:
        return Decision(DecisionKind.NONE, f"{under}, but automatic suspension is off")
    since = now if under_limit_since is None else as_utc(under_limit_since)
    return _suspension(config, under, limit - up_to_date, now, since, burn_rate)


def _suspension(
    config: Configuration,
    under: str,
    shortfall: Decimal,
    now: datetime,
    since: datetime,
    burn_rate: Decimal,
) -> Decision:
    rule = config.suspension
    matched: list[str] = []
    waiting: list[str] = []
    due_at = None
    if rule.delay_hours is None and rule.delay_credit is None:
        matched.append("no suspension delay is configured")
    if rule.delay_hours is not None:
        ends = since + timedelta(hours=rule.delay_hours)
        if now >= ends:
            matched.append(
                f"it has been under the limit since {since.isoformat()}, longer than the delay of "
                f"{rule.delay_hours} h"
            )
        else:
            due_at = ends
            waiting.append(
                f"under the limit for {_shown(_hours_between(since, now))} h of the {rule.delay_hours} h "
                f"delay (ends {ends.isoformat()})"
            )
    if rule.delay_credit is not None:
        if shortfall >= rule.delay_credit:
            matched.append(
                f"it is {_shown(shortfall)} under the limit, the delay of {_shown(rule.delay_credit)} is used"
            )
        else:
            left = rule.delay_credit - shortfall
            reaches = _credit_delay_ends(now, left, burn_rate)
            if reaches is not None:
                due_at = reaches if due_at is None else min(due_at, reaches)
            when = "" if reaches is None else f", used at {reaches.isoformat()} at {_rate(burn_rate)}/h"
            waiting.append(
                f"{_shown(shortfall)} under the limit, {_shown(left)} left of the delay of "
                f"{_shown(rule.delay_credit)}{when}"
            )
    if matched:
        shelve = config.shelve_instances_on_suspend
        action = "suspend, shelving the instances" if shelve else "suspend"
        return Decision(DecisionKind.SUSPEND, f"{under}; {' and '.join(matched)}: {action}", shelve=shelve)
    return Decision(DecisionKind.NONE, f"{under}; suspension delayed: {'; '.join(waiting)}", due_at=due_at)


def _credit_delay_ends(now: datetime, left: Decimal, burn_rate: Decimal) -> datetime | None:
    """When ``left`` more credit is used at ``burn_rate`` per hour (to the microsecond, rounded up); None
    when nothing burns."""
    if burn_rate <= 0:
        return None
    microseconds = (left / burn_rate * _MICROSECONDS_PER_HOUR).to_integral_value(rounding=ROUND_CEILING)
    return now + timedelta(microseconds=int(microseconds))


def _after_suspension(config: Configuration, under: str, now: datetime, suspended_at: datetime) -> Decision:
    rule = config.termination
    suspended = f"suspended at {suspended_at.isoformat()}"
    if not rule.enabled:
        return Decision(DecisionKind.KEEP_SUSPENDED, f"{under}; {suspended}; automatic termination is off")
    due = suspended_at + timedelta(hours=rule.delay_hours)
    if now <= due:
        return Decision(
            DecisionKind.KEEP_SUSPENDED,
            f"{under}; {suspended}; termination comes after the delay of {rule.delay_hours} h, "
            f"at {due.isoformat()}",
            due_at=due,
        )
    if rule.suspend_instead:
        return Decision(
            DecisionKind.KEEP_SUSPENDED,
            f"{under}; {suspended}; the termination delay of {rule.delay_hours} h has passed, but this "
            "configuration suspends instead of terminating",
        )
    return Decision(
        DecisionKind.TERMINATE,
        f"{under}; {suspended}; the termination delay of {rule.delay_hours} h has passed: terminate",
    )


# Credit auto-invoicing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AutoInvoiceDecision:
    """Whether to issue a credit auto-invoice now, for how much, and why.

    ``amount`` is the invoice total (rounded by :func:`~bridge.domain.money.round_money`), or None when no
    auto-invoice is issued. ``needed`` is the estimated monthly consumption or the fixed amount, before
    the unpaid invoices are subtracted; ``hours_until_limit`` (to six places) is None when nothing burns.
    """

    amount: Decimal | None
    currency: str
    reason: str
    needed: Decimal | None = None
    hours_until_limit: Decimal | None = None


def auto_invoice_amount(
    config: Configuration,
    hourly_cost: Money,
    up_to_date: Decimal,
    credit_limit: Decimal,
    unpaid_invoices_total: Decimal,
    *,
    has_unpaid_auto_invoice: bool,
    lead_time_hours: int = AUTO_INVOICE_LEAD_TIME_HOURS,
    choice: AutoInvoicing | None = None,
) -> AutoInvoiceDecision:
    """The credit auto-invoice due now, if any (seed 000).

    Due when the client has auto-invoicing enabled (``choice``, the client's own setting; None = the
    configuration's) and its up-to-date credit reaches ``credit_limit`` within ``lead_time_hours`` at
    ``hourly_cost``. It asks for the estimated monthly consumption (capped by the billable seconds per
    month, so less than 24 h x 30 days x the hourly cost where the cap applies) or the fixed amount, minus
    ``unpaid_invoices_total`` (unpaid invoices for cycle end or credit addition): $100 needed and $30
    unpaid gives $70. Nothing while an auto-invoice is unpaid, or when the difference is 0 or less.
    """
    currency = hourly_cost.currency
    _require_amount(up_to_date, "up-to-date credit")
    _require_amount(credit_limit, "credit limit")
    _require_amount(unpaid_invoices_total, "unpaid invoices total")
    _require_rate(hourly_cost.amount)
    if unpaid_invoices_total < 0:
        raise ValueError(f"unpaid invoices total {unpaid_invoices_total} is negative")
    if isinstance(lead_time_hours, bool) or not isinstance(lead_time_hours, int) or lead_time_hours < 0:
        raise ValueError(
            f"lead_time_hours must be a whole number of hours, 0 or more; got {lead_time_hours!r}"
        )
    settings = config.auto_invoicing if choice is None else choice
    if not settings.enabled:
        return AutoInvoiceDecision(None, currency, "credit auto-invoicing is off for this client")
    if has_unpaid_auto_invoice:
        return AutoInvoiceDecision(
            None, currency, "an auto-invoice is still unpaid; no second one is issued until it is paid"
        )
    burn = hourly_cost.amount
    if burn == 0:
        return AutoInvoiceDecision(
            None, currency, "nothing is running, so the credit never reaches the credit limit"
        )
    exact_hours = hours_until(up_to_date, credit_limit, burn)
    assert exact_hours is not None  # the burn rate is above 0
    hours = quantize_hours(exact_hours)
    reaches = (
        f"up-to-date credit {_shown(up_to_date)} {currency} reaches the credit limit "
        f"{_shown(credit_limit)} {currency} in {_shown(hours)} h at {_rate(burn)} {currency}/h"
    )
    if up_to_date - credit_limit > burn * lead_time_hours:  # hours > lead time, without rounding a division
        return AutoInvoiceDecision(
            None,
            currency,
            f"{reaches}, later than the lead time of {lead_time_hours} h",
            None,
            hours,
        )
    if settings.mode is AutoInvoiceMode.FIXED:
        assert settings.fixed_amount is not None  # AutoInvoicing refuses FIXED without an amount
        needed = round_money(settings.fixed_amount, currency)
        what = f"the fixed amount {needed} {currency}"
    else:
        needed = estimated_monthly_cost(hourly_cost, config.billable_seconds_per_month).amount
        cap = config.billable_seconds_per_month
        capped = "no billable-seconds limit" if cap is None else f"at most {cap:,} billable seconds"
        what = f"the estimated monthly consumption {needed} {currency} ({capped})"
    amount = round_money(needed - unpaid_invoices_total, currency)
    unpaid = f"unpaid invoices of {_shown(unpaid_invoices_total)} {currency}"
    within = f"{reaches}, within the lead time of {lead_time_hours} h"
    if amount <= 0:
        return AutoInvoiceDecision(None, currency, f"{within}; {unpaid} already cover {what}", needed, hours)
    return AutoInvoiceDecision(
        amount,
        currency,
        f"{within}: auto-invoice {amount} {currency} = {what} - {unpaid}",
        needed,
        hours,
    )


# Paying from credit, creating services -------------------------------------------------------------------


def can_pay_from_credit(
    invoice_total: Decimal, up_to_date: Decimal, minimum_after_payment: Decimal, only_when_enough: bool
) -> Verdict:
    """Whether an invoice may be paid from the up-to-date credit.

    With ``only_when_enough`` (*auto pay invoice only when enough credit*, and always for a payment the
    client asks for) the up-to-date credit left after paying must be at least ``minimum_after_payment``.
    """
    _require_amount(invoice_total, "invoice total")
    _require_amount(up_to_date, "up-to-date credit")
    _require_amount(minimum_after_payment, "minimum up-to-date credit")
    left = up_to_date - invoice_total
    paying = (
        f"paying {_shown(invoice_total)} from up-to-date credit {_shown(up_to_date)} leaves {_shown(left)}"
    )
    if not only_when_enough:
        return Verdict(True, f"{paying}; auto pay only when enough credit is off")
    if left >= minimum_after_payment:
        return Verdict(True, f"{paying}, at least the minimum of {_shown(minimum_after_payment)}")
    return Verdict(
        False,
        f"{paying}, under the minimum up-to-date credit of {_shown(minimum_after_payment)} to be left after "
        "paying an invoice",
    )


def can_auto_pay_invoice(config: Configuration, invoice_total: Decimal, up_to_date: Decimal) -> Verdict:
    """Whether *automatic settlements* pay an invoice from credit now (only with *generate invoices* on)."""
    if not config.automatic_settlements:
        return Verdict(False, "automatic settlements are off")
    if not config.generate_invoices:
        return Verdict(
            False, "invoices are not generated here (generate invoices is off), so none is auto-paid"
        )
    return can_pay_from_credit(
        invoice_total,
        up_to_date,
        config.minimum_credit_after_payment,
        config.auto_pay_only_when_enough_credit,
    )


def can_create_services(
    config: Configuration,
    state: CreditState,
    has_agreement: bool,
    suspended_at: datetime | None = None,
) -> Verdict:
    """Whether the client may create or upgrade resources: it is not suspended (a suspended client's
    project is disabled), and its up-to-date credit is at least the required credit for new services (the
    agreement value for a client with a billing agreement)."""
    required = config.effective_required_credit(has_agreement)
    up_to_date = state.up_to_date
    agreement = " on agreement" if has_agreement else ""
    if suspended_at is not None:
        return Verdict(
            False,
            f"the client is suspended since {as_utc(suspended_at).isoformat()}: nothing is created until it "
            f"is resumed (up-to-date credit {_shown(up_to_date)}, required credit for new services"
            f"{agreement} {_shown(required)})",
        )
    if up_to_date >= required:
        return Verdict(
            True,
            f"up-to-date credit {_shown(up_to_date)} is at least the required credit for new services"
            f"{agreement} of {_shown(required)}",
        )
    return Verdict(
        False,
        f"up-to-date credit {_shown(up_to_date)} is under the required credit for new services{agreement} "
        f"of {_shown(required)}; add {_shown(required - up_to_date)} to create or upgrade resources",
    )


# Helpers -------------------------------------------------------------------------------------------------


# -- the up-to-date credit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceUsage:
    """One resource's unsettled usage on one plan: hours (and SolusVM tokens) since the client's usage was
    last settled or invoiced, and the end of its last collected window."""

    source: str
    resource_id: str
    name: str
    plan: str
    hours: Decimal
    tokens: Decimal | None
    last_window_end: datetime


@dataclass(frozen=True)
class RunningResource:
    """A resource that counts as running (its last window is recent), with what it costs per hour."""

    source: str
    resource_id: str
    name: str
    plan: str
    hourly_cost: Decimal


@dataclass(frozen=True)
class Balance:
    """A client's money at one moment: ``credit`` and ``unsettled`` usage (both rounded to the currency),
    the ``burn_rate`` per hour of its ``running`` resources, and the prices that were missing."""

    credit: Decimal
    unsettled: Decimal
    burn_rate: Decimal
    running: tuple[RunningResource, ...]
    problems: tuple[str, ...] = ()

    @property
    def up_to_date(self) -> Decimal:
        return self.credit - self.unsettled


def account(
    credit: Decimal,
    usage: Iterable[ResourceUsage],
    book: PriceBook,
    currency: str,
    at: datetime,
    running_horizon: timedelta,
) -> Balance:
    """The client's up-to-date credit at ``at`` (seed 001): its unsettled usage priced at current prices,
    plus the running hours since the last collected window.

    A resource runs when its last window ended within ``running_horizon`` before ``at``. A usage whose
    price is missing is left out (of the unsettled usage, or the burn rate), and said in ``problems``.
    """
    usage = list(usage)
    problems: list[str] = []
    unsettled = sum((_cost(book, total, problems) for total in usage), _ZERO)
    latest: dict[tuple[str, str], ResourceUsage] = {}
    for total in usage:
        key = (total.source, total.resource_id)
        if key not in latest or total.last_window_end > latest[key].last_window_end:
            latest[key] = total
    recent = at - running_horizon
    running = tuple(
        RunningResource(
            total.source, total.resource_id, total.name, total.plan, _hourly(book, total, problems)
        )
        for total in sorted(latest.values(), key=lambda total: (total.source, total.resource_id))
        if total.last_window_end >= recent
    )
    burn = sum((resource.hourly_cost for resource in running), _ZERO)
    if running:
        last_end = max(latest[(r.source, r.resource_id)].last_window_end for r in running)
        if at > last_end:  # the running hours since the last collected window
            unsettled += burn * Decimal((at - last_end).total_seconds()) / _HOUR
    return Balance(
        credit=round_money(credit, currency),
        unsettled=round_money(unsettled, currency),
        burn_rate=burn,
        running=running,
        problems=tuple(sorted(set(problems))),
    )


def running_horizon(window_length: timedelta, settle_delay: timedelta) -> timedelta:
    """How recent a resource's last window must be for it to count as running: one collection window (at
    least an hour), the delay before a window is collected, and an hour of slack."""
    return max(window_length, timedelta(hours=1)) + settle_delay + timedelta(hours=1)


def _cost(book: PriceBook, usage: ResourceUsage, problems: list[str]) -> Decimal:
    try:
        if usage.source == "solusvm" and usage.tokens is not None:
            return usage.tokens * book.solusvm_token_price()
        return usage.hours * book.hourly_cost("openstack", usage.plan)
    except MissingPrice as error:
        problems.append(f"{error}; its usage is left out of the up-to-date credit")
        return _ZERO


def _hourly(book: PriceBook, usage: ResourceUsage, problems: list[str]) -> Decimal:
    try:
        return book.hourly_cost("solusvm" if usage.source == "solusvm" else "openstack", usage.plan)
    except MissingPrice as error:
        problems.append(f"{error}; it is left out of the burn rate")
        return _ZERO


def _require_amount(value: object, what: str) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise TypeError(f"{what} must be a finite Decimal, not {value!r}; money is never a float")


def _require_rate(rate: object) -> None:
    _require_amount(rate, "burn rate")
    assert isinstance(rate, Decimal)
    if rate < 0:
        raise ValueError(f"burn rate {rate} per hour is negative")


def _hours_between(start: datetime, end: datetime) -> Decimal:
    return Decimal((end - start) // timedelta(microseconds=1)) / _MICROSECONDS_PER_HOUR


def _shown(amount: Decimal) -> str:
    """An amount or a number of hours for a reason text, to two places (display only; billed amounts use
    round_money)."""
    return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def _rate(rate: Decimal) -> str:
    """A burn rate for a reason text, to four places without trailing zeros (0.4167, 0.1, 10)."""
    return format(rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP).normalize(), "f")


def _hours_list(thresholds: tuple[int, ...]) -> str:
    return ", ".join(f"{threshold} h" for threshold in thresholds)


def _plural(items: tuple[int, ...]) -> str:
    return "s" if len(items) > 1 else ""
