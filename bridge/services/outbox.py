"""The outbox as the operator and the rest of the bridge meet it: client effects to enqueue, rows to list,
retry or cancel, and the backlog that /metrics, /readyz and ``status`` report.

Client effects are enqueued here (in the caller's transaction) so that the client change and its outbox
row commit together; the push engine (bridge/sync/push.py) sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bridge.clock import Clock
from bridge.domain import references
from bridge.domain.clients import Client
from bridge.domain.effects import AddClient, UpdateClient
from bridge.errors import InputError, NotFound
from bridge.store import clients as client_store
from bridge.store import outbox as store
from bridge.store.outbox import Backlog, EffectKind, OutboxRow, OutboxState
from bridge.store.unit_of_work import StoreError, Tx, UnitOfWork
from bridge.store.whmcs import whmcs_client_id

STATE_NAMES = {state.value.replace("_", "-"): state for state in OutboxState} | {
    s.value: s for s in OutboxState
}
"""What ``--state`` accepts: ``in-doubt`` as the operator types it, ``in_doubt`` as JSON shows it."""


def client_reference(client_id: int) -> str:
    """The add_client reference: one WHMCS client per bridge client, ever."""
    return references.whmcs_client(client_id)


def split_name(name: str) -> tuple[str, str]:
    """WHMCS's first and last name from the bridge's one name: the last word is the last name."""
    words = name.split()
    if len(words) < 2:
        return (words[0] if words else "", "")
    return " ".join(words[:-1]), words[-1]


def enqueue_add_client(
    connection: Tx, *, client_id: int, email: str, name: str, currency: str, now: datetime
) -> int:
    """The row that creates (or finds by email) the client in WHMCS, with its tax identity (country, VAT
    ID, exemption) as the client stands in this transaction; idempotent per client."""
    firstname, lastname = split_name(name)
    client = client_store.client_by_id(connection, client_id)
    effect = AddClient(email, firstname, lastname, currency)
    if client is not None:
        effect = replace(effect, country=client.country, tax_id=client.vat_id, taxexempt=_exempt(client))
    return store.enqueue_effect(
        connection, client_id=client_id, reference=client_reference(client_id), effect=effect, now=now
    )


def enqueue_tax_identity(connection: Tx, *, client_id: int, now: datetime) -> int | None:
    """The row that tells WHMCS the client's tax identity as it stands in this transaction (country, VAT
    ID as ``tax_id``, tax exemption as ``taxexempt``), so that WHMCS's tax rules see the client the
    bridge taxes: written with every change of any of them, when the client is (or will be) in WHMCS.

    Always the whole identity, never a difference: a row sent twice, or after a later one was written,
    still leaves WHMCS with the identity of its moment, and rows go out in order.
    """
    client = client_store.client_by_id(connection, client_id)
    if client is None or not _in_whmcs(connection, client_id):
        return None
    return _enqueue_update(
        connection,
        client_id,
        UpdateClient(country=client.country, tax_id=client.vat_id or "", taxexempt=_exempt(client)),
        now,
    )


def _exempt(client: Client) -> bool:
    return client.exemption is not None and client.exemption.exempt


def _in_whmcs(connection: Tx, client_id: int) -> bool:
    """Whether the client has a WHMCS link or an add_client row (which may not have gone out yet)."""
    if whmcs_client_id(connection, client_id) is not None:
        return True
    return store.by_reference(connection, client_reference(client_id)) is not None


def _enqueue_update(connection: Tx, client_id: int, effect: UpdateClient, now: datetime) -> int:
    """An update_client row; references count up per client, so changing a field back and forth sends
    every change."""
    number = store.count_kind(connection, client_id, EffectKind.UPDATE_CLIENT) + 1
    return store.enqueue_effect(
        connection,
        client_id=client_id,
        reference=references.whmcs_client_update(client_id, number),
        effect=effect,
        now=now,
    )


def enqueue_update_client(
    connection: Tx,
    *,
    client_id: int,
    email: str | None = None,
    name: str | None = None,
    now: datetime,
) -> int | None:
    """The row that carries a name or email change to WHMCS, when the client is (or will be) there.

    A client with neither a WHMCS link nor an add_client row gets nothing: the add_client the push writes
    for it later is built from the client as it is then.
    """
    if not _in_whmcs(connection, client_id) or (email is None and name is None):
        return None
    firstname, lastname = split_name(name) if name is not None else (None, None)
    return _enqueue_update(
        connection, client_id, UpdateClient(email=email, firstname=firstname, lastname=lastname), now
    )


@dataclass(frozen=True)
class ListedRow:
    """A row as ``billing-bridge outbox`` shows it; ``blocked_by`` is the failed row of the same client it
    waits behind (one client's rows go out in order)."""

    row: OutboxRow
    blocked_by: int | None


class OutboxService:
    """The operator's view of the outbox; a row tried ``alert_after_attempts`` times without success is
    stuck (``whmcs.alert_after_attempts``)."""

    def __init__(self, uow: UnitOfWork, clock: Clock, *, alert_after_attempts: int) -> None:
        self._uow = uow
        self._clock = clock
        self._alert_after_attempts = alert_after_attempts

    def rows(self, state: str | None = None, *, limit: int = 500) -> list[ListedRow]:
        """Rows in ``state`` (pending, in-doubt, failed, done, cancelled), or every unsettled row."""
        states = store.UNSETTLED if state is None else (parse_state(state),)
        with self._uow.reading() as connection:
            rows = store.list_rows(connection, states, limit=limit)
            failed = store.list_rows(connection, (OutboxState.FAILED,), limit=10_000)
        return [ListedRow(row, _blocker(row, failed)) for row in rows]

    def get(self, row_id: int) -> OutboxRow:
        with self._uow.reading() as connection:
            row = store.get(connection, row_id)
        if row is None:
            raise NotFound(f"no outbox row {row_id}; `billing-bridge outbox` lists them")
        return row

    def retry(self, row_id: int) -> OutboxRow:
        """Make the row due at the next push; a failed row is looked up before it is sent again."""
        row = self.get(row_id)
        if row.state not in store.UNSETTLED:
            raise InputError(f"outbox row {row_id} is {row.state.value}; only unsettled rows can be retried")
        with self._uow.writing() as connection:
            retried = store.retry(connection, row_id, self._clock.now())
        assert retried is not None
        return retried

    def cancel(self, row_id: int) -> OutboxRow:
        """Give up on the row: it is never sent. One in doubt may already be in WHMCS; check there."""
        row = self.get(row_id)
        if row.state not in store.UNSETTLED:
            raise InputError(
                f"outbox row {row_id} is {row.state.value}; only unsettled rows can be cancelled"
            )
        with self._uow.writing() as connection:
            cancelled = store.cancel(connection, row_id, self._clock.now())
        assert cancelled is not None
        return cancelled

    def backlog(self) -> Backlog:
        with self._uow.reading() as connection:
            return store.backlog(connection, self._alert_after_attempts)

    def readiness_problems(self) -> list[str]:
        """Why /readyz should say "degraded": failed rows, and rows that keep failing; empty when all is
        well."""
        try:
            with self._uow.reading() as connection:
                backlog = store.backlog(connection, self._alert_after_attempts)
        except StoreError as error:
            return [f"outbox backlog cannot be read: {str(getattr(error, 'orig', error)).splitlines()[0]}"]
        problems = []
        if backlog.failed:
            problems.append(
                f"{backlog.failed} outbox rows failed and wait for the operator: "
                "`billing-bridge outbox --state failed`, then `outbox retry ID` or `outbox cancel ID`"
            )
        if backlog.stuck:
            problems.append(
                f"{backlog.stuck} outbox rows tried {self._alert_after_attempts}+ times without "
                "success: `billing-bridge outbox` shows their last error"
            )
        return problems


def _blocker(row: OutboxRow, failed: list[OutboxRow]) -> int | None:
    """The failed row of the same client that goes before this due row (so holds it back), if any. Only
    the push's rows hold each other back: cloud actions and mails go on their own."""
    if row.state not in store.DUE or row.kind in store.LOCAL_KINDS:
        return None
    for other in (found for found in failed if found.kind not in store.LOCAL_KINDS):
        if other.client_id == row.client_id and (other.id < row.id or other.kind is EffectKind.ADD_CLIENT):
            return other.id
    return None


def parse_state(state: str) -> OutboxState:
    try:
        return STATE_NAMES[state.strip().lower()]
    except KeyError:
        raise InputError(
            f"--state {state!r} is not a state; use pending, in-doubt, failed, done or cancelled"
        ) from None


def backlog_summary(backlog: Backlog, now: datetime) -> dict[str, Any]:
    """The outbox part of ``status --json`` and ``GET /status``."""
    oldest = backlog.oldest_unsent_at
    return {
        "rows": dict(backlog.by_state),
        "oldest_unsent_age_seconds": round((now - oldest).total_seconds(), 3) if oldest else None,
        "max_attempts": backlog.max_attempts,
        "stuck": backlog.stuck,
    }
