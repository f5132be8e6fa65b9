"""The steps of a run, as plain functions of the run's typed state (flows.run.state); flows.run.pipeline
orders them and runs each as a Prefect task.

    load      the source opened and checked; reference tables parsed once          -> Loaded
    plan      invoice keys and line counts only: which invoices, in which chunks;
              each chunk's source rows staged into its part                         -> Plan
    resolve   one chunk from its files: parse, resolve (transforms), check, and
              write its results as a part of the store (no warehouse connection)    -> ChunkResult
    commit    the single writer: the index pointed at the new parts, exceptions
              merged, the views refreshed
    finish    problems of the whole source (orphan lines, rows without keys)
    batches   flows.xero.batches
    check     flows.run.accounting, on what is about to be published
    record    the run's row in `runs`, the analyst views

Memory follows the chunk: no step holds the history's invoices or lines, only their keys and counts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from flows import faults
from flows.reports.views import create_views
from flows.run.accounting import RUN_CODE_LIST, AccountingCheckFailed, check_accounting
from flows.run.publish import Run
from flows.run.state import ChunkPlan, ChunkResult, Loaded, PartFile, Plan, RunSummary, Scope
from flows.run.stops import Stopped
from flows.sources.protocol import REFERENCE_TABLES, Source
from flows.warehouse import writes as wh
from flows.warehouse.store import Part, part_name, write_part_file
from transforms import hold_reasons as holds
from transforms.input_models import INPUT_MODELS
from transforms.parse_sources import ROW, TABLES, as_csv_text, parse_table
from transforms.resolve_invoices import Resolution, exportable, resolve_invoices
from transforms.schemas import EXCEPTIONS, LINE_TRACKING, XERO_LINE_ITEMS, validate_output
from transforms.xero_payload import canonical_payload_arrow

INVOICE = ["practice_id", "invoice_id"]
# What parse_table needs of an invoices row that the plan does not: the plan parses keys, status and
# dates only, so the other columns are given a plain value (their problems are the chunk's to find).
PLAN_FILLERS = {"client_id": "-", "invoice_number": "-", "currency": "GBP", "reference": None}


# Load ---------------------------------------------------------------------------------------------------


def load(run: Run, source: Source) -> Loaded:
    """Open the source (a SourceError stops the run here, before anything changed), parse the reference
    tables once and keep them, typed, for every chunk, with the rows no chunk takes (lines without an
    invoice, rows without keys) and every problem of those; the reference tables are kept as raw_<table>
    in the warehouse for analysts."""
    source.open(run.scratch / "source")
    files = {table: source.file_name(table) for table in TABLES}
    reference = source.reference()
    wh.load_raw(run.con, {t: _as_text(f) for t, f in reference.items()}, files)

    folder = run.scratch / "reference"
    loose = run.scratch / "loose"
    folder.mkdir(parents=True, exist_ok=True)
    loose.mkdir(parents=True, exist_ok=True)
    typed, problems = {}, []
    for table in REFERENCE_TABLES:
        frame, found = parse_table(table, reference[table].lazy(), files[table])
        typed[table] = frame
        problems.append(found)
    loose_invoices = source.loose_invoices()
    loose_lines = source.loose_lines()
    _, invoice_found = parse_table("invoices", loose_invoices.lazy(), files["invoices"])
    lines_typed, line_found = parse_table("invoice_lines", loose_lines.lazy(), files["invoice_lines"])
    collected = pl.collect_all(
        [*typed.values(), lines_typed, pl.concat([*problems, invoice_found, line_found], how="vertical")]
    )
    for table, frame in zip(REFERENCE_TABLES, collected, strict=False):
        validate_output(INPUT_MODELS[table], frame)
        frame.write_parquet(folder / f"{table}.parquet")
    collected[len(REFERENCE_TABLES)].write_parquet(loose / "lines.parquet")
    collected[-1].write_parquet(run.scratch / "problems.parquet")
    _as_text(loose_invoices).write_parquet(loose / "raw_invoices.parquet")
    _as_text(loose_lines).write_parquet(loose / "raw_invoice_lines.parquet")
    return Loaded(
        source=source.describe(),
        files=files,
        reference=folder,
        problems=run.scratch / "problems.parquet",
        loose=loose,
    )


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """A table as the text a CSV export would hold (raw_<table> are text, whatever the source's types)."""
    return frame.with_columns(as_csv_text(c, t) for c, t in frame.schema.items() if c != ROW)


# Plan ---------------------------------------------------------------------------------------------------


def last_watermark(con: duckdb.DuckDBPyConnection) -> datetime | None:
    row = con.execute("select max(watermark) from runs where status = 'success'").fetchone()
    return row[0] if row else None


def _parsed_keys(raw: pl.DataFrame, files: dict[str, str]) -> pl.DataFrame:
    """Every invoice key of the source (`raw`: invoice_keys as read), parsed as a chunk would parse it (one
    row per key, the first copy, its status unknown when any copy is approved: parse_sources), with its
    issue date and updated_at."""
    filled = raw.with_columns(
        *(pl.lit(v, pl.Utf8).alias(c) for c, v in PLAN_FILLERS.items()),
        pl.col("issue_date").alias("due_date"),
    )
    typed, _ = parse_table("invoices", filled.lazy(), files["invoices"])
    return typed.select(*INVOICE, "issue_date", "status", "updated_at", ROW).collect()


def _in_scope(scope: Scope) -> pl.Expr:
    """Which invoices a backfill recomputes (a nightly's are chosen by what changed)."""
    keep = pl.lit(True)
    if scope.date_from:
        keep &= pl.col("issue_date") >= scope.date_from
    if scope.date_to:
        keep &= pl.col("issue_date") <= scope.date_to
    if scope.practices:
        keep &= pl.col("practice_id").is_in(list(scope.practices))
    return keep.fill_null(scope.date_from is None and scope.date_to is None)


# An ISO-8601 UTC timestamp as exports write it; text in this form sorts as its time does, to the second.
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


def _not_older(updated_at: pl.Expr, dtype: pl.DataType, since: datetime) -> pl.Expr:
    """Whether a row's updated_at, as read, may be at or after `since` (to the second): a typed timestamp
    compared, text compared only in the ISO UTC form whose order is its time's; anything else counts as
    new, to be parsed and judged by its chunk."""
    if isinstance(dtype, pl.Datetime):
        stamp = updated_at if dtype.time_zone else updated_at.dt.replace_time_zone("UTC")
        return (stamp.dt.convert_time_zone("UTC") >= since).fill_null(True)
    text = updated_at.cast(pl.Utf8).str.strip_chars()
    older = text.str.contains(ISO_UTC) & (text.str.slice(0, 19) < since.strftime("%Y-%m-%dT%H:%M:%S"))
    return ~older.fill_null(False)


def _nightly_group(
    run: Run,
    raw: pl.DataFrame,
    files: dict[str, str],
    group: list[str],
    since: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What a nightly looks at among these practices' invoices (`raw`: their invoice_keys as read): any
    row written at or after `since` (to the second; a repeated invoice whose newer copy changed is looked
    at), held, or exportable and never seen; and the held ones gone from the source, so that they are
    removed. Only the keys of those are parsed: (their parsed keys, those recomputed, those the warehouse
    has among the ones looked at). What the warehouse has is read from its index, not its history."""
    con = run.con
    text = raw.with_columns(as_csv_text(c, raw.schema[c]).cast(pl.Utf8) for c in INVOICE)
    since = since.astimezone(UTC).replace(microsecond=0)
    changed = text.filter(_not_older(pl.col("updated_at"), raw.schema["updated_at"], since)).select(INVOICE)
    held = _held(run, group)
    con.register("_group_keys", wh.arrow(text.select(INVOICE).drop_nulls()))
    try:
        unseen = wh.query(
            con,
            "select distinct practice_id, invoice_id from _group_keys anti join _known using (practice_id, invoice_id)",
        )
    finally:
        con.unregister("_group_keys")
    wanted = pl.concat([changed, held, unseen]).unique()
    # Rows without keys are parsed too (no invoice takes them; their updated_at counts to the watermark).
    no_key = pl.any_horizontal(pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in INVOICE)
    keys = _parsed_keys(
        pl.concat([text.filter(~no_key).join(wanted, on=INVOICE, how="semi"), text.filter(no_key)]), files
    )
    never_seen = keys.join(unseen, on=INVOICE, how="semi").filter(
        (pl.col("status") == "approved").fill_null(True)
    )
    touched = pl.concat(
        [
            keys.join(changed, on=INVOICE, how="semi").select(INVOICE),
            keys.join(held, on=INVOICE, how="semi").select(INVOICE),
            never_seen.select(INVOICE),
        ]
    ).unique()
    looked_at = pl.concat([touched, held]).unique()
    con.register("_looked_at", wh.arrow(looked_at))
    try:
        old = wh.query(
            con,
            "select practice_id, invoice_id from _known semi join _looked_at using (practice_id, invoice_id)",
        )
    finally:
        con.unregister("_looked_at")
    return keys, touched, old


def _held(run: Run, group: list[str]) -> pl.DataFrame:
    """(practice_id, invoice_id) of these practices' invoices held in the warehouse: a held invoice has an
    open error of a run's code (the accounting check sees to it), so only those are read from
    invoice_tracking, from the parts that hold them."""
    con = run.con
    con.execute(
        "create or replace temp table _held_candidates as "
        "select distinct practice_id, invoice_id from exceptions "
        f"where severity = 'error' and invoice_id is not null and code in ({RUN_CODE_LIST}) "
        "and practice_id in (select unnest(?))",
        [group],
    )
    try:
        rows = run.store.current_rows_sql(
            "invoice_tracking", "select practice_id, invoice_id from _held_candidates"
        )
        return wh.query(con, f"select practice_id, invoice_id from ({rows}) where invoice_state = 'held'")
    finally:
        con.execute("drop table _held_candidates")


# The plan reads invoice keys a group of whole practices at a time, each of about this many invoices, so
# that its memory follows the group, not the history.
PLAN_INVOICES = 2_000_000


def _practice_groups(sizes: pl.DataFrame, invoices: int) -> list[list[str]]:
    """Whole practices (in practice_id order) in groups of about `invoices` invoices."""
    groups: list[list[str]] = [[]]
    used = 0
    for practice_id, count in sizes.select("practice_id", "invoices").iter_rows():
        if groups[-1] and used + count > invoices:
            groups.append([])
            used = 0
        groups[-1].append(practice_id)
        used += count
    return [g for g in groups if g]


@dataclass
class _Planning:
    """What the plan carries from one group of practices to the next."""

    chunk_lines: int
    lines_before: int = 0  # lines of the partitions planned so far: where the next chunk cut falls
    invoices: int = 0
    lines: int = 0
    latest: datetime | None = None
    assignments: list = None  # Parquet files of (practice_id, invoice_id, chunk, lines)
    sources: list = None  # Parquet files of the source's invoice keys and statuses
    forgotten: list = None  # Parquet files of the invoices let go of

    def __post_init__(self) -> None:
        self.assignments, self.sources, self.forgotten = [], [], []


def plan(run: Run, source: Source, loaded: Loaded, scope: Scope, chunk_lines: int) -> Plan:
    """Choose the invoices to recompute and cut them into chunks of whole practice x month partitions;
    have the source write each chunk's rows into its part; and let go of what is in scope but no longer
    exportable (voided, deleted, moved). Keys are read a group of whole practices at a time."""
    con = run.con
    watermark = last_watermark(con)
    # What the warehouse knows of each invoice: a backfill needs every invoice's issue date (its scope is a
    # range), a nightly only which invoices the warehouse has (the index) and which are held (few).
    if scope.flow == "nightly" and watermark is not None:
        con.execute(
            "create or replace temp table _known as "
            "select practice_id, invoice_id from store_index where not loose"
        )
    else:
        con.execute(
            "create or replace temp table _known as "
            "select practice_id, invoice_id, issue_date, invoice_state from invoice_tracking"
        )
    planning = _Planning(chunk_lines)
    folder = run.scratch / "plan"
    folder.mkdir(parents=True, exist_ok=True)
    practices = source.practices()
    for number, group in enumerate(_practice_groups(practices, PLAN_INVOICES)):
        _plan_group(run, source, loaded, scope, watermark, group, folder / f"{number:04d}", planning)
    # Practices the warehouse has and the source no longer names at all: their invoices are stale.
    gone = wh.query(
        con,
        "select distinct practice_id from _known where practice_id not in (select unnest(?))",
        [practices["practice_id"].to_list()],
    )
    if gone.height:
        _plan_group(
            run, source, loaded, scope, watermark, gone["practice_id"].to_list(), folder / "gone", planning
        )
    con.execute("drop table _known")

    staged = source.stage(planning.assignments, run.scratch / "staged") if planning.invoices else []
    sizes = (
        wh.query(
            con,
            "select chunk, count(*) as invoices, sum(lines) as lines from read_parquet(?) group by chunk",
            [[str(p) for p in planning.assignments]],
        )
        if planning.assignments
        else pl.DataFrame(schema={"chunk": pl.Int64, "invoices": pl.Int64, "lines": pl.Int64})
    )
    sizes = {c: (n, lines) for c, n, lines in sizes.iter_rows()}
    chunks = []
    for number, files in enumerate(sorted(staged, key=lambda s: s.chunk)):
        part = run.store.part(part_name(run.run_id, number))
        part.folder.mkdir(parents=True, exist_ok=True)
        shutil.move(files.invoices, part.path("raw_invoices"))
        shutil.move(files.lines, part.path("raw_invoice_lines"))
        invoices, lines = sizes.get(files.chunk, (0, 0))
        chunks.append(ChunkPlan(number, part.name, part.folder, invoices, int(lines)))

    new_watermark = None
    if scope.whole_source:
        new_watermark = max(filter(None, [planning.latest, watermark]), default=None)
    return Plan(
        scope_text=scope.describe(watermark),
        chunks=tuple(chunks),
        invoices=planning.invoices,
        lines=planning.lines,
        watermark=watermark,
        new_watermark=new_watermark,
        keys=tuple(planning.assignments),
        source_invoices=tuple(planning.sources),
        forgotten=tuple(planning.forgotten),
    )


def _plan_group(
    run: Run,
    source: Source,
    loaded: Loaded,
    scope: Scope,
    watermark: datetime | None,
    group: list[str],
    folder: Path,
    planning: _Planning,
) -> None:
    """Plan the invoices of one group of whole practices (see `plan`)."""
    con = run.con
    raw = source.invoice_keys(practices=group)
    if scope.flow == "nightly" and watermark is not None:
        keys, touched, old = _nightly_group(run, raw, loaded.files, group, watermark - scope.overlap)
        candidates = exportable(keys.lazy()).collect().join(touched, on=INVOICE, how="semi")
    elif scope.flow == "nightly":  # the first nightly looks at everything
        keys = _parsed_keys(raw, loaded.files)
        known = wh.query(con, "select * from _known where practice_id in (select unnest(?))", [group])
        # A held invoice gone from the source is looked at too, so that it is removed.
        held = known.filter(pl.col("invoice_state") == "held").select(INVOICE)
        looked_at = pl.concat([keys.select(INVOICE), held]).unique()
        old = known.join(looked_at, on=INVOICE, how="semi").select(INVOICE)
        candidates = exportable(keys.lazy()).collect()
    else:
        keys = _parsed_keys(raw, loaded.files)
        known = wh.query(con, "select * from _known where practice_id in (select unnest(?))", [group])
        keep = _in_scope(scope)
        old = known.filter(keep).select(INVOICE)
        candidates = exportable(keys.lazy()).collect().filter(keep)

    # A nightly counts the lines of the invoices it recomputes only; a backfill, of the whole group.
    counts = source.line_counts(
        practices=group, invoices=candidates.select(INVOICE) if scope.flow == "nightly" else None
    )
    sized = (
        candidates.join(counts, on=INVOICE, how="left")
        .with_columns(
            pl.col("lines").fill_null(0).cast(pl.Int64),
            pl.col("issue_date").dt.strftime("%Y-%m").fill_null("unknown").alias("month"),
        )
        .sort("practice_id", "month", "invoice_id")
    )
    partitions = (
        sized.group_by("practice_id", "month", maintain_order=True)
        .agg(pl.col("lines").sum().alias("partition_lines"))
        .with_columns(
            (
                (pl.col("partition_lines").cum_sum() - pl.col("partition_lines") + planning.lines_before)
                // max(planning.chunk_lines, 1)
            ).alias("chunk")
        )
    )
    assigned = sized.join(partitions.select("practice_id", "month", "chunk"), on=["practice_id", "month"])

    # What is in scope but no longer exportable goes, with its open exceptions.
    stale = old.join(candidates, on=INVOICE, how="anti").select(INVOICE)
    run.store.forget(stale)
    wh.merge_exceptions(con, _no_problems(), stale, run.started_at, unattributed=False)

    folder.mkdir(parents=True, exist_ok=True)
    if stale.height:
        path = folder / "forgotten.parquet"
        stale.write_parquet(path)
        planning.forgotten.append(path)
    if assigned.height:
        path = folder / "assignment.parquet"
        assigned.select(*INVOICE, "chunk", "lines").write_parquet(path)
        planning.assignments.append(path)
    if raw.height:
        path = folder / "source_invoices.parquet"
        raw.select(*(as_csv_text(c, raw.schema[c]).alias(c) for c in (*INVOICE, "status"))).write_parquet(
            path
        )
        planning.sources.append(path)
    planning.lines_before += int(sized["lines"].sum())
    planning.invoices += assigned.height
    planning.lines += int(assigned["lines"].sum())
    latest = keys["updated_at"].max()
    planning.latest = max(filter(None, [latest, planning.latest]), default=None)


def _no_problems() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            c: pl.Utf8 for c in ("practice_id", "invoice_id", "line_id", "code", "severity", "detail", "fix")
        }
    )


# Resolve one chunk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkContext:
    """What every chunk needs besides its own files: paths and settings, nothing in memory."""

    loaded: Loaded
    run_id: str
    policy: str


def resolve_chunk(chunk: ChunkPlan, context: ChunkContext) -> ChunkResult:
    """Resolve one chunk from its files and write its results into its part; touches no warehouse, reads
    no setting and needs nothing in memory from the run, so it may run in a Dask worker on another
    machine (flows.run.cluster). Run again after a worker died, it writes the same files again."""
    started = time.perf_counter()
    loaded = context.loaded
    tables = {t: pl.read_parquet(loaded.reference / f"{t}.parquet").lazy() for t in REFERENCE_TABLES}
    folder = chunk.folder
    invoices, invoice_problems = parse_table(
        "invoices", pl.read_parquet(folder / "raw_invoices.parquet").lazy(), loaded.files["invoices"]
    )
    lines, line_problems = parse_table(
        "invoice_lines",
        pl.read_parquet(folder / "raw_invoice_lines.parquet").lazy(),
        loaded.files["invoice_lines"],
    )
    shared = pl.read_parquet(loaded.problems)
    invoices_df, lines_df, found = pl.collect_all(
        [invoices, lines, pl.concat([invoice_problems, line_problems], how="vertical")]
    )
    validate_output(INPUT_MODELS["invoices"], invoices_df)
    validate_output(INPUT_MODELS["invoice_lines"], lines_df)
    tables["invoices"], tables["invoice_lines"] = invoices_df.lazy(), lines_df.lazy()
    problems = pl.concat([found, shared], how="vertical")
    result = resolve_invoices(tables, problems.lazy(), policy=context.policy, files=loaded.files)
    keys = invoices_df.select(INVOICE).unique()
    # Problems no invoice can be traced to are the whole source's, recorded once by `finish`.
    result.exceptions = result.exceptions.join(keys, on=INVOICE, how="semi")
    validate_output(LINE_TRACKING, result.line_tracking)
    validate_output(EXCEPTIONS, result.exceptions)
    validate_output(XERO_LINE_ITEMS, result.xero_line_items)
    files = _write_results(chunk, context.run_id, result, invoices_df)
    states = result.invoice_states["invoice_state"].value_counts()
    count = dict(zip(states["invoice_state"].cast(pl.Utf8), states["count"], strict=True))
    return ChunkResult(
        chunk=chunk.chunk,
        part=chunk.part,
        invoices_considered=result.invoice_states.height,
        invoices_ready=count.get("ready", 0),
        invoices_held=count.get("held", 0),
        invoices_not_xero=count.get("not_xero", 0),
        lines_resolved=result.line_tracking.height,
        files=files,
        seconds=time.perf_counter() - started,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


def _digests(result: Resolution) -> pl.DataFrame:
    """(practice_id, invoice_id, digest, total) of each ready invoice: the MD5 of exactly what is sent
    (`Resolution.payloads`' texts, made straight into Arrow as DuckDB reads them)."""
    payloads = canonical_payload_arrow(result.xero_line_items, result.xero_invoices)
    heads = result.xero_invoices.select(*INVOICE, "total")
    # As many threads as this process's Polars pool: POLARS_MAX_THREADS on a Dask worker, all cores here.
    con = duckdb.connect(config={"threads": pl.thread_pool_size()})
    try:
        con.register("_payloads", payloads)
        # Into a table first: DuckDB hashes on all its threads into a table, on one into a result.
        con.execute(
            "create temp table _digests as select practice_id, invoice_id, md5(payload) as digest from _payloads"
        )
        digests = wh.query(con, "select * from _digests")
    finally:
        con.close()
    if digests.select(INVOICE).equals(heads.select(INVOICE)):  # row for row (the usual): no join
        return digests.with_columns(heads.get_column("total"))
    return digests.join(heads, on=INVOICE, how="inner", validate="1:1")


def _write_results(
    chunk: ChunkPlan, run_id: str, result: Resolution, invoices: pl.DataFrame
) -> tuple[PartFile, ...]:
    """The chunk's rows of every stored table, and its problems, as its part's files; what was written."""
    currencies = invoices.select(*INVOICE, pl.col("currency").alias("source_currency"))
    states = (
        result.invoice_states.join(currencies, on=INVOICE, how="left", validate="1:1")
        .join(_digests(result).rename({"total": "net_amount"}), on=INVOICE, how="left", validate="1:1")
        .with_columns(pl.col("invoice_state").cast(pl.Utf8), pl.lit(run_id).alias("run_id"))
    )
    tables = {
        "invoice_tracking": states,
        "line_tracking": result.line_tracking.with_columns(
            pl.col("invoice_state").cast(pl.Utf8),
            pl.col("line_type").cast(pl.Utf8),
            pl.lit(run_id).alias("run_id"),
        ),
        "xero_invoices": result.xero_invoices,
        "xero_line_items": result.xero_line_items,
        "exceptions": result.exceptions.with_columns(pl.col("code", "severity").cast(pl.Utf8)),
    }

    def write(item: tuple[str, pl.DataFrame]) -> PartFile:
        table, frame = item
        path = chunk.folder / f"{table}.parquet"
        write_part_file(path, frame)
        return PartFile(table, path, frame.height, *_size_and_digest(path))

    # Files are written side by side, on as many threads as this process's Polars pool (a file's
    # encoding is mostly one thread's work): the two largest tables take most of a chunk's writing.
    items = list(tables.items())
    with ThreadPoolExecutor(max_workers=max(1, min(pl.thread_pool_size(), 4))) as pool:
        written = list(pool.map(write, items[:2]))
        faults.checkpoint("resolving")  # the kill tests: a part half written
        written += list(pool.map(write, items[2:]))
    return tuple(written)


def _size_and_digest(path: Path) -> tuple[int, str]:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return path.stat().st_size, digest


def _check_chunk_files(plan_: Plan, results: list[ChunkResult]) -> None:
    """Every chunk answered once, and each file it wrote is still exactly what it wrote (size and
    SHA-256): else the run stops before anything changes."""
    answered = sorted(r.chunk for r in results)
    if answered != [c.chunk for c in plan_.chunks]:
        raise Stopped(
            f"stopped, nothing changed: chunks {answered} answered for a plan of {len(plan_.chunks)}"
        )
    for result in results:
        for file in result.files:
            found = _size_and_digest(file.path) if file.path.exists() else (None, None)
            if found != (file.size, file.digest):
                raise Stopped(
                    f"stopped, nothing changed: {file.path}: not the file chunk {result.chunk} wrote "
                    f"({file.size} bytes, sha256 {file.digest[:12]}); found {found[0]} bytes"
                )


# Commit: the single writer -------------------------------------------------------------------------------


def commit(run: Run, plan_: Plan, results: list[ChunkResult]) -> RunSummary:
    """Point every recomputed invoice at the part its chunk wrote, merge the chunks' problems into
    `exceptions`, and refresh the stored tables' views."""
    con, store = run.con, run.store
    _check_chunk_files(plan_, results)
    summary = RunSummary(run_id=run.run_id, flow=run.flow)
    for chunk in plan_.chunks:
        keys = pl.read_parquet(chunk.folder / "raw_invoices.parquet", columns=INVOICE).unique()
        store.point(keys, chunk.part)
        found = pl.read_parquet(chunk.folder / "exceptions.parquet")
        wh.merge_exceptions(con, found, keys, run.started_at, unattributed=False)
    for result in results:
        summary.add(result)
    return summary


# Finish ---------------------------------------------------------------------------------------------------


def finish(run: Run, loaded: Loaded, plan_: Plan) -> None:
    """Problems of the whole source: orphan lines and rows no invoice can be traced to, and the loose
    source rows kept (as raw_invoice_lines) beside the invoices' own."""
    problems = pl.read_parquet(loaded.problems).lazy()
    loose = pl.read_parquet(loaded.loose / "lines.parquet")
    found = pl.concat(
        [
            holds.orphan_line_problems(loose.lazy().select(*INVOICE, "line_id", ROW), loaded.files),
            holds.unattributed_source_problems(problems),
        ],
        how="vertical",
    ).collect()
    # Ids of unidentifiable rows stay in the detail; the row belongs to no invoice.
    found = found.with_columns(pl.lit(None, pl.Utf8).alias("invoice_id"))
    validate_output(EXCEPTIONS, found)
    wh.merge_exceptions(run.con, found, found.head(0).select(INVOICE), run.started_at, unattributed=True)
    # The loose rows are kept as raw_invoices and raw_invoice_lines too, in a part of their own.
    run.store.forget_loose()
    parts = [c.part for c in plan_.chunks]
    raw = {t: pl.read_parquet(loaded.loose / f"{t}.parquet") for t in ("raw_invoices", "raw_invoice_lines")}
    if any(frame.height for frame in raw.values()):
        part = _loose_part(run)
        for table, frame in raw.items():
            write_part_file(part.path(table), frame)
        run.store.point(pl.concat([f.select(INVOICE) for f in raw.values()]), part.name, loose=True)
        parts.append(part.name)
    run.store.record_parts(run.run_id, parts)
    run.store.refresh_views()


def _loose_part(run: Run) -> Part:
    """The part of the store holding this run's rows no invoice takes (written by `finish` when any)."""
    return run.store.part(part_name(run.run_id, "loose"))


# Check and record ---------------------------------------------------------------------------------------


def check_chunk(chunk: ChunkPlan, sources: tuple[Path, ...], scratch: Path, memory_limit: str) -> None:
    """One chunk's invoices judged line by line against the source rows it read (flows.run.accounting,
    its lines only), from the files of its part, on a DuckDB of its own within `memory_limit`: it needs
    nothing of the warehouse, so a run checks a chunk while it resolves the next (flows.run.pipeline).
    The files judged are the ones commit then finds unchanged (their size and SHA-256)."""
    spill = scratch / f"check-{chunk.chunk}"
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(spill)})
    try:
        keys = pl.read_parquet(chunk.folder / "raw_invoices.parquet", columns=INVOICE).unique()
        con.register("_chunk_keys", wh.arrow(keys.select(pl.col(c).cast(pl.Utf8) for c in INVOICE)))
        con.execute(
            f"create temp table raw_invoices as select * from {_files(sources)} "
            "semi join _chunk_keys using (practice_id, invoice_id)"
        )
        for table in ("raw_invoice_lines", "line_tracking", "invoice_tracking"):
            con.execute(
                f"create temp view {table} as select * from {_files([chunk.folder / f'{table}.parquet'])}"
            )
        check_accounting(con, keys, line_scope_keys=keys, lines_only=True)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


def check(
    run: Run, scope: Scope, plan_: Plan, memory_limit: str = "1GB", chunks_checked: str | None = None
) -> None:
    """Every invoice accounted for (flows.run.accounting), judged on what the run is about to publish.

    Chunk by chunk, so that it costs memory as a chunk does: each chunk's invoices are judged, line by
    line, against the source rows it read, from the files of its part (`check_chunk`; `chunks_checked`
    says the run has done so while resolving: "" when all passed, else the first failure's message);
    their states are judged once, with every other invoice's, by the last check. Then every exportable
    invoice in scope (the whole source for a nightly or a whole backfill) must be in exactly one state in
    the warehouse as it will be published, and every line no invoice could take must be an exception. The
    source as the check sees it is put on the run's connection only, as raw_invoices and
    raw_invoice_lines."""
    con = run.con
    sources = _files(plan_.source_invoices)
    if chunks_checked:
        raise AccountingCheckFailed(chunks_checked)
    if chunks_checked is None:
        for chunk in plan_.chunks:
            check_chunk(chunk, plan_.source_invoices, run.scratch, memory_limit)
    try:
        # The lines no invoice takes, as this run kept them (finish: its part of loose rows), judged with
        # every invoice of the source (an orphan must be an ORPHAN_LINE); the invoices' own lines were
        # judged chunk by chunk above, so no line_tracking row is read again.
        loose_part = _loose_part(run).path("raw_invoice_lines")
        if loose_part.exists():
            loose = pl.read_parquet(loose_part)
        else:
            loose = wh.query(con, "select * from store.raw_invoice_lines")
        con.execute(f"create temp view raw_invoices as select * from {sources}")
        _show(con, "raw_invoice_lines", loose)
        con.execute("create temp table line_tracking as select * from store.line_tracking")
        keys = f"select practice_id, invoice_id from {_files(plan_.keys)}"
        if scope.flow == "nightly" and plan_.watermark is not None:
            # A nightly's own invoices in full, from the parts that hold them; every other invoice of
            # the source for its presence in the warehouse (its rows are as the run that wrote them left
            # them, judged then): what a nightly costs follows what changed, not the history.
            con.execute(
                f"create temp view invoice_tracking as {run.store.current_rows_sql('invoice_tracking', keys)}"
            )
            check_accounting(con, wh.query(con, keys), line_scope_keys=loose.select(INVOICE), present=True)
        else:
            whole = None if scope.whole_source else wh.query(con, keys)
            check_accounting(con, whole, line_scope_keys=loose.select(INVOICE))
    finally:
        for table in ("raw_invoices", "raw_invoice_lines", "line_tracking", "invoice_tracking"):
            _drop_temp(con, table)


def _files(paths) -> str:
    """Parquet files as a DuckDB table expression (an empty table of the key columns when there are none)."""
    if not paths:
        return "(select null::varchar as practice_id, null::varchar as invoice_id, null::varchar as status limit 0)"
    listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths)
    return f"read_parquet([{listed}], union_by_name = true)"


def _drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    kind = con.execute(
        "select any_value(type) from (select 'table' as type from duckdb_tables() where temporary and table_name = ? "
        "union all select 'view' from duckdb_views() where temporary and view_name = ?)",
        [name, name],
    ).fetchone()[0]
    if kind:
        con.execute(f"drop {kind} temp.{name}")


def _show(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> None:
    """A frame as a temp table of the run's connection (shadowing the warehouse's view of that name)."""
    _drop_temp(con, name)
    con.register("_shown", wh.arrow(frame))
    try:
        con.execute(f"create or replace temp table {name} as select * from _shown")
    finally:
        con.unregister("_shown")


def record(run: Run, summary: RunSummary, loaded: Loaded, plan_: Plan, finished: datetime) -> RunSummary:
    """The run's row in `runs`, and the analyst views (sql/reports) refreshed with it."""
    con = run.con
    create_views(con)
    summary.exceptions_open = con.execute("select count(*) from exceptions").fetchone()[0]
    held = con.execute(
        """select code, count(distinct (practice_id, invoice_id)) from exceptions
           where severity = 'error' and invoice_id is not null group by code order by code"""
    ).fetchall()
    summary.held_by_code = dict(held)
    con.execute(
        "insert into runs values (?, ?, ?, ?, 'success', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id,
            run.flow,
            run.started_at,
            finished,
            loaded.source,
            plan_.scope_text,
            summary.invoices_considered,
            summary.invoices_ready,
            summary.invoices_held,
            summary.invoices_not_xero,
            summary.lines_resolved,
            summary.exceptions_open,
            summary.batches_written,
            summary.invoices_batched,
            plan_.new_watermark,
        ],
    )
    return summary
