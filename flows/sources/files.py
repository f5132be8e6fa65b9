"""A source folder (one `<table>.parquet` or `<table>.csv` per table), read through the Source protocol.

`FileSource.open` checks every table and makes it readable in pieces: a Parquet file is read where it is; a
CSV file is converted once, in a bounded amount of memory, into a Parquet file of text columns under the
run's scratch folder. After that every method reads Parquet: Polars scans for the keys and counts, DuckDB
for the one pass that stages each chunk's rows.

Anything that makes the whole source unusable (a missing file or column, an unreadable file) raises
`SourceError` with one line naming the file and what is wrong; values that merely do not parse are left
for `transforms.parse_sources` to hold against the invoices they belong to.

What a real export may look like, and is read as it was meant (tests/reliability/matrix.py shows each):
a UTF-8 byte-order mark, CRLF or CR-only line ends, quoted fields holding commas or line breaks, blank
padding around header names, columns in any order, extra columns (ignored), and Parquet columns of any
scalar type (kept as they are; `read_table` shows them as their text: a float quantity reads as `1.5`, a
timestamp as ISO-8601 in UTC).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import duckdb
import polars as pl

from flows.sources.protocol import (
    HISTORY_TABLES,
    INVOICE_KEY_COLUMNS,
    REFERENCE_TABLES,
    SourceError,
    StagedChunk,
)
from transforms.parse_sources import ROW, TABLES, as_csv_text

__all__ = ["FileSource", "SourceError", "read_source", "read_table", "table_file"]

INVOICE = ("practice_id", "invoice_id")
BLOCK = 1 << 24  # bytes of a CSV file looked at, copied or counted at a time
HEADER_BYTES = 1 << 16  # the header row is in the first 64 KB
# An ISO-8601 UTC timestamp as exports write it; text in this form sorts as its time does, to the second.
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"

T = TypeVar("T")


def _one_line(text: object, limit: int = 120) -> str:
    """A value fit for a one-line message: control characters shown as spaces, long text cut with '...'."""
    flat = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", str(text))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _first_line(err: BaseException) -> str:
    return _one_line(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)


def table_file(folder: Path, table: str) -> Path:
    if not folder.is_dir():
        raise SourceError(f"{folder}: source folder does not exist")
    candidates = [folder / f"{table}.parquet", folder / f"{table}.csv"]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise SourceError(f"{folder}/{table}.csv: file is missing (expected {table}.csv or {table}.parquet)")
    if len(found) > 1:
        raise SourceError(f"{folder}: both {table}.parquet and {table}.csv exist; keep one")
    return found[0]


# One table, opened ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedTable:
    """Where one table's rows are read from once it is opened, and how.

    `parquet` is the source's own Parquet file, or a CSV file's conversion under the scratch folder;
    `columns` maps each contract column to its name there (a Parquet file's own, padding and all; a
    conversion's are the contract names). A conversion carries `_row`; a Parquet file's `_row` is the
    reader's row index, under `row_index` (`_row`, unless the file has a column of that name)."""

    table: str
    path: Path  # the file of the source folder, as messages and details name it
    parquet: Path
    columns: dict[str, str]
    converted: bool
    row_index: str = ROW

    def scan(self) -> pl.LazyFrame:
        """The rows as read: `_row`, then the contract columns under their names, in contract order."""
        if self.converted:
            return pl.scan_parquet(self.parquet).select(ROW, *self.columns)
        return pl.scan_parquet(self.parquet, row_index_name=self.row_index, row_index_offset=1).select(
            pl.col(self.row_index).cast(pl.Int64).alias(ROW),
            *(pl.col(column).alias(name) for name, column in self.columns.items()),
        )

    def unreadable(self, err: BaseException) -> SourceError:
        """The stop for a file that fails while its rows are read (after `open` found it sound)."""
        if self.converted:
            return SourceError(f"{self.path}: cannot be read ({_first_line(err)})")
        return SourceError(f"{self.path}: cannot be read as Parquet ({_first_line(err)})")


def _unused_name(name: str, taken: list[str]) -> str:
    while name in taken:
        name = f"_{name}"
    return name


def open_table(folder: Path, table: str, scratch: Path) -> OpenedTable:
    """Check one table's file (or stop with a SourceError) and make it readable in pieces."""
    path = table_file(folder, table)
    return _open_parquet(path) if path.suffix == ".parquet" else _convert_csv(path, scratch)


def _contract_columns(path: Path, names: list[str], columns: list[str]) -> dict[str, str]:
    """Which of the file's columns (`columns`, whose stripped names are `names`) holds each contract
    column: a repeated contract column or a missing one is a stop; other columns are ignored."""
    wanted = list(TABLES[path.stem])
    repeated = sorted({c for c in names if names.count(c) > 1 and c in wanted})
    if repeated:
        raise SourceError(f"{path}: column {_one_line(repeated[0])} appears twice in the header; keep one")
    missing = [c for c in wanted if c not in names]
    if missing:
        header = _one_line(", ".join(names), 200)
        hint = "; is it separated by ';' instead of ','?" if len(names) == 1 and ";" in names[0] else ""
        raise SourceError(f"{path}: column {', '.join(missing)} is missing (header has: {header}){hint}")
    found = dict(zip(names, columns, strict=True))
    return {c: found[c] for c in wanted}


# Parquet: read where it is -------------------------------------------------------------------------------


def _open_parquet(path: Path) -> OpenedTable:
    """A Parquet table is used in place: its footer is read (a file cut short stops here), nested contract
    columns are refused, and every contract column must be readable as text."""
    try:
        schema = pl.scan_parquet(path).collect_schema()
    except Exception as err:  # noqa: BLE001 - any reader failure is the same one-line stop
        raise SourceError(f"{path}: cannot be read as Parquet ({_first_line(err)})") from None
    wanted = TABLES[path.stem]
    for name, dtype in schema.items():
        if name.strip() in wanted and dtype.is_nested():
            raise SourceError(
                f"{path}: column {name} holds {dtype} values, not single values; export it as text or numbers"
            )
    try:  # a type polars cannot show as text fails on no rows as it would on many
        pl.DataFrame(schema={n: t for n, t in schema.items() if n.strip() in wanted}).select(
            as_csv_text(n, t) for n, t in schema.items() if n.strip() in wanted
        )
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        raise SourceError(f"{path}: a column cannot be read as text ({_first_line(err)})") from None
    names = list(schema)
    columns = _contract_columns(path, [n.strip() for n in names], names)
    return OpenedTable(path.stem, path, path, columns, converted=False, row_index=_unused_name(ROW, names))


# CSV: converted once, in pieces --------------------------------------------------------------------------


def _cr_only(path: Path) -> bool:
    """Whether a CSV file's lines end with CR alone (old Mac exports), after a stop on bytes that are not
    UTF-8 (naming the line) or on a file of nothing but blanks; the file is read a block at a time. The
    line and byte offset count from after a byte-order mark."""
    lines, offset, newline, carriage, content = 1, 0, False, False, False
    with path.open("rb") as file:
        head = file.read(len(codecs.BOM_UTF8))
        pending = b"" if head == codecs.BOM_UTF8 else head
        while True:
            block = file.read(BLOCK)
            data, final = pending + block, not block
            try:
                text, used = codecs.utf_8_decode(data, "strict", final)
            except UnicodeDecodeError as err:
                line = lines + data[: err.start].count(b"\n")
                raise SourceError(
                    f"{path}: line {line} is not valid UTF-8 (byte offset {offset + err.start}); "
                    "save the file as UTF-8"
                ) from None
            lines += data.count(b"\n", 0, used)
            newline = newline or data.find(b"\n", 0, used) >= 0
            carriage = carriage or data.find(b"\r", 0, used) >= 0
            content = content or (bool(text) and not text.isspace())
            offset, pending = offset + used, data[used:]
            if final:
                break
    if not content:
        raise SourceError(f"{path}: file is empty (it needs at least a header row)")
    return carriage and not newline


def _with_newlines(path: Path, copy: Path) -> Path:
    """A copy of a CSV file with CR-only line ends (old Mac exports) ending its lines with LF instead."""
    with path.open("rb") as source, copy.open("wb") as target:
        if source.read(len(codecs.BOM_UTF8)) != codecs.BOM_UTF8:
            source.seek(0)
        for block in iter(lambda: source.read(BLOCK), b""):
            target.write(block.replace(b"\r", b"\n"))
    return copy


def _header_text(path: Path) -> str:
    """The start of a CSV file as text, enough for its header row (a character cut in two is left off)."""
    with path.open("rb") as file:
        data = file.read(HEADER_BYTES)
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return codecs.utf_8_decode(data, "replace", False)[0]


def _header(path: Path, text: str) -> list[str]:
    """The header row as the CSV reader sees it, names stripped; a repeated name is a stop."""
    try:
        first = next(csv.reader(io.StringIO(text)), [])
    except csv.Error:
        return []  # polars reads it or says why not
    names: list[str] = []
    for name in (n.strip() for n in first):
        if name in names:
            if name in TABLES.get(path.stem, {}):
                raise SourceError(f"{path}: column {_one_line(name)} appears twice in the header; keep one")
            name = f"{name}_duplicated_{names.count(name)}_{len(names)}"  # an extra column: ignored
        names.append(name)
    return names


def _first_bad_record(path: Path, width: int) -> str | None:
    """Where a CSV the reader refused first goes wrong: a row with more fields than the header, or a quote
    left open. Only called after a failure; it reads the file as a stream, like everything else here."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            for record in reader:
                if reader.line_num > 1 and len(record) > width:
                    return f"line {reader.line_num} has {len(record)} fields, the header has {width}"
        except csv.Error:
            return f"a quote opened near line {reader.line_num} is not closed"
    with path.open("rb") as file:
        quotes = sum(block.count(b'"') for block in iter(lambda: file.read(BLOCK), b""))
    return "a quote is not closed" if quotes % 2 else None


def _convert_csv(path: Path, scratch: Path) -> OpenedTable:
    """Check a CSV table and convert it once into Parquet under `scratch`: the contract columns as text
    (an empty field is null), in contract order, after `_row` (the 1-based data row), a block at a time."""
    cr_only = _cr_only(path)
    scratch.mkdir(parents=True, exist_ok=True)
    readable = _with_newlines(path, scratch / f"{path.stem}.lf.csv") if cr_only else path
    try:
        converted = _csv_to_parquet(path, readable, scratch / f"{path.stem}.parquet")
    finally:
        if readable != path:
            readable.unlink(missing_ok=True)
    return OpenedTable(path.stem, path, converted, {c: c for c in TABLES[path.stem]}, converted=True)


def _csv_to_parquet(path: Path, readable: Path, converted: Path) -> Path:
    """Polars' streaming CSV reader, every field as text, from `readable` (the file, or its LF copy) into
    `converted`; a header that lacks a contract column stops before any row is read."""
    names = _header(path, _header_text(readable))

    def refused(err: BaseException) -> SourceError:
        reason = _first_bad_record(readable, len(names)) or _first_line(err)
        return SourceError(f"{path}: cannot be read as CSV ({reason}); check its quotes and separators")

    try:
        columns = pl.scan_csv(readable, infer_schema=False).collect_schema().names()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        raise refused(err) from None
    stripped = names if len(names) == len(columns) else [c.strip() for c in columns]
    chosen = _contract_columns(path, stripped, columns)
    index = _unused_name(ROW, columns)
    try:
        pl.scan_csv(readable, infer_schema=False, row_index_name=index, row_index_offset=1).select(
            pl.col(index).cast(pl.Int64).alias(ROW),
            *(pl.col(column).alias(name) for name, column in chosen.items()),
        ).sink_parquet(converted)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        raise refused(err) from None
    return converted


# The source ----------------------------------------------------------------------------------------------


class FileSource:
    """A source folder (contract §2) through the Source protocol (flows.sources.protocol).

    Values as read: a CSV table's are text; a Parquet table's keep their own types. Keys (practice_id,
    invoice_id) are matched on their text, exactly as held, so an integer id column matches its text."""

    def __init__(self, folder: Path, *, memory_limit: str = "1GB", threads: int | None = None) -> None:
        self.folder = Path(folder)
        self.memory_limit = memory_limit  # DuckDB's, while staging
        self.threads = threads
        self._tables: dict[str, OpenedTable] = {}

    def describe(self) -> str:
        return str(self.folder)

    def file_name(self, table: str) -> str:
        if table in self._tables:
            return self._tables[table].path.name
        parquet = self.folder / f"{table}.parquet"
        return parquet.name if parquet.is_file() else f"{table}.csv"

    def open(self, scratch: Path) -> None:
        """Check every table in contract order (each fully before the next, so the first broken table is
        the one a stop names) and convert CSV tables into Parquet under `scratch`."""
        self._tables = {}
        opened = {}
        for table in TABLES:
            opened[table] = open_table(self.folder, table, scratch)
        self._tables = opened

    def close(self) -> None:
        self._tables = {}

    def _opened(self, table: str) -> OpenedTable:
        if table not in self._tables:
            raise RuntimeError(f"{self.folder}: the source is not open (call open(scratch) first)")
        return self._tables[table]

    def _read(self, table: str, read: Callable[[OpenedTable], T]) -> T:
        opened = self._opened(table)
        try:
            return read(opened)
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, duckdb.Error, OSError) as err:
            raise opened.unreadable(err) from None

    def path(self, table: str) -> Path:
        """The table's file in the source folder."""
        return self._opened(table).path

    def table(self, table: str) -> pl.DataFrame:
        """One whole table as read (what `read_table` shows as text)."""
        return self._read(table, lambda t: t.scan().collect())

    def reference(self) -> dict[str, pl.DataFrame]:
        return {table: self.table(table) for table in REFERENCE_TABLES}

    def practices(self) -> pl.DataFrame:
        """(practice_id, invoices, lines): every practice id the invoices and lines name, as text, with how
        many rows of each it has (rows without a practice_id are left out: they are loose)."""

        def count(table: str, name: str) -> pl.DataFrame:
            def read(opened: OpenedTable) -> pl.DataFrame:
                rows = opened.scan()
                schema = rows.collect_schema()
                return (
                    rows.filter(~keyless(schema))
                    .group_by(as_csv_text("practice_id", schema["practice_id"]).alias("practice_id"))
                    .agg(pl.len().cast(pl.Int64).alias(name))
                    .collect(engine="streaming")
                )

            return self._read(table, read)

        return (
            count("invoices", "invoices")
            .join(count("invoice_lines", "lines"), on="practice_id", how="full", coalesce=True)
            .with_columns(pl.col("invoices", "lines").fill_null(0))
            .sort("practice_id")
        )

    def invoice_keys(
        self, changed_since: datetime | None = None, practices: list[str] | None = None
    ) -> pl.DataFrame:
        """INVOICE_KEY_COLUMNS of the invoices rows (of `practices` only, by their text, when given). With
        `changed_since`, a row is left out only when its updated_at is a time (a timestamp, or text of the
        ISO UTC form YYYY-MM-DDTHH:MM:SS[.f]Z) within 1900-2099 whose second is before the watermark's:
        provably at or before it. A row without its keys is always returned."""

        def read(opened: OpenedTable) -> pl.DataFrame:
            keys = _of_practices(opened.scan().select(INVOICE_KEY_COLUMNS), practices)
            if changed_since is not None:
                schema = keys.collect_schema()
                keys = keys.filter(~updated_before(schema["updated_at"], changed_since) | keyless(schema))
            return keys.collect(engine="streaming")

        return self._read("invoices", read)

    def line_counts(
        self, practices: list[str] | None = None, invoices: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """Only the key columns are scanned; with `invoices`, only their lines are counted."""

        def read(opened: OpenedTable) -> pl.DataFrame:
            lines = _of_practices(opened.scan().select(INVOICE), practices)
            if invoices is not None:
                dtypes = lines.collect_schema()
                wanted = _key_text(invoices.select(INVOICE)).lazy()
                lines = lines.join(
                    wanted,
                    left_on=[as_csv_text(k, dtypes[k]) for k in INVOICE],
                    right_on=list(INVOICE),
                    how="semi",
                )
            return (
                lines.group_by(INVOICE)
                .agg(pl.len().cast(pl.Int64).alias("lines"))
                .collect(engine="streaming")
            )

        return self._read("invoice_lines", read)

    def loose_invoices(self) -> pl.DataFrame:
        """The invoices rows, as read, without a practice_id or invoice_id (blank or null)."""

        def read(opened: OpenedTable) -> pl.DataFrame:
            rows = opened.scan()
            return rows.filter(keyless(rows.collect_schema())).collect(engine="streaming")

        return self._read("invoices", read)

    def loose_lines(self, invoices: pl.DataFrame | None = None) -> pl.DataFrame:
        """The invoice_lines rows, as read, without a practice_id or invoice_id (blank or null), or whose
        (practice_id, invoice_id) is none of `invoices`' (orphans; the source's own invoices when None,
        found a practice at a time so as not to hold every key); in `_row` order."""
        if invoices is None:
            return self._loose_lines_of_own_invoices()
        known = _key_text(invoices.select(INVOICE))
        known = known.filter(~keyless(known.schema)).unique()

        def read(opened: OpenedTable) -> pl.DataFrame:
            lines = opened.scan()
            dtypes = lines.collect_schema()
            named = lines.with_columns(
                as_csv_text(k, dtypes[k]).alias(f"_key_{k}") for k in INVOICE
            )  # a blank or null key never matches: `known` has none
            return (
                named.join(
                    known.lazy(), left_on=[f"_key_{k}" for k in INVOICE], right_on=list(INVOICE), how="anti"
                )
                .drop(f"_key_{k}" for k in INVOICE)
                .sort(ROW)
                .collect(engine="streaming")
            )

        return self._read("invoice_lines", read)

    def _connect(self, spill: Path) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB of the source's own, within `memory_limit`, spilling under `spill`."""
        return duckdb.connect(
            ":memory:",
            config={
                "memory_limit": self.memory_limit,
                "temp_directory": str(spill),
                "preserve_insertion_order": False,
                **({"threads": self.threads} if self.threads else {}),
            },
        )

    def _loose_lines_of_own_invoices(self) -> pl.DataFrame:
        """loose_lines against the source's own invoices, in one DuckDB pass over each table (an anti-join
        within `memory_limit`), so that no process holds every key."""
        lines, invoices = self._opened("invoice_lines"), self._opened("invoices")
        spill = Path(tempfile.mkdtemp(prefix=".spill-loose-"))
        con = self._connect(spill)
        try:
            con.execute(KEYLESS_MACRO)
            sql = f"""
                with lines as ({_rows_sql(lines)}), invoices as ({_rows_sql(invoices)})
                select lines.* from lines
                where _keyless(lines.practice_id::varchar) or _keyless(lines.invoice_id::varchar)
                   or not exists (
                       select 1 from invoices
                       where invoices.practice_id::varchar = lines.practice_id::varchar
                         and invoices.invoice_id::varchar = lines.invoice_id::varchar)
                order by lines.{ROW}
            """
            return self._read("invoice_lines", lambda _: pl.from_arrow(con.execute(sql).to_arrow_table()))
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)

    def stage(self, assignment: pl.DataFrame | list[Path], folder: Path) -> list[StagedChunk]:
        """Write each chunk's invoices and lines under `folder`, as `chunk-<n>/invoices.parquet` and
        `chunk-<n>/invoice_lines.parquet`: rows as read, in no particular order (`_row` says where each
        was in the source).

        One DuckDB pass over each table, on an in-memory connection of its own that keeps within
        `memory_limit` (spilling under `folder`): a row goes to the chunk its (practice_id, invoice_id) is
        assigned to. A row whose practice_id or invoice_id is blank or null is never staged, whatever the
        assignment says (it is loose: `loose_invoices`, `loose_lines`), nor is a row whose key the
        assignment does not name. Every chunk of the assignment gets both files, empty or not.

        Values are as DuckDB reads the file: a typed Parquet column keeps its type, except that a zoned
        timestamp is written in UTC (the same instant) and a dictionary (categorical) column as text.

        `assignment` may be Parquet files (a run's plan of millions of keys): DuckDB reads them, and no
        frame of every key is made."""
        folder.mkdir(parents=True, exist_ok=True)
        spill = Path(tempfile.mkdtemp(prefix=".spill-", dir=folder))
        con = self._connect(spill)
        try:
            con.execute(KEYLESS_MACRO)
            if isinstance(assignment, pl.DataFrame):
                con.register("_given", _key_text(assignment.select(*INVOICE, "chunk")).to_arrow())
            else:
                listed = ", ".join(_quoted(p) for p in assignment)
                con.execute(f"create view _given as select * from read_parquet([{listed}])")
            con.execute(
                """create temp table assignment as
                   select practice_id::varchar as practice_id, invoice_id::varchar as invoice_id,
                          chunk::bigint as chunk
                   from _given"""
            )
            if con.execute("select count(*) from assignment where chunk is null").fetchone()[0]:
                raise ValueError("the assignment leaves an invoice key without a chunk")
            chunks = [
                r[0] for r in con.execute("select distinct chunk from assignment order by 1").fetchall()
            ]
            con.execute("delete from assignment where _keyless(practice_id) or _keyless(invoice_id)")
            if con.execute(
                "select count(*) from (select 1 from assignment group by practice_id, invoice_id having count(*) > 1)"
            ).fetchone()[0]:
                raise ValueError("the assignment names an invoice key twice; each key goes to one chunk")
            for table in HISTORY_TABLES:
                self._read(table, lambda opened: _stage_table(con, opened, folder, chunks))
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
        return [
            StagedChunk(
                chunk,
                folder / _chunk_name(chunk) / "invoices.parquet",
                folder / _chunk_name(chunk) / "invoice_lines.parquet",
            )
            for chunk in chunks
        ]


def _of_practices(rows: pl.LazyFrame, practices: list[str] | None) -> pl.LazyFrame:
    """The rows of these practices (by the text of their practice_id), or all when None."""
    if practices is None:
        return rows
    dtype = rows.collect_schema()["practice_id"]
    return rows.filter(as_csv_text("practice_id", dtype).is_in(practices))


def _chunk_name(chunk: int) -> str:
    return f"chunk-{chunk}"


def keyless(schema: pl.Schema) -> pl.Expr:
    """Whether a row has no invoice key: its practice_id or invoice_id is null, or as text empty or blank
    (a blank key is no key, whatever the column's type)."""
    return pl.any_horizontal(
        as_csv_text(k, schema[k]).is_null() | (as_csv_text(k, schema[k]).str.strip_chars() == "")
        for k in INVOICE
    )


def _key_text(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame's invoice keys as their text (how keys are matched), with its other columns."""
    return frame.with_columns(as_csv_text(k, frame.schema[k]).cast(pl.Utf8) for k in INVOICE)


def updated_before(dtype: pl.DataType, watermark: datetime) -> pl.Expr:
    """Whether a row's raw updated_at is provably at or before `watermark` (taken as UTC when naive):
    a timestamp (naive is UTC, as parsing takes it), or text of the ISO UTC form, within 1900-2099 (so it
    parses), whose second is before the watermark's. Anything else is not provably before: False."""
    utc = watermark if watermark.tzinfo is not None else watermark.replace(tzinfo=UTC)
    since = utc.astimezone(UTC).replace(microsecond=0, tzinfo=None)
    column = pl.col("updated_at")
    if isinstance(dtype, pl.Datetime):
        moment = (
            column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
            if dtype.time_zone is not None
            else column
        )
        second = moment.dt.cast_time_unit("us").dt.truncate("1s")
    elif dtype == pl.Utf8:
        text = column.str.strip_chars()
        second = (
            pl.when(text.str.contains(ISO_UTC))
            .then(text.str.slice(0, 19))
            .str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False)
        )
    else:
        return pl.lit(False)
    return (second.dt.year().is_between(1900, 2099) & (second < since)).fill_null(False)


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# A blank key is no key, as transforms.parse_sources strips it (Unicode White_Space, as Rust's trim).
KEYLESS_MACRO = r"""create or replace temp macro _keyless(x) as
    x is null or regexp_full_match(x, '[\s\x{0B}\x{85}\p{Z}]*')"""


def _rows_sql(opened: OpenedTable) -> str:
    """A table's rows as read, for DuckDB: `_row` and the contract columns under their contract names."""
    if opened.converted:
        row, read = ROW, f"read_parquet({_quoted(opened.parquet)})"
    else:
        row, read = "file_row_number + 1", f"read_parquet({_quoted(opened.parquet)}, file_row_number = true)"
    columns = ", ".join(
        f"{_identifier(column)} as {_identifier(name)}" for name, column in opened.columns.items()
    )
    return f"select ({row})::bigint as {ROW}, {columns} from {read}"


def _stage_table(
    con: duckdb.DuckDBPyConnection, opened: OpenedTable, folder: Path, chunks: list[int]
) -> None:
    """One pass over a table: every row whose key the assignment names, into its chunk's file."""
    # Keys are matched on their text (an integer id column matches its text); `=` never matches a null.
    rows = f"""
        with source as ({_rows_sql(opened)})
        select source.*, assignment.chunk
        from source
        join assignment
            on source.practice_id::varchar = assignment.practice_id
            and source.invoice_id::varchar = assignment.invoice_id
    """
    partitioned = folder / f".{opened.table}-by-chunk"
    con.execute(f"copy ({rows}) to {_quoted(partitioned)} (format parquet, partition_by (chunk))")
    for chunk in chunks:
        target = folder / _chunk_name(chunk) / f"{opened.table}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        parts = sorted((partitioned / f"chunk={chunk}").glob("*.parquet"))
        if len(parts) == 1:
            parts[0].rename(target)
            continue
        if parts:  # DuckDB wrote the chunk in several files: one file, as a chunk task reads it
            rows_of_chunk = "select * from read_parquet([" + ", ".join(_quoted(p) for p in parts) + "])"
        else:
            rows_of_chunk = f"select * exclude (chunk) from ({rows}) limit 0"
        con.execute(f"copy ({rows_of_chunk}) to {_quoted(target)} (format parquet)")
    shutil.rmtree(partitioned, ignore_errors=True)


# Whole tables as text (the reader before FileSource, kept for the tests and tools that use it) -------------


def _as_text(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """A table as read, every contract column as the text a CSV would hold."""
    try:
        return frame.select(
            ROW,
            *(as_csv_text(name, dtype).cast(pl.Utf8) for name, dtype in frame.schema.items() if name != ROW),
        )
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        raise SourceError(f"{path}: a column cannot be read as text ({_first_line(err)})") from None


def read_table(folder: Path, table: str) -> tuple[pl.DataFrame, str]:
    """The table as text columns in contract order, after `_row` (1-based data row), and its file name."""
    with tempfile.TemporaryDirectory(prefix="trackline-read-", ignore_cleanup_errors=True) as scratch:
        opened = open_table(folder, table, Path(scratch))
        try:
            frame = opened.scan().collect()
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as err:
            raise opened.unreadable(err) from None
    return _as_text(opened.path, frame), opened.path.name


def read_source(folder: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Every table of the source as text, or a SourceError before anything is changed."""
    source = FileSource(folder)
    with tempfile.TemporaryDirectory(prefix="trackline-read-", ignore_cleanup_errors=True) as scratch:
        source.open(Path(scratch))
        frames = {table: _as_text(source.path(table), source.table(table)) for table in TABLES}
        files = {table: source.file_name(table) for table in TABLES}
        source.close()
    return frames, files
