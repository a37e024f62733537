"""One client's month: every collected hour placed in exactly one bucket, or named as a defect.

The rule, per resource, flavor or plan and billing cycle (the package docstring says it in words): the
standing lines claim their hours first (regular lines, then late ones; a capped line's free hours go
below the cap), and what is left goes to the first reason that applies. Claims beyond the hours
collected, and hours left over, are defects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from bridge.domain.cycles import zone_of
from bridge.domain.money import round_money
from bridge.domain.pricing import quantize_hours
from bridge.domain.reconciliation.evidence import (
    ZERO,
    BilledLine,
    ClientEvidence,
    Collected,
    HeldCycle,
    Key,
    Month,
    SkippedCycle,
    SkipReason,
    SuspendedSpan,
    microseconds,
)
from bridge.domain.reconciliation.results import (
    Bucket,
    ClientResult,
    Defect,
    DefectKind,
    Placement,
    ResourceResult,
)
from bridge.domain.suspension import time_inside
from bridge.domain.usage import SOURCES, as_source

_ONE: Final = Decimal(1)


def reconcile_client(month: Month, evidence: ClientEvidence) -> ClientResult:
    """Place every hour ``evidence`` collected in the month (see the module docstring)."""
    return place_client(month, evidence)[0]


def place_client(month: Month, evidence: ClientEvidence) -> tuple[ClientResult, dict[Key, list[Collected]]]:
    """The client's result, and its rows per resource (the day grid spreads them)."""
    client_id = None if evidence.client is None else evidence.client.client_id
    rows: dict[Key, list[Collected]] = defaultdict(list)
    for row in evidence.collected:
        rows[row.key].append(row)
    lines: dict[Key, list[BilledLine]] = defaultdict(list)
    for line in evidence.lines:
        lines[line.key].append(line)
    context = _ClientContext(month, evidence, client_id)
    resources = [context.resource(key, rows.get(key, []), lines.get(key, [])) for key in _keys(rows, lines)]
    owners = tuple(sorted({row.owner for row in evidence.collected}))
    result = ClientResult(evidence.client, owners, tuple(resources), evidence.invoices, evidence.ledger)
    return result, rows


def _keys(rows: dict[Key, list[Collected]], lines: dict[Key, list[BilledLine]]) -> list[Key]:
    """Resources in a stable order: source, resource id, cycle, plan."""
    return sorted(set(rows) | set(lines), key=lambda key: (SOURCES.index(key[0]), key[1], key[3], key[2]))


class _ClientContext:
    """The per-client facts every resource of the client consults."""

    def __init__(self, month: Month, evidence: ClientEvidence, client_id: str | None) -> None:
        self.month = month
        self.evidence = evidence
        self.client_id = client_id
        self.held = {held.cycle_start: held for held in evidence.held}
        self.skipped = {skipped.cycle_start: skipped for skipped in evidence.skipped}
        self.invoiced_cycles = {
            line.period_start for line in evidence.lines if line.standing and not line.late
        }

    def resource(self, key: Key, rows: Sequence[Collected], lines: Sequence[BilledLine]) -> ResourceResult:
        source, resource_id, plan, cycle_start = key
        first = rows[0] if rows else None
        name = first.resource_name if first is not None else resource_id
        hours = outside = ZERO
        for row in rows:
            hours += row.hours
            outside += row.hours_outside_month
        cycle_end = first.cycle_end if first is not None else lines[0].period_end
        allocation = _Allocation(hours, outside)
        standing = [line for line in lines if line.standing]
        claimed, excess = _claims(standing, hours + outside)
        allocation.take_claims(claimed)
        defects = [self._excess_defect(key, name, standing, allocation.month_share(excess))] if excess else []
        self._place_rest(allocation, key, rows, lines)
        if allocation.left > 0:
            defects.append(self._unaccounted(key, name, cycle_end, allocation.left))
        return ResourceResult(
            source=as_source(source),
            resource_id=resource_id,
            resource_name=name,
            owner=first.owner if first is not None else "",
            plan=plan,
            cycle_start=cycle_start,
            cycle_end=cycle_end,
            hours=hours,
            placements=tuple(allocation.placements),
            defects=tuple(defect for defect in defects if defect.hours > 0),
            amount=_revenue(standing, self.month),
            currency=standing[0].currency if standing else None,
        )

    def _place_rest(
        self,
        allocation: _Allocation,
        key: Key,
        rows: Sequence[Collected],
        lines: Sequence[BilledLine],
    ) -> None:
        """The hours no standing line bills, to the first reason that applies."""
        _source_name, resource_id, _plan, cycle_start = key
        removed, chain = _removed_by_recalculation(lines)
        if removed > 0:
            allocation.take(Bucket.REMOVED, allocation.month_share(removed), chain[0], chain[1])
        if self.client_id is None:
            owner = rows[0].owner if rows else ""
            flag = "--openstack-project" if key[0] == "openstack" else "--solusvm-user"
            allocation.take(
                Bucket.UNLINKED,
                allocation.left,
                None,
                f"owner {owner} is linked to no client: billing-bridge client link CLIENT {flag} {owner}",
            )
            return
        suspended = self._suspended_hours(rows)
        if suspended > 0:
            allocation.take(Bucket.SUSPENDED, suspended, None, "collected while the client was suspended")
        cycle_end = rows[0].cycle_end if rows else self.month.end
        if cycle_end > self.month.as_of:
            allocation.take(
                Bucket.NOT_YET_INVOICED,
                allocation.left,
                None,
                f"the cycle ends {_day(cycle_end, self.month)}",
            )
            return
        held = self.held.get(cycle_start)
        if held is not None:
            self._held(allocation, held, key[0], resource_id)
            return
        skipped = self.skipped.get(cycle_start)
        if skipped is not None:
            allocation.take(Bucket.SKIPPED, allocation.left, skipped.invoice_reference, _skip_text(skipped))
            return
        current = self.evidence.current_cycle
        if cycle_start in self.invoiced_cycles and current is not None and current.start == cycle_end:
            allocation.take(
                Bucket.NOT_YET_INVOICED,
                allocation.left,
                None,
                f"late usage: goes on the invoice of the cycle ending {_day(current.end, self.month)}",
            )

    def _held(self, allocation: _Allocation, held: HeldCycle, source: str, resource_id: str) -> None:
        own = [item for item in held.unpriced if item.source == source and item.resource_id == resource_id]
        if own:
            item = own[0]
            detail = f"no price: add {item.settings_key}" if item.settings_key else item.reason
            allocation.take(Bucket.HELD, allocation.left, held.invoice_reference, detail, item.settings_key)
            return
        keys = sorted({item.settings_key for item in held.unpriced if item.settings_key})
        reason = held.problem or (
            f"the invoice waits for {', '.join(keys)}" if keys else "the invoice is held"
        )
        allocation.take(
            Bucket.HELD, allocation.left, held.invoice_reference, reason, keys[0] if keys else None
        )

    def _suspended_hours(self, rows: Sequence[Collected]) -> Decimal:
        spans = self.evidence.suspended
        if not spans:
            return ZERO
        total = ZERO
        for row in rows:
            total += _hours_inside(row, spans, self.month.end)
        return quantize_hours(total)

    def _excess_defect(self, key: Key, name: str, standing: Sequence[BilledLine], hours: Decimal) -> Defect:
        invoices = sorted({line.invoice for line in standing})
        if len(invoices) > 1:
            detail = f"billed on {' and '.join(invoices)}, beyond the hours collected: the same hours twice"
        else:
            detail = f"{invoices[0]} bills more hours than were collected"
        return self._defect(DefectKind.IN_TWO_BUCKETS, key, name, hours, detail)

    def _unaccounted(self, key: Key, name: str, cycle_end: datetime, hours: Decimal) -> Defect:
        detail = (
            f"collected in a cycle that ended {_day(cycle_end, self.month)}, on no invoice line and "
            "held, skipped or suspended for no recorded reason"
        )
        return self._defect(DefectKind.IN_NO_BUCKET, key, name, hours, detail)

    def _defect(self, kind: DefectKind, key: Key, name: str, hours: Decimal, detail: str) -> Defect:
        return Defect(kind, self.client_id, as_source(key[0]), key[1], name, key[2], hours, detail)


class _Allocation:
    """A resource's month hours being handed out; ``share`` maps hours of the whole cycle to the month."""

    def __init__(self, month_hours: Decimal, outside: Decimal) -> None:
        self.left = month_hours
        self.share = _ONE if outside == 0 else month_hours / (month_hours + outside)
        self.whole = self.share == _ONE
        self.placements: list[Placement] = []

    def month_share(self, cycle_hours: Decimal) -> Decimal:
        return cycle_hours if self.whole else quantize_hours(cycle_hours * self.share)

    def take_claims(self, claims: Sequence[Placement]) -> None:
        """The lines' claims on the cycle's hours, each for the month's share of its hours."""
        for claim in claims:
            hours = min(self.month_share(claim.hours), self.left)
            if hours > 0:
                self.left -= hours
                self.placements.append(claim if hours is claim.hours else replace(claim, hours=hours))

    def take(
        self,
        bucket: Bucket,
        hours: Decimal,
        invoice: str | None,
        detail: str,
        settings_key: str | None = None,
    ) -> None:
        hours = min(hours, self.left)
        if hours <= 0:
            return
        self.left -= hours
        self.placements.append(Placement(bucket, hours, detail, invoice, None, settings_key))


def _revenue(standing: Sequence[BilledLine], month: Month) -> Decimal:
    """What the standing lines of cycles ending in ``month`` charge: the month's revenue."""
    amount = ZERO
    for line in standing:
        if _ends_in(line.period_end, month):
            amount += line.amount
    return amount


def _claims(standing: Sequence[BilledLine], cycle_hours: Decimal) -> tuple[list[Placement], Decimal]:
    """What the standing lines bill, within the cycle's collected hours, and the hours billed beyond them.

    Regular lines come first (in invoice order), late lines after them; a line's capped hours are
    claimed for the cap. What goes beyond the collected hours is an excess: a defect. Each claim is the
    placement of the cycle's hours it makes (the month's share is taken after: most cycles are the month).
    """
    ordered = standing if len(standing) < 2 else sorted(standing, key=_claim_order)
    left = cycle_hours
    claims: list[Placement] = []
    excess = ZERO
    for line in ordered:
        for claim in _line_claims(line):
            taken = min(claim.hours, left)
            excess += claim.hours - taken
            if taken > 0:
                claims.append(claim if taken is claim.hours else replace(claim, hours=taken))
            left -= taken
    return claims, excess


def _claim_order(line: BilledLine) -> tuple[bool, str, str]:
    return (line.late, line.invoice, line.line_reference)


def _line_claims(line: BilledLine) -> list[Placement]:
    bucket = Bucket.INVOICED_LATE if line.late else Bucket.INVOICED
    capped = capped_hours(line)
    where = f"{line.invoice}, line {line.line_reference}"
    billed = Placement(bucket, line.hours - capped, where, line.invoice)
    if capped <= 0:
        return [billed]
    cap = "the plan's monthly tokens" if line.tokens is not None else "the billable-seconds cap"
    return [billed, Placement(Bucket.BELOW_CAP, capped, f"{cap} ({where})", line.invoice, not_charged(line))]


def capped_hours(line: BilledLine) -> Decimal:
    """The hours of a capped line the cap left free (0 for a line the cap did not lower).

    OpenStack: the hours beyond the billed hours. SolusVM: the hours beyond those the charged tokens pay
    for at the plan's tokens per hour, to :data:`HOURS_PLACES` decimals.
    """
    if not line.capped:
        return ZERO
    if line.tokens is not None and line.tokens_per_hour:
        paid_for = quantize_hours(Decimal(line.tokens) / Decimal(line.tokens_per_hour))
        return max(ZERO, line.hours - paid_for)
    return max(ZERO, line.hours - line.billed_hours)


def not_charged(line: BilledLine) -> Decimal:
    """What the cap left free on ``line``, by the one rounding rule (0 when it did not lower the line)."""
    if not line.capped:
        return ZERO
    if line.tokens is not None and line.tokens_per_hour is not None:
        uncapped = line.billed_hours * line.tokens_per_hour
        return round_money(max(ZERO, uncapped - line.tokens) * line.unit_price, line.currency)
    return round_money(
        max(ZERO, quantize_hours(line.hours) - line.billed_hours) * line.unit_price, line.currency
    )


def _removed_by_recalculation(lines: Sequence[BilledLine]) -> tuple[Decimal, tuple[str | None, str]]:
    """Hours a replaced invoice billed beyond what the standing lines bill now, and which replaced which."""
    replaced: dict[str, Decimal] = {}
    targets: dict[str, str] = {}
    for line in lines:
        if not line.standing and line.replaced_by is not None and not line.late:
            replaced[line.invoice] = replaced.get(line.invoice, ZERO) + line.hours
            targets[line.invoice] = line.replaced_by
    if not replaced:
        return ZERO, (None, "")
    old = max(replaced, key=lambda invoice: replaced[invoice])
    standing = sum((line.hours for line in lines if line.standing and not line.late), ZERO)
    removed = replaced[old] - standing
    return removed, (old, f"{old} was replaced by {targets[old]}, which no longer bills these hours")


def _hours_inside(row: Collected, spans: Sequence[SuspendedSpan], month_end: datetime) -> Decimal:
    """The hours of ``row`` inside the suspended ``spans``, its hours spread evenly over its span."""
    length = row.end - row.start
    if length <= timedelta(0):
        return ZERO
    inside = time_inside(row.start, row.end, spans, month_end)
    if inside >= length:
        return row.hours
    return row.hours * microseconds(inside) / microseconds(length)


def _ends_in(instant: datetime, month: Month) -> bool:
    """Whether a cycle ending at ``instant`` ends in ``month``: its lines are the month's revenue."""
    return month.start < instant <= month.end


def _skip_text(skipped: SkippedCycle) -> str:
    if skipped.detail:
        return skipped.detail
    if skipped.reason is SkipReason.ZERO_INVOICE:
        return "zero invoice (the configuration's invoice_zero_amounts is off)"
    return "the cycle ended before generate_invoices_after"


def _day(instant: datetime, month: Month) -> str:
    return instant.astimezone(zone_of(month.zone)).date().isoformat()
