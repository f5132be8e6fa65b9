"""Nothing half-done, one run at a time, and analysts never blocked.

Each test runs the real `trackline` command in a child process against the session's Prefect server,
and kills it with SIGKILL at a named point of the run (flows/faults.py), not by raising.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flows.faults import POINTS
from tests.source_builder import SourceBuilder
from tests.warehouse_state import assert_same_tables, files, tables

TRACKLINE = str(Path(sys.executable).with_name("trackline"))


def _source(folder: Path, changed: bool) -> Path:
    b = SourceBuilder()
    b.option("p1", "opt-old", "cat-dept", "Old Team", status="ACTIVE" if changed else "ARCHIVED")
    b.template("p1", "svc-old", "Legacy Service", option="opt-old")
    for n in range(1, 61):  # 60 invoices: two batches of Xero's 50
        stamp = "2026-02-01T09:00:00Z" if changed and n % 3 == 0 else "2026-01-01T09:00:00Z"
        b.invoice("p1", f"i{n:02d}", updated_at=stamp)
        b.line("p1", f"i{n:02d}", "l1", unit_amount="150.00" if changed and n % 3 == 0 else "100.00")
        b.line("p1", f"i{n:02d}", "l2", template="svc-accounts")
    b.invoice("p1", "held", updated_at="2026-01-01T09:00:00Z").line("p1", "held", "l1", template="svc-old")
    return b.write(folder)


def _command(home: Path, flow: str = "nightly") -> list[str]:
    return [
        TRACKLINE,
        flow,
        "--source",
        str(home / "src"),
        "--warehouse",
        str(home / "warehouse.duckdb"),
        "--out",
        str(home / "out"),
    ]


def _env(api: str, **extra: str) -> dict[str, str]:
    # The command's own defaults apply (no Prefect console logs), as for a user at a terminal.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_") and k != "PREFECT_LOGGING_LEVEL"
    }
    env.update(PREFECT_API_URL=api, DO_NOT_TRACK="1", **extra)
    return env


def _run(home: Path, api: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(_command(home), env=_env(api, **extra), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def before_and_after(prefect_api, tmp_path_factory):
    """A warehouse after one nightly on the first source, and after a second nightly on the changed one."""
    home = tmp_path_factory.mktemp("reference")
    _source(home / "src", changed=False)
    assert _run(home, prefect_api).returncode == 0
    before = tmp_path_factory.mktemp("before")
    shutil.copytree(home, before, dirs_exist_ok=True)
    _source(home / "src", changed=True)
    done = _run(home, prefect_api)
    assert done.returncode == 0, done.stderr
    return before, tables(home / "warehouse.duckdb"), files(home / "out")


@pytest.mark.parametrize("point", POINTS)
def test_killed_run_leaves_everything_as_before_and_the_rerun_matches(
    point, before_and_after, prefect_api, tmp_path
):
    before, expected_tables, expected_files = before_and_after
    home = tmp_path / "home"
    shutil.copytree(before, home)
    _source(home / "src", changed=True)
    start_tables, start_files = tables(home / "warehouse.duckdb"), files(home / "out")

    killed = _run(home, prefect_api, TRACKLINE_KILL_AT=point)
    assert killed.returncode == -signal.SIGKILL

    if point not in ("committed", "moving"):
        # before the commit point nothing anyone can see has changed
        assert_same_tables(start_tables, tables(home / "warehouse.duckdb"))
        assert {k: v for k, v in files(home / "out").items() if not k.startswith(".staging")} == start_files

    rerun = _run(home, prefect_api)
    assert rerun.returncode == 0, rerun.stderr
    assert_same_tables(expected_tables, tables(home / "warehouse.duckdb"))
    assert files(home / "out") == expected_files
    assert not list(home.glob(".warehouse.duckdb.run-*")), "no working copy is left behind"


def test_second_run_exits_at_once_while_one_is_running(before_and_after, prefect_api, tmp_path):
    before, _, _ = before_and_after
    home = tmp_path / "home"
    shutil.copytree(before, home)
    first = subprocess.Popen(
        _command(home),
        env=_env(prefect_api, TRACKLINE_PAUSE_AT="loaded", TRACKLINE_PAUSE_SECONDS="30"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lock = home / "warehouse.duckdb.lock"
        deadline = time.monotonic() + 120
        while not (lock.exists() and "run in process" in lock.read_text()):
            assert time.monotonic() < deadline, "first run never took the lock"
            assert first.poll() is None, first.communicate()
            time.sleep(0.2)
        started = time.monotonic()
        second = _run(home, prefect_api)
        assert second.returncode == 1
        assert "locked" in second.stderr and second.stderr.strip().count("\n") == 0
        assert time.monotonic() - started < 30, "the second run did not exit at once"
    finally:
        first.kill()
        first.wait()


def test_reader_is_neither_blocked_nor_shown_a_partial_run(before_and_after, prefect_api, tmp_path):
    before, expected_tables, _ = before_and_after
    home = tmp_path / "home"
    shutil.copytree(before, home)
    _source(home / "src", changed=True)
    warehouse = str(home / "warehouse.duckdb")
    held_sql = "select count(*) from invoice_tracking where invoice_state = 'held'"

    analyst = duckdb.connect(warehouse, read_only=True)  # open before the run and kept open throughout
    assert analyst.execute(held_sql).fetchone()[0] == 1
    run = subprocess.Popen(
        _command(home),
        env=_env(prefect_api, TRACKLINE_PAUSE_AT="staged", TRACKLINE_PAUSE_SECONDS="8"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(4)
        # mid-run: a new reader is let in and sees the last complete run
        late = duckdb.connect(warehouse, read_only=True)
        assert late.execute(held_sql).fetchone()[0] == 1
        late.close()
        _, err = run.communicate(timeout=240)
        assert run.returncode == 0, err
    finally:
        if run.poll() is None:
            run.kill()
    assert analyst.execute(held_sql).fetchone()[0] == 1, "an open connection keeps its snapshot"
    analyst.close()
    fresh = duckdb.connect(warehouse, read_only=True)
    assert fresh.execute(held_sql).fetchone()[0] == 0, "reconnecting shows the new run"
    fresh.close()
    assert_same_tables(expected_tables, tables(home / "warehouse.duckdb"))
