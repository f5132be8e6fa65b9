"""Prefect flows: `nightly` and `backfill`, each a few coarse tasks around flows.steps.

Tasks pass the Run (paths and the run's own DuckDB connection), never big frames, and cache nothing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE

from flows import steps
from flows.publish import Run, atomic_run
from flows.settings import Settings

TASK = {"cache_policy": NONE, "persist_result": False}


@task(name="load sources", **TASK)
def load_sources_task(run: Run, source: Path) -> dict[str, str]:
    return steps.load_sources(run, source)


@task(name="resolve tracking", **TASK)
def resolve_task(run: Run, files: dict[str, str], scope: steps.Scope, policy: str):
    return steps.resolve(run, files, scope, policy)


@task(name="write xero batches", **TASK)
def write_batches_task(run: Run, keys, max_invoices: int, max_bytes: int):
    return steps.write_batches(run, keys, max_invoices, max_bytes)


@task(name="record run", **TASK)
def record_run_task(run: Run, summary: steps.RunSummary, source: Path) -> steps.RunSummary:
    return _record_now(run, summary, source)


def run_pipeline(
    settings: Settings, scope: steps.Scope, emit_batches: bool, *, as_tasks: bool = True
) -> steps.RunSummary:
    """One atomic run: everything below commits together or not at all.

    `as_tasks=False` calls the same steps as plain functions (no Prefect API needed): for tests and the
    benchmark; the flows below always run them as tasks.
    """
    load, resolve, write, record = (
        (load_sources_task, resolve_task, write_batches_task, record_run_task)
        if as_tasks
        else (steps.load_sources, steps.resolve, steps.write_batches, _record_now)
    )
    with atomic_run(settings.warehouse, settings.out, settings.lock_path, scope.flow) as run:
        files = load(run, settings.source)
        summary, keys = resolve(run, files, scope, settings.same_category_policy)
        if emit_batches:
            batch_keys = None if scope.flow == "nightly" else keys
            count, invoices, written = write(run, batch_keys, settings.batch_max_invoices, settings.batch_max_bytes)
            summary.batches_written, summary.invoices_batched = count, invoices
            summary.files = [str(settings.out / p) for p in written]
        summary = record(run, summary, settings.source)
    return summary


def _record_now(run: Run, summary: steps.RunSummary, source: Path) -> steps.RunSummary:
    return steps.record_run(run, summary, source, datetime.now(UTC))


@flow(name="trackline-nightly", log_prints=True)
def nightly_flow(settings: Settings | None = None) -> dict:
    """Invoices changed since the last successful run, plus every held invoice; batches what changed."""
    settings = settings or Settings()
    return run_pipeline(settings, steps.Scope("nightly"), emit_batches=True).as_dict()


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
