"""Every job the daemon knows, by name; ``[schedule]`` has a cron expression (or "off") for each.

A job is a function of its :class:`~bridge.sync.jobs.JobContext`: it calls the app's services (built
once, in :mod:`bridge.bootstrap`) and builds nothing itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from bridge.errors import BridgeError
from bridge.logs import get_logger
from bridge.store import jobs as store
from bridge.sync.jobs import JobContext, JobSpec
from bridge.sync.waits import stop_aware_sleep

if TYPE_CHECKING:
    from bridge.services.payments import PaymentsReport
    from bridge.usage.sync import SourceReport

log = get_logger(__name__)


def housekeeping(ctx: JobContext) -> dict[str, int]:
    """Prune job runs older than daemon.job_run_retention_days, keeping the diary bounded, and the hourly
    usage rows older than billing.hourly_usage_months (their daily totals stay)."""
    before = ctx.clock.now() - timedelta(days=ctx.settings.daemon.job_run_retention_days)
    with ctx.app.uow.writing() as connection:
        pruned = store.prune_runs(connection, before)
    log.info("job runs pruned", count=pruned, before=before.isoformat())
    ctx.checkpoint()
    return {"job_runs": pruned, "usage_hours": ctx.app.hourly_retention.prune()}


def usage_sync_job(ctx: JobContext) -> list[SourceReport]:
    """Collect every enabled source up to now; a source that failed fails the run (and shows on /status)."""
    sleep = stop_aware_sleep(ctx.stop_event)  # the vendor clients' retry waits end at shutdown
    reports = ctx.app.usage_sync(checkpoint=ctx.checkpoint, sleep=sleep).run()
    failed = [report for report in reports if report.error]
    if failed:
        raise BridgeError("; ".join(f"{report.source}: {report.error}" for report in failed))
    return reports


def invoicing_job(ctx: JobContext) -> int:
    """Invoice, as of today in the billing time zone, every client's ended cycles (held ones fail the run)."""
    from bridge.services.invoicing import HeldOnly  # on first run: the composition root imports no service

    today = ctx.clock.now().astimezone(ctx.settings.billing.zone()).date()
    held = HeldOnly()  # the run keeps no list of what it issued: memory flat in the number of clients
    run = ctx.app.invoicing.run(today, checkpoint=ctx.checkpoint, listener=held)
    if held.found:
        references = ", ".join(item.reference for item in held.found)
        raise BridgeError(
            f"{len(held.found)} invoices held (see `billing-bridge invoice --dry-run`): {references}"
        )
    return run.counts.issued


def push_job(ctx: JobContext) -> dict[str, Any]:
    """Push the outbox to WHMCS (nothing to do while whmcs.enabled is false)."""
    if not ctx.settings.whmcs.enabled:
        return {"skipped": "whmcs.enabled is false"}
    sleep = stop_aware_sleep(ctx.stop_event)  # the retry waits end at shutdown
    pusher = ctx.app.pusher(stopping=ctx.stopping, sleep=sleep, metrics=ctx.metrics)
    report = pusher.run(lease=ctx.lease)
    ctx.checkpoint()
    return report.counts()


def payments_sync_job(ctx: JobContext) -> PaymentsReport | dict[str, str]:
    """Read pushed invoices' payment and clients' agreements back from WHMCS."""
    if not ctx.settings.whmcs.enabled:
        return {"skipped": "whmcs.enabled is false"}
    return ctx.app.payments.run(ctx.checkpoint)


def process_clients_job(ctx: JobContext) -> int:
    """The credit engine's periodic task (seed 001): decide for every client, act on the clouds, and mail
    the client notifications the bridge sends itself (those through WHMCS go with the push)."""
    reports = ctx.app.credit.process(ctx.clock.now())
    ctx.checkpoint()
    ctx.app.cloud_actions(sleep=stop_aware_sleep(ctx.stop_event)).run()
    ctx.checkpoint()
    ctx.app.mail_delivery().run()
    return sum(len(report.decisions) for report in reports)


def recurring_job(ctx: JobContext) -> int:
    """Recharge every billing period whose recharge date has come (seed 004), as of today."""
    today = ctx.clock.now().astimezone(ctx.settings.billing.zone()).date()
    return len(ctx.app.periods.recharge(today))


def enrollment_job(ctx: JobContext) -> int:
    """Create the SolusVM users of sign-ups that could not reach SolusVM at the time (issue 9)."""
    if not ctx.settings.enrollment.enabled:
        return 0
    created = ctx.app.enrollment.retry_pending()
    log.info("deferred SolusVM users created", count=created)
    return created


def tax_revalidation_job(ctx: JobContext) -> dict[str, Any]:
    """Ask VIES again about clients' VAT IDs; 48 h without an answer ends an exemption (seed 001)."""
    if not ctx.settings.taxes.enabled:
        return {"skipped": "taxes.enabled is false"}
    report = ctx.app.taxes.revalidate(ctx.checkpoint)
    return {"asked": report.asked, "outcomes": report.outcomes, "changed": len(report.changed)}


def reconcile_job(ctx: JobContext) -> dict[str, Any]:
    """Reconcile last month, and the one before when billing.hourly_usage_months still keeps its hourly
    rows, into the reports archive (<state_dir>/reports), after the day's invoicing: late usage and
    WHMCS's confirmations still change a month after it ended. The result names last month; ``months``
    has each month's defects."""
    published = ctx.app.reports.publish_recent(ctx.settings.billing.hourly_usage_months, ctx.checkpoint)
    for files, summary in published:
        log.info(
            "reconciliation written", month=files.month, defects=summary.defect_count, html=str(files.html)
        )
    files, summary = published[-1]
    return {
        "month": files.month,
        "defects": summary.defect_count,
        "clients": summary.clients,
        "months": {files.month: summary.defect_count for files, summary in published},
    }


def registry() -> dict[str, JobSpec]:
    specs = [
        JobSpec("usage_sync", "collect usage from OpenStack and SolusVM", usage_sync_job),
        JobSpec("invoicing", "invoice the billing cycles that ended", invoicing_job, shared=True),
        JobSpec(
            "push", "push outbox rows (clients, invoices, credit, payments) to WHMCS", push_job, shared=True
        ),
        JobSpec("payments_sync", "read paid invoices and agreements back from WHMCS", payments_sync_job),
        JobSpec(
            "process_clients",
            "credit notifications, suspension, auto-invoices; mails client notifications",
            process_clients_job,
            shared=True,
        ),
        JobSpec("recurring", "bill the recurring fees of billing periods that renewed", recurring_job),
        JobSpec("enrollment", "create the SolusVM users that sign-up had to defer", enrollment_job),
        JobSpec(
            "tax_revalidation",
            "ask VIES again about VAT IDs; 48 h unanswered ends an exemption",
            tax_revalidation_job,
        ),
        JobSpec(
            "reconcile", "reconcile last month and the one before into the reports archive", reconcile_job
        ),
        JobSpec("housekeeping", "prune old job runs and hourly usage", housekeeping),
    ]
    return {spec.name: spec for spec in specs}
