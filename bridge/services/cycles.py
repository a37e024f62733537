"""Each client's billing-cycle schedule as the store knows it (seed 001), for every use case that needs a
client's cycles: month-end invoicing, and plans and discounts that reach the current or previous period.

A client's cycles start at its first service's creation (not when it was added or imported to the bridge)
and follow its configuration's ``billing_cycle_calendar`` as it was when each cycle started, so a switch
takes effect after the ongoing cycle (bridge/domain/cycles.py, :class:`~bridge.domain.cycles.CycleSchedule`).
The history is kept in ``cycle_schedules``: ``client set --configuration`` records a switch when it
happens; a switch made by editing the settings is recorded by the next run that sees it (the daemon's
invoicing job runs daily, and every run records what it sees before it invoices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bridge.domain.clients import OWNER_LINK_KIND, Client
from bridge.domain.cycles import CycleSchedule, ScheduleChange, Span
from bridge.settings import Configurations
from bridge.store import cycles as store
from bridge.store.invoices import StoredInvoice
from bridge.store.unit_of_work import Tx


@dataclass(frozen=True)
class ClientSchedule:
    """A client's schedule, and the change this reading observed that is not recorded yet (if any)."""

    client: Client
    schedule: CycleSchedule
    unrecorded: ScheduleChange | None = None


def owners_of(client: Client) -> list[tuple[str, str]]:
    """The (source, owner) accounts whose usage the client is billed for."""
    links = OWNER_LINK_KIND.items()
    return [(source, owner) for source, kind in links for owner in client.external_ids(kind)]


def read_schedules(
    connection: Tx,
    clients: Sequence[Client],
    configurations: Configurations,
    zone: ZoneInfo,
    *,
    now: datetime,
) -> dict[int, ClientSchedule]:
    """Every client's schedule, in one pair of queries: its recorded history, with its configuration's
    schedule as of ``now`` when that differs from the last one recorded."""
    ids = [client.id for client in clients]
    recorded = store.schedules_of_clients(connection, ids)
    starts = store.first_service_starts(
        connection, [owner for client in clients for owner in owners_of(client)]
    )
    found: dict[int, ClientSchedule] = {}
    for client in clients:
        firsts = [starts[owner] for owner in owners_of(client) if owner in starts]
        origin = min(firsts) if firsts else client.created_at
        calendar = configurations.of(client.configuration).billing_cycle_as_calendar_month
        history = tuple(recorded.get(client.id, ()))
        unrecorded = None
        if not history:
            unrecorded = ScheduleChange(origin, calendar)
        elif history[-1].calendar_months != calendar:
            unrecorded = ScheduleChange(now, calendar)
        changes = (*history, unrecorded) if unrecorded is not None else history
        found[client.id] = ClientSchedule(client, CycleSchedule(origin, _key(zone), changes), unrecorded)
    return found


def record_observed(connection: Tx, schedules: Sequence[ClientSchedule], *, now: datetime) -> None:
    """Keep what :func:`read_schedules` observed, so a later switch is seen as one."""
    observed = [(item.client.id, item.unrecorded) for item in schedules if item.unrecorded is not None]
    store.record_schedules(connection, observed, now=now)


def record_switch(connection: Tx, client: Client, old: bool, new: bool, *, now: datetime) -> None:
    """A client moved from a configuration billing calendar months (``old``) or not to one that does
    (``new``) or not: from now on its new cycles follow the new schedule."""
    history = store.schedules_of_clients(connection, [client.id]).get(client.id, [])
    if not history:
        store.record_schedule(connection, client.id, ScheduleChange(client.created_at, old), now=now)
    if (history[-1].calendar_months if history else old) != new:
        store.record_schedule(connection, client.id, ScheduleChange(now, new), now=now)


def invoiced_spans(invoices: Sequence[StoredInvoice]) -> list[Span]:
    """The spans a client's standing usage invoices cover."""
    return [
        (invoice.period_start, invoice.period_end)
        for invoice in invoices
        if invoice.period_start is not None and invoice.period_end is not None
    ]


def _key(zone: ZoneInfo) -> str:
    return zone.key or "UTC"
