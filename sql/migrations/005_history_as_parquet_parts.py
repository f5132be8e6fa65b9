"""Keep the tables that grow with history as Parquet parts beside the warehouse (flows.warehouse.store).

Each of invoice_tracking, line_tracking, xero_invoices and xero_line_items becomes a view of the same name
over its parts; its empty template (columns, types, comments) moves to the schema `store`, so a view has
the same columns and comments as the table had. batch_id is no longer stored: the views read it from
export_ledger (view sent_batches). raw_invoices and raw_invoice_lines come back, as views over the source
rows each part was resolved from. The rows a warehouse already holds move into one part, `migrated-...`.

The store's folder comes from the DuckDB variable `trackline_store` (a run sets it to the folder beside the
warehouse it publishes); without it, the folder beside the database file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flows.warehouse.store import BATCHED, INVOICE, Store, part_name

HISTORY = ("invoice_tracking", "line_tracking", "xero_invoices", "xero_line_items")
RAW_COLUMNS = {
    "raw_invoices": (
        "practice_id",
        "invoice_id",
        "client_id",
        "invoice_number",
        "issue_date",
        "due_date",
        "currency",
        "reference",
        "status",
        "updated_at",
    ),
    "raw_invoice_lines": (
        "practice_id",
        "invoice_id",
        "line_id",
        "position",
        "line_type",
        "service_template_id",
        "description",
        "quantity",
        "unit_amount",
        "account_code",
        "tax_type",
    ),
}
RAW_COMMENTS = {
    "raw_invoices": "Every invoices row of the source that the warehouse's current results were resolved "
    "from, as the run that resolved it read it (text; _row is its data row in that run's source), and the "
    "rows without keys of the latest run.",
    "raw_invoice_lines": "Every invoice_lines row of the source that the warehouse's current results were "
    "resolved from, as the run that resolved it read it (text; _row is its data row in that run's "
    "source), and the latest run's lines that no invoice could take (orphans, rows without keys).",
}


def _store_root(con) -> Path:
    value = con.execute("select getvariable('trackline_store')").fetchone()[0]
    if value:
        return Path(value)
    path = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()[0]
    return Path(path).with_name(Path(path).name + ".parts")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def migrate(con) -> None:
    # store: the empty templates of the tables kept as Parquet parts (their columns, types and comments)
    con.execute("create schema if not exists store")
    for table in HISTORY:
        keep = [
            c
            for (c,) in con.execute(
                "select column_name from duckdb_columns() where schema_name = 'main' and table_name = ? "
                "order by column_index",
                [table],
            ).fetchall()
            if not (table in BATCHED and c == "batch_id")
        ]
        listed = ", ".join(f'"{c}"' for c in keep)
        con.execute(f"create table store.{table} as select {listed} from main.{table} limit 0")
        comment = con.execute(
            "select comment from duckdb_tables() where schema_name = 'main' and table_name = ?", [table]
        ).fetchone()[0]
        statements = [f"comment on table store.{table} is {_quoted(comment)}"] if comment else []
        statements += [
            f'comment on column store.{table}."{column}" is {_quoted(text)}'
            for column, text in con.execute(
                "select column_name, comment from duckdb_columns() where schema_name = 'main' and table_name = ?",
                [table],
            ).fetchall()
            if text and column in keep
        ]
        con.execute(";\n".join(statements))
    for table, columns in RAW_COLUMNS.items():
        listed = ", ".join(f'"{c}" varchar' for c in columns)
        con.execute(f"create table store.{table} ({listed}, _row bigint)")
        con.execute(f"comment on table store.{table} is {_quoted(RAW_COMMENTS[table])}")
        for column in columns:
            con.execute(
                f"comment on column store.{table}.\"{column}\" is "
                f"{_quoted(f'The source column {column}, as read (as text).')}"
            )
        con.execute(
            f"comment on column store.{table}._row is 'The row of the source table (1-based data row) the run read.'"
        )

    con.execute(
        """
        create table store_index (
            practice_id varchar,
            invoice_id varchar,
            part varchar not null,
            loose boolean not null
        )
        """
    )
    con.execute(
        "comment on table store_index is 'Which part of the store holds each invoice''s current rows of the "
        "stored tables (line_tracking, invoice_tracking, xero_invoices, xero_line_items, raw_invoices, "
        "raw_invoice_lines): one row per practice_id, invoice_id. The views show a part''s rows only for the "
        "invoices it points at that part.'"
    )
    con.execute("comment on column store_index.practice_id is 'The practice (null for a source row without one).'")
    con.execute("comment on column store_index.invoice_id is 'The invoice (null for a source row without one).'")
    con.execute("comment on column store_index.part is 'The part (folder <warehouse>.parts/<part>/) holding its rows.'")
    con.execute(
        "comment on column store_index.loose is 'true for source rows no invoice could take (orphan lines, rows without keys): read afresh by every run.'"
    )
    con.execute("create table store_parts (part varchar primary key, run_id varchar not null, dropped_by varchar)")
    con.execute("comment on table store_parts is 'Every part of the store a committed run wrote.'")
    con.execute("comment on column store_parts.part is 'The part: <run_id>-<chunk>.'")
    con.execute("comment on column store_parts.run_id is 'The run that wrote it.'")
    con.execute(
        "comment on column store_parts.dropped_by is 'The run after which the part held no current invoice; its files are deleted one run later.'"
    )
    con.execute(
        """
        create view sent_batches as
        with latest as (
            select practice_id, invoice_id, digest, batch_id,
                   row_number() over (partition by practice_id, invoice_id
                                      order by batched_at desc, batch_id desc) as n
            from export_ledger
        )
        select t.practice_id, t.invoice_id, l.batch_id
        from main.invoice_tracking t join latest l using (practice_id, invoice_id)
        where l.n = 1 and l.digest = t.digest
        """
    )

    # The rows the warehouse holds today become one part.
    root = _store_root(con)
    held = con.execute("select count(*) from main.invoice_tracking").fetchone()[0]
    part = part_name("migrated-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"), 0)
    if held:
        folder = root / part
        folder.mkdir(parents=True, exist_ok=True)
        for table in HISTORY:
            keep = ", ".join(
                f'"{c}"'
                for (c,) in con.execute(
                    "select column_name from duckdb_columns() where schema_name = 'store' and table_name = ? "
                    "order by column_index",
                    [table],
                ).fetchall()
            )
            target = _quoted(str(folder / f"{table}.parquet"))
            con.execute(f"copy (select {keep} from main.{table}) to {target} (format parquet)")
        con.execute(
            f"insert into store_index select distinct {', '.join(INVOICE)}, ?, false from main.invoice_tracking",
            [part],
        )
        con.execute("insert into store_parts values (?, 'migrated', null)", [part])
    for table in HISTORY:
        con.execute(f"drop table main.{table}")
    Store(con, root).refresh_views()
