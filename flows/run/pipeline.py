"""Prefect flows: `nightly` and `backfill`, made of coarse tasks around flows.run.steps.

Tasks pass the Run (paths and the run's own DuckDB connection) and table names, never big frames, and
cache nothing. A backfill resolves its invoices chunk by chunk (whole practice x month partitions), one
task each, with a progress bar on a terminal.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, date, datetime
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed, State
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.run import faults, steps
from flows.run.publish import Run, WarehouseLocked, atomic_run
from flows.run.stops import Stopped, stop_sentence
from flows.settings import Settings
from flows.xero import batches

TASK = {"cache_policy": NONE, "persist_result": False}
STOPPED = "Stopped"  # the state of a task that stopped the run (flows.run.stops)


def _record_now(run: Run, summary: steps.RunSummary, source: Path) -> steps.RunSummary:
    return steps.record_run(run, summary, source, datetime.now(UTC))


def _as_task(fn, name: str, **options):
    """A step as a Prefect task. A stop (flows.run.stops) is not raised out of the task, which Prefect would
    log as an error with a traceback at any log level but the quietest: the task ends in a state named
    Stopped carrying the one line, and `_calling` raises it again in the flow, which ends Failed with it."""

    @functools.wraps(fn)
    def step(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as problem:
            sentence = stop_sentence(problem)
            if sentence is None:
                raise
            return Completed(name=STOPPED, message=sentence, data=Stopped(sentence))

    return task(step, name=name, **TASK, **options)


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
    "load": _as_task(steps.load_sources, "load sources"),
    "parse": _as_task(steps.parse_sources, "parse sources"),
    "plan": _as_task(steps.plan, "plan partitions"),
    "chunk": _as_task(steps.resolve_chunk, "resolve chunk", task_run_name="resolve chunk {chunk}"),
    "finish": _as_task(steps.finish_resolution, "finish resolution"),
    "batches": _as_task(batches.write_batches, "write xero batches"),
    "check": _as_task(steps.check_run, "check every invoice is accounted for"),
    "record": _as_task(_record_now, "record run"),
}


def _calling(step):
    """Call a step; a stop it returned (see _as_task) is raised here, in the flow."""

    def call(*args, **kwargs):
        out = step(*args, **kwargs)
        if isinstance(out, State) and out.name == STOPPED:
            raise out.result()
        return out

    return call


def run_pipeline(
    settings: Settings, scope: steps.Scope, emit_batches: bool, *, as_tasks: bool = True
) -> steps.RunSummary:
    """One atomic run: everything below commits together or not at all.

    `as_tasks=False` calls the same steps as plain functions (no Prefect API needed): for tests and the
    benchmark; the flows below always run them as tasks.
    """
    do = {name: _calling(step) for name, step in TASKS.items()} if as_tasks else PLAIN
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
    return _ending_in_one_line(
        _with_lock_retries, settings, steps.Scope("nightly"), True, lock_retries, lock_retry_delay
    )


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
    return _ending_in_one_line(lambda: run_pipeline(settings, scope, emit_batches).as_dict())


def _ending_in_one_line(fn, *args):
    """The flow's result; a stop ends the flow Failed with its one line as the state's message (what the
    Prefect UI shows and the command prints), without a traceback in Prefect's logs."""
    try:
        return fn(*args)
    except Exception as problem:
        sentence = stop_sentence(problem)
        if sentence is None:
            raise
        return Failed(message=sentence, data=Stopped(sentence))
