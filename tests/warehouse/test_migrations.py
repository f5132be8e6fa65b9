"""The warehouse's numbered migrations: a warehouse made by an earlier version is brought up to date
without losing a row, a comment or a NOT NULL."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from flows.warehouse.migrations import SQL, apply_migrations

HISTORY_TABLES = ("invoice_tracking", "line_tracking", "xero_invoices", "xero_line_items", "export_ledger")


def _migrations_up_to(folder, *names: str):
    """A folder holding only the given migrations, as an earlier version of trackline had them."""
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(SQL / "migrations" / name, folder / name)
    return folder


@pytest.fixture
def old_warehouse(tmp_path):
    """A warehouse as migrations 001 and 002 left it, holding one invoice and one line."""
    old = _migrations_up_to(tmp_path / "old_migrations", "001_core.sql", "002_source_in_memory.sql")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    apply_migrations(con, old)
    con.execute(
        "insert into invoice_tracking (practice_id, invoice_id, invoice_state) values ('p1', 'i1', 'ready')"
    )
    con.execute(
        "insert into line_tracking (practice_id, invoice_id, line_id, invoice_state) "
        "values ('p1', 'i1', 'l1', 'ready')"
    )
    yield con
    con.close()


def _keys(con) -> dict[str, int]:
    return dict(
        con.execute(
            "select table_name, count(*) from duckdb_constraints() "
            "where constraint_type = 'PRIMARY KEY' group by all"
        ).fetchall()
    )


def test_history_tables_lose_their_keys_and_keep_rows_comments_and_not_nulls(old_warehouse, tmp_path):
    con = old_warehouse
    comments_before = con.execute(
        "select table_name, column_name, comment from duckdb_columns() order by all"
    ).fetchall()
    assert set(HISTORY_TABLES) <= set(_keys(con))

    later = _migrations_up_to(
        tmp_path / "later", "001_core.sql", "002_source_in_memory.sql", "003_no_keys_on_history_tables.py"
    )
    assert apply_migrations(con, later) == ["003_no_keys_on_history_tables"]

    assert not set(HISTORY_TABLES) & set(_keys(con))
    assert {"runs", "xero_batches"} <= set(_keys(con))  # small tables keep theirs
    assert con.execute("select practice_id, invoice_id, line_id from line_tracking").fetchall() == [
        ("p1", "i1", "l1")
    ]
    assert con.execute("select count(*) from invoice_tracking").fetchone() == (1,)
    comments_after = con.execute(
        "select table_name, column_name, comment from duckdb_columns() order by all"
    ).fetchall()
    assert comments_after == comments_before
    assert (
        con.execute("select comment from duckdb_tables() where table_name = 'line_tracking'")
        .fetchone()[0]
        .startswith("One row per source line")
    )
    with pytest.raises(duckdb.ConstraintException):
        con.execute(
            "insert into line_tracking (practice_id, invoice_id, line_id, invoice_state) values "
            "('p1', null, 'l2', 'ready')"
        )


def test_migrations_run_once(old_warehouse):
    apply_migrations(old_warehouse)
    assert apply_migrations(old_warehouse) == []


def test_batches_written_before_unit_dp_was_recorded_say_unknown(old_warehouse):
    con = old_warehouse
    con.execute(
        "insert into xero_batches values ('p1-000001', 'p1', 'r1', 'xero/p1/p1-000001.json', "
        "'xero/p1/p1-000001.csv', 1, 1, 100, now())"
    )
    assert "004_batch_unit_dp_and_folders" in apply_migrations(con)
    assert con.execute("select batch_id, unit_dp from xero_batches").fetchall() == [("p1-000001", None)]
    comment = con.execute(
        "select comment from duckdb_columns() where table_name = 'xero_batches' and column_name = 'unit_dp'"
    ).fetchone()[0]
    assert "unitdp=4" in comment
