"""Read a warehouse as comparable data: every table, sorted, without run ids and timestamps."""

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
}


def tables(path: Path, skip: tuple[str, ...] = ("runs", "schema_migrations")) -> dict[str, pl.DataFrame]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_type = 'BASE TABLE' order by 1"
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
