"""A client's tax identity and the VAT ID validation flow of seed 001, through the unit of work.

* Staff set a client's country, VAT ID and tax exemption (``client add|set``); the VAT ID is checked
  offline first (python-stdnum, :func:`~bridge.vies.vatid.parse_vat_id`), so a number failing its
  checksum is refused (exit 2, naming the field), changes nothing and never reaches VIES.
* :meth:`TaxService.validate` is the flow at sign-up and when staff add a client or change its VAT ID:
  ask VIES (outside any transaction), keep its answer as evidence, and let the domain decide
  (:func:`~bridge.domain.tax.decide_exemption`).
* :meth:`TaxService.revalidate` is the daemon's periodic check: each VAT ID is asked again every
  ``taxes.revalidation_interval_hours`` (every run while VIES is not answering), and when VIES has not
  answered for 48 consecutive hours the exemption the flow gave lapses (seed 001), logged, and kept with
  why in the client's exemption history (``client show``).

A decision staff made stands until staff change it: the flow only changes exemptions it made itself, or
those of clients never decided.

With WHMCS on, WHMCS computes the tax from the client's country and tax-exempt flag: every write here that
changes a country, VAT ID or exemption also writes, in the same transaction, the outbox row that tells
WHMCS (:meth:`~bridge.services.clients.ClientService.tax_identity_changed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bridge.clock import Clock
from bridge.domain.clients import Client
from bridge.domain.tax import (
    BY_VIES,
    EU_MEMBER_STATES,
    ExemptionDecision,
    TaxRules,
    VatIdStanding,
    ViesOutcome,
    decide_exemption,
    vat_id_standing,
)
from bridge.errors import InputError
from bridge.logs import get_logger
from bridge.services.clients import ClientService, checked_country, checked_vat_id
from bridge.services.ports import VatIdChecker
from bridge.store import clients as store
from bridge.store.clients import ViesCheck
from bridge.store.unit_of_work import UnitOfWork
from bridge.vies.answers import ViesAnswer, ViesVerdict
from bridge.vies.vatid import VatId, parse_vat_id

log = get_logger(__name__)

NO_VAT_ID = ""
"""``--vat-id ""`` removes the client's VAT ID."""


@dataclass(frozen=True)
class TaxIdentityChange:
    """What staff change about a client's tax identity; None leaves a field as it is.

    ``vat_id`` ``""`` removes the VAT ID; ``exempt`` needs ``reason``; ``by`` is who decided."""

    country: str | None = None
    vat_id: str | None = None
    exempt: bool | None = None
    reason: str | None = None
    by: str = "staff"


@dataclass(frozen=True)
class TaxStanding:
    """A client's tax identity as ``client show`` prints it: the exemption in force, every exemption
    decision, the VIES evidence about its VAT ID, and what VIES's answers mean now."""

    client: Client
    history: tuple[ExemptionDecision, ...]
    checks: tuple[ViesCheck, ...]
    vies: VatIdStanding | None


@dataclass
class RevalidationReport:
    """One revalidation run: clients asked about, answers by outcome, exemptions that changed."""

    asked: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    changed: list[tuple[int, bool, str]] = field(default_factory=list)


class TaxService:
    """Client tax identities and the VIES flow; ``rules`` None means taxes are off (``taxes.enabled``
    false): identities are kept, VIES is never asked and nobody is exempted automatically."""

    def __init__(
        self,
        uow: UnitOfWork,
        clock: Clock,
        clients: ClientService,
        *,
        rules: TaxRules | None,
        vies: Callable[[], VatIdChecker],
        revalidate_every: timedelta = timedelta(hours=24),
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._clients = clients
        self._rules = rules
        self._vies = vies
        self._revalidate_every = revalidate_every

    # -- staff -------------------------------------------------------------------------------------

    def change(self, reference: str, change: TaxIdentityChange) -> Client:
        """Apply ``change`` to the client: every field is checked before anything is written. A new VAT ID
        or country runs the validation flow (:meth:`validate`) unless staff decide the exemption."""
        client = self._clients.get(reference)
        country = client.country if change.country is None else checked_country(change.country)
        vat_id = client.vat_id
        if change.vat_id is not None:
            vat_id = (
                None if change.vat_id.strip() == NO_VAT_ID else str(checked_vat_id(change.vat_id, country))
            )
        elif change.country is not None and vat_id is not None:
            checked_vat_id(vat_id, country)
        decision = self._staff_decision(change)
        identity_changed = (country, vat_id) != (client.country, client.vat_id)
        with self._uow.writing() as connection:
            if identity_changed:
                store.update_client(connection, client.id, country=country, vat_id=vat_id)
            if decision is not None:
                store.add_exemption(connection, client.id, decision)
            if identity_changed or decision is not None:
                self._clients.tax_identity_changed(connection, client.id)
        updated = self._clients.get(str(client.id))
        if identity_changed and decision is None:
            return self.validate(updated)
        return updated

    def _staff_decision(self, change: TaxIdentityChange) -> ExemptionDecision | None:
        if change.exempt is None:
            if change.reason is not None:
                raise InputError("--reason goes with --tax-exempt or --no-tax-exempt; give one of them")
            return None
        if change.reason is None or not change.reason.strip():
            raise InputError(
                "--reason is required with --tax-exempt/--no-tax-exempt: say why, e.g. --reason 'charity'"
            )
        return ExemptionDecision(change.exempt, change.by, self._clock.now(), change.reason.strip())

    def standing(self, reference: str) -> TaxStanding:
        """The client's exemption, its history and the VIES evidence, as of now."""
        client = self._clients.get(reference)
        with self._uow.reading() as connection:
            history = store.exemption_history(connection, client.id)
            checks = store.vies_checks_of(connection, client.id, client.vat_id) if client.vat_id else []
        vies = None
        if client.vat_id is not None:
            vies = vat_id_standing([check.observation for check in checks], self._clock.now())
        return TaxStanding(client, tuple(history), tuple(checks), vies)

    # -- the seed 001 flow ---------------------------------------------------------------------------

    def validate(self, client: Client) -> Client:
        """The "VAT ID validation flow": ask VIES about the client's VAT ID when the flow can exempt it,
        keep the answer, and apply the domain's verdict. Returns the client as it now stands."""
        if self._rules is None:
            return client
        if self._worth_asking(client):
            self._ask(client)
        return self._apply(client, self._clock.now())

    def revalidate(self, checkpoint: Callable[[], None] = lambda: None) -> RevalidationReport:
        """Ask VIES again about every VAT ID that is due, and apply the 48-hour rule (seed 001)."""
        report = RevalidationReport()
        if self._rules is None:
            return report
        with self._uow.reading() as connection:
            ids = store.clients_with_vat_ids(connection)
        for client_id in ids:
            client = self._clients.get(str(client_id))
            now = self._clock.now()
            if self._worth_asking(client) and self._due(client, now):
                answer = self._ask(client)
                report.asked += 1
                report.outcomes[answer.outcome] = report.outcomes.get(answer.outcome, 0) + 1
            after = self._apply(client, now)
            if after.exemption != client.exemption and after.exemption is not None:
                report.changed.append((client.id, after.exemption.exempt, after.exemption.why))
            checkpoint()
        return report

    def _worth_asking(self, client: Client) -> bool:
        """VIES is asked only when its answer can matter: auto exemption on, an EU client of another
        member state than the home country, with a VAT ID."""
        rules = self._rules
        return (
            rules is not None
            and rules.auto_eu_exemption
            and client.vat_id is not None
            and client.country is not None
            and client.country != rules.home_country
            and client.country in EU_MEMBER_STATES
        )

    def _due(self, client: Client, now: datetime) -> bool:
        """Due when never asked, when the last answer is older than the interval, or while VIES is not
        answering (each run asks again, so an answer ends the outage as soon as it comes)."""
        assert client.vat_id is not None
        with self._uow.reading() as connection:
            checks = store.vies_checks_of(connection, client.id, client.vat_id)
        if not checks:
            return True
        last = checks[-1]
        return last.outcome == ViesOutcome.UNAVAILABLE or now - last.asked_at >= self._revalidate_every

    def _ask(self, client: Client) -> ViesAnswer:
        assert client.vat_id is not None
        vat_id = parse_vat_id(client.vat_id)
        answer = self._vies().check(vat_id)
        check = evidence_of(answer, vat_id, self._clock.now())
        with self._uow.writing() as connection:
            store.add_vies_check(connection, client.id, check)
        log.info("vies answer kept", client=client.id, vat_id=check.vat_id, outcome=check.outcome.value)
        return answer

    def _apply(self, client: Client, now: datetime) -> Client:
        """Record the flow's verdict when it changes an exemption the flow governs. Decided in a reading
        transaction; a write happens only for a change (a revalidation run writes only what changed)."""
        rules = self._rules
        assert rules is not None
        if not _flow_governs(client.exemption):
            return client  # staff decided; the flow does not overrule them
        with self._uow.reading() as connection:
            checks = store.vies_checks_of(connection, client.id, client.vat_id) if client.vat_id else []
        standing = vat_id_standing([check.observation for check in checks], now)
        verdict = decide_exemption(rules, client.tax_identity(rules.home_country), standing)
        if verdict.exempt == (client.exemption is not None and client.exemption.exempt):
            return client
        with self._uow.writing() as connection:
            history = store.exemption_history(connection, client.id)
            if history[-1:] != ([client.exemption] if client.exemption else []):
                return self._clients.get(str(client.id))  # decided meanwhile (staff): that stands
            store.add_exemption(
                connection, client.id, ExemptionDecision(verdict.exempt, BY_VIES, now, verdict.why)
            )
            self._clients.tax_identity_changed(connection, client.id)
        event = "tax exemption set" if verdict.exempt else "tax exemption lapsed"
        log.warning(event, client=client.id, vat_id=client.vat_id, why=verdict.why)
        return self._clients.get(str(client.id))


def _flow_governs(decision: ExemptionDecision | None) -> bool:
    """Whether the VIES flow may change this exemption: one it made, or none yet."""
    return decision is None or decision.by == BY_VIES


def evidence_of(answer: ViesAnswer, vat_id: VatId, at: datetime) -> ViesCheck:
    """A VIES answer as the evidence row kept for it: VIES's request date and consultation number for a
    verdict, its error code and what happened otherwise."""
    said: dict[str, Any]
    if isinstance(answer, ViesVerdict):
        said = {"request_date": answer.request_date, "consultation_number": answer.consultation_number}
    else:
        said = {"code": answer.code, "detail": answer.detail}
    return ViesCheck(vat_id=str(vat_id), asked_at=at, outcome=ViesOutcome(answer.outcome), **said)
