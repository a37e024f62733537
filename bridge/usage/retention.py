"""How long the hourly usage evidence is kept (issue 17): ``billing.hourly_usage_months``.

Month end reads the day rollups (bridge/store/usage_rollups.py), so the hourly rows are needed only for
what looks at hours: the month's reconciliation and disputes, a SolusVM sync rewriting the open months,
a plan or discount reaching back into the previous period, a client whose terms change inside a cycle.
The housekeeping job deletes the hourly rows of windows that start before the billing month
``hourly_usage_months`` before the current one (1, the default: the current and the previous month are
kept); their days stay, and such windows are final (a re-collection of them is no longer ingested).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.clock import Clock
from bridge.domain.cycles import calendar_cycle_containing
from bridge.logs import get_logger
from bridge.store import usage_rollups
from bridge.store.unit_of_work import UnitOfWork

log = get_logger(__name__)


def kept_from(now: datetime, zone: ZoneInfo, months: int) -> datetime:
    """The start of the billing month ``months`` before ``now``'s: hourly rows from it on are kept."""
    start = calendar_cycle_containing(now, zone).start
    for _ in range(months):
        start = calendar_cycle_containing(start - timedelta(microseconds=1), zone).start
    return start


@dataclass(frozen=True)
class HourlyRetention:
    """Prunes the hourly usage rows older than ``months`` billing months before the current one."""

    uow: UnitOfWork
    clock: Clock
    zone: ZoneInfo
    months: int

    def prune(self) -> int:
        """Delete the hourly rows before :func:`kept_from` (their days stay); how many were deleted."""
        before = kept_from(self.clock.now(), self.zone, self.months)
        with self.uow.writing() as tx:
            pruned = usage_rollups.prune(tx, self.zone, before)
        log.info("hourly usage pruned", count=pruned, before=before.isoformat())
        return pruned
