"""Configuration keys that do nothing yet are refused (issue 15 points 4, 5, 6): a setting acts or is refused,
with one line naming the key and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.cli import main


@pytest.mark.parametrize(
    ("key", "fix"),
    [
        ("mark_invoiced_periods_paid = true", "nothing marks externally billed periods paid"),
        ("issue_invoice_days_before_due = 3", "the bridge issues no pre-paid service invoices"),
    ],
)
def test_check_config_refuses_a_configuration_key_that_does_not_act(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, fix: str
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n[configurations.resellers]\n{key}\n')
    with pytest.raises(SystemExit) as exited:
        main(["--config", str(path), "check-config"])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    name = key.split(" =")[0]
    assert f"configurations.resellers.{name}: not accepted yet: {fix}" in err
    assert "delete this key" in err
    assert len(err.strip().splitlines()) == 1
