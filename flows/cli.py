"""The `trackline` command (contract §5)."""

from __future__ import annotations

import logging
import os
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Xero tracking categories for every invoice line."
)
out = Console()
err = Console(stderr=True)

SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help="Source folder, or postgresql://user@host:port/db (default data/sample)."),
]
WarehouseOpt = Annotated[
    Path | None, typer.Option("--warehouse", help="DuckDB warehouse (default data/warehouse.duckdb).")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Output folder (default data/out).")]


def _quiet_prefect() -> None:
    """No telemetry, and no Prefect console logs unless the user asks (PREFECT_LOGGING_LEVEL=INFO): the
    command prints its own summary, and a stopped run must end in one line on stderr, not a traceback.
    Flow and task states still reach the Prefect API."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    if os.environ["PREFECT_LOGGING_LEVEL"] == "CRITICAL":
        # Prefect's background services log under their class names, outside the "prefect" logger, e.g.
        # "EventsWorker - Still processing items" when a process exits before they have flushed.
        for service in ("EventsWorker", "APILogWorker"):
            logging.getLogger(service).setLevel(logging.CRITICAL)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _settings(source: str | None, warehouse: Path | None, out_dir: Path | None):
    from flows.settings import Settings

    given = {
        k: v for k, v in {"source": source, "warehouse": warehouse, "out": out_dir}.items() if v is not None
    }
    return Settings(**given)


def _fail(message: str) -> None:
    err.print(f"trackline: {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _run(fn, *args, **kwargs):
    """Run a flow (or a plain function): a run that stops ends in one line on stderr, never a traceback.

    A flow ends Failed with that line as its state's message (flows.run.stops); the result of a Failed state
    raises the stop, which becomes the line here."""
    from prefect import Flow

    from flows.run.stops import stop_sentence

    try:
        if isinstance(fn, Flow):
            return fn(*args, return_state=True, **kwargs).result()
        return fn(*args, **kwargs)
    except Exception as problem:
        sentence = stop_sentence(problem)
        if sentence is None:
            raise
        _fail(sentence)
    raise AssertionError("unreachable")


def print_summary(summary: dict) -> None:
    table = Table(title=f"trackline {summary['flow']} run {summary['run_id']}", show_header=False)
    table.add_row("invoices ready for Xero", str(summary["invoices_ready"]))
    table.add_row("invoices held", str(summary["invoices_held"]))
    for code, count in summary["held_by_code"].items():
        table.add_row(f"  held: {code}", str(count))
    table.add_row("invoices not on Xero", str(summary["invoices_not_xero"]))
    table.add_row("lines resolved", str(summary["lines_resolved"]))
    table.add_row("open exceptions", str(summary["exceptions_open"]))
    table.add_row("batches written", f"{summary['batches_written']} ({summary['invoices_batched']} invoices)")
    out.print(table)
    for warning in summary.get("warnings", []):
        err.print(f"trackline: warning: {warning}", highlight=False, soft_wrap=True)
    files = summary["files"]
    if files:
        shown = files[:4] + ([f"... and {len(files) - 4} more"] if len(files) > 4 else [])
        out.print("files written:\n  " + "\n  ".join(shown), highlight=False)


@app.command()
def nightly(source: SourceOpt = None, warehouse: WarehouseOpt = None, out_dir: OutOpt = None) -> None:
    """The scheduled flow: invoices changed since the last successful run, plus every held invoice."""
    _quiet_prefect()
    from flows.run.pipeline import nightly_flow

    print_summary(_run(nightly_flow, _settings(source, warehouse, out_dir)))


def _date(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        _fail(f"{flag} {value!r} is not a date YYYY-MM-DD")
    return None


@app.command()
def backfill(
    date_from: Annotated[str | None, typer.Option("--from", help="First issue date, YYYY-MM-DD.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Last issue date, YYYY-MM-DD.")] = None,
    practice: Annotated[
        list[str] | None, typer.Option("--practice", help="Only this practice (repeatable).")
    ] = None,
    emit_batches: Annotated[bool, typer.Option("--emit-batches", help="Write Xero batches too.")] = False,
    source: SourceOpt = None,
    warehouse: WarehouseOpt = None,
    out_dir: OutOpt = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Resolve the chunks on a local Dask cluster of N processes."),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="Resolve the chunks on this Dask scheduler (TRACKLINE_DASK_ADDRESS)."),
    ] = None,
) -> None:
    """Recompute tracking for approved invoices issued in the range (all when no range)."""
    _quiet_prefect()
    start, end = _date(date_from, "--from"), _date(date_to, "--to")
    if start and end and start > end:
        _fail(f"--from {start} is after --to {end}")
    if workers is not None and workers < 1:
        _fail(f"--workers {workers}: give at least 1 worker")
    if workers is not None and dask is not None:
        _fail("give --workers N (a local cluster) or --dask ADDRESS (an existing one), not both")
    from flows.run.pipeline import backfill_flow

    settings = _settings(source, warehouse, out_dir)
    if dask is not None:
        settings = settings.model_copy(update={"dask_address": dask})
    parameters = {
        "date_from": start,
        "date_to": end,
        "practices": practice or [],
        "emit_batches": emit_batches,
    }
    if workers or settings.dask_address:
        from flows.run.pipeline import backfill_on_cluster

        summary = _run(backfill_on_cluster, settings, workers, **parameters)
    else:
        summary = _run(backfill_flow, settings, **parameters)
    print_summary(summary)


@app.command()
def report(warehouse: WarehouseOpt = None, out_dir: OutOpt = None) -> None:
    """Write the tracking reports."""
    from flows.reports.html import write_reports

    settings = _settings(None, warehouse, out_dir)
    if not settings.warehouse.exists():
        _fail(
            f"{settings.warehouse}: no warehouse yet; run `trackline backfill` or `trackline nightly` first"
        )
    paths = _run(write_reports, settings.warehouse, settings.out)
    for path in paths[:-1]:
        out.print(str(path), highlight=False)
    out.print(f"report: {paths[-1]}", highlight=False)


ConnectionsOpt = Annotated[
    Path | None,
    typer.Option("--connections", help="Xero connections file (default data/xero_connections.json)."),
]
PracticeOpt = Annotated[list[str] | None, typer.Option("--practice", help="Only this practice (repeatable).")]


def print_push(summary: dict) -> None:
    table = Table(title=f"trackline push {summary['push_id']}")
    for column in ("practice", "sent", "refused by Xero", "tracking not active in Xero", "skipped"):
        table.add_column(column)
    practices = sorted({*summary["sent"], *summary["rejected"], *summary["not_active"], *summary["skipped"]})
    for p in practices:
        table.add_row(
            p,
            str(summary["sent"].get(p, 0)),
            str(summary["rejected"].get(p, 0)),
            str(summary["not_active"].get(p, 0)),
            summary["skipped"].get(p, ""),
        )
    out.print(table if practices else "nothing to send: every written batch is in Xero")
    out.print(f"{summary['batches_sent']} requests carried invoices; {summary['requests']} requests in all")
    for practice, why in summary["skipped"].items():
        err.print(f"trackline: practice {practice} skipped: {why}", highlight=False, soft_wrap=True)


@app.command()
def push(
    practice: PracticeOpt = None,
    warehouse: WarehouseOpt = None,
    out_dir: OutOpt = None,
    connections: ConnectionsOpt = None,
) -> None:
    """Send the written batches not yet accepted by Xero (each practice to its own organisation)."""
    _quiet_prefect()
    from flows.run.pipeline import push_flow

    settings = _settings(None, warehouse, out_dir)
    if connections is not None:
        settings = settings.model_copy(update={"xero_connections": connections})
    summary = _run(push_flow, settings, practices=practice or [])
    print_push(summary)
    if summary.get("unfinished"):
        # Everything else is recorded; a scheduler should still see that Xero did not take it all.
        _fail(
            f"{len(summary['unfinished'])} practice(s) not finished because Xero failed; "
            "run `trackline push` again: nothing is sent twice"
        )


# Verify and retrack (contract section 6) -----------------------------------------------------------------


def _xero_settings(warehouse: Path | None, out_dir: Path | None, connections: Path | None):
    settings = _settings(None, warehouse, out_dir)
    if connections is not None:
        settings = settings.model_copy(update={"xero_connections": connections})
    return settings


def print_verify(summary: dict) -> None:
    table = Table(title=f"trackline verify {summary['check_id']}")
    for column in (
        "practice",
        "invoices read",
        "lines dropped by Xero",
        "waiting for a later run",
        "skipped",
    ):
        table.add_column(column)
    practices = sorted({*summary["read"], *summary["dropped"], *summary["waiting"], *summary["skipped"]})
    for p in practices:
        table.add_row(
            p,
            str(summary["read"].get(p, 0)),
            str(summary["dropped"].get(p, 0)),
            str(summary["waiting"].get(p, 0)),
            summary["skipped"].get(p, ""),
        )
    out.print(table if practices else "nothing to verify: no invoice of these practices is in Xero")
    if summary["dropped"]:
        out.print(
            "each dropped line is an open XERO_TRACKING_DROPPED exception (what was sent, what Xero has)"
        )
    for practice, why in summary["skipped"].items():
        err.print(f"trackline: practice {practice} skipped: {why}", highlight=False, soft_wrap=True)


@app.command()
def verify(
    practice: PracticeOpt = None,
    warehouse: WarehouseOpt = None,
    out_dir: OutOpt = None,
    connections: ConnectionsOpt = None,
) -> None:
    """Read the invoices sent to Xero back and check that Xero kept their tracking."""
    _quiet_prefect()
    from flows.run.pipeline import verify_flow

    print_verify(_run(verify_flow, _xero_settings(warehouse, out_dir, connections), practices=practice or []))


def _amount(currency: str | None, amount) -> str:
    symbol = {"GBP": "£", "EUR": "€", "USD": "$"}.get(currency or "")
    return f"{symbol}{amount:,.2f}" if symbol else f"{currency or ''} {amount:,.2f}".strip()


def print_plan(moves: list[dict]) -> None:
    """The plan's totals, a line per practice and option move ("Partner A → Partner B: 412 lines, ..."),
    and per practice."""
    if not moves:
        out.print("the retrack plan is empty: every invoice in Xero carries the tracking resolved now")
        return
    out.print("invoices in Xero whose tracking has changed since they were sent:")
    totals: dict[tuple[str, str], list] = {}
    for m in moves:
        blocked = f" ({m['blocked_lines']} blocked by Xero)" if m["blocked_lines"] else ""
        out.print(
            f"  {m['practice_id']}  {m['category'] or ''}: {m['from_option']} → {m['to_option']}: "
            f"{m['lines']} lines on {m['invoices']} invoices, {_amount(m['currency'], m['amount'])}{blocked}",
            highlight=False,
            soft_wrap=True,
        )
        total = totals.setdefault((m["practice_id"], m["currency"]), [0, 0])
        total[0] += m["lines"]
        total[1] += m["amount"]
    for (practice, currency), (lines, amount) in totals.items():
        out.print(
            f"{practice}: {lines} line moves, {_amount(currency, amount)}", highlight=False, soft_wrap=True
        )
    out.print("every line: the view retrack_plan; `trackline retrack --apply` updates them in Xero")


def print_retrack(summary: dict) -> None:
    table = Table(title=f"trackline retrack --apply {summary['check_id']}")
    for column in ("practice", "invoices updated", "blocked by Xero", "skipped"):
        table.add_column(column)
    practices = sorted({*summary["updated"], *summary["blocked"], *summary["skipped"]})
    for p in practices:
        table.add_row(
            p,
            str(summary["updated"].get(p, 0)),
            str(summary["blocked"].get(p, 0)),
            summary["skipped"].get(p, ""),
        )
    out.print(table if practices else "nothing to update: the retrack plan is empty")
    for invoice, why in summary["blocked_why"].items():
        out.print(f"RETRACK_BLOCKED {invoice}: {why}", highlight=False, soft_wrap=True)
    for practice, why in summary["skipped"].items():
        err.print(f"trackline: practice {practice} skipped: {why}", highlight=False, soft_wrap=True)


@app.command()
def retrack(
    practice: PracticeOpt = None,
    apply: Annotated[bool, typer.Option("--apply", help="Update the invoices in Xero.")] = False,
    warehouse: WarehouseOpt = None,
    out_dir: OutOpt = None,
    connections: ConnectionsOpt = None,
) -> None:
    """List the invoices in Xero whose tracking has changed since they were sent; --apply updates them."""
    _quiet_prefect()
    settings = _xero_settings(warehouse, out_dir, connections)
    if apply:
        from flows.run.pipeline import retrack_flow

        print_retrack(_run(retrack_flow, settings, practices=practice or []))
        return
    from flows.reports.views import reading
    from flows.xero.retrack import plan_moves

    if not settings.warehouse.exists():
        _fail(
            f"{settings.warehouse}: no warehouse yet; run `trackline backfill` or `trackline nightly` first"
        )

    def moves():
        with reading(settings.warehouse) as con:
            return plan_moves(con, practice or None)

    print_plan(_run(moves))


@app.command()
def serve() -> None:
    """Register the nightly schedule with Prefect and serve it."""
    _quiet_prefect()
    from prefect.settings import PREFECT_API_URL

    from flows.deployments import serve_nightly

    if not PREFECT_API_URL.value():
        err.print(
            "trackline: no PREFECT_API_URL: serving on a temporary Prefect server that ends with this "
            "command; run `make prefect` and set the PREFECT_API_URL it prints to keep the runs in its UI",
            highlight=False,
            soft_wrap=True,
        )
    serve_nightly(_settings(None, None, None))


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
