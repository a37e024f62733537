"""SolusVM usage by observation: each sync lists the servers and bills the hours the uptime rule names.

Every sync bills, per server, the clock hours from the hour of the previous sync up to the current one
in which the server was created, and the current hour if it is running now (bridge/solusvm/uptime.py).
Re-observing an hour stores nothing new, since usage records are keyed by server and hour.

A server whose ``created_at`` lies in the future (beyond :data:`CLOCK_SKEW` of our clock) is refused as a
vendor error naming the field: it would bill hours that have not happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from bridge.clock import Clock
from bridge.domain.usage import Source, UsageRecord, Window
from bridge.errors import VendorError
from bridge.solusvm.client import Plan, Server, SolusVMClient
from bridge.solusvm.uptime import observe, records_for_server

#: How far SolusVM's clock may run ahead of ours before a ``created_at`` "in the future" is refused.
CLOCK_SKEW: Final = timedelta(minutes=5)
SERVERS_PATH: Final = "/api/v1/servers"


class SolusVMObserver:
    """The usage source for SolusVM (``source = "solusvm"``): it can only see servers as they are now.

    :meth:`collect` bills the hours of ``window`` the uptime rule names from one listing taken at the
    clock's now; the sync asks for the window from the watermark's hour to the end of now's hour. The
    plans listed with it (their token rates) are kept for :meth:`plans_seen`.
    """

    source: Source = "solusvm"

    def __init__(self, client: SolusVMClient, clock: Clock) -> None:
        self._client = client
        self._clock = clock
        self._plans: list[Plan] = []

    def collect(self, window: Window) -> list[UsageRecord]:
        """Bill the hours in ``window`` for every listed server, as observed now."""
        now = self._clock.now()
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
        self._plans = plans
        return records

    def plans_seen(self) -> list[Plan]:
        """The plans (with their token rates) listed by the last :meth:`collect`."""
        return list(self._plans)


def check_created(server: Server, now: datetime) -> None:
    if server.created_at > now + CLOCK_SKEW:
        raise VendorError(
            "solusvm",
            SERVERS_PATH,
            f"is {server.created_at.isoformat()} for server {server.id}, in the future (now is "
            f"{now.isoformat()}); check the SolusVM node's clock",
            field="created_at",
        )
