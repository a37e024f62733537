"""Every job the daemon knows, by name; ``[schedule]`` has a cron expression (or "off") for each."""

from __future__ import annotations

from datetime import timedelta

from bridge.errors import BridgeError
from bridge.logs import get_logger
from bridge.store import jobs as store
from bridge.sync.collect import process_clients_job, usage_sync_job
from bridge.sync.jobs import JobContext, JobSpec
from bridge.sync.push import payments_sync_job, push_job

log = get_logger(__name__)


def housekeeping(ctx: JobContext) -> int:
    """Prune job runs older than daemon.job_run_retention_days, keeping the diary bounded."""
    before = ctx.clock.now() - timedelta(days=ctx.settings.daemon.job_run_retention_days)
    with ctx.uow.writing() as connection:
        pruned = store.prune_runs(connection, before)
    log.info("job runs pruned", count=pruned, before=before.isoformat())
    return pruned


def invoicing_job(ctx: JobContext) -> int:
    """Invoice, as of today in the billing time zone, every client's ended cycles (held ones fail the run)."""
    from bridge.services.clients import ClientService
    from bridge.services.invoicing import InvoicingService

    today = ctx.clock.now().astimezone(ctx.settings.billing.zone()).date()
    clients = ClientService(ctx.uow, ctx.clock, ctx.settings)
    run = InvoicingService(ctx.uow, ctx.clock, ctx.settings, clients).run(today, checkpoint=ctx.checkpoint)
    if run.held:
        held = ", ".join(item.reference for item in run.held)
        raise BridgeError(f"{len(run.held)} invoices held (see `billing-bridge invoice --dry-run`): {held}")
    return len(run.issued)


def recurring_job(ctx: JobContext) -> int:
    """Recharge every billing period whose recharge date has come (seed 004), as of today."""
    from bridge.services.clients import ClientService
    from bridge.services.periods import PeriodsService

    today = ctx.clock.now().astimezone(ctx.settings.billing.zone()).date()
    clients = ClientService(ctx.uow, ctx.clock, ctx.settings)
    return len(PeriodsService(ctx.uow, ctx.clock, ctx.settings, clients).recharge(today))


def enrollment_job(ctx: JobContext) -> int:
    """Create the SolusVM users of sign-ups that could not reach SolusVM at the time (issue 9)."""
    if not ctx.settings.enrollment.enabled:
        return 0
    from bridge.services.clients import ClientService
    from bridge.web.enrollment.site import build_site_service

    clients = ClientService(ctx.uow, ctx.clock, ctx.settings)
    created = build_site_service(ctx.uow, ctx.clock, ctx.settings, clients).retry_pending()
    log.info("deferred SolusVM users created", count=created)
    return created


def registry() -> dict[str, JobSpec]:
    specs = [
        JobSpec("usage_sync", "collect usage from OpenStack and SolusVM", usage_sync_job),
        JobSpec("invoicing", "invoice the billing cycles that ended", invoicing_job),
        JobSpec("push", "push outbox rows (clients, invoices, credit, payments) to WHMCS", push_job),
        JobSpec("payments_sync", "read paid invoices and agreements back from WHMCS", payments_sync_job),
        JobSpec("process_clients", "credit notifications, suspension, auto-invoices", process_clients_job),
        JobSpec("recurring", "bill the recurring fees of billing periods that renewed", recurring_job),
        JobSpec("enrollment", "create the SolusVM users that sign-up had to defer", enrollment_job),
        JobSpec("housekeeping", "prune old job runs", housekeeping),
    ]
    return {spec.name: spec for spec in specs}
