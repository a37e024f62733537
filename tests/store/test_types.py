"""Money stays exact and time stays UTC on every database the bridge supports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select

from bridge.store.database import make_engine
from bridge.store.types import ExactDecimal, UTCDateTime, once_per_value

probe_metadata = MetaData()
probe = Table(
    "type_probe",
    probe_metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", ExactDecimal(24, 8)),
    Column("at", UTCDateTime()),
)


@pytest.fixture
def probe_engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    probe_metadata.create_all(engine)
    yield engine
    probe_metadata.drop_all(engine)
    engine.dispose()


def _roundtrip(engine: Engine, **values: object) -> tuple[Decimal | None, datetime | None]:
    with engine.begin() as connection:
        connection.execute(insert(probe).values(id=1, **values))
        row = connection.execute(select(probe.c.amount, probe.c.at)).one()
    return row.amount, row.at


def test_large_money_with_eight_places_comes_back_exact(probe_engine: Engine) -> None:
    amount, _ = _roundtrip(probe_engine, amount=Decimal("1234567890123456.12345678"))
    assert amount == Decimal("1234567890123456.12345678")
    assert isinstance(amount, Decimal)


def test_a_token_price_keeps_its_places_and_reads_back_at_the_column_scale(probe_engine: Engine) -> None:
    amount, _ = _roundtrip(probe_engine, amount=Decimal("0.001"))
    assert str(amount) == "0.00100000"


def test_float_money_is_refused(probe_engine: Engine) -> None:
    with pytest.raises(Exception, match="Decimal, not float"):
        _roundtrip(probe_engine, amount=0.1)


def test_more_places_than_the_column_keeps_is_refused_not_rounded(probe_engine: Engine) -> None:
    with pytest.raises(Exception, match="more than 8 decimal places"):
        _roundtrip(probe_engine, amount=Decimal("0.000000001"))


def test_time_comes_back_aware_in_utc_with_microseconds(probe_engine: Engine) -> None:
    berlin_winter = timezone(timedelta(hours=1))
    written = datetime(2022, 10, 31, 23, 59, 59, 123456, tzinfo=berlin_winter)
    _, at = _roundtrip(probe_engine, at=written)
    assert at == written
    assert at is not None and at.tzinfo == UTC
    assert at.hour == 22 and at.microsecond == 123456


def test_naive_time_is_refused(probe_engine: Engine) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        _roundtrip(probe_engine, at=datetime(2022, 11, 1))


def test_repeated_and_distinct_values_each_read_back_exact_and_aware(probe_engine: Engine) -> None:
    """Each distinct value is converted once and remembered (bridge/store/types.py ``once_per_value``):
    a repeated value, and one after many others, still reads back as written."""
    start = datetime(2022, 10, 1, tzinfo=UTC)
    written = [
        (Decimal(index % 3) + Decimal("0.12345678"), start + timedelta(hours=index % 5, microseconds=index))
        for index in range(40)
    ]
    with probe_engine.begin() as connection:
        rows = [{"id": n, "amount": amount, "at": at} for n, (amount, at) in enumerate(written, 1)]
        connection.execute(insert(probe), rows)
        for _ in range(2):
            read = connection.execute(select(probe.c.amount, probe.c.at).order_by(probe.c.id)).all()
            assert [(amount, at) for amount, at in read] == written
            assert all(at.tzinfo is UTC and str(amount).endswith("12345678") for amount, at in read)


def test_the_memo_starts_afresh_when_full_and_still_converts_every_value() -> None:
    seen: list[str] = []

    def parse(value: str) -> int:
        seen.append(value)
        return int(value)

    convert = once_per_value(parse, size=2)
    assert [convert(v) for v in ("1", "1", "2", "1", "3", "1")] == [1, 1, 2, 1, 3, 1]
    assert seen == ["1", "2", "3", "1"]  # "1" again once "3" filled the memo afresh


def test_a_zero_keeps_its_sign_after_the_other_zero_was_converted() -> None:
    """-0 and 0 are equal keys: a remembered -0.00 must never come back for a 0.00 (an invoice showing
    "-0.00"), so zeros are converted every time."""
    convert = once_per_value(lambda value: Decimal(value).quantize(Decimal("0.01")))
    assert str(convert(Decimal("-0"))) == "-0.00"
    assert str(convert(Decimal("0"))) == "0.00"
    assert str(convert(Decimal("-0.000"))) == "-0.00"
