"""The usage-source port: what any cloud must give the bridge to be billed (both clouds implement it)."""

from __future__ import annotations

from typing import Protocol

from bridge.domain.usage import Source, UsageRecord, Window


class UsageCollector(Protocol):
    """The port every cloud adapter implements for usage collection."""

    source: Source

    def collect(self, window: Window) -> list[UsageRecord]:
        """Every resource's usage in ``window``; raises :class:`bridge.errors.VendorError` on a bad answer."""
        ...
