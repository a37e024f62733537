"""The vendor fault matrix at CI size: every fault handled as its row says, with no duplicate and no loss.

The rows run once per session (module fixture), as ``table("ci")`` runs them; each row is then its own
test, so a failure names its fault.
"""

from __future__ import annotations

import pytest

from tests.reliability.faults import FAULTS, MIN_FAULTS, FaultResult, healthy, run_fault, table_of

Outcome = FaultResult | BaseException


@pytest.fixture(scope="module")
def ci_rows() -> dict[str, Outcome]:
    found: dict[str, Outcome] = {}
    for fault in FAULTS:
        try:
            found[fault.name] = run_fault(fault, "ci")
        except (Exception, pytest.skip.Exception) as error:  # a database that is not there skips its row
            found[fault.name] = error
    return found


def _row(ci_rows: dict[str, Outcome], name: str) -> FaultResult:
    outcome = ci_rows[name]
    if isinstance(outcome, pytest.skip.Exception):
        pytest.skip(str(outcome))
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@pytest.mark.parametrize(
    "name",
    [fault.name for fault in FAULTS],
)
def test_the_fault_is_handled_without_duplicate_or_loss(ci_rows: dict[str, Outcome], name: str) -> None:
    result = _row(ci_rows, name)
    assert result.as_expected, f"exit {result.exit_code}, expected {result.fault.expect}: {result.line}"
    assert result.recovered, f"the run after recovery ({result.recovery}) did not exit 0"
    assert (result.duplicates, result.losses) == (0, 0), result.cells()


def test_the_matrix_has_a_row_for_each_of_at_least_20_vendor_faults() -> None:
    names = [fault.name for fault in FAULTS]
    assert len(set(names)) == len(names) >= MIN_FAULTS


def test_the_ci_table_is_healthy(ci_rows: dict[str, Outcome]) -> None:
    table = table_of([_row(ci_rows, fault.name) for fault in FAULTS])
    assert healthy(table), table.render()
