"""A backfill's chunks on a Dask cluster, through Prefect (contract section 5: `trackline backfill
--workers N` for a local cluster of N processes, `--dask ADDRESS` / TRACKLINE_DASK_ADDRESS for an existing
scheduler).

Only the resolve step moves: each chunk is one Prefect task, run by prefect-dask's DaskTaskRunner on a
worker. It is given paths (its part's staged source rows, the run's parsed reference tables) and writes its
results as Parquet files into its part, under the warehouse's `.parts` folder; it returns counts and the
size and SHA-256 of each file (flows.run.state.ChunkResult). Everything else (load, plan and staging, the
commit, the checks, the record) stays in the flow's own process, the only one that opens the warehouse:
DuckDB has one writing process.

A worker killed mid-chunk: the scheduler gives the chunk's task (the same Prefect task run) to another
worker, which writes the same files again; a chunk whose workers keep dying (Dask's
`distributed.scheduler.allowed-failures`, 3 by default) stops the run, which publishes nothing.

Workers need the same code and settings as the flow: the same image (this package at the same version),
PREFECT_API_URL pointing at the flow's Prefect API (to report their task runs), and the warehouse's folder
and the run's paths reachable at the same absolute paths (a shared file system: NFS, EFS, a volume). Set
POLARS_MAX_THREADS in each worker's environment (before Polars is imported) to its share of the cores, and
start each worker with one thread (`dask worker ADDRESS --nthreads 1`); a chunk's DuckDB uses the same
number of threads as its Polars pool. A local cluster does this itself.

None of this is imported unless a backfill asks for a cluster: without --workers or --dask the run is what
it was, with no Dask import and no cluster.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flows.run.stops import Stopped


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Polars (and DuckDB) threads for each of `workers` processes sharing this machine's cores."""
    return max(1, (cores or os.cpu_count() or 1) // workers)


def _quiet_dask() -> None:
    """Dask logs at INFO to stderr by default (workers starting, restarting, closing); a run says one line
    when it stops, whatever the log level. Set before `distributed` is imported; local workers inherit it."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")


@contextmanager
def partition_runner(workers: int | None, address: str | None, timeout: float) -> Iterator[object]:
    """A DaskTaskRunner on a local cluster of `workers` processes, or on the scheduler at `address`; a
    scheduler that cannot be reached (or has no worker) within `timeout` seconds stops here, before the
    run has started, so nothing has changed."""
    _quiet_dask()
    import dask
    import distributed
    from prefect_dask import DaskTaskRunner

    with dask.config.set(
        {
            # Polars is not fork-safe: worker processes are spawned.
            "distributed.worker.multiprocessing-method": "spawn",
            "distributed.comm.timeouts.connect": f"{timeout}s",
        }
    ):
        if workers:
            threads = str(worker_threads(workers))
            with distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",  # no fixed port (8787) to collide on
                # The Polars pool is sized when Polars is imported: set in the worker's environment first.
                env={"POLARS_MAX_THREADS": threads, **_prefect_api_for_workers()},
            ) as cluster:
                _ready(distributed, cluster.scheduler_address, timeout)
                yield DaskTaskRunner(address=cluster.scheduler_address)
            return
        _ready(distributed, address, timeout)
        yield DaskTaskRunner(address=address)


def _prefect_api_for_workers() -> dict[str, str]:
    """Workers report their task runs to the flow's Prefect API. Without PREFECT_API_URL the flow runs a
    temporary API server of its own (Prefect's ephemeral mode): it is started now, and its address given to
    the local workers, so that each of them does not start one of its own."""
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    if not api:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the one instance this process's Prefect client will use too
        server.start()
        api = server.api_url
    return {"PREFECT_API_URL": api}


def _warm_worker() -> str:
    """Run on each worker before the first chunk: import what a chunk runs (so the first chunk does not
    pay for it) and say which trackline the worker has."""
    from importlib.metadata import version

    import prefect.task_engine  # noqa: F401

    import flows.run.steps  # noqa: F401

    return version("trackline")


def _ready(distributed, address: str, timeout: float) -> None:
    """The scheduler answers, has a worker, and its workers run this trackline; else a one-line stop."""
    from importlib.metadata import version

    try:
        client = distributed.Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as problem:
        reason = str(problem).splitlines()[0] if str(problem) else type(problem).__name__
        raise Stopped(
            f"Dask scheduler {address} (--dask / TRACKLINE_DASK_ADDRESS): cannot be reached within "
            f"{timeout:g} s ({reason}); nothing changed"
        ) from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        raise Stopped(
            f"Dask scheduler {address} (--dask / TRACKLINE_DASK_ADDRESS): no worker joined within "
            f"{timeout:g} s; nothing changed"
        ) from None
    try:
        found = client.run(_warm_worker)
    except ImportError as problem:
        raise Stopped(
            f"Dask scheduler {address}: its workers cannot import trackline ({problem}); start them from "
            "the same image as the flow; nothing changed"
        ) from None
    finally:
        client.close()
    ours = version("trackline")
    others = sorted({v for v in found.values() if v != ours})
    if others:
        raise Stopped(
            f"Dask scheduler {address}: its workers run trackline {', '.join(others)}, the flow {ours}; "
            "start them from the same image; nothing changed"
        )


def resolve_on_cluster(task, chunks, context, done) -> list:
    """Submit every chunk's task to the flow's DaskTaskRunner and collect the results in chunk order
    (`done()` after each). A chunk that stops stops the run; one whose workers kept dying too; the
    chunks still running are cancelled either way."""
    import distributed

    futures = [task.submit(chunk, context) for chunk in chunks]
    try:
        results = []
        for chunk, future in zip(chunks, futures, strict=True):
            try:
                out = future.result()
            except distributed.KilledWorker:
                raise Stopped(
                    f"stopped, nothing changed: chunk {chunk.chunk} ({chunk.part}) could not finish: "
                    "every worker that took it died"
                ) from None
            if isinstance(out, Stopped):
                raise out
            results.append(out)
            done()
        return results
    except BaseException:
        for future in futures:
            future.wrapped_future.cancel()
        raise
