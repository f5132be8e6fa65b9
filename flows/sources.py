"""Read a source folder (one `<table>.parquet` or `<table>.csv` per table) as text columns.

Anything that makes the whole source unusable (a missing file or column, an unreadable file) raises
`SourceError` with one line naming the file and what is wrong; values that merely do not parse are left
for `transforms.parse_sources` to hold against the invoices they belong to.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from transforms.parse_sources import ROW, TABLES


class SourceError(Exception):
    """The source cannot be used at all; the run stops before changing anything."""


def table_file(folder: Path, table: str) -> Path:
    candidates = [folder / f"{table}.parquet", folder / f"{table}.csv"]
    found = [p for p in candidates if p.is_file()]
    if not folder.is_dir():
        raise SourceError(f"{folder}: source folder does not exist")
    if not found:
        raise SourceError(f"{folder}/{table}.csv: file is missing (expected {table}.csv or {table}.parquet)")
    if len(found) > 1:
        raise SourceError(f"{folder}: both {table}.parquet and {table}.csv exist; keep one")
    return found[0]


def _read_csv(path: Path) -> pl.DataFrame:
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SourceError(f"{path}: line {line} is not valid UTF-8 (byte offset {err.start}); save it as UTF-8") from None
    if not raw.strip():
        raise SourceError(f"{path}: file is empty (it needs at least a header row)")
    try:
        return pl.read_csv(raw, infer_schema=False, missing_utf8_is_empty_string=False, raise_if_empty=True)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as err:
        reason = str(err).strip().splitlines()[0]
        raise SourceError(f"{path}: cannot be read as CSV ({reason})") from None


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is the same one-line stop
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SourceError(f"{path}: cannot be read as Parquet ({reason})") from None
    return frame.with_columns(_as_text(name, dtype) for name, dtype in frame.schema.items())


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if dtype == pl.Datetime:
        return column.dt.to_string("%Y-%m-%dT%H:%M:%S%.f").alias(name)
    if dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d").alias(name)
    return column.cast(pl.Utf8).alias(name)


def read_table(folder: Path, table: str) -> tuple[pl.DataFrame, str]:
    """The table as text columns in contract order, with `_row` (1-based data row), and its file name."""
    path = table_file(folder, table)
    frame = _read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    frame = frame.rename({c: c.strip() for c in frame.columns})
    wanted = list(TABLES[table])
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise SourceError(f"{path}: column {', '.join(missing)} is missing (header has: {', '.join(frame.columns)})")
    return (
        frame.select(pl.col(wanted).cast(pl.Utf8)).with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64)),
        path.name,
    )


def read_source(folder: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """Every table of the source, or a SourceError before anything is changed."""
    frames: dict[str, pl.DataFrame] = {}
    files: dict[str, str] = {}
    for table in TABLES:
        frames[table], files[table] = read_table(folder, table)
    return frames, files
