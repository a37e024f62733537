"""Clients are told (issue 15 point 5): each notification mailed once, through the outbox, with true texts.

Without WHMCS the bridge mails notifications itself; with no SMTP server they are ``.eml`` files under
``<state_dir>/mail``, one per notification, named after its outbox reference.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bridge.bootstrap import App
from bridge.clock import FixedClock
from bridge.domain.clients import LinkKind
from bridge.errors import ConfigError
from bridge.mail.notices import split_subject
from bridge.store.outbox import OutboxState, decode_payload
from bridge.store.tables import outbox
from tests.support.invoicing import PRICING, client_with
from tests.support.usage import CREDIT_START as START
from tests.support.usage import OCT, collect, hourly, run_vm


@pytest.fixture
def world(make_app: Callable[..., App], clock: FixedClock) -> Callable[..., App]:
    def build(configuration: dict[str, Any] | None = None, **sections: Any) -> App:
        sections.setdefault("pricing", {"flavors": {"m1.large": "1.00"}})
        sections["configurations"] = {"default": configuration or {}}
        app = make_app(**sections)
        clock.set(START)
        client = app.clients.add(email="ops@acme.com", name="Acme")
        app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
        return app

    return build


def mails(app: App) -> list[EmailMessage]:
    directory = app.settings.daemon.resolved_state_dir() / "mail"
    found = []
    for path in sorted(directory.glob("*.eml"), key=lambda path: path.stat().st_mtime_ns):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def process(app: App, at: datetime) -> None:
    """What the process_clients job does at ``at``: decide, then mail."""
    assert isinstance(app.clock, FixedClock)
    app.clock.set(at)
    app.credit.process(at)
    app.mail_delivery().run()


def test_each_threshold_crossed_is_mailed_once_and_a_rerun_sends_nothing_more(
    world: Callable[..., App],
) -> None:
    app = world({"credit_notifications": [72, 24]})
    app.credit.add_credit("1", Decimal(100), "initial")  # $1/h: zero after 100 h
    subjects = []
    for hour in (20, 28, 28, 29, 76, 76, 77):
        run_vm(app, "p-1", "m1.large", hour)
        process(app, START + timedelta(hours=hour))
        subjects = [message["Subject"] for message in mails(app)]
    assert subjects == [
        "Your credit with Cloud services runs out in about 72 hours",
        "Your credit with Cloud services runs out in about 24 hours",
    ]
    first = mails(app)[0]
    assert first["To"] == "ops@acme.com"
    assert "reaches zero in about 72 hours, around 2026-03-06 04:00 UTC" in " ".join(body(first).split())


def test_a_client_already_below_zero_is_told_so_and_when_it_is_suspended_never_that_credit_runs_out(
    world: Callable[..., App],
) -> None:
    app = world({"credit_notifications": [72, 24], "suspension": {"enabled": True, "delay_hours": 24}})
    run_vm(app, "p-1", "m1.large", 5)  # no credit at all: 5.00 used
    process(app, START + timedelta(hours=5))
    process(app, START + timedelta(hours=5))
    (mail,) = mails(app)
    text = " ".join(body(mail).split())
    assert mail["Subject"] == "Your credit with Cloud services is below zero"
    assert "your up-to-date credit is -5.00 USD: it is below zero" in text
    assert "suspended around 2026-03-03 05:00 UTC" in text  # 24 h under the credit limit of 0
    assert "runs out" not in text and "runs out" not in mail["Subject"]


def test_below_zero_with_suspension_off_says_services_keep_running(world: Callable[..., App]) -> None:
    app = world({"credit_notifications": [24]})
    run_vm(app, "p-1", "m1.large", 2)
    process(app, START + timedelta(hours=2))
    (mail,) = mails(app)
    assert "Your services keep running" in body(mail)
    assert "suspended" not in body(mail)


def test_suspension_and_termination_are_each_mailed_once_with_what_was_acted_on(
    world: Callable[..., App],
) -> None:
    app = world({"suspension": {"enabled": True}, "termination": {"enabled": True, "delay_hours": 48}})
    app.credit.add_credit("1", Decimal(3), "initial")
    run_vm(app, "p-1", "m1.large", 5)
    process(app, START + timedelta(hours=5))
    process(app, START + timedelta(hours=6))
    suspended = mails(app)
    assert [mail["Subject"] for mail in suspended] == ["Your services with Cloud services are suspended"]
    text = " ".join(body(suspended[0]).split())
    assert "openstack:vm-1 (name-vm-1)" in text
    assert "deleted around 2026-03-04 05:00 UTC" in text
    process(app, START + timedelta(hours=5 + 49))
    process(app, START + timedelta(hours=5 + 50))
    assert [mail["Subject"] for mail in mails(app)] == [
        "Your services with Cloud services are suspended",
        "Your services with Cloud services were deleted",
    ]


def test_a_staff_suspension_is_mailed_once_without_a_word_about_credit_or_the_staff_reason(
    world: Callable[..., App],
) -> None:
    app = world()
    app.credit.add_credit("1", Decimal(100), "paid")
    app.credit.suspend("1", shelve=True, reason="abuse report 4711")
    app.mail_delivery().run()
    app.mail_delivery().run()
    (mail,) = mails(app)
    assert mail["Subject"] == "Your services with Cloud services are suspended"
    text = " ".join(body(mail).split())
    assert "suspended (shelved) by our staff: you can neither start nor create servers" in text
    assert "openstack project p-1" in text
    assert "credit" not in text and "4711" not in text
    app.credit.resume("1")
    assert isinstance(app.clock, FixedClock)
    app.clock.set(START + timedelta(hours=1))
    app.credit.suspend("1")
    app.mail_delivery().run()
    # the resumption is told too, and a second suspension is a second mail
    assert len(mails(app)) == 3


def test_the_sender_is_the_configurations_notification_sender(world: Callable[..., App]) -> None:
    app = world(
        {
            "credit_notifications": [24],
            "notification_sender_name": "Acme Cloud Billing",
            "notification_sender_email": "billing@cloud.example",
        }
    )
    run_vm(app, "p-1", "m1.large", 1)
    process(app, START + timedelta(hours=1))
    (mail,) = mails(app)
    assert mail["From"] == "Acme Cloud Billing <billing@cloud.example>"


def test_an_operator_template_replaces_the_bundled_one(world: Callable[..., App], tmp_path: Path) -> None:
    templates = tmp_path / "brand"
    templates.mkdir()
    (templates / "mail_credit_exhausted.txt").write_text(
        "Subject: {{ company }}: top up please\n\nDear {{ client.name }}, you owe {{ up_to_date }}.\n"
    )
    app = world(
        {"credit_notifications": [24], "company_name": "Acme Cloud"},
        enrollment={"template_dir": str(templates)},
    )
    run_vm(app, "p-1", "m1.large", 1)
    process(app, START + timedelta(hours=1))
    (mail,) = mails(app)
    assert (mail["Subject"], body(mail)) == ("Acme Cloud: top up please", "Dear Acme, you owe -1.00.\n")


@pytest.fixture
def invoiced(make_app: Callable[..., App], clock: FixedClock) -> Callable[..., App]:
    def build(**configuration: Any) -> App:
        app = make_app(
            pricing=PRICING,
            configurations={"default": {"company_name": "Acme Cloud Ltd", **configuration}},
        )
        clock.set(datetime(2022, 11, 1, 2, tzinfo=UTC))
        client_with(app, "ops@acme.com", project="p-1")
        collect(app, hourly("b", "p-1", "m1.large", OCT + timedelta(days=10), 100))
        app.invoicing.run(date(2022, 11, 1))
        return app

    return build


def test_an_issued_invoice_is_mailed_once_with_its_pdf(invoiced: Callable[..., App], tmp_path: Path) -> None:
    app = invoiced()
    process(app, datetime(2022, 11, 1, 3, tzinfo=UTC))
    process(app, datetime(2022, 11, 1, 4, tzinfo=UTC))
    (mail,) = mails(app)
    assert mail["Subject"] == "Acme Cloud Ltd invoice 1"
    assert "10.00 USD, due by 2022-11-15" in " ".join(body(mail).split())
    attachments = list(mail.iter_attachments())
    try:
        app.invoice_pdf("1")
    except Exception:  # WeasyPrint's libraries are missing here: the mail goes without the PDF
        assert attachments == []
        return
    (pdf,) = attachments
    assert (pdf.get_content_type(), pdf.get_filename()) == ("application/pdf", "invoice-1.pdf")
    assert pdf.get_content() == app.invoice_pdf("1")[1]  # the stored invoice's PDF, byte for byte
    if shutil.which("pdftotext"):
        path = tmp_path / "invoice.pdf"
        path.write_bytes(pdf.get_content())
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True, text=True)
        assert "Acme Cloud Ltd" in text.stdout and "10.00" in text.stdout


def test_an_overdue_invoice_is_reminded_once_and_a_paid_one_never(invoiced: Callable[..., App]) -> None:
    app = invoiced()
    process(app, datetime(2022, 11, 10, tzinfo=UTC))
    process(app, datetime(2022, 11, 16, tzinfo=UTC))
    process(app, datetime(2022, 11, 17, tzinfo=UTC))
    assert [mail["Subject"] for mail in mails(app)] == [
        "Acme Cloud Ltd invoice 1",
        "Reminder: Acme Cloud Ltd invoice 1 is overdue",
    ]


def test_notify_on_unpaid_invoices_off_sends_no_invoice_mail(invoiced: Callable[..., App]) -> None:
    app = invoiced(notify_on_unpaid_invoices=False)
    process(app, datetime(2022, 11, 20, tzinfo=UTC))
    assert mails(app) == []


def test_with_whmcs_a_notification_is_a_send_email_row_and_no_file(
    make_app: Callable[..., App], clock: FixedClock
) -> None:
    app = make_app(
        whmcs={"enabled": True, "url": "https://billing.example.com", "identifier": "i", "secret": "s"},
        pricing={"flavors": {"m1.large": "1.00"}},
        configurations={"default": {"credit_notifications": [24]}},
    )
    clock.set(START)
    client = app.clients.add(email="ops@acme.com", name="Acme")
    app.clients.link(str(client.id), LinkKind.OPENSTACK_PROJECT, "p-1")
    run_vm(app, "p-1", "m1.large", 1)
    process(app, START + timedelta(hours=1))
    with app.engine.connect() as connection:
        kinds = [row.kind for row in connection.execute(select(outbox.c.kind))]
    assert "send_email" in kinds and "mail_client" not in kinds
    assert mails(app) == []


def test_a_payment_recorded_in_the_bridge_on_an_invoice_whmcs_holds_reaches_whmcs_once(
    invoiced: Callable[..., App],
) -> None:
    app = invoiced(generate_invoices=False)  # the first cycle starts with the first VM, on 10-11
    app.invoicing.mark_paid("BB-1-2022-10-11", amount=Decimal("10.00"))
    with app.engine.connect() as connection:
        rows = connection.execute(select(outbox).where(outbox.c.kind == "add_payment")).all()
    (row,) = rows
    assert row.reference == "BB-PAID-BB-1-2022-10-11-WHMCS" and row.state == OutboxState.PENDING.value
    payload = decode_payload(row.payload)
    assert (payload["invoice_reference"], payload["amount"]) == ("BB-1-2022-10-11", "10.00")


def test_a_broken_operator_template_is_refused_naming_it_and_nothing_is_decided(
    world: Callable[..., App], tmp_path: Path
) -> None:
    templates = tmp_path / "brand"
    templates.mkdir()
    (templates / "mail_credit_exhausted.txt").write_text("Dear {{ client.name }}, you owe {{ debt }}.\n")
    app = world({"credit_notifications": [24]}, enrollment={"template_dir": str(templates)})
    run_vm(app, "p-1", "m1.large", 1)
    broken = re.escape("mail template mail_credit_exhausted.txt: 'debt' is undefined")
    with pytest.raises(ConfigError, match=broken):
        process(app, START + timedelta(hours=1))
    with app.engine.connect() as connection:
        assert connection.execute(select(outbox)).all() == []
    with pytest.raises(ConfigError, match=re.escape("mail_x.txt: its first line must be 'Subject: ...'")):
        split_subject("Dear Acme\n", "mail_x.txt")


def test_a_staff_suspension_is_mailed_once_without_a_credit_reason_or_the_staffs_words(
    world: Callable[..., App],
) -> None:
    app = world()
    app.credit.add_credit("1", Decimal(500), "initial")
    run_vm(app, "p-1", "m1.large", 3)
    assert isinstance(app.clock, FixedClock)
    app.clock.set(START + timedelta(hours=3))
    app.credit.suspend("1", reason="abuse report #77")
    process(app, START + timedelta(hours=4))
    (mail,) = mails(app)
    text = " ".join(body(mail).split())
    assert mail["Subject"] == "Your services with Cloud services are suspended"
    assert "suspended by our staff" in text and "openstack:vm-1 (name-vm-1)" in text
    assert "abuse" not in text and "credit limit" not in text
