"""A run's state, typed and handed from step to step in the open (flows.run.steps).

    Scope ──plan──▶ Plan (ChunkPlan...) ──resolve each──▶ ChunkResult... ──commit──▶ RunSummary

Everything here is small: paths, names and counts, never a frame of the history. A chunk is resolved
from the paths its ChunkPlan and the run's Loaded give (so a worker on another machine can do it) and
writes its results as a part of the warehouse's store (flows.warehouse.store); only the run's own process
writes the warehouse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class Scope:
    """What a run recomputes: a date range and practices (backfill), or changed + held (nightly)."""

    flow: str
    date_from: date | None = None
    date_to: date | None = None
    practices: tuple[str, ...] = ()
    # A nightly looks at invoices updated since the last watermark less this (commit order is not
    # updated_at order: a row committed late may carry an earlier updated_at).
    overlap: timedelta = timedelta(0)

    @property
    def everything(self) -> bool:
        return self.date_from is None and self.date_to is None and not self.practices

    @property
    def whole_source(self) -> bool:
        """Whether the run answers for every invoice of the source (a nightly, or a backfill of all)."""
        return self.flow == "nightly" or self.everything

    def describe(self, watermark: datetime | None = None) -> str:
        if self.flow == "nightly":
            since = watermark.isoformat() if watermark else "the beginning"
            return f"changed since {since} + held"
        parts = [f"from {self.date_from or 'the start'} to {self.date_to or 'the end'}"]
        if self.practices:
            parts.append("practices " + ", ".join(self.practices))
        return "issued " + "; ".join(parts)


@dataclass(frozen=True)
class Loaded:
    """What the load step leaves for the others: the source's reference tables, parsed once, and the
    problems of rows no chunk holds (reference rows, lines without an invoice, rows without keys)."""

    source: str  # where the source is (runs.source): a folder, or a URL without its password
    files: dict[str, str]  # table -> what exception details call it (invoices.csv, ...)
    reference: Path  # folder: <table>.parquet, each reference table typed
    problems: Path  # Parquet: the problems of the reference tables and of the loose rows
    # folder: the rows no chunk takes (lines without an invoice, rows without keys): raw_invoices.parquet
    # and raw_invoice_lines.parquet as read (text), lines.parquet typed
    loose: Path


@dataclass(frozen=True)
class ChunkPlan:
    """One chunk: whole practice x month partitions of about chunk_lines lines, and where its rows are."""

    chunk: int
    part: str  # the store part its results (and its source rows) go to
    folder: Path  # the part's folder
    invoices: int
    lines: int


@dataclass(frozen=True)
class Plan:
    scope_text: str  # runs.scope
    chunks: tuple[ChunkPlan, ...]
    invoices: int
    lines: int
    watermark: datetime | None  # the last successful run's
    new_watermark: datetime | None  # this run's, when it answers for the whole source
    keys: tuple[
        Path, ...
    ]  # Parquet (practice_id, invoice_id, chunk, lines): every invoice the run recomputes
    # Parquet: every invoice row's keys and status, as text (what the accounting check judges against)
    source_invoices: tuple[Path, ...]
    # Parquet (practice_id, invoice_id): invoices in scope the run let go of (no longer exportable)
    forgotten: tuple[Path, ...] = ()


@dataclass(frozen=True)
class PartFile:
    """A file a chunk wrote into its part, as the chunk saw it: the single writer loads it only if it is
    still exactly that file (a chunk may run on another machine, and be run again after a worker died)."""

    table: str
    path: Path
    rows: int
    size: int  # bytes
    digest: str  # SHA-256 of the file's bytes


@dataclass(frozen=True)
class ChunkResult:
    """What resolving a chunk returns to the run: counts, and the files it wrote; never a frame."""

    chunk: int
    part: str
    invoices_considered: int = 0
    invoices_ready: int = 0
    invoices_held: int = 0
    invoices_not_xero: int = 0
    lines_resolved: int = 0
    files: tuple[PartFile, ...] = ()
    seconds: float = 0.0  # the chunk's own wall time, where it ran (the benchmark's per-partition cost)
    worker: str = ""  # host:pid of the process that resolved it


@dataclass
class RunSummary:
    run_id: str
    flow: str
    invoices_considered: int = 0
    invoices_ready: int = 0
    invoices_held: int = 0
    invoices_not_xero: int = 0
    lines_resolved: int = 0
    exceptions_open: int = 0
    batches_written: int = 0
    invoices_batched: int = 0
    held_by_code: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    # what the user should know that did not stop the run (a practice's CSV files not written, ...)
    warnings: list[str] = field(default_factory=list)
    # seconds each step took, for the benchmark and the curious
    stages: dict[str, float] = field(default_factory=dict)
    # the chunks' own seconds, summed over wherever they ran (on a cluster: the workers' share)
    chunk_seconds: float = 0.0

    def add(self, part: ChunkResult) -> None:
        self.chunk_seconds += part.seconds
        for name in (
            "invoices_considered",
            "invoices_ready",
            "invoices_held",
            "invoices_not_xero",
            "lines_resolved",
        ):
            setattr(self, name, getattr(self, name) + getattr(part, name))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class PushSummary:
    """What a push did, practice by practice (flows.xero.push)."""

    push_id: str
    sent: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    not_active: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    # Skipped because Xero kept failing or refused the credentials: the push did not finish them.
    unfinished: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    batches_sent: int = 0

    @classmethod
    def of(cls, outcome) -> PushSummary:
        def count(rows: list[dict]) -> dict[str, int]:
            found: dict[str, int] = {}
            for row in rows:
                found[row["practice_id"]] = found.get(row["practice_id"], 0) + 1
            return dict(sorted(found.items()))

        return cls(
            push_id=outcome.push_id,
            sent=count(outcome.sent),
            rejected=count(outcome.rejected),
            not_active=count(outcome.not_active),
            skipped=dict(sorted(outcome.skipped.items())),
            unfinished=dict(sorted(outcome.unfinished.items())),
            requests=len(outcome.requests),
            batches_sent=outcome.batches_sent,
        )

    def as_dict(self) -> dict:
        return asdict(self)
