"""Drop the primary keys of the tables that grow with history.

DuckDB keeps a primary key as an ART index, which a run loads whole before it inserts or deletes a row:
at ten million lines that cost a nightly of ten thousand invoices most of its time (deleting their old
rows took 6.4 s with the key, 0.5 s without) and made the index larger than the data. Uniqueness stays
checked: every run's accounting check (flows/run/accounting.py) fails the run, publishing nothing, when an
invoice has more than one state or a line more than one row.

DuckDB cannot drop a constraint, so each table is rebuilt with the same columns, types, NOT NULLs (the key's
columns stay NOT NULL) and comments, and no key.
"""

from __future__ import annotations

import re

TABLES = ("invoice_tracking", "line_tracking", "xero_invoices", "xero_line_items", "export_ledger")


def migrate(con) -> None:
    for table in TABLES:
        ddl, comment = con.execute(
            "select sql, comment from duckdb_tables() where schema_name = 'main' and table_name = ?", [table]
        ).fetchone()
        columns = con.execute(
            "select column_name, comment from duckdb_columns() where schema_name = 'main' and table_name = ?",
            [table],
        ).fetchall()
        key = re.search(r",\s*PRIMARY KEY\s*\(([^)]*)\)", ddl, flags=re.IGNORECASE)
        keyless = ddl[: key.start()] + ddl[key.end() :]
        rebuilt = f"{table}__rebuilt"
        con.execute(re.sub(rf"^CREATE TABLE {table}\b", f"CREATE TABLE {rebuilt}", keyless))
        con.execute(f"insert into {rebuilt} select * from {table}")
        con.execute(f"drop table {table}")
        con.execute(f"alter table {rebuilt} rename to {table}")
        for column in key.group(1).split(","):  # a key's columns were NOT NULL; they stay so
            con.execute(f"alter table {table} alter column {column.strip()} set not null")
        if comment:
            con.execute(f"comment on table {table} is {_quoted(comment)}")
        for column, text in columns:
            if text:
                con.execute(f'comment on column {table}."{column}" is {_quoted(text)}')


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
