"""Wiring usage collection from settings: the collectors of the enabled clouds, and the usage_sync job."""

from __future__ import annotations

import time
from collections.abc import Callable

from bridge.clock import Clock
from bridge.errors import BridgeError
from bridge.settings import Settings
from bridge.store.unit_of_work import UnitOfWork
from bridge.sync.cloud_actions import CloudActions
from bridge.sync.jobs import JobContext
from bridge.sync.waits import Sleep, stop_aware_sleep
from bridge.usage.sync import Current, Feed, Settled, SourceReport, UsageSync


def build_usage_sync(
    settings: Settings,
    uow: UnitOfWork,
    clock: Clock,
    checkpoint: Callable[[], None] = lambda: None,
    sleep: Sleep = time.sleep,
) -> UsageSync:
    """A UsageSync with a collector for each enabled cloud (the SDKs are imported only when enabled);
    ``sleep`` is the clients' wait between retries (a job passes one that ends at shutdown)."""
    feeds = []
    if settings.openstack.enabled:
        from bridge.fleio.connection import connect
        from bridge.fleio.nova_usage import NovaUsageCollector

        nova = NovaUsageCollector.from_settings(
            connect(settings.openstack), settings.openstack, clock=clock, sleep=sleep
        )
        windows = Settled(
            settings.billing.zone(), settings.openstack.window_length, settings.openstack.settle_delay
        )
        feeds.append(Feed(nova, windows))
    if settings.solusvm.enabled:
        from bridge.solusvm.client import SolusVMClient
        from bridge.solusvm.collector import SolusVMObserver

        client = SolusVMClient.from_settings(settings.solusvm, clock=clock, sleep=sleep)
        observer = SolusVMObserver(client, clock)
        feeds.append(Feed(observer, Current(), plans=observer.plans_seen))
    return UsageSync(uow, clock, feeds, checkpoint=checkpoint)


def usage_sync_job(ctx: JobContext) -> list[SourceReport]:
    """Collect every enabled source up to now; a source that failed fails the run (and shows on /status)."""
    sleep = stop_aware_sleep(ctx.stop_event)
    reports = build_usage_sync(ctx.settings, ctx.uow, ctx.clock, ctx.checkpoint, sleep).run()
    failed = [report for report in reports if report.error]
    if failed:
        raise BridgeError("; ".join(f"{report.source}: {report.error}" for report in failed))
    return reports


def build_cloud_actions(
    settings: Settings, uow: UnitOfWork, clock: Clock, sleep: Sleep = time.sleep
) -> CloudActions:
    """The executor of the credit engine's cloud effects, for each enabled cloud."""
    openstack = None
    if settings.openstack.enabled:
        from bridge.fleio.connection import connect
        from bridge.fleio.server_actions import NovaServerActions

        openstack = NovaServerActions(connect(settings.openstack))
    solusvm = None
    if settings.solusvm.enabled:
        from bridge.solusvm.client import SolusVMClient

        solusvm = SolusVMClient.from_settings(settings.solusvm, clock=clock, sleep=sleep)
    return CloudActions(uow, clock, openstack=openstack, solusvm=solusvm)


def process_clients_job(ctx: JobContext) -> int:
    """The credit engine's periodic task (seed 001): decide for every client, then act on the clouds."""
    from bridge.services.clients import ClientService
    from bridge.services.credit import CreditService

    clients = ClientService(ctx.uow, ctx.clock, ctx.settings)
    reports = CreditService(ctx.uow, ctx.clock, ctx.settings, clients).process(ctx.clock.now())
    ctx.checkpoint()
    build_cloud_actions(ctx.settings, ctx.uow, ctx.clock, stop_aware_sleep(ctx.stop_event)).run()
    return sum(len(report.decisions) for report in reports)
