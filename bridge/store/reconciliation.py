"""The evidence of a month for the reconciliation, read-only, as the domain's values.

Every function takes the open transaction (``with uow.reading() as tx``) and reads; none writes. The
reconciliation service calls them per chunk of clients (in id order), so a month streams through in
bounded memory: collected hours come summed per resource, flavor or plan and cycle (one row per
resource-month, not one per window), except for clients with a suspension in the month, whose single
windows are kept so the suspended span cuts them right.

Hours are summed exactly (SQLite keeps them as text: see :func:`bridge.store.sums.exact_sum`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any, Final

from sqlalchemy import Connection, and_, case, false, func, null, or_, select, type_coerce
from sqlalchemy.orm import aliased

from bridge.domain.clients import OWNER_LINK_KIND
from bridge.domain.effects import EffectKind
from bridge.domain.invoicing import BRIDGE, display_number
from bridge.domain.reconciliation import (
    BilledLine,
    Collected,
    InvoiceDocument,
    LedgerMovement,
    Month,
    PushState,
    SuspendedSpan,
)
from bridge.domain.usage import as_source
from bridge.store import suspensions as suspension_store
from bridge.store.planning import unindexed
from bridge.store.sums import exact_sum as _exact_sum
from bridge.store.sums import from_exact_sum as _from_sum
from bridge.store.tables import (
    client_links,
    invoice_lines,
    invoices,
    ledger_entries,
    outbox,
    usage_records,
)
from bridge.store.types import UTCDateTime, once_per_value

Owner = tuple[str, str]
"""(usage source, owner id): an OpenStack project or a SolusVM user."""

ZERO: Final = Decimal(0)

_PUSH_STATES: Final = {
    "pending": PushState.PENDING,
    "in_doubt": PushState.IN_DOUBT,
    "done": PushState.PUSHED,
    "failed": PushState.FAILED,
    "cancelled": PushState.WITHDRAWN,
}


@dataclass(frozen=True)
class Span:
    """A billing cycle of some clients: ``[start, end)``, which may cross the month's edges."""

    start: datetime
    end: datetime


def _owners_clause(owners: Collection[Owner]) -> Any:
    """The usage rows of ``owners``, read through the (owner, ...) indexes.

    The source is kept out of SQLite's index choice (:class:`~bridge.store.planning.unindexed`): the
    planner would otherwise take the unique (source, window_start, resource_id) index and scan the whole
    month for each chunk of clients.
    """
    by_source: dict[str, set[str]] = defaultdict(set)
    for source, owner in owners:
        by_source[source].add(owner)
    if not by_source:
        return false()
    return or_(
        *(
            and_(unindexed(usage_records.c.source) == source, usage_records.c.owner.in_(sorted(ids)))
            for source, ids in sorted(by_source.items())
        )
    )


def collected_in_cycle(
    tx: Connection, owners: Collection[Owner], cycle: Span, month: Month, *, windows: bool = False
) -> list[Collected]:
    """The hours ``owners`` collected in ``cycle``, per source, owner, resource and plan.

    Each row's hours are those inside the month (its ``start``/``end`` clipped to the month), and
    ``hours_outside_month`` the rest of the cycle's. ``windows``: one row per usage window instead of
    sums (for a client with a suspension in the month). A window belongs to the month its start is in.
    """
    if not owners:
        return []
    sqlite = tx.dialect.name == "sqlite"
    start, end = max(cycle.start, month.start), min(cycle.end, month.end)
    inside = and_(usage_records.c.window_start >= start, usage_records.c.window_start < end)
    where = and_(
        _owners_clause(owners),
        usage_records.c.window_start >= cycle.start,
        usage_records.c.window_start < cycle.end,
    )
    if windows:
        rows = tx.execute(
            select(usage_records)
            .where(where)
            .order_by(usage_records.c.source, usage_records.c.resource_id, usage_records.c.window_start)
        ).all()
        return [
            _collected(_named(row), cycle, month, row.hours, (row.window_start, row.window_end))
            if start <= row.window_start < end
            else _collected(_named(row), cycle, month, ZERO, (start, start), outside=row.hours)
            for row in rows
        ]
    columns = usage_records.c
    within = month.start <= cycle.start and cycle.end <= month.end  # calendar months: all windows inside
    query = (
        select(
            columns.source,
            columns.owner,
            columns.resource_id,
            columns.plan,
            func.max(columns.resource_name).label("resource_name"),
            *_sums(None if within else inside, sqlite),
        )
        .where(where)
        .group_by(columns.owner, columns.source, columns.resource_id, columns.plan)
    )
    summed = once_per_value(lambda value: _from_sum(value, sqlite) or ZERO)
    found: list[Collected] = []
    for source, owner, resource_id, plan, name, hours, outside, first, last in sorted(
        tx.execute(query).tuples(), key=_GROUP
    ):
        found.append(
            _collected(
                (source, owner, resource_id, plan, name),
                cycle,
                month,
                summed(hours),
                (first, last) if first is not None else (start, start),
                outside=summed(outside),
            )
        )
    return found


_GROUP: Final = itemgetter(0, 1, 2, 3)
"""A summed row's (source, owner, resource id, plan): the order of :func:`collected_in_cycle`'s rows."""


def _sums(inside: Any, sqlite: bool) -> tuple[Any, ...]:
    """The hours of the windows ``inside`` the month and outside it, and the span of those inside; without
    the conditions (``inside`` None) when the cycle lies in the month."""
    columns = usage_records.c
    if inside is None:
        return (
            _exact_sum(columns.hours, sqlite).label("hours"),
            null().label("outside"),
            type_coerce(func.min(columns.window_start), UTCDateTime()).label("first"),
            type_coerce(func.max(columns.window_end), UTCDateTime()).label("last"),
        )
    return (
        _exact_sum(case((inside, columns.hours)), sqlite).label("hours"),
        _exact_sum(case((inside, None), else_=columns.hours), sqlite).label("outside"),
        type_coerce(func.min(case((inside, columns.window_start))), UTCDateTime()).label("first"),
        type_coerce(func.max(case((inside, columns.window_end))), UTCDateTime()).label("last"),
    )


_Named = tuple[str, str, str, str, str]
"""A resource's (source, owner, resource id, plan, resource name)."""


def _named(row: Any) -> _Named:
    return (row.source, row.owner, row.resource_id, row.plan, row.resource_name)


def _collected(
    named: _Named,
    cycle: Span,
    month: Month,
    hours: Decimal,
    span: tuple[datetime, datetime],
    *,
    outside: Decimal = ZERO,
) -> Collected:
    """The hours of a resource (``named``) in ``cycle``, those inside the month spanning ``span`` (its
    first window's start and last window's end, clipped to the month) and ``outside`` it."""
    source, owner, resource_id, plan, name = named
    first, last = span
    start = max(first, month.start)
    return Collected(
        source=as_source(source),
        resource_id=resource_id,
        resource_name=name,
        owner=owner,
        plan=plan,
        cycle_start=cycle.start,
        cycle_end=cycle.end,
        start=start,
        end=max(min(last, month.end), start),
        hours=hours,
        hours_outside_month=outside,
    )


def hours_by_resource(tx: Connection, source: str, month: Month) -> dict[str, Decimal]:
    """The hours each resource of ``source`` collected in the month (the cloud side's comparison)."""
    sqlite = tx.dialect.name == "sqlite"
    rows = tx.execute(
        select(usage_records.c.resource_id, _exact_sum(usage_records.c.hours, sqlite).label("hours"))
        .where(
            usage_records.c.source == source,
            usage_records.c.window_start >= month.start,
            usage_records.c.window_start < month.end,
        )
        .group_by(usage_records.c.resource_id)
    )
    return {row.resource_id: _from_sum(row.hours, sqlite) or ZERO for row in rows}


def unlinked_owners(tx: Connection, month: Month) -> list[Owner]:
    """Every (source, owner) that collected hours in the month and is linked to no client, sorted.

    Walks the distinct owners through the (owner, window_start) index, one seek each (a loose index scan:
    :func:`_distinct_owners`), and looks only at the unlinked ones' windows of the month, rather than
    reading every window of the month to find its owners: at 300,000 VMs that read was most of a run.
    """
    owners = _distinct_owners()
    found: list[Owner] = []
    for source, kind in sorted(OWNER_LINK_KIND.items()):
        link = select(client_links.c.id).where(
            client_links.c.kind == kind, client_links.c.external_id == owners.c.owner
        )
        used = select(usage_records.c.id).where(
            usage_records.c.owner == owners.c.owner,
            usage_records.c.window_start >= month.start,
            usage_records.c.window_start < month.end,
            usage_records.c.source == source,
        )
        rows = tx.execute(
            select(owners.c.owner).where(owners.c.owner.is_not(None), ~link.exists(), used.exists())
        )
        found += [(source, row.owner) for row in rows]
    return sorted(found)


def _distinct_owners() -> Any:
    """Every owner of a usage window, as a recursive query that asks the index for the next owner after
    the last one found (the loose index scan PostgreSQL's wiki describes; SQLite and MariaDB run it too).
    The last row is NULL (no owner after the greatest)."""
    after = usage_records.alias("after")
    first = select(func.min(usage_records.c.owner).label("owner")).cte("owners", recursive=True)
    following = (
        select(func.min(after.c.owner)).where(after.c.owner > first.c.owner).scalar_subquery().label("owner")
    )
    return first.union_all(select(following).where(first.c.owner.is_not(None)))


def linked_clients(tx: Connection, source: str, owners: Collection[str]) -> dict[str, int]:
    """The client each of ``owners`` of ``source`` is linked to (owners linked to none are left out), in
    one query per 500 owners."""
    ids = sorted(owners)
    found: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        rows = tx.execute(
            select(client_links.c.external_id, client_links.c.client_id).where(
                client_links.c.kind == OWNER_LINK_KIND[as_source(source)],
                client_links.c.external_id.in_(ids[start : start + 500]),
            )
        )
        found.update({row.external_id: row.client_id for row in rows})
    return found


def billing_clients_of(tx: Connection, owners: Collection[Owner], month: Month) -> dict[Owner, int]:
    """For owners linked to no client: the client whose invoice line bills one of their resources in a
    cycle overlapping the month (an owner unlinked after its hours were invoiced stays with that client).

    Two steps, so the lines are looked up by the few resources of such owners (not joined row by row to
    the month's usage): the resources of the owners in the month, then the lines that bill them.
    """
    if not owners:
        return {}
    resources = tx.execute(
        select(usage_records.c.source, usage_records.c.owner, usage_records.c.resource_id)
        .where(
            _owners_clause(owners),
            usage_records.c.window_start >= month.start,
            usage_records.c.window_start < month.end,
        )
        .group_by(usage_records.c.source, usage_records.c.owner, usage_records.c.resource_id)
    ).all()
    owner_of = {(row.source, row.resource_id): (row.source, row.owner) for row in resources}
    ids = sorted({resource_id for _, resource_id in owner_of})
    found: dict[Owner, int] = {}
    for start in range(0, len(ids), 500):
        rows = tx.execute(
            select(invoice_lines.c.source, invoice_lines.c.resource_id, invoices.c.client_id)
            .join(invoices, invoices.c.id == invoice_lines.c.invoice_id)
            .where(
                invoice_lines.c.resource_id.in_(ids[start : start + 500]),
                invoice_lines.c.period_start < month.end,
                invoice_lines.c.period_end > month.start,
            )
        )
        for row in rows:
            owner = owner_of.get((row.source, row.resource_id))
            if owner is not None:  # billed to two clients (relinked twice): the first client keeps it
                found[owner] = min(found.get(owner, row.client_id), row.client_id)
    return found


def _replacing(replacement: Any) -> Any:
    """The invoice that replaced an invoice (a plan or discount recalculation), always the same client's.

    The client is named so the lookup goes through the (client_id, ...) index: ``replaces_id`` has none,
    and SQLite would otherwise build a temporary index over every invoice for each chunk of clients.
    """
    return and_(replacement.c.client_id == invoices.c.client_id, replacement.c.replaces_id == invoices.c.id)


def _label(number: str | None, proforma: str | None, reference: str) -> str:
    return display_number(number, proforma, reference)


_LINE_COLUMNS: Final = tuple(
    invoice_lines.c[name]
    for name in (
        "line_reference",
        "source",
        "resource_id",
        "plan",
        "period_start",
        "period_end",
        "hours",
        "billed_hours",
        "unit_price",
        "amount",
        "capped",
        "late",
        "tokens_per_hour",
        "tokens",
    )
)
"""What a :class:`BilledLine` reads of a line (not its description, name or position)."""


def billed_lines(tx: Connection, client_ids: Sequence[int], month: Month) -> dict[int, list[BilledLine]]:
    """Per client, the invoice lines (standing or cancelled, late or not) whose period overlaps the month."""
    if not client_ids:
        return {}
    replacement = aliased(invoices)
    query = (
        select(
            invoices.c.client_id,
            invoices.c.number,
            invoices.c.proforma_number,
            invoices.c.reference,
            invoices.c.status,
            invoices.c.currency,
            replacement.c.number.label("r_number"),
            replacement.c.proforma_number.label("r_proforma"),
            replacement.c.reference.label("r_reference"),
            *_LINE_COLUMNS,
        )
        .join(invoices, invoices.c.id == invoice_lines.c.invoice_id)
        .outerjoin(replacement, _replacing(replacement))
        .where(
            invoices.c.client_id.in_(client_ids),
            invoice_lines.c.period_start < month.end,
            invoice_lines.c.period_end > month.start,
        )
        .order_by(invoices.c.client_id, invoices.c.id, invoice_lines.c.position)
    )
    found: dict[int, list[BilledLine]] = defaultdict(list)
    for (
        client_id,
        number,
        proforma,
        reference,
        status,
        currency,
        r_number,
        r_proforma,
        r_reference,
        *line,
    ) in tx.execute(query):
        found[client_id].append(
            _billed_line(
                _label(number, proforma, reference),
                status != "cancelled",
                currency,
                None if r_reference is None else _label(r_number, r_proforma, r_reference),
                line,
            )
        )
    return found


def _billed_line(
    invoice: str, standing: bool, currency: str, replaced_by: str | None, line: Sequence[Any]
) -> BilledLine:
    """A line read as :data:`_LINE_COLUMNS` (unpacked by position: a row's attributes cost more than the
    rest of the line's reading), on its invoice."""
    (
        line_reference,
        source,
        resource_id,
        plan,
        period_start,
        period_end,
        hours,
        billed_hours,
        unit_price,
        amount,
        capped,
        late,
        tokens_per_hour,
        tokens,
    ) = line
    return BilledLine(
        invoice=invoice,
        standing=standing,
        line_reference=line_reference,
        source=as_source(source),
        resource_id=resource_id,
        plan=plan,
        period_start=period_start,
        period_end=period_end,
        hours=hours,
        billed_hours=billed_hours,
        unit_price=unit_price,
        amount=amount,
        currency=currency,
        capped=bool(capped),
        late=bool(late),
        tokens_per_hour=tokens_per_hour,
        tokens=tokens,
        replaced_by=replaced_by,
    )


def invoice_documents(
    tx: Connection, client_ids: Sequence[int], month: Month
) -> dict[int, list[InvoiceDocument]]:
    """Per client, the usage invoices of cycles ending in the month and the other kinds issued in it,
    with what WHMCS confirmed (the state of the invoice's ``create_invoice`` outbox row)."""
    if not client_ids:
        return {}
    replacement = aliased(invoices)
    usage_in_month = and_(
        invoices.c.kind == "usage", invoices.c.period_end > month.start, invoices.c.period_end <= month.end
    )
    other_in_month = and_(
        invoices.c.kind != "usage", invoices.c.issued_at >= month.start, invoices.c.issued_at < month.end
    )
    query = (
        select(
            invoices.c.client_id,
            invoices.c.number,
            invoices.c.proforma_number,
            invoices.c.reference,
            invoices.c.kind,
            invoices.c.status,
            invoices.c.currency,
            invoices.c.total,
            invoices.c.paid_amount,
            invoices.c.issuer,
            outbox.c.state.label("push_state"),
            replacement.c.number.label("r_number"),
            replacement.c.proforma_number.label("r_proforma"),
            replacement.c.reference.label("r_reference"),
        )
        .outerjoin(
            outbox,
            and_(
                outbox.c.kind == EffectKind.CREATE_INVOICE.value, outbox.c.reference == invoices.c.reference
            ),
        )
        .outerjoin(replacement, _replacing(replacement))
        .where(invoices.c.client_id.in_(client_ids), or_(usage_in_month, other_in_month))
        .order_by(invoices.c.client_id, invoices.c.id)
    )
    found: dict[int, list[InvoiceDocument]] = defaultdict(list)
    for (
        client_id,
        number,
        proforma,
        reference,
        kind,
        status,
        currency,
        total,
        paid_amount,
        issuer,
        push_state,
        r_number,
        r_proforma,
        r_reference,
    ) in tx.execute(query):
        push = (
            _PUSH_STATES[push_state]
            if push_state is not None
            else PushState.ISSUED_BY_BRIDGE
            if issuer == BRIDGE
            else PushState.PENDING
        )
        found[client_id].append(
            InvoiceDocument(
                label=_label(number, proforma, reference),
                reference=reference,
                kind=kind,
                status=status,
                currency=currency,
                total=total,
                push=push,
                paid_amount=paid_amount,
                replaced_by=None if r_reference is None else _label(r_number, r_proforma, r_reference),
            )
        )
    return found


def suspensions(
    tx: Connection, client_ids: Sequence[int], month: Month
) -> dict[int, tuple[SuspendedSpan, ...]]:
    """Per client, its suspensions (from the suspension history) that overlap the month, oldest first."""
    found = suspension_store.overlapping(tx, client_ids, month.start, month.end)
    return {
        client_id: tuple(SuspendedSpan(span.start, span.end) for span in spans)
        for client_id, spans in found.items()
    }


def ledger_movements(
    tx: Connection, client_ids: Sequence[int], month: Month
) -> dict[int, list[LedgerMovement]]:
    """Per client, the month's credit ledger rows summed per kind and currency."""
    if not client_ids:
        return {}
    sqlite = tx.dialect.name == "sqlite"
    rows = tx.execute(
        select(
            ledger_entries.c.client_id,
            ledger_entries.c.kind,
            ledger_entries.c.currency,
            _exact_sum(ledger_entries.c.amount, sqlite).label("amount"),
            func.count().label("entries"),
        )
        .where(
            ledger_entries.c.client_id.in_(client_ids),
            ledger_entries.c.occurred_at >= month.start,
            ledger_entries.c.occurred_at < month.end,
        )
        .group_by(ledger_entries.c.client_id, ledger_entries.c.kind, ledger_entries.c.currency)
        .order_by(ledger_entries.c.client_id, ledger_entries.c.kind, ledger_entries.c.currency)
    )
    found: dict[int, list[LedgerMovement]] = defaultdict(list)
    for row in rows:
        amount = _from_sum(row.amount, sqlite) or ZERO
        found[row.client_id].append(LedgerMovement(row.kind, row.currency, amount, int(row.entries)))
    return found
