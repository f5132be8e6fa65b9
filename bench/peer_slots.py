"""The bare slot peer: bench/peer_slots.sql (R1-R4 only) over a source's Parquet files, into Arrow.

    python -m bench.peer_slots bench/data/2M-typed      # one run in this process: rows, seconds

The query reads the files itself (`read_parquet`, no loading step) and the result is materialised as one
pyarrow Table (`to_arrow_table()`; DuckDB 1.5's `.arrow()` is a lazy RecordBatchReader and
`fetch_arrow_table()` is deprecated). The bench (`python -m bench.run --pieces slots`) times it in a
fresh process on a typed source (`python -m bench.generate <size> --typed`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from bench.peer_duckdb import connect

SQL_PATH = Path(__file__).resolve().with_name("peer_slots.sql")
TABLES = (
    "invoice_lines",
    "invoices",
    "clients",
    "service_templates",
    "team_members",
    "tracking_options",
    "tracking_categories",
)


def query() -> str:
    return SQL_PATH.read_text()


def files(folder: Path) -> dict[str, str]:
    """The query's parameters: each table's Parquet file in `folder`."""
    found = {table: Path(folder) / f"{table}.parquet" for table in TABLES}
    missing = [str(path) for path in found.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)}")
    return {table: str(path) for table, path in found.items()}


def resolve(con: duckdb.DuckDBPyConnection, folder: Path) -> pa.Table:
    """Every approved invoice line's two slots, as a pyarrow Table."""
    return con.execute(query(), files(folder)).to_arrow_table()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    con = connect()
    for folder in argv:
        started = time.perf_counter()
        table = resolve(con, Path(folder))
        print(f"{folder}: {table.num_rows:,} rows, {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
