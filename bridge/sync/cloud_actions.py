"""Carries out the cloud effects of the credit engine: suspend, shelve, resume, unshelve, delete a server;
disable and enable an OpenStack project.

The decision wrote an outbox row (intent first, in the decision's transaction); this sends it. Repeating
one of these actions is harmless, so a row whose first try failed is simply tried again, and Nova's 409
("the server is already in that state") counts as done. A project action looks the project up first and
changes nothing when it is already in the wanted state, so a retry after a lost answer PATCHes nothing.
A row that keeps failing is parked as failed for the operator (``billing-bridge outbox``), never silently
dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update

from bridge.clock import Clock
from bridge.domain.effects import PROJECT_KINDS, ServerAction
from bridge.errors import VendorError
from bridge.logs import get_logger
from bridge.store.outbox import CLOUD_KINDS, EffectKind, OutboxRow, OutboxState, row_from
from bridge.store.tables import outbox
from bridge.store.unit_of_work import UnitOfWork

log = get_logger(__name__)

MAX_ATTEMPTS = 5


class OpenStackActions(Protocol):
    def suspend(self, server_id: str) -> None: ...
    def resume(self, server_id: str) -> None: ...
    def shelve(self, server_id: str) -> None: ...
    def unshelve(self, server_id: str) -> None: ...
    def delete(self, server_id: str) -> None: ...
    def disable_project(self, project_id: str) -> bool: ...
    def enable_project(self, project_id: str) -> bool: ...


class SolusVMActions(Protocol):
    def suspend_server(self, server_id: int) -> object: ...
    def resume_server(self, server_id: int) -> object: ...
    def delete_server(self, server_id: int) -> object: ...


@dataclass
class CloudReport:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


class CloudActions:
    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        *,
        openstack: OpenStackActions | None,
        solusvm: SolusVMActions | None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._openstack = openstack
        self._solusvm = solusvm

    def run(self) -> CloudReport:
        report = CloudReport()
        with self._uow.reading() as connection:
            rows = [
                row_from(record)
                for record in connection.execute(
                    select(outbox)
                    .where(
                        outbox.c.kind.in_([kind.value for kind in CLOUD_KINDS]),
                        outbox.c.state.in_([OutboxState.PENDING.value, OutboxState.IN_DOUBT.value]),
                    )
                    .order_by(outbox.c.id)
                )
            ]
        for row in rows:
            self._carry_out(row, report)
        return report

    def _carry_out(self, row: OutboxRow, report: CloudReport) -> None:
        action = row.effect()
        assert isinstance(action, ServerAction)  # the rows read are of CLOUD_KINDS only
        source, resource = action.source, action.resource_id
        label = f"{row.kind.value} {source}:{resource}"
        try:
            self._call(row.kind, source, resource)
        except _NotConfigured as missing:
            report.waiting.append(f"{label}: {missing}")
            return
        except VendorError as error:
            if getattr(error, "status", None) == 409:
                log.info("cloud action already in effect", action=label)
            else:
                attempts = row.attempts + 1
                state = OutboxState.FAILED if attempts >= MAX_ATTEMPTS else OutboxState.PENDING
                self._save(row, state, attempts, str(error))
                (report.failed if state is OutboxState.FAILED else report.waiting).append(f"{label}: {error}")
                log.warning("cloud action failed", action=label, attempts=attempts, error=str(error))
                return
        self._save(row, OutboxState.DONE, row.attempts + 1, None)
        report.done.append(label)
        log.info("cloud action done", action=label, client=row.client_id)

    def _call(self, kind: EffectKind, source: str, resource: str) -> None:
        if source == "openstack":
            if self._openstack is None:
                raise _NotConfigured("openstack.enabled is false")
            actions: dict[EffectKind, Callable[[str], object]] = {
                EffectKind.SUSPEND_SERVER: self._openstack.suspend,
                EffectKind.RESUME_SERVER: self._openstack.resume,
                EffectKind.SHELVE_SERVER: self._openstack.shelve,
                EffectKind.UNSHELVE_SERVER: self._openstack.unshelve,
                EffectKind.DELETE_SERVER: self._openstack.delete,
                EffectKind.DISABLE_PROJECT: self._openstack.disable_project,
                EffectKind.ENABLE_PROJECT: self._openstack.enable_project,
            }
            actions[kind](resource)
            return
        if kind in PROJECT_KINDS:
            raise VendorError(source, "-", f"{kind.value} is an OpenStack action; {source} has no projects")
        if self._solusvm is None:
            raise _NotConfigured("solusvm.enabled is false")
        if kind in (EffectKind.SUSPEND_SERVER, EffectKind.SHELVE_SERVER):
            self._solusvm.suspend_server(int(resource))
        elif kind in (EffectKind.RESUME_SERVER, EffectKind.UNSHELVE_SERVER):
            self._solusvm.resume_server(int(resource))
        else:
            self._solusvm.delete_server(int(resource))

    def _save(self, row: OutboxRow, state: OutboxState, attempts: int, error: str | None) -> None:
        now: datetime = self._clock.now()
        with self._uow.writing() as connection:
            connection.execute(
                update(outbox)
                .where(outbox.c.id == row.id)
                .values(
                    state=state.value,
                    attempts=attempts,
                    last_error=error,
                    updated_at=now,
                    done_at=now if state is OutboxState.DONE else None,
                )
            )


class _NotConfigured(Exception):
    """The cloud of the row is not enabled in the settings; the row waits."""
