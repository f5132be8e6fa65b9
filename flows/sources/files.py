"""Read a source folder (one `<table>.parquet` or `<table>.csv` per table) as text columns.

Anything that makes the whole source unusable (a missing file or column, an unreadable file) raises
`SourceError` with one line naming the file and what is wrong; values that merely do not parse are left
for `transforms.parse_sources` to hold against the invoices they belong to.

What a real export may look like, and is read as it was meant (tests/reliability/matrix.py shows each):
a UTF-8 byte-order mark, CRLF or CR-only line ends, quoted fields holding commas or line breaks, blank
padding around header names, columns in any order, extra columns (ignored), and Parquet columns of any
scalar type (read as their text: a float quantity reads as `1.5`, a timestamp as ISO-8601 in UTC).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import polars as pl

from flows.sources.protocol import SourceError
from transforms.parse_sources import ROW, TABLES

__all__ = ["SourceError", "read_source", "read_table", "table_file"]


def _one_line(text: object, limit: int = 120) -> str:
    """A value fit for a one-line message: control characters shown as spaces, long text cut with '...'."""
    flat = re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", str(text))
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


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


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SourceError(
            f"{path}: line {line} is not valid UTF-8 (byte offset {err.start}); save the file as UTF-8"
        ) from None
    if not text or text.isspace():
        raise SourceError(f"{path}: file is empty (it needs at least a header row)")
    if "\n" not in text and "\r" in text:  # CR-only line ends (old Mac exports)
        text = text.replace("\r", "\n")
        raw = text.encode("utf-8")
    names = _header(path, text[:65536])  # the header row is in the first 64 KB
    try:
        frame = pl.read_csv(raw, infer_schema=False, raise_if_empty=True)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        reason = _first_bad_record(text, len(names)) or _one_line(
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        )
        raise SourceError(
            f"{path}: cannot be read as CSV ({reason}); check its quotes and separators"
        ) from None
    if len(names) == frame.width:
        frame.columns = names
    return frame


def _first_bad_record(text: str, width: int) -> str | None:
    """Where a CSV the reader refused first goes wrong: a row with more fields than the header, or a quote
    left open. Only called after a failure, so big files pay nothing for it."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            if reader.line_num > 1 and len(record) > width:
                return f"line {reader.line_num} has {len(record)} fields, the header has {width}"
    except csv.Error:
        return f"a quote opened near line {reader.line_num} is not closed"
    if text.count('"') % 2:
        return "a quote is not closed"
    return None


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is the same one-line stop
        reason = _one_line(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        raise SourceError(f"{path}: cannot be read as Parquet ({reason})") from None
    wanted = TABLES.get(path.stem, {})
    for name, dtype in frame.schema.items():
        if name.strip() in wanted and dtype.is_nested():
            raise SourceError(
                f"{path}: column {name} holds {dtype} values, not single values; export it as text or numbers"
            )
    try:
        return frame.with_columns(
            _as_text(name, dtype) for name, dtype in frame.schema.items() if name.strip() in wanted
        )
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as err:
        reason = _one_line(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        raise SourceError(f"{path}: a column cannot be read as text ({reason})") from None


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A Parquet column as the text a CSV export would hold."""
    column = pl.col(name)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return column.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ").alias(name)
        return column.dt.to_string("%Y-%m-%dT%H:%M:%S%.f").alias(name)
    if dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d").alias(name)
    if dtype == pl.Boolean:
        return column.cast(pl.Utf8).alias(name)
    if dtype == pl.Binary:
        return column.cast(pl.Utf8, strict=False).alias(name)
    return column.cast(pl.Utf8).alias(name)


def read_table(folder: Path, table: str) -> tuple[pl.DataFrame, str]:
    """The table as text columns in contract order, with `_row` (1-based data row), and its file name."""
    path = table_file(folder, table)
    frame = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    stripped = [c.strip() for c in frame.columns]
    wanted = list(TABLES[table])
    repeated = sorted({c for c in stripped if stripped.count(c) > 1 and c in wanted})
    if repeated:
        raise SourceError(f"{path}: column {_one_line(repeated[0])} appears twice in the header; keep one")
    missing = [c for c in wanted if c not in stripped]
    if missing:
        header = _one_line(", ".join(stripped), 200)
        hint = "; is it separated by ';' instead of ','?" if len(stripped) == 1 and ";" in stripped[0] else ""
        raise SourceError(f"{path}: column {', '.join(missing)} is missing (header has: {header}){hint}")
    original = {name: column for column, name in zip(frame.columns, stripped, strict=True) if name in wanted}
    return (
        frame.select(pl.col(original[c]).cast(pl.Utf8).alias(c) for c in wanted)
        .with_row_index(ROW, offset=1)
        .with_columns(pl.col(ROW).cast(pl.Int64)),
        path.name,
    )


def read_source(folder: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Every table of the source, or a SourceError before anything is changed."""
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, str] = {}
    for table in TABLES:
        frames[table], files[table] = read_table(folder, table)
    return frames, files
