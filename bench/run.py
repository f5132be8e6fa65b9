"""`make bench`: trackline against a DuckDB SQL peer and a pandas peer, on the same generated data.

    python -m bench.run                                  # sizes 1M and 10M (see --help for the rest)
    python -m bench.run --sizes 10k --repeats 1          # a smoke run in a minute

Every measured piece runs in a fresh Python process, one at a time, so that its peak memory (the child's
`ru_maxrss`, from `os.wait4`) is its own; a watchdog kills a piece whose resident memory passes
`--memory-limit-gb` (the machine is shared) and records that it did not fit. Wall times are
`time.perf_counter()` around the measured call only: data is loaded, and modules imported, before it.

Pieces, per size:
  core      trackline's resolution core: text frames in memory -> parse_table per table ->
            resolve_invoices (scope None, policy hold) -> Pandera validation of the output tables. Above
            --chunk-lines source lines it resolves chunk by chunk, as the pipeline does.
  duckdb    bench/peer_duckdb.sql on raw tables already in an in-memory DuckDB.
  slots     bench/peer_slots.sql, the bare slot peer (R1-R4 only, no checks, no holds), reading the typed
            source's Parquet files itself (bench/data/<size>-typed/) and materialising the result as Arrow:
            the floor a backfill is compared with. Not in the default pieces: `--pieces slots`.
  pandas    bench/peer_pandas.py on DataFrames already in memory.
  agree     the three per-line results, row for row (written aside after timing, compared by DuckDB).
  backfill  `run_pipeline(Scope("backfill"), emit_batches=False)` from the Parquet source on a new warehouse.
  fixed     the same backfill on an empty source (size 0): the fixed cost of a run; and `trackline backfill`
            on it as a user runs it (fresh process, Prefect), beside a Prefect flow that does nothing.
  batches   a backfill with --emit-batches; the batch-writing step is timed on its own.
  nightly   10,000 invoices changed on top of the warehouse the batches piece left (every ready invoice
            batched), against the same nightly from an empty warehouse with only those invoices.
  postgres  the same sources loaded into a PostgreSQL 15 of the bench's own (tests/doubles/postgres.py:
            initdb in a temporary folder, 127.0.0.1, a free port; typed columns and the README's
            indexes): `backfill-pg` (the backfill piece read from PostgreSQL, against `backfill` from
            Parquet, time and peak memory) and, with the nightly piece, `nightly-pg` and `nightly-pg on
            empty warehouse` (the nightly piece's two runs, read from PostgreSQL). Loading is not timed.
  cluster   the backfill flow with its chunks on a local Dask cluster of 1 and 2 workers
            (`--cluster-workers`) against the same flow run locally: wall, CPU and peak RSS of the driver and
            of each worker, the chunks' own seconds and the driver's (the single writer's) share. Not in the
            default pieces: `--pieces cluster`.

Results go to bench/results/<timestamp>.json and a table on stdout. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"
WORK = DATA / "work"
RESULTS = BENCH / "results"
MARK = "BENCH-RESULT "

TARGETS = {
    "core_vs_duckdb_time": ("<=", 1.0),
    "core_vs_duckdb_memory": ("<=", 1.0),
    "pandas_vs_core_time": (">=", 5.0),
    "backfill_less_fixed_vs_duckdb": ("<=", 3.0),
    "nightly_vs_empty": ("<=", 1.5),
    "nightly_pg_vs_empty": ("<=", 1.5),
    "backfill_pg_vs_parquet_time": ("<=", 1.5),
    "backfill_pg_vs_parquet_memory": ("<=", 1.0),
    "backfill_less_fixed_vs_slots": ("<=", 8.0),
    "cli_marginal_vs_slots": ("<=", 8.0),
    "backfill_peak_rss_mb": ("<=", 3072),
    "batch_invoices_per_second": (">=", 50_000),
}


# Measuring inside a child -------------------------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmRSS) or at its peak (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _emit(result: dict) -> None:
    # VmHWM: the peak of this process's own address space (since exec). The parent's ru_maxrss of a child
    # is not used: Linux carries the parent's peak at fork into it.
    result["peak_rss_mb"] = rss_mb("VmHWM")
    print(MARK + json.dumps(result, default=str), flush=True)


def _warm_imports() -> None:
    """Import everything the measured calls use, so that no import is timed."""
    import pandera.polars  # noqa: F401
    import polars  # noqa: F401

    import flows.run.steps  # noqa: F401  (split_chunks, as the pipeline cuts chunks)
    import transforms.resolve_invoices  # noqa: F401
    import transforms.schemas  # noqa: F401


def work_core(args: argparse.Namespace) -> dict:
    from bench import agreement

    _warm_imports()
    frames, files = agreement.read_frames(args.source)
    gc.collect()
    loaded = rss_mb()
    writer = agreement.ChunkWriter(args.write_result) if args.write_result else None
    started, cpu = time.perf_counter(), time.process_time()
    summary = agreement.trackline_core_chunks(frames, files, chunk_lines=args.chunk_lines, sink=writer)
    seconds = time.perf_counter() - started - summary["sink_seconds"]
    cpu = time.process_time() - cpu - summary["sink_seconds"]
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_loaded_mb": loaded, **summary}


def work_duckdb(args: argparse.Namespace) -> dict:
    from bench import agreement, peer_duckdb

    con = peer_duckdb.connect(memory_limit=args.duckdb_memory)
    peer_duckdb.load_files(con, args.source)
    gc.collect()
    loaded = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    rows = peer_duckdb.resolve(con)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if args.write_result:
        agreement.write_canonical(agreement.from_duckdb(peer_duckdb.result(con)), args.write_result)
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_loaded_mb": loaded, "rows": rows}


def work_slots(args: argparse.Namespace) -> dict:
    """The bare slot peer on a source's files: the timed call reads the Parquet files and materialises
    the result as one Arrow table (DuckDB's threads, --duckdb-memory)."""
    from bench import peer_duckdb, peer_slots

    con = peer_duckdb.connect(memory_limit=args.duckdb_memory)
    peer_slots.files(args.source)  # every file is there (not timed)
    gc.collect()
    loaded = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    table = peer_slots.resolve(con, args.source)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_loaded_mb": loaded,
        "rows": table.num_rows,
        "arrow_mb": table.nbytes / 2**20,
        "threads": con.execute("select current_setting('threads')").fetchone()[0],
    }


def work_pandas(args: argparse.Namespace) -> dict:
    from bench import agreement, peer_pandas

    frames = peer_pandas.read_source(args.source)
    gc.collect()
    loaded = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    result = peer_pandas.resolve(frames)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    rows = len(result)
    if args.write_result:
        del frames
        agreement.write_canonical(agreement.from_pandas(result), args.write_result)
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_loaded_mb": loaded, "rows": rows}


def copy_warehouse(source: Path, target: Path) -> None:
    """A warehouse and the Parquet parts beside it (flows.warehouse.store): the two travel together."""
    from flows.warehouse.store import store_folder

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    shutil.rmtree(store_folder(target), ignore_errors=True)
    if store_folder(source).is_dir():
        shutil.copytree(store_folder(source), store_folder(target))


def _clear_warehouse(warehouse: Path) -> None:
    from flows.warehouse.store import store_folder

    for leftover in warehouse.parent.glob(warehouse.name + "*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink()
    shutil.rmtree(store_folder(warehouse), ignore_errors=True)


def work_pipeline(args: argparse.Namespace) -> dict:
    from flows.run.pipeline import run_pipeline
    from flows.run.state import Scope
    from flows.settings import Settings
    from flows.warehouse.store import store_folder

    _warm_imports()
    warehouse, out = Path(args.warehouse), Path(args.out)
    _clear_warehouse(warehouse)
    shutil.rmtree(out, ignore_errors=True)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    if args.start_from:
        copy_warehouse(Path(args.start_from), warehouse)
    overrides = {"chunk_lines": args.chunk_lines} if args.chunk_lines else {}
    source = args.source_url or Path(args.source)
    settings = Settings(source=source, warehouse=warehouse, out=out, **overrides)
    gc.collect()
    loaded = rss_mb()
    started, cpu = time.perf_counter(), time.process_time()
    summary = run_pipeline(settings, Scope(args.flow), emit_batches=args.emit, as_tasks=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    # each step's time, as the run measures it; the rest is the lock, migrations, checkpoint and commit
    stages = dict(summary.stages)
    stages["rest (lock, migrations, checkpoint, commit, moves)"] = seconds - sum(stages.values())
    if args.keep:
        copy_warehouse(warehouse, Path(args.keep))
    found = summary.as_dict()
    found.pop("stages", None)
    found["files"] = len(found.get("files") or [])
    size = warehouse.stat().st_size + sum(
        p.stat().st_size for p in store_folder(warehouse).rglob("*") if p.is_file()
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rss_loaded_mb": loaded,
        "stages": stages,
        "summary": found,
        "warehouse_mb": size / 2**20,
    }


def _worker_figures() -> dict:
    """Run on each Dask worker: its pid, CPU seconds so far and peak resident memory."""
    import os
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "pid": os.getpid(),
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": rss_mb("VmHWM"),
    }


def work_cluster(args: argparse.Namespace) -> dict:
    """The backfill flow (Prefect tasks, its temporary API server started before the clock) run locally
    (`--workers 0`) or with its chunks on a local Dask cluster of N workers (flows.run.cluster): wall, the
    driver's CPU, each worker's CPU during the run and peak RSS, and the time split between the chunks
    (where they ran) and the driver's single writer."""
    # as `trackline` sets it, before Prefect reads its settings: the shared machine can be slow to start it
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from prefect import flow

    from flows.run.cluster import partition_runner
    from flows.run.pipeline import backfill_flow
    from flows.settings import Settings

    _warm_imports()
    flow(name="warm-up")(lambda: 1)()  # the temporary Prefect API server, started untimed
    warehouse, out = Path(args.warehouse).resolve(), Path(args.out).resolve()
    _clear_warehouse(warehouse)
    shutil.rmtree(out, ignore_errors=True)
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    overrides = {"chunk_lines": args.chunk_lines} if args.chunk_lines else {}
    settings = Settings(source=Path(args.source).resolve(), warehouse=warehouse, out=out, **overrides)
    found: dict = {"workers": args.workers}
    gc.collect()
    if not args.workers:
        started, cpu = time.perf_counter(), time.process_time()
        summary = backfill_flow(settings, return_state=True).result()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    else:
        begun = time.perf_counter()
        with partition_runner(args.workers, None, 60.0) as runner:
            import distributed

            # the cluster started, its workers warmed (imports), the Prefect API server given to them
            found["cluster_start_seconds"] = time.perf_counter() - begun
            client = distributed.Client(runner.address, set_as_default=False)
            before = client.run(_worker_figures)
            started, cpu = time.perf_counter(), time.process_time()
            summary = backfill_flow.with_options(task_runner=runner)(
                settings, on_cluster=True, return_state=True
            ).result()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            after = client.run(_worker_figures)
            client.close()
        found["worker_figures"] = [
            {
                "pid": after[w]["pid"],
                "cpu_seconds": after[w]["cpu_seconds"] - before.get(w, {"cpu_seconds": 0.0})["cpu_seconds"],
                "peak_rss_mb": after[w]["peak_rss_mb"],
            }
            for w in sorted(after)
        ]
    stages = dict(summary["stages"])
    resolving = stages.get("resolve chunk", 0.0)
    found.update(
        seconds=seconds,
        cpu_seconds=cpu,
        stages=stages,
        chunks_seconds_where_run=summary["chunk_seconds"],
        driver_waiting_for_chunks_seconds=resolving,
        driver_writer_seconds=seconds - resolving,
        summary={k: summary[k] for k in ("invoices_considered", "lines_resolved", "exceptions_open")},
    )
    return found


# A flow that does nothing, under the same Prefect as `trackline`: what Prefect itself needs per run.
PREFECT_FLOOR = "from prefect import flow\n\n@flow(name='noop')\ndef noop():\n    return 1\n\nnoop()\n"


def work_cli(args: argparse.Namespace) -> dict:
    """`trackline backfill` as a user runs it (a fresh process, a Prefect flow with its temporary API
    server), and a Prefect flow that does nothing, both with the same PREFECT_HOME (made by the first run;
    its database migrations are in that run's figures)."""
    home = Path(args.out).parent / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PREFECT_HOME=str(home), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    trackline = Path(sys.executable).parent / "trackline"
    shutil.rmtree(args.out, ignore_errors=True)
    _clear_warehouse(Path(args.warehouse))
    commands = {
        "prefect_floor_seconds": [sys.executable, "-c", PREFECT_FLOOR],
        "seconds": [
            str(trackline),
            "backfill",
            "--source",
            str(args.source),
            "--warehouse",
            args.warehouse,
            "--out",
            args.out,
        ],
    }
    found = {}
    for key, command in commands.items():
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
        found[key] = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(f"{' '.join(command[:2])} failed: {done.stderr.strip()[-500:]}")
    found["seconds_with_server"] = _cli_with_server(commands["seconds"], env, args)
    return found


def _cli_with_server(command: list[str], env: dict, args: argparse.Namespace) -> float:
    """The same `trackline backfill` with PREFECT_API_URL pointing at a long-lived Prefect server (as
    `make prefect` starts one; started and made healthy before the clock starts): no temporary server."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    server_env = dict(env, PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(port))
    prefect = Path(sys.executable).parent / "prefect"
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                httpx.get(f"{url}/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the Prefect server for the CLI piece did not start") from None
                time.sleep(0.5)
        shutil.rmtree(args.out, ignore_errors=True)
        _clear_warehouse(Path(args.warehouse))
        started = time.perf_counter()
        done = subprocess.run(
            command, env=dict(env, PREFECT_API_URL=url), capture_output=True, text=True, cwd=REPO
        )
        seconds = time.perf_counter() - started
        if done.returncode:
            raise RuntimeError(f"trackline backfill with a server failed: {done.stderr.strip()[-500:]}")
        return seconds
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


PRESEND = """
begin;
insert into xero_batches (batch_id, practice_id, run_id, path, csv_path, invoice_count, line_count, bytes, created_at)
select 'presend-' || practice_id, practice_id, 'bench-presend', 'presend', 'presend', count(*), 0, 0, now()
from xero_invoices where batch_id is null group by practice_id;
insert into export_ledger
select i.practice_id, i.invoice_id, t.digest, 'presend-' || i.practice_id, 'bench-presend', now()
from xero_invoices i join invoice_tracking t using (practice_id, invoice_id)
where i.batch_id is null and t.invoice_state = 'ready';
commit;
checkpoint;
"""


def work_presend(args: argparse.Namespace) -> dict:
    """Mark every ready invoice of a backfilled warehouse as sent in an earlier batch (the ledger, which
    the batch ids of xero_invoices and xero_line_items are read from),
    as years of nightly runs would have left it, without writing the files: the nightly then batches only
    what it changes. (Writing those batches for real is the batches piece; at 10M it would take an hour.)"""
    import duckdb

    from flows.warehouse.store import Store, store_folder

    con = duckdb.connect(args.warehouse)
    try:
        Store(con, store_folder(Path(args.warehouse))).refresh_views()  # its parts, not the original's
        pending = con.execute("select count(*) from xero_invoices where batch_id is null").fetchone()[0]
        con.execute(PRESEND)
    finally:
        con.close()
    return {"seconds": 0.0, "marked_sent": pending}


def work_agree(args: argparse.Namespace) -> dict:
    from bench import agreement

    return agreement.compare_files(args.left, args.right, names=tuple(args.names.split(",")))


def work_profile(args: argparse.Namespace) -> dict:
    from bench import agreement

    _warm_imports()
    return agreement.profile_core(args.source, top=args.top)


WORKERS = {
    "core": work_core,
    "duckdb": work_duckdb,
    "pandas": work_pandas,
    "slots": work_slots,
    "pipeline": work_pipeline,
    "agree": work_agree,
    "cli": work_cli,
    "presend": work_presend,
    "profile": work_profile,
    "cluster": work_cluster,
}


def worker_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.run worker")
    parser.add_argument("piece", choices=sorted(WORKERS))
    parser.add_argument("--source", type=Path)
    parser.add_argument("--source-url", help="a postgresql:// source (instead of --source)")
    parser.add_argument("--write-result")
    parser.add_argument("--chunk-lines", type=int)
    parser.add_argument("--duckdb-memory")
    parser.add_argument("--warehouse")
    parser.add_argument("--out")
    parser.add_argument("--flow", default="backfill")
    parser.add_argument("--emit", action="store_true")
    parser.add_argument("--start-from")
    parser.add_argument("--keep")
    parser.add_argument("--left")
    parser.add_argument("--right")
    parser.add_argument("--names", default="left,right")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args(argv)
    _emit(WORKERS[args.piece](args))
    return 0


# The parent: one child at a time ------------------------------------------------------------------------


class LoadSampler:
    """The 1-minute load average every few seconds, for the report (other people use this machine)."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = []
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.every)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict:
        if not self.samples:
            return {}
        return {
            "min": min(self.samples),
            "median": statistics.median(self.samples),
            "max": max(self.samples),
            "samples": len(self.samples),
        }


def _child_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def spawn(piece: str, options: list[str], limit_mb: float, log: Path) -> dict:
    """Run one piece in a fresh process; its result, wall time, peak RSS and whether it was stopped."""
    command = [sys.executable, "-m", "bench.run", "worker", piece, *options]
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    highest = [0.0]
    started = time.perf_counter()
    env = dict(os.environ, DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    with open(log, "w") as out:
        child = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
        stopped = threading.Event()

        def watch() -> None:
            while child.returncode is None and not stopped.is_set():
                highest[0] = max(highest[0], _child_rss_mb(child.pid))
                if highest[0] > limit_mb:
                    stopped.set()
                    with suppress(ProcessLookupError):
                        child.kill()
                    return
                time.sleep(0.2)

        watchdog = threading.Thread(target=watch, daemon=True)
        watchdog.start()
        _, status, _usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        stopped.set() if child.returncode == 0 else None
        watchdog.join()
    elapsed = time.perf_counter() - started
    text = log.read_text()
    found = [line for line in text.splitlines() if line.startswith(MARK)]
    result: dict = json.loads(found[-1][len(MARK) :]) if found else {}
    result.setdefault("peak_rss_mb", highest[0])  # the child's own VmHWM, else what the watchdog saw
    result.update(
        piece=piece,
        watched_peak_rss_mb=highest[0],
        process_seconds=elapsed,
        returncode=child.returncode,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    if not found:
        killed = child.returncode != 0 and highest[0] >= limit_mb
        result["error"] = (
            f"stopped: resident memory passed {limit_mb / 1024:.0f} GiB" if killed else text.strip()[-2000:]
        )
    return result


def machine() -> dict:
    model = "unknown"
    with suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with suppress(OSError), open("/proc/meminfo") as meminfo:
        memory = int(meminfo.readline().split()[1]) * 1024
    versions = {}
    for module in ("polars", "duckdb", "pandas", "pyarrow", "pandera", "numpy"):
        with suppress(Exception):
            versions[module] = __import__(module).__version__
    git = {}
    with suppress(Exception):
        run = lambda *a: subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()  # noqa: E731
        git = {
            "head": run("rev-parse", "HEAD"),
            "changed": run("status", "--short", "transforms", "flows").splitlines(),
        }
    return {
        "git": git,
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "versions": versions,
    }


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None and not r.get("error")]
    return statistics.median(values) if values else None


class Bench:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.logs = WORK / "logs" / self.stamp
        self.limit_mb = opts.memory_limit_gb * 1024
        self.runs: dict[str, dict[str, list[dict]]] = {}

    def repeats(self, size: str) -> int:
        from bench.generate import size_lines

        return self.opts.big_repeats if size_lines(size) >= 5_000_000 else self.opts.repeats

    def say(self, text: str) -> None:
        print(f"[{datetime.now().strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", flush=True)

    def measure(self, size: str, piece: str, label: str, options: list[str]) -> dict:
        n = len(self.runs.get(size, {}).get(label, []))
        result = spawn(piece, options, self.limit_mb, self.logs / f"{size}-{label}-{n}.log")
        self.runs.setdefault(size, {}).setdefault(label, []).append(result)
        if result.get("error"):
            self.say(f"{size} {label}: FAILED {result['error'][:300]}")
        else:
            self.say(
                f"{size} {label}: {result.get('seconds', 0):.2f} s, peak {result['peak_rss_mb']:.0f} MiB"
                + (
                    f" ({result['summary'].get('invoices_batched')} invoices batched)"
                    if label == "batches"
                    else ""
                )
            )
        return result

    def engines(self, size: str, source: Path) -> None:
        opts = self.opts
        results = WORK / "results" / size
        shutil.rmtree(results, ignore_errors=True)  # never compare with a result of an earlier run
        results.mkdir(parents=True, exist_ok=True)
        repeats = self.repeats(size)
        pandas_runs = min(repeats, opts.pandas_repeats) if opts.pandas_repeats is not None else repeats
        if size in opts.skip_pandas:
            pandas_runs = 0
        for r in range(repeats):  # interleaved, so that a change of load hits all three alike
            first = r == 0
            core = ["--source", str(source), "--chunk-lines", str(opts.chunk_lines)]
            self.measure(
                size, "core", "core", core + (["--write-result", str(results / "trackline")] if first else [])
            )
            duck = ["--source", str(source), "--duckdb-memory", opts.duckdb_memory]
            self.measure(
                size,
                "duckdb",
                "duckdb",
                duck + (["--write-result", str(results / "duckdb.parquet")] if first else []),
            )
            if r < pandas_runs:
                pand = ["--source", str(source)]
                self.measure(
                    size,
                    "pandas",
                    "pandas",
                    pand + (["--write-result", str(results / "pandas.parquet")] if first else []),
                )
        for other in ("duckdb", "pandas"):
            right = results / f"{other}.parquet"
            if (results / "trackline").exists() and right.exists():
                self.measure(
                    size,
                    "agree",
                    f"agree trackline-{other}",
                    [
                        "--left",
                        str(results / "trackline" / "*.parquet"),
                        "--right",
                        str(right),
                        "--names",
                        f"trackline,{other}",
                    ],
                )

    def pipeline(
        self,
        size: str,
        label: str,
        source: Path,
        *,
        flow: str = "backfill",
        emit: bool = False,
        start_from: Path | None = None,
        keep: Path | None = None,
    ) -> dict:
        place = WORK / "runs" / size / label.replace(" ", "-")
        url = isinstance(source, str) and source.startswith("postgresql://")
        options = [
            "pipeline",
            "--source-url" if url else "--source",
            str(source),
            "--warehouse",
            str(place / "warehouse.duckdb"),
            "--out",
            str(place / "out"),
            "--flow",
            flow,
            "--chunk-lines",
            str(self.opts.chunk_lines),
        ]
        options += ["--emit"] if emit else []
        options += ["--start-from", str(start_from)] if start_from else []
        options += ["--keep", str(keep)] if keep else []
        result = self.measure(size, "pipeline", label, options[1:])
        shutil.rmtree(place / "out", ignore_errors=True)  # batch files can be many; keep the disk tidy
        return result

    def postgres(self, sources: dict[str, Path], steady: Path | None, generated: Path) -> None:
        """The postgres piece (see the module's text): one server for the whole piece, stopped after."""
        from tests.doubles.postgres import load_source, start_postgres

        opts = self.opts
        server = start_postgres()
        try:
            for size in opts.sizes:
                self.say(f"postgres {size}: loading (not timed)")
                url = server.create_database(f"source_{size.lower()}")
                load_source(url, sources[size], indexes=True)
                for _ in range(self.repeats(size)):
                    self.pipeline(size, "backfill-pg", url)
            if steady is not None and steady.exists():
                size = opts.nightly_size
                self.say(f"postgres nightly {size}: loading (not timed)")
                full = server.create_database(f"nightly_{size.lower()}")
                load_source(full, generated / f"{size}-nightly", indexes=True)
                delta = server.create_database(f"nightly_only_{size.lower()}")
                load_source(delta, generated / f"{size}-nightly-only", indexes=True)
                for _ in range(self.repeats(size)):
                    self.pipeline(size, "nightly-pg", full, flow="nightly", emit=True, start_from=steady)
                    self.pipeline(size, "nightly-pg on empty warehouse", delta, flow="nightly", emit=True)
        finally:
            server.stop()

    def generate(self, size: str, seed: int, nightly: int | None = None, typed: bool = False) -> None:
        """Generate a source in its own process, so that this one stays small for the whole run."""
        command = [sys.executable, "-m", "bench.generate", size, "--seed", str(seed)]
        command += ["--nightly", str(nightly)] if nightly else []
        command += ["--typed"] if typed else []
        subprocess.run(command, cwd=REPO, check=True, capture_output=True)

    def run(self) -> dict:
        from bench.generate import DATA as SOURCES
        from bench.generate import DEFAULT_SEED, read_manifest

        opts = self.opts
        seed = opts.seed if opts.seed is not None else DEFAULT_SEED
        info = {"machine": machine(), "started": self.stamp, "options": vars(opts) | {"seed": seed}}
        self.say(
            f"machine: {info['machine']['cores']} cores, {info['machine']['memory_gib']} GiB, {info['machine']['cpu']}"
        )
        sources: dict[str, Path] = {}
        if opts.pieces & {"engines", "backfill", "batches", "nightly", "postgres", "cluster"}:
            for size in dict.fromkeys([*opts.sizes, "0", *opts.batch_sizes]):
                self.say(f"source {size}: generating if needed")
                self.generate(size, seed)
                sources[size] = SOURCES / size
        typed: dict[str, Path] = {}
        if "slots" in opts.pieces or opts.backfill_source == "typed":
            for size in dict.fromkeys([*opts.sizes, *(["0"] if opts.backfill_source == "typed" else [])]):
                self.say(f"typed source {size}: generating if needed")
                self.generate(size, seed, typed=True)
                typed[size] = SOURCES / f"{size}-typed"
        manifests = {p.name: read_manifest(p) for p in [*sources.values(), *typed.values()]}
        backfill_sources = typed if opts.backfill_source == "typed" else sources
        with LoadSampler() as load:
            steady = WORK / "runs" / opts.nightly_size / "steady.duckdb"
            for size in opts.sizes:
                if "slots" in opts.pieces:
                    for _ in range(self.repeats(size)):
                        slots = ["--source", str(typed[size]), "--duckdb-memory", opts.duckdb_memory]
                        self.measure(size, "slots", "slots", slots)
                if "engines" in opts.pieces:
                    self.engines(size, sources[size])
                if "backfill" in opts.pieces or ("nightly" in opts.pieces and size == opts.nightly_size):
                    runs = self.repeats(size) if "backfill" in opts.pieces else 1
                    for r in range(runs):
                        last = r == runs - 1
                        keep = (
                            steady
                            if last and size == opts.nightly_size and "nightly" in opts.pieces
                            else None
                        )
                        self.pipeline(size, "backfill", backfill_sources[size], keep=keep)
            if "backfill" in opts.pieces:
                for _ in range(opts.repeats):
                    self.pipeline("0", "fixed", backfill_sources["0"])
                place = WORK / "runs" / "0" / "cli"
                for _ in range(opts.repeats):
                    cli = ["--source", str(sources["0"]), "--warehouse", str(place / "warehouse.duckdb")]
                    self.measure("0", "cli", "fixed via the CLI", [*cli, "--out", str(place / "out")])
                # A backfill as a user runs it (`trackline backfill`), on the same files as the slots peer:
                # its time less the tiny run's is its marginal cost.
                for size in opts.cli_sizes:
                    place = WORK / "runs" / size / "cli"
                    for _ in range(opts.repeats):
                        cli = [
                            "--source",
                            str(backfill_sources[size]),
                            "--warehouse",
                            str(place / "warehouse.duckdb"),
                        ]
                        self.measure(size, "cli", "backfill via the CLI", [*cli, "--out", str(place / "out")])
            if "cluster" in opts.pieces:
                for size in opts.sizes:
                    for workers in opts.cluster_workers:
                        place = WORK / "runs" / size / f"cluster-{workers}"
                        label = (
                            f"backfill on {workers} dask workers" if workers else "backfill as a flow, local"
                        )
                        options = ["--source", str(backfill_sources[size]), "--workers", str(workers)]
                        options += [
                            "--warehouse",
                            str(place / "warehouse.duckdb"),
                            "--out",
                            str(place / "out"),
                        ]
                        options += ["--chunk-lines", str(opts.chunk_lines)]
                        for _ in range(self.repeats(size)):
                            self.measure(size, "cluster", label, options)
            if "batches" in opts.pieces:
                for size in opts.batch_sizes:
                    self.pipeline(size, "batches", sources[size], emit=True)
            if "nightly" in opts.pieces and steady.exists():
                size = opts.nightly_size
                self.measure(size, "presend", "presend", ["--warehouse", str(steady)])
                self.say(f"nightly sources for {size}: generating if needed")
                self.generate(size, seed, nightly=opts.nightly_changed)
                full, delta = SOURCES / f"{size}-nightly", SOURCES / f"{size}-nightly-only"
                manifests[f"{size}-nightly"] = read_manifest(full)
                manifests[f"{size}-nightly-only"] = read_manifest(delta)
                for _ in range(self.repeats(size)):
                    self.pipeline(size, "nightly", full, flow="nightly", emit=True, start_from=steady)
                    self.pipeline(size, "nightly on empty warehouse", delta, flow="nightly", emit=True)
            if "postgres" in opts.pieces:
                self.postgres(backfill_sources, steady if "nightly" in opts.pieces else None, SOURCES)
            if opts.profile_size:
                size = opts.profile_size
                if size not in sources:
                    self.generate(size, seed)
                    sources[size] = SOURCES / size
                source = sources[size]
                self.measure(size, "profile", "profile", ["--source", str(source), "--top", "15"])
        info["load_average"] = load.summary()
        info["sources"] = {
            s: m and {k: m[k] for k in ("lines", "rows", "practices", "xero_practices") if k in m}
            for s, m in manifests.items()
        }
        info["runs"] = self.runs
        info["medians"] = self.medians()
        info["ratios"] = self.ratios(info["medians"])
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.stamp}.json"
        path.write_text(json.dumps(info, indent=1, default=str))
        info["path"] = str(path)
        return info

    def medians(self) -> dict:
        out: dict[str, dict] = {}
        for size, labels in self.runs.items():
            for label, runs in labels.items():
                if label.startswith("agree") or label in ("profile", "presend"):
                    continue
                ok = [r for r in runs if not r.get("error")]
                entry = {
                    "runs": len(runs),
                    "failed": len(runs) - len(ok),
                    "seconds": _median(runs, "seconds"),
                    "cpu_seconds": _median(runs, "cpu_seconds"),
                    "peak_rss_mb": _median(runs, "peak_rss_mb"),
                    "rss_loaded_mb": _median(runs, "rss_loaded_mb"),
                    "min_seconds": min((r["seconds"] for r in ok), default=None),
                    "max_seconds": max((r["seconds"] for r in ok), default=None),
                }
                stages = [r["stages"] for r in ok if r.get("stages")]
                if stages:
                    entry["stages"] = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in stages[0]}
                if label == "batches" and ok:
                    batched = ok[0]["summary"].get("invoices_batched", 0)
                    step = entry.get("stages", {}).get("write xero batches")
                    entry["invoices_batched"] = batched
                    entry["invoices_per_second"] = batched / step if step else None
                if label == "fixed via the CLI" and ok:
                    entry["prefect_floor_seconds"] = _median(runs, "prefect_floor_seconds")
                    entry["seconds_with_server"] = _median(runs, "seconds_with_server")
                if label == "slots" and ok:
                    entry["rows"] = ok[0].get("rows")
                    entry["arrow_mb"] = ok[0].get("arrow_mb")
                if label == "core" and ok:
                    entry["lines"] = ok[0].get("lines")
                    entry["chunks"] = ok[0].get("chunks")
                if label.startswith("backfill on") or label == "backfill as a flow, local":
                    for key in (
                        "worker_figures",
                        "cluster_start_seconds",
                        "chunks_seconds_where_run",
                        "driver_waiting_for_chunks_seconds",
                        "driver_writer_seconds",
                    ):
                        if ok and key in ok[0]:
                            entry[key] = ok[0][key]
                if (
                    label
                    in ("backfill", "nightly", "nightly on empty warehouse", "backfill-pg", "nightly-pg")
                    and ok
                ):
                    entry["summary"] = ok[0]["summary"]
                    entry["warehouse_mb"] = ok[0].get("warehouse_mb")
                out.setdefault(size, {})[label] = entry
        return out

    def ratios(self, medians: dict) -> dict:
        fixed = medians.get("0", {}).get("fixed", {}).get("seconds")
        out: dict[str, dict] = {}
        for size, pieces in medians.items():
            core, duck, pand, slots = (pieces.get(k, {}) for k in ("core", "duckdb", "pandas", "slots"))
            back, batches = pieces.get("backfill", {}), pieces.get("batches", {})
            night, empty = pieces.get("nightly", {}), pieces.get("nightly on empty warehouse", {})
            ratio = {}
            if core.get("seconds") and duck.get("seconds"):
                ratio["core_vs_duckdb_time"] = core["seconds"] / duck["seconds"]
                ratio["core_vs_duckdb_memory"] = core["peak_rss_mb"] / duck["peak_rss_mb"]
            if core.get("seconds") and pand.get("seconds"):
                ratio["pandas_vs_core_time"] = pand["seconds"] / core["seconds"]
            # each peer is compared only with a backfill of the files it read (the full peer: text)
            typed_backfill = self.opts.backfill_source == "typed"
            if not typed_backfill and back.get("seconds") and duck.get("seconds") and fixed is not None:
                ratio["backfill_less_fixed_vs_duckdb"] = (back["seconds"] - fixed) / duck["seconds"]
            if typed_backfill and back.get("seconds") and slots.get("seconds") and fixed is not None:
                ratio["backfill_less_fixed_vs_slots"] = (back["seconds"] - fixed) / slots["seconds"]
            cli, cli_fixed = (
                pieces.get("backfill via the CLI", {}),
                medians.get("0", {}).get("fixed via the CLI", {}),
            )
            if cli.get("seconds") and cli_fixed.get("seconds") and slots.get("seconds"):
                ratio["cli_marginal_vs_slots"] = (cli["seconds"] - cli_fixed["seconds"]) / slots["seconds"]
            if back.get("peak_rss_mb"):
                ratio["backfill_peak_rss_mb"] = back["peak_rss_mb"]
            if batches.get("invoices_per_second"):
                ratio["batch_invoices_per_second"] = batches["invoices_per_second"]
            if night.get("seconds") and empty.get("seconds"):
                ratio["nightly_vs_empty"] = night["seconds"] / empty["seconds"]
            back_pg = pieces.get("backfill-pg", {})
            if back_pg.get("seconds") and back.get("seconds"):
                ratio["backfill_pg_vs_parquet_time"] = back_pg["seconds"] / back["seconds"]
                ratio["backfill_pg_vs_parquet_memory"] = back_pg["peak_rss_mb"] / back["peak_rss_mb"]
            night_pg = pieces.get("nightly-pg", {})
            empty_pg = pieces.get("nightly-pg on empty warehouse", {})
            if night_pg.get("seconds") and empty_pg.get("seconds"):
                ratio["nightly_pg_vs_empty"] = night_pg["seconds"] / empty_pg["seconds"]
            if ratio:
                out[size] = {
                    k: {"value": v, "target": TARGETS[k], "met": _met(v, TARGETS[k])}
                    for k, v in ratio.items()
                }
        return out


def _met(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value <= bound if op == "<=" else value >= bound


def render(info: dict) -> None:
    """The figures as a table on stdout (rich when it is there)."""
    rows = []
    for size, pieces in info["medians"].items():
        for label, m in pieces.items():
            seconds = m.get("seconds")
            rows.append(
                (
                    size,
                    label,
                    f"{seconds:.2f}" if seconds is not None else "failed",
                    f"{m['min_seconds']:.2f}-{m['max_seconds']:.2f}"
                    if m.get("min_seconds") is not None
                    else "",
                    f"{m['cpu_seconds']:.1f}" if m.get("cpu_seconds") is not None else "",
                    f"{m['peak_rss_mb']:.0f}" if m.get("peak_rss_mb") else "",
                    f"{m['runs'] - m['failed']}/{m['runs']}",
                )
            )
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(
            title=f"trackline bench {info['started']} ({info['machine']['cores']} cores, "
            f"{info['machine']['memory_gib']} GiB)"
        )
        for column in ("size", "piece", "median s", "range s", "CPU s", "peak RSS MiB", "ok runs"):
            table.add_column(column, justify="right" if column not in ("size", "piece") else "left")
        for row in rows:
            table.add_row(*row)
        ratios = Table(title="ratios (medians) against the targets")
        for column in ("size", "ratio", "value", "target", "met"):
            ratios.add_column(column)
        for size, found in info["ratios"].items():
            for name, r in found.items():
                op, bound = r["target"]
                ratios.add_row(
                    size, name, f"{r['value']:.2f}", f"{op} {bound:g}", "yes" if r["met"] else "NO"
                )
        console = Console()
        console.print(table)
        console.print(ratios)
    except ImportError:
        for row in rows:
            print(" | ".join(row))
        for size, found in info["ratios"].items():
            for name, r in found.items():
                print(size, name, f"{r['value']:.2f}", r["target"], "met" if r["met"] else "NOT met")
    for size, labels in info["runs"].items():
        for label, runs in labels.items():
            if label.startswith("agree"):
                for r in runs:
                    print(f"{size} {label}: {r.get('describe') or r.get('error')}")
    cli = info["medians"].get("0", {}).get("fixed via the CLI", {})
    if cli.get("seconds") and cli.get("prefect_floor_seconds"):
        print(
            f"fixed cost as a user runs it: `trackline backfill` on an empty source {cli['seconds']:.1f} s; "
            f"a Prefect flow that does nothing {cli['prefect_floor_seconds']:.1f} s (medians)"
        )
    if cli.get("seconds_with_server"):
        print(
            f"the same `trackline backfill` with PREFECT_API_URL set to a running Prefect server "
            f"(`make prefect`): {cli['seconds_with_server']:.1f} s (median)"
        )
    load = info.get("load_average", {})
    if load:
        print(
            f"load average during the run: min {load['min']:.1f}, median {load['median']:.1f}, max {load['max']:.1f}"
        )
    print(f"results: {info['path']}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    from flows.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="1M,10M", help="comma-separated sizes in source lines (default 1M,10M)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs per piece; medians are reported (default 3)"
    )
    parser.add_argument(
        "--big-repeats", type=int, default=1, help="runs per piece at 5M lines and more (default 1)"
    )
    parser.add_argument("--pandas-repeats", type=int, help="runs of the pandas peer (default: --repeats)")
    parser.add_argument("--skip-pandas", default="", help="sizes at which the pandas peer is not run")
    parser.add_argument(
        "--cli-sizes",
        default="",
        help="sizes (with the backfill piece) at which `trackline backfill` is also timed as a user runs it",
    )
    parser.add_argument(
        "--pieces",
        default="engines,backfill,batches,nightly",
        help="which pieces to run (default engines,backfill,batches,nightly; also: slots, postgres, cluster)",
    )
    parser.add_argument(
        "--backfill-source",
        choices=("text", "typed"),
        default="text",
        help="source the backfill and fixed pieces read (typed: bench/data/<size>-typed/, the slots peer's files)",
    )
    parser.add_argument(
        "--batch-sizes",
        default="1M",
        help="sizes for the batches piece (default 1M; 10M adds a second 10M backfill and ~10 GB of files)",
    )
    parser.add_argument(
        "--nightly-size", default=None, help="warehouse size for the nightly (default: the largest)"
    )
    parser.add_argument("--nightly-changed", type=int, default=10_000, help="invoices the nightly changes")
    parser.add_argument("--profile", action="store_true", help="also profile the core (a few minutes)")
    parser.add_argument("--profile-size", default=None, help="size to profile (default: the smallest)")
    parser.add_argument(
        "--chunk-lines",
        type=int,
        default=Settings.model_fields["chunk_lines"].default,
        help="core and pipeline chunk (default: Settings', as a user's run has it)",
    )
    parser.add_argument(
        "--memory-limit-gb", type=float, default=16.0, help="kill a piece whose RSS passes this"
    )
    parser.add_argument("--duckdb-memory", default="10GB", help="DuckDB's memory_limit for the peer")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--cluster-workers",
        default="0,1,2",
        help="with --pieces cluster: Dask workers per backfill (0: the same flow, chunks in its own process)",
    )
    opts = parser.parse_args(argv)
    opts.cluster_workers = [int(w) for w in opts.cluster_workers.split(",") if w.strip()]
    opts.sizes = [s.strip() for s in opts.sizes.split(",") if s.strip()]
    opts.pieces = {p.strip() for p in opts.pieces.split(",")}
    opts.cli_sizes = [s.strip() for s in opts.cli_sizes.split(",") if s.strip()]
    if opts.backfill_source == "typed" and opts.pieces & {"batches", "nightly"}:
        parser.error("--backfill-source typed is for the backfill and fixed pieces (the nightly reads text)")
    opts.skip_pandas = {s.strip() for s in opts.skip_pandas.split(",") if s.strip()}
    from bench.generate import size_lines

    largest = max(opts.sizes, key=size_lines)
    opts.batch_sizes = [s.strip() for s in opts.batch_sizes.split(",") if s.strip()]
    opts.nightly_size = opts.nightly_size or largest
    opts.profile_size = (opts.profile_size or min(opts.sizes, key=size_lines)) if opts.profile else None
    info = Bench(opts).run()
    render(info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
