"""What a VIES consultation can come back with, as typed values (docs/vies.md has the wire shapes).

Every answer is evidence to keep, the ones that say nothing about the number included: the 48-hour
rule of seed 001 counts the hours VIES was unavailable.

==================  ===================================================  ==========================
answer              when                                                 ``outcome``
==================  ===================================================  ==========================
ViesVerdict         VIES consulted the member state: ``valid`` true or   ``valid`` / ``invalid``
                    false, with its request date and, when we named a
                    requester, the consultation number
ViesUnavailable     VIES or the member state could not answer            ``unavailable``
                    (MS_UNAVAILABLE, TIMEOUT, SERVICE_UNAVAILABLE, the
                    *_MAX_CONCURRENT_REQ codes, an unknown code, HTTP 5xx,
                    no answer in time, a reply we cannot read)
ViesInvalidInput    VIES refused the request itself: INVALID_INPUT (the  ``invalid`` for the number;
                    number) or INVALID_REQUESTER_INFO (our requester     ``unavailable`` when it is
                    VAT ID, ``vies.requester_vat_id``)                   our requester's fault
==================  ===================================================  ==========================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bridge.vies.vatid import VatId

Outcome = Literal["valid", "invalid", "unavailable"]

REQUESTER_FIELD = "requester"


@dataclass(frozen=True)
class ViesVerdict:
    """VIES's answer about ``vat_id``: registered and active (``valid``) or not.

    ``request_date`` is VIES's own timestamp (aware UTC); ``consultation_number`` its
    ``requestIdentifier``, given only when the request named a requester VAT ID. ``name`` and
    ``address`` are None when the member state withholds them (VIES sends ``---``).
    """

    vat_id: VatId
    valid: bool
    request_date: datetime
    consultation_number: str | None = None
    name: str | None = None
    address: str | None = None

    @property
    def outcome(self) -> Outcome:
        return "valid" if self.valid else "invalid"


@dataclass(frozen=True)
class ViesUnavailable:
    """No verdict: ``code`` is VIES's error code (``MS_UNAVAILABLE``) or ours (``HTTP_503``,
    ``NO_ANSWER``, ``MALFORMED_REPLY``); ``detail`` says what happened, for the log and the evidence."""

    vat_id: VatId
    code: str
    detail: str

    @property
    def outcome(self) -> Outcome:
        return "unavailable"


@dataclass(frozen=True)
class ViesInvalidInput:
    """VIES refused the request: ``field`` is ``vat_number`` (the client's number) or ``requester``."""

    vat_id: VatId
    code: str
    field: str
    detail: str

    @property
    def outcome(self) -> Outcome:
        return "unavailable" if self.field == REQUESTER_FIELD else "invalid"


ViesAnswer = ViesVerdict | ViesUnavailable | ViesInvalidInput
