"""What one SolusVM sync reads for the runtime rule: plans, the servers as listed now, and SolusVM's own
records (tasks, activity log) about every server of the open months, listed or deleted since.

Nothing here is stored or judged beyond what the clients already refuse (docs/solusvm-runtime.md):
bridge/usage/solusvm_runtime.py stores it with the sync's watermark and bills from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bridge.domain.usage import Source
from bridge.solusvm.client import Plan, Server, SolusVMClient
from bridge.solusvm.collector import check_created
from bridge.solusvm.events import ActivityLogEntry, ServerTask, SolusVMEventLog


@dataclass(frozen=True)
class RuntimeReading:
    """One sync's answers from SolusVM, read at ``at``."""

    at: datetime
    plans: tuple[Plan, ...]
    servers: tuple[Server, ...]
    tasks: tuple[ServerTask, ...]
    entries: tuple[ActivityLogEntry, ...]


class SolusVMRuntimeReader:
    """Reads a :class:`RuntimeReading` through a client and its event log."""

    source: Source = "solusvm"

    def __init__(self, client: SolusVMClient, events: SolusVMEventLog) -> None:
        self._client = client
        self._events = events

    def read(self, now: datetime, known_server_ids: Iterable[int]) -> RuntimeReading:
        """Plans, servers, and the tasks of every listed or ``known`` server, and the activity log.

        Raises :class:`~bridge.errors.VendorError` on an answer that cannot be billed from.
        """
        plans = tuple(self._client.plans())
        servers = tuple(self._client.servers())
        for server in servers:
            check_created(server, now)
        ids = sorted({server.id for server in servers} | set(known_server_ids))
        tasks = tuple(task for server_id in ids for task in self._events.server_tasks(server_id))
        entries = tuple(self._events.activity_log())
        return RuntimeReading(now, plans, servers, tasks, entries)
