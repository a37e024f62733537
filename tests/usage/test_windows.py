"""How each source's windows are cut from its watermark: plain values, no store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bridge.domain.usage import Window
from bridge.usage.sync import Current, Settled

NOW = datetime(2022, 10, 3, 10, 20, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2022, 10, day, hour, minute, tzinfo=UTC)


def test_solusvm_is_asked_from_the_watermarks_hour_to_the_end_of_the_current_hour() -> None:
    assert Current().cut(at(3, 7, 45), NOW, until=None, start=None) == [Window(at(3, 7), at(3, 11))]


def test_a_fresh_solusvm_source_starts_at_the_current_hour_and_ignores_until_and_start() -> None:
    cut = Current().cut(None, NOW, until=at(1, 0), start=at(1, 0))
    assert cut == [Window(at(3, 10), at(3, 11))]


def test_nova_gets_whole_settled_windows_from_the_watermark() -> None:
    settled = Settled(ZoneInfo("UTC"), length=timedelta(hours=1), settle=timedelta(minutes=30))
    cut = settled.cut(at(3, 7), NOW, until=None, start=None)
    assert cut == [Window(at(3, 7), at(3, 8)), Window(at(3, 8), at(3, 9))]
    assert settled.cut(at(3, 7), NOW, until=at(3, 8), start=at(3, 6)) == [
        Window(at(3, 6), at(3, 7)),
        Window(at(3, 7), at(3, 8)),
    ]
