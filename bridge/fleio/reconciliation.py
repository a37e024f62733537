"""Nova's own figure for a month, for the reconciliation's cloud side: one ``os-simple-tenant-usage``
list for the whole month (all pages), ``total_hours`` per project.

Implements the reconciliation's :class:`~bridge.services.reconciliation.CloudFigures` port for
OpenStack; SolusVM's servers seen are not asked here (None: the report says the cloud was not asked).
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.domain.reconciliation import Month, NovaProjectHours, SolusVMServerSeen
from bridge.domain.usage import Window
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.logs import get_logger

log = get_logger(__name__)


class NovaMonthFigures:
    """Nova's hours per project for a month, from the usage collector the app builds."""

    def __init__(self, collector: Callable[[], NovaUsageCollector]) -> None:
        self._collector = collector

    def nova_project_hours(self, month: Month) -> tuple[NovaProjectHours, ...] | None:
        """Every project's hours in the month; None while the month has not settled in Nova."""
        try:
            usages = self._collector().project_usages(Window(month.start, month.end))
        except ValueError as error:  # the month has not ended (and settled) yet
            log.info("nova month figure not asked", month=month.label, reason=str(error))
            return None
        return tuple(NovaProjectHours(usage.tenant_id, usage.total_hours) for usage in usages)

    def solusvm_servers(self, month: Month) -> tuple[SolusVMServerSeen, ...] | None:
        return None
