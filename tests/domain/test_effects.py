"""Typed outbox intents: each reads back from the payload it writes; a bad payload names its field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bridge.domain import effects
from bridge.domain.effects import (
    AddClient,
    AddCredit,
    AddPayment,
    CancelInvoice,
    CreateInvoice,
    DeleteServer,
    EffectKind,
    InvoiceItem,
    ResumeServer,
    SendEmail,
    ShelveServer,
    SuspendServer,
    UnshelveServer,
    UpdateClient,
)
from tests.domain.builders import utc

EXAMPLES: list[effects.Effect] = [
    AddClient("ada@example.com", "Ada", "Lovelace", "EUR"),
    AddClient("ada@example.fr", "Ada", "Lovelace", "EUR", country="FR", tax_id="FR40303265045"),
    UpdateClient(email="ada@example.org"),
    UpdateClient(country="FR", tax_id="", taxexempt=False),
    CreateInvoice(
        "BB-1-2022-10",
        date(2022, 11, 1),
        date(2022, 11, 15),
        (InvoiceItem("web (m1.small)", Decimal("12.30")),),
        "BB-1-2022-10: usage 2022-10",
    ),
    CancelInvoice("BB-1-2022-10", "77"),
    AddCredit(Decimal("4.50"), "Goodwill", date(2022, 11, 2)),
    AddPayment("BB-1-2022-10", Decimal("5.00"), utc(2022, 11, 5, 10), "banktransfer"),
    SendEmail("Your credit runs out", "Hello"),
    SuspendServer("openstack", "vm-1", "web"),
    DeleteServer("solusvm", "42", "vps"),
]


@pytest.mark.parametrize("effect", EXAMPLES, ids=lambda effect: effect.kind.value)
def test_an_intent_reads_back_as_itself_from_its_payload(effect: effects.Effect) -> None:
    assert effects.decode(effect.kind.value, effect.payload()) == effect


def test_the_create_invoice_payload_is_the_one_whmcs_push_rows_have_always_held() -> None:
    invoice = EXAMPLES[4]
    assert invoice.payload() == {
        "invoice_reference": "BB-1-2022-10",
        "date": "2022-11-01",
        "due_date": "2022-11-15",
        "items": [{"description": "web (m1.small)", "amount": Decimal("12.30"), "taxed": False}],
        "notes": "BB-1-2022-10: usage 2022-10",
    }
    assert AddClient("a@b.c", "A", "", "EUR").payload() == {
        "email": "a@b.c",
        "firstname": "A",
        "lastname": "",
        "currency": "EUR",
    }


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("create_invoice", {"items": [], "date": "2022-11-01"}, "has no items"),
        ("create_invoice", {"items": [{"description": "x", "amount": 1.5}], "date": "x"}, "decimal string"),
        ("add_client", {"firstname": "Ada"}, "'email' is missing or empty"),
        ("update_client", {}, "names no field"),
        ("update_client", {"taxexempt": "false"}, "'taxexempt' must be true or false"),
        ("add_payment", {"amount": "5.00", "date": "2022-11-05T10:00:00"}, "no UTC offset"),
        ("suspend_server", {"source": "openstack"}, "'resource_id' is missing"),
        ("refund", {}, "unknown effect kind 'refund'"),
    ],
)
def test_a_payload_that_cannot_be_read_names_what_is_wrong(
    kind: str, payload: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        effects.decode(kind, payload)


def test_a_suspension_shelves_openstack_instances_only_when_asked_and_never_solusvm_servers() -> None:
    assert effects.server_action("suspend", "openstack", shelve=True) is ShelveServer
    assert effects.server_action("resume", "openstack", shelve=True) is UnshelveServer
    assert effects.server_action("suspend", "solusvm", shelve=True) is SuspendServer
    assert effects.server_action("resume", "solusvm", shelve=True) is ResumeServer
    assert effects.server_action("suspend", "openstack", shelve=False) is SuspendServer
    assert effects.server_action("terminate", "openstack", shelve=True) is DeleteServer
    assert {cls.kind for cls in (ShelveServer, DeleteServer)} <= effects.CLOUD_KINDS
    assert EffectKind.CREATE_INVOICE not in effects.CLOUD_KINDS
