"""Nova's own figures for a month, for the reconciliation's cloud side.

* One ``os-simple-tenant-usage`` list for the whole month (all pages): ``total_hours`` per project, and
  each server's hours.
* ``os-instance-actions`` of a server whose Nova hours fall short of the collected ones: a resize,
  rebuild, unshelve or rescue resets ``launched_at`` in Nova, and the actions tell from when to when the
  hours were forgotten (bridge/domain/reconciliation/clouds.py).

Implements the reconciliation service's ``CloudFigures`` port (OpenStack only: SolusVM's servers seen
come from the stored evidence, bridge/usage/solusvm_runtime.py ``servers_seen``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import openstack.connection
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as os_exceptions

from bridge.domain.instants import as_utc
from bridge.domain.reconciliation import (
    InstanceAction,
    Month,
    NovaMonth,
    NovaProjectHours,
    NovaServerHistory,
    NovaServerHours,
)
from bridge.domain.usage import Window
from bridge.errors import VendorError
from bridge.fleio._vendor import SOURCE, describe_error
from bridge.fleio.nova_usage import NovaUsageCollector
from bridge.logs import get_logger

log = get_logger(__name__)

ACTIONS_PATH = "/servers/{}/os-instance-actions"
ACTIONS_MICROVERSION = "2.21"  # the actions of deleted servers are listed too


class NovaMonthFigures:
    """Nova's month per project and server, and a server's instance actions."""

    def __init__(
        self,
        collector: Callable[[], NovaUsageCollector],
        connection: Callable[[], openstack.connection.Connection],
    ) -> None:
        self._collector = collector
        self._connection = connection

    def nova_month(self, month: Month) -> NovaMonth | None:
        """Every project's and server's hours in the month; None while the month has not settled in Nova."""
        try:
            usages = self._collector().project_usages(Window(month.start, month.end))
        except ValueError as error:  # the month has not ended (and settled) yet
            log.info("nova month figure not asked", month=month.label, reason=str(error))
            return None
        return NovaMonth(
            projects=tuple(NovaProjectHours(usage.tenant_id, usage.total_hours) for usage in usages),
            servers=tuple(
                NovaServerHours(usage.tenant_id, server.instance_id, server.name, server.hours)
                for usage in usages
                for server in usage.servers
            ),
        )

    def nova_history(self, server: NovaServerHours) -> NovaServerHistory | None:
        """The server's instance actions; None when Nova has no actions for it."""
        path = ACTIONS_PATH.format(server.server_id)
        try:
            response = self._connection().compute.get(
                path,
                microversion=ACTIONS_MICROVERSION,
                headers={"Accept": "application/json"},
                skip_cache=True,
            )
        except (ks_exceptions.ClientException, os_exceptions.SDKException) as error:
            raise VendorError(SOURCE, "/servers/{id}/os-instance-actions", describe_error(error)) from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise VendorError(SOURCE, "/servers/{id}/os-instance-actions", f"HTTP {response.status_code}")
        actions = _actions(response.json())
        if not actions:
            return None
        created = [action.at for action in actions if action.action == "create"]
        deleted = [action.at for action in actions if action.action == "delete"]
        return NovaServerHistory(
            project_id=server.project_id,
            server_id=server.server_id,
            name=server.name,
            launched_at=min(created) if created else actions[0].at,
            actions=actions,
            ended_at=max(deleted) if deleted else None,
        )


def _actions(body: Any) -> tuple[InstanceAction, ...]:
    """``instanceActions[]`` as (action, start time), oldest first; a malformed entry is refused."""
    entries = body.get("instanceActions") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise VendorError(SOURCE, "/servers/{id}/os-instance-actions", "no instanceActions list")
    found: list[InstanceAction] = []
    for entry in entries:
        action = entry.get("action") if isinstance(entry, dict) else None
        started = entry.get("start_time") if isinstance(entry, dict) else None
        if not isinstance(action, str) or not isinstance(started, str):
            raise VendorError(
                SOURCE, "/servers/{id}/os-instance-actions", "an action without action or start_time"
            )
        try:
            parsed = datetime.fromisoformat(started.removesuffix("Z"))
            at = as_utc(parsed) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
        except ValueError:
            raise VendorError(
                SOURCE, "/servers/{id}/os-instance-actions", f"start_time {started[:40]!r} is not a time"
            ) from None
        found.append(InstanceAction(action, at))
    return tuple(sorted(found, key=lambda item: item.at))
