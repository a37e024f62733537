"""The outbox: every effect on an external system, written in the transaction of the change that causes it.

A row is the intent (kind, deterministic reference, JSON payload with money as strings). The push job
(bridge/sync/outbox.py) sends rows in order per client and records the remote id; a call whose fate is
unknown leaves the row ``in_doubt``, and it is settled by looking the reference up before any repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select

from bridge.store.tables import outbox


class EffectKind(StrEnum):
    ADD_CLIENT = "add_client"
    UPDATE_CLIENT = "update_client"
    CREATE_INVOICE = "create_invoice"
    ADD_CREDIT = "add_credit"
    ADD_PAYMENT = "add_payment"


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
    result = connection.execute(
        insert(outbox).values(
            client_id=client_id,
            kind=kind.value,
            reference=reference,
            payload=encode_payload(payload),
            state=OutboxState.PENDING.value,
            attempts=0,
            created_at=now,
            updated_at=now,
            next_attempt_at=now,
        )
    )
    (row_id,) = result.inserted_primary_key or (None,)
    assert isinstance(row_id, int)
    return row_id


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
