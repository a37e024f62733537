"""Money as exact decimals, and THE one rounding rule of billing-bridge.

Every amount is a :class:`decimal.Decimal`, never a float: a float cannot hold 0.10 exactly, and a bill
built from floats drifts by cents (the peers' integer-cent VAT bugs, lago-api#821).

The rounding rule, in one place (:func:`round_money`): ROUND_HALF_UP to the currency's minor unit
(0.005 EUR -> 0.01 EUR, 0.5 JPY -> 1 JPY, -0.005 EUR -> -0.01 EUR: halves go away from zero).

* Each invoice line is rounded once, from its unrounded quantity x unit price.
* An invoice total is the sum of its rounded lines and is never rounded again, so the total a client
  sees always equals the sum of the lines printed above it.
* Tax (:func:`tax_amount`) is rounded once per invoice per rate: the sum of the rounded lines taxed at
  one rate, times that rate, rounded by the same rule. Taxing each line and adding the rounded line
  taxes would drift by a cent every few lines (3 x 0.33 at 19 %: 0.19 per rate, 3 x 0.06 = 0.18 per line).

Rates (an hourly price, a token price such as 0.00100) are not amounts on an invoice and keep all their
digits; only what is billed gets rounded.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Any

DEFAULT_MINOR_UNITS = 2

MINOR_UNITS: Mapping[str, int] = MappingProxyType({
    # ISO 4217 currencies whose minor unit is not the usual 2 decimals.
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
})  # fmt: skip

_CURRENCY = re.compile(r"[A-Z]{3}")
_AMOUNT_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def check_currency(currency: str) -> str:
    """``currency`` if it is an ISO 4217 code (three capitals), else a ValueError saying how to write it."""
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise ValueError(f"{currency!r} is not an ISO 4217 currency code; use three capitals such as 'EUR'")
    return currency


def minor_units(currency: str) -> int:
    """How many decimals the currency's smallest unit has (JPY 0, EUR 2, KWD 3)."""
    return MINOR_UNITS.get(check_currency(currency), DEFAULT_MINOR_UNITS)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """THE rounding rule: ``amount`` rounded half up to the minor unit of ``currency``.

    Apply it once per invoice line (or once per estimate); never to a sum of rounded lines.
    """
    _require_decimal(amount, "amount")
    return amount.quantize(_minor_unit(currency), rounding=ROUND_HALF_UP)


def tax_amount(base: Decimal, rate_percent: Decimal, currency: str) -> Decimal:
    """The tax on ``base`` at ``rate_percent`` (19 for 19 %), by THE rounding rule, applied once.

    ``base`` is the sum of an invoice's already rounded lines taxed at that rate; the result is the one
    tax amount printed for that rate.
    """
    _require_decimal(base, "tax base")
    _require_decimal(rate_percent, "tax rate")
    return (base * rate_percent / _HUNDRED).quantize(_minor_unit(currency), rounding=ROUND_HALF_UP)


def is_rounded(amount: Decimal, currency: str) -> bool:
    """Whether ``amount`` already has no more precision than the minor unit of ``currency`` (0.33, not
    0.333): what an invoice line must be before tax is computed on it. Checks; never rounds."""
    return amount == amount.quantize(_minor_unit(currency))


_HUNDRED = Decimal(100)


@functools.lru_cache(maxsize=64)
def _minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` (0.01 for USD), read once per currency."""
    return Decimal(1).scaleb(-minor_units(currency))


def parse_money(text: str | int | Decimal) -> Decimal:
    """An exact amount from settings or the CLI: ``"12.50"``, ``"0.00100"``, ``"-3"``, ``7``.

    A float is refused (a TOML ``price = 0.1`` is a float and may already be inexact): write the
    amount as a quoted string instead. So is anything that is not plain decimal notation
    (``"1,50"``, ``"1e3"``, ``"NaN"``, ``""``).
    """
    if isinstance(text, float):
        raise ValueError(
            f"amount {text!r} is a floating-point number, which cannot hold money exactly; "
            f'write it as a quoted decimal string such as "{text}"'
        )
    if isinstance(text, int) and not isinstance(text, bool):
        return Decimal(text)
    if isinstance(text, Decimal) and text.is_finite():
        return text
    if not isinstance(text, str):
        raise ValueError(f'amount {text!r} is not a decimal number; write it like "12.50"')
    stripped = text.strip()
    if not _AMOUNT_TEXT.fullmatch(stripped):
        raise ValueError(
            f'amount {text!r} is not a decimal number; write it like "12.50" '
            "(digits, an optional sign and a dot, no thousands separators or exponents)"
        )
    return Decimal(stripped)


@dataclass(frozen=True)
class Money:
    """An exact amount in one currency.

    Adding, subtracting and ordering need the same currency (mixing EUR and USD is a bug, so it raises);
    multiplying takes a Decimal or an int (a quantity or a rate), never a float. The amount is kept as
    given; :meth:`rounded` applies :func:`round_money`.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        _require_decimal(self.amount, "Money amount")
        if not self.amount.is_finite():
            raise ValueError(f"Money amount {self.amount} is not a finite number")
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def parse(cls, text: str | int | Decimal, currency: str) -> Money:
        """:func:`parse_money` into a Money of ``currency``."""
        return cls(parse_money(text), currency)

    def rounded(self) -> Money:
        """This amount by THE rounding rule."""
        return Money(round_money(self.amount, self.currency), self.currency)

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same_currency(other, "add").amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same_currency(other, "subtract").amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, Decimal | int):
            raise TypeError(f"Money can be multiplied by a Decimal or an int, not {type(factor).__name__}")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same_currency(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same_currency(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same_currency(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same_currency(other, "compare").amount

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def _same_currency(self, other: Any, verb: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {verb} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"cannot {verb} {self.currency} and {other.currency} amounts")
        return other


def money_sum(amounts: Iterable[Money], currency: str) -> Money:
    """The sum of ``amounts``, all in ``currency``; zero when there are none."""
    total = Money.zero(currency)
    for amount in amounts:
        total += amount
    return total


def _require_decimal(value: object, what: str) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}; money is never a float")
