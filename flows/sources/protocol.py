"""What a run needs from a source, whatever holds it (contract section 2): files today, PostgreSQL next.

A run never holds the whole source in memory. It reads the six reference tables whole (they are small),
plans from the invoices' keys and each invoice's line count, and then has the source write each chunk's
invoices and lines (the rows exactly as the source holds them, with `_row`) to Parquet files that one
chunk reads at a time, on this machine or on a worker. Peak memory follows the chunk, not the history.

"As read" means: the contract's columns under their contract names, in contract order, plus `_row` (the
1-based data row of the table, which every exception detail cites), with values as the source holds them:
text for a CSV file; for a Parquet file (or a database), the column's own type, which
transforms.parse_sources uses as it is when it is the contract's type (a date, a timestamp, a decimal, an
integer, a boolean) and reads as text otherwise. Keys are compared exactly as held (a blank key is no key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import polars as pl

REFERENCE_TABLES = (
    "practices",
    "tracking_categories",
    "tracking_options",
    "team_members",
    "service_templates",
    "clients",
)
HISTORY_TABLES = ("invoices", "invoice_lines")
INVOICE_KEY_COLUMNS = ("practice_id", "invoice_id", "issue_date", "status", "updated_at", "_row")


class SourceError(Exception):
    """The source cannot be used at all; the run stops before changing anything. Its text is one line
    naming the file or table (and the column) and what to do."""


@dataclass(frozen=True)
class StagedChunk:
    """One chunk's rows, as read, written by the source: what a chunk task reads (a path, never a frame)."""

    chunk: int
    invoices: Path  # Parquet: every row of the chunk's invoices (all copies of a repeated key)
    lines: Path  # Parquet: every line whose (practice_id, invoice_id) is one of the chunk's invoices


class Source(Protocol):
    def describe(self) -> str:
        """Where the source is, for `runs.source` and messages: a folder, or a URL without its password."""
        ...

    def file_name(self, table: str) -> str:
        """How exception details name the table: `invoices.csv`, `invoices.parquet`, or the table's name."""
        ...

    def open(self, scratch: Path) -> None:
        """Check that every table and every contract column is there and readable, else raise SourceError
        (nothing has changed yet). `scratch` is a folder of the run's own for whatever the source needs to
        prepare (a CSV file converted to Parquet once, say); the run deletes it."""
        ...

    def close(self) -> None: ...

    def reference(self) -> dict[str, pl.DataFrame]:
        """The six reference tables (REFERENCE_TABLES), whole, as read."""
        ...

    def practices(self) -> pl.DataFrame:
        """(practice_id, invoices, lines): every practice id the invoices and invoice_lines rows name, as
        text, with how many rows of each it has (rows without a practice_id are left out). Small: a run
        plans a group of whole practices at a time from it."""
        ...

    def invoice_keys(
        self, changed_since: datetime | None = None, practices: list[str] | None = None
    ) -> pl.DataFrame:
        """INVOICE_KEY_COLUMNS of the invoices rows, as read (of `practices` only, by the text of their
        practice_id, when given): every row when `changed_since` is None, else at least every row whose
        updated_at is not known to be at or before it (a value that does not parse is returned). Rows
        without a practice_id or invoice_id are returned too."""
        ...

    def line_counts(
        self, practices: list[str] | None = None, invoices: pl.DataFrame | None = None
    ) -> pl.DataFrame:
        """(practice_id, invoice_id, lines): how many invoice_lines rows name each pair (of `practices`
        only when given; of the (practice_id, invoice_id) pairs of `invoices` only, by their text, when
        given: a nightly counts only what it recomputes), keys as read (a blank or null key is its own
        group)."""
        ...

    def loose_invoices(self) -> pl.DataFrame:
        """The invoices rows, as read, without a practice_id or invoice_id (blank or null): no chunk
        takes them, and their problems are the whole source's. There are few."""
        ...

    def loose_lines(self, invoices: pl.DataFrame) -> pl.DataFrame:
        """The invoice_lines rows, as read, that no invoice of `invoices` (practice_id, invoice_id: every
        invoice key of the source) can take: lines without a practice_id or invoice_id, and lines whose
        invoice does not exist (orphans). A run reads them whole; there are few."""
        ...

    def stage(self, assignment: pl.DataFrame, folder: Path) -> list[StagedChunk]:
        """Write each chunk's rows under `folder`: `assignment` is (practice_id, invoice_id, chunk), one row
        per invoice key the run recomputes; every invoices row with such a key and every invoice_lines row
        naming it goes to that chunk's files, as read (in no particular order: `_row` says where each row
        was). A row whose practice_id or invoice_id is blank or null is never staged: it is loose
        (`loose_invoices`, `loose_lines`). Every chunk named by `assignment` gets both files, empty or not.
        One pass over the source, bounded memory."""
        ...
