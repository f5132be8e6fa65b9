"""The batch-writing step of a run: every ready invoice whose content was never sent, rendered by
flows.xero_files into Xero JSON bodies and CSV files under the run's staging folder, and recorded in
xero_batches, export_ledger and the batch_id of xero_invoices and xero_line_items."""

from __future__ import annotations

import polars as pl

from flows import warehouse as wh
from flows.publish import Run
from flows.xero_files import Written, assign_batches, render_invoices, write_batch_files

INVOICE = ["practice_id", "invoice_id"]


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


def _write_practices(
    run: Run, pending: pl.DataFrame, sequences: dict[str, int], max_invoices: int, max_bytes: int
) -> Written:
    """Render and write the batches of some practices' pending invoices (bounded memory)."""
    con = run.con
    con.register("_pending", pending.select(INVOICE).to_arrow())
    items = wh.query(con, "select x.* from xero_line_items x join _pending p using (practice_id, invoice_id)")
    con.unregister("_pending")
    batched = assign_batches(render_invoices(pending, items), sequences, max_invoices, max_bytes)
    return write_batch_files(batched, run.staging)


def write_batches(
    run: Run, only_scope: bool, max_invoices: int, max_bytes: int, chunk_lines: int = 2_000_000
) -> tuple[int, int, list[str]]:
    """Batch every ready invoice whose content was never sent: those the run recomputed when
    `only_scope` (a backfill), else every one in the warehouse (nightly: nothing pending is forgotten)."""
    con = run.con
    in_scope = "and exists (select 1 from _partition p where p.practice_id = i.practice_id and p.invoice_id = i.invoice_id)"
    pending = wh.query(
        con,
        f"""
        select i.* from xero_invoices i
        join invoice_tracking t using (practice_id, invoice_id)
        where t.invoice_state = 'ready' and i.batch_id is null {in_scope if only_scope else ""}
        """,
    )
    if pending.is_empty():
        return 0, 0, []
    sequences = dict(
        con.execute("select practice_id, count(*) + 1 from xero_batches group by practice_id").fetchall()
    )
    parts = [
        _write_practices(
            run, pending.filter(pl.col("practice_id").is_in(group)), sequences, max_invoices, max_bytes
        )
        for group in _practice_groups(pending, chunk_lines)
    ]
    written = Written(
        batches=pl.concat([w.batches for w in parts]),
        ledger=pl.concat([w.ledger for w in parts]),
        paths=[p for w in parts for p in w.paths],
    )
    wh.insert(
        con,
        "xero_batches",
        written.batches.with_columns(
            pl.lit(run.run_id).alias("run_id"), pl.lit(run.started_at).alias("created_at")
        ),
    )
    ledger = written.ledger
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
    return written.batches.height, ledger.height, written.paths
