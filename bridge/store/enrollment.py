"""Reading and writing sign-ups, their single-use links and the terms they accepted.

Every change that must happen once is a conditional UPDATE whose row count says who won: a link is
consumed ``WHERE used_at IS NULL``, a client attached ``WHERE client_id IS NULL``, SolusVM provisioning
claimed ``WHERE`` no live claim exists. Tokens are stored as keyed digests only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, or_, select, update

from bridge.store.tables import enrollment_tokens, enrollments, terms_acceptances


class EnrollmentState(StrEnum):
    """``pending``: link mailed; ``accepted``: link followed and terms accepted; ``active``: client made."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    ACTIVE = "active"


class SolusVMState(StrEnum):
    """Where the client's SolusVM user stands.

    ``created`` with the password chosen at sign-up; ``no_password`` created later with a random one
    (the chosen password is never kept, so single sign-on is the way in); ``existing``: a SolusVM user
    with this email existed and was linked; ``failed``: SolusVM refused, the operator must look.
    """

    PENDING = "pending"
    CREATED = "created"
    NO_PASSWORD = "no_password"
    EXISTING = "existing"
    FAILED = "failed"


class TokenPurpose(StrEnum):
    VERIFY = "verify"
    LOGIN = "login"
    BROWSER = "browser"
    """The browser that used a sign-up link: only it may replay the link during the grace."""
    ACCOUNT = "account"
    """A single-use link that signs a client in to its self-service page (issue 19)."""


@dataclass(frozen=True)
class Enrollment:
    id: int
    email: str
    name: str
    company: str
    state: EnrollmentState
    sealed_password: str | None
    client_id: int | None
    solusvm_state: SolusVMState
    solusvm_user_id: str | None
    solusvm_error: str | None
    solusvm_attempts: int
    solusvm_claimed_until: datetime | None
    auto_order_service: str | None
    requested_at: datetime
    accepted_at: datetime | None
    activated_at: datetime | None
    updated_at: datetime
    country: str | None = None
    """The country and VAT ID given at sign-up (issue 16), for the client's tax identity."""
    vat_id: str | None = None


@dataclass(frozen=True)
class Token:
    id: int
    purpose: TokenPurpose
    enrollment_id: int | None
    client_id: int | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class Acceptance:
    document: str
    version: str
    accepted_at: datetime
    accepted_from: str | None


# -- enrollments -------------------------------------------------------------------------------------------


def by_email(connection: Connection, email: str) -> Enrollment | None:
    return _one(connection, enrollments.c.email == email)


def by_id(connection: Connection, enrollment_id: int) -> Enrollment | None:
    return _one(connection, enrollments.c.id == enrollment_id)


def by_client(connection: Connection, client_id: int) -> Enrollment | None:
    return _one(connection, enrollments.c.client_id == client_id)


def insert_request(
    connection: Connection,
    *,
    email: str,
    name: str,
    company: str,
    sealed_password: str,
    now: datetime,
    country: str | None = None,
    vat_id: str | None = None,
) -> int:
    result = connection.execute(
        insert(enrollments).values(
            email=email,
            name=name,
            company=company,
            country=country,
            vat_id=vat_id,
            state=EnrollmentState.PENDING.value,
            sealed_password=sealed_password,
            solusvm_state=SolusVMState.PENDING.value,
            solusvm_attempts=0,
            requested_at=now,
            updated_at=now,
        )
    )
    (enrollment_id,) = result.inserted_primary_key or (None,)
    assert isinstance(enrollment_id, int)
    return enrollment_id


def renew_request(
    connection: Connection,
    enrollment_id: int,
    *,
    sealed_password: str,
    now: datetime,
    name: str | None = None,
    company: str | None = None,
    tax_identity: tuple[str | None, str | None] | None = None,
) -> bool:
    """A new password seal (and, from a new sign-up, name, company, and country and VAT ID) for a request
    still pending."""
    values: dict[str, Any] = {"sealed_password": sealed_password, "requested_at": now, "updated_at": now}
    if name is not None:
        values["name"] = name
    if company is not None:
        values["company"] = company
    if tax_identity is not None:
        values["country"], values["vat_id"] = tax_identity
    result = connection.execute(
        update(enrollments)
        .where(enrollments.c.id == enrollment_id, enrollments.c.state == EnrollmentState.PENDING.value)
        .values(**values)
    )
    return result.rowcount == 1


def insert_activation(
    connection: Connection,
    *,
    client_id: int,
    email: str,
    name: str,
    now: datetime,
    claim_until: datetime,
) -> int:
    """An existing client's post-pay activation (issue 15 point 10): active at once with its client, its
    SolusVM claim taken by the caller. Conflict when the client or the address has an enrollment."""
    result = connection.execute(
        insert(enrollments).values(
            email=email,
            name=name,
            company="",
            state=EnrollmentState.ACTIVE.value,
            sealed_password=None,
            client_id=client_id,
            solusvm_state=SolusVMState.PENDING.value,
            solusvm_attempts=0,
            solusvm_claimed_until=claim_until,
            requested_at=now,
            accepted_at=now,
            activated_at=now,
            updated_at=now,
        )
    )
    (enrollment_id,) = result.inserted_primary_key or (None,)
    assert isinstance(enrollment_id, int)
    return enrollment_id


def mark_accepted(connection: Connection, enrollment_id: int, now: datetime, claim_until: datetime) -> bool:
    """Pending -> accepted; the caller also takes the SolusVM claim, so it alone creates the user."""
    result = connection.execute(
        update(enrollments)
        .where(enrollments.c.id == enrollment_id, enrollments.c.state == EnrollmentState.PENDING.value)
        .values(
            state=EnrollmentState.ACCEPTED.value,
            accepted_at=now,
            updated_at=now,
            solusvm_claimed_until=claim_until,
        )
    )
    return result.rowcount == 1


def attach_client(
    connection: Connection, enrollment_id: int, client_id: int, auto_order_service: str | None, now: datetime
) -> bool:
    """Accepted -> active with its client; the sealed password goes (it is useless without the link)."""
    result = connection.execute(
        update(enrollments)
        .where(enrollments.c.id == enrollment_id, enrollments.c.client_id.is_(None))
        .values(
            client_id=client_id,
            state=EnrollmentState.ACTIVE.value,
            auto_order_service=auto_order_service,
            activated_at=now,
            updated_at=now,
            sealed_password=None,
        )
    )
    return result.rowcount == 1


def claim_solusvm(connection: Connection, enrollment_id: int, now: datetime, until: datetime) -> bool:
    """Take the right to create this enrollment's SolusVM user until ``until``; False if another holds it."""
    result = connection.execute(
        update(enrollments)
        .where(
            enrollments.c.id == enrollment_id,
            enrollments.c.solusvm_state == SolusVMState.PENDING.value,
            or_(enrollments.c.solusvm_claimed_until.is_(None), enrollments.c.solusvm_claimed_until <= now),
        )
        .values(solusvm_claimed_until=until)
    )
    return result.rowcount == 1


def record_solusvm(
    connection: Connection,
    enrollment_id: int,
    *,
    state: SolusVMState,
    now: datetime,
    user_id: str | None = None,
    error: str | None = None,
    attempted: bool = True,
) -> None:
    """The outcome of a provisioning attempt; releases the claim."""
    values: dict[str, Any] = {
        "solusvm_state": state.value,
        "solusvm_error": error,
        "solusvm_claimed_until": None,
        "updated_at": now,
    }
    if user_id is not None:
        values["solusvm_user_id"] = user_id
    if attempted:
        values["solusvm_attempts"] = enrollments.c.solusvm_attempts + 1
    connection.execute(update(enrollments).where(enrollments.c.id == enrollment_id).values(**values))


def release_claim(connection: Connection, enrollment_id: int) -> None:
    """Give the SolusVM claim back without an attempt (SolusVM is off, or the caller only looked)."""
    connection.execute(
        update(enrollments).where(enrollments.c.id == enrollment_id).values(solusvm_claimed_until=None)
    )


def unfinished(connection: Connection, limit: int) -> list[Enrollment]:
    """Accepted sign-ups without a client yet, and active ones whose SolusVM user is still to be made."""
    query = (
        select(enrollments)
        .where(
            or_(
                enrollments.c.state == EnrollmentState.ACCEPTED.value,
                and_(
                    enrollments.c.state == EnrollmentState.ACTIVE.value,
                    enrollments.c.solusvm_state == SolusVMState.PENDING.value,
                ),
            )
        )
        .order_by(enrollments.c.id)
        .limit(limit)
    )
    return [_enrollment(row) for row in connection.execute(query)]


def listed(connection: Connection, limit: int) -> list[Enrollment]:
    query = select(enrollments).order_by(enrollments.c.id.desc()).limit(limit)
    return [_enrollment(row) for row in connection.execute(query)]


def prune_stale_requests(connection: Connection, before: datetime) -> int:
    """Forget pending sign-ups last requested (or renewed) before ``before``, sealed password and all."""
    result = connection.execute(
        delete(enrollments).where(
            enrollments.c.state == EnrollmentState.PENDING.value, enrollments.c.requested_at < before
        )
    )
    return int(result.rowcount)


def _one(connection: Connection, condition: Any) -> Enrollment | None:
    row = connection.execute(select(enrollments).where(condition)).first()
    return _enrollment(row) if row else None


def _enrollment(row: Row[Any]) -> Enrollment:
    return Enrollment(
        id=row.id,
        email=row.email,
        name=row.name,
        company=row.company,
        state=EnrollmentState(row.state),
        sealed_password=row.sealed_password,
        client_id=row.client_id,
        solusvm_state=SolusVMState(row.solusvm_state),
        solusvm_user_id=row.solusvm_user_id,
        solusvm_error=row.solusvm_error,
        solusvm_attempts=row.solusvm_attempts,
        solusvm_claimed_until=row.solusvm_claimed_until,
        auto_order_service=row.auto_order_service,
        requested_at=row.requested_at,
        accepted_at=row.accepted_at,
        activated_at=row.activated_at,
        updated_at=row.updated_at,
        country=row.country,
        vat_id=row.vat_id,
    )


# -- tokens ------------------------------------------------------------------------------------------------


def insert_token(
    connection: Connection,
    *,
    digest: str,
    purpose: TokenPurpose,
    now: datetime,
    expires_at: datetime,
    enrollment_id: int | None = None,
    client_id: int | None = None,
) -> None:
    connection.execute(
        insert(enrollment_tokens).values(
            digest=digest,
            purpose=purpose.value,
            enrollment_id=enrollment_id,
            client_id=client_id,
            created_at=now,
            expires_at=expires_at,
        )
    )


def token_by_digest(connection: Connection, digest: str, purpose: TokenPurpose) -> Token | None:
    row = connection.execute(
        select(enrollment_tokens).where(
            enrollment_tokens.c.digest == digest, enrollment_tokens.c.purpose == purpose.value
        )
    ).first()
    if row is None:
        return None
    return Token(
        id=row.id,
        purpose=TokenPurpose(row.purpose),
        enrollment_id=row.enrollment_id,
        client_id=row.client_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )


def consume(connection: Connection, digest: str, purpose: TokenPurpose, now: datetime) -> bool:
    """Use the link once: True for the one caller that used it; False when used, expired or unknown."""
    result = connection.execute(
        update(enrollment_tokens)
        .where(
            enrollment_tokens.c.digest == digest,
            enrollment_tokens.c.purpose == purpose.value,
            enrollment_tokens.c.used_at.is_(None),
            enrollment_tokens.c.expires_at > now,
        )
        .values(used_at=now)
    )
    return result.rowcount == 1


def drop_unused_links(connection: Connection, enrollment_id: int) -> None:
    """Forget the enrollment's unused sign-up links, so only the newest mailed link works."""
    connection.execute(
        delete(enrollment_tokens).where(
            enrollment_tokens.c.enrollment_id == enrollment_id,
            enrollment_tokens.c.purpose == TokenPurpose.VERIFY.value,
            enrollment_tokens.c.used_at.is_(None),
        )
    )


def prune_tokens(connection: Connection, expired_before: datetime) -> int:
    result = connection.execute(
        delete(enrollment_tokens).where(enrollment_tokens.c.expires_at < expired_before)
    )
    return int(result.rowcount)


# -- terms -------------------------------------------------------------------------------------------------


def record_acceptance(
    connection: Connection,
    *,
    enrollment_id: int,
    document: str,
    version: str,
    at: datetime,
    accepted_from: str | None,
) -> None:
    connection.execute(
        insert(terms_acceptances).values(
            enrollment_id=enrollment_id,
            document=document,
            version=version,
            accepted_at=at,
            accepted_from=accepted_from,
        )
    )


def acceptances(connection: Connection, enrollment_id: int) -> list[Acceptance]:
    rows = connection.execute(
        select(terms_acceptances)
        .where(terms_acceptances.c.enrollment_id == enrollment_id)
        .order_by(terms_acceptances.c.id)
    )
    return [Acceptance(row.document, row.version, row.accepted_at, row.accepted_from) for row in rows]
