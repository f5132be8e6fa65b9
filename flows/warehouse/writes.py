"""Writing the warehouse: raw tables, and a run's results.

All writes of a run go to the run's private working copy (see flows.run.publish) in one connection; bulk
loads go through Arrow (`INSERT ... SELECT * FROM frame`), never row by row.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from transforms.vocabulary import RUN_CODES

INVOICE = ["practice_id", "invoice_id"]


def arrow(frame: pl.DataFrame):
    """A frame as Arrow for DuckDB to read: plain (large) strings rather than Polars' string views,
    which DuckDB scans about twice as slowly (10M source lines: 7 s against 16 s on this machine)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.oldest())


def load_raw(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame], files: dict[str, str]) -> None:
    """Replace raw_<table> with the source as read (text columns and the source row number)."""
    for table, frame in frames.items():
        con.register("_frame", arrow(frame))
        con.execute(f"create or replace table raw_{table} as select * from _frame")
        con.unregister("_frame")
        con.execute(
            f"comment on table raw_{table} is 'The source file {files[table]} of the latest run, as text; _row is its data row.'"
        )


ROWS_PER_BATCH = 1_000_000


def create_temp(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """A table that lives for the run's connection only: never published."""
    con.register("_frame", arrow(frame))
    con.execute(f"create or replace temp table {name} as select * from _frame")
    con.unregister("_frame")


def read_raw(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    return pl.from_arrow(con.execute(f"select * from raw_{table}").fetch_arrow_table())


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """A query's result as a frame, streamed out of DuckDB batch by batch: a result materialised inside
    DuckDB counts against its memory_limit (2M invoices' headers do not fit in 1 GB), Arrow's do not."""
    return pl.from_arrow(con.execute(sql, params or []).fetch_record_batch(ROWS_PER_BATCH).read_all())


def insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Append a frame to a table by column name, through Arrow."""
    if frame.is_empty():
        return
    con.register("_frame", arrow(frame))
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    con.execute(f"insert into {table} ({columns}) select {columns} from _frame")
    con.unregister("_frame")


def delete_invoices(con: duckdb.DuckDBPyConnection, table: str, keys: pl.DataFrame) -> None:
    """Delete the rows of `table` belonging to the given (practice_id, invoice_id) pairs."""
    if keys.is_empty():
        return
    con.register("_keys", arrow(keys.select(INVOICE).unique()))
    con.execute(
        f"delete from {table} t using _keys k where t.practice_id = k.practice_id and t.invoice_id = k.invoice_id"
    )
    con.unregister("_keys")


def merge_exceptions(
    con: duckdb.DuckDBPyConnection,
    found: pl.DataFrame,
    scope: pl.DataFrame,
    now: datetime,
    *,
    unattributed: bool,
    codes: tuple[str, ...] = RUN_CODES,
) -> None:
    """Make `exceptions` hold what this run found for the invoices of `scope` (or, with `unattributed`,
    for the problems that belong to no invoice), among the exceptions of `codes` (a run's own codes by
    default: what `trackline push` recorded of Xero's answers is its own to close).

    A problem still found keeps its first_seen_at; one no longer found moves to exception_history.
    """
    con.register("_found", arrow(found.with_columns(pl.col("code", "severity").cast(pl.Utf8))))
    con.register("_scope", arrow(scope.select(INVOICE).unique()))
    of_codes = "e.code in (" + ", ".join(f"'{c}'" for c in codes) + ")"
    in_scope = (
        f"(e.invoice_id is null and {of_codes})"
        if unattributed
        else f"({of_codes} and exists (select 1 from _scope s where s.practice_id = e.practice_id and s.invoice_id = e.invoice_id))"
    )
    same = (
        "f.practice_id is not distinct from e.practice_id and f.invoice_id is not distinct from e.invoice_id "
        "and f.line_id is not distinct from e.line_id and f.code = e.code and f.detail = e.detail"
    )
    con.execute(
        f"""
        insert into exception_history by name
        select e.*, ?::timestamptz as closed_at from exceptions e
        where {in_scope} and not exists (select 1 from _found f where {same})
        """,
        [now],
    )
    con.execute(
        f"""
        create or replace temp table _kept as
        select f.practice_id, f.invoice_id, f.line_id, f.code, f.severity, f.detail,
               coalesce(e.first_seen_at, ?::timestamptz) as first_seen_at, ?::timestamptz as last_seen_at,
               f.fix
        from _found f left join (select * from exceptions e where {in_scope}) e on {same}
        """,
        [now, now],
    )
    con.execute(f"delete from exceptions e where {in_scope}")
    con.execute("insert into exceptions by name select * from _kept")
    con.execute("drop table _kept")
    con.unregister("_found")
    con.unregister("_scope")
