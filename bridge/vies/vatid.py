"""EU VAT IDs checked offline: format and check digits, with python-stdnum, before VIES is ever asked.

A :class:`VatId` can only be made from a number that passes its member state's format and checksum
rules, so a number failing them never reaches VIES. It holds the VAT prefix as VIES wants it (``EL`` for
Greece, also when the client typed ``GR``) and the national part without separators.
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength, ValidationError

from bridge.errors import InputError

VIES_PREFIXES = frozenset(code.upper() for code in eu_vat.MEMBER_STATES if code != "gr") | {"EL"}
"""The prefixes VIES answers for (python-stdnum's list, Greece as EL): the 27 member states and XI."""

_ISO_FOR_PREFIX = {"EL": "GR"}
_PREFIX_FOR_ISO = {"GR": "EL"}


class InvalidVatId(InputError):
    """A VAT ID that fails the offline checks; ``field`` is the setting or argument it came from."""

    def __init__(self, text: str, problem: str, *, field: str = "vat_id") -> None:
        self.text = text
        self.problem = problem
        self.field = field
        super().__init__(f"{field}: {text!r} {problem}")


@dataclass(frozen=True)
class VatId:
    """A VAT ID that passed its member state's format and check-digit rules.

    ``prefix`` is the VIES member state code (``DE``, ``EL``, ``XI``); ``number`` the national part.
    """

    prefix: str
    number: str

    def __post_init__(self) -> None:
        text = f"{self.prefix}{self.number}"
        if _checked(text, "vat_id") != text:
            raise InvalidVatId(text, "is not in its compact form; make it with parse_vat_id()")

    def __str__(self) -> str:
        return f"{self.prefix}{self.number}"

    @property
    def country(self) -> str:
        """The ISO 3166-1 country of the prefix (GR for EL; XI stays XI, Northern Ireland's VAT prefix)."""
        return _ISO_FOR_PREFIX.get(self.prefix, self.prefix)


def parse_vat_id(text: str, *, country: str | None = None, field: str = "vat_id") -> VatId:
    """The VAT ID written in ``text`` (``"de 136 695 976"``, ``"FR 40-303.265.045"``), checked offline.

    ``country`` (ISO 3166-1) adds the prefix when the text has none, and must match the prefix when it
    has one. Raises :class:`InvalidVatId` naming ``field`` and the fix.
    """
    cleaned = "".join(text.split()).upper() if isinstance(text, str) else ""
    if not cleaned:
        raise InvalidVatId(
            str(text), "is empty; give the VAT ID with its country prefix, e.g. DE136695976", field=field
        )
    expected = _PREFIX_FOR_ISO.get(country, country) if country is not None else None
    if expected is not None and not cleaned[:2].isalpha():
        cleaned = expected + cleaned
    if cleaned.startswith("GR"):
        cleaned = "EL" + cleaned[2:]
    compact = _checked(cleaned, field)
    if expected is not None and compact[:2] != expected:
        raise InvalidVatId(
            text, f"is a VAT ID of {compact[:2]}, not of the client's country {country}", field=field
        )
    return VatId(compact[:2], compact[2:])


def _checked(text: str, field: str) -> str:
    """``text`` in compact form if python-stdnum accepts it, else InvalidVatId saying what failed."""
    if text[:2] not in VIES_PREFIXES:
        raise InvalidVatId(
            text,
            f"does not start with the prefix of an EU member state ({text[:2]!r}); "
            "write the prefix first, e.g. DE136695976 (Greece: EL)",
            field=field,
        )
    try:
        return str(eu_vat.validate(text))
    except InvalidChecksum:
        problem = "fails the check digits of its member state's VAT IDs; check it for typos"
    except InvalidLength:
        problem = "has the wrong length for its member state's VAT IDs"
    except (InvalidFormat, InvalidComponent):
        problem = "is not in the format of its member state's VAT IDs"
    except ValidationError:
        problem = "is not a valid VAT ID"
    raise InvalidVatId(text, problem, field=field)
