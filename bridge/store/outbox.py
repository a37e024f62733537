"""The outbox: every effect on an external system, written in the transaction of the change that causes it.

A row is the intent (a typed effect of bridge/domain/effects.py, encoded here once as its kind and a JSON
payload with money as strings, under a deterministic reference). The push job
(bridge/sync/push.py) sends rows in order per client and records the remote id; a call whose fate is
unknown leaves the row ``in_doubt``, and it is settled by looking the reference up before any repeat.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Update,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    true,
    update,
)

from bridge.domain import references
from bridge.domain.effects import CLOUD_KINDS as CLOUD_KINDS  # the kinds are the domain's
from bridge.domain.effects import LOCAL_KINDS as LOCAL_KINDS
from bridge.domain.effects import MAIL_KINDS as MAIL_KINDS
from bridge.domain.effects import AddCredit, Effect, decode
from bridge.domain.effects import EffectKind as EffectKind
from bridge.store.jobs import holds
from bridge.store.tables import outbox
from bridge.store.types import UTCDateTime


class OutboxState(StrEnum):
    PENDING = "pending"
    IN_DOUBT = "in_doubt"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class OutboxRow:
    id: int
    client_id: int
    kind: EffectKind
    reference: str
    payload: dict[str, Any]
    state: OutboxState
    attempts: int
    remote_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    next_attempt_at: datetime
    done_at: datetime | None
    lease_token: str | None = None
    claimed_at: datetime | None = None

    def effect(self) -> Effect:
        """The typed intent the row holds; ValueError names what is wrong with a payload it cannot read."""
        return decode(self.kind.value, self.payload)

    def settles_at(self, settle: timedelta) -> datetime | None:
        """When an in-doubt row may be looked up: ``settle`` after its last claim (WHMCS can no longer be
        applying that call by then). None when the row is not waiting for that."""
        if self.state is not OutboxState.IN_DOUBT or self.claimed_at is None:
            return None
        return self.claimed_at + settle


@dataclass(frozen=True)
class Fence:
    """The lease a writer holds (``job:push`` and the token of this acquisition). A fenced write changes a
    row only while that lease is still held, unexpired at the writer's now, and (after the claim) only a
    row claimed with that token: a push that lost its lease can change nothing."""

    lease: str
    token: str


class FencedOut(Exception):
    """A fenced write matched no row: the lease was lost or the row is no longer this holder's claim.
    Nothing was written; the holder must stop before its next external call."""


def enqueue(
    connection: Connection,
    *,
    client_id: int,
    kind: EffectKind,
    reference: str,
    payload: dict[str, Any],
    now: datetime,
) -> int:
    """Record the intent; the same reference twice is the same intent, so the first row is returned."""
    existing = connection.scalar(select(outbox.c.id).where(outbox.c.reference == reference))
    if existing is not None:
        return int(existing)
    result = connection.execute(insert(outbox).values(_pending_row(client_id, kind, reference, payload, now)))
    (row_id,) = result.inserted_primary_key or (None,)
    assert isinstance(row_id, int)
    return row_id


def enqueue_effect(
    connection: Connection, *, client_id: int, reference: str, effect: Effect, now: datetime
) -> int:
    """Record a typed intent (bridge/domain/effects.py): its kind and its payload, encoded here once."""
    return enqueue(
        connection,
        client_id=client_id,
        kind=effect.kind,
        reference=reference,
        payload=effect.payload(),
        now=now,
    )


@dataclass(frozen=True)
class Intent:
    """One typed intent to record: whose, under which reference, what (bridge/domain/effects.py)."""

    client_id: int
    reference: str
    effect: Effect


_INSERT_OUTBOX = insert(outbox)


def enqueue_effects(connection: Connection, intents: Sequence[Intent], *, now: datetime) -> None:
    """Record many intents at once (month end's invoice mails, a chunk at a time): one lookup of their
    references and one batched insert, in the intents' order. As with :func:`enqueue`, a reference
    recorded before (or twice in ``intents``) is the same intent: its first row stands."""
    if not intents:
        return
    recorded = set(
        connection.scalars(
            select(outbox.c.reference).where(outbox.c.reference.in_([item.reference for item in intents]))
        )
    )
    rows = []
    for item in intents:
        if item.reference in recorded:
            continue
        recorded.add(item.reference)
        effect = item.effect
        rows.append(_pending_row(item.client_id, effect.kind, item.reference, effect.payload(), now))
    if rows:
        connection.execute(_INSERT_OUTBOX, rows)


def _pending_row(
    client_id: int, kind: EffectKind, reference: str, payload: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A new outbox row, due now."""
    return {
        "client_id": client_id,
        "kind": kind.value,
        "reference": reference,
        "payload": encode_payload(payload),
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": now,
    }


def enqueue_credit(
    connection: Connection,
    *,
    client_id: int,
    ledger_reference: str,
    amount: Decimal,
    description: str,
    now: datetime,
) -> int:
    """The AddCredit intent that brings a credit the bridge recorded to WHMCS (when WHMCS is the billing
    system), in the ledger row's transaction: one row per ledger row, so the push sends it exactly once."""
    return enqueue_effect(
        connection,
        client_id=client_id,
        reference=references.whmcs_credit(ledger_reference),
        effect=AddCredit(amount=amount, description=description),
        now=now,
    )


def encode_payload(payload: dict[str, Any]) -> str:
    """JSON with Decimal as strings (never floats) and keys sorted, so a payload reads the same every time."""
    return json.dumps(payload, sort_keys=True, default=_exact)


def decode_payload(text: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return decoded


def _exact(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not allowed in an outbox payload")


def row_from(record: Any) -> OutboxRow:
    data = dict(record._mapping)
    data["kind"] = EffectKind(data["kind"])
    data["state"] = OutboxState(data["state"])
    data["payload"] = decode_payload(data["payload"])
    return OutboxRow(**data)


# -- reading and moving rows (the push engine, the operator's CLI and the metrics) ----------------------

UNSETTLED = (OutboxState.PENDING, OutboxState.IN_DOUBT, OutboxState.FAILED)
"""States that still need something: sending, looking up, or the operator."""
DUE = (OutboxState.PENDING, OutboxState.IN_DOUBT)
"""States the push works on by itself."""


def _values(states: tuple[OutboxState, ...]) -> list[str]:
    return [state.value for state in states]


def get(connection: Connection, row_id: int) -> OutboxRow | None:
    record = connection.execute(select(outbox).where(outbox.c.id == row_id)).first()
    return row_from(record) if record is not None else None


def by_reference(connection: Connection, reference: str) -> OutboxRow | None:
    record = connection.execute(select(outbox).where(outbox.c.reference == reference)).first()
    return row_from(record) if record is not None else None


def clients_with_work(connection: Connection) -> list[int]:
    """Clients with pending or in-doubt rows, the one waiting longest first."""
    query = (
        select(outbox.c.client_id, func.min(outbox.c.id).label("first"))
        .where(outbox.c.state.in_(_values(DUE)), outbox.c.kind.notin_([kind.value for kind in LOCAL_KINDS]))
        .group_by(outbox.c.client_id)
        .order_by("first")
    )
    return [int(row.client_id) for row in connection.execute(query)]


def unsettled_rows(connection: Connection, client_id: int) -> list[OutboxRow]:
    """The client's pending, in-doubt and failed rows, oldest first."""
    query = (
        select(outbox)
        .where(
            outbox.c.client_id == client_id,
            outbox.c.state.in_(_values(UNSETTLED)),
            # carried out by the bridge itself: sync/cloud_actions.py and sync/mail_delivery.py
            outbox.c.kind.notin_([kind.value for kind in LOCAL_KINDS]),
        )
        .order_by(outbox.c.id)
    )
    return [row_from(record) for record in connection.execute(query)]


def due_rows(connection: Connection, kinds: frozenset[EffectKind], limit: int = 1000) -> list[OutboxRow]:
    """Pending and in-doubt rows of ``kinds``, oldest first (the mail delivery's queue)."""
    query = (
        select(outbox)
        .where(outbox.c.kind.in_([kind.value for kind in kinds]), outbox.c.state.in_(_values(DUE)))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [row_from(record) for record in connection.execute(query)]


def list_rows(
    connection: Connection, states: tuple[OutboxState, ...] = UNSETTLED, *, limit: int = 500
) -> list[OutboxRow]:
    query = select(outbox).where(outbox.c.state.in_(_values(states))).order_by(outbox.c.id).limit(limit)
    return [row_from(record) for record in connection.execute(query)]


def claim(connection: Connection, row: OutboxRow, fence: Fence, now: datetime, settle: timedelta) -> bool:
    """Mark the row in doubt *before* its call goes out, counting the attempt and recording the claimant.

    Committed ahead of the call, so a crash at any moment after it leaves a row that is looked up before
    it is sent again. A compare-and-set: ``row`` is the row as just read, and the claim holds only if its
    state and claimant are unchanged (not cancelled, retried or claimed meanwhile), the fence's lease is
    still held, and, for a row in doubt, ``settle`` has passed since its last claim (a call in flight, or
    one WHMCS may still be applying, is never looked up, let alone sent again). A single UPDATE, so on
    SQLite it takes the write lock first and never has to upgrade a stale read snapshot; built once
    (:data:`_CLAIMS`), as the push makes one per row on its threads' critical path.
    """
    if row.state not in DUE:
        return False
    in_doubt = row.state is OutboxState.IN_DOUBT
    changed = connection.execute(
        _CLAIMS[in_doubt],
        {
            "row_id": row.id,
            "expected_state": row.state.value,
            "claimant": row.lease_token,
            "settled_before": now - settle,
            "fence_lease": fence.lease,
            "fence_token": fence.token,
            "now": now,
        },
    ).rowcount
    return bool(changed == 1)


def _now() -> ColumnElement[datetime]:
    return bindparam("now", type_=UTCDateTime())


def _fence_held() -> ColumnElement[bool]:
    """The fence of a statement built once: ``fence_lease`` held with ``fence_token`` at ``now``."""
    return holds(bindparam("fence_lease", type_=String()), bindparam("fence_token", type_=String()), _now())


def _claim_statement(in_doubt: bool) -> Update:
    settled: ColumnElement[bool] = true()
    if in_doubt:
        before = bindparam("settled_before", type_=UTCDateTime())
        settled = or_(outbox.c.claimed_at.is_(None), outbox.c.claimed_at <= before)
    return (
        update(outbox)
        .where(
            outbox.c.id == bindparam("row_id"),
            outbox.c.state == bindparam("expected_state", type_=String()),
            outbox.c.lease_token.is_not_distinct_from(bindparam("claimant", type_=String())),
            settled,
            _fence_held(),
        )
        .values(
            state=OutboxState.IN_DOUBT.value,
            attempts=outbox.c.attempts + 1,
            updated_at=_now(),
            lease_token=bindparam("fence_token", type_=String()),
            claimed_at=_now(),
        )
    )


_CLAIMS = {in_doubt: _claim_statement(in_doubt) for in_doubt in (False, True)}
"""The claim of a pending row and of one in doubt, built once."""

_DONE = (
    update(outbox)
    .where(
        outbox.c.id == bindparam("row_id"),
        outbox.c.state.in_(_values(DUE)),
        outbox.c.lease_token == bindparam("fence_token", type_=String()),
        _fence_held(),
    )
    .values(
        state=OutboxState.DONE.value,
        done_at=_now(),
        updated_at=_now(),
        remote_id=func.coalesce(bindparam("found_remote_id", type_=String()), outbox.c.remote_id),
    )
)
"""A fenced :func:`mark_done`, built once: the push records one per row."""


def release(connection: Connection, row_id: int, fence: Fence, now: datetime) -> None:
    """Give back a claim whose call never went out (a row claimed ahead of its turn that the push did not
    reach): pending again, its attempt uncounted. :class:`FencedOut` unless it is still this claim."""
    _settle(
        connection,
        row_id,
        fence,
        now,
        state=OutboxState.PENDING.value,
        attempts=outbox.c.attempts - 1,
        claimed_at=None,
    )


def _claimed(row_id: int, fence: Fence | None, now: datetime) -> ColumnElement[bool]:
    """The row as its claimant may still change it: still due (in doubt since the claim, or left pending by
    it), claimed with the fence's token, the lease held. Without a fence (a row set by hand, never by a
    push): any row still due."""
    if fence is None:
        return and_(outbox.c.id == row_id, outbox.c.state.in_(_values(DUE)))
    return and_(
        outbox.c.id == row_id,
        outbox.c.state.in_(_values(DUE)),
        outbox.c.lease_token == fence.token,
        holds(fence.lease, fence.token, now),
    )


def _settle(connection: Connection, row_id: int, fence: Fence | None, now: datetime, **values: Any) -> None:
    changed = connection.execute(
        update(outbox).where(_claimed(row_id, fence, now)).values(updated_at=now, **values)
    ).rowcount
    if changed != 1:
        raise FencedOut(f"outbox row {row_id} is no longer this push's claim (lease lost or taken over)")


def record_progress(
    connection: Connection, row_id: int, remote_id: str, now: datetime, fence: Fence | None = None
) -> None:
    """Keep the remote id of a multi-step effect's first step (a draft invoice before it is published)."""
    _settle(connection, row_id, fence, now, remote_id=remote_id)


def mark_done(
    connection: Connection, row_id: int, remote_id: str | None, now: datetime, fence: Fence | None = None
) -> None:
    """Settle the row as applied. Raises :class:`FencedOut` (and writes nothing) unless the row is still
    the fence holder's claim."""
    if fence is not None:
        parameters = {"row_id": row_id, "found_remote_id": remote_id, "now": now}
        parameters |= {"fence_lease": fence.lease, "fence_token": fence.token}
        if connection.execute(_DONE, parameters).rowcount != 1:
            raise FencedOut(f"outbox row {row_id} is no longer this push's claim (lease lost or taken over)")
        return
    values: dict[str, Any] = {"state": OutboxState.DONE.value, "done_at": now}
    if remote_id is not None:
        values["remote_id"] = remote_id
    _settle(connection, row_id, fence, now, **values)


def mark_failed(
    connection: Connection, row_id: int, message: str, now: datetime, fence: Fence | None = None
) -> None:
    """Park the claimed row for the operator (``outbox retry`` / ``outbox cancel``). WHMCS answered every
    call of the attempt (it refused, or the bridge refused to send), so no call is in flight: a retried
    row is looked up at the next push, with no settle time to wait."""
    _settle(
        connection, row_id, fence, now, state=OutboxState.FAILED.value, last_error=message, claimed_at=None
    )


def park(connection: Connection, row: OutboxRow, fence: Fence, message: str, now: datetime) -> bool:
    """Park a row the push did not claim (it cannot go as it stands), if it is unchanged since ``row`` was
    read and the lease is held; False otherwise."""
    changed = connection.execute(
        update(outbox)
        .where(
            outbox.c.id == row.id,
            outbox.c.state == row.state.value,
            outbox.c.lease_token.is_not_distinct_from(row.lease_token),
            holds(fence.lease, fence.token, now),
        )
        .values(state=OutboxState.FAILED.value, last_error=message, updated_at=now)
    ).rowcount
    return bool(changed == 1)


def mark_unsettled(
    connection: Connection,
    row_id: int,
    state: OutboxState,
    message: str,
    now: datetime,
    next_attempt_at: datetime | None = None,
    fence: Fence | None = None,
) -> None:
    """Leave the claimed row pending (provably not applied) or in doubt, with why, and when to try again."""
    if state not in DUE:
        raise ValueError(f"mark_unsettled takes pending or in_doubt, not {state.value}")
    values: dict[str, Any] = {"state": state.value, "last_error": message}
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    _settle(connection, row_id, fence, now, **values)


def retry(connection: Connection, row_id: int, now: datetime) -> OutboxRow | None:
    """Make an unsettled row due now with a fresh attempt count; a failed row becomes in doubt, so the
    push looks its reference up before sending (whatever made it fail, it can never be sent twice).
    Returns the row as it now is, or None if it does not exist."""
    connection.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.state.in_(_values(UNSETTLED)))
        .values(
            state=case(
                (outbox.c.state == OutboxState.FAILED.value, OutboxState.IN_DOUBT.value),
                else_=outbox.c.state,
            ),
            attempts=0,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    return get(connection, row_id)


def cancel(connection: Connection, row_id: int, now: datetime) -> OutboxRow | None:
    """Drop an unsettled row (pending, in doubt or failed); settled rows are left as they are."""
    connection.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.state.in_(_values(UNSETTLED)))
        .values(state=OutboxState.CANCELLED.value, updated_at=now)
    )
    return get(connection, row_id)


def effects_since(
    connection: Connection, client_id: int, kinds: tuple[EffectKind, ...], since: datetime
) -> list[Effect]:
    """The intents of the client's rows of ``kinds`` written since ``since``, oldest first: decoded here,
    as every row is, so no caller reads a payload."""
    query = (
        select(outbox.c.kind, outbox.c.payload)
        .where(
            outbox.c.client_id == client_id,
            outbox.c.kind.in_([kind.value for kind in kinds]),
            outbox.c.created_at >= since,
        )
        .order_by(outbox.c.id)
    )
    return [decode(kind, decode_payload(text)) for kind, text in connection.execute(query)]


def count_kind(connection: Connection, client_id: int, kind: EffectKind) -> int:
    return int(
        connection.scalar(
            select(func.count()).where(outbox.c.client_id == client_id, outbox.c.kind == kind.value)
        )
        or 0
    )


@dataclass(frozen=True)
class Backlog:
    """The outbox at a glance, for /metrics, /readyz and ``status``.

    ``oldest_unsent_at`` is when the oldest pending or in-doubt row was written; ``stuck`` counts pending
    or in-doubt rows tried at least ``alert_after`` times.
    """

    by_state: dict[str, int]
    oldest_unsent_at: datetime | None
    max_attempts: int
    stuck: int

    @property
    def failed(self) -> int:
        return self.by_state.get(OutboxState.FAILED.value, 0)


def backlog(connection: Connection, alert_after: int) -> Backlog:
    counts = {state.value: 0 for state in OutboxState}
    for state, count in connection.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)):
        counts[str(state)] = int(count)
    due = outbox.c.state.in_(_values(DUE))
    oldest, most = connection.execute(
        select(func.min(outbox.c.created_at), func.max(outbox.c.attempts)).where(due)
    ).one()
    stuck = connection.scalar(select(func.count()).where(due, outbox.c.attempts >= alert_after))
    return Backlog(
        by_state=counts,
        oldest_unsent_at=_aware(oldest),
        max_attempts=int(most or 0),
        stuck=int(stuck or 0),
    )


def _aware(value: Any) -> datetime | None:
    """An aggregate (MIN) bypasses the column type on some drivers; give it back aware in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
