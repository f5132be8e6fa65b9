"""The store's reads of a few invoices (flows.warehouse.store.current_rows_sql) against its views."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flows.warehouse.store import STORED, Store, store_folder
from tests.source_builder import SourceBuilder


@pytest.fixture
def warehouse(tmp_path, settings_for, run_plain) -> Path:
    """Two runs: i2 recomputed with a new amount by the second, so an older part still holds its old rows."""
    builder = SourceBuilder()
    for n in range(1, 5):
        builder.invoice("p1", f"i{n}", updated_at=f"2026-01-0{n}T09:00:00Z")
        builder.line("p1", f"i{n}", "l1", unit_amount=f"{n}00.00")
        builder.line("p1", f"i{n}", "l2", template="svc-accounts")
    settings = settings_for(builder.write(tmp_path / "src"))
    run_plain(settings, flow="nightly")
    for row in builder.rows["invoice_lines"]:
        if row["invoice_id"] == "i2" and row["line_id"] == "l1":
            row["unit_amount"] = "250.00"
    for row in builder.rows["invoices"]:
        if row["invoice_id"] == "i2":
            row["updated_at"] = "2026-02-01T09:00:00Z"
    builder.write(tmp_path / "src")
    run_plain(settings, flow="nightly")
    return Path(settings.warehouse)


@pytest.mark.parametrize("table", STORED)
def test_the_current_rows_of_a_few_invoices_are_the_views_rows_of_them(warehouse, table):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        store = Store(con, store_folder(warehouse))
        parts = con.execute("select count(distinct part) from store_index").fetchone()[0]
        assert parts == 2, "i2 is in the second run's part, the others in the first's"
        con.execute(
            "create temp table wanted as select * from (values ('p1', 'i2'), ('p1', 'i3')) v(practice_id, invoice_id)"
        )
        store_columns = list(store.schema(table))
        columns = ", ".join(f'"{c}"' for c in store_columns)
        few = con.execute(
            f"select {columns} from ({store.current_rows_sql(table, 'select * from wanted')}) order by all"
        ).fetchall()
        viewed = con.execute(
            f"select {columns} from {table} semi join wanted using (practice_id, invoice_id) order by all"
        ).fetchall()
    finally:
        con.close()
    assert few == viewed and few, f"{table}: the rows of i2 and i3 as the view shows them"
    if table == "xero_line_items":
        rows = [dict(zip(store_columns, r, strict=True)) for r in few]
        (first,) = [r for r in rows if r["invoice_id"] == "i2" and r["line_no"] == 1]
        assert first["unit_amount"] == 250, "i2's new line, not its old one"
