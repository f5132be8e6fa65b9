"""Prefect flows: `nightly` and `backfill`, made of coarse tasks around flows.steps.

Tasks pass the Run (paths and the run's own DuckDB connection) and table names, never big frames, and
cache nothing. A backfill resolves its invoices chunk by chunk (whole practice x month partitions), one
task each, with a progress bar on a terminal.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows import batches, faults, steps
from flows.publish import Run, WarehouseLocked, atomic_run
from flows.settings import Settings

TASK = {"cache_policy": NONE, "persist_result": False}


@task(name="load sources", **TASK)
def load_sources_task(run: Run, source: Path) -> dict[str, str]:
    return steps.load_sources(run, source)


@task(name="parse sources", **TASK)
def parse_sources_task(run: Run, files: dict[str, str], scope: steps.Scope) -> None:
    steps.parse_sources(run, files, scope)


@task(name="plan partitions", **TASK)
def plan_task(run: Run, scope: steps.Scope, chunk_lines: int) -> steps.Plan:
    return steps.plan(run, scope, chunk_lines)


@task(name="resolve chunk", task_run_name="resolve chunk {chunk}", **TASK)
def resolve_chunk_task(run: Run, files: dict[str, str], chunk: int, policy: str) -> steps.RunSummary:
    return steps.resolve_chunk(run, files, chunk, policy)


@task(name="finish resolution", **TASK)
def finish_task(run: Run, files: dict[str, str], scope: steps.Scope, plan: steps.Plan) -> None:
    steps.finish_resolution(run, files, scope, plan)


@task(name="write xero batches", **TASK)
def write_batches_task(run: Run, only_scope: bool, max_invoices: int, max_bytes: int, chunk_lines: int):
    return batches.write_batches(run, only_scope, max_invoices, max_bytes, chunk_lines)


@task(name="check every invoice is accounted for", **TASK)
def check_run_task(run: Run, scope: steps.Scope) -> None:
    steps.check_run(run, scope)


@task(name="record run", **TASK)
def record_run_task(run: Run, summary: steps.RunSummary, source: Path) -> steps.RunSummary:
    return steps.record_run(run, summary, source, datetime.now(UTC))


def _plain(fn):
    return fn


def _record_now(run: Run, summary: steps.RunSummary, source: Path) -> steps.RunSummary:
    return steps.record_run(run, summary, source, datetime.now(UTC))


PLAIN = {
    "load": steps.load_sources,
    "parse": steps.parse_sources,
    "plan": steps.plan,
    "chunk": steps.resolve_chunk,
    "finish": steps.finish_resolution,
    "batches": batches.write_batches,
    "check": steps.check_run,
    "record": _record_now,
}
TASKS = {
    "load": load_sources_task,
    "parse": parse_sources_task,
    "plan": plan_task,
    "chunk": resolve_chunk_task,
    "finish": finish_task,
    "batches": write_batches_task,
    "check": check_run_task,
    "record": record_run_task,
}


def run_pipeline(
    settings: Settings, scope: steps.Scope, emit_batches: bool, *, as_tasks: bool = True
) -> steps.RunSummary:
    """One atomic run: everything below commits together or not at all.

    `as_tasks=False` calls the same steps as plain functions (no Prefect API needed): for tests and the
    benchmark; the flows below always run them as tasks.
    """
    do = TASKS if as_tasks else PLAIN
    with atomic_run(settings.warehouse, settings.out, settings.lock_path, scope.flow) as run:
        files = do["load"](run, settings.source)
        faults.checkpoint("loaded")
        do["parse"](run, files, scope)
        plan = do["plan"](run, scope, settings.chunk_lines)
        parts = []
        with _progress(plan.chunks) as advance:
            for chunk in range(plan.chunks):
                parts.append(do["chunk"](run, files, chunk, settings.same_category_policy))
                advance()
                faults.checkpoint("chunk")
        summary = steps.add_up(run, parts)
        do["finish"](run, files, scope, plan)
        faults.checkpoint("resolved")
        if emit_batches:
            count, invoices, written = do["batches"](
                run,
                scope.flow != "nightly",
                settings.batch_max_invoices,
                settings.batch_max_bytes,
                settings.chunk_lines,
            )
            summary.batches_written, summary.invoices_batched = count, invoices
            summary.files = [str(settings.out / p) for p in written]
        faults.checkpoint("staged")
        do["check"](run, scope)
        summary = do["record"](run, summary, settings.source)
    return summary


class _progress:
    """A progress bar over chunks, shown only on a terminal."""

    def __init__(self, total: int) -> None:
        console = Console(stderr=True)
        self.bar = Progress(
            TextColumn("resolving"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal or total < 2,
            transient=True,
        )
        self.task = self.bar.add_task("chunks", total=total)

    def __enter__(self):
        self.bar.start()
        return lambda: self.bar.advance(self.task)

    def __exit__(self, *exc) -> None:
        self.bar.stop()


def _with_lock_retries(
    settings: Settings, scope: steps.Scope, emit: bool, retries: int, delay: float
) -> dict:
    """Retry only when another run holds the warehouse (transient); bad data never gets a retry."""
    for attempt in range(retries + 1):
        try:
            return run_pipeline(settings, scope, emit).as_dict()
        except WarehouseLocked:
            if attempt == retries:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


@flow(name="trackline-nightly", log_prints=True)
def nightly_flow(
    settings: Settings | None = None, lock_retries: int = 0, lock_retry_delay: float = 60.0
) -> dict:
    """Invoices changed since the last successful run, plus every held invoice; batches what changed."""
    settings = settings or Settings()
    return _with_lock_retries(settings, steps.Scope("nightly"), True, lock_retries, lock_retry_delay)


@flow(name="trackline-backfill", log_prints=True)
def backfill_flow(
    settings: Settings | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    practices: list[str] | None = None,
    emit_batches: bool = False,
) -> dict:
    """Recompute approved invoices issued in the range, replacing what the warehouse had for them."""
    settings = settings or Settings()
    scope = steps.Scope("backfill", date_from, date_to, tuple(practices or ()))
    return run_pipeline(settings, scope, emit_batches).as_dict()
