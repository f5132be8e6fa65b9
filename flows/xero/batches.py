"""The batch-writing step of a run: every ready invoice whose content was never sent, rendered by
flows.xero.files into Xero JSON bodies and CSV files under the run's staging folder, and recorded in
xero_batches and export_ledger (the batch_id that xero_invoices and xero_line_items show is read from it).

Three threads share the work. The warehouse's owns the run's connection for the step: it streams each
group's lines (sorted by invoice) and records the group's invoices in their batches as the invoice count
cuts them, while this thread renders the lines span by span as they arrive, and the files' writes each
span's files while the next span is rendered. A batch is cut by bytes only when invoices are huge: then
the invoices it moves are recorded again once rendered.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from flows.warehouse import writes as wh
from flows.warehouse.store import Store
from flows.xero.files import (
    Written,
    assign_batches,
    cut_batches,
    plan_batch_files,
    practice_folders,
    render_heads,
    render_invoices,
    write_files,
)
from flows.xero.import_template import (
    CsvTemplates,
    csv_templates,
    standard_templates,
    tax_rates_from_xero,
)
from transforms.xero_payload import SENT_HEAD_FIELDS, SENT_LINE_FIELDS

INVOICE = ["practice_id", "invoice_id"]
# What an invoice's JSON and CSV are made of (flows.xero.files), and line_count to group practices by.
HEAD_FIELDS = [*INVOICE, *SENT_HEAD_FIELDS, "line_count"]
# What a line's JSON and CSV are made of (flows.xero.files), line_no first to order the lines by.
LINE_FIELDS = SENT_LINE_FIELDS
# Lines rendered at a time: the files of a span are written while the next span is rendered.
SPAN_LINES = 150_000
STREAM_ROWS = 50_000


def _practice_groups(pending: pl.DataFrame, chunk_lines: int) -> list[list[str]]:
    """Whole practices (so batch numbering stays per practice) in groups of about `chunk_lines` lines."""
    sizes = pending.group_by("practice_id").agg(pl.col("line_count").sum()).sort("practice_id")
    groups: list[list[str]] = [[]]
    used = 0
    for practice_id, lines in sizes.iter_rows():
        if groups[-1] and used + lines > chunk_lines:
            groups.append([])
            used = 0
        groups[-1].append(practice_id)
        used += lines
    return groups


def _spans(heads: pl.DataFrame, size: int) -> list[tuple[int, int]]:
    """Ranges [start, end) of `heads` (sorted by practice) holding whole practices, of about `size`
    lines by their line_count."""
    practice = heads["practice_id"]
    starts = np.flatnonzero(practice.ne_missing(practice.shift(1)).fill_null(True).to_numpy()).tolist()
    lines_before = np.zeros(heads.height + 1, dtype=np.int64)
    np.cumsum(heads["line_count"].fill_null(0).to_numpy(), out=lines_before[1:])
    spans: list[tuple[int, int]] = []
    begin = 0
    for start, end in zip(starts, [*starts[1:], heads.height], strict=True):
        if start > begin and lines_before[end] - lines_before[begin] > size:
            spans.append((begin, start))
            begin = start
    spans.append((begin, heads.height))
    return spans


@dataclass(frozen=True)
class BatchRun:
    """What the batch step needs of its run: the run's warehouse connection, the folder its files are
    staged in (published when the run commits), and the run's id and start, recorded with each batch."""

    con: duckdb.DuckDBPyConnection
    staging: Path
    run_id: str
    started_at: datetime
    store: Store  # the stored tables of the run's connection (flows.warehouse.store)
    scratch: Path  # a folder of the run's own, deleted after it


@dataclass(frozen=True)
class Pending:
    """The invoices to batch, found once for the step: their keys, line_count and digest as a Parquet
    file, and each practice's lines among them (what the CSV templates are chosen for)."""

    keys: Path | None
    sizes: pl.DataFrame  # practice_id, line_count


_END = object()


class _Lines:
    """A group's lines as the warehouse thread streams them, sorted by invoice (their row number in the
    group's heads) and line_no."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue()
        self.stop = threading.Event()  # the step failed: stop streaming and recording
        self.buffered: list[pl.DataFrame] = []
        self.done = False

    def until(self, end: int) -> pl.DataFrame:
        """The lines of the invoices before `end` not taken yet (they arrive in invoice order)."""
        while not self.done and (not self.buffered or self.buffered[-1]["invoice"][-1] < end):
            item = self.queue.get()
            if item is _END:
                self.done = True
            elif isinstance(item, BaseException):
                raise item
            else:
                self.buffered.append(item)
        if not self.buffered:
            return pl.DataFrame()
        lines = pl.concat(self.buffered, rechunk=False)
        cut = int(np.searchsorted(lines["invoice"].to_numpy(), end, side="left"))
        self.buffered = [lines.slice(cut)] if cut < lines.height else []
        return lines.slice(0, cut)


class _Record:
    """Records what was batched in export_ledger and xero_batches, on the run's connection (used by the
    warehouse thread only, during the step)."""

    def __init__(self, run: BatchRun) -> None:
        self.run = run
        self.fields = ", ".join(f"x.{c}" for c in LINE_FIELDS)

    def stream(self, heads: pl.DataFrame, lines: _Lines, by_count: pl.DataFrame) -> bool:
        """Stream the lines of `heads` (sorted by practice_id, invoice_id) into `lines`, each with
        `invoice`: its invoice's row number in them. Then, if every invoice has lines, record
        `by_count` (practice_id, invoice_id, digest, batch_id: the batches as the count cuts them) and
        say so."""
        con = self.run.con
        counts = np.zeros(heads.height, dtype=np.int64)
        try:
            con.register(
                "_pending",
                wh.arrow(heads.select(*INVOICE, pl.int_range(pl.len(), dtype=pl.Int64).alias("invoice"))),
            )
            try:
                # Only the parts holding these invoices are read (a nightly's are mostly its own).
                items = self.run.store.current_rows_sql(
                    "xero_line_items", "select practice_id, invoice_id from _pending"
                )
                reader = con.execute(
                    f"""select p.invoice, {self.fields} from ({items}) x
                        join _pending p using (practice_id, invoice_id) order by p.invoice, x.line_no"""
                ).fetch_record_batch(STREAM_ROWS)
                for batch in reader:
                    if lines.stop.is_set():
                        return False
                    frame = pl.from_arrow(batch)
                    counts += np.bincount(frame["invoice"].to_numpy(), minlength=heads.height)
                    lines.queue.put(frame)
            finally:
                con.unregister("_pending")
        except BaseException as error:
            lines.queue.put(error)
            raise
        finally:
            lines.queue.put(_END)
        if lines.stop.is_set() or not (counts > 0).all():
            return False
        self.sent(by_count)
        return True

    def sent(self, ledger: pl.DataFrame) -> None:
        """`ledger`: practice_id, invoice_id, digest, batch_id of invoices put in batches."""
        self._in_transaction(self._sent, ledger)

    def _sent(self, ledger: pl.DataFrame) -> None:
        con = self.run.con
        con.register("_ledger", wh.arrow(ledger))
        try:
            con.execute(
                "insert into export_ledger select practice_id, invoice_id, digest, batch_id, ?, ? from _ledger",
                [self.run.run_id, self.run.started_at],
            )
        finally:
            con.unregister("_ledger")

    def moved(self, recorded: pl.DataFrame, ledger: pl.DataFrame) -> None:
        """Record again the invoices whose batch is not the one `recorded` (the same invoices) said."""
        changed = recorded["batch_id"] != ledger["batch_id"]
        self._in_transaction(self._moved, recorded.filter(changed), ledger.filter(changed))

    def _moved(self, before: pl.DataFrame, after: pl.DataFrame) -> None:
        con = self.run.con
        con.register("_moved", wh.arrow(before))
        try:
            con.execute(
                """delete from export_ledger e using _moved m where e.practice_id = m.practice_id
                   and e.invoice_id = m.invoice_id and e.batch_id = m.batch_id"""
            )
        finally:
            con.unregister("_moved")
        self._sent(after)

    def finish(self, batches: pl.DataFrame) -> None:
        wh.insert(
            self.run.con,
            "xero_batches",
            batches.with_columns(
                pl.lit(self.run.run_id).alias("run_id"), pl.lit(self.run.started_at).alias("created_at")
            ),
        )

    def _in_transaction(self, fn, *args) -> None:
        """Run `fn` in a transaction of its own, on one DuckDB thread: these writes (an index insert,
        updates, the commit's checkpoint) gain little from more, and the other threads of the step
        need the cores."""
        con = self.run.con
        threads = con.execute("select current_setting('threads')").fetchone()[0]
        con.execute("set threads = 1")
        try:
            con.execute("begin")
            try:
                fn(*args)
            except BaseException:
                try:
                    con.execute("rollback")
                except duckdb.Error:
                    pass
                raise
            con.execute("commit")
        finally:
            con.execute(f"set threads = {int(threads)}")


def _only_join(only: Sequence[Path] | None) -> str:
    if only is None:
        return ""
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in only)
    return f"semi join read_parquet([{listed}]) o using (practice_id, invoice_id)"


# Ready invoices whose content was never batched (the latest batch that carried the invoice carried
# another digest, or none did: the view sent_batches) and that Xero does not have (of `only`, Parquet files
# of practice_id, invoice_id, when given). Read from invoice_tracking and the ledger alone: the headers
# follow, a group of practices at a time (_pending_heads).
PENDING_SQL = """
    with latest as (
        select practice_id, invoice_id, arg_max(digest, (batched_at, batch_id)) as digest
        from export_ledger group by all
    )
    select t.practice_id, t.invoice_id, t.line_count, t.digest
    from invoice_tracking t
    {only}
    left join latest l using (practice_id, invoice_id)
    where t.invoice_state = 'ready' and l.digest is distinct from t.digest
      -- in Xero already: a change of its tracking is retracking's, of its lines the finance lead's
      and not exists (select 1 from xero_sent_invoices s
                      where s.practice_id = t.practice_id and s.invoice_id = t.invoice_id)
"""


def find_pending(run: BatchRun, only: Sequence[Path] | None) -> Pending:
    """The invoices to batch (see write_batches): one scan of the warehouse for their keys, their lines in
    the source (to group practices by) and digests (narrow: the headers of 2M invoices do not fit in
    DuckDB's memory_limit in one query), kept in a file of the run's scratch for the batch step, which
    reads the headers a group of practices at a time."""
    sizes = pl.DataFrame(schema={"practice_id": pl.Utf8, "line_count": pl.Int64})
    if only is not None and not only:
        return Pending(None, sizes)
    keys = wh.query(run.con, PENDING_SQL.format(only=_only_join(only)))
    path = run.scratch / "pending.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    keys.write_parquet(path)
    found = keys.group_by("practice_id").agg(pl.col("line_count").sum().cast(pl.Int64)).sort("practice_id")
    return Pending(path, found)


def _pending_heads(run: BatchRun, keys: pl.DataFrame) -> pl.DataFrame:
    """HEAD_FIELDS and digest of these pending invoices, read only from the parts that hold them."""
    con = run.con
    con.register("_wanted", wh.arrow(keys.select(*INVOICE, "digest")))
    try:
        heads = run.store.current_rows_sql("xero_invoices", "select practice_id, invoice_id from _wanted")
        fields = ", ".join(f"i.{c}" for c in HEAD_FIELDS)
        return wh.query(
            con, f"select {fields}, w.digest from ({heads}) i join _wanted w using (practice_id, invoice_id)"
        )
    finally:
        con.unregister("_wanted")


def practice_templates(
    run: BatchRun, settings, entries: dict[str, dict], sizes: pl.DataFrame
) -> tuple[CsvTemplates, list[str]]:
    """The CSV template of every practice with invoices to batch (`sizes`, flows.xero.import_template): tax
    rate names read from its Xero organisation when it has a connection, else from the CSV settings file
    (`entries`, read at the start of the run) over Xero's standard names; and warnings of organisations
    that could not be read."""
    practices = sorted(sizes["practice_id"].to_list())
    from_xero, warnings = tax_rates_from_xero(settings, practices)
    templates = csv_templates(
        settings.xero_csv_settings,
        entries,
        practices,
        settings.csv_date_format,
        settings.csv_tax_region,
        from_xero,
    )
    return templates, warnings


def csv_refused_warnings(refused: dict[str, list[str]], templates: CsvTemplates, settings) -> list[str]:
    """One warning per practice whose CSV files were not written, naming the codes without a name."""
    return [
        f"practice {practice_id}: no CSV import files written: tax type {', '.join(codes)} has no display "
        f'name in {templates.of(practice_id).named_by}; add it under "tax_rates" for {practice_id} in '
        f"{settings.xero_csv_settings} (its JSON bodies are written)"
        for practice_id, codes in refused.items()
    ]


def write_batches(
    run: BatchRun,
    only: Sequence[Path] | None,
    max_invoices: int,
    max_bytes: int,
    chunk_lines: int = 2_000_000,
    templates: CsvTemplates | None = None,
    pending: Pending | None = None,
) -> tuple[int, int, list[str], dict[str, list[str]]]:
    """Batch every ready invoice whose content was never sent and that Xero does not have: those of `only` (Parquet files with
    practice_id, invoice_id: the invoices a backfill recomputed) when given, else every one in the
    warehouse (nightly: nothing pending is forgotten). Practices go in groups of about `chunk_lines`
    lines (bounded memory). CSV files follow each practice's template (`templates`: date format, tax
    names); returns the batches and invoices written, the files, and per practice the tax type codes
    that kept its CSV files from being written."""
    templates = templates or standard_templates()
    con = run.con
    pending = pending or find_pending(run, only)
    if pending.keys is None or pending.sizes.is_empty():
        return 0, 0, [], {}
    # A group of practices at a time: the headers of a 10M-line backfill (2M invoices) in one query do
    # not fit in DuckDB's memory_limit; as frames they are what the step holds anyway.
    keys = pl.read_parquet(pending.keys)
    read = [
        _pending_heads(run, keys.filter(pl.col("practice_id").is_in(group)))
        for group in _practice_groups(pending.sizes, chunk_lines)
    ]
    pending = pl.concat(read).sort(INVOICE)
    if pending.is_empty():
        return 0, 0, [], {}
    sequences = dict(
        con.execute("select practice_id, count(*) + 1 from xero_batches group by practice_id").fetchall()
    )
    # Folder names are decided among every practice the source has and every practice with batches.
    known = con.execute(
        "select practice_id from raw_practices where practice_id is not null union select practice_id from xero_batches"
    ).fetchall()
    folders = practice_folders([*(r[0] for r in known), *pending["practice_id"].unique()])
    record = _Record(run)
    parts: list[Written] = []
    futures: list[Future] = []
    lines: _Lines | None = None
    checks: list[tuple[Future, pl.DataFrame, pl.DataFrame]] = []
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-warehouse") as warehouse,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch-files") as files,
    ):
        try:
            writing: Future | None = None
            for group in _practice_groups(pending, chunk_lines):
                heads = pending.filter(pl.col("practice_id").is_in(group))
                by_count = heads.select(*INVOICE, "digest").with_columns(
                    cut_batches(
                        heads["practice_id"], None, sequences, max_invoices, max_bytes, folders
                    ).invoice_batch.alias("batch_id")
                )
                lines = _Lines()
                streaming = warehouse.submit(record.stream, heads, lines, by_count)
                futures.append(streaming)
                head_text = render_heads(heads, templates)
                ledgers = []
                for start, end in _spans(heads, SPAN_LINES):
                    items = lines.until(end)
                    if items.is_empty():
                        continue
                    rendered = render_invoices(
                        heads.slice(start, end - start),
                        items.with_columns(pl.col("invoice") - start),
                        head_text.slice(start, end - start),
                        templates,
                    )
                    written, planned = plan_batch_files(
                        assign_batches(rendered, sequences, max_invoices, max_bytes, folders), run.staging
                    )
                    if writing is not None:
                        writing.result()  # the files of one span waiting to be written at most
                    writing = files.submit(write_files, planned)
                    futures.append(writing)
                    parts.append(written)
                    ledgers.append(written.ledger.select(*INVOICE, "digest", "batch_id"))
                if ledgers:
                    checks.append((streaming, by_count, pl.concat(ledgers)))
            # Each group's invoices recorded by count (or not at all: some had no lines) are set right,
            # once the next group is on its way.
            for streaming, by_count, ledger in checks:
                if not streaming.result():
                    futures.append(warehouse.submit(record.sent, ledger))
                elif not by_count["batch_id"].equals(ledger["batch_id"]):
                    futures.append(warehouse.submit(record.moved, by_count, ledger))
            if parts:
                futures.append(warehouse.submit(record.finish, pl.concat([w.batches for w in parts])))
            for future in futures:
                future.result()
        except BaseException:
            if lines is not None:
                lines.stop.set()
            wait(futures)
            raise
    batched = sum(w.ledger.height for w in parts)
    refused: dict[str, set[str]] = {}
    for w in parts:
        for practice_id, codes in w.csv_refused.items():
            refused.setdefault(practice_id, set()).update(codes)
    return (
        sum(w.batches.height for w in parts),
        batched,
        [p for w in parts for p in w.paths],
        {p: sorted(codes) for p, codes in sorted(refused.items())},
    )
