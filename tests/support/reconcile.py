"""`billing-bridge reconcile` on the day of the reconciliation story (support/reconciliation_store.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.bootstrap import App, build_app
from bridge.clock import FixedClock
from bridge.settings import Settings
from tests.support import reconciliation_store as story
from tests.support.cli import run_cli


def at_as_of(settings: Settings, **edges: Any) -> App:
    """The app a command builds, with the clock on the story's day."""
    return build_app(settings, clock=FixedClock(story.AS_OF), **edges)


def reconcile(capsys: pytest.CaptureFixture[str], config: list[str], *args: str) -> tuple[int, str, str]:
    """``billing-bridge CONFIG reconcile ARGS`` on the story's day."""
    return run_cli(capsys, *config, "reconcile", *args, app_factory=at_as_of)
