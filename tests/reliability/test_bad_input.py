"""The bad-input table at CI size: every case is refused with exit 2, one line naming the field, and a
store unchanged (tests/reliability/bad_input.py); ``make reliability`` runs it whole."""

from __future__ import annotations

import pytest

from tests.reliability.bad_input import CASES, healthy, table
from tests.reliability.table import Table


@pytest.fixture(scope="module")
def ci() -> Table:
    return table("ci")


def test_the_full_table_has_at_least_120_cases_of_each_kind_of_input() -> None:
    assert len(CASES) >= 120
    kinds = {case.name.split(":", 1)[0] for case in CASES}
    assert kinds == {"settings", "cli", "vendor"}
    assert len({case.name for case in CASES}) == len(CASES), "every case has its own name"


def test_the_ci_table_refuses_every_bad_input_with_exit_2_one_line_and_nothing_changed(ci: Table) -> None:
    assert ci.totals["tried"] >= 40
    unhandled = {row[0] for row in ci.rows if row[-1] != "yes"}
    assert unhandled == set(), "\n" + ci.render()
    assert healthy(ci)
