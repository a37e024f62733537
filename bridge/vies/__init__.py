"""The EU VIES VAT ID service: offline VAT ID checks, the typed REST client, and ``[vies]`` settings."""

from bridge.vies.answers import ViesAnswer, ViesInvalidInput, ViesUnavailable, ViesVerdict
from bridge.vies.client import ViesClient
from bridge.vies.settings import ViesSettings
from bridge.vies.vatid import InvalidVatId, VatId, parse_vat_id

__all__ = [
    "InvalidVatId",
    "VatId",
    "ViesAnswer",
    "ViesClient",
    "ViesInvalidInput",
    "ViesSettings",
    "ViesUnavailable",
    "ViesVerdict",
    "parse_vat_id",
]
