"""Every row of every table, to compare a store before and after something that must change nothing."""

from __future__ import annotations

from sqlalchemy import select

from bridge.store.database import make_engine
from bridge.store.tables import metadata

StoreDump = dict[str, list[tuple[object, ...]]]


def dump_store(database_url: str, *, ignore: frozenset[str] = frozenset()) -> StoreDump:
    """Table name -> its rows in primary-key order; ``ignore`` names ``table.column`` cells left out."""
    engine = make_engine(database_url)
    dump: StoreDump = {}
    try:
        with engine.connect() as connection:
            for table in metadata.sorted_tables:
                columns = [column for column in table.columns if f"{table.name}.{column.name}" not in ignore]
                query = select(*columns).order_by(*table.primary_key.columns)
                dump[table.name] = [tuple(row) for row in connection.execute(query)]
    finally:
        engine.dispose()
    return dump
