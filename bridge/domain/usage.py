"""The collected usage as values: sources, collection windows and usage records, the evidence behind every
invoice line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from bridge.domain.instants import as_utc

Source = Literal["openstack", "solusvm"]
SOURCES: tuple[Source, ...] = ("openstack", "solusvm")


def as_source(value: str) -> Source:
    """A source name read back from the store, checked (a typo there must not price as another cloud)."""
    if value == "openstack":
        return "openstack"
    if value == "solusvm":
        return "solusvm"
    raise ValueError(f"unknown usage source {value!r} in the store")


@dataclass(frozen=True)
class Window:
    """A half-open collection window [start, end) in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )


@dataclass(frozen=True)
class UsageRecord:
    """How long one resource ran in one collection window, as its cloud reports it.

    ``owner`` is the cloud's owner id (OpenStack project id, SolusVM user id); ``plan`` is what ran
    (flavor name, SolusVM plan id). ``tokens`` is set for SolusVM only: the tokens the window costs at the
    plan's hourly token rate.
    """

    source: Source
    resource_id: str
    resource_name: str
    owner: str
    plan: str
    window: Window
    hours: Decimal
    tokens: Decimal | None = None
    summed: bool = False
    """A total of several windows (bridge/store/usage_rollups.py: a resource's days on one plan): ``window``
    then spans its first window's start to its last window's end, and a total of another plan or owner of
    the same resource may interleave with it (resized or moved and back), which is not an overlap."""

    def __post_init__(self) -> None:
        if not isinstance(self.hours, Decimal):
            raise TypeError("hours must be a Decimal")
        if self.hours < 0:
            raise ValueError(f"negative hours {self.hours} for {self.source} resource {self.resource_id}")
