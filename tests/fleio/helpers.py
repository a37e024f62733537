"""Times and small helpers shared by the OpenStack tests."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bridge.domain.usage import UsageRecord, Window
from bridge.fleio.settings import OpenStackSettings

#: "Now" for every test: long after WINDOW ended, so it has settled.
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(datetime(2024, 6, 1, 9, 0, tzinfo=UTC), datetime(2024, 6, 1, 10, 0, tzinfo=UTC))


def at(hh: int, mm: int = 0) -> datetime:
    """A time on the test day (2024-06-01), UTC."""
    return datetime(2024, 6, 1, hh, mm, tzinfo=UTC)


def hours_by_id(records: list[UsageRecord]) -> dict[str, Decimal]:
    return {record.resource_id: record.hours for record in records}


def nova_hours(seconds: int) -> Decimal:
    """What Nova reports for ``seconds`` of usage: a float ``seconds / 3600.0``, printed by ``json``."""
    return Decimal(repr(seconds / 3600.0))


def changed(settings: OpenStackSettings, **changes: Any) -> OpenStackSettings:
    """``settings`` with ``changes``, validated again (``model_copy(update=)`` skips validation)."""
    return OpenStackSettings(**{**settings.model_dump(exclude_unset=True), **changes})
