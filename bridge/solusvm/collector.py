"""SolusVM usage by observation: each sync lists the servers and bills the hours the uptime rule names.

Every sync bills, per server, the clock hours from the hour of the previous sync up to the current one
in which the server was created, and the current hour if it is running now (bridge/solusvm/uptime.py).
Re-observing an hour stores nothing new, since usage records are keyed by server and hour.

A server whose ``created_at`` lies in the future (beyond :data:`CLOCK_SKEW` of our clock) is refused as a
vendor error naming the field: it would bill hours that have not happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from bridge.domain.usage import Source, UsageRecord, Window
from bridge.errors import VendorError
from bridge.solusvm.client import Plan, Server, SolusVMClient
from bridge.solusvm.uptime import HOUR, hour_start, observe, records_for_server

#: How far SolusVM's clock may run ahead of ours before a ``created_at`` "in the future" is refused.
CLOCK_SKEW: Final = timedelta(minutes=5)
SERVERS_PATH: Final = "/api/v1/servers"


@dataclass(frozen=True)
class Observed:
    """One sync's harvest: the billed hours and the plans (with their token rates) as listed."""

    window: Window
    records: list[UsageRecord]
    plans: list[Plan]


class SolusVMObserver:
    source: Source = "solusvm"

    def __init__(self, client: SolusVMClient) -> None:
        self._client = client

    def observe(self, since: datetime | None, now: datetime) -> Observed:
        """Bill the hours in [hour of ``since`` (or of now), end of now's hour) for every listed server."""
        window = Window(hour_start(since or now), hour_start(now) + HOUR)
        plans = self._client.plans()
        records: list[UsageRecord] = []
        for server in self._client.servers():
            check_created(server, now)
            try:
                records.extend(records_for_server(server, [observe(server, now)], window, plans))
            except ValueError as error:
                raise VendorError(
                    "solusvm", "/api/v1/plans", f"server {server.id}: {error}", field="plan"
                ) from None
        return Observed(window=window, records=records, plans=plans)


def check_created(server: Server, now: datetime) -> None:
    if server.created_at > now + CLOCK_SKEW:
        raise VendorError(
            "solusvm",
            SERVERS_PATH,
            f"is {server.created_at.isoformat()} for server {server.id}, in the future (now is "
            f"{now.isoformat()}); check the SolusVM node's clock",
            field="created_at",
        )
