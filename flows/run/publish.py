"""A run changes everything or nothing, and analysts are never blocked.

How:
- one run at a time: an exclusive, non-blocking `flock` on `<warehouse>.lock`;
- the run writes to a private copy of the warehouse (`.<name>.run-<run_id>`) and stages its files under
  `<out>/.staging/<run_id>/`; nothing the analysts or Xero see is touched while it works;
- commit is one `os.replace` of the copy over the warehouse: atomic on POSIX. An analyst holding a
  read-only connection keeps reading the old file (its inode lives on) and sees the new one on reconnect;
- the tables that grow with history are Parquet parts beside the warehouse (flows.warehouse.store): the run
  writes its parts under new names, and only the committed warehouse's index points at them;
- after the commit the staged files are moved into place. If the process dies between the commit and the
  last move, the next run finds the staging folder of a committed run and finishes the moves; the staging
  folder of a run that never committed is deleted. So the published files always match a committed run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from flows import faults
from flows.outputs import Confined
from flows.warehouse.lock import exclusive_lock
from flows.warehouse.migrations import apply_migrations
from flows.warehouse.store import Store, collect_garbage, store_folder

STAGING = ".staging"


@dataclass
class Run:
    run_id: str
    flow: str
    started_at: datetime
    warehouse: Path
    work: Path
    out: Path
    staging: Path
    con: duckdb.DuckDBPyConnection
    store: Store  # the stored tables of the working copy; parts are written under store.root
    scratch: Path  # the run's own folder for what it prepares (staged source rows); removed at its end


def new_run_id(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _move_staged(staging: Path, out: Path) -> None:
    confined = Confined(out)
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        target = confined.file(path.relative_to(staging))
        os.replace(path, target)
        faults.checkpoint("moving")
    shutil.rmtree(staging, ignore_errors=True)
    if staging.parent.name == STAGING and not any(staging.parent.iterdir()):
        staging.parent.rmdir()


def committed_runs(warehouse: Path) -> list[str]:
    """The committed runs of the published warehouse, oldest first."""
    if not warehouse.exists():
        return []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        if "runs" not in tables:
            return []
        return [
            r[0]
            for r in con.execute(
                "select run_id from runs where status = 'success' order by finished_at, run_id"
            ).fetchall()
        ]
    finally:
        con.close()


def recover(warehouse: Path, out: Path) -> None:
    """Finish or undo what a killed run left: see the module docstring."""
    for leftover in warehouse.parent.glob(f".{warehouse.name}.run-*"):
        leftover.unlink(missing_ok=True)
    done = committed_runs(warehouse)
    collect_garbage(warehouse, done[-1] if done else None)
    staging_root = out / STAGING
    if not staging_root.is_dir():
        return
    for staged in sorted(staging_root.iterdir()):
        if staged.name in done:
            _move_staged(staged, out)
        else:
            shutil.rmtree(staged, ignore_errors=True)


@contextmanager
def atomic_run(
    warehouse: Path, out: Path, lock_path: Path, flow: str, memory_limit: str = "1GB"
) -> Iterator[Run]:
    """Yield a Run whose connection and staging folder become visible together, or not at all."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(lock_path):
        recover(warehouse, out)
        started = datetime.now(UTC)
        run_id = new_run_id(started)
        work = warehouse.with_name(f".{warehouse.name}.run-{run_id}")
        staging = out / STAGING / run_id
        if warehouse.exists():
            shutil.copyfile(warehouse, work)
        root = store_folder(warehouse)
        scratch = root / f".scratch-{run_id}"
        # DuckDB would take up to 80% of the machine's memory: a run's queries stay within `memory_limit`
        # and spill to the run's scratch folder beyond it, so a run's peak follows its chunk, not history.
        con = duckdb.connect(
            str(work), config={"memory_limit": memory_limit, "temp_directory": str(scratch / "duckdb")}
        )
        # The run shows its own progress (rich); DuckDB's bar would interleave with it on a terminal.
        con.execute("set enable_progress_bar = false")
        committed = False
        try:
            con.execute("set variable trackline_store = ?", [str(root)])
            apply_migrations(con)
            store = Store(con, root)
            if not store.views_point_here():
                store.refresh_views()  # the views name files by path: point them at where the store is now
            scratch.mkdir(parents=True, exist_ok=True)
            yield Run(run_id, flow, started, warehouse, work, out, staging, con, store, scratch)
            store.sync(run_id)
            con.execute("checkpoint")
            con.close()
            with open(work, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(work, warehouse)
            _fsync_dir(warehouse.parent)
            committed = True
            faults.checkpoint("committed")
            if staging.is_dir():
                _move_staged(staging, out)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
            if not committed:
                try:
                    con.close()
                except duckdb.Error:
                    pass
                work.unlink(missing_ok=True)
                Path(str(work) + ".wal").unlink(missing_ok=True)
                shutil.rmtree(staging, ignore_errors=True)
                for part in root.glob(f"{run_id}-*"):
                    shutil.rmtree(part, ignore_errors=True)
