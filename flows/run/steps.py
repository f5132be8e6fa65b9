"""The steps of a run, as plain functions of a Run (tests call these; flows.run.pipeline wraps them as tasks).

source files -> frames in memory (run.frames: raw, typed, chunks) -> resolution (transforms) -> warehouse
tables -> Xero batch files (flows.xero.batches). Only the reference tables are kept as raw_* in the warehouse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from flows.reports.views import create_views
from flows.run.accounting import check_accounting
from flows.run.publish import Run
from flows.sources.files import read_source
from flows.warehouse import writes as wh
from transforms import hold_reasons as holds
from transforms.input_models import INPUT_MODELS
from transforms.parse_sources import ROW, TABLES, parse_table
from transforms.resolve_invoices import Resolution, exportable, resolve_invoices
from transforms.schemas import EXCEPTIONS, LINE_TRACKING, XERO_LINE_ITEMS, validate_output

INVOICE = ["practice_id", "invoice_id"]


@dataclass
class Scope:
    """What a run recomputes: a date range and practices (backfill), or changed + held (nightly)."""

    flow: str
    date_from: date | None = None
    date_to: date | None = None
    practices: tuple[str, ...] = ()

    @property
    def everything(self) -> bool:
        return self.date_from is None and self.date_to is None and not self.practices

    def describe(self, watermark: datetime | None = None) -> str:
        if self.flow == "nightly":
            since = watermark.isoformat() if watermark else "the beginning"
            return f"changed since {since} + held"
        parts = [f"from {self.date_from or 'the start'} to {self.date_to or 'the end'}"]
        if self.practices:
            parts.append("practices " + ", ".join(self.practices))
        return "issued " + "; ".join(parts)


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

    def as_dict(self) -> dict:
        return asdict(self)


BIG = ("invoices", "invoice_lines")  # the tables that grow with history


def load_sources(run: Run, source: Path) -> dict[str, str]:
    """Read every source table (or stop with a SourceError) into memory. The reference tables are kept as
    raw_<table> in the warehouse for analysts; invoices and lines stay in memory (parse_sources shows
    them to the run's connection as raw_<table> views for the accounting check), never copied."""
    frames, files = read_source(source)
    run.frames["raw"] = frames
    wh.load_raw(run.con, {t: f for t, f in frames.items() if t not in BIG}, files)
    return files


def _show_raw(run: Run, frames: dict[str, pl.DataFrame]) -> None:
    for table, frame in frames.items():
        run.con.register(f"raw_{table}", wh.arrow(frame))


# An ISO-8601 UTC timestamp as exports write it; text in this form sorts as its time does, to the second.
ISO_UTC = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"


def _nightly_source(run: Run, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The part of the source a nightly can need, found on the raw text before anything is parsed, so
    that a nightly costs what changed, not the years of history the source holds.

    Kept: every invoice not written before the last successful run's watermark (its updated_at is not an
    ISO UTC time at least a second older: anything else is parsed and judged properly), every invoice held
    or never seen by the warehouse (drafts and voids aside: they produce nothing), every row without its
    keys; and the lines of those invoices, lines without their keys, and orphan lines. Reference tables are
    kept whole. A key kept keeps every row with that key, so repeated keys are still found.
    """
    watermark = last_watermark(run)
    if watermark is None:
        return frames
    invoices, lines = frames["invoices"], frames["invoice_lines"]
    since = watermark.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    updated = pl.col("updated_at").str.strip_chars()
    older = (updated.str.contains(ISO_UTC) & (updated.str.slice(0, 19) < since)).fill_null(False)
    settled = pl.col("status").str.strip_chars().str.to_lowercase().is_in(["draft", "void"]).fill_null(False)
    blank = pl.any_horizontal((pl.col(c).str.strip_chars() == "").fill_null(True) for c in INVOICE)
    state = pl.col("invoice_state")
    known = wh.query(run.con, "select practice_id, invoice_id, invoice_state from invoice_tracking")
    looked_at = (
        invoices.select(*INVOICE, "updated_at", "status")
        .join(known, on=INVOICE, how="left", nulls_equal=True)
        .filter(~older | blank | (state == "held").fill_null(False) | (state.is_null() & ~settled))
        .select(INVOICE)
    )
    touched = pl.concat([looked_at, known.filter(state == "held").select(INVOICE)]).unique()
    # One join finds both the lines of those invoices and the orphan lines (no invoice at all); a line
    # without its keys is one of the two (its invoice, if any, has blank keys too and is looked at).
    invoice_keys = (
        invoices.select(INVOICE)
        .unique()
        .join(touched.with_columns(pl.lit(True).alias("_touched")), on=INVOICE, how="left", nulls_equal=True)
    )
    kept = (
        lines.select(*INVOICE, ROW)
        .join(
            invoice_keys.with_columns(pl.lit(True).alias("_exists")), on=INVOICE, how="left", nulls_equal=True
        )
        .filter(pl.col("_touched").fill_null(False) | pl.col("_exists").is_null())
        .select(ROW)
    )
    return {
        **frames,
        "invoices": invoices.join(touched, on=INVOICE, how="semi", nulls_equal=True).sort(ROW),
        "invoice_lines": lines.filter(pl.col(ROW).is_in(kept[ROW].implode())),
    }


def parse_sources(run: Run, files: dict[str, str], scope: Scope | None = None) -> None:
    """The source -> typed frames and the source problems (values that did not parse, repeated keys).

    A nightly parses only what it can need (`_nightly_source`); the raw_<table> views the accounting
    check reads then show that same part, which is the source as the run saw it.
    """
    raw = run.frames["raw"]
    if scope is not None and scope.flow == "nightly":
        raw = _nightly_source(run, raw)
    _show_raw(run, {t: raw[t] for t in BIG})
    typed: dict[str, pl.LazyFrame] = {}
    problems = []
    for table in TABLES:
        frame, found = parse_table(table, raw[table].lazy(), files[table])
        typed[table] = frame
        problems.append(found)
    collected = pl.collect_all([*typed.values(), pl.concat(problems, how="vertical")])
    for table, frame in zip(typed, collected[:-1], strict=True):
        validate_output(INPUT_MODELS[table], frame)
    run.frames["typed"] = dict(zip(typed, collected[:-1], strict=True))
    run.frames["problems"] = collected[-1]


def last_watermark(run: Run) -> datetime | None:
    row = run.con.execute("select max(watermark) from runs where status = 'success'").fetchone()
    return row[0] if row else None


def _in_scope(scope: Scope) -> pl.Expr:
    """Which source invoices a backfill recomputes (a nightly's are chosen by _nightly_source)."""
    keep = pl.lit(True)
    if scope.date_from:
        keep &= pl.col("issue_date") >= scope.date_from
    if scope.date_to:
        keep &= pl.col("issue_date") <= scope.date_to
    if scope.practices:
        keep &= pl.col("practice_id").is_in(list(scope.practices))
    return keep.fill_null(scope.date_from is None and scope.date_to is None)


@dataclass
class Plan:
    chunks: int
    invoices: int
    lines: int
    watermark: datetime | None


def plan(run: Run, scope: Scope, chunk_lines: int) -> Plan:
    """Choose the invoices to recompute, split them into chunks of whole practice x month partitions,
    and drop from the warehouse what is in scope but no longer exportable (voided, deleted, moved)."""
    con = run.con
    watermark = last_watermark(run)
    typed = run.frames["typed"]
    invoices = typed["invoices"].select("practice_id", "invoice_id", "issue_date", "status", "updated_at")
    if scope.flow == "nightly":
        # The source part the nightly parsed holds exactly the invoices it looks at (_nightly_source: changed,
        # held, never seen; everything on a first nightly). A held invoice gone from the source is looked at
        # too, so that it is removed.
        held = wh.query(
            con, "select practice_id, invoice_id from invoice_tracking where invoice_state = 'held'"
        )
        touched = pl.concat([invoices.select(INVOICE), held]).unique()
        con.register("_touched", wh.arrow(touched))
        old = wh.query(
            con,
            "select practice_id, invoice_id from invoice_tracking semi join _touched using (practice_id, invoice_id)",
        )
        con.unregister("_touched")
    else:
        keep = _in_scope(scope)
        touched = invoices.filter(keep).select(INVOICE)
        old = wh.query(con, "select practice_id, invoice_id, issue_date from invoice_tracking").filter(keep)
    candidates = exportable(invoices.lazy()).collect().join(touched, on=INVOICE, how="semi")

    lines = typed["invoice_lines"].group_by(INVOICE).agg(pl.len().cast(pl.Int64).alias("n"))
    sized = (
        candidates.join(lines, on=INVOICE, how="left")
        .with_columns(
            pl.col("n").fill_null(0),
            pl.col("issue_date").dt.strftime("%Y-%m").fill_null("unknown").alias("month"),
        )
        .sort("practice_id", "month", "invoice_id")
    )
    partitions = (
        sized.group_by("practice_id", "month", maintain_order=True)
        .agg(pl.col("n").sum().alias("lines"))
        .with_columns(((pl.col("lines").cum_sum() - pl.col("lines")) // max(chunk_lines, 1)).alias("chunk"))
    )
    chunked = sized.join(partitions.select("practice_id", "month", "chunk"), on=["practice_id", "month"])
    chunk_ids = chunked.select(pl.col("chunk").rank("dense").cast(pl.Int32) - 1)
    chunked = chunked.with_columns(chunk_ids.to_series().alias("chunk"))
    run.frames["partition"] = chunked.select(*INVOICE, "month", "chunk")
    run.frames["chunks"] = split_chunks(run.frames["typed"], run.frames["partition"])
    wh.create_temp(con, "_partition", run.frames["partition"])

    stale = old.join(candidates, on=INVOICE, how="anti").select(INVOICE)
    for table in RESULT_TABLES:
        wh.delete_invoices(con, table, stale)
    wh.merge_exceptions(con, _no_problems(), stale, run.started_at, unattributed=False)
    return Plan(
        chunks=int(chunked["chunk"].max() + 1) if chunked.height else 0,
        invoices=chunked.height,
        lines=int(chunked["n"].sum()),
        watermark=watermark,
    )


RESULT_TABLES = ("invoice_tracking", "line_tracking", "xero_invoices", "xero_line_items")


def _no_problems() -> pl.DataFrame:
    return pl.DataFrame(
        schema={c: pl.Utf8 for c in ("practice_id", "invoice_id", "line_id", "code", "severity", "detail")}
    )


def split_chunks(
    tables: dict[str, pl.DataFrame], partition: pl.DataFrame
) -> dict[int, dict[str, pl.DataFrame]]:
    """Each chunk's invoices and lines (`partition`: practice_id, invoice_id, chunk), split in one pass
    rather than one semi-join of every line per chunk."""
    keys = partition.select(*INVOICE, "chunk")
    split: dict[int, dict[str, pl.DataFrame]] = {}
    for table in ("invoices", "invoice_lines"):
        tagged = tables[table].join(keys, on=INVOICE, how="inner")
        for (chunk,), part in tagged.partition_by("chunk", as_dict=True, include_key=False).items():
            split.setdefault(chunk, {})[table] = part
    return split


def _chunk_tables(run: Run, chunk: int) -> tuple[dict[str, pl.LazyFrame], pl.LazyFrame, pl.DataFrame]:
    typed = run.frames["typed"]
    part = run.frames["chunks"].pop(chunk, {})  # released as the chunk is done
    tables = {t: frame.lazy() for t, frame in typed.items()}
    for table in ("invoices", "invoice_lines"):
        tables[table] = part.get(table, typed[table].clear()).lazy()
    keys = part.get("invoices", typed["invoices"].clear()).select(INVOICE)
    return tables, run.frames["problems"].lazy(), keys


def resolve_chunk(run: Run, files: dict[str, str], chunk: int, policy: str) -> RunSummary:
    """Resolve one chunk of invoices and replace what the warehouse had for them."""
    tables, problems, keys = _chunk_tables(run, chunk)
    result = resolve_invoices(tables, problems, policy=policy, files=files)
    # Problems no invoice can be traced to are the whole source's, recorded once by finish_run.
    result.exceptions = result.exceptions.join(keys, on=INVOICE, how="semi")
    validate_output(LINE_TRACKING, result.line_tracking)
    validate_output(EXCEPTIONS, result.exceptions)
    validate_output(XERO_LINE_ITEMS, result.xero_line_items)
    _replace_results(run, result, keys)
    states = result.invoice_states["invoice_state"].value_counts()
    count = dict(zip(states["invoice_state"].cast(pl.Utf8), states["count"], strict=True))
    return RunSummary(
        run_id=run.run_id,
        flow=run.flow,
        invoices_considered=result.invoice_states.height,
        invoices_ready=count.get("ready", 0),
        invoices_held=count.get("held", 0),
        invoices_not_xero=count.get("not_xero", 0),
        lines_resolved=result.line_tracking.height,
    )


def add_up(run: Run, parts: list[RunSummary]) -> RunSummary:
    total = RunSummary(run_id=run.run_id, flow=run.flow)
    for part in parts:
        for name in (
            "invoices_considered",
            "invoices_ready",
            "invoices_held",
            "invoices_not_xero",
            "lines_resolved",
        ):
            setattr(total, name, getattr(total, name) + getattr(part, name))
    return total


def finish_resolution(run: Run, files: dict[str, str], scope: Scope, plan_: Plan) -> None:
    """Problems of the whole source (orphan lines, rows no invoice can be traced to), and the watermark."""
    con = run.con
    typed = run.frames["typed"]
    lines = typed["invoice_lines"].lazy().select("practice_id", "invoice_id", "line_id", ROW)
    invoices = typed["invoices"].lazy().select(INVOICE)
    problems = run.frames["problems"].lazy()
    found = pl.concat(
        [
            holds.orphan_line_problems(lines.join(invoices, on=INVOICE, how="anti"), files),
            holds.unattributed_source_problems(problems),
        ],
        how="vertical",
    ).collect()
    # Ids of unidentifiable rows stay in the detail; the row belongs to no invoice.
    found = found.with_columns(pl.lit(None, pl.Utf8).alias("invoice_id"))
    validate_output(EXCEPTIONS, found)
    wh.merge_exceptions(con, found, found.head(0).select(INVOICE), run.started_at, unattributed=True)
    new_watermark = None
    if scope.flow == "nightly" or scope.everything:
        latest = typed["invoices"]["updated_at"].max()
        new_watermark = max(filter(None, [latest, plan_.watermark]), default=None)
    con.execute(
        "create or replace temp table _run_meta as select ?::varchar as scope, ?::timestamptz as watermark",
        [scope.describe(plan_.watermark), new_watermark],
    )


def _replace_results(run: Run, result: Resolution, keys: pl.DataFrame) -> None:
    con = run.con
    for table in RESULT_TABLES:
        wh.delete_invoices(con, table, keys)
    con.register("_payloads", wh.arrow(result.payloads))
    con.register("_heads", wh.arrow(result.xero_invoices))
    currencies = run.frames["typed"]["invoices"].select(*INVOICE, pl.col("currency").alias("source_currency"))
    states = result.invoice_states.join(currencies, on=INVOICE, how="left", validate="1:1")
    con.register("_states", wh.arrow(states))
    con.execute(
        """
        create or replace temp table _digests as
        select p.practice_id, p.invoice_id, md5(p.payload) as digest, h.total
        from _payloads p join _heads h using (practice_id, invoice_id)
        """
    )
    con.execute(
        """
        insert into invoice_tracking
        select s.practice_id, s.invoice_id, s.invoice_number, s.client_id, s.issue_date, s.updated_at,
               s.invoice_state::varchar, s.hold_codes, s.line_count, s.consolidated, d.total, d.digest, ?,
               s.source_currency
        from _states s left join _digests d using (practice_id, invoice_id)
        """,
        [run.run_id],
    )
    wh.insert(con, "line_tracking", result.line_tracking.with_columns(pl.lit(run.run_id).alias("run_id")))
    # batch_id: the latest batch that carried exactly this content, if any (looked up for these invoices
    # only, and written with the rows rather than updated afterwards: the tables grow with history).
    con.execute(
        """
        create or replace temp table _sent_batch as
        with latest as (
            select l.practice_id, l.invoice_id, l.digest, l.batch_id,
                   row_number() over (partition by l.practice_id, l.invoice_id
                                      order by l.batched_at desc, l.batch_id desc) as n
            from export_ledger l semi join _digests d using (practice_id, invoice_id)
        )
        select d.practice_id, d.invoice_id, l.batch_id
        from _digests d join latest l using (practice_id, invoice_id)
        where l.n = 1 and l.digest = d.digest
        """
    )
    for table, frame in (
        ("xero_invoices", result.xero_invoices),
        ("xero_line_items", result.xero_line_items),
    ):
        if frame.is_empty():
            continue
        con.register("_rows", wh.arrow(frame))
        names = ", ".join(f'"{c}"' for c in frame.columns)
        values = ", ".join(f'r."{c}"' for c in frame.columns)
        con.execute(
            f"""insert into {table} ({names}, batch_id)
                select {values}, b.batch_id from _rows r
                left join _sent_batch b on b.practice_id = r.practice_id and b.invoice_id = r.invoice_id"""
        )
        con.unregister("_rows")
    wh.merge_exceptions(con, result.exceptions, keys, run.started_at, unattributed=False)
    for name in ("_payloads", "_heads", "_states"):
        con.unregister(name)


def check_run(run: Run, scope: Scope) -> None:
    """Every invoice accounted for (flows/run/accounting.py), judged on what the run is about to publish:
    a nightly or a whole backfill answers for the whole source, a partial backfill for its own scope."""
    whole = scope.flow == "nightly" or scope.everything
    keys = None if whole else wh.query(run.con, "select practice_id, invoice_id from _partition")
    check_accounting(run.con, keys)


def record_run(run: Run, summary: RunSummary, source: Path, finished: datetime) -> RunSummary:
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
        """
        insert into runs
        select ?, ?, ?, ?, 'success', ?, m.scope, ?, ?, ?, ?, ?, ?, ?, ?, m.watermark from _run_meta m
        """,
        [
            run.run_id,
            run.flow,
            run.started_at,
            finished,
            str(source),
            summary.invoices_considered,
            summary.invoices_ready,
            summary.invoices_held,
            summary.invoices_not_xero,
            summary.lines_resolved,
            summary.exceptions_open,
            summary.batches_written,
            summary.invoices_batched,
        ],
    )
    return summary
