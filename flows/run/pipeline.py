"""Prefect flows: `nightly` and `backfill`, made of coarse tasks, each one step of flows.run.steps.

Steps take and return the run's typed state (flows.run.state): paths, names and counts, never frames of
the history, and tasks cache nothing. A backfill resolves its invoices chunk by chunk (whole practice x
month partitions), one task each, with a progress bar on a terminal.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed, State
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows import faults
from flows.run import steps
from flows.run.accounting import AccountingCheckFailed
from flows.run.publish import atomic_run
from flows.run.state import PushSummary, RunSummary, Scope
from flows.run.stops import Stopped, stop_sentence
from flows.settings import Settings
from flows.sources import source_for
from flows.warehouse.lock import WarehouseLocked
from flows.xero import batches, retrack
from flows.xero.import_template import read_csv_settings

TASK = {"cache_policy": NONE, "persist_result": False}
STOPPED = "Stopped"  # the state of a task that stopped the run (flows.run.stops)


class Step:
    """A step of a run, callable as a plain function or as a Prefect task of the same name.

    A stop (flows.run.stops) is not raised out of the task, which Prefect would log as an error with a
    traceback at any log level but the quietest: the task ends in a state named Stopped carrying the one
    line, and the call raises it again in the flow, which ends Failed with it."""

    def __init__(self, fn, name: str, **options) -> None:
        self.fn, self.name = fn, name

        @functools.wraps(fn)
        def stopping(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as problem:
                sentence = stop_sentence(problem)
                if sentence is None:
                    raise
                return Completed(name=STOPPED, message=sentence, data=Stopped(sentence))

        self.task = task(stopping, name=name, **TASK, **options)

    def __call__(self, as_task: bool, stages: dict[str, float], *args, **kwargs):
        started = time.perf_counter()
        try:
            if not as_task:
                return self.fn(*args, **kwargs)
            out = self.task(*args, **kwargs)
            if isinstance(out, State) and out.name == STOPPED:
                raise out.result()
            return out
        finally:
            stages[self.name] = stages.get(self.name, 0.0) + time.perf_counter() - started


def _record_now(run, summary, loaded, plan):
    return steps.record(run, summary, loaded, plan, datetime.now(UTC))


LOAD = Step(steps.load, "load sources")
PLAN = Step(steps.plan, "plan partitions")
RESOLVE = Step(steps.resolve_chunk, "resolve chunk", task_run_name="resolve chunk {chunk.chunk}")
COMMIT = Step(steps.commit, "commit chunks")
FINISH = Step(steps.finish, "finish resolution")
BATCHES = Step(batches.write_batches, "write xero batches")
PENDING = Step(batches.find_pending, "find invoices to batch")
TEMPLATES = Step(batches.practice_templates, "read csv templates")
CHECK = Step(steps.check, "check every invoice is accounted for")
RECORD = Step(_record_now, "record run")
SENT = Step(retrack.sent_invoice_changes, "check invoices already in xero")


def run_pipeline(
    settings: Settings, scope: Scope, emit_batches: bool, *, as_tasks: bool = True, on_cluster: bool = False
) -> RunSummary:
    """One atomic run: everything below commits together or not at all.

    `as_tasks=False` calls the same steps as plain functions (no Prefect API needed): for tests and the
    benchmark; the flows below always run them as tasks. `on_cluster` submits the chunks' tasks to the
    flow's task runner, a DaskTaskRunner (flows.run.cluster), instead of running them one by one here.
    """
    stages: dict[str, float] = {}
    if scope.flow == "nightly":
        scope = dataclasses.replace(scope, overlap=timedelta(minutes=settings.source_overlap_minutes))
    # The CSV settings file is read before anything changes: a file it cannot use stops the run.
    csv_entries = read_csv_settings(settings.xero_csv_settings) if emit_batches else {}
    source = source_for(
        settings.source,
        memory_limit=settings.duckdb_memory_limit,
        schema=settings.source_schema,
        password=settings.source_password.get_secret_value() if settings.source_password else None,
    )
    # Each chunk's lines are checked (steps.check_chunk) on a thread while the next chunk resolves; it
    # is waited for, with the checks' verdict, by the last check. Leaving the run waits for it too.
    with (
        atomic_run(
            settings.warehouse, settings.out, settings.lock_path, scope.flow, settings.duckdb_memory_limit
        ) as run,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="chunk-check") as checker,
    ):
        try:
            loaded = LOAD(as_tasks, stages, run, source)
            faults.checkpoint("loaded")
            plan = PLAN(as_tasks, stages, run, source, loaded, scope, settings.chunk_lines)
        finally:
            source.close()
        context = steps.ChunkContext(loaded, run.run_id, settings.same_category_policy)
        results, checks = [], []

        def check_args(chunk):
            return chunk, plan.source_invoices, run.scratch, settings.duckdb_memory_limit

        with _progress(len(plan.chunks)) as advance:
            if on_cluster:
                results = _resolve_on_cluster(stages, plan.chunks, context, advance)
            else:
                for chunk in plan.chunks:
                    results.append(RESOLVE(as_tasks, stages, chunk, context))
                    checks.append(checker.submit(steps.check_chunk, *check_args(chunk)))
                    advance()
                    faults.checkpoint("chunk")
        summary = COMMIT(as_tasks, stages, run, plan, results)
        FINISH(as_tasks, stages, run, loaded, plan)
        sent_only, tracked_since = _sent_scope(run, scope, plan)
        SENT(as_tasks, stages, run.store, sent_only, run.started_at, tracked_since)
        faults.checkpoint("resolved")
        if emit_batches:
            batch_run = batches.BatchRun(
                run.con, run.staging, run.run_id, run.started_at, run.store, run.scratch / "batches"
            )
            only = plan.keys if scope.flow != "nightly" else None
            pending = PENDING(as_tasks, stages, batch_run, only)
            templates, warnings = TEMPLATES(as_tasks, stages, batch_run, settings, csv_entries, pending.sizes)
            count, invoices, written, refused = BATCHES(
                as_tasks,
                stages,
                batch_run,
                only,
                settings.batch_max_invoices,
                settings.batch_max_bytes,
                settings.chunk_lines,
                templates,
                pending,
            )
            summary.batches_written, summary.invoices_batched = count, invoices
            summary.files = [str(settings.out / p) for p in written]
            summary.warnings = warnings + batches.csv_refused_warnings(refused, templates, settings)
        faults.checkpoint("staged")
        CHECK(as_tasks, stages, run, scope, plan, settings.duckdb_memory_limit, _verdict(checks, on_cluster))
        summary = RECORD(as_tasks, stages, run, summary, loaded, plan)
    summary.stages = stages
    return summary


def _verdict(checks: list[Future], on_cluster: bool) -> str | None:
    """The chunks' checks made while resolving: None when they were not (on a cluster the last check
    makes them), "" when all passed, else the first failure's message."""
    if on_cluster:
        return None
    for check in checks:
        problem = check.exception()
        if isinstance(problem, AccountingCheckFailed):
            return str(problem)
        if problem is not None:
            raise problem
    return ""


def _sent_scope(run, scope: Scope, plan) -> tuple:
    """Which invoices in Xero to look at for changes since they were sent (retrack.sent_invoice_changes):
    those the run recomputed or let go of; and, for a nightly, those whose lines in Xero were recorded (by
    a push or a retrack) since the last run that looked at every invoice (a nightly or a whole backfill:
    the runs that set a watermark), or every one when no run has."""
    only = plan.keys + plan.forgotten
    if scope.flow != "nightly":
        return only, None
    last = run.con.execute(
        "select max(started_at) from runs where status = 'success' and watermark is not null"
    ).fetchone()[0]
    return (only, last) if last is not None else (None, None)


def _resolve_on_cluster(stages: dict[str, float], chunks, context, advance) -> list:
    from flows.run.cluster import resolve_on_cluster

    def done() -> None:
        advance()
        faults.checkpoint("chunk")

    started = time.perf_counter()
    try:
        return resolve_on_cluster(RESOLVE.task, chunks, context, done)
    finally:
        stages[RESOLVE.name] = stages.get(RESOLVE.name, 0.0) + time.perf_counter() - started


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


def _with_lock_retries(settings: Settings, scope: Scope, emit: bool, retries: int, delay: float) -> dict:
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
    """Invoices changed since the last successful run, plus every held invoice; batches what changed;
    then, with push_after_nightly, sends them to Xero."""
    settings = settings or Settings()

    def night() -> dict:
        summary = _with_lock_retries(settings, Scope("nightly"), True, lock_retries, lock_retry_delay)
        if settings.push_after_nightly:
            summary["push"] = run_push(settings, None).as_dict()
            summary["verify"] = run_verify(settings, None)
        return summary

    return _ending_in_one_line(night)


@flow(name="trackline-push", log_prints=True)
def push_flow(settings: Settings | None = None, practices: list[str] | None = None) -> dict:
    """Send the written batches not yet accepted by Xero, each to its practice's organisation."""
    settings = settings or Settings()
    return _ending_in_one_line(lambda: run_push(settings, practices or None).as_dict())


def _push_now(run, settings: Settings, practices: list[str] | None) -> PushSummary:
    """The push's one task: the requests (asyncio, within Xero's limits) and their record."""
    from flows.xero.push import push, record

    outcome = asyncio.run(
        push(run.con, settings.out, settings.warehouse, run.run_id, push_settings(settings), practices)
    )
    record(run.con, outcome, run.started_at, datetime.now(UTC))
    return PushSummary.of(outcome)


PUSH = Step(_push_now, "push to xero")


def push_settings(settings: Settings):
    from flows.xero.api import Limits
    from flows.xero.push import PushSettings

    return PushSettings(
        api_url=settings.xero_api_url,
        token_url=settings.xero_token_url,
        connections=settings.xero_connections,
        limits=Limits(
            per_minute=settings.xero_requests_per_minute,
            in_flight=settings.xero_in_flight,
            app_per_minute=settings.xero_app_requests_per_minute,
            minute_seconds=settings.xero_minute_seconds,
            attempts=settings.xero_attempts,
            retry_wait_seconds=settings.xero_retry_wait_seconds,
            retry_wait_max_seconds=settings.xero_retry_wait_max_seconds,
            timeout_seconds=settings.xero_timeout_seconds,
        ),
    )


def run_push(settings: Settings, practices: list[str] | None, *, as_tasks: bool = True) -> PushSummary:
    """One push, written to the warehouse atomically like a run (flows.run.publish); after the commit the
    journal keeps only the requests whose answer never came (flows.xero.push)."""
    from flows.xero.push import Journal, journal_path

    stages: dict[str, float] = {}
    with atomic_run(
        settings.warehouse, settings.out, settings.lock_path, "push", settings.duckdb_memory_limit
    ) as run:
        summary = PUSH(as_tasks, stages, run, settings, practices)
    faults.checkpoint("push-committed")
    journal = journal_path(settings.warehouse)
    Journal.keep_only(journal, Journal.unanswered(journal))
    return summary


# Verify and retrack (contract section 6) -----------------------------------------------------------------


def _verify_now(run, settings: Settings, practices: list[str] | None) -> dict:
    from flows.xero import verify

    readback = asyncio.run(
        verify.verify(
            run.con,
            run.run_id,
            verify.VerifySettings(
                push_settings(settings), settings.xero_verify_max_invoices, settings.xero_verify_day_reserve
            ),
            practices,
        )
    )
    verify.record(run.con, readback, run.started_at, datetime.now(UTC))
    return verify.summary_of(readback)


VERIFY = Step(_verify_now, "verify xero")


def run_verify(settings: Settings, practices: list[str] | None, *, as_tasks: bool = True) -> dict:
    """One verify, written to the warehouse atomically like a run (flows.xero.verify)."""
    stages: dict[str, float] = {}
    with atomic_run(
        settings.warehouse, settings.out, settings.lock_path, "verify", settings.duckdb_memory_limit
    ) as run:
        return VERIFY(as_tasks, stages, run, settings, practices)


@flow(name="trackline-verify", log_prints=True)
def verify_flow(settings: Settings | None = None, practices: list[str] | None = None) -> dict:
    """Read the sent invoices back from Xero and check their tracking."""
    settings = settings or Settings()
    return _ending_in_one_line(lambda: run_verify(settings, practices or None))


def _retrack_now(run, settings: Settings, practices: list[str] | None) -> dict:
    applied = asyncio.run(
        retrack.apply(run.con, settings.warehouse, run.run_id, push_settings(settings), practices)
    )
    retrack.record(run.con, applied, run.started_at, datetime.now(UTC))
    return retrack.summary_of(applied)


RETRACK = Step(_retrack_now, "retrack in xero")


def run_retrack(settings: Settings, practices: list[str] | None, *, as_tasks: bool = True) -> dict:
    """One retrack --apply, atomic like a push; after the commit the journal keeps only the updates whose
    answer never came (flows.xero.retrack)."""
    from flows.xero.push import Journal

    stages: dict[str, float] = {}
    with atomic_run(
        settings.warehouse, settings.out, settings.lock_path, "retrack", settings.duckdb_memory_limit
    ) as run:
        summary = RETRACK(as_tasks, stages, run, settings, practices)
    faults.checkpoint("retrack-committed")
    journal = retrack.journal_path(settings.warehouse)
    Journal.keep_only(journal, Journal.unanswered(journal))
    return summary


@flow(name="trackline-retrack", log_prints=True)
def retrack_flow(settings: Settings | None = None, practices: list[str] | None = None) -> dict:
    """Update the tracking of invoices already in Xero to what is resolved now (the retrack plan)."""
    settings = settings or Settings()
    return _ending_in_one_line(lambda: run_retrack(settings, practices or None))


@flow(name="trackline-backfill", log_prints=True)
def backfill_flow(
    settings: Settings | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    practices: list[str] | None = None,
    emit_batches: bool = False,
    on_cluster: bool = False,
) -> dict:
    """Recompute approved invoices issued in the range, replacing what the warehouse had for them;
    `on_cluster`: each chunk on the flow's Dask cluster (backfill_on_cluster)."""
    settings = settings or Settings()
    scope = Scope("backfill", date_from, date_to, tuple(practices or ()))
    return _ending_in_one_line(
        lambda: run_pipeline(settings, scope, emit_batches, on_cluster=on_cluster).as_dict()
    )


# A backfill on a Dask cluster (contract section 5: --workers N, --dask ADDRESS) ---------------------------


def backfill_on_cluster(settings: Settings, workers: int | None, **parameters) -> dict:
    """The backfill flow with its chunks on a local cluster of `workers` processes, or on the scheduler
    at settings.dask_address (flows.run.cluster); every path absolute, as a worker elsewhere needs it."""
    from flows.run.cluster import partition_runner

    paths = {k: getattr(settings, k) for k in ("source", "warehouse", "out")}
    absolute = settings.model_copy(
        update={k: Path(v).resolve() for k, v in paths.items() if "://" not in str(v)}
    )
    address = None if workers else settings.dask_address
    with partition_runner(workers, address, settings.dask_connect_timeout_seconds) as runner:
        flow_ = backfill_flow.with_options(task_runner=runner)
        return flow_(absolute, on_cluster=True, return_state=True, **parameters).result()


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
