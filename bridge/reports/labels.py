"""The words, colours and number formats every report format shares, so a bucket reads the same anywhere."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import Final

from bridge.domain.cycles import zone_of
from bridge.domain.money import minor_units
from bridge.domain.reconciliation import Bucket, DefectKind, Month, PushState

BUCKET_TITLES: Final = MappingProxyType(
    {
        Bucket.INVOICED: "Invoiced",
        Bucket.INVOICED_LATE: "Invoiced late",
        Bucket.BELOW_CAP: "Below the cap",
        Bucket.NOT_YET_INVOICED: "Not yet invoiced",
        Bucket.HELD: "Held: no price",
        Bucket.SKIPPED: "Skipped",
        Bucket.UNLINKED: "Unlinked owner",
        Bucket.SUSPENDED: "Suspended, not billed",
        Bucket.REMOVED: "Removed by recalculation",
    }
)
BUCKET_COLOURS: Final = MappingProxyType(
    {
        Bucket.INVOICED: "#2f7d4f",
        Bucket.INVOICED_LATE: "#6bbf8a",
        Bucket.BELOW_CAP: "#4f7cac",
        Bucket.NOT_YET_INVOICED: "#9aa5b1",
        Bucket.HELD: "#d9822b",
        Bucket.SKIPPED: "#b59b5a",
        Bucket.UNLINKED: "#8e5ea2",
        Bucket.SUSPENDED: "#6c757d",
        Bucket.REMOVED: "#c05b74",
    }
)
DEFECT_TITLES: Final = MappingProxyType(
    {
        DefectKind.IN_NO_BUCKET: "In no bucket",
        DefectKind.IN_TWO_BUCKETS: "In two buckets",
    }
)
PUSH_TITLES: Final = MappingProxyType(
    {
        PushState.ISSUED_BY_BRIDGE: "issued by the bridge",
        PushState.PENDING: "pending",
        PushState.IN_DOUBT: "in doubt",
        PushState.PUSHED: "confirmed by WHMCS",
        PushState.FAILED: "failed",
        PushState.WITHDRAWN: "withdrawn",
    }
)
SOURCE_TITLES: Final = MappingProxyType({"openstack": "OpenStack", "solusvm": "SolusVM"})
SOURCE_COLOURS: Final = MappingProxyType({"openstack": "#3b6ea8", "solusvm": "#e08a2c"})
DEFECT_RED: Final = "#b42318"

_HOURS_SHOWN = Decimal("0.01")


@functools.lru_cache(maxsize=4096, typed=True)
def hours_value(hours: Decimal) -> str:
    """Hours as exact text for JSON and CSV, without trailing zeros or an exponent: 264.000000 reads 264.

    The text depends on the value alone (264 and 264.000000 read the same), so each value's is worked out
    once: a month's report writes the same few hours on every resource."""
    return format(hours.normalize(), "f") if hours else "0"


def amount_value(amount: Decimal) -> str:
    """An amount as exact text for JSON and CSV, as rounded (7.30 stays 7.30)."""
    return format(amount, "f")


def hours_text(hours: Decimal) -> str:
    """Hours as an operator reads them: 4,789.33 (exact values stay in JSON and CSV)."""
    return f"{hours.quantize(_HOURS_SHOWN, rounding=ROUND_HALF_UP):,}"


def money_text(amount: Decimal, currency: str) -> str:
    """An amount with its currency's minor unit and thousands separators: 1,234.50 EUR."""
    places = Decimal(1).scaleb(-minor_units(currency))
    return f"{amount.quantize(places, rounding=ROUND_HALF_UP):,} {currency}"


def share_text(part: Decimal, whole: Decimal) -> str:
    """``part`` as a percentage of ``whole``, one decimal: 67.9 %."""
    if not whole:
        return "-"
    return f"{(part * 100 / whole).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} %"


def first_day(start: datetime, month: Month) -> str:
    """The local date a cycle starting at ``start`` begins on, in the month's billing zone."""
    return start.astimezone(zone_of(month.zone)).date().isoformat()


def last_day(end: datetime, month: Month) -> str:
    """The last local date of a cycle ending (exclusively) at ``end``: Nov 1 00:00 -> 2022-10-31."""
    return (end - timedelta(microseconds=1)).astimezone(zone_of(month.zone)).date().isoformat()
