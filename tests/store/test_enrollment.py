"""Sign-ups on every database: each once-only step is a conditional UPDATE whose row count names the one
winner (a link used once, a client attached once, one SolusVM claim at a time), with times aware in UTC."""

from __future__ import annotations

from datetime import timedelta

from bridge.store import enrollment as store
from bridge.store.enrollment import EnrollmentState, SolusVMState, TokenPurpose
from bridge.store.unit_of_work import Tx, UnitOfWork
from tests.support.store import NOW, new_client

CLAIM = timedelta(minutes=5)


def sign_up(tx: Tx, email: str = "new@acme.com", at: timedelta = timedelta(0)) -> int:
    return store.insert_request(
        tx, email=email, name="New", company="Acme", sealed_password="sealed", now=NOW + at
    )


def test_a_sign_up_goes_pending_accepted_active_once_each(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        enrollment_id = sign_up(tx)
        client_id = new_client(tx)
        renewed = store.renew_request(tx, enrollment_id, sealed_password="sealed-2", now=NOW, name="Newer")
        steps = [
            store.mark_accepted(tx, enrollment_id, NOW, NOW + CLAIM),
            store.mark_accepted(tx, enrollment_id, NOW, NOW + CLAIM),
            store.renew_request(tx, enrollment_id, sealed_password="too late", now=NOW),
            store.attach_client(tx, enrollment_id, client_id, "hourly-vps", NOW + timedelta(minutes=1)),
            store.attach_client(tx, enrollment_id, client_id, None, NOW + timedelta(minutes=2)),
        ]
        by_client = store.by_client(tx, client_id)
    assert renewed is True
    assert steps == [True, False, False, True, False]
    assert by_client is not None
    assert (by_client.id, by_client.name, by_client.state, by_client.sealed_password) == (
        enrollment_id,
        "Newer",
        EnrollmentState.ACTIVE,
        None,
    )
    assert (by_client.auto_order_service, by_client.accepted_at, by_client.activated_at) == (
        "hourly-vps",
        NOW,
        NOW + timedelta(minutes=1),
    )
    assert by_client.activated_at is not None and by_client.activated_at.utcoffset() is not None


def test_one_solusvm_claim_at_a_time_until_it_lapses_or_the_attempt_is_recorded(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        enrollment_id = sign_up(tx)
        store.mark_accepted(tx, enrollment_id, NOW, NOW + CLAIM)  # the accepting request holds the claim
        claims = [
            store.claim_solusvm(tx, enrollment_id, NOW + timedelta(minutes=1), NOW + timedelta(minutes=6)),
            store.claim_solusvm(tx, enrollment_id, NOW + CLAIM, NOW + 2 * CLAIM),
        ]
        store.record_solusvm(tx, enrollment_id, state=SolusVMState.PENDING, now=NOW + CLAIM, error="HTTP 503")
        claims.append(store.claim_solusvm(tx, enrollment_id, NOW + CLAIM, NOW + 2 * CLAIM))
        store.release_claim(tx, enrollment_id)
        store.record_solusvm(tx, enrollment_id, state=SolusVMState.CREATED, now=NOW + CLAIM, user_id="77")
        claims.append(store.claim_solusvm(tx, enrollment_id, NOW + 3 * CLAIM, NOW + 4 * CLAIM))
        made = store.by_id(tx, enrollment_id)
    assert claims == [False, True, True, False]
    assert made is not None
    assert (made.solusvm_state, made.solusvm_user_id, made.solusvm_attempts, made.solusvm_error) == (
        SolusVMState.CREATED,
        "77",
        2,
        None,
    )
    assert made.solusvm_claimed_until is None


def test_unfinished_sign_ups_are_the_accepted_and_the_active_without_a_solusvm_user(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        pending = sign_up(tx, "a@x.org")
        accepted = sign_up(tx, "b@x.org")
        store.mark_accepted(tx, accepted, NOW, NOW)
        waiting, done = sign_up(tx, "c@x.org"), sign_up(tx, "d@x.org")
        for enrollment_id in (waiting, done):
            store.mark_accepted(tx, enrollment_id, NOW, NOW)
            store.attach_client(tx, enrollment_id, new_client(tx, f"{enrollment_id}@x.org"), None, NOW)
        store.record_solusvm(tx, done, state=SolusVMState.EXISTING, now=NOW, user_id="5")
    with uow.reading() as tx:
        unfinished = [enrollment.id for enrollment in store.unfinished(tx, limit=10)]
        first = [enrollment.id for enrollment in store.unfinished(tx, limit=1)]
        listed = [enrollment.id for enrollment in store.listed(tx, limit=2)]
        by_email = store.by_email(tx, "a@x.org")
    assert (unfinished, first, listed) == ([accepted, waiting], [accepted], [done, waiting])
    assert by_email is not None and by_email.id == pending


def test_a_link_is_used_once_before_it_expires_and_old_ones_are_pruned(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        enrollment_id = sign_up(tx)
        for digest, purpose in [
            ("d-1", TokenPurpose.VERIFY),
            ("d-2", TokenPurpose.VERIFY),
            ("d-3", TokenPurpose.LOGIN),
        ]:
            store.insert_token(
                tx,
                digest=digest,
                purpose=purpose,
                now=NOW,
                expires_at=NOW + timedelta(hours=1),
                enrollment_id=enrollment_id,
            )
        used = [
            store.consume(tx, "d-1", TokenPurpose.LOGIN, NOW),  # the wrong purpose
            store.consume(tx, "d-1", TokenPurpose.VERIFY, NOW),
            store.consume(tx, "d-1", TokenPurpose.VERIFY, NOW),
            store.consume(tx, "d-3", TokenPurpose.LOGIN, NOW + timedelta(hours=1)),  # expired
        ]
        token = store.token_by_digest(tx, "d-1", TokenPurpose.VERIFY)
        store.drop_unused_links(tx, enrollment_id)
        kept = [
            store.token_by_digest(tx, digest, purpose) is not None
            for digest, purpose in [
                ("d-1", TokenPurpose.VERIFY),
                ("d-2", TokenPurpose.VERIFY),
                ("d-3", TokenPurpose.LOGIN),
            ]
        ]
        pruned = store.prune_tokens(tx, NOW + timedelta(hours=2))
    assert used == [False, True, False, False]
    assert token is not None and (token.used_at, token.enrollment_id, token.client_id) == (
        NOW,
        enrollment_id,
        None,
    )
    assert token.expires_at.utcoffset() is not None
    assert kept == [True, False, True]
    assert pruned == 2


def test_stale_pending_sign_ups_are_forgotten_and_accepted_ones_kept(uow: UnitOfWork) -> None:
    with uow.writing() as tx:
        stale, fresh, accepted = (
            sign_up(tx, "a@x.org"),
            sign_up(tx, "b@x.org", timedelta(days=2)),
            sign_up(tx, "c@x.org"),
        )
        store.mark_accepted(tx, accepted, NOW, NOW)
        store.record_acceptance(
            tx, enrollment_id=accepted, document="terms", version="2026-01", at=NOW, accepted_from=None
        )
        store.record_acceptance(
            tx, enrollment_id=accepted, document="privacy", version="3", at=NOW, accepted_from="203.0.113.9"
        )
        pruned = store.prune_stale_requests(tx, NOW + timedelta(days=1))
        left = [store.by_id(tx, enrollment_id) is not None for enrollment_id in (stale, fresh, accepted)]
        accepted_terms = store.acceptances(tx, accepted)
    assert (pruned, left) == (1, [False, True, True])
    assert accepted_terms == [
        store.Acceptance("terms", "2026-01", NOW, None),
        store.Acceptance("privacy", "3", NOW, "203.0.113.9"),
    ]
