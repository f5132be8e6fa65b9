"""The tables that grow with history, kept as Parquet parts beside the warehouse file.

Writing millions of rows into DuckDB's own storage costs several times what writing them as Parquet does
(900k line_tracking rows: 2.3-5.6 s into a table, 0.35-0.5 s as a Parquet file, on this machine), so the six
tables that grow with history are kept as Parquet files in a folder beside the warehouse
(`warehouse.duckdb` → `warehouse.duckdb.parts/`), and the warehouse holds, for each, a view of the same name
with the contract's columns and comments. Analysts query the views as they queried the tables.

A **part** is the folder one chunk of one run writes: `<run_id>-<chunk>/`, holding that chunk's rows of
every stored table (`line_tracking.parquet`, ...) and the source rows they were resolved from
(`raw_invoices.parquet`, `raw_invoice_lines.parquet`). Parts are never changed once written. The native
table `store_index` says which part holds each invoice's current rows (one row per practice_id,
invoice_id); a view shows a row of a part only where the index points that invoice at that part. So a run
that recomputes an invoice writes a new part and points the invoice at it; the older rows stay on disk,
unseen, until the part holds no current invoice and is deleted.

Atomic, like the rest of a run (flows.run.publish): parts are written under new names before the run
commits, and the views list the files of the parts the index points at, so nothing of a run that has not
committed is ever shown. After a run commits, a part it left without a current invoice is kept one more
run (an analyst's connection opened before the commit may still read it), then deleted; a part of a run
that never committed is deleted by the next run.

The views name their files by absolute path, so an analyst can open the warehouse from any folder. The
warehouse file and its `.parts` folder go together: after moving both, the next run points the views at
the new place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from flows.warehouse.writes import arrow

# The stored tables, and the columns a view adds that no part holds.
STORED = (
    "invoice_tracking",
    "line_tracking",
    "xero_invoices",
    "xero_line_items",
    "raw_invoices",
    "raw_invoice_lines",
)
# batch_id is not stored: it is the batch that carried exactly the invoice's current content, read from
# export_ledger (view sent_batches), so batching an invoice writes the ledger and nothing else.
BATCHED = ("xero_invoices", "xero_line_items")
INVOICE = ["practice_id", "invoice_id"]


def store_folder(warehouse: Path) -> Path:
    """The parts of a warehouse: the folder beside its file."""
    return warehouse.with_name(warehouse.name + ".parts")


def part_name(run_id: str, chunk: int | str) -> str:
    return f"{run_id}-{chunk:04d}" if isinstance(chunk, int) else f"{run_id}-{chunk}"


@dataclass(frozen=True)
class Part:
    """A part of the store, to write: its name and folder."""

    name: str
    folder: Path

    def path(self, table: str) -> Path:
        return self.folder / f"{table}.parquet"


class Store:
    """The stored tables of one warehouse connection (a run's working copy, or a reader's)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, root: Path) -> None:
        self.con = con
        self.root = root

    # Writing parts ----------------------------------------------------------------------------------

    def part(self, name: str) -> Part:
        return Part(name, self.root / name)

    def schema(self, table: str) -> dict[str, str]:
        """The stored table's columns and DuckDB types, from its template (store.<table>)."""
        rows = self.con.execute(
            "select column_name, data_type from duckdb_columns() "
            "where schema_name = 'store' and table_name = ? order by column_index",
            [table],
        ).fetchall()
        if not rows:
            raise KeyError(f"no stored table {table}")
        return dict(rows)

    # Pointing invoices at parts ---------------------------------------------------------------------

    def point(self, keys: pl.DataFrame, part: str, *, loose: bool = False) -> None:
        """Make `part` hold the current rows of these invoices (practice_id, invoice_id; nulls allowed for
        loose rows), replacing whatever part held them."""
        if keys.is_empty():
            return
        self.con.register("_point", arrow(keys.select(INVOICE).unique()))
        try:
            self.con.execute(
                """delete from store_index i using _point k
                   where i.practice_id is not distinct from k.practice_id
                     and i.invoice_id is not distinct from k.invoice_id"""
            )
            self.con.execute(
                "insert into store_index select practice_id, invoice_id, ?, ? from _point", [part, loose]
            )
        finally:
            self.con.unregister("_point")

    def forget(self, keys: pl.DataFrame) -> None:
        """These invoices have no current rows any more (voided, deleted, moved out of scope)."""
        if keys.is_empty():
            return
        self.con.register("_forget", arrow(keys.select(INVOICE).unique()))
        try:
            self.con.execute(
                """delete from store_index i using _forget k
                   where i.practice_id is not distinct from k.practice_id
                     and i.invoice_id is not distinct from k.invoice_id"""
            )
        finally:
            self.con.unregister("_forget")

    def forget_loose(self) -> None:
        """Rows no invoice can take are read afresh by every run: the last run's are let go first."""
        self.con.execute("delete from store_index where loose")

    def record_parts(self, run_id: str, parts: Iterable[str]) -> None:
        """Say which parts this run wrote, and mark the parts that no longer hold a current invoice as
        dropped by it (they are deleted one committed run later: see `collect_garbage`)."""
        written = [(p, run_id) for p in parts]
        if written:
            self.con.executemany("insert into store_parts values (?, ?, null)", written)
        self.con.execute(
            """update store_parts set dropped_by = ?
               where dropped_by is null and part not in (select distinct part from store_index)""",
            [run_id],
        )

    # The views -------------------------------------------------------------------------------------

    def live_files(self, table: str) -> list[tuple[str, str]]:
        """(part, absolute file) of the parts the index points at that hold `table`."""
        parts = [
            r[0] for r in self.con.execute("select distinct part from store_index order by 1").fetchall()
        ]
        found = []
        for name in parts:
            path = self.part(name).path(table)
            if path.exists():
                found.append((name, str(path.resolve())))
        return found

    def refresh_views(self) -> None:
        """(Re)create each stored table's view over the files of its current parts, with the template's
        columns, types and comments (one statement a table: a view and its comments)."""
        comments = self._comments()
        for table in STORED:
            self.con.execute(
                f"create or replace view main.{table} as {self._view_sql(table)};\n" + comments[table]
            )

    def views_point_here(self) -> bool:
        """Whether the views already name files under this store's folder (or name none): the warehouse
        has not moved since they were made."""
        found = dict(
            self.con.execute(
                "select view_name, sql from duckdb_views() where schema_name = 'main' and view_name in (select unnest(?))",
                [list(STORED)],
            ).fetchall()
        )
        if set(found) != set(STORED):
            return False
        here = _literal(str(self.root.resolve()) + "/")[:-1]
        return all("read_parquet(" not in sql or here in sql for sql in found.values())

    def current_rows_sql(self, table: str, keys: str) -> str:
        """SQL for the current rows of a stored table (its view's columns, without batch_id) of the
        invoices in the relation `keys` (practice_id, invoice_id), reading only the files of the parts
        those invoices are in: what a query of a few invoices reads instead of the whole view."""
        parts = [
            r[0]
            for r in self.con.execute(
                f"select distinct part from store_index semi join ({keys}) k using (practice_id, invoice_id)"
                " order by 1"
            ).fetchall()
        ]
        files = []
        for name in parts:
            path = self.part(name).path(table)
            if path.exists():
                files.append((name, str(path.resolve())))
        return self._rows_sql(table, files, keys)

    def _rows_sql(self, table: str, files: list[tuple[str, str]], keys: str | None = None) -> str:
        """The current rows of `table` in `files` ((part, file) pairs), of the invoices in `keys` if given."""
        columns = self.schema(table)
        if not files:
            return f"select * from store.{table}"
        listing = ", ".join(_literal(f) for _, f in files)
        # Files and parts are matched by number, not by path: the index side of the semi join holds a
        # row per invoice, and a path in each made it several times larger (DuckDB's memory_limit).
        file_numbers = ", ".join(f"({_literal(f)}, {n})" for n, (_, f) in enumerate(files))
        part_numbers = ", ".join(f"({_literal(p)}, {n})" for n, (p, _) in enumerate(files))
        cast = ", ".join(f't."{c}"::{t} as "{c}"' for c, t in columns.items())
        of_keys = f"semi join ({keys}) w using (practice_id, invoice_id)" if keys else ""
        return f"""
            select {cast}
            from read_parquet([{listing}], filename = true, union_by_name = true) t
            join (values {file_numbers}) f(filename, file_no) on t.filename = f.filename
            semi join (
                select i.practice_id, i.invoice_id, p.file_no
                from store_index i join (values {part_numbers}) p(part, file_no) using (part)
                {of_keys}
            ) k on t.practice_id is not distinct from k.practice_id
               and t.invoice_id is not distinct from k.invoice_id
               and f.file_no = k.file_no"""

    def _view_sql(self, table: str) -> str:
        body = self._rows_sql(table, self.live_files(table))
        if table in BATCHED:
            return f"""
                select s.*, b.batch_id from ({body}) s
                left join main.sent_batches b using (practice_id, invoice_id)"""
        return body

    def _comments(self) -> dict[str, str]:
        """Each stored table's view's COMMENT statements, from its template in the schema `store`."""
        tables = dict(
            self.con.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'store'"
            ).fetchall()
        )
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, column, text in self.con.execute(
            "select table_name, column_name, comment from duckdb_columns() "
            "where schema_name = 'store' and comment is not null order by column_index"
        ).fetchall():
            columns.setdefault(table, []).append((column, text))
        said = {}
        for table in STORED:
            statements = (
                [f"comment on view main.{table} is {_literal(tables[table])}"] if tables.get(table) else []
            )
            statements += [
                f'comment on column main.{table}."{column}" is {_literal(text)}'
                for column, text in columns.get(table, [])
            ]
            if table in BATCHED:
                statements.append(
                    f"comment on column main.{table}.batch_id is "
                    "'Batch that carried exactly this content (export_ledger); null when not batched yet.'"
                )
            said[table] = ";\n".join(statements)
        return said

    def sync(self, run_id: str) -> None:
        """Flush this run's part files to disk before the warehouse that points at them is committed."""
        for folder in self.root.glob(f"{run_id}-*"):
            for path in folder.iterdir():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
            _fsync_dir(folder)
        if self.root.is_dir():
            _fsync_dir(self.root)


def collect_garbage(warehouse: Path, latest: str | None) -> None:
    """Delete the parts no committed run needs: those no committed warehouse knows (a run that never
    committed), and those dropped by a committed run before the latest one (the latest run's drops stay one
    more run, for connections opened before it committed)."""
    root = store_folder(warehouse)
    if not root.is_dir():
        return
    keep: set[str] = set()
    if warehouse.exists():
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            known = con.execute(
                "select count(*) from duckdb_tables() where table_name = 'store_parts'"
            ).fetchone()[0]
            if known:
                keep = {
                    r[0]
                    for r in con.execute(
                        "select part from store_parts where dropped_by is null or dropped_by = ?", [latest]
                    ).fetchall()
                }
        finally:
            con.close()
    for folder in root.iterdir():
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_part_file(path: Path, frame: pl.DataFrame) -> None:
    """Write a part's file whole, then rename it into place: a reader never sees half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.write_parquet(partial, compression="lz4", statistics=True)
    os.replace(partial, path)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
