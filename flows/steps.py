"""The steps of a run, as plain functions of a Run (tests call these; flows.pipeline wraps them as tasks).

source files -> raw_* tables -> resolution (transforms) -> warehouse tables -> Xero batch files
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl

from flows import warehouse as wh
from flows.publish import Run
from flows.sources import read_source
from flows.xero_files import check_body, plan_batches, write_batch
from transforms.parse_sources import TABLES, parse_table
from transforms.resolve_invoices import Resolution, resolve_invoices
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


def load_sources(run: Run, source: Path) -> dict[str, str]:
    """Read every source table (or stop with a SourceError) and keep it as raw_<table> in the warehouse."""
    frames, files = read_source(source)
    wh.load_raw(run.con, frames, files)
    return files


def _parsed_sources(run: Run, files: dict[str, str]) -> tuple[dict[str, pl.LazyFrame], pl.LazyFrame]:
    typed: dict[str, pl.LazyFrame] = {}
    problems = []
    for table in TABLES:
        frame, found = parse_table(table, wh.read_raw(run.con, table).lazy(), files[table])
        typed[table] = frame
        problems.append(found)
    collected = pl.collect_all([*typed.values(), pl.concat(problems, how="vertical")])
    tables = {t: f.lazy() for t, f in zip(typed, collected[:-1], strict=True)}
    return tables, collected[-1].lazy()


def last_watermark(run: Run) -> datetime | None:
    row = run.con.execute("select max(watermark) from runs where status = 'success'").fetchone()
    return row[0] if row else None


def _scope_keys(run: Run, scope: Scope, invoices: pl.LazyFrame, watermark: datetime | None) -> pl.DataFrame | None:
    """The (practice_id, invoice_id) pairs to recompute; None means every invoice."""
    if scope.flow == "nightly":
        if watermark is None:
            return None
        changed = invoices.filter(
            (pl.col("updated_at") > pl.lit(watermark).dt.convert_time_zone("UTC")) | pl.col("updated_at").is_null()
        ).select(INVOICE)
        held = wh.query(
            run.con, "select practice_id, invoice_id from invoice_tracking where invoice_state = 'held'"
        )
        return pl.concat([changed.collect(), held], how="vertical").unique()
    if scope.everything:
        return None
    keep = pl.lit(True)
    if scope.date_from:
        keep &= pl.col("issue_date") >= scope.date_from
    if scope.date_to:
        keep &= pl.col("issue_date") <= scope.date_to
    if scope.practices:
        keep &= pl.col("practice_id").is_in(list(scope.practices))
    in_source = invoices.filter(keep.fill_null(False)).select(INVOICE).collect()
    in_warehouse = wh.query(run.con, "select practice_id, invoice_id, issue_date from invoice_tracking").filter(
        keep.fill_null(False)
    )
    return pl.concat([in_source, in_warehouse.select(INVOICE)], how="vertical").unique()


def resolve(run: Run, files: dict[str, str], scope: Scope, policy: str) -> tuple[RunSummary, pl.DataFrame | None]:
    """Resolve the scope's invoices from the raw tables and replace what the warehouse had for them."""
    tables, problems = _parsed_sources(run, files)
    watermark = last_watermark(run)
    keys = _scope_keys(run, scope, tables["invoices"], watermark)
    result = resolve_invoices(tables, problems, scope=None if keys is None else keys.lazy(), policy=policy, files=files)
    validate_output(LINE_TRACKING, result.line_tracking)
    validate_output(EXCEPTIONS, result.exceptions)
    validate_output(XERO_LINE_ITEMS, result.xero_line_items)
    _replace_results(run, result, keys)

    states = result.invoice_states
    summary = RunSummary(
        run_id=run.run_id,
        flow=run.flow,
        invoices_considered=states.height,
        invoices_ready=states.filter(pl.col("invoice_state") == "ready").height,
        invoices_held=states.filter(pl.col("invoice_state") == "held").height,
        invoices_not_xero=states.filter(pl.col("invoice_state") == "not_xero").height,
        lines_resolved=result.line_tracking.height,
    )
    new_watermark = None
    if scope.flow == "nightly" or scope.everything:
        latest = tables["invoices"].select(pl.col("updated_at").max()).collect().item()
        new_watermark = max(filter(None, [latest, watermark]), default=None)
    run.con.execute(
        "create or replace temp table _run_meta as select ?::varchar as scope, ?::timestamptz as watermark",
        [scope.describe(watermark), new_watermark],
    )
    return summary, keys


def _replace_results(run: Run, result: Resolution, keys: pl.DataFrame | None) -> None:
    con = run.con
    scope = keys if keys is not None else wh.query(con, "select practice_id, invoice_id from invoice_tracking")
    scope = pl.concat([scope.select(INVOICE), result.invoice_states.select(INVOICE)], how="vertical").unique()
    for table in ("invoice_tracking", "line_tracking", "xero_invoices", "xero_line_items"):
        if keys is None:
            con.execute(f"delete from {table}")
        else:
            wh.delete_invoices(con, table, scope)

    con.register("_payloads", result.payloads.to_arrow())
    con.register("_heads", result.xero_invoices.to_arrow())
    con.register("_states", result.invoice_states.to_arrow())
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
               s.invoice_state::varchar, s.hold_codes, s.line_count, s.consolidated, d.total, d.digest, ?
        from _states s left join _digests d using (practice_id, invoice_id)
        """,
        [run.run_id],
    )
    wh.insert(con, "line_tracking", result.line_tracking.with_columns(pl.lit(run.run_id).alias("run_id")))
    # batch_id: the latest batch that carried exactly this content, if any.
    con.execute(
        """
        create or replace temp table _sent_batch as
        select d.practice_id, d.invoice_id, l.batch_id
        from _digests d
        join (select practice_id, invoice_id, digest, batch_id,
                     row_number() over (partition by practice_id, invoice_id order by batched_at desc, batch_id desc) as n
              from export_ledger) l
          on l.practice_id = d.practice_id and l.invoice_id = d.invoice_id and l.n = 1 and l.digest = d.digest
        """
    )
    wh.insert(con, "xero_invoices", result.xero_invoices)
    wh.insert(con, "xero_line_items", result.xero_line_items)
    for table in ("xero_invoices", "xero_line_items"):
        con.execute(
            f"""update {table} t set batch_id = b.batch_id from _sent_batch b
                where t.practice_id = b.practice_id and t.invoice_id = b.invoice_id"""
        )
    wh.merge_exceptions(con, result.exceptions, scope, run.started_at)
    for name in ("_payloads", "_heads", "_states"):
        con.unregister(name)


def write_batches(
    run: Run, keys: pl.DataFrame | None, max_invoices: int, max_bytes: int
) -> tuple[int, int, list[str]]:
    """Batch every ready invoice (in `keys`, or anywhere when None) whose content was never sent."""
    con = run.con
    pending = wh.query(
        con,
        """
        select i.* from xero_invoices i
        join invoice_tracking t using (practice_id, invoice_id)
        where t.invoice_state = 'ready' and i.batch_id is null
        """,
    )
    if keys is not None:
        pending = pending.join(keys.select(INVOICE), on=INVOICE, how="semi")
    if pending.is_empty():
        return 0, 0, []
    con.register("_pending", pending.select(INVOICE).to_arrow())
    items = wh.query(con, "select x.* from xero_line_items x join _pending p using (practice_id, invoice_id)")
    con.unregister("_pending")
    sequences = dict(
        con.execute(
            "select practice_id, count(*) + 1 from xero_batches group by practice_id"
        ).fetchall()
    )
    batches = plan_batches(pending, items, sequences, max_invoices, max_bytes)
    ledger_rows, batch_rows, written = [], [], []
    for batch in batches:
        check_body(batch)
        json_rel, csv_rel = write_batch(batch, run.staging)
        written += [json_rel, csv_rel]
        batch_rows.append(
            {
                "batch_id": batch.batch_id,
                "practice_id": batch.practice_id,
                "run_id": run.run_id,
                "path": json_rel,
                "csv_path": csv_rel,
                "invoice_count": len(batch.invoice_ids),
                "line_count": batch.line_count,
                "bytes": len(batch.body),
                "created_at": run.started_at,
            }
        )
        ledger_rows += [
            {"practice_id": batch.practice_id, "invoice_id": i, "batch_id": batch.batch_id} for i in batch.invoice_ids
        ]
    wh.insert(con, "xero_batches", pl.DataFrame(batch_rows))
    ledger = pl.DataFrame(ledger_rows)
    con.register("_ledger", ledger.to_arrow())
    con.execute(
        """
        insert into export_ledger
        select l.practice_id, l.invoice_id, t.digest, l.batch_id, ?, ?
        from _ledger l join invoice_tracking t using (practice_id, invoice_id)
        """,
        [run.run_id, run.started_at],
    )
    for table in ("xero_invoices", "xero_line_items"):
        con.execute(
            f"""update {table} t set batch_id = l.batch_id from _ledger l
                where t.practice_id = l.practice_id and t.invoice_id = l.invoice_id"""
        )
    con.unregister("_ledger")
    return len(batches), ledger.height, written


def record_run(run: Run, summary: RunSummary, source: Path, finished: datetime) -> RunSummary:
    con = run.con
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
