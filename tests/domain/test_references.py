"""Every BB- reference: what each names, and that it is the same every time it is built."""

from __future__ import annotations

from datetime import date

from bridge.domain import references
from tests.domain.builders import utc


def test_invoice_references_name_client_and_what_they_bill() -> None:
    assert references.usage_invoice(42, "2022-10") == "BB-42-2022-10"
    assert references.cycle_label_of("BB-42-2024-01-31", 42) == "2024-01-31"
    assert references.recurring_invoice(42, 7, date(2022, 11, 1)) == "BB-42-P7-2022-11-01"
    assert references.auto_invoice(42, utc(2022, 11, 1, 9, 5)) == "BB-42-AUTO-20221101T0905"


def test_a_replacement_takes_the_next_number_of_its_chain() -> None:
    assert references.replacement_invoice("BB-1-2022-10", []) == "BB-1-2022-10-R1"
    taken = ["BB-1-2022-10-R1", "BB-1-2022-10-R2", "BB-1-2022-10-R2x"]
    assert references.replacement_invoice("BB-1-2022-10-R2", taken) == "BB-1-2022-10-R3"
    assert references.replacement_prefix("BB-1-2022-10-R2") == "BB-1-2022-10-R"
    assert references.invoice_cancellation("BB-1-2022-10") == "BB-1-2022-10-cancel"


def test_ledger_and_outbox_references() -> None:
    at = utc(2022, 11, 1, 9, 5)
    assert references.payment(42, "tx-9") == "BB-PAYMENT-42-tx-9"
    assert references.initial_credit(42) == "BB-INITIAL-42"
    assert references.invoice_paid("BB-42-2022-10") == "BB-PAID-BB-42-2022-10"
    assert references.invoice_settled("BB-42-2022-10") == "BB-SETTLED-BB-42-2022-10"
    assert references.credit_notification(42, 24, at) == "BB-NOTIFY-42-24h-20221101T0905"
    assert references.whmcs_client(42) == "BB-CLIENT-42"
    assert references.whmcs_client_update(42, 3) == "BB-CLIENT-42-UPDATE-3"
    assert (
        references.server_action("suspend_server", 42, "openstack", "vm-1", at)
        == "BB-SUSPEND_SERVER-42-openstack-vm-1-20221101T090500"
    )
