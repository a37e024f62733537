"""What a client is told, as values: one notice per event, holding only facts that are true when it is made.

The credit engine, the invoicing and the staff's suspension decide *that* a client must be told; these
values say *what*, so a template (bridge/web/templates/mail_<event>.txt, brandable by the operator) can
only print facts: a "runs out in about N hours" notice exists only while the up-to-date credit is above
zero and something burns it (:class:`CreditLow`); at or below zero the notice is :class:`CreditExhausted`,
which says what happens next by the configuration's suspension rule (:func:`suspension_expected`).

Pure values and rules (stdlib only). Each notice names its :attr:`event` (the template) and its
:meth:`facts` (the template's values, money as exact strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import ClassVar

from bridge.domain.configuration import Configuration

HORIZON_HOURS = Decimal(24 * 366 * 100)
"""Beyond a century a date is not worth telling (and would overflow a datetime)."""


class Event(StrEnum):
    """The events a client is told about; each has one template, ``mail_<value>.txt``."""

    CREDIT_LOW = "credit_low"
    CREDIT_EXHAUSTED = "credit_exhausted"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    TERMINATED = "terminated"
    INVOICE_ISSUED = "invoice_issued"
    INVOICE_OVERDUE = "invoice_overdue"


@dataclass(frozen=True)
class MailText:
    """A notice as rendered for one client: who it is from, its subject and its plain-text body."""

    sender: str
    subject: str
    body: str


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def about_hours(hours: Decimal) -> int:
    """Whole hours, rounded half up, never below 1: "about 0 hours" is not something to tell anyone."""
    return max(1, int(hours.quantize(Decimal(1), rounding=ROUND_HALF_UP)))


@dataclass(frozen=True)
class CreditLow:
    """Up-to-date credit is above zero and runs out in about ``hours_left`` at the current burn rate."""

    event: ClassVar[Event] = Event.CREDIT_LOW
    threshold_hours: int
    up_to_date: Decimal
    currency: str
    burn_rate: Decimal
    hours_left: Decimal
    runs_out_at: datetime

    def __post_init__(self) -> None:
        if self.up_to_date <= 0 or self.burn_rate <= 0:
            raise ValueError("a credit-low notice needs credit above zero and a burn rate above zero")

    def facts(self) -> dict[str, object]:
        return {
            "threshold_hours": self.threshold_hours,
            "up_to_date": _amount(self.up_to_date),
            "currency": self.currency,
            "burn_rate": _amount(self.burn_rate),
            "hours_left": about_hours(self.hours_left),
            "runs_out_at": self.runs_out_at,
        }


@dataclass(frozen=True)
class CreditExhausted:
    """Up-to-date credit is at or below zero. ``suspension_at``: when the configuration's suspension rule
    suspends the client (None: suspension is off, or nothing burns so the credit limit is never reached);
    ``already_under_limit``: the client is under the credit limit now."""

    event: ClassVar[Event] = Event.CREDIT_EXHAUSTED
    up_to_date: Decimal
    currency: str
    credit_limit: Decimal
    suspension_enabled: bool
    suspension_at: datetime | None

    def __post_init__(self) -> None:
        if self.up_to_date > 0:
            raise ValueError("a credit-exhausted notice needs credit at or below zero")

    def facts(self) -> dict[str, object]:
        return {
            "up_to_date": _amount(self.up_to_date),
            "below_zero": self.up_to_date < 0,
            "currency": self.currency,
            "credit_limit": _amount(self.credit_limit),
            "suspension_enabled": self.suspension_enabled,
            "suspension_at": self.suspension_at,
        }


@dataclass(frozen=True)
class Suspended:
    """The client's services were suspended (shelved when ``shelved``) for low credit, or by staff
    (``by_staff``: then no credit reason is given, and only staff resume them)."""

    event: ClassVar[Event] = Event.SUSPENDED
    up_to_date: Decimal
    currency: str
    credit_limit: Decimal
    resources: tuple[str, ...]
    shelved: bool
    termination_at: datetime | None
    by_staff: bool = False
    """Suspended by hand (``client suspend``): not for its credit, and resumed only by staff."""

    def facts(self) -> dict[str, object]:
        return {
            "by_staff": self.by_staff,
            "up_to_date": _amount(self.up_to_date),
            "currency": self.currency,
            "credit_limit": _amount(self.credit_limit),
            "resources": list(self.resources),
            "shelved": self.shelved,
            "termination_at": self.termination_at,
        }


@dataclass(frozen=True)
class Resumed:
    """The client's suspension ended: its services were resumed (unshelved when ``unshelved``), by staff
    (``by_staff``) or because its credit is back at or above the credit limit."""

    event: ClassVar[Event] = Event.RESUMED
    up_to_date: Decimal
    currency: str
    resources: tuple[str, ...]
    unshelved: bool
    by_staff: bool = False

    def facts(self) -> dict[str, object]:
        return {
            "by_staff": self.by_staff,
            "up_to_date": _amount(self.up_to_date),
            "currency": self.currency,
            "resources": list(self.resources),
            "unshelved": self.unshelved,
        }


@dataclass(frozen=True)
class Terminated:
    """The client's services were deleted after the suspension (seed 001's automatic termination)."""

    event: ClassVar[Event] = Event.TERMINATED
    up_to_date: Decimal
    currency: str
    resources: tuple[str, ...]

    def facts(self) -> dict[str, object]:
        return {
            "up_to_date": _amount(self.up_to_date),
            "currency": self.currency,
            "resources": list(self.resources),
        }


@dataclass(frozen=True)
class InvoiceNotice:
    """An invoice of the bridge's, issued unpaid (its PDF goes with the mail) or overdue."""

    event: ClassVar[Event]
    invoice_reference: str
    number: str
    total: Decimal
    currency: str
    issued_at: datetime
    due_at: datetime

    def facts(self) -> dict[str, object]:
        return {
            "invoice_reference": self.invoice_reference,
            "number": self.number,
            "total": _amount(self.total),
            "currency": self.currency,
            "issued_at": self.issued_at,
            "due_at": self.due_at,
        }


@dataclass(frozen=True)
class InvoiceIssued(InvoiceNotice):
    event: ClassVar[Event] = Event.INVOICE_ISSUED


@dataclass(frozen=True)
class InvoiceOverdue(InvoiceNotice):
    event: ClassVar[Event] = Event.INVOICE_OVERDUE


Notice = CreditLow | CreditExhausted | Suspended | Resumed | Terminated | InvoiceIssued | InvoiceOverdue


def credit_notice(
    config: Configuration,
    *,
    threshold_hours: int,
    up_to_date: Decimal,
    currency: str,
    burn_rate: Decimal,
    credit_limit: Decimal,
    now: datetime,
    under_limit_since: datetime | None,
) -> CreditLow | CreditExhausted:
    """The true notice for a crossed credit threshold: how long the credit lasts while it is above zero
    and burning; else that it is at or below zero, and when the suspension rule acts."""
    if up_to_date > 0 and burn_rate > 0:
        hours = up_to_date / burn_rate
        return CreditLow(
            threshold_hours,
            up_to_date,
            currency,
            burn_rate,
            hours,
            now + timedelta(hours=float(hours)),
        )
    return CreditExhausted(
        up_to_date,
        currency,
        credit_limit,
        config.suspension.enabled,
        suspension_expected(config, up_to_date, burn_rate, credit_limit, now, under_limit_since),
    )


def suspension_expected(
    config: Configuration,
    up_to_date: Decimal,
    burn_rate: Decimal,
    credit_limit: Decimal,
    now: datetime,
    under_limit_since: datetime | None,
) -> datetime | None:
    """When the automatic suspension of ``config`` would suspend a client whose up-to-date credit falls at
    ``burn_rate`` per hour: once it is under the credit limit, and then, when delays are set, at the first
    one matched (under the limit for ``delay_hours``, or under it by ``delay_credit``). None when
    suspension is off, or when the credit never gets there (nothing burns)."""
    rule = config.suspension
    if not rule.enabled:
        return None
    under_at = _reaches(up_to_date, credit_limit, burn_rate, now)
    if under_at is None:
        return None
    since = under_limit_since if under_limit_since is not None and up_to_date < credit_limit else under_at
    if rule.delay_hours is None and rule.delay_credit is None:
        return max(since, now)
    candidates = []
    if rule.delay_hours is not None:
        candidates.append(max(since + timedelta(hours=rule.delay_hours), now))
    if rule.delay_credit is not None:
        by_credit = _reaches(up_to_date, credit_limit - rule.delay_credit, burn_rate, now)
        if by_credit is not None:
            candidates.append(by_credit)
    return min(candidates) if candidates else None


def _reaches(up_to_date: Decimal, level: Decimal, burn_rate: Decimal, now: datetime) -> datetime | None:
    """When the up-to-date credit is under ``level``: now if it already is, None if nothing burns."""
    if up_to_date < level:
        return now
    if burn_rate <= 0:
        return None
    hours = (up_to_date - level) / burn_rate
    return None if hours > HORIZON_HOURS else now + timedelta(hours=float(hours))
