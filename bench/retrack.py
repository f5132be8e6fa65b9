"""What verify and retrack cost trackline itself, at a size: a bench piece of its own, outside `make bench`.

    python -m bench.retrack 10k                 # a smoke run (generates bench/data/10k if missing)
    python -m bench.retrack 1M --moved-share 0.1

Xero's limits bound the requests (60 a minute per organisation: verify reads 50 invoices a request, so 3,000
invoices a minute; retrack updates one invoice a request, so 60 a minute), so this measures what is
trackline's own, with no HTTP:

1. a backfill of the generated source (emit_batches=False) on a new warehouse;
2. every ready invoice marked as in Xero (xero_sent_invoices, xero_sent_lines with made-up ids), as years of
   pushes would leave it;
3. a share of each practice's clients with an option moved to another option of the same category, and
   the backfill again: its stage "check invoices already in xero" (SENT_INVOICE_CHANGED over every
   invoice it recomputed) timed on its own;
4. the plan: `retrack_plan` counted and summed, and its totals (`retrack_plan_moves`);
5. verify's comparison of Xero's answers with what was sent, and retrack's request bodies, for up to
   `--sample` invoices each.

Results as JSON on stdout. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"

MARK_SENT = """
    insert into xero_sent_invoices
    select i.practice_id, i.invoice_id, i.invoice_number, 'bench', uuid()::varchar, []::varchar[], t.digest, now(), 'bench'
    from xero_invoices i join invoice_tracking t using (practice_id, invoice_id)
    where t.invoice_state = 'ready';
    insert into xero_sent_lines
    select x.practice_id, x.invoice_id, s.xero_invoice_id, x.line_no, uuid()::varchar, x.line_id,
           x.description, x.quantity, x.unit_amount, x.line_amount, x.account_code, x.tax_type,
           x.tracking1_name, x.tracking1_option, x.tracking2_name, x.tracking2_option, now(), 'bench'
    from xero_line_items x join xero_sent_invoices s using (practice_id, invoice_id);
"""


def _backfill(source: Path, warehouse: Path, out: Path) -> dict:
    from flows.run.pipeline import run_pipeline
    from flows.run.state import Scope
    from flows.settings import Settings

    settings = Settings(source=source, warehouse=warehouse, out=out)
    started = time.perf_counter()
    summary = run_pipeline(settings, Scope("backfill"), False, as_tasks=False)
    return {"seconds": round(time.perf_counter() - started, 3), "stages": summary.stages}


def _moved_source(source: Path, target: Path, share: float) -> int:
    """`source` with `share` of the clients that have an option moved to the next option of its category;
    the other tables linked, not copied. Returns how many clients moved."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in source.iterdir():
        if path.name != "clients.parquet":
            (target / path.name).symlink_to(path.resolve())
    clients = pl.read_parquet(source / "clients.parquet")
    options = pl.read_parquet(source / "tracking_options.parquet").filter(pl.col("status") == "ACTIVE")
    # the next ACTIVE option of the same category, cycling
    ranked = options.sort("practice_id", "tracking_category_id", "tracking_option_id").with_columns(
        pl.col("tracking_option_id")
        .shift(-1)
        .over("practice_id", "tracking_category_id")
        .fill_null(pl.col("tracking_option_id").first().over("practice_id", "tracking_category_id"))
        .alias("next_option")
    )
    every = max(1, round(1 / share))
    chosen = clients.with_row_index("_n").with_columns(
        (pl.col("tracking_option_id").is_not_null() & (pl.col("_n") % every == 0)).alias("_moves")
    )
    moved = chosen.join(
        ranked.select("practice_id", "tracking_option_id", "next_option"),
        on=["practice_id", "tracking_option_id"],
        how="left",
    ).with_columns(
        pl.when(pl.col("_moves") & pl.col("next_option").is_not_null())
        .then(pl.col("next_option"))
        .otherwise(pl.col("tracking_option_id"))
        .alias("tracking_option_id")
    )
    count = int((moved["_moves"] & moved["next_option"].is_not_null()).sum())
    moved.select(clients.columns).write_parquet(target / "clients.parquet")
    return count


def run(size: str, share: float, sample: int) -> dict:
    from flows.reports.views import reading
    from flows.warehouse.store import Store, store_folder
    from flows.xero.retrack import Update, plan_moves, read_plan, updates_of
    from flows.xero.verify import compare_invoice

    source = DATA / size
    if not source.exists():
        subprocess.run([sys.executable, "-m", "bench.generate", size], cwd=REPO, check=True)
    work = DATA / "work" / f"retrack-{size}"
    shutil.rmtree(work, ignore_errors=True)
    warehouse, out = work / "warehouse.duckdb", work / "out"
    result: dict = {"size": size, "moved_share": share}
    result["backfill"] = _backfill(source, warehouse, out)

    con = duckdb.connect(str(warehouse))
    try:
        Store(con, store_folder(warehouse)).refresh_views()
        started = time.perf_counter()
        con.execute(MARK_SENT)
        result["mark_sent_seconds"] = round(time.perf_counter() - started, 3)
        result["invoices_in_xero"], result["lines_in_xero"] = con.execute(
            "select count(distinct (practice_id, invoice_id)), count(*) from xero_sent_lines"
        ).fetchone()
    finally:
        con.close()

    result["clients_moved"] = _moved_source(source, work / "moved-source", share)
    again = _backfill(work / "moved-source", warehouse, out)
    result["backfill_after_move"] = again
    result["sent_check_seconds"] = round(again["stages"].get("check invoices already in xero", 0.0), 3)

    with reading(warehouse) as con:
        started = time.perf_counter()
        lines, amount = con.execute("select count(*), sum(line_amount) from retrack_plan").fetchone()
        result["plan_seconds"] = round(time.perf_counter() - started, 3)
        result["plan_lines"], result["plan_amount"] = lines, str(amount)
        started = time.perf_counter()
        result["plan_moves"] = len(plan_moves(con, None))
        result["plan_moves_seconds"] = round(time.perf_counter() - started, 3)
        result["sent_invoice_changed"] = con.execute(
            "select count(*) from exceptions where code = 'SENT_INVOICE_CHANGED'"
        ).fetchone()[0]
        started = time.perf_counter()
        rows = read_plan(con)
        result["apply_plan_read_seconds"] = round(time.perf_counter() - started, 3)
        expected = con.execute(
            f"""select * from xero_sent_lines
                where (practice_id, invoice_id) in (select distinct (practice_id, invoice_id)
                                                   from xero_sent_lines limit {int(sample)})
                order by practice_id, invoice_id, line_no"""
        ).pl()

    updates: list[Update] = updates_of(rows)[:sample]
    started = time.perf_counter()
    size_bytes = sum(len(u.body()) for u in updates)
    result["apply_bodies"] = len(updates)
    result["apply_bodies_seconds"] = round(time.perf_counter() - started, 3)
    result["apply_body_bytes_mean"] = round(size_bytes / max(len(updates), 1))

    invoices = expected.partition_by("practice_id", "invoice_id", maintain_order=True)
    answers = [
        {
            "Status": "AUTHORISED",
            "LineItems": [
                {
                    "LineItemID": line["line_item_id"],
                    "Tracking": [
                        {"Name": line[f"tracking{n}_name"], "Option": line[f"tracking{n}_option"]}
                        for n in (1, 2)
                        if line[f"tracking{n}_name"] is not None
                    ],
                }
                for line in invoice.to_dicts()
            ],
        }
        for invoice in invoices
    ]
    started = time.perf_counter()
    dropped = 0
    for invoice, answer in zip(invoices, answers, strict=True):
        dropped += len(compare_invoice("bench", invoice.to_dicts(), answer)[1])
    result["verify_compared_invoices"] = len(invoices)
    result["verify_compare_seconds"] = round(time.perf_counter() - started, 3)
    result["verify_dropped"] = dropped
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retrack", description=__doc__.split("\n")[0])
    parser.add_argument("size", help="a bench.generate size: 10k, 100k, 1M, ...")
    parser.add_argument("--moved-share", type=float, default=0.1, help="share of clients moved (default 0.1)")
    parser.add_argument("--sample", type=int, default=10_000, help="invoices for the per-invoice pieces")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.size, args.moved_share, args.sample), indent=2, default=str))


if __name__ == "__main__":
    main()
