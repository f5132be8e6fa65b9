"""The DuckDB peer: the per-line result as the one query in peer_duckdb.sql, over raw text tables.

Loading (Parquet or CSV files, or frames already in memory, into DuckDB tables `raw_<table>`) is kept apart
from resolving, so the benchmark times only the query, on tables already in memory, as it does trackline.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

SQL_PATH = Path(__file__).resolve().with_name("peer_duckdb.sql")
TABLES = (
    "practices",
    "tracking_categories",
    "tracking_options",
    "team_members",
    "service_templates",
    "clients",
    "invoices",
    "invoice_lines",
)
RESULT = "peer_result"


def query() -> str:
    return SQL_PATH.read_text()


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory database: every core and 80% of RAM by DuckDB's defaults, or the limits given (DuckDB
    spills to disk rather than pass its memory limit)."""
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"set threads = {int(threads)}")
    if memory_limit:
        con.execute(f"set memory_limit = '{memory_limit.replace(chr(39), '')}'")
    return con


def load_files(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """raw_<table> from `<table>.parquet` (or `.csv`): every column as text, `_row` the 1-based data row."""
    for table in TABLES:
        parquet, csv = Path(folder) / f"{table}.parquet", Path(folder) / f"{table}.csv"
        if parquet.is_file():
            con.execute(
                f"""create or replace table raw_{table} as
                    select columns(* exclude (file_row_number))::varchar, (file_row_number + 1)::bigint as _row
                    from read_parquet(?, file_row_number = true)""",
                [str(parquet)],
            )
        else:  # CSV: read in file order on one thread so that row_number() is the file's row
            con.execute("set preserve_insertion_order = true")
            con.execute(
                f"""create or replace table raw_{table} as
                    select *, row_number() over ()::bigint as _row
                    from read_csv(?, all_varchar = true, header = true)""",
                [str(csv)],
            )


def load_frames(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame]) -> None:
    """raw_<table> from text frames that carry `_row` (as flows.sources.files.read_source gives them)."""
    for table in TABLES:
        arrow = frames[table].to_arrow()
        con.register("_frame", arrow)
        con.execute(f"create or replace table raw_{table} as select * from _frame")
        con.unregister("_frame")


def resolve(con: duckdb.DuckDBPyConnection) -> int:
    """Run the query into the table peer_result; return its row count."""
    con.execute(f"create or replace temp table {RESULT} as {query()}")
    return con.execute(f"select count(*) from {RESULT}").fetchone()[0]


def result(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return pl.from_arrow(con.execute(f"select * from {RESULT}").fetch_arrow_table())


def resolve_frames(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The whole peer on frames in memory: load, query, fetch."""
    con = connect()
    try:
        load_frames(con, frames)
        resolve(con)
        return result(con)
    finally:
        con.close()
