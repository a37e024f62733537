"""WHMCS: the typed API client, its errors and values, and the ``[whmcs]`` settings section."""

from bridge.whmcs.client import WhmcsClient
from bridge.whmcs.errors import (
    WhmcsAuthError,
    WhmcsBusinessError,
    WhmcsDuplicateError,
    WhmcsError,
    WhmcsResponseError,
    WhmcsTransportError,
)
from bridge.whmcs.models import (
    Client,
    ClientPage,
    CreatedInvoice,
    Credit,
    Currency,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    PayMethod,
    Transaction,
)
from bridge.whmcs.reference import check_reference, contains_reference
from bridge.whmcs.settings import WhmcsSettings

__all__ = [
    "Client",
    "ClientPage",
    "CreatedInvoice",
    "Credit",
    "Currency",
    "Invoice",
    "InvoiceItem",
    "InvoiceLine",
    "PayMethod",
    "Transaction",
    "WhmcsAuthError",
    "WhmcsBusinessError",
    "WhmcsClient",
    "WhmcsDuplicateError",
    "WhmcsError",
    "WhmcsResponseError",
    "WhmcsSettings",
    "WhmcsTransportError",
    "check_reference",
    "contains_reference",
]
