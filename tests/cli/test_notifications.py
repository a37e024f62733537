"""`make run`'s example settings (settings.example.toml: SQLite, the bridge's own invoices, no mail server):
a client's credit notifications appear as mail files under var/mail/, once each (issue 15's acceptance)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from bridge.bootstrap import build_app
from bridge.settings import load_settings
from tests.support.cli import run_cli
from tests.support.usage import run_vm

EXAMPLE = Path(__file__).parents[2] / "settings.example.toml"
START = datetime(2026, 3, 2, tzinfo=UTC)


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The example settings as `make run` copies them, run from a fresh directory (state in ./var), with
    one flavor priced at 1.00 an hour; a fresh client with no credit, its project linked."""
    monkeypatch.chdir(tmp_path)
    settings = tmp_path / "settings.toml"
    text = EXAMPLE.read_text().replace('# "m1.small" = 0.0125', '"m1.large" = 1.00')
    settings.write_text(text.replace('format = "auto"', 'format = "json"'))
    args = ["--config", str(settings)]
    assert run_cli(capsys, *args, "migrate")[0] == 0
    assert run_cli(capsys, *args, "client", "add", "--email", "ops@acme.com", "--name", "Acme")[0] == 0
    assert run_cli(capsys, *args, "client", "link", "1", "--openstack-project", "p-1")[0] == 0
    return args


def mails(directory: Path) -> list[EmailMessage]:
    found = []
    for path in sorted(directory.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


def test_each_threshold_crossed_gives_one_mail_under_var_mail_and_process_clients_twice_still_one(
    example: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = build_app(load_settings(Path(example[1])))
    run_vm(app, "p-1", "m1.large", 200)
    app.close()
    sink = tmp_path / "var" / "mail"

    def process_clients(hours: int) -> str:
        at = (START + timedelta(hours=hours)).isoformat()
        code, out, err = run_cli(capsys, *example, "process-clients", "--at", at)
        assert code == 0, err
        return out

    # A fresh client with no credit: already at zero, so both thresholds (72 h, 24 h) are crossed at once.
    assert "mail: sent BB-NOTIFY-1-24h-20260302T0100" in process_clients(1)
    process_clients(1)
    (below,) = mails(sink)
    assert below["Subject"] == "Your credit with Cloud services is below zero"
    assert "runs out" not in text_of(below)
    assert "Your services keep running" in text_of(below)  # the example leaves suspension off

    # A top-up of 200 leaves 198 at hour 2: the thresholds reset, then are crossed one at a time (72 h
    # left at hour 128, 24 h at hour 176), each mailed once however often process-clients runs.
    assert run_cli(capsys, *example, "credit", "add", "1", "200", "--reference", "bank-1")[0] == 0
    for hours in (2, 127, 128, 128, 129, 176, 176, 177):
        process_clients(hours)
    subjects = [message["Subject"] for message in mails(sink)]
    assert sorted(subjects) == sorted(
        [
            "Your credit with Cloud services is below zero",
            "Your credit with Cloud services runs out in about 72 hours",
            "Your credit with Cloud services runs out in about 24 hours",
        ]
    )
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in sink.glob("*.eml"))


def test_check_config_refuses_a_notification_template_the_operator_broke(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    brand = tmp_path / "brand"
    brand.mkdir()
    (brand / "mail_suspended.txt").write_text("Your services are off, {{ client.nmae }}\n")
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n[enrollment]\ntemplate_dir = "{brand}"\n')
    code, _, err = run_cli(capsys, "--config", str(settings), "check-config")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: mail template mail_suspended.txt: 'bridge.domain.clients.Client object' has no attribute "
        "'nmae'; fix the template in enrollment.template_dir"
    ]


def test_a_client_resumed_by_staff_is_told_its_services_run_again_once(
    example: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = tmp_path / "var" / "mail"
    assert run_cli(capsys, *example, "credit", "add", "1", "100", "--reference", "bank-1")[0] == 0
    assert run_cli(capsys, *example, "client", "suspend", "1", "--reason", "abuse report")[0] == 0
    assert run_cli(capsys, *example, "process-clients")[0] == 0
    assert run_cli(capsys, *example, "client", "resume", "1")[0] == 0
    for _ in range(2):
        assert run_cli(capsys, *example, "process-clients")[0] == 0

    by_subject = {message["Subject"]: message for message in mails(sink)}
    assert sorted(by_subject) == [
        "Your services with Cloud services are running again",
        "Your services with Cloud services are suspended",
    ]
    resumed = text_of(by_subject["Your services with Cloud services are running again"])
    assert "our staff have ended the suspension of your services" in resumed
    assert "openstack project p-1" in resumed
    assert "abuse report" not in resumed
