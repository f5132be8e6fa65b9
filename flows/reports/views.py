"""The analyst views of sql/reports/, created on a run's warehouse and read by the report.

`create_views(con)` creates (or replaces) every view on a writable connection: a run calls it on its
private copy, so the published warehouse carries them and analysts can query them directly. `reading`
opens a warehouse for the report without writing to it (see flows.reports.html).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources.abc import Traversable
from pathlib import Path

import duckdb

from flows.warehouse.lock import WarehouseLocked
from flows.warehouse.migrations import SQL
from flows.warehouse.store import STORED

REPORTS = SQL / "reports"


def view_files() -> list[Traversable]:
    """sql/reports/<view>.sql, in name order (each view reads base tables only, so order does not matter)."""
    return sorted((p for p in REPORTS.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)


def view_names() -> list[str]:
    return [path.name.removesuffix(".sql") for path in view_files()]


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create or replace every analyst view (and its comments) on a writable connection.

    Call it after the run has loaded the source: the views read raw_service_templates for names and
    invoice_tracking.source_currency for held invoices' currencies.
    """
    for path in view_files():
        con.execute(path.read_text())


@contextmanager
def reading(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory connection that sees the warehouse read-only, with the report views in memory."""
    con = duckdb.connect(":memory:")
    try:
        con.execute("set TimeZone = 'UTC'")
        literal = str(warehouse).replace("'", "''")
        try:
            con.execute(f"attach '{literal}' as warehouse (read_only)")
        except duckdb.IOException as problem:
            if "lock" in str(problem).lower():
                raise WarehouseLocked(
                    f"{warehouse}: another process has it open for writing; close it and try again"
                ) from None
            raise
        # its tables, and the views of the tables kept as Parquet parts (flows.warehouse.store)
        tables = con.execute(
            "select table_name from duckdb_tables() "
            "where database_name = 'warehouse' and schema_name = 'main' "
            "union all select view_name from duckdb_views() "
            "where database_name = 'warehouse' and schema_name = 'main' and view_name in (select unnest(?))",
            [[*STORED, "sent_batches"]],
        ).fetchall()
        for (table,) in tables:
            con.execute(f'create view main."{table}" as select * from warehouse.main."{table}"')
        create_views(con)
        yield con
    finally:
        con.close()
