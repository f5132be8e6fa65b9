"""Read a warehouse as comparable data: every table (and every table kept as Parquet parts, through its
view), sorted, without run ids, part names and timestamps."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

VOLATILE = {
    "run_id",
    "started_at",
    "finished_at",
    "first_seen_at",
    "last_seen_at",
    "closed_at",
    "created_at",
    "batched_at",
    "part",  # store_index: which part holds an invoice's rows is named after the run that wrote it
}


def tables(
    path: Path, skip: tuple[str, ...] = ("runs", "schema_migrations", "store_parts")
) -> dict[str, pl.DataFrame]:
    from flows.warehouse.store import STORED

    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'main' "
                "and (table_type = 'BASE TABLE' or table_name in (select unnest(?))) order by 1",
                [list(STORED)],
            ).fetchall()
        ]
        out = {}
        for name in names:
            if name in skip:
                continue
            frame = pl.from_arrow(con.execute(f'select * from "{name}"').fetch_arrow_table())
            frame = frame.drop([c for c in frame.columns if c in VOLATILE])
            out[name] = frame.sort(frame.columns, nulls_last=True)
        return out
    finally:
        con.close()


def files(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    assert sorted(left) == sorted(right)
    for name in left:
        assert left[name].equals(right[name]), f"table {name} differs"


def materialize_stored_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Turn the views of the tables kept as Parquet parts into plain tables of this connection's
    warehouse (a test's own copy), for tests that break a warehouse on purpose with DELETE or UPDATE."""
    from flows.warehouse.store import STORED

    for table in STORED:
        con.execute(f"create table main._materialized as select * from main.{table}")
        con.execute(f"drop view main.{table}")
        con.execute(f"alter table main._materialized rename to {table}")
