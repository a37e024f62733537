"""The outbox on every database: one row per intent, exact payloads, claims that are compare-and-set and
fenced on the lease, and a backlog whose times come back aware."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from bridge.domain.effects import ShelveServer, SuspendServer
from bridge.store import jobs
from bridge.store import outbox as store
from bridge.store.outbox import EffectKind, Fence, FencedOut, OutboxRow, OutboxState
from bridge.store.unit_of_work import Tx, UnitOfWork
from tests.support.store import NOW, new_client

LEASE = "job:push"
TTL = timedelta(minutes=5)
SETTLE = timedelta(minutes=2)


def enqueue(tx: Tx, client_id: int, reference: str, kind: EffectKind = EffectKind.CREATE_INVOICE) -> int:
    payload = {
        "reference": reference,
        "total": Decimal("31.08"),
        "lines": [{"amount": Decimal("0.12345678")}],
    }
    return store.enqueue(tx, client_id=client_id, kind=kind, reference=reference, payload=payload, now=NOW)


def take_lease(uow: UnitOfWork, owner: str = "daemon-a", after: timedelta = timedelta(0)) -> Fence:
    with uow.writing() as tx:
        token = jobs.try_acquire_lease(tx, LEASE, owner, NOW + after, TTL)
    assert token is not None
    return Fence(LEASE, token)


def read(uow: UnitOfWork, row_id: int) -> OutboxRow:
    with uow.reading() as tx:
        row = store.get(tx, row_id)
    assert row is not None
    return row


def claim(uow: UnitOfWork, row: OutboxRow, fence: Fence, after: timedelta = timedelta(0)) -> bool:
    with uow.writing() as tx:
        return store.claim(tx, row, fence, NOW + after, SETTLE)


@pytest.fixture
def row_id(uow: UnitOfWork) -> int:
    with uow.writing() as tx:
        return enqueue(tx, new_client(tx), "BB-1-2022-10")


def test_an_intent_is_one_row_and_its_money_reads_back_as_the_exact_strings_written(
    uow: UnitOfWork, row_id: int
) -> None:
    with uow.writing() as tx:
        again = enqueue(tx, 1, "BB-1-2022-10")
    with uow.reading() as tx:
        row = store.by_reference(tx, "BB-1-2022-10")
    assert row is not None and row.id == again == row_id
    assert (row.kind, row.state, row.attempts, row.lease_token, row.claimed_at) == (
        EffectKind.CREATE_INVOICE,
        OutboxState.PENDING,
        0,
        None,
        None,
    )
    assert row.payload == {"reference": "BB-1-2022-10", "total": "31.08", "lines": [{"amount": "0.12345678"}]}
    assert row.created_at == NOW and row.next_attempt_at.utcoffset() is not None


def test_a_claim_is_a_compare_and_set_on_the_row_as_read(uow: UnitOfWork, row_id: int) -> None:
    fence = take_lease(uow)
    as_read = read(uow, row_id)
    assert claim(uow, as_read, fence)
    assert not claim(uow, as_read, fence), "the row changed since it was read (no longer pending, unclaimed)"
    claimed = read(uow, row_id)
    assert (claimed.state, claimed.attempts, claimed.lease_token, claimed.claimed_at) == (
        OutboxState.IN_DOUBT,
        1,
        fence.token,
        NOW,
    )


def test_a_row_in_doubt_is_claimed_again_only_after_the_settle_time(uow: UnitOfWork, row_id: int) -> None:
    fence = take_lease(uow)
    assert claim(uow, read(uow, row_id), fence)
    in_doubt = read(uow, row_id)
    assert in_doubt.settles_at(SETTLE) == NOW + SETTLE
    assert not claim(uow, in_doubt, fence, after=SETTLE - timedelta(seconds=1))
    assert claim(uow, in_doubt, fence, after=SETTLE)
    assert read(uow, row_id).attempts == 2


def test_a_push_that_lost_its_lease_can_neither_claim_nor_settle(uow: UnitOfWork, row_id: int) -> None:
    lost = take_lease(uow, "daemon-a")
    assert claim(uow, read(uow, row_id), lost)
    taken_over = take_lease(uow, "daemon-b", after=TTL)
    with pytest.raises(FencedOut), uow.writing() as tx:
        store.mark_done(tx, row_id, "77", NOW + TTL, fence=lost)
    assert not claim(uow, read(uow, row_id), lost, after=TTL + SETTLE)
    assert read(uow, row_id).state is OutboxState.IN_DOUBT
    assert claim(uow, read(uow, row_id), taken_over, after=TTL + SETTLE)
    with uow.writing() as tx:
        store.mark_done(tx, row_id, "77", NOW + TTL + SETTLE, fence=taken_over)
    done = read(uow, row_id)
    assert (done.state, done.remote_id, done.done_at) == (OutboxState.DONE, "77", NOW + TTL + SETTLE)


def test_a_claim_whose_call_never_went_out_is_given_back_only_by_its_holder(
    uow: UnitOfWork, row_id: int
) -> None:
    lost = take_lease(uow, "daemon-a")
    assert claim(uow, read(uow, row_id), lost)
    with uow.writing() as tx:
        store.release(tx, row_id, lost, NOW)
    released = read(uow, row_id)
    assert (released.state, released.attempts, released.claimed_at) == (OutboxState.PENDING, 0, None)
    assert claim(uow, released, lost)
    taken_over = take_lease(uow, "daemon-b", after=TTL)
    with pytest.raises(FencedOut), uow.writing() as tx:
        store.release(tx, row_id, lost, NOW + TTL)
    assert read(uow, row_id).state is OutboxState.IN_DOUBT, (
        "left in doubt, to be looked up by the next holder"
    )
    assert taken_over.token != lost.token


def test_a_failed_row_is_retried_as_in_doubt_with_fresh_attempts_and_a_settled_row_stays(
    uow: UnitOfWork, row_id: int
) -> None:
    fence = take_lease(uow)
    assert claim(uow, read(uow, row_id), fence)
    with uow.writing() as tx:
        store.mark_failed(tx, row_id, "WHMCS refused: no such client", NOW, fence=fence)
        failed = store.get(tx, row_id)
        retried = store.retry(tx, row_id, NOW + timedelta(hours=1))
    assert failed is not None and (failed.state, failed.last_error, failed.claimed_at) == (
        OutboxState.FAILED,
        "WHMCS refused: no such client",
        None,
    )
    assert retried is not None
    assert (retried.state, retried.attempts, retried.next_attempt_at) == (
        OutboxState.IN_DOUBT,
        0,
        NOW + timedelta(hours=1),
    )
    with uow.writing() as tx:
        store.mark_done(tx, row_id, None, NOW)
        assert store.cancel(tx, row_id, NOW) == store.get(tx, row_id)
        assert store.retry(tx, 99, NOW) is None
    assert read(uow, row_id).state is OutboxState.DONE


def test_a_pending_row_left_unsettled_keeps_its_reason_and_next_attempt(uow: UnitOfWork, row_id: int) -> None:
    fence = take_lease(uow)
    assert claim(uow, read(uow, row_id), fence)
    later = NOW + timedelta(minutes=10)
    with uow.writing() as tx:
        store.mark_unsettled(tx, row_id, OutboxState.PENDING, "connection refused", NOW, later, fence=fence)
        with pytest.raises(ValueError, match="not done"):
            store.mark_unsettled(tx, row_id, OutboxState.DONE, "no", NOW)
    row = read(uow, row_id)
    assert (row.state, row.last_error, row.next_attempt_at) == (
        OutboxState.PENDING,
        "connection refused",
        later,
    )


def test_park_and_cancel_hold_only_while_the_row_is_as_read(uow: UnitOfWork, row_id: int) -> None:
    fence = take_lease(uow)
    as_read = read(uow, row_id)
    with uow.writing() as tx:
        assert store.park(tx, as_read, fence, "a line without a price", NOW)
        assert not store.park(tx, as_read, fence, "again", NOW)
        cancelled = store.cancel(tx, row_id, NOW)
    assert cancelled is not None and (cancelled.state, cancelled.last_error) == (
        OutboxState.CANCELLED,
        "a line without a price",
    )


def test_work_is_listed_per_client_oldest_first_and_cloud_effects_are_left_to_the_clouds(
    uow: UnitOfWork,
) -> None:
    with uow.writing() as tx:
        acme, beta, gamma = new_client(tx, "a@x.org"), new_client(tx, "b@x.org"), new_client(tx, "c@x.org")
        enqueue(tx, beta, "BB-2-ADD", EffectKind.ADD_CLIENT)
        enqueue(tx, gamma, "BB-3-SUSPEND", EffectKind.SUSPEND_SERVER)
        enqueue(tx, acme, "BB-1-ADD", EffectKind.ADD_CLIENT)
        enqueue(tx, beta, "BB-2-2022-10")
        done = enqueue(tx, acme, "BB-1-2022-10")
        store.mark_done(tx, done, "5", NOW)
    with uow.reading() as tx:
        waiting = store.clients_with_work(tx)
        beta_rows = store.unsettled_rows(tx, beta)
        gamma_rows = store.unsettled_rows(tx, gamma)
        listed = store.list_rows(tx, (OutboxState.PENDING,), limit=2)
        counted = store.count_kind(tx, acme, EffectKind.ADD_CLIENT)
    assert waiting == [beta, acme]
    assert [row.reference for row in beta_rows] == ["BB-2-ADD", "BB-2-2022-10"]
    assert gamma_rows == []
    assert [row.reference for row in listed] == ["BB-2-ADD", "BB-3-SUSPEND"]
    assert counted == 1


def test_the_backlog_counts_states_and_gives_the_oldest_unsent_time_aware(uow: UnitOfWork) -> None:
    with uow.reading() as tx:
        empty = store.backlog(tx, alert_after=3)
    with uow.writing() as tx:
        client_id = new_client(tx)
        for n in range(3):
            store.enqueue(
                tx,
                client_id=client_id,
                kind=EffectKind.ADD_CREDIT,
                reference=f"BB-CREDIT-{n}",
                payload={},
                now=NOW + timedelta(minutes=n),
            )
        store.cancel(tx, 1, NOW)
    with uow.reading() as tx:
        backlog = store.backlog(tx, alert_after=3)
    assert (empty.oldest_unsent_at, empty.max_attempts, empty.stuck) == (None, 0, 0)
    assert backlog.by_state["pending"] == 2 and backlog.by_state["cancelled"] == 1
    assert backlog.oldest_unsent_at == NOW + timedelta(minutes=1)
    assert (backlog.max_attempts, backlog.stuck, backlog.failed) == (0, 0, 0)


def test_a_clients_intents_of_some_kinds_since_a_moment_come_typed_and_oldest_first(uow: UnitOfWork) -> None:
    """What the credit engine reads back of the suspensions it wrote: only its kinds, client and time."""
    suspend = SuspendServer("openstack", "vm-1", "web")
    shelve = ShelveServer("openstack", "vm-2", "db")
    with uow.writing() as tx:
        client_id, other = new_client(tx), new_client(tx, "bills@beta.org")
        store.enqueue_effect(tx, client_id=client_id, reference="BB-SUSPEND-1", effect=suspend, now=NOW)
        store.enqueue_effect(tx, client_id=client_id, reference="BB-SHELVE-1", effect=shelve, now=NOW)
        enqueue(tx, client_id, "BB-1-2022-10")
        store.enqueue_effect(tx, client_id=other, reference="BB-SUSPEND-2", effect=suspend, now=NOW)
    kinds = (EffectKind.SUSPEND_SERVER, EffectKind.SHELVE_SERVER)
    with uow.reading() as tx:
        found = store.effects_since(tx, client_id, kinds, NOW)
        later = store.effects_since(tx, client_id, kinds, NOW + timedelta(seconds=1))
    assert found == [suspend, shelve]
    assert later == []


def test_a_batch_of_intents_is_one_row_per_reference_and_keeps_the_rows_already_recorded(
    uow: UnitOfWork, row_id: int
) -> None:
    with uow.writing() as tx:
        client_id = new_client(tx, "b@x.org")
        intents = [
            store.Intent(client_id, reference, SuspendServer("openstack", f"vm-{reference}", "credit"))
            for reference in ("BB-S-1", "BB-1-2022-10", "BB-S-2", "BB-S-1")
        ]
        store.enqueue_effects(tx, intents, now=NOW)
    with uow.reading() as tx:
        rows = [store.by_reference(tx, reference) for reference in ("BB-S-1", "BB-1-2022-10", "BB-S-2")]
    assert [row.kind if row else None for row in rows] == [
        EffectKind.SUSPEND_SERVER,
        EffectKind.CREATE_INVOICE,  # recorded before: the same intent, untouched
        EffectKind.SUSPEND_SERVER,
    ]
    assert rows[0] is not None and rows[2] is not None and rows[0].id < rows[2].id  # in the order given
    assert rows[0].payload["resource_id"] == "vm-BB-S-1"
