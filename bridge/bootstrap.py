"""The composition root: every adapter and service of the bridge is built here, once, from settings.

The CLI, the daemon, the jobs and the tests all get their services from an :class:`App`; nothing else
constructs a service or a vendor client. The edges are keyword arguments of :func:`build_app`, so a test
swaps them without monkeypatching: the clock, the vendor factories (an OpenStack connection, a SolusVM
client, a WHMCS client) and the sign-up mails' transport.

Building the app touches nothing: the engine connects on first use, and each service is made the first
time it is asked for (a vendor SDK is imported only when its cloud is enabled and used; the sign-up key
file is made only when enrollment is used). Workers that hold one run's state or vendor connections
(the usage sync, the cloud actions, the push) are made per run by the methods below, as each run needs
fresh ones: a vendor client is not thread-safe, and a run's checkpoint and back-off are its own.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from bridge.clock import Clock, SystemClock
from bridge.domain.credit import running_horizon
from bridge.logs import SecretMasker
from bridge.reports.archive import ReportArchive
from bridge.reports.metrics import ReconciliationCollector
from bridge.settings import Configurations, Settings
from bridge.store.database import make_engine
from bridge.store.unit_of_work import UnitOfWork
from bridge.sync.jobs import JobRunner
from bridge.sync.registry import registry
from bridge.sync.waits import Sleep
from bridge.web.enrollment.keys import stored_secret_key
from bridge.web.metrics import StoreCollector

if TYPE_CHECKING:
    from openstack.connection import Connection as OpenStackConnection

    from bridge.mail.transport import Transport
    from bridge.reports.publish import ReportPublisher
    from bridge.services.chunks import SharedRuns
    from bridge.services.clients import ClientService
    from bridge.services.credit import CreditService
    from bridge.services.enrollment import EnrollmentService
    from bridge.services.invoicing import InvoicingService
    from bridge.services.notifications import ClientNotifier
    from bridge.services.outbox import OutboxService
    from bridge.services.payments import PaymentsSync
    from bridge.services.periods import PeriodsService
    from bridge.services.plans import PlansService
    from bridge.services.ports import NoticeTexts, VatIdChecker
    from bridge.services.price_books import PriceBooks
    from bridge.services.reconciliation import CloudFigures, ReconciliationService
    from bridge.services.self_service import SelfService
    from bridge.services.taxes import TaxService
    from bridge.services.views import Views
    from bridge.solusvm.client import SolusVMClient
    from bridge.sync.cloud_actions import CloudActions
    from bridge.sync.mail_delivery import MailDelivery
    from bridge.sync.push import OutboxPusher
    from bridge.usage.retention import HourlyRetention
    from bridge.usage.sync import UsageSync
    from bridge.web.enrollment.keys import LinkKeys
    from bridge.whmcs.client import WhmcsClient

OpenStackFactory = Callable[[], "OpenStackConnection"]
"""Makes an OpenStack SDK connection (without contacting the cloud)."""
SolusVMFactory = Callable[[Sleep], "SolusVMClient"]
"""Makes a SolusVM client that waits between retries with the given sleep (one per thread or run)."""
WhmcsFactory = Callable[[], "WhmcsClient"]
"""Makes a WHMCS client (one per push thread: a client is not thread-safe)."""
TransportFactory = Callable[[], "Transport"]
"""Makes the transport the sign-up mails and client notifications leave by (SMTP, or the file sink)."""
ViesFactory = Callable[[], "VatIdChecker"]
"""Makes the VIES client the VAT ID validation flow asks (made once, on the flow's first question)."""


@dataclass
class App:
    """The bridge wired: settings, clock, store, the vendor factories and every service."""

    settings: Settings
    clock: Clock
    engine: Engine
    owner: str
    masker: SecretMasker
    """Masks the secrets in force; the logs and every printed error use this one."""
    openstack_connection: OpenStackFactory
    solusvm_client: SolusVMFactory
    whmcs_client: WhmcsFactory
    mail_transport: TransportFactory
    vies_client: ViesFactory
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.uow = UnitOfWork(self.engine)
        self.jobs = registry()
        self.runner = JobRunner(self, self.owner, jobs=self.jobs, metrics=self.metrics, masker=self.masker)
        self.metrics.register(StoreCollector(self.engine, self.clock, lambda: list(self.jobs)))
        self.metrics.register(ReconciliationCollector(self.report_archive))

    # -- the settings as the values services take, read once ---------------------------------------------

    @cached_property
    def zone(self) -> ZoneInfo:
        """The billing time zone."""
        return self.settings.billing.zone()

    @cached_property
    def configurations(self) -> Configurations:
        """Every named configuration, as its section and as the domain reads it."""
        return Configurations.from_settings(self.settings)

    @cached_property
    def price_books(self) -> PriceBooks:
        from bridge.services.price_books import PriceBooks

        settings = self.settings
        return PriceBooks(
            self.uow, currency=settings.billing.currency, pricing=settings.pricing, plans=settings.plans
        )

    # -- services: made once, on first use --------------------------------------------------------------

    @cached_property
    def clients(self) -> ClientService:
        from bridge.services.clients import ClientService

        settings = self.settings
        return ClientService(
            self.uow,
            self.clock,
            currency=settings.billing.currency,
            configurations=self.configurations.names(),
            whmcs_enabled=settings.whmcs.enabled,
            calendar_months={
                name: config.billing_cycle_as_calendar_month
                for name, config in self.configurations.configurations.items()
            },
        )

    @cached_property
    def views(self) -> Views:
        """The read models the CLI prints and ``/status`` serves."""
        from bridge.services.views import Views

        return Views(
            self.uow,
            self.clock,
            database_url=self.settings.masked_database_url(),
            schedule=self.settings.schedule,
            zone=self.zone,
            alert_after_attempts=self.settings.whmcs.alert_after_attempts,
        )

    @cached_property
    def taxes(self) -> TaxService:
        """Client tax identities and the VIES flow (seed 001); inert while ``taxes.enabled`` is false."""
        from bridge.services.taxes import TaxService

        settings = self.settings.taxes
        return TaxService(
            self.uow,
            self.clock,
            self.clients,
            rules=settings.rules_in_force(),
            vies=functools.cache(self.vies_client),
            revalidate_every=timedelta(hours=settings.revalidation_interval_hours),
        )

    @cached_property
    def invoicing(self) -> InvoicingService:
        from bridge.services.invoicing import InvoicingService

        return InvoicingService(
            self.uow,
            self.clock,
            self.clients,
            configurations=self.configurations,
            price_books=self.price_books,
            zone=self.zone,
            catch_up_cycles=self.settings.billing.catch_up_cycles,
            shared=self.shared_runs,
            notifier=self.notifier,
        )

    @cached_property
    def notice_texts(self) -> NoticeTexts:
        """The client notifications' templates (brandable: ``enrollment.template_dir``)."""
        from bridge.mail.notices import NoticeMail

        return NoticeMail(self.settings, self.configurations)

    @cached_property
    def notifier(self) -> ClientNotifier:
        """Tells clients, through the outbox: WHMCS's SendEmail when WHMCS is enabled, else the bridge's
        own mail (bridge/services/notifications.py)."""
        from bridge.services.notifications import ClientNotifier

        return ClientNotifier(
            self.uow, self.clock, self.notice_texts, whmcs_enabled=self.settings.whmcs.enabled
        )

    @cached_property
    def shared_runs(self) -> SharedRuns:
        """The chunks of month end and process_clients, claimed by this daemon (``owner``) among all
        daemons on the database; a claim lasts ``daemon.lease_seconds``, as a job's lease does."""
        from bridge.services.chunks import SharedRuns

        ttl = timedelta(seconds=self.settings.daemon.lease_seconds)
        return SharedRuns(self.uow, self.clock, holder=self.owner, ttl=ttl)

    @cached_property
    def credit(self) -> CreditService:
        from bridge.services.credit import CreditService

        settings = self.settings
        horizon = running_horizon(settings.openstack.window_length, settings.openstack.settle_delay)
        return CreditService(
            self.uow,
            self.clock,
            self.clients,
            self.invoicing,
            self.notifier,
            configurations=self.configurations,
            price_books=self.price_books,
            running_horizon=horizon,
            whmcs_enabled=settings.whmcs.enabled,
            auto_invoicing=settings.billing.credit_auto_invoicing,
            auto_invoice_lead_time_hours=settings.billing.auto_invoice_lead_time_hours,
            shared=self.shared_runs,
        )

    @cached_property
    def plans(self) -> PlansService:
        from bridge.services.plans import PlansService

        settings = self.settings
        return PlansService(
            self.uow,
            self.clock,
            self.clients,
            self.invoicing,
            configurations=self.configurations,
            pricing=settings.pricing,
            plans=settings.plans,
            zone=self.zone,
            grace_period_days=settings.billing.grace_period_days,
            notifier=self.notifier,
        )

    @cached_property
    def periods(self) -> PeriodsService:
        from bridge.services.periods import PeriodsService

        return PeriodsService(
            self.uow,
            self.clock,
            self.clients,
            configurations=self.configurations,
            plan_fees={name: plan.fees for name, plan in self.settings.plans.items()},
            zone=self.zone,
            notifier=self.notifier,
        )

    @cached_property
    def outbox(self) -> OutboxService:
        from bridge.services.outbox import OutboxService

        return OutboxService(
            self.uow, self.clock, alert_after_attempts=self.settings.whmcs.alert_after_attempts
        )

    @cached_property
    def payments(self) -> PaymentsSync:
        from bridge.services.payments import PaymentsSync

        return PaymentsSync(
            self.uow,
            self.clock,
            zone=self.zone,
            agreement_gateways=self.settings.whmcs.agreement_gateways,
            client_factory=self.whmcs_client,
        )

    @cached_property
    def enrollment(self) -> EnrollmentService:
        """The sign-up flow, with the mails of the settings; its key file is made on first use."""
        from bridge.mail.templates import mail_templates
        from bridge.services.enrollment import EnrollmentService
        from bridge.web.enrollment.mailer import TemplateMail

        settings = self.settings
        mail = TemplateMail(mail_templates(settings), self.mail_transport(), settings, self.clock)
        solusvm = (lambda: self.solusvm_client(time.sleep)) if settings.solusvm.enabled else None
        return EnrollmentService(
            self.uow,
            self.clock,
            settings.enrollment,
            self.clients,
            self.link_keys,
            configurations=self.configurations,
            mail=mail,
            solusvm=solusvm,
            whmcs_enabled=settings.whmcs.enabled,
            tax_flow=self.taxes.validate,
        )

    @cached_property
    def link_keys(self) -> LinkKeys:
        """The sign-up site's keys (link tokens, password seal and hashes, session key); the key file is
        made on first use."""
        from bridge.web.enrollment.keys import LinkKeys, secret_key

        return LinkKeys(secret_key(self.settings))

    @cached_property
    def self_service(self) -> SelfService:
        """A client's own pages on the sign-up site (issue 19)."""
        from bridge.services.self_service import SelfService

        return SelfService(
            self.uow,
            self.clock,
            self.link_keys,
            clients=self.clients,
            credit=self.credit,
            enrollment=self.enrollment,
        )

    @cached_property
    def reconciliation(self) -> ReconciliationService:
        """The month's reconciliation (issue 18): read-only; held and skipped cycles from invoicing dry
        runs (its own invoicing service, as the credit engine has), Nova's month figure when enabled, and the
        SolusVM servers seen (from the stored evidence) when SolusVM is."""
        from bridge.services.reconciliation import InvoicingDecisions, ReconciliationService

        zone, configurations, invoicing = self.zone, self.configurations, self.invoicing
        return ReconciliationService(
            self.uow,
            self.clock,
            self.clients,
            zone=zone,
            configurations=configurations,
            decisions=InvoicingDecisions(
                lambda day, client: invoicing.run(day, client_ref=client, dry_run=True), zone
            ),
            cloud=self._cloud_figures(),
            solusvm=self.settings.solusvm.enabled,
        )

    def _cloud_figures(self) -> CloudFigures | None:
        if not self.settings.openstack.enabled:
            return None
        from bridge.fleio.nova_usage import NovaUsageCollector
        from bridge.fleio.reconciliation import NovaMonthFigures

        connection = self.openstack_connection
        return NovaMonthFigures(
            lambda: NovaUsageCollector.from_settings(connection(), self.settings.openstack, clock=self.clock),
            connection,
        )

    @cached_property
    def report_archive(self) -> ReportArchive:
        """Where the daemon keeps the monthly reports: ``<state_dir>/reports``."""
        return ReportArchive(self.settings.daemon.resolved_state_dir() / "reports")

    @cached_property
    def reports(self) -> ReportPublisher:
        from bridge.reports.publish import ReportPublisher

        return ReportPublisher(self.reconciliation, self.report_archive)

    @cached_property
    def hourly_retention(self) -> HourlyRetention:
        """Prunes the hourly usage rows older than billing.hourly_usage_months (the housekeeping job)."""
        from bridge.usage.retention import HourlyRetention

        return HourlyRetention(self.uow, self.clock, self.zone, self.settings.billing.hourly_usage_months)

    # -- workers: one per run, with that run's checkpoint, back-off and vendor connections ---------------

    def usage_sync(
        self, *, checkpoint: Callable[[], None] = lambda: None, sleep: Sleep = time.sleep
    ) -> UsageSync:
        """The usage sync with a collector for each enabled cloud; ``sleep`` is the vendor clients' wait
        between retries (a job passes one that ends at shutdown)."""
        from bridge.usage.sync import Current, Feed, Settled, UsageSync

        settings = self.settings
        feeds = []
        if settings.openstack.enabled:
            from bridge.fleio.nova_usage import NovaUsageCollector

            nova = NovaUsageCollector.from_settings(
                self.openstack_connection(), settings.openstack, clock=self.clock, sleep=sleep
            )
            windows = Settled(
                settings.billing.zone(), settings.openstack.window_length, settings.openstack.settle_delay
            )
            feeds.append(Feed(nova, windows))
        if settings.solusvm.enabled:
            from bridge.solusvm.events import SolusVMEventLog
            from bridge.solusvm.runtime_reader import SolusVMRuntimeReader
            from bridge.usage.solusvm_runtime import SolusVMRuntime

            client = self.solusvm_client(sleep)
            reader = SolusVMRuntimeReader(client, SolusVMEventLog(client, self.clock))
            runtime = SolusVMRuntime(self.uow, self.clock, reader, settings.billing.zone())
            feeds.append(Feed(runtime, Current(), plans=runtime.plans_seen, derive=runtime.derive))
        return UsageSync(self.uow, self.clock, feeds, checkpoint=checkpoint, zone=self.zone)

    def cloud_actions(self, *, sleep: Sleep = time.sleep) -> CloudActions:
        """The executor of the credit engine's cloud effects, for each enabled cloud."""
        from bridge.sync.cloud_actions import CloudActions

        openstack = None
        if self.settings.openstack.enabled:
            from bridge.fleio.server_actions import NovaServerActions

            openstack = NovaServerActions(self.openstack_connection())
        solusvm = self.solusvm_client(sleep) if self.settings.solusvm.enabled else None
        return CloudActions(self.uow, self.clock, openstack=openstack, solusvm=solusvm)

    def mail_delivery(self) -> MailDelivery:
        """The sender of the client notifications the bridge mails itself (``mail_client`` rows), through
        the transport of the settings; an in-doubt row waits twice the SMTP timeout before it is settled
        (the file sink answers exactly, so it waits for nothing)."""
        from bridge.mail.transport import FileSink, mail_host
        from bridge.sync.mail_delivery import MailDelivery, invoice_pdf

        transport = self.mail_transport()
        settings = self.settings
        settle = (
            timedelta(0)
            if isinstance(transport, FileSink)
            else timedelta(seconds=2 * settings.enrollment.smtp_timeout_seconds)
        )
        return MailDelivery(
            self.uow,
            self.clock,
            transport,
            host=mail_host(settings),
            settle=settle,
            lease_ttl=timedelta(seconds=settings.daemon.lease_seconds),
            owner=self.owner,
            attachments=invoice_pdf(self.invoice_pdf),
        )

    def invoice_pdf(self, reference: str) -> tuple[str, bytes]:
        """The stored invoice's PDF (the same bytes every time: dated its issue) and its file name."""
        from bridge.documents.invoices import render_html, stored_document
        from bridge.documents.pdf import render_pdf
        from bridge.mail.transport import safe_key

        stored = self.invoicing.find(reference)
        client = self.clients.get(str(stored.client_id))
        document = stored_document(stored, client, self.zone)
        html = render_html(document, self.configurations.section(client.configuration))
        pdf = render_pdf(html, base_url=None, created=stored.issued_at)
        return f"invoice-{safe_key(stored.display_number)}.pdf", pdf

    def pusher(self, **options: Any) -> OutboxPusher:
        """The outbox push to WHMCS; ``options`` are :class:`~bridge.sync.push.OutboxPusher`'s (a job passes
        its stop signal and a back-off that ends at shutdown; tests pass a random source)."""
        from bridge.sync.push import OutboxPusher

        options.setdefault("client_factory", self.whmcs_client)
        options.setdefault("metrics", self.metrics)
        options.setdefault("owner", self.owner)
        settings = self.settings
        lease_ttl = timedelta(seconds=settings.daemon.lease_seconds)
        return OutboxPusher(
            self.uow, self.clock, settings.whmcs, zone=self.zone, lease_ttl=lease_ttl, **options
        )

    # -- the schema: what `migrate`, `run` and every command that needs the schema ask of the store ------

    def database_missing(self) -> bool:
        """True for a SQLite file that does not exist yet (``run`` then says to migrate, not create it)."""
        from bridge.store.database import sqlite_file_missing

        return sqlite_file_missing(self.settings.database_url())

    def require_schema(self) -> None:
        """Raise BridgeError, saying to run ``migrate``, unless the schema is at this version's head."""
        from bridge.store.database import require_schema_at_head

        require_schema_at_head(self.engine)

    def migrate(self) -> tuple[str | None, str]:
        """Upgrade the schema to head (a SQLite file's directory is made first); (revision before, after)."""
        from bridge.store.database import ensure_sqlite_directory, migrate

        ensure_sqlite_directory(self.settings.database_url())
        return migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    owner: str | None = None,
    openstack_connection: OpenStackFactory | None = None,
    solusvm_client: SolusVMFactory | None = None,
    whmcs_client: WhmcsFactory | None = None,
    mail_transport: TransportFactory | None = None,
    vies_client: ViesFactory | None = None,
    masker: SecretMasker | None = None,
) -> App:
    """The bridge wired from ``settings``; each edge left out is made from the settings. Connects lazily,
    so building it touches nothing."""
    database = settings.database
    engine = make_engine(
        settings.database_url(),
        connect_timeout=database.connect_timeout_seconds,
        lock_timeout=database.lock_timeout_seconds,
        statement_timeout=database.statement_timeout_seconds,
    )
    clock = clock or SystemClock()
    return App(
        settings=settings,
        clock=clock,
        engine=engine,
        owner=owner or f"{socket.gethostname()}:{os.getpid()}",
        openstack_connection=openstack_connection or _openstack_connection(settings),
        solusvm_client=solusvm_client or _solusvm_client(settings, clock),
        whmcs_client=whmcs_client or _whmcs_client(settings),
        mail_transport=mail_transport or _mail_transport(settings, clock),
        vies_client=vies_client or _vies_client(settings),
        masker=masker or secret_masker(settings),
    )


def secret_masker(settings: Settings) -> SecretMasker:
    """The masker of every secret in ``settings``, and of the sign-up key the daemon generated."""
    generated = stored_secret_key(settings)
    return SecretMasker([*settings.secret_values(), *([generated] if generated else [])])


# -- the vendor edges made from settings (their modules are imported when first used) --------------------


def _openstack_connection(settings: Settings) -> OpenStackFactory:
    def connection() -> OpenStackConnection:
        from bridge.fleio.connection import connect

        return connect(settings.openstack)

    return connection


def _solusvm_client(settings: Settings, clock: Clock) -> SolusVMFactory:
    def client(sleep: Sleep) -> SolusVMClient:
        from bridge.solusvm.client import SolusVMClient

        return SolusVMClient.from_settings(settings.solusvm, clock=clock, sleep=sleep)

    return client


def _whmcs_client(settings: Settings) -> WhmcsFactory:
    def client() -> WhmcsClient:
        from bridge.sync.push import retry_wait
        from bridge.whmcs.client import WhmcsClient

        return WhmcsClient.from_settings(settings.whmcs, wait=retry_wait(settings.whmcs))

    return client


def _vies_client(settings: Settings) -> ViesFactory:
    def client() -> VatIdChecker:
        from bridge.vies.client import ViesClient

        return ViesClient.from_settings(settings.vies)

    return client


def _mail_transport(settings: Settings, clock: Clock) -> TransportFactory:
    def transport() -> Transport:
        from bridge.mail.transport import transport_for

        return transport_for(settings, clock)

    return transport
