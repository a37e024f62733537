"""Builds the object graph once from settings, for the CLI, the daemon and the tests alike.

Tests swap only the edges: a :class:`~bridge.clock.FixedClock`, a database URL, fake vendor URLs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from bridge.clock import Clock, SystemClock
from bridge.logs import SecretMasker
from bridge.services.clients import ClientService
from bridge.services.views import Views
from bridge.settings import Settings
from bridge.store.database import make_engine
from bridge.store.unit_of_work import UnitOfWork
from bridge.sync.jobs import JobRunner
from bridge.sync.registry import registry
from bridge.web.enrollment.keys import stored_secret_key
from bridge.web.metrics import StoreCollector


@dataclass
class App:
    settings: Settings
    clock: Clock
    engine: Engine
    owner: str
    masker: SecretMasker
    """Masks the secrets in force; the logs and every printed error use this one."""
    metrics: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.uow = UnitOfWork(self.engine)
        self.jobs = registry()
        self.runner = JobRunner(
            self.uow,
            self.clock,
            self.settings,
            self.owner,
            jobs=self.jobs,
            metrics=self.metrics,
            masker=self.masker,
        )
        self.metrics.register(StoreCollector(self.engine, self.clock, lambda: list(self.jobs)))
        self.clients = ClientService(self.uow, self.clock, self.settings)
        self.views = Views(
            self.uow,
            self.clock,
            database_url=self.settings.masked_database_url(),
            schedule=self.settings.schedule,
            zone=self.settings.billing.zone(),
            alert_after_attempts=self.settings.whmcs.alert_after_attempts,
        )

    def close(self) -> None:
        self.engine.dispose()


def build_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    owner: str | None = None,
    masker: SecretMasker | None = None,
) -> App:
    """The bridge wired from ``settings``; connects lazily, so building it touches nothing."""
    database = settings.database
    engine = make_engine(
        settings.database_url(),
        connect_timeout=database.connect_timeout_seconds,
        lock_timeout=database.lock_timeout_seconds,
        statement_timeout=database.statement_timeout_seconds,
    )
    return App(
        settings=settings,
        clock=clock or SystemClock(),
        engine=engine,
        owner=owner or f"{socket.gethostname()}:{os.getpid()}",
        masker=masker or secret_masker(settings),
    )


def secret_masker(settings: Settings) -> SecretMasker:
    """The masker of every secret in ``settings``, and of the sign-up key the daemon generated."""
    generated = stored_secret_key(settings)
    return SecretMasker([*settings.secret_values(), *([generated] if generated else [])])
