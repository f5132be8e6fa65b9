"""The PostgreSQL source (flows.sources.postgres) against a real PostgreSQL 15 (tests/sources/conftest.py):
the same source read from the database and from files gives the same tables and the same batch files, and
every way the database can be unusable stops the run in one line that never shows the password."""

from __future__ import annotations

import re

import pytest

from tests import warehouse_state
from tests.conftest import SAMPLE
from tests.doubles.postgres import PASSWORD, dump_parquet

ROW_IN_DETAIL = re.compile(r"\brows? \d+(, \d+)*")
FILE_SUFFIX = re.compile(r"\b([a-z_]+)\.(csv|parquet)\b")


def _comparable(tables):
    """The warehouse's tables with each detail's `row N` made one placeholder and `<table>.csv` its table:
    a file names its rows by their line, a database by their place in key order (flows.sources.postgres;
    the detail names the key as well)."""
    import polars as pl

    out = {}
    for name, frame in tables.items():
        if name.startswith("raw_"):
            frame = frame.drop("_row", strict=False)
        for column in ("detail", "fix", "source"):
            if column in frame.columns:
                frame = frame.with_columns(
                    pl.col(column)
                    .str.replace_all(ROW_IN_DETAIL.pattern, "<row>")
                    .str.replace_all(FILE_SUFFIX.pattern, "$1")
                )
        out[name] = frame.sort(frame.columns, nulls_last=True)
    return out


def _run(settings, run_plain, flow):
    return run_plain(settings, flow=flow, emit_batches=True)


@pytest.mark.parametrize("typed", [True, False], ids=["typed-columns", "text-columns"])
def test_sample_from_postgres_gives_the_same_tables_and_batch_files_as_from_files(
    pg_source, settings_for, run_plain, tmp_path, typed
):
    url = pg_source(SAMPLE, typed=typed)
    # Typed columns: the same rows as a typed Parquet snapshot; text columns: the CSV files themselves.
    files = dump_parquet(url, tmp_path / "snapshot") if typed else SAMPLE
    from_files = settings_for(files).model_copy(
        update={"warehouse": tmp_path / "files" / "w.duckdb", "out": tmp_path / "files" / "out"}
    )
    from_pg = settings_for(url).model_copy(
        update={"warehouse": tmp_path / "pg" / "w.duckdb", "out": tmp_path / "pg" / "out"}
    )
    for settings in (from_files, from_pg):
        summary = _run(settings, run_plain, "backfill")
        assert summary.invoices_ready > 0
    assert warehouse_state.files(from_pg.out) == warehouse_state.files(from_files.out)
    left = _comparable(warehouse_state.tables(from_pg.warehouse))
    right = _comparable(warehouse_state.tables(from_files.warehouse))
    for name in right:
        assert left[name].equals(right[name]), f"table {name} differs"


# Stops: one line naming the table, column and database; never the password ------------------------------


def _stop_line(settings, run_plain) -> str:
    from flows.run.stops import stop_sentence

    with pytest.raises(Exception) as stopped:
        run_plain(settings, flow="backfill")
    sentence = stop_sentence(stopped.value)
    assert sentence is not None, f"not a stop: {stopped.value!r}"
    assert "\n" not in sentence
    assert PASSWORD not in sentence
    return sentence


def _drop(url: str, sql: str) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url, autocommit=True) as con, con.cursor() as cur:
        cur.execute(sql)


def test_missing_table_stops_the_run_naming_table_and_database(pg_source, postgres, settings_for, run_plain):
    url = pg_source(SAMPLE)
    _drop(url, "drop table team_members")
    line = _stop_line(settings_for(url), run_plain)
    database = url.rsplit("/", 1)[1]
    assert line == f"{postgres.url(database, password=False)}: table public.team_members is missing"


def test_missing_column_stops_the_run_naming_table_column_and_database(
    pg_source, postgres, settings_for, run_plain
):
    url = pg_source(SAMPLE)
    _drop(url, "alter table invoice_lines drop column unit_amount")
    line = _stop_line(settings_for(url), run_plain)
    database = url.rsplit("/", 1)[1]
    assert (
        line
        == f"{postgres.url(database, password=False)}: table public.invoice_lines has no column unit_amount"
    )


def test_tables_in_another_schema_are_read_from_it(pg_database, settings_for, run_plain):
    from tests.doubles.postgres import load_source

    url = pg_database()
    load_source(url, SAMPLE, schema="practice_app")
    assert "table public.practices is missing" in _stop_line(settings_for(url), run_plain)
    summary = run_plain(settings_for(url, source_schema="practice_app"), flow="backfill")
    assert summary.invoices_ready > 0


def test_refused_connection_is_one_line(postgres, settings_for, run_plain):
    from tests.doubles.postgres import _free_port

    url = f"postgresql://trackline:{PASSWORD}@127.0.0.1:{_free_port()}/nowhere"
    line = _stop_line(settings_for(url), run_plain)
    assert line.startswith("postgresql://trackline@127.0.0.1:")
    assert "cannot connect (Connection refused)" in line


def test_failed_login_is_one_line_without_the_password(pg_source, postgres, settings_for, run_plain):
    url = pg_source(SAMPLE)
    wrong = url.replace(PASSWORD, "not-" + PASSWORD)
    line = _stop_line(settings_for(wrong), run_plain)
    assert 'cannot connect (password authentication failed for user "trackline")' in line
    assert "not-" not in line


def test_password_from_pgpassword_or_pgpass(
    pg_source, postgres, settings_for, run_plain, tmp_path, monkeypatch
):
    url = pg_source(SAMPLE)
    bare = url.replace(f":{PASSWORD}@", "@")
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert run_plain(settings_for(bare), flow="backfill").invoices_ready > 0
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{postgres.port}:*:trackline:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    settings = settings_for(bare).model_copy(update={"warehouse": tmp_path / "w2" / "w.duckdb"})
    assert run_plain(settings, flow="backfill").invoices_ready > 0


# The nightly: what changed, read in PostgreSQL ------------------------------------------------------------


def _late_change(url: str, minutes_before_watermark: int) -> str:
    """Change one approved, ready invoice's first line amount, with an updated_at some minutes before the
    latest one (as a transaction that committed late would): the invoice_id changed."""
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(url, autocommit=True) as con, con.cursor() as cur:
        cur.execute(
            "select i.invoice_id from invoices i join practices p using (practice_id) "
            "where i.status = 'approved' and p.ledger = 'xero' and i.practice_id = 'harbour' "
            "and i.invoice_id in (select invoice_id from invoice_lines where practice_id = 'harbour' "
            "and line_type = 'adhoc' and unit_amount::text ~ '^[0-9.]+$') "
            "order by i.invoice_id limit 1"
        )
        (invoice,) = cur.fetchone()
        cur.execute(
            "update invoice_lines set unit_amount = unit_amount::numeric + 1 where practice_id = 'harbour' "
            f"and invoice_id = '{invoice}' and line_type = 'adhoc'"
        )
        cur.execute(
            "update invoices set updated_at = (select max(updated_at) from invoices) "
            f"- interval '{minutes_before_watermark} minutes' where practice_id = 'harbour' and invoice_id = '{invoice}'"
        )
    return invoice


@pytest.mark.parametrize(
    "overlap, picked", [(10, True), (2, False)], ids=["within-overlap", "before-overlap"]
)
def test_nightly_reads_what_changed_since_the_watermark_less_the_overlap(
    pg_source, settings_for, run_plain, tmp_path, overlap, picked
):
    url = pg_source(SAMPLE)
    from_pg = settings_for(url, source_overlap_minutes=overlap)
    from_files = settings_for(tmp_path / "before", source_overlap_minutes=overlap).model_copy(
        update={"warehouse": tmp_path / "f" / "w.duckdb", "out": tmp_path / "f" / "out"}
    )
    dump_parquet(url, tmp_path / "before")
    first = run_plain(from_pg, flow="nightly")
    assert first.batches_written > 0
    assert run_plain(from_pg, flow="nightly").batches_written == 0  # unchanged input: no new batch
    run_plain(from_files, flow="nightly")
    _late_change(url, minutes_before_watermark=5)
    late = run_plain(from_pg, flow="nightly")
    assert late.invoices_batched == (1 if picked else 0)
    # The same nights from files (the database as a Parquet snapshot each night) write the same batches.
    dump_parquet(url, tmp_path / "after")
    run_plain(from_files.model_copy(update={"source": tmp_path / "after"}), flow="nightly")
    assert warehouse_state.files(from_files.out) == warehouse_state.files(from_pg.out)


# Edge cases: NUMERIC exact, values out of range held as a file's are --------------------------------------


def test_numeric_is_exact_and_out_of_range_values_are_held_as_from_files(
    pg_source, settings_for, run_plain, tmp_path
):
    from decimal import Decimal

    import duckdb

    from tests.source_builder import SourceBuilder

    source = SourceBuilder()
    source.invoice("p1", "i-big").line("p1", "i-big", "l1", unit_amount="987654321098.7654")
    source.invoice("p1", "i-places").line("p1", "i-places", "l1", unit_amount="1.23456")
    source.invoice("p1", "i-huge").line("p1", "i-huge", "l1", quantity="123456789012345")
    source.invoice("p1", "i-fine").line("p1", "i-fine", "l1", quantity="2.5", unit_amount="10.0001")
    folder = source.write(tmp_path / "csv")
    url = pg_source(folder)  # quantity and unit_amount are NUMERIC columns: every value fits
    from_pg = settings_for(url)
    from_files = settings_for(folder).model_copy(
        update={"warehouse": tmp_path / "f" / "w.duckdb", "out": tmp_path / "f" / "out"}
    )
    for settings in (from_pg, from_files):
        run_plain(settings, flow="backfill")
    assert warehouse_state.files(from_pg.out) == warehouse_state.files(from_files.out)
    left = _comparable(warehouse_state.tables(from_pg.warehouse))
    right = _comparable(warehouse_state.tables(from_files.warehouse))
    for name in ("xero_line_items", "exceptions", "line_tracking"):
        assert left[name].equals(right[name]), f"table {name} differs"
    con = duckdb.connect(str(from_pg.warehouse), read_only=True)
    try:
        sent = dict(
            (r[0], (r[1], r[2]))
            for r in con.execute(
                "select invoice_id, unit_amount, line_amount from xero_line_items"
            ).fetchall()
        )
        held = sorted(
            con.execute("select invoice_id, code, detail from exceptions order by invoice_id").fetchall()
        )
    finally:
        con.close()
    assert sent["i-big"] == (Decimal("987654321098.7654"), Decimal("987654321098.77"))
    assert sent["i-fine"] == (Decimal("10.0001"), Decimal("25.00"))
    assert [(i, c) for i, c, _ in held] == [("i-huge", "INVALID_VALUE"), ("i-places", "INVALID_VALUE")]
    assert "quantity" in held[0][2] and "unit_amount" in held[1][2]
