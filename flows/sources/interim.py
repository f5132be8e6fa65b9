"""INTERIM (replaced by FileSource): the Source protocol over today's whole-source text reader."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from flows.sources.files import read_source, table_file
from flows.sources.protocol import INVOICE_KEY_COLUMNS, StagedChunk

INVOICE = ["practice_id", "invoice_id"]


def _blank(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


class InterimSource:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.frames: dict[str, pl.DataFrame] = {}
        self.files: dict[str, str] = {}

    def describe(self) -> str:
        return str(self.folder)

    def file_name(self, table: str) -> str:
        return self.files[table]

    def open(self, scratch: Path) -> None:
        self.frames, self.files = read_source(self.folder)

    def close(self) -> None:
        self.frames = {}

    def reference(self) -> dict[str, pl.DataFrame]:
        return {t: f for t, f in self.frames.items() if t not in ("invoices", "invoice_lines")}

    def invoice_keys(self, changed_since=None) -> pl.DataFrame:
        return self.frames["invoices"].select(INVOICE_KEY_COLUMNS)

    def line_counts(self) -> pl.DataFrame:
        return self.frames["invoice_lines"].group_by(INVOICE).agg(pl.len().alias("lines"))

    def loose_invoices(self) -> pl.DataFrame:
        return self.frames["invoices"].filter(_blank("practice_id") | _blank("invoice_id"))

    def loose_lines(self, invoices: pl.DataFrame) -> pl.DataFrame:
        lines = self.frames["invoice_lines"]
        keyless = _blank("practice_id") | _blank("invoice_id")
        keyed = lines.filter(~keyless)
        orphans = keyed.join(invoices.unique(), on=INVOICE, how="anti", nulls_equal=True)
        return pl.concat([lines.filter(keyless), orphans]).sort("_row")

    def stage(self, assignment: pl.DataFrame, folder: Path) -> list[StagedChunk]:
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for table in ("invoices", "invoice_lines"):
            tagged = self.frames[table].join(assignment, on=INVOICE, how="inner")
            for (chunk,), part in tagged.partition_by("chunk", as_dict=True, include_key=False).items():
                part.sort("_row").write_parquet(folder / f"{chunk}-{table}.parquet")
        for chunk in sorted(assignment["chunk"].unique().to_list()):
            paths = [folder / f"{chunk}-{t}.parquet" for t in ("invoices", "invoice_lines")]
            for table, path in zip(("invoices", "invoice_lines"), paths, strict=True):
                if not path.exists():
                    self.frames[table].head(0).write_parquet(path)
            out.append(StagedChunk(chunk, *paths))
        return out


__all__ = ["InterimSource", "table_file"]
