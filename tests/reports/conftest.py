"""The every-bucket October of tests/domain/reconciliation_scenario.py, reconciled, and one with a defect."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.domain.reconciliation import Report, reconcile
from bridge.reports.html_report import render_html
from tests.domain import reconciliation_scenario as story


@pytest.fixture(scope="session")
def october() -> Report:
    return reconcile(story.OCTOBER, story.every_bucket(), story.clouds())


@pytest.fixture(scope="session")
def double_billed() -> Report:
    """Ada's web-1 billed one hour too many: a late line on INV-2022-0009 on top of the full month."""
    clients = story.every_bucket()
    ada = clients[0]
    extra = story.line("INV-2022-0009", "web-1", "1", "0.10", late=True)
    clients[0] = replace(ada, lines=(*ada.lines, extra))
    return reconcile(story.OCTOBER, clients, story.clouds())


@pytest.fixture(scope="session")
def october_page(october: Report) -> str:
    return render_html(october)


@pytest.fixture(scope="session")
def double_billed_page(double_billed: Report) -> str:
    return render_html(double_billed)
