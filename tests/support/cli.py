"""Running the command line in-process, as an operator would from a shell."""

from __future__ import annotations

import pytest

from bridge.cli import main
from bridge.cli.base import AppFactory


def run_cli(
    capsys: pytest.CaptureFixture[str], *args: str, app_factory: AppFactory | None = None
) -> tuple[int, str, str]:
    """``billing-bridge ARGS``: its exit code, standard output and standard error; ``app_factory`` builds
    the app the command runs on (a test's clock or fakes), as the CLI's own factory would."""
    with pytest.raises(SystemExit) as exited:
        main(list(args), app_factory=app_factory)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err
