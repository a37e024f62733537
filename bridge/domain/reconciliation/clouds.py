"""The cloud side: what Nova and SolusVM say about the month, against the hours collected.

Nova's ``os-simple-tenant-usage`` gives each project's hours for a whole month in one query, but counts a
server only from its last ``launched_at``, which a resize, rebuild, unshelve or rescue sets again
(research/openstack-usage.md, section 4). :func:`forgotten_hours` recovers the hours Nova forgot from the
server's instance actions, so Nova's figure plus those hours can be held against the hours the bridge
collected window by window. SolusVM publishes no usage, so its side compares the servers the bridge saw
with those it collected and billed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from bridge.domain.instants import as_utc
from bridge.domain.pricing import quantize_hours
from bridge.domain.reconciliation.evidence import (
    ZERO,
    InstanceAction,
    Month,
    NovaProjectHours,
    NovaServerHistory,
    SolusVMServerSeen,
    hours_between,
)
from bridge.domain.reconciliation.results import (
    LISTED_AT_MOST,
    Bucket,
    ForgottenServer,
    NovaCheck,
    ProjectCheck,
    ResourceResult,
    SolusVMCheck,
    SolusVMServerCheck,
)

NOVA_TOLERANCE_HOURS: Final = Decimal("0.01")
"""Nova reports hours as floats; a project within 36 seconds of the collected hours matches."""
NOVA_RESETS: Final = frozenset({"resize", "confirmResize", "revertResize", "rebuild", "unshelve", "rescue"})
"""Instance actions after which Nova's ``launched_at`` starts again (research/openstack-usage.md s. 4)."""


def forgotten_hours(history: NovaServerHistory, month: Month) -> tuple[Decimal, InstanceAction | None]:
    """The hours of ``month`` Nova's monthly figure no longer counts for a server, and the action to blame.

    Nova counts ``min(terminated, end) - max(launched_at, start)`` and a resize, rebuild, unshelve or
    rescue sets ``launched_at`` again, so the time from the server's first launch (or the month's start)
    to the last such action inside the month is forgotten.
    """
    resets = sorted(
        (action for action in history.actions if action.action in NOVA_RESETS),
        key=lambda action: action.at,
    )
    inside = [action for action in resets if month.start < as_utc(action.at) <= month.end]
    if not inside:
        return ZERO, None
    last = inside[-1]
    since = max(month.start, as_utc(history.launched_at))
    until = as_utc(last.at)
    if history.ended_at is not None:
        until = min(until, as_utc(history.ended_at))
    if until <= since:
        return ZERO, last
    return quantize_hours(hours_between(since, until)), last


def nova_check(
    month: Month,
    projects: Sequence[NovaProjectHours],
    servers: Sequence[NovaServerHistory],
    collected: Mapping[str, Decimal],
) -> NovaCheck:
    """Nova's hours per project plus the forgotten ones, against ``collected`` (project id -> hours)."""
    recovered: list[ForgottenServer] = []
    forgotten: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for history in servers:
        hours, action = forgotten_hours(history, month)
        if hours > 0 and action is not None:
            forgotten[history.project_id] += hours
            server = ForgottenServer(
                history.project_id, history.server_id, history.name, action.action, action.at, hours
            )
            recovered.append(server)
    nova = {project.project_id: project.hours for project in projects}
    checks = [
        ProjectCheck(project, nova.get(project, ZERO), forgotten[project], collected.get(project, ZERO))
        for project in sorted(set(nova) | {project for project, hours in collected.items() if hours > 0})
    ]
    mismatches = [check for check in checks if abs(check.difference) > NOVA_TOLERANCE_HOURS]
    return NovaCheck(
        projects=len(checks),
        matching=len(checks) - len(mismatches),
        nova_hours=sum(nova.values(), ZERO),
        forgotten_hours=sum(forgotten.values(), ZERO),
        collected_hours=sum(collected.values(), ZERO),
        mismatches=tuple(mismatches[:LISTED_AT_MOST]),
        recovered=tuple(recovered[:LISTED_AT_MOST]),
    )


@dataclass
class ServerTally:
    """What the reconciliation placed for one SolusVM server so far (its resources of every cycle and plan):
    hours collected, billed, and not billed per bucket with the first detail given for each bucket."""

    client_id: str | None
    collected: Decimal = ZERO
    billed: Decimal = ZERO
    not_billed: dict[Bucket, Decimal] = field(default_factory=dict)
    details: dict[Bucket, str] = field(default_factory=dict)

    def add(self, resource: ResourceResult) -> None:
        self.collected += resource.hours
        for placement in resource.placements:
            if placement.bucket.billed:
                self.billed += placement.hours
            elif placement.hours:
                bucket = placement.bucket
                self.not_billed[bucket] = self.not_billed.get(bucket, ZERO) + placement.hours
                self.details.setdefault(bucket, placement.detail)


def solusvm_check(servers: Sequence[SolusVMServerSeen], tallies: Mapping[str, ServerTally]) -> SolusVMCheck:
    """The servers seen in the month against those with collected hours and those billed, and each seen
    server's own line: what its runtime rule counts, what was collected and billed, and why not."""
    seen = {server.server_id for server in servers}
    collected = {server_id for server_id, tally in tallies.items() if tally.collected > 0}
    billed = {server_id for server_id, tally in tallies.items() if tally.billed > 0}
    checks = sorted(
        (_server_check(server, tallies.get(server.server_id)) for server in servers),
        key=lambda check: (check.billed, check.server_id),
    )
    return SolusVMCheck(
        seen=len(seen),
        collected=len(collected),
        billed=len(billed),
        observed_hours=sum(server.observed_hours for server in servers),
        inferred_hours=sum(server.inferred_hours for server in servers),
        seen_not_collected=tuple(sorted(seen - collected)[:LISTED_AT_MOST]),
        collected_not_seen=tuple(sorted(collected - seen)[:LISTED_AT_MOST]),
        seen_not_billed=sum(1 for check in checks if not check.billed),
        servers=tuple(checks[:LISTED_AT_MOST]),
    )


def _server_check(server: SolusVMServerSeen, tally: ServerTally | None) -> SolusVMServerCheck:
    tally = tally or ServerTally(None)
    not_billed = tuple((bucket, tally.not_billed[bucket]) for bucket in Bucket if bucket in tally.not_billed)
    return SolusVMServerCheck(
        server_id=server.server_id,
        name=server.name,
        user_id=server.user_id,
        client_id=tally.client_id if tally.client_id is not None else server.client_id,
        plan=server.plan,
        observed_hours=server.observed_hours,
        inferred_hours=server.inferred_hours,
        collected_hours=tally.collected,
        billed_hours=tally.billed,
        not_billed=not_billed,
        reason=_reason(server, tally, not_billed),
    )


def _reason(
    server: SolusVMServerSeen, tally: ServerTally, not_billed: Sequence[tuple[Bucket, Decimal]]
) -> str:
    """Why hours of a seen server are not billed, in words; empty when all its collected hours are."""
    runtime = server.observed_hours + server.inferred_hours
    if tally.collected == 0:
        if runtime == 0:
            return "not running in the month: no runtime to bill"
        return f"ran {runtime} h by its evidence but no hours were collected: look at the SolusVM sync"
    return "; ".join(f"{bucket.value}: {tally.details[bucket]}" for bucket, _ in not_billed)
