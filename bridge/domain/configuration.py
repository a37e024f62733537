"""A configuration: the group of per-client billing settings of seed 001, as one frozen value.

Every client has exactly one configuration (new clients get the default one). It says how much credit a
client needs to create services (*required credit for new services*), where its credit runs out (*credit
limit*), how invoices are generated, numbered and paid from credit, which *credit notifications* are sent
before the credit reaches zero, and when a client is suspended, resumed and terminated.

Money is Decimal in the client's currency. The defaults follow Fleio's documentation where it gives one
(credit limit 0, billable seconds per month 2,400,000, "estimated monthly consumption" for auto-invoices)
and are otherwise the cautious choice: nothing is terminated unless :attr:`TerminationRule.enabled` is
set, no client is auto-invoiced unless :attr:`AutoInvoicing.enabled` is set, and an invoice is paid from
credit only when the credit covers it (``auto_pay_only_when_enough_credit``).

Validation happens when the value is built, and every ValueError names the key to fix, so a bad settings
file is refused at start-up rather than in the middle of a billing run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal, TypeVar

from bridge.domain.instants import as_utc
from bridge.domain.numbers import check_template
from bridge.domain.pricing import DEFAULT_BILLABLE_SECONDS_PER_MONTH
from bridge.domain.tax import TaxRules

MAX_CREDIT_NOTIFICATIONS = 3  # "a total of three notifications can be created" (seed 001)

InvoiceDetail = Literal["detailed", "simple"]

_Enum = TypeVar("_Enum", bound=StrEnum)


class InvoicingOption(StrEnum):
    """How invoices are issued and numbered (seed 001, "Invoicing options").

    The values are the ones of ``invoicing_option`` in the settings file.
    """

    PROFORMA_THEN_FISCAL = "proforma_then_fiscal"
    """Issue proforma invoices; each becomes fiscal, dated the payment day, when it is paid."""
    ALWAYS_FISCAL = "always_fiscal"
    """Always issue fiscal invoices with consecutive numbers."""
    PROFORMA_RANDOM = "proforma_random"
    """Only proforma invoices with random (non-sequential) numbers, where the law allows it."""


class AutoInvoiceMode(StrEnum):
    """What a credit auto-invoice asks for (seed 000, "Invoiced amount")."""

    ESTIMATED = "estimated"
    """The estimated monthly consumption at the current burn rate, with the billable-seconds cap."""
    FIXED = "fixed"
    """The client's fixed amount."""


@dataclass(frozen=True)
class SuspensionRule:
    """Automatic suspension when the up-to-date credit is under the credit limit (seed 001).

    ``delay_hours``: *enable delay by hours*, the client is not suspended until it has been under the credit
    limit for this many hours. ``delay_credit``: *enable delay until credit is used*, the client is not
    suspended until its up-to-date credit is under the credit limit by more than this amount. None turns a
    delay off; with both set the client is suspended as soon as the first one is matched.
    """

    enabled: bool = True
    delay_hours: int | None = None
    delay_credit: Decimal | None = None

    def __post_init__(self) -> None:
        if self.delay_hours is not None:
            _require_count(self.delay_hours, "suspension.delay_hours")
        if self.delay_credit is not None:
            _require_amount(self.delay_credit, "suspension.delay_credit")
            if self.delay_credit < 0:
                raise ValueError(
                    f"suspension.delay_credit is {self.delay_credit}; the amount the credit may go under the "
                    "credit limit cannot be negative (leave it out to turn the delay off)"
                )


@dataclass(frozen=True)
class TerminationRule:
    """Automatic termination ``delay_hours`` after a suspension for low credit (seed 001).

    Off unless ``enabled`` is set: terminating deletes a client's resources and cannot be undone.
    ``suspend_instead`` keeps the client suspended when the termination would be due.
    """

    enabled: bool = False
    delay_hours: int = 0
    suspend_instead: bool = False

    def __post_init__(self) -> None:
        _require_count(self.delay_hours, "termination.delay_hours")


@dataclass(frozen=True)
class AutoInvoicing:
    """Credit auto-invoicing (seed 000): an invoice issued before the credit reaches the credit limit.

    ``mode`` ESTIMATED (the default choice) asks for the estimated monthly consumption; FIXED asks for
    ``fixed_amount``, which is then required and positive.
    """

    enabled: bool = False
    mode: AutoInvoiceMode = AutoInvoiceMode.ESTIMATED
    fixed_amount: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", _enum(AutoInvoiceMode, self.mode, "auto_invoicing.mode"))
        if self.fixed_amount is not None:
            _require_amount(self.fixed_amount, "auto_invoicing.fixed_amount")
        if self.mode is AutoInvoiceMode.FIXED and (self.fixed_amount is None or self.fixed_amount <= 0):
            raise ValueError(
                f"auto_invoicing.fixed_amount is {self.fixed_amount}; a fixed-amount auto-invoice needs an "
                "amount above 0"
            )

    @property
    def choice(self) -> str:
        """The choice as written on the command line and kept in the store: ``off``, ``estimated`` or
        ``fixed:AMOUNT``."""
        if not self.enabled:
            return AUTO_INVOICING_OFF
        if self.mode is AutoInvoiceMode.FIXED:
            return f"{AutoInvoiceMode.FIXED.value}:{self.fixed_amount}"
        return AutoInvoiceMode.ESTIMATED.value

    def describe(self, currency: str) -> str:
        """The choice in words, for the operator and the client."""
        if not self.enabled:
            return "off"
        if self.mode is AutoInvoiceMode.FIXED:
            return f"on, a fixed amount of {self.fixed_amount} {currency}"
        return "on, the estimated monthly consumption"


AUTO_INVOICING_OFF = "off"
AUTO_INVOICING_CHOICES = "off, estimated or fixed:AMOUNT (e.g. fixed:200)"


def parse_auto_invoicing(text: str) -> AutoInvoicing:
    """A client's auto-invoicing choice from ``off``, ``estimated`` or ``fixed:AMOUNT`` (seed 000: "a
    fixed $200 top-up" is ``fixed:200``); ValueError saying what is accepted."""
    cleaned = text.strip().lower()
    if cleaned == AUTO_INVOICING_OFF:
        return AutoInvoicing(enabled=False)
    if cleaned == AutoInvoiceMode.ESTIMATED.value:
        return AutoInvoicing(enabled=True, mode=AutoInvoiceMode.ESTIMATED)
    mode, colon, amount_text = cleaned.partition(":")
    if mode != AutoInvoiceMode.FIXED.value or not colon:
        raise ValueError(f"{text!r} is not a choice; use {AUTO_INVOICING_CHOICES}")
    try:
        amount = Decimal(amount_text.strip())
    except ArithmeticError:
        raise ValueError(f"{text!r}: the fixed amount is not a number; use e.g. fixed:200") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"{text!r}: the fixed amount must be above 0; use e.g. fixed:200")
    return AutoInvoicing(enabled=True, mode=AutoInvoiceMode.FIXED, fixed_amount=amount)


@dataclass(frozen=True)
class Configuration:
    """The per-client billing settings of seed 001.

    Credit and limits (money in the client's currency):

    * ``required_credit_for_new_services``: the up-to-date credit a client needs to create or upgrade
      resources; negative values allow a debt. ``required_credit_on_agreement`` is the same for a client
      with a billing agreement (a card on file in WHMCS); None = the same as without an agreement.
    * ``credit_limit``: under it, suspension and termination rules apply; ``credit_limit_on_agreement``
      the same with an agreement (None = the same as without).
    * ``minimum_credit_after_payment``: paying an invoice from credit must leave at least this much
      up-to-date credit.
    * ``client_initial_credit``: the credit a new client starts with.

    Billing cycles and invoices:

    * ``billing_cycle_as_calendar_month``: monthly cycles are calendar months (else the anniversary).
    * ``billable_seconds_per_month``: a resource that ran unchanged for a whole monthly cycle is billed
      at most this many seconds; None turns the limit off. It also lowers the auto-invoice estimate.
    * ``generate_invoices`` and ``generate_invoices_after`` (only cycles ending after this instant),
      ``do_not_invoice_zero_prices``.
    * ``automatic_settlements``: settle usage from credit, and with ``generate_invoices`` pay the invoices
      from credit; ``auto_pay_only_when_enough_credit`` (the default) pays only when
      ``minimum_credit_after_payment`` would remain, so no invoice is marked paid without money; off, an
      invoice is paid from credit whatever the credit (Fleio's choice), into debt.
    * ``invoicing_option``, ``next_fiscal_number``, ``fiscal_number_format`` (``{{ number }}`` required;
      ``{{ year }}``, ``{{ month }}``, ``{{ day }}`` allowed), ``proforma_number_format``.
    * ``invoice_due_days``: an invoice is due this many days after its date; ``invoice_detail``: the lines
      a client sees, one per resource (``detailed``) or one per source (``simple``).
    * ``notify_on_unpaid_invoices``: mail each invoice the bridge issues (unpaid, its PDF attached) and
      remind the client once when it is overdue and still unpaid.

    Credit events:

    * ``credit_notifications``: up to three thresholds, each "N hours before the credit reaches zero";
      kept in decreasing order (72, 24, 6).
    * ``suspension``, ``termination``, ``shelve_instances_on_suspend``, ``auto_invoicing``.
    * ``bill_suspended_hours``: whether the hours a cloud keeps counting for a suspended client's servers
      (Nova counts suspended and shelved servers) are invoiced; off by default, so they are left off the
      invoice and the up-to-date credit, and the reconciliation shows them as "suspended, not billed".
    """

    required_credit_for_new_services: Decimal = Decimal(0)
    credit_limit: Decimal = Decimal(0)
    minimum_credit_after_payment: Decimal = Decimal(0)
    required_credit_on_agreement: Decimal | None = None
    credit_limit_on_agreement: Decimal | None = None
    client_initial_credit: Decimal = Decimal(0)

    billing_cycle_as_calendar_month: bool = True
    billable_seconds_per_month: int | None = DEFAULT_BILLABLE_SECONDS_PER_MONTH
    generate_invoices: bool = False
    generate_invoices_after: datetime | None = None
    do_not_invoice_zero_prices: bool = True
    automatic_settlements: bool = True
    auto_pay_only_when_enough_credit: bool = True
    invoicing_option: InvoicingOption = InvoicingOption.ALWAYS_FISCAL
    next_fiscal_number: int = 1
    fiscal_number_format: str = "{{ number }}"
    proforma_number_format: str = "P{{ number }}"
    invoice_due_days: int = 14
    invoice_detail: InvoiceDetail = "detailed"
    notify_on_unpaid_invoices: bool = True

    credit_notifications: tuple[int, ...] = ()
    suspension: SuspensionRule = field(default_factory=SuspensionRule)
    termination: TerminationRule = field(default_factory=TerminationRule)
    shelve_instances_on_suspend: bool = False
    auto_invoicing: AutoInvoicing = field(default_factory=AutoInvoicing)
    bill_suspended_hours: bool = False
    taxes: TaxRules | None = None
    """The ``[taxes]`` rules every invoice of the client follows (seed 001's tax options), or None: taxes
    are off and invoices carry none."""

    def __post_init__(self) -> None:
        for key in (
            "required_credit_for_new_services",
            "credit_limit",
            "minimum_credit_after_payment",
            "client_initial_credit",
        ):
            _require_amount(getattr(self, key), key)
        for key in ("required_credit_on_agreement", "credit_limit_on_agreement"):
            if getattr(self, key) is not None:
                _require_amount(getattr(self, key), key)
        if self.billable_seconds_per_month is not None:
            _require_count(self.billable_seconds_per_month, "billable_seconds_per_month")
            if self.billable_seconds_per_month == 0:
                raise ValueError("billable_seconds_per_month is 0; use None to turn the limit off")
        if self.generate_invoices_after is not None:
            object.__setattr__(self, "generate_invoices_after", _aware(self.generate_invoices_after))
        object.__setattr__(
            self, "invoicing_option", _enum(InvoicingOption, self.invoicing_option, "invoicing_option")
        )
        _require_count(self.next_fiscal_number, "next_fiscal_number")
        if self.next_fiscal_number < 1:
            raise ValueError("next_fiscal_number is 0; fiscal numbers start at 1")
        check_template("fiscal_number_format", self.fiscal_number_format)
        check_template("proforma_number_format", self.proforma_number_format)
        _require_count(self.invoice_due_days, "invoice_due_days")
        if self.invoice_detail not in ("detailed", "simple"):
            raise ValueError(f"invoice_detail {self.invoice_detail!r} is unknown; use detailed or simple")
        object.__setattr__(self, "credit_notifications", _notification_hours(self.credit_notifications))
        for key, kind in (
            ("suspension", SuspensionRule),
            ("termination", TerminationRule),
            ("auto_invoicing", AutoInvoicing),
        ):
            if not isinstance(getattr(self, key), kind):
                raise TypeError(f"{key} must be a {kind.__name__}, not {type(getattr(self, key)).__name__}")

    def effective_credit_limit(self, has_agreement: bool) -> Decimal:
        """The credit limit that applies to a client with or without a billing agreement."""
        if has_agreement and self.credit_limit_on_agreement is not None:
            return self.credit_limit_on_agreement
        return self.credit_limit

    def effective_required_credit(self, has_agreement: bool) -> Decimal:
        """The required credit for new services for a client with or without a billing agreement."""
        if has_agreement and self.required_credit_on_agreement is not None:
            return self.required_credit_on_agreement
        return self.required_credit_for_new_services


def _require_amount(value: object, key: str) -> None:
    if isinstance(value, float):
        raise ValueError(f'{key} is the float {value!r}; write money as a quoted decimal such as "{value}"')
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{key} must be a finite Decimal amount, got {value!r}")


def _require_count(value: object, key: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"{key} is {value}; it cannot be negative")


def _aware(instant: datetime) -> datetime:
    try:
        return as_utc(instant)
    except ValueError as error:
        raise ValueError(f"generate_invoices_after: {error}") from None


def _enum(kind: type[_Enum], value: str, key: str) -> _Enum:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(member.value for member in kind)
        raise ValueError(f"{key} is {value!r}; use one of {choices}") from None


def _notification_hours(thresholds: object) -> tuple[int, ...]:
    if isinstance(thresholds, str) or not isinstance(thresholds, tuple | list | frozenset | set):
        raise ValueError(f"credit_notifications must be a list of hours, got {thresholds!r}")
    hours = tuple(thresholds)
    if len(hours) > MAX_CREDIT_NOTIFICATIONS:
        raise ValueError(
            f"credit_notifications has {len(hours)} thresholds {list(hours)}; at most "
            f"{MAX_CREDIT_NOTIFICATIONS} are allowed"
        )
    for threshold in hours:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0:
            raise ValueError(
                f"credit_notifications has {threshold!r}; each threshold is a whole number of hours above 0"
            )
    if len(set(hours)) != len(hours):
        raise ValueError(f"credit_notifications {list(hours)} repeats a threshold; each is sent once")
    return tuple(sorted(hours, reverse=True))
