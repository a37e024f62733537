"""The bounds of every value an operator, a sign-up form or the settings file hands the bridge.

One place, so the command line, the web forms, the services and ``check-config`` refuse the same
values with the same words, and so SQLite (which stores whatever it is given), MariaDB and PostgreSQL
(which refuse or truncate) all hold the same data. Each bound fits the store's column (the test
``tests/domain/test_bounds.py`` compares them with bridge/store/tables.py).

- **Amounts** (payments, prices, fees, discounts): plain decimal notation, finite, at most
  :data:`AMOUNT_SCALE` decimal places (what the store keeps) and below :data:`AMOUNT_LIMIT` in magnitude.
- **Text** (names, emails, references, descriptions, external ids): at most a field's length, and no
  control characters (a newline, a tab, NUL) or unpaired surrogates (bytes that were not UTF-8).
- **Ids**: whole numbers from 1 to :data:`ID_MAX` (the store's integer column); counts (a term in
  periods, a list's length) from 1 to :data:`COUNT_MAX`.
- **Dates and times**: from :data:`EARLIEST_DAY` to :data:`LATEST_DAY`.

Every check raises :class:`ValueError` whose message starts with the field's name and ends with the fix;
callers turn it into their own error (an exit 2 on the command line, a form error on the web).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal

AMOUNT_SCALE = 8
"""Decimal places the store keeps for money and quantities (``ExactDecimal(20, 8)``)."""
AMOUNT_LIMIT = Decimal(1_000_000_000)
"""Every amount is below this in magnitude (one billion), so sums of many stay inside the store's 12
integer digits."""

NAME_MAX = 200
"""A client's, a person's or a company's name."""
EMAIL_MAX = 254
"""An email address (RFC 5321's path limit)."""
REFERENCE_MAX = 64
"""A payment's reference (stored inside ``BB-PAYMENT-<client>-<reference>``)."""
IDENTIFIER_MAX = 128
"""An external account id, a subscription name, a resource kind."""
DESCRIPTION_MAX = 255
"""A ledger or charge description."""

ID_MAX = 2**31 - 1
"""The largest id the store's integer columns hold on every database."""
COUNT_MAX = 10_000
"""The largest count an operator gives: a billing period's term, a list's length."""

EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2999, 12, 31)

_PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_SHOWN = 40
"""How much of a refused value a message repeats (a 10,000-character name is not echoed whole)."""


def shown(value: object) -> str:
    """``value`` as a message repeats it: quoted, escaped, and cut after a few dozen characters."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 4] + "...'"


def parse_amount(text: str, field: str) -> Decimal:
    """An amount written in plain decimal notation (``12.50``, ``-3``), within the bounds.

    ``NaN``, ``Infinity``, exponents (``1e9999``), thousands separators and empty text are refused.
    """
    stripped = text.strip()
    if not _PLAIN_DECIMAL.fullmatch(stripped):
        raise ValueError(
            f"{field} {shown(text)} is not a number; write it in plain digits like 12.50 "
            "(no exponent, NaN, Infinity or thousands separator)"
        )
    return check_amount(Decimal(stripped), field)


def check_amount(value: Decimal, field: str, *, scale: int = AMOUNT_SCALE) -> Decimal:
    """``value`` when it is finite, has at most ``scale`` decimal places and is below the limit."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{field} {shown(value)} is not a finite decimal amount; write it like 12.50")
    if abs(value) >= AMOUNT_LIMIT:
        raise ValueError(
            f"{field} {shown(format(value, 'f'))} is too large; amounts stay below {AMOUNT_LIMIT:,} "
            "in magnitude"
        )
    exponent = value.normalize().as_tuple().exponent  # 1.50000000000 keeps 1 place, as the store does
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > scale:
        raise ValueError(
            f"{field} {shown(format(value, 'f'))} has {places} decimal places; "
            f"use at most {scale} (the store keeps {AMOUNT_SCALE})"
        )
    return value


def check_text(value: str, field: str, *, max_length: int, required: bool = True) -> str:
    """``value`` without surrounding blanks, when it fits ``max_length`` and has no control character."""
    text = value.strip()
    if required and not text:
        raise ValueError(f"{field} is empty; give a value")
    bad = next((char for char in text if unicodedata.category(char) in ("Cc", "Cs")), None)
    if bad is not None:
        raise ValueError(
            f"{field} {shown(text)} contains the control character {bad!r}; "
            "use ordinary characters on one line"
        )
    if len(text) > max_length:
        raise ValueError(f"{field} is {len(text)} characters long; use at most {max_length}")
    return text


def parse_id(text: str, field: str) -> int:
    """A store id written in digits, from 1 to :data:`ID_MAX`."""
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit():
        raise ValueError(f"{field} {shown(text)} is not an id; give a whole number such as 12")
    return check_id(int(stripped), field)


def check_id(value: int, field: str) -> int:
    if not 1 <= value <= ID_MAX:
        raise ValueError(f"{field} {shown(value)} is out of range; ids run from 1 to {ID_MAX}")
    return value


def check_day(day: date, field: str) -> date:
    """``day`` when it lies between :data:`EARLIEST_DAY` and :data:`LATEST_DAY`."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(
            f"{field} {day.isoformat()} is out of range; "
            f"use a date from {EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}"
        )
    return day


def check_instant(instant: datetime, field: str) -> datetime:
    """``instant`` when its date lies in the bounds (read before any time-zone arithmetic can overflow)."""
    check_day(instant.date(), field)
    return instant
