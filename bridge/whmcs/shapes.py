"""Turn WHMCS's loosely typed JSON into plain Python values, and our values into its form fields.

WHMCS answers the same thing in several shapes (research/whmcs-api.md section 2): a list may come as
``[]``, ``{}``, ``""``, ``{"0": {...}, "1": {...}}`` or a bare object; ids as ``1`` or ``"1"``; money as
``"15.95"``; empty dates as ``"0000-00-00"``; and the documentation's examples even show PHP's flattened
``"invoices[invoice][0][id]"`` keys. Every reader goes through the functions here so that each quirk is
handled once. A value that fits none of the known shapes raises :class:`ShapeError`, naming the field, and
the client turns that into a typed error instead of a ``KeyError`` deep in a caller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
_EMPTY_DATES = frozenset({"", "0000-00-00", "0000-00-00 00:00:00"})
_TRUE = frozenset({"1", "true", "on", "yes"})
_FALSE = frozenset({"", "0", "false", "off", "no"})
_INTEGER = re.compile(r"^-?[0-9]+$")
_BRACKETED = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])+)$")


class ShapeError(ValueError):
    """A response field that is missing or not in any shape WHMCS is known to use."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"field {field!r}: {problem}")


def unflatten(body: Mapping[str, Any]) -> dict[str, Any]:
    """Fold PHP-style ``a[b][0][c]`` keys into nested dicts; other keys pass through unchanged.

    The documentation renders nested arrays this way; folding them costs nothing and means a WHMCS (or a
    proxy) that really answers so is read the same as one that nests.
    """
    result: dict[str, Any] = {}
    for key, value in body.items():
        match = _BRACKETED.match(key)
        if match is None:
            result[key] = value
            continue
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return result


def as_list(value: Any, field: str) -> list[dict[str, Any]]:
    """A list of objects from any of WHMCS's list shapes: ``[]``, ``{}``, ``""``, ``None``, a list,
    a dict keyed ``"0", "1", ...`` (in key order), or a single bare object."""
    if value is None or value == "" or value == [] or value == {}:
        return []
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = _indexed_values(value) if _is_indexed(value) else [value]
    else:
        raise ShapeError(field, f"expected a list, got {type(value).__name__}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ShapeError(f"{field}[{index}]", f"expected an object, got {type(item).__name__}")
    return items


def nested_list(body: Mapping[str, Any], outer: str, inner: str) -> list[dict[str, Any]]:
    """The list WHMCS puts at ``body[outer][inner]`` (``invoices.invoice``), whatever its shape.

    ``outer`` itself may be empty (``""``, ``[]``, ``{}``) or missing when there is nothing to list.
    """
    container = body.get(outer)
    if isinstance(container, dict) and inner in container:
        return as_list(container[inner], f"{outer}.{inner}")
    return as_list(container, outer)


def _is_indexed(value: dict[Any, Any]) -> bool:
    return all(isinstance(key, int) or (isinstance(key, str) and key.isdigit()) for key in value)


def _indexed_values(value: dict[Any, Any]) -> list[Any]:
    return [value[key] for key in sorted(value, key=int)]


def to_int(value: Any, field: str) -> int:
    """An id or count given as ``1``, ``"1"`` or ``" 1 "``; anything else is a shape error."""
    if isinstance(value, bool):
        raise ShapeError(field, "expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    raise ShapeError(field, f"expected an integer, got {_describe(value)}")


def to_id(value: Any, field: str) -> int:
    """A WHMCS record id: a positive integer (WHMCS numbers records from 1). ``0``, ``-7`` or text that is
    no number is not an id; a success answer carrying one is refused, never recorded."""
    number = to_int(value, field)
    if number < 1:
        raise ShapeError(field, f"expected a positive id, got {_describe(value)}")
    return number


def to_money(value: Any, field: str) -> Decimal:
    """An exact Decimal from ``"15.95"``, ``15.95`` (a Decimal already, by ``parse_float``) or ``15``."""
    if isinstance(value, bool):
        raise ShapeError(field, "expected an amount, got a boolean")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ShapeError(field, f"expected an amount, got {_describe(value)}") from None
    else:
        raise ShapeError(field, f"expected an amount, got {_describe(value)}")
    if not result.is_finite():
        raise ShapeError(field, f"expected a finite amount, got {_describe(value)}")
    return result


def to_str(value: Any, field: str) -> str:
    """Text from a string, a number or ``null`` (WHMCS leaves empty fields as ``null`` or ``""``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise ShapeError(field, f"expected text, got {type(value).__name__}")


def to_bool(value: Any, field: str) -> bool:
    """A flag from ``1``/``0``, ``"1"``/``"0"``, ``"true"``/``"false"``, ``""`` or a JSON boolean."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ShapeError(field, f"expected a flag, got {_describe(value)}")


def to_date(value: Any, field: str) -> date | None:
    """A calendar date from ``YYYY-MM-DD`` (a time part is dropped); WHMCS's empty dates give ``None``."""
    text = to_str(value, field).strip()
    if text in _EMPTY_DATES:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ShapeError(field, f"expected a date YYYY-MM-DD, got {_describe(value)}") from None


def to_datetime(value: Any, field: str) -> datetime | None:
    """A naive datetime in WHMCS's own time zone from ``YYYY-MM-DD HH:MM:SS`` (or a bare date).

    WHMCS dates carry no zone (research section 7); guessing one here would be worse than saying so.
    """
    text = to_str(value, field).strip()
    if text in _EMPTY_DATES:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ShapeError(field, f"expected a date-time YYYY-MM-DD HH:MM:SS, got {_describe(value)}") from None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_amount(amount: Decimal | int, what: str = "amount") -> str:
    """The form value for an amount: ``"12.30"``.

    The caller rounds to cents under its own rule (the domain owns rounding); an amount that still has
    fractions of a cent is a bug upstream and is refused rather than silently rounded here. Floats are
    refused outright: they cannot hold cents exactly.
    """
    if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
        raise TypeError(f"{what} must be a Decimal, got {type(amount).__name__}")
    value = Decimal(amount)
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value}")
    if value != value.quantize(CENT):
        raise ValueError(f"{what} {value} has more than 2 decimal places; round it to cents before sending")
    return f"{value.quantize(CENT):f}"


def format_form_value(value: str | int | bool | Decimal | date, what: str) -> str:
    """One form field as WHMCS reads it: flags ``"1"``/``"0"``, dates ``YYYY-MM-DD``, amounts in cents."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format_amount(value, what)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | str):
        return str(value)
    raise TypeError(f"{what}: cannot send a {type(value).__name__} to WHMCS")
