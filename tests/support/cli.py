"""Running the command line in-process, as an operator would from a shell."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.cli import main
from bridge.cli.base import AppFactory
from bridge.clock import Clock
from bridge.settings import Settings


def run_cli(
    capsys: pytest.CaptureFixture[str], *args: str, app_factory: AppFactory | None = None
) -> tuple[int, str, str]:
    """``billing-bridge ARGS``: its exit code, standard output and standard error; ``app_factory`` builds
    the app the command runs on (a test's clock or fakes), as the CLI's own factory would."""
    with pytest.raises(SystemExit) as exited:
        main(list(args), app_factory=app_factory)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out, captured.err


def cli_at(
    config: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``billing-bridge --config CONFIG ARGS`` on an app whose clock is the test's ``clock``."""

    def build(settings: Settings, **edges: Any) -> App:
        return build_app(settings, clock=clock, **edges)

    return lambda *args: run_cli(capsys, "--config", str(config), *args, app_factory=build)
