"""Reconciliation: every collected resource-hour of a month traced to an invoice line or a named reason.

The accountant's question at each month end: *did we bill everything the clouds ran, exactly once, and if
not, where did it go?* This package answers it from values a store query yields, with no I/O and no clock:
``evidence`` (the inputs), ``placing`` (one client's hours into buckets), ``clouds`` (Nova and SolusVM
against the hours collected), ``month`` (the month streamed client by client, and its totals) and
``results`` (what comes out).

**Evidence** comes per client (:class:`ClientEvidence`, one at a time, so a hundred thousand clients stream
through in bounded memory): the hours collected per resource, flavor or plan and billing cycle
(:class:`Collected`: one usage window, or many summed by the database: aggregates plus exceptions), the
invoice lines that bill those cycles (:class:`BilledLine`, standing or cancelled, late or not, capped or
not), the invoices themselves with what WHMCS confirmed (:class:`InvoiceDocument`), the invoicing run's
held and skipped decisions (:class:`HeldCycle`, :class:`SkippedCycle`), spans in which the client was
suspended and not billed (:class:`SuspendedSpan`), the client's current, not yet ended cycle, and the
month's credit ledger movements. Owners linked to no client come as evidence without a client.

**The buckets.** Each collected hour of the month lands in exactly one :class:`Bucket`. Per resource, plan
and cycle the hours go, in this order, to:

1. the standing (not cancelled) invoice lines of the cycle: *invoiced* for what the line charges and
   *below the cap* for what the billable-seconds cap (OpenStack) or the plan's monthly tokens (SolusVM)
   left free, with the amount not charged; then late lines on later invoices: *invoiced late*;
2. what is left, to the first reason that applies: *removed by a recalculation* (a cancelled invoice,
   replaced after a plan or discount change, billed hours its replacement does not), *unlinked owner*,
   *suspended and not billed* (hours inside a suspended span), *not yet invoiced* (the cycle has not
   ended, or it was invoiced and the excess goes on the next invoice as late usage, whose cycle has not
   ended), *held* (the invoice waits for a price: the settings key to add), *skipped* (a zero invoice,
   or a cycle before ``generate_invoices_after``).

**Defects** are listed first, with the resource and the hours: hours in *no* bucket (collected in an ended
cycle, no line and no reason) and hours in *two* (lines that bill more hours than were collected: a
second invoice for the same hours, a late line on top of a full one, or billed hours never collected).
The buckets of a resource always add up to its collected hours; a defect explains any other sum.

**Cycles across the month's edge** (anniversary cycles): a cycle's lines are compared with the hours of
the whole cycle (``hours_outside_month`` tells the part outside the month), and the month gets its share
of each bucket in proportion to its part of the collected hours, to :data:`HOURS_PLACES` decimals.

**The money side** adds up the invoices (standing totals per currency, what WHMCS confirmed, what is
pending, in doubt or failed, what is paid, the auto-invoices) and the credit ledger; **the cloud side**
compares Nova's own monthly figure per project, plus the hours Nova forgot at a resize, rebuild,
unshelve or rescue (:func:`forgotten_hours`, from the instance actions), with the hours collected
window by window, and the SolusVM servers seen with those collected and billed.

**Per day** (for the chart of billed against collected hours) each :class:`Collected` spreads its hours
evenly over its span, and the billed share of a resource over all of its spans: exact for windows of a
day or less and for a resource that ran throughout, an approximation for sums over longer spans. The
day figures are floats, for a chart; every bucket and total is an exact Decimal.
"""

from __future__ import annotations

from bridge.domain.reconciliation.clouds import (
    forgotten_hours,
)
from bridge.domain.reconciliation.evidence import (
    BilledLine,
    ClientEvidence,
    ClientRef,
    CloudEvidence,
    Collected,
    HeldCycle,
    InstanceAction,
    InvoiceDocument,
    LedgerMovement,
    Month,
    NovaMonth,
    NovaProjectHours,
    NovaServerHistory,
    NovaServerHours,
    OpenCycle,
    PushState,
    SkippedCycle,
    SkipReason,
    SolusVMServerSeen,
    SuspendedSpan,
    Unpriced,
)
from bridge.domain.reconciliation.month import (
    Reconciler,
    reconcile,
)
from bridge.domain.reconciliation.placing import (
    capped_hours,
    not_charged,
    reconcile_client,
)
from bridge.domain.reconciliation.results import (
    NOT_BILLED,
    Bucket,
    ClientResult,
    CloudCheck,
    CurrencyMoney,
    DayHours,
    Defect,
    DefectKind,
    ForgottenServer,
    InvoiceAttention,
    LedgerTotal,
    NovaCheck,
    Placement,
    ProjectCheck,
    Report,
    ResourceResult,
    Revenue,
    SolusVMCheck,
    SolusVMServerCheck,
    SourceHours,
    Summary,
)

__all__ = [
    "NOT_BILLED",
    "BilledLine",
    "Bucket",
    "ClientEvidence",
    "ClientRef",
    "ClientResult",
    "CloudCheck",
    "CloudEvidence",
    "Collected",
    "CurrencyMoney",
    "DayHours",
    "Defect",
    "DefectKind",
    "ForgottenServer",
    "HeldCycle",
    "InstanceAction",
    "InvoiceAttention",
    "InvoiceDocument",
    "LedgerMovement",
    "LedgerTotal",
    "Month",
    "NovaCheck",
    "NovaMonth",
    "NovaProjectHours",
    "NovaServerHistory",
    "NovaServerHours",
    "OpenCycle",
    "Placement",
    "ProjectCheck",
    "PushState",
    "Reconciler",
    "Report",
    "ResourceResult",
    "Revenue",
    "SkipReason",
    "SkippedCycle",
    "SolusVMCheck",
    "SolusVMServerCheck",
    "SolusVMServerSeen",
    "SourceHours",
    "Summary",
    "SuspendedSpan",
    "Unpriced",
    "capped_hours",
    "forgotten_hours",
    "not_charged",
    "reconcile",
    "reconcile_client",
]
