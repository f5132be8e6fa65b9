"""`trackline` on a PostgreSQL source, through the real command and a real Prefect flow run: the password
given in the URL is never printed, logged, kept in `runs.source` or sent as a Prefect parameter; the server
going away mid-run fails the run in one line and changes nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import duckdb

from tests import warehouse_state
from tests.conftest import SAMPLE
from tests.doubles.postgres import PASSWORD


def _trackline(prefect_api, *args, **env_extra) -> subprocess.CompletedProcess:
    """The command, at Prefect's default log level unless PREFECT_LOGGING_LEVEL is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "PREFECT_LOGGING", "PG"))}
    env.update(PREFECT_API_URL=prefect_api, DO_NOT_TRACK="1", **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def _flow_run_parameters(prefect_api) -> str:
    from prefect.client.orchestration import get_client

    async def read() -> str:
        async with get_client() as client:
            runs = await client.read_flow_runs()
            return repr([r.parameters for r in runs])

    os.environ["PREFECT_API_URL"] = prefect_api
    return asyncio.run(read())


def test_password_in_the_url_is_never_shown_kept_or_sent(prefect_api, pg_source, postgres, tmp_path):
    url = pg_source(SAMPLE)
    warehouse, out = tmp_path / "w.duckdb", tmp_path / "out"
    done = _trackline(
        prefect_api,
        "backfill",
        "--emit-batches",
        "--source",
        url,
        "--warehouse",
        str(warehouse),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "invoices ready for Xero" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (source,) = con.execute("select source from runs").fetchone()
        assert source == postgres.url(url.rsplit("/", 1)[1], password=False)
        for (table,) in con.execute("select table_name from information_schema.tables").fetchall():
            assert PASSWORD not in repr(con.execute(f'select * from "{table}"').fetchall())
    finally:
        con.close()
    parameters = _flow_run_parameters(prefect_api)
    assert "postgresql://trackline@127.0.0.1" in parameters
    assert PASSWORD not in parameters
    assert not any(PASSWORD.encode() in p.read_bytes() for p in out.rglob("*") if p.is_file())


def test_server_going_away_mid_run_fails_in_one_line_and_changes_nothing(
    prefect_api, pg_source, postgres, tmp_path
):
    url = pg_source(SAMPLE)
    warehouse, out = tmp_path / "w.duckdb", tmp_path / "out"
    args = ("nightly", "--source", url, "--warehouse", str(warehouse), "--out", str(out))
    assert _trackline(prefect_api, *args).returncode == 0
    tables, files = warehouse_state.tables(warehouse), warehouse_state.files(out)

    def cut() -> None:  # once the run has opened its snapshot, the server ends its connection
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ended = postgres.admin(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where usename = 'trackline' and state = 'idle in transaction'"
            )
            if "t" in ended.split():
                return
            time.sleep(0.2)

    cutter = threading.Thread(target=cut)
    cutter.start()
    done = _trackline(prefect_api, *args, TRACKLINE_PAUSE_AT="loaded", TRACKLINE_PAUSE_SECONDS="6")
    cutter.join()
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"trackline: {postgres.url(url.rsplit('/', 1)[1], password=False)}: reading failed ("
    )
    assert PASSWORD not in done.stdout + done.stderr
    assert warehouse_state.files(out) == files
    warehouse_state.assert_same_tables(warehouse_state.tables(warehouse), tables)
