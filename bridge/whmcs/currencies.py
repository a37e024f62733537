"""WHMCS's currency ids by ISO 4217 code, for the clients the push creates in WHMCS.

AddClient takes a currency *id*. Sent none, WHMCS creates the client in its default currency, and every
invoice pushed to that client is then billed in that currency, whatever currency the bridge's amounts are
in. So a client is created only with the id of its own currency: ``whmcs.currency_ids`` where it names the
code (WHMCS: System Settings > Currencies), else the id GetCurrencies gives for the code. GetCurrencies is
asked once per push, the first time a client to create needs a code the setting does not name, and its
answer is shared by the push's threads. A code neither knows has no id: the caller creates no client.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from bridge.whmcs.client import WhmcsClient


class CurrencyIds:
    """The currency ids of one push: ``configured`` (``whmcs.currency_ids``) first, then WHMCS's own list.
    Safe to share between threads; each passes its own :class:`WhmcsClient` for the one lookup."""

    def __init__(self, configured: Mapping[str, int] | None = None) -> None:
        self._configured = {code.upper(): currency_id for code, currency_id in (configured or {}).items()}
        self._lock = threading.Lock()
        self._listed: dict[str, int] | None = None

    def id_of(self, code: str, whmcs: WhmcsClient) -> int | None:
        """WHMCS's id of the currency ``code``, or None when WHMCS has no such currency. Raises what
        :meth:`WhmcsClient.get_currencies` raises (nothing is kept then: the next client asks again)."""
        wanted = code.strip().upper()
        if wanted in self._configured:
            return self._configured[wanted]
        with self._lock:
            if self._listed is None:
                listed: dict[str, int] = {}
                for currency in whmcs.get_currencies():
                    listed.setdefault(currency.code, currency.id)
                self._listed = listed
            return self._listed.get(wanted)
