"""The crash-injection table at CI size (``make reliability`` builds it at full size): the pipeline killed
and paused at seeded points on SQLite and PostgreSQL ends with nothing doubled, lost or changed."""

from __future__ import annotations

from tests.reliability import crash


def test_killed_and_paused_at_seeded_points_the_pipeline_doubles_loses_and_changes_nothing() -> None:
    table = crash.table("ci")

    assert crash.healthy(table), table.render()
    assert table.totals["kill points tried"] >= 30
    assert table.totals["SIGSTOP points tried"] >= 4
