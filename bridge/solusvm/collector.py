"""SolusVM usage by observation: each sync lists the servers and bills the hours the uptime rule names.

Every sync bills, per server, the clock hours from the hour of the previous sync up to the current one
in which the server was created, and the current hour if it is running now (bridge/solusvm/uptime.py).
Re-observing an hour stores nothing new, since usage records are keyed by server and hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.errors import VendorError
from bridge.solusvm.client import Plan, SolusVMClient
from bridge.solusvm.uptime import HOUR, hour_start, observe, records_for_server
from bridge.usage.records import Source, UsageRecord, Window


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
            try:
                records.extend(records_for_server(server, [observe(server, now)], window, plans))
            except ValueError as error:
                raise VendorError(
                    "solusvm", "/api/v1/plans", f"server {server.id}: {error}", field="plan"
                ) from None
        return Observed(window=window, records=records, plans=plans)
