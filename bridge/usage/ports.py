"""The usage-source port: what any cloud must give the bridge to be billed (both clouds implement it).

The adapters do not import this module: Protocols are structural, so ``fleio.NovaUsageCollector``
satisfies :class:`UsageSource` by its shape and stays below ``usage/`` in the layers. SolusVM's source,
which bills from evidence kept in the store, is ``usage.solusvm_runtime.SolusVMRuntime``.
"""

from __future__ import annotations

from typing import Protocol

from bridge.domain.usage import Source, UsageRecord, Window


class UsageSource(Protocol):
    """One cloud's usage, asked for window by window (the sync cuts the windows from the watermark)."""

    @property
    def source(self) -> Source: ...

    def collect(self, window: Window) -> list[UsageRecord]:
        """Every resource's usage in ``window``; raises :class:`bridge.errors.VendorError` on a bad answer."""
        ...


class TokenPlan(Protocol):
    """A plan priced in tokens as the cloud lists it (SolusVM's plans): kept so invoices price its hours."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def tokens_per_hour(self) -> int: ...
    @property
    def tokens_per_month(self) -> int: ...
