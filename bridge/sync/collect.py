"""Wiring usage collection from settings: the collectors of the enabled clouds, and the usage_sync job."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from bridge.clock import Clock
from bridge.errors import BridgeError
from bridge.services.usage import SourceReport, UsageSync
from bridge.settings import Settings
from bridge.sync.jobs import JobContext


def build_usage_sync(
    settings: Settings, engine: Engine, clock: Clock, checkpoint: Callable[[], None] = lambda: None
) -> UsageSync:
    """A UsageSync with a collector for each enabled cloud (the SDKs are imported only when enabled)."""
    openstack = None
    if settings.openstack.enabled:
        from bridge.fleio.connection import connect
        from bridge.fleio.nova_usage import NovaUsageCollector

        openstack = NovaUsageCollector.from_settings(
            connect(settings.openstack), settings.openstack, clock=clock
        )
    solusvm = None
    if settings.solusvm.enabled:
        from bridge.solusvm.client import SolusVMClient
        from bridge.solusvm.collector import SolusVMObserver

        solusvm = SolusVMObserver(SolusVMClient.from_settings(settings.solusvm, clock=clock))
    return UsageSync(
        engine,
        clock,
        settings.billing.zone(),
        openstack=openstack,
        openstack_window=settings.openstack.window_length,
        openstack_settle=settings.openstack.settle_delay,
        solusvm=solusvm,
        checkpoint=checkpoint,
    )


def usage_sync_job(ctx: JobContext) -> list[SourceReport]:
    """Collect every enabled source up to now; a source that failed fails the run (and shows on /status)."""
    reports = build_usage_sync(ctx.settings, ctx.engine, ctx.clock, ctx.checkpoint).run()
    failed = [report for report in reports if report.error]
    if failed:
        raise BridgeError("; ".join(f"{report.source}: {report.error}" for report in failed))
    return reports
