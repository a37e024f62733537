"""Running the command line in-process, as an operator would from a shell."""

from __future__ import annotations

import pytest

from bridge.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``billing-bridge ARGS``: its exit code, standard output and standard error."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err
