"""October 2022 with every bucket present, written to a real store (the rows invoicing, the usage sync and
the credit engine leave), read on 2022-11-20 (billing zone UTC, EUR: m1.small 0.10/h, m1.large 0.40/h,
free.tiny 0, tokens 0.001). Each client is one story:

* Ada (1): web-1 ran all month (744 h); db-1 was resized on Oct 9 08:00 (200 h m1.small, 544 h m1.large);
  both on INV-2022-0001, pushed and paid.
* Bob (2): app-1 under the billable-seconds cap (666.666667 of 744 h billed); SolusVM vps-1 under plan 7's
  5,000 monthly tokens; batch-1 ran 120 h: 100 on INV-2022-0002, 20 arrived after it (late usage: they
  wait for November's invoice).
* Carol (7): anniversary cycles on the 15th; 20 h of the Sep 15 - Oct 15 cycle arrived after INV-2022-0003
  and went on INV-2022-0010 with the next cycle (invoiced late).
* Dan (3): gpu-1 on g1.xlarge, a flavor without a price: his October invoice is held.
* Eve (4): a discount recalculated October: INV-2022-0004 was replaced by INV-2022-0008, which no longer
  bills project p-eve-old, unlinked from her in between (100 h removed).
* Fay (5): suspended from Oct 21; the 264 h after that were collected and not billed.
* Gus (6): only a free flavor: a zero invoice, skipped.
* p-orphan: a project linked to no client (50 h).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import Connection, Engine, insert

from bridge.store import tables

AS_OF: Final = datetime(2022, 11, 20, 12, tzinfo=UTC)
OCT, NOV = (datetime(2022, month, 1, tzinfo=UTC) for month in (10, 11))
RESIZED_AT: Final = datetime(2022, 10, 9, 8, tzinfo=UTC)
SUSPENDED_AT: Final = datetime(2022, 10, 21, tzinfo=UTC)
INVOICED_AT: Final = datetime(2022, 11, 1, 0, 30, tzinfo=UTC)

SETTINGS: Final = """
[billing]
currency = "EUR"
[pricing]
token_price = 0.00100
[pricing.flavors]
"m1.small" = 0.10
"m1.large" = 0.40
"free.tiny" = 0
[configurations.anniversary]
billing_cycle_calendar = false
"""

EXPECTED_OPENSTACK: Final = {
    "invoiced": "4213.333334",
    "invoiced_late": "9.333333",
    "below_cap": "77.333333",
    "not_yet_invoiced": "20",
    "held": "1044",
    "skipped": "744",
    "unlinked_owner": "50",
    "suspended_not_billed": "264",
    "removed_by_recalculation": "100",
}
NOVA_SERVERS: Final = (
    ("p-ada", "web-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-ada", "db-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-bob", "app-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-bob", "batch-1", datetime(2022, 10, 10, tzinfo=UTC), datetime(2022, 10, 15, tzinfo=UTC)),
    ("p-dan", "gpu-1", OCT, datetime(2022, 10, 13, 12, tzinfo=UTC)),
    ("p-dan", "small-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-eve", "eve-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-eve-old", "eve-old", OCT, datetime(2022, 10, 5, 4, tzinfo=UTC)),
    ("p-fay", "fay-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-gus", "free-1", datetime(2022, 9, 1, tzinfo=UTC), None),
    ("p-orphan", "stray-1", OCT, datetime(2022, 10, 3, 2, tzinfo=UTC)),
    ("p-carol", "carol-vm", datetime(2022, 9, 15, tzinfo=UTC), None),
)
"""Nova's servers of the same month (as admin sees them): db-1 is resized at RESIZED_AT."""
EXPECTED_SOLUSVM: Final = {"invoiced": "714.285714", "below_cap": "29.714286"}


def seed(engine: Engine) -> None:
    with engine.begin() as tx:
        _clients(tx)
        _usage(tx)
        _invoices(tx)
        tx.execute(
            insert(tables.client_credit_states).values(
                client_id=5,
                suspended_at=SUSPENDED_AT,
                shelved=False,
                notifications_sent="",
                updated_at=SUSPENDED_AT,
            )
        )
        tx.execute(
            insert(tables.client_suspensions).values(
                client_id=5,
                started_at=SUSPENDED_AT,
                reason="up-to-date credit under the credit limit",
                started_by="process_clients",
                shelved=False,
            )
        )
        for client_id, kind, amount, day in ((1, "payment", "312.00", 20),):
            tx.execute(
                insert(tables.ledger_entries).values(
                    client_id=client_id,
                    kind=kind,
                    amount=Decimal(amount),
                    currency="EUR",
                    reference=f"ledger-{client_id}-{kind}",
                    description=kind,
                    occurred_at=datetime(2022, 10, day, tzinfo=UTC),
                    created_at=datetime(2022, 10, day, tzinfo=UTC),
                )
            )


_LINKS: Final = {
    1: ("Ada Analytics", [("openstack_project", "p-ada")]),
    2: ("Bob's Bakery", [("openstack_project", "p-bob"), ("solusvm_user", "u-bob")]),
    3: ("Dan's Data", [("openstack_project", "p-dan")]),
    4: ("Eve's Events", [("openstack_project", "p-eve")]),
    5: ("Fay's Foundry", [("openstack_project", "p-fay")]),
    6: ("Gus's Garage", [("openstack_project", "p-gus")]),
    7: ("Carol's Clinic", [("openstack_project", "p-carol")]),
}
CAROL_SEP, CAROL_OCT = (
    (datetime(2022, 9, 15, tzinfo=UTC), datetime(2022, 10, 15, tzinfo=UTC)),
    (datetime(2022, 10, 15, tzinfo=UTC), datetime(2022, 11, 15, tzinfo=UTC)),
)


def _clients(tx: Connection) -> None:
    for client_id, (name, links) in _LINKS.items():
        created = datetime(2022, 8, 15 if client_id == 7 else 1, tzinfo=UTC)
        configuration = "anniversary" if client_id == 7 else "default"
        add_client(tx, client_id, name, links, created=created, configuration=configuration)


def add_client(
    tx: Connection,
    client_id: int,
    name: str,
    links: list[tuple[str, str]],
    *,
    created: datetime,
    configuration: str = "default",
) -> None:
    """A client (``client<id>@example.com``, EUR) and its links, (kind, external id) each."""
    tx.execute(
        insert(tables.clients).values(
            id=client_id,
            email=f"client{client_id}@example.com",
            name=name,
            currency="EUR",
            configuration=configuration,
            created_at=created,
        )
    )
    for kind, external_id in links:
        tx.execute(
            insert(tables.client_links).values(
                client_id=client_id, kind=kind, external_id=external_id, created_at=created
            )
        )


def _ran(
    tx: Connection,
    resource: str,
    owner: str,
    start: datetime,
    end: datetime,
    *,
    plan: str = "m1.small",
    source: str = "openstack",
    collected_at: datetime = NOV,
) -> None:
    """Daily usage windows from ``start`` to ``end`` (the last one short when ``end`` is mid-day)."""
    rows: list[dict[str, Any]] = []
    at = start
    while at < end:
        until = min(at + timedelta(days=1), end)
        rows.append(
            {
                "source": source,
                "window_start": at,
                "window_end": until,
                "resource_id": resource,
                "resource_name": resource,
                "owner": owner,
                "plan": plan,
                "hours": Decimal((until - at) // timedelta(hours=1)),
                "tokens": None,
                "collected_at": collected_at,
            }
        )
        at = until
    tx.execute(insert(tables.usage_records), rows)


def _usage(tx: Connection) -> None:
    _ran(tx, "web-1", "p-ada", OCT, NOV)
    _ran(tx, "db-1", "p-ada", OCT, RESIZED_AT)
    _ran(tx, "db-1", "p-ada", RESIZED_AT, NOV, plan="m1.large")
    _ran(tx, "app-1", "p-bob", OCT, NOV)
    _ran(tx, "vps-1", "u-bob", OCT, NOV, plan="7", source="solusvm")
    batch = datetime(2022, 10, 10, tzinfo=UTC)
    _ran(tx, "batch-1", "p-bob", batch, batch + timedelta(hours=100))
    late = NOV + timedelta(days=3)
    _ran(
        tx, "batch-1", "p-bob", batch + timedelta(hours=100), batch + timedelta(hours=120), collected_at=late
    )
    _ran(tx, "carol-vm", "p-carol", CAROL_SEP[0], CAROL_OCT[1])
    _ran(tx, "gpu-1", "p-dan", OCT, datetime(2022, 10, 13, 12, tzinfo=UTC), plan="g1.xlarge")
    _ran(tx, "small-1", "p-dan", OCT, NOV)
    _ran(tx, "eve-1", "p-eve", OCT, NOV)
    _ran(tx, "eve-old", "p-eve-old", OCT, datetime(2022, 10, 5, 4, tzinfo=UTC))
    _ran(tx, "fay-1", "p-fay", OCT, NOV)
    _ran(tx, "free-1", "p-gus", OCT, NOV, plan="free.tiny")
    _ran(tx, "stray-1", "p-orphan", OCT, datetime(2022, 10, 3, 2, tzinfo=UTC))


_INVOICE_IDS: dict[str, int] = {}


def invoice(
    tx: Connection,
    number: str,
    client_id: int,
    total: str,
    *,
    period: tuple[datetime, datetime] = (OCT, NOV),
    status: str = "unpaid",
    push: str | None = "done",
    replaces: str | None = None,
    paid: str | None = None,
) -> int:
    reference = f"BB-{client_id}-{number}"
    result = tx.execute(
        insert(tables.invoices).values(
            client_id=client_id,
            reference=reference,
            kind="usage",
            period_start=period[0],
            period_end=period[1],
            currency="EUR",
            status=status,
            issuer="whmcs",
            series="INV",
            number=number,
            issued_at=period[1],
            due_at=period[1] + timedelta(days=14),
            total=Decimal(total),
            paid_amount=None if paid is None else Decimal(paid),
            replaces_id=None if replaces is None else _INVOICE_IDS[replaces],
            created_at=period[1] + timedelta(minutes=30),
        )
    )
    invoice_id = int(result.inserted_primary_key[0])
    _INVOICE_IDS[number] = invoice_id
    if push is not None:
        tx.execute(
            insert(tables.outbox).values(
                client_id=client_id,
                kind="create_invoice",
                reference=reference,
                payload="{}",
                state=push,
                attempts=1,
                created_at=period[1],
                updated_at=period[1],
                next_attempt_at=period[1],
            )
        )
    return invoice_id


def line(
    tx: Connection,
    invoice_id: int,
    position: int,
    resource: str,
    hours: str,
    amount: str,
    *,
    plan: str = "m1.small",
    price: str = "0.10",
    billed: str | None = None,
    period: tuple[datetime, datetime] = (OCT, NOV),
    capped: bool = False,
    late: bool = False,
    source: str = "openstack",
    tokens: tuple[int, int] | None = None,
) -> None:
    tx.execute(
        insert(tables.invoice_lines).values(
            invoice_id=invoice_id,
            position=position,
            line_reference=f"{source}:{resource}:{plan}:{period[0].date()}{':late' if late else ''}",
            source=source,
            resource_id=resource,
            resource_name=resource,
            plan=plan,
            period_start=period[0],
            period_end=period[1],
            hours=Decimal(hours),
            billed_hours=Decimal(billed or hours),
            unit_price=Decimal(price),
            tokens_per_hour=None if tokens is None else tokens[0],
            tokens=None if tokens is None else tokens[1],
            amount=Decimal(amount),
            capped=capped,
            late=late,
            description=resource,
        )
    )


def _invoices(tx: Connection) -> None:
    _INVOICE_IDS.clear()
    ada = invoice(tx, "INV-2022-0001", 1, "312.00", status="paid", paid="312.00")
    line(tx, ada, 1, "web-1", "744", "74.40")
    line(tx, ada, 2, "db-1", "200", "20.00")
    line(tx, ada, 3, "db-1", "544", "217.60", plan="m1.large", price="0.40")
    bob = invoice(tx, "INV-2022-0002", 2, "81.67")
    line(tx, bob, 1, "app-1", "744", "66.67", billed="666.666667", capped=True)
    line(
        tx,
        bob,
        2,
        "vps-1",
        "744",
        "5.00",
        plan="7",
        price="0.001",
        capped=True,
        source="solusvm",
        tokens=(7, 5000),
    )
    line(tx, bob, 3, "batch-1", "100", "10.00")
    carol = invoice(tx, "INV-2022-0003", 7, "70.00", period=CAROL_SEP, status="paid", paid="70.00")
    line(tx, carol, 1, "carol-vm", "700", "70.00", period=CAROL_SEP)
    carol_next = invoice(tx, "INV-2022-0010", 7, "76.40", period=CAROL_OCT)
    line(tx, carol_next, 1, "carol-vm", "20", "2.00", period=CAROL_SEP, late=True)
    line(tx, carol_next, 2, "carol-vm", "744", "74.40", period=CAROL_OCT)
    eve_first = invoice(tx, "INV-2022-0004", 4, "84.40", status="cancelled")
    line(tx, eve_first, 1, "eve-1", "744", "74.40")
    line(tx, eve_first, 2, "eve-old", "100", "10.00")
    eve = invoice(tx, "INV-2022-0008", 4, "59.52", push="in_doubt", replaces="INV-2022-0004")
    line(tx, eve, 1, "eve-1", "744", "59.52")
    fay = invoice(tx, "INV-2022-0006", 5, "48.00", push="failed")
    line(tx, fay, 1, "fay-1", "480", "48.00")
