"""October 2022 with every bucket present, as the store would hand it to the reconciliation.

Read on 2022-11-20 12:00 UTC (billing zone UTC, prices EUR: m1.small 0.10/h, m1.large 0.40/h, SolusVM
0.00100 a token). Each client is one story:

* Ada: a VM that ran all month (744 h) and a VM resized on Oct 9 08:00 (200 h m1.small, 544 h m1.large),
  both on INV-2022-0001, pushed and paid. Nova forgot db-1's 200 h before the resize.
* Bob: a VM under the billable-seconds cap (666.666667 of 744 h billed), a SolusVM server under plan 7's
  5,000 monthly tokens, and a batch VM of which 20 h arrived after INV-2022-0002 (they go on the next
  invoice, as late usage).
* Carol: anniversary cycles on the 15th; 20 h of the Sep 15 - Oct 15 cycle arrived late and went on
  INV-2022-0010 with the next cycle.
* Dan: a VM on a flavor without a price, so his invoice is held.
* p-orphan: a project linked to no client.
* Eve: a discount recalculated her October invoice; INV-2022-0004 was replaced by INV-2022-0008, which
  no longer bills the project unlinked from her in between (100 h removed).
* Fay: suspended from Oct 21; the 264 h after that were collected but not billed.
* Gus: a free flavor, so a zero invoice, skipped. Hal: a cycle before generate_invoices_after, skipped.
* Ivy: anniversary cycles on the 25th; Oct 25 - Nov 25 has not ended.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bridge.domain.reconciliation import (
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
    NovaProjectHours,
    NovaServerHistory,
    OpenCycle,
    PushState,
    SkippedCycle,
    SkipReason,
    SolusVMServerSeen,
    SuspendedSpan,
    Unpriced,
)
from bridge.domain.usage import Source


def utc(month: int, day: int, hour: int = 0, year: int = 2022) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


AS_OF = utc(11, 20, 12)
OCTOBER = Month.calendar("2022-10", "UTC", AS_OF)
OCT, NOV = utc(10, 1), utc(11, 1)
SMALL, LARGE = Decimal("0.10"), Decimal("0.40")
TOKEN = Decimal("0.00100")


def collected(
    resource: str,
    owner: str,
    hours: str,
    *,
    plan: str = "m1.small",
    start: datetime = OCT,
    end: datetime = NOV,
    cycle: tuple[datetime, datetime] = (OCT, NOV),
    outside: str = "0",
    source: Source = "openstack",
) -> Collected:
    return Collected(
        source=source,
        resource_id=resource,
        resource_name=resource,
        owner=owner,
        plan=plan,
        cycle_start=cycle[0],
        cycle_end=cycle[1],
        start=start,
        end=end,
        hours=Decimal(hours),
        hours_outside_month=Decimal(outside),
    )


def line(
    invoice: str,
    resource: str,
    hours: str,
    amount: str,
    *,
    plan: str = "m1.small",
    billed: str | None = None,
    price: Decimal = SMALL,
    period: tuple[datetime, datetime] = (OCT, NOV),
    standing: bool = True,
    late: bool = False,
    capped: bool = False,
    source: Source = "openstack",
    tokens: tuple[int, int] | None = None,
    replaced_by: str | None = None,
) -> BilledLine:
    label = "2022-10" if period == (OCT, NOV) else period[0].date().isoformat()
    return BilledLine(
        invoice=invoice,
        standing=standing,
        line_reference=f"{source}:{resource}:{plan}:{label}{':late' if late else ''}",
        source=source,
        resource_id=resource,
        plan=plan,
        period_start=period[0],
        period_end=period[1],
        hours=Decimal(hours),
        billed_hours=Decimal(billed if billed is not None else hours),
        unit_price=price,
        amount=Decimal(amount),
        currency="EUR",
        capped=capped,
        late=late,
        tokens_per_hour=None if tokens is None else tokens[0],
        tokens=None if tokens is None else tokens[1],
        replaced_by=replaced_by,
    )


def invoice(
    label: str,
    total: str,
    push: PushState,
    *,
    status: str = "unpaid",
    kind: str = "usage",
    paid: str | None = None,
    replaced_by: str | None = None,
) -> InvoiceDocument:
    return InvoiceDocument(
        label=label,
        reference=f"BB-{label}",
        kind=kind,
        status=status,
        currency="EUR",
        total=Decimal(total),
        push=push,
        paid_amount=None if paid is None else Decimal(paid),
        replaced_by=replaced_by,
    )


def client(number: int, name: str) -> ClientRef:
    return ClientRef(str(number), name, "EUR")


NEXT_CYCLE = OpenCycle(NOV, utc(12, 1))
RESIZED_AT = utc(10, 9, 8)
CAROL_SEP, CAROL_OCT = (utc(9, 15), utc(10, 15)), (utc(10, 15), utc(11, 15))
IVY_SEP, IVY_OCT = (utc(9, 25), utc(10, 25)), (utc(10, 25), utc(11, 25))
SUSPENDED_AT = utc(10, 21)


def ada() -> ClientEvidence:
    return ClientEvidence(
        client(1, "Ada Analytics"),
        collected=(
            collected("web-1", "p-ada", "744"),
            collected("db-1", "p-ada", "200", end=RESIZED_AT),
            collected("db-1", "p-ada", "544", plan="m1.large", start=RESIZED_AT),
        ),
        lines=(
            line("INV-2022-0001", "web-1", "744", "74.40"),
            line("INV-2022-0001", "db-1", "200", "20.00"),
            line("INV-2022-0001", "db-1", "544", "217.60", plan="m1.large", price=LARGE),
        ),
        invoices=(invoice("INV-2022-0001", "312.00", PushState.PUSHED, status="paid", paid="312.00"),),
        current_cycle=NEXT_CYCLE,
        ledger=(LedgerMovement("payment", "EUR", Decimal("312.00")),),
    )


def bob() -> ClientEvidence:
    return ClientEvidence(
        client(2, "Bob's Bakery"),
        collected=(
            collected("app-1", "p-bob", "744"),
            collected("vps-1", "u-bob", "744", plan="7", source="solusvm"),
            collected("batch-1", "p-bob", "120", start=utc(10, 10), end=utc(10, 15)),
        ),
        lines=(
            line("INV-2022-0002", "app-1", "744", "66.67", billed="666.666667", capped=True),
            line(
                "INV-2022-0002",
                "vps-1",
                "744",
                "5.00",
                plan="7",
                price=TOKEN,
                capped=True,
                source="solusvm",
                tokens=(7, 5000),
            ),
            line("INV-2022-0002", "batch-1", "100", "10.00"),
        ),
        invoices=(invoice("INV-2022-0002", "81.67", PushState.PUSHED),),
        current_cycle=NEXT_CYCLE,
    )


def carol() -> ClientEvidence:
    return ClientEvidence(
        client(3, "Carol's Clinic"),
        collected=(
            collected("carol-vm", "p-carol", "336", end=CAROL_SEP[1], cycle=CAROL_SEP, outside="384"),
            collected("carol-vm", "p-carol", "408", start=CAROL_OCT[0], cycle=CAROL_OCT, outside="336"),
        ),
        lines=(
            line("INV-2022-0003", "carol-vm", "700", "70.00", period=CAROL_SEP),
            line("INV-2022-0010", "carol-vm", "20", "2.00", period=CAROL_SEP, late=True),
            line("INV-2022-0010", "carol-vm", "744", "74.40", period=CAROL_OCT),
        ),
        invoices=(invoice("INV-2022-0003", "70.00", PushState.PUSHED, status="paid", paid="70.00"),),
        current_cycle=OpenCycle(CAROL_OCT[1], utc(12, 15)),
    )


UNPRICED_KEY = 'pricing.flavors."g1.xlarge"'


def dan() -> ClientEvidence:
    return ClientEvidence(
        client(4, "Dan's Data"),
        collected=(
            collected("gpu-1", "p-dan", "300", plan="g1.xlarge", end=utc(10, 13, 12)),
            collected("small-1", "p-dan", "744"),
        ),
        held=(
            HeldCycle(
                OCT,
                "BB-4-2022-10",
                (
                    Unpriced(
                        "openstack",
                        "gpu-1",
                        f"no price for flavor g1.xlarge; add {UNPRICED_KEY}",
                        UNPRICED_KEY,
                    ),
                ),
            ),
        ),
        current_cycle=NEXT_CYCLE,
    )


def orphan() -> ClientEvidence:
    return ClientEvidence(None, collected=(collected("stray-1", "p-orphan", "50", end=utc(10, 3, 2)),))


def eve() -> ClientEvidence:
    return ClientEvidence(
        client(5, "Eve's Events"),
        collected=(
            collected("eve-1", "p-eve", "744"),
            collected("eve-old", "p-eve-old", "100", end=utc(10, 5, 4)),
        ),
        lines=(
            line("INV-2022-0004", "eve-1", "744", "74.40", standing=False, replaced_by="INV-2022-0008"),
            line("INV-2022-0004", "eve-old", "100", "10.00", standing=False, replaced_by="INV-2022-0008"),
            line("INV-2022-0008", "eve-1", "744", "59.52"),
        ),
        invoices=(
            invoice(
                "INV-2022-0004", "84.40", PushState.PUSHED, status="cancelled", replaced_by="INV-2022-0008"
            ),
            invoice("INV-2022-0008", "59.52", PushState.IN_DOUBT),
        ),
        current_cycle=NEXT_CYCLE,
    )


def fay() -> ClientEvidence:
    return ClientEvidence(
        client(6, "Fay's Foundry"),
        collected=(
            collected("fay-1", "p-fay", "480", end=SUSPENDED_AT),
            collected("fay-1", "p-fay", "264", start=SUSPENDED_AT),
        ),
        lines=(line("INV-2022-0006", "fay-1", "480", "48.00"),),
        invoices=(
            invoice("INV-2022-0006", "48.00", PushState.FAILED),
            invoice("AUTO-2022-0007", "20.00", PushState.PUSHED, kind="auto", status="paid", paid="20.00"),
        ),
        suspended=(SuspendedSpan(SUSPENDED_AT),),
        current_cycle=NEXT_CYCLE,
        ledger=(
            LedgerMovement("payment", "EUR", Decimal("20.00")),
            LedgerMovement("invoice_paid_from_credit", "EUR", Decimal("-20.00")),
        ),
    )


def gus() -> ClientEvidence:
    return ClientEvidence(
        client(7, "Gus's Garage"),
        collected=(collected("free-1", "p-gus", "744", plan="free.tiny"),),
        skipped=(SkippedCycle(OCT, "BB-7-2022-10", SkipReason.ZERO_INVOICE),),
        current_cycle=NEXT_CYCLE,
    )


def hal() -> ClientEvidence:
    return ClientEvidence(
        client(8, "Hal's Hosting"),
        collected=(collected("vps-2", "u-hal", "100", plan="10", source="solusvm", end=utc(10, 5, 4)),),
        skipped=(SkippedCycle(OCT, "BB-8-2022-10", SkipReason.CUT_OFF),),
        current_cycle=NEXT_CYCLE,
    )


def ivy() -> ClientEvidence:
    return ClientEvidence(
        client(9, "Ivy's Ink"),
        collected=(
            collected("ivy-1", "p-ivy", "576", end=IVY_SEP[1], cycle=IVY_SEP, outside="144"),
            collected("ivy-1", "p-ivy", "168", start=IVY_OCT[0], cycle=IVY_OCT, outside="576"),
        ),
        lines=(line("INV-2022-0005", "ivy-1", "720", "72.00", period=IVY_SEP),),
        invoices=(invoice("INV-2022-0005", "72.00", PushState.ISSUED_BY_BRIDGE),),
        current_cycle=OpenCycle(*IVY_OCT),
    )


def every_bucket() -> list[ClientEvidence]:
    """The month's evidence, client by client, in the order a store query streams it."""
    return [ada(), bob(), carol(), dan(), eve(), fay(), gus(), hal(), ivy(), orphan()]


def clouds() -> CloudEvidence:
    """Nova's monthly figure per project (db-1 counted only since its resize) and the SolusVM servers seen."""
    projects = {
        "p-ada": "1288",
        "p-bob": "864",
        "p-carol": "744",
        "p-dan": "1044",
        "p-orphan": "50",
        "p-eve": "744",
        "p-eve-old": "100",
        "p-fay": "744",
        "p-gus": "744",
        "p-ivy": "744",
    }
    return CloudEvidence(
        nova_projects=tuple(NovaProjectHours(project, Decimal(hours)) for project, hours in projects.items()),
        nova_servers=(
            NovaServerHistory(
                "p-ada",
                "db-1",
                "db-1",
                launched_at=utc(9, 1),
                actions=(InstanceAction("create", utc(9, 1)), InstanceAction("resize", RESIZED_AT)),
            ),
        ),
        solusvm_servers=(
            SolusVMServerSeen("vps-1", "u-bob", "vps-1", observed_hours=700, inferred_hours=44),
            SolusVMServerSeen("vps-2", "u-hal", "vps-2", observed_hours=100, inferred_hours=0),
            SolusVMServerSeen("vps-3", "u-hal", "vps-3", observed_hours=0, inferred_hours=0),
        ),
    )
