"""A PostgreSQL source (contract section 2): the eight tables in one schema, read through the Source
protocol (flows.sources.protocol) over one `REPEATABLE READ, READ ONLY` transaction, so that every read of
a run sees the same snapshot even while the practice-management app writes.

Rows arrive as Arrow through adbc-driver-postgresql (libpq underneath, so the password may come from the
URL, PGPASSWORD or ~/.pgpass; it is never shown: `describe` is the URL without it, and every message is
built from `describe`). A column keeps its natural type (date, timestamptz in UTC, integer, boolean, text)
except NUMERIC, read as its exact text (ADBC would hand it over as text anyway), and any other type as its
text: transforms.parse_sources then parses each exactly as it parses a file's.

`_row` of a database table is a stable row number a user can find, in key order (text in byte order,
`collate "C"`; ties, i.e. a repeated key, by physical position), and every detail names the key beside it:
- a reference table's `_row` is the row's place in the whole table ordered by practice_id and its key, so
  `clients row 12` is the 12th row of `select * from clients order by practice_id, client_id`;
- an invoices or invoice_lines row's `_row` is its place among the rows of its own invoice (practice_id,
  invoice_id): lines in line_id order (`invoice_lines row 3 (line L7)` is the third line of the invoice
  the exception names), an invoice 1 (2, 3 for the copies of a repeated invoice key). Numbered within the
  invoice, a row's number needs only its invoice's rows: a nightly reads only what changed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from flows.sources.protocol import (
    HISTORY_TABLES,
    INVOICE_KEY_COLUMNS,
    REFERENCE_TABLES,
    SourceError,
    StagedChunk,
)
from transforms.parse_sources import KEYS, ROW, TABLES

INVOICE = ("practice_id", "invoice_id")
T = TypeVar("T")
# Types read as they are; anything else is read as its text.
NATURAL = {
    "text",
    "character varying",
    "character",
    "date",
    "timestamp with time zone",
    "timestamp without time zone",
    "integer",
    "bigint",
    "smallint",
    "boolean",
}
# A blank key is no key, as transforms.parse_sources strips it (Unicode White_Space).
BLANK = r"'^[\s\u000b\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$'"
# How many lines a staging read takes at a time (whole practices): memory follows this, not the history.
STAGE_LINES = 1_000_000
NULL_PRACTICE = "\x00null"
# Up to this many invoices in a staging group are named to PostgreSQL one by one (key arrays).
FEW_INVOICES = 200_000  # the group of rows without a practice_id, in the offsets below


def is_postgres_url(location: object) -> bool:
    return isinstance(location, str) and re.match(r"^postgres(ql)?://", location) is not None


def without_password(url: str) -> str:
    """The URL as it may be shown: no password in its user part, nor a `password=` parameter."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    if len(netloc) == 2:
        user = netloc[0].split(":", 1)[0]
        netloc = [f"{user}@{netloc[1]}"]
    query = "&".join(p for p in parts.query.split("&") if p and not p.lower().startswith("password="))
    return urlunsplit((parts.scheme, netloc[0], parts.path, query, parts.fragment))


def split_password(url: str) -> tuple[str, str | None]:
    """(the URL without its password, the password or None)."""
    parts = urlsplit(url)
    password = unquote(parts.password) if parts.password is not None else None
    for p in parts.query.split("&"):
        if p.lower().startswith("password="):
            password = unquote(p.split("=", 1)[1])
    return without_password(url), password


def _one_line(text: object, limit: int = 200) -> str:
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _blank(column: str) -> str:
    return f"({column} is null or {column}::text ~ {BLANK})"


class PostgresSource:
    """The Source protocol over one PostgreSQL schema (see the module's text)."""

    def __init__(self, url: str, *, schema: str = "public", password: str | None = None) -> None:
        shown, given = split_password(url)
        self.url, self.schema = shown, schema
        self._password = password if password is not None else given
        self._con = None
        self._cur = None
        self._types: dict[str, dict[str, str]] = {}
        self._offsets: dict[str, dict[str, int]] = {}
        self._counts: dict[str, pl.DataFrame] = {}

    # The protocol -------------------------------------------------------------------------------------

    def describe(self) -> str:
        return self.url

    def file_name(self, table: str) -> str:
        return table if self.schema == "public" else f"{self.schema}.{table}"

    def open(self, scratch: Path) -> None:
        self._connect()
        self._types = {}
        for table, columns in TABLES.items():
            found = dict(
                self._query(
                    "select column_name, data_type from information_schema.columns "
                    f"where table_schema = {_literal(self.schema)} and table_name = {_literal(table)}"
                ).iter_rows()
            )
            if not found:
                raise SourceError(f"{self.url}: table {self.schema}.{table} is missing")
            missing = [c for c in columns if c not in found]
            if missing:
                raise SourceError(
                    f"{self.url}: table {self.schema}.{table} has no column {', '.join(missing)}"
                )
            self._types[table] = {c: found[c] for c in columns}

    def close(self) -> None:
        if self._con is not None:
            try:
                self._cur.execute("rollback")
            except Exception:  # noqa: BLE001, S110 - a connection already gone has nothing to roll back
                pass
            try:
                self._cur.close()
                self._con.close()
            except Exception:  # noqa: BLE001, S110
                pass
        self._con = self._cur = None

    def reference(self) -> dict[str, pl.DataFrame]:
        return {table: self._numbered(table) for table in REFERENCE_TABLES}

    def practices(self) -> pl.DataFrame:
        def keyed(table: str, name: str) -> pl.DataFrame:
            return (
                self._counted(table)
                .filter(~pl.col("keyless"))
                .group_by("practice_id")
                .agg(pl.col("rows").sum().cast(pl.Int64).alias(name))
            )

        return (
            keyed("invoices", "invoices")
            .join(keyed("invoice_lines", "lines"), on="practice_id", how="full", coalesce=True)
            .with_columns(pl.col("invoices", "lines").fill_null(0))
            .sort("practice_id")
        )

    def invoice_keys(
        self, changed_since: datetime | None = None, practices: list[str] | None = None
    ) -> pl.DataFrame:
        """INVOICE_KEY_COLUMNS (of `practices` only, when given). With `changed_since` and a timestamptz
        updated_at, PostgreSQL leaves out the rows whose updated_at is before the watermark's second; a
        text updated_at is filtered here as a file's is (flows.sources.files.updated_before)."""
        where = []
        typed = self._types["invoices"]["updated_at"] == "timestamp with time zone"
        if changed_since is not None and typed:
            utc = changed_since if changed_since.tzinfo else changed_since.replace(tzinfo=UTC)
            second = utc.astimezone(UTC).replace(microsecond=0).isoformat()
            where.append(
                f"(updated_at is null or updated_at >= {_literal(second)}::timestamptz "
                f"or {_blank('practice_id')} or {_blank('invoice_id')})"
            )
        keys = self._numbered("invoices", practices, where=where, columns=INVOICE_KEY_COLUMNS)
        if changed_since is not None and not typed:
            from flows.sources.files import keyless, updated_before

            keys = keys.filter(
                ~updated_before(keys.schema["updated_at"], changed_since) | keyless(keys.schema)
            )
        return keys.select(INVOICE_KEY_COLUMNS)

    def line_counts(
        self, practices: list[str] | None = None, invoices: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        where = []
        if practices is not None:
            where.append(f"practice_id::text in ({self._list(practices)})")
        if invoices is not None:
            where.append(self._of_invoices(invoices, ""))
        where = ("where " + " and ".join(where)) if where else ""
        return self._query(
            f"select practice_id::text as practice_id, invoice_id::text as invoice_id, count(*) as lines "
            f"from {self._table('invoice_lines')} {where} group by 1, 2"
        ).with_columns(pl.col("lines").cast(pl.Int64))

    def loose_invoices(self) -> pl.DataFrame:
        return self._loose("invoices", f"{_blank('practice_id')} or {_blank('invoice_id')}")

    def loose_lines(self, invoices: pl.DataFrame | None = None) -> pl.DataFrame:
        orphan = (
            f"not exists (select 1 from {self._table('invoices')} i "
            "where i.practice_id::text = t.practice_id::text and i.invoice_id::text = t.invoice_id::text)"
        )
        return self._loose("invoice_lines", f"{_blank('practice_id')} or {_blank('invoice_id')} or {orphan}")

    def stage(self, assignment: pl.DataFrame | list[Path], folder: Path) -> list[StagedChunk]:
        """Each chunk's invoices and lines, as read, into `chunk-<n>/<table>.parquet` under `folder`:
        read a few whole practices at a time (about STAGE_LINES lines), so memory follows that group."""
        if isinstance(assignment, pl.DataFrame):
            given = assignment.select(*INVOICE, "chunk")
        else:
            given = pl.read_parquet(assignment, columns=[*INVOICE, "chunk"]) if assignment else None
        given = (
            pl.DataFrame(schema={"practice_id": pl.Utf8, "invoice_id": pl.Utf8, "chunk": pl.Int64})
            if given is None
            else given.with_columns(pl.col(k).cast(pl.Utf8) for k in INVOICE).with_columns(
                pl.col("chunk").cast(pl.Int64)
            )
        )
        if given["chunk"].null_count():
            raise ValueError("the assignment leaves an invoice key without a chunk")
        chunks = sorted(given["chunk"].unique().to_list())
        given = given.filter(
            ~(pl.col("practice_id").str.strip_chars() == "").fill_null(True)
            & ~(pl.col("invoice_id").str.strip_chars() == "").fill_null(True)
        )
        if given.select(INVOICE).is_duplicated().any():
            raise ValueError("the assignment names an invoice key twice; each key goes to one chunk")
        folder.mkdir(parents=True, exist_ok=True)
        writers: dict[tuple[str, int], pq.ParquetWriter] = {}
        schemas: dict[str, pa.Schema] = {}
        try:
            for group in self._stage_groups(given):
                keys = given.filter(pl.col("practice_id").is_in(group))
                # Few invoices (a nightly's): PostgreSQL reads only theirs; else the whole practices.
                few = keys.height <= FEW_INVOICES
                for table in HISTORY_TABLES:
                    rows = self._numbered(table, group, invoices=keys if few else None).with_columns(
                        pl.col(k).cast(pl.Utf8).alias(f"_key_{k}") for k in INVOICE
                    )
                    rows = rows.join(
                        keys, left_on=[f"_key_{k}" for k in INVOICE], right_on=list(INVOICE), how="inner"
                    ).drop(f"_key_{k}" for k in INVOICE)
                    for (chunk,), part in rows.partition_by("chunk", as_dict=True).items():
                        data = part.drop("chunk").to_arrow()
                        schemas.setdefault(table, data.schema)
                        writer = writers.get((table, chunk))
                        if writer is None:
                            path = folder / f"chunk-{chunk}" / f"{table}.parquet"
                            path.parent.mkdir(parents=True, exist_ok=True)
                            writer = writers[(table, chunk)] = pq.ParquetWriter(path, schemas[table])
                        writer.write_table(data.cast(schemas[table]))
                    if table not in schemas:
                        schemas[table] = rows.drop("chunk").head(0).to_arrow().schema
        finally:
            for writer in writers.values():
                writer.close()
        for table in HISTORY_TABLES:
            schema = schemas.get(table) or self._numbered(table, []).to_arrow().schema
            for chunk in chunks:
                path = folder / f"chunk-{chunk}" / f"{table}.parquet"
                if not path.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    pq.write_table(schema.empty_table(), path)
        return [
            StagedChunk(
                chunk,
                folder / f"chunk-{chunk}" / "invoices.parquet",
                folder / f"chunk-{chunk}" / "invoice_lines.parquet",
            )
            for chunk in chunks
        ]

    # Reading ------------------------------------------------------------------------------------------

    def _connect(self) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        parts = urlsplit(self.url)
        netloc = parts.netloc
        if self._password is not None:
            user, host = netloc.rsplit("@", 1) if "@" in netloc else ("", netloc)
            netloc = f"{user}:{quote(self._password, safe='')}@{host}"
        uri = urlunsplit(("postgresql", netloc, parts.path, parts.query, parts.fragment))
        try:
            self._con = adbc.connect(uri, autocommit=True)
            self._cur = self._con.cursor()
            self._cur.execute("begin isolation level repeatable read read only")
            self._cur.execute("set local timezone = 'UTC'")
        except Exception as err:  # noqa: BLE001 - any failure to connect is the same one-line stop
            self.close()
            raise SourceError(f"{self.url}: cannot connect ({self._reason(err)})") from None

    def _reason(self, err: BaseException) -> str:
        """The server's or libpq's reason, in one line, with no password in it."""
        text = str(err)
        found = re.findall(
            r"(Connection refused|password authentication failed for user \"[^\"]*\"|"
            r"database \"[^\"]*\" does not exist|server closed the connection unexpectedly|"
            r"terminating connection due to administrator command|no password supplied|"
            r"could not translate host name \"[^\"]*\"[^\n]*|timeout expired|"
            r"role \"[^\"]*\" does not exist|no pg_hba.conf entry[^\n]*)",
            text,
        )
        reason = found[0] if found else text.split("\n")[0]
        if self._password:
            reason = reason.replace(self._password, "***").replace(quote(self._password, safe=""), "***")
        return _one_line(reason)

    def _query(self, sql: str) -> pl.DataFrame:
        if self._cur is None:
            raise RuntimeError(f"{self.url}: the source is not open (call open(scratch) first)")
        try:
            self._cur.execute(sql)
            table = self._cur.fetch_arrow_table()
        except Exception as err:  # noqa: BLE001 - the server gone, a query refused: the run stops
            raise SourceError(f"{self.url}: reading failed ({self._reason(err)})") from None
        return pl.from_arrow(table, rechunk=False)

    def _table(self, table: str) -> str:
        return f"{_ident(self.schema)}.{_ident(table)}"

    def _column(self, table: str, column: str) -> str:
        name = f"t.{_ident(column)}"
        if self._types[table][column] in NATURAL:
            return f"{name} as {_ident(column)}"
        return f"{name}::text as {_ident(column)}"

    def _list(self, values: list[str]) -> str:
        return ", ".join(_literal(v) for v in values) if values else "null"

    def _of_invoices(self, invoices: pl.DataFrame, alias: str) -> str:
        """A condition: the row's (practice_id, invoice_id), as text, is one of `invoices`'."""
        keys = invoices.select(pl.col(k).cast(pl.Utf8) for k in INVOICE).drop_nulls().unique()
        arrays = ", ".join(
            "array[" + ", ".join(_literal(v) for v in keys[k].to_list()) + "]::text[]" for k in INVOICE
        )
        return (
            f"({alias}practice_id::text, {alias}invoice_id::text) in (select * from unnest({arrays}))"
            if keys.height
            else "false"
        )

    def _order(self, table: str) -> str:
        keys = [
            k
            for k in KEYS[table]
            if k not in (("practice_id", "invoice_id") if table in HISTORY_TABLES else ("practice_id",))
        ]
        return ", ".join([*(f't.{_ident(k)}::text collate "C"' for k in keys), "t.ctid"])

    def _counted(self, table: str) -> pl.DataFrame:
        """(practice_id, keyless, rows) of a table, once per run (the snapshot does not move)."""
        if table not in self._counts:
            self._counts[table] = self._query(
                f"select practice_id::text as practice_id, "
                f"({_blank('practice_id')} or {_blank('invoice_id')}) as keyless, count(*) as rows "
                f"from {self._table(table)} group by 1, 2"
            )
        return self._counts[table]

    def _offset(self, table: str) -> dict[str, int]:
        """For each practice_id of a reference table (as text; NULL_PRACTICE for none), how many rows come
        before its first one in key order: practices in byte order, rows without a practice_id last."""
        if table not in self._offsets:
            counts = self._query(
                f"select practice_id::text as practice_id, count(*) as rows from {self._table(table)} "
                "group by 1"
            )
            ordered = sorted(counts.iter_rows(), key=lambda r: (r[0] is None, (r[0] or "").encode("utf-8")))
            offsets, before = {}, 0
            for practice, rows in ordered:
                offsets[NULL_PRACTICE if practice is None else practice] = before
                before += rows
            self._offsets[table] = offsets
        return self._offsets[table]

    def _numbered(
        self,
        table: str,
        practices: list[str] | None = None,
        *,
        where: list[str] | None = None,
        columns: tuple[str, ...] | None = None,
        numbered_where: str | None = None,
        invoices: pl.DataFrame | None = None,
        inner_where: str | None = None,
    ) -> pl.DataFrame:
        """A table's rows as read (of `practices` only when given), `_row` first: the row's number within
        its practice in key order, plus the practice's offset. `where` filters after numbering."""
        wanted = [c for c in (columns or TABLES[table]) if c != ROW]
        conditions = []
        if practices is not None:
            named = f"t.practice_id::text in ({self._list(practices)})"
            conditions.append(f"({named} or t.practice_id is null)" if numbered_where else named)
        if invoices is not None:
            conditions.append(self._of_invoices(invoices, "t."))
        if inner_where is not None:
            conditions.append(f"({inner_where})")
        scope = ("where " + " and ".join(conditions)) if conditions else ""
        inner = ", ".join(self._column(table, c) for c in TABLES[table] if c in wanted or c in INVOICE)
        history = table in HISTORY_TABLES
        partition = "t.practice_id::text" + (", t.invoice_id::text" if history else "")
        sql = (
            f"select row_number() over (partition by {partition} order by {self._order(table)}) "
            f"as _n, t.practice_id::text as _practice, {inner} from {self._table(table)} t {scope}"
        )
        filters = [*(where or []), *([numbered_where] if numbered_where else [])]
        if filters:
            sql = f"select * from ({sql}) t where " + " and ".join(f"({f})" for f in filters)
        rows = self._query(sql)
        if history:
            return rows.select(pl.col("_n").cast(pl.Int64).alias(ROW), *(pl.col(c) for c in wanted))
        offsets = self._offset(table)
        start = (
            pl.col("_practice")
            .fill_null(NULL_PRACTICE)
            .replace_strict(offsets, default=0, return_dtype=pl.Int64)
        )
        return rows.select((start + pl.col("_n").cast(pl.Int64)).alias(ROW), *(pl.col(c) for c in wanted))

    def _loose(self, table: str, condition: str) -> pl.DataFrame:
        """The rows of a history table meeting `condition` (few): a condition on the invoice key alone,
        so that it picks whole invoices, each numbered on its own."""
        if table in HISTORY_TABLES:
            return self._numbered(table, inner_where=condition).sort(ROW)
        practices = self._query(
            f"select distinct practice_id::text as p from {self._table(table)} t where {condition}"
        )["p"].to_list()
        named = [p for p in practices if p is not None]
        rows = self._numbered(
            table,
            named,
            where=[condition],
            numbered_where="true" if None in practices else None,
        )
        return rows.sort(ROW)

    def _stage_groups(self, given: pl.DataFrame) -> list[list[str]]:
        """The assignment's practices in groups of about STAGE_LINES lines."""
        sizes = dict(
            self._counted("invoice_lines").group_by("practice_id").agg(pl.col("rows").sum()).iter_rows()
        )
        groups: list[list[str]] = [[]]
        used = 0
        for practice in sorted(given["practice_id"].unique().to_list()):
            lines = sizes.get(practice, 0)
            if groups[-1] and used + lines > STAGE_LINES:
                groups.append([])
                used = 0
            groups[-1].append(practice)
            used += lines
        return [g for g in groups if g]
