"""A backfill on a Dask cluster (`--workers N`, `--dask ADDRESS`) gives exactly the tables and files of a
local backfill, survives a worker killed mid-chunk, publishes nothing when its own process is killed, and
stops in one line, before anything changes, when the scheduler cannot be reached.

The clusters are real: a LocalCluster of worker processes on 127.0.0.1 (this module's `scheduler`, used
through `--dask`, and the one `--workers 2` starts), reporting to the session's Prefect API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SAMPLE
from tests.warehouse_state import assert_same_tables, files, tables

TRACKLINE = str(Path(sys.executable).with_name("trackline"))
# Small chunks, so that every source here is cut into several chunks spread over the workers.
CHUNK_LINES = {"sample": 2_000, "generated-100k": 20_000, "edge-cases": 60}


def _generated(folder: Path) -> Path:
    from bench.generate import generate, write_source

    frames, manifest = generate(100_000, seed=11)
    return write_source(frames, folder, manifest)


def _edge_cases(folder: Path) -> Path:
    """Every bad value of the reliability matrix, each in its own practice, beside a clean one."""
    from tests.reliability.matrix import VALUE_CASES
    from tests.reliability.practice import add_practice, empty_source, write_source
    from tests.reliability.runs import control_practice, value_case_practice

    source = control_practice(empty_source())
    for index, case in enumerate(VALUE_CASES):
        add_practice(source, value_case_practice(index))
        case.edit(source, value_case_practice(index))
    return write_source(source, folder)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sources")
    return {
        "sample": SAMPLE,
        "generated-100k": _generated(folder / "generated"),
        "edge-cases": _edge_cases(folder / "edge"),
    }


@pytest.fixture(scope="module")
def scheduler(prefect_api):
    """A Dask scheduler on 127.0.0.1 with two worker processes, as an existing cluster would be."""
    from flows.run.cluster import _quiet_dask

    _quiet_dask()
    import distributed

    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        env={"POLARS_MAX_THREADS": "1", "PREFECT_API_URL": prefect_api},
    ) as cluster:
        yield cluster.scheduler_address


def _settings(source: Path, home: Path, name: str, **overrides):
    from flows.settings import Settings

    return Settings(
        source=source,
        warehouse=home / "warehouse.duckdb",
        out=home / "out",
        chunk_lines=CHUNK_LINES[name],
        **overrides,
    )


@pytest.fixture(scope="module")
def local(sources, tmp_path_factory, prefect_api):
    """Each source backfilled locally (one process, no cluster), batches written: (tables, files)."""
    from flows.run.pipeline import run_pipeline
    from flows.run.state import Scope

    found = {}
    for name, source in sources.items():
        settings = _settings(source, tmp_path_factory.mktemp(f"local-{name}"), name)
        summary = run_pipeline(settings, Scope("backfill"), True, as_tasks=False)
        assert summary.batches_written > 0
        found[name] = (tables(settings.warehouse), files(settings.out))
    return found


@pytest.mark.parametrize("name", sorted(CHUNK_LINES))
def test_a_backfill_on_a_dask_cluster_gives_the_tables_and_files_of_a_local_one(
    name, sources, local, scheduler, tmp_path
):
    from flows.run.pipeline import backfill_on_cluster

    settings = _settings(sources[name], tmp_path, name, dask_address=scheduler)
    summary = backfill_on_cluster(settings, None, emit_batches=True)

    assert summary["lines_resolved"] > 0
    expected_tables, expected_files = local[name]
    assert_same_tables(expected_tables, tables(settings.warehouse))
    assert files(settings.out) == expected_files
    parts = [p for p in (tmp_path / "warehouse.duckdb.parts").iterdir() if not p.name.startswith(".")]
    assert len(parts) > 2, "the source was cut into several chunks"


# Through the command, as a user runs it ------------------------------------------------------------------


def _env(api: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_") and k != "PREFECT_LOGGING_LEVEL"
    }
    env.update(PREFECT_API_URL=api, DO_NOT_TRACK="1", TRACKLINE_CHUNK_LINES=str(CHUNK_LINES["sample"]))
    env.update(extra)
    return env


def _backfill(home: Path, api: str, *options: str, **extra: str) -> subprocess.CompletedProcess:
    command = [
        TRACKLINE,
        "backfill",
        "--emit-batches",
        "--source",
        str(SAMPLE),
        "--warehouse",
        str(home / "warehouse.duckdb"),
        "--out",
        str(home / "out"),
        *options,
    ]
    return subprocess.run(command, env=_env(api, **extra), capture_output=True, text=True, timeout=600)


def test_a_worker_killed_mid_chunk_is_replaced_and_the_run_gives_the_same_result(
    local, prefect_api, tmp_path
):
    marker = tmp_path / "killed-worker"
    done = _backfill(
        tmp_path / "home",
        prefect_api,
        "--workers",
        "2",
        TRACKLINE_KILL_AT="resolving",
        TRACKLINE_KILL_ONCE=str(marker),
    )

    assert done.returncode == 0, done.stderr
    killed = int(marker.read_text())
    assert killed != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(killed, 0)  # a real worker process died mid-chunk
    expected_tables, expected_files = local["sample"]
    assert_same_tables(expected_tables, tables(tmp_path / "home" / "warehouse.duckdb"))
    assert files(tmp_path / "home" / "out") == expected_files


def _processes_tagged(tag: str) -> list[int]:
    import psutil

    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("TRACKLINE_TEST_TAG") == tag:
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_a_run_killed_while_its_workers_resolve_publishes_nothing_and_leaves_no_worker(
    local, prefect_api, tmp_path
):
    home = tmp_path / "home"
    tag = f"driver-kill-{os.getpid()}-{time.monotonic_ns()}"
    killed = _backfill(home, prefect_api, "--workers", "2", TRACKLINE_KILL_AT="chunk", TRACKLINE_TEST_TAG=tag)

    assert killed.returncode == -signal.SIGKILL
    assert not (home / "warehouse.duckdb").exists()
    assert {k for k in files(home / "out") if not k.startswith(".staging")} == set()
    deadline = time.monotonic() + 120
    while _processes_tagged(tag):
        assert time.monotonic() < deadline, f"workers outlived their run: {_processes_tagged(tag)}"
        time.sleep(0.5)

    rerun = _backfill(home, prefect_api)
    assert rerun.returncode == 0, rerun.stderr
    expected_tables, expected_files = local["sample"]
    assert_same_tables(expected_tables, tables(home / "warehouse.duckdb"))
    assert files(home / "out") == expected_files
    on_disk = sorted(p.name for p in (home / "warehouse.duckdb.parts").iterdir())
    assert on_disk == _parts_known(home / "warehouse.duckdb"), "the killed run's parts are gone"


def _parts_known(warehouse: Path) -> list[str]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return sorted(r[0] for r in con.execute("select part from store_parts").fetchall())
    finally:
        con.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("given", ["--dask", "TRACKLINE_DASK_ADDRESS"])
def test_an_unreachable_scheduler_stops_with_one_line_before_anything_changes(
    given, local, prefect_api, tmp_path
):
    home = tmp_path / "home"
    first = _backfill(home, prefect_api)
    assert first.returncode == 0, first.stderr
    before_tables, before_files = tables(home / "warehouse.duckdb"), files(home / "out")
    parts = sorted(p.name for p in (home / "warehouse.duckdb.parts").iterdir())

    address = f"tcp://127.0.0.1:{_closed_port()}"
    options = ("--dask", address) if given == "--dask" else ()
    extra = {"TRACKLINE_DASK_ADDRESS": address} if given != "--dask" else {}
    stopped = _backfill(home, prefect_api, *options, TRACKLINE_DASK_CONNECT_TIMEOUT_SECONDS="2", **extra)

    assert stopped.returncode == 1
    line = stopped.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert address in line and "cannot be reached" in line
    assert_same_tables(before_tables, tables(home / "warehouse.duckdb"))
    assert files(home / "out") == before_files
    assert sorted(p.name for p in (home / "warehouse.duckdb.parts").iterdir()) == parts


def test_a_backfill_without_workers_imports_no_dask(tmp_path):
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from flows.run.pipeline import run_pipeline\n"
        "from flows.run.state import Scope\n"
        "from flows.settings import Settings\n"
        f"home = Path({str(tmp_path)!r})\n"
        f"s = Settings(source=Path({str(SAMPLE)!r}), warehouse=home / 'w.duckdb', out=home / 'out')\n"
        "run_pipeline(s, Scope('backfill'), False, as_tasks=False)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dask', 'distributed', 'prefect_dask'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "w.duckdb").exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (("--workers", "0"), "--workers 0"),
        (("--workers", "2", "--dask", "tcp://127.0.0.1:1"), "not both"),
    ],
)
def test_a_cluster_asked_for_wrongly_stops_with_one_line(options, said, prefect_api, tmp_path):
    done = _backfill(tmp_path / "home", prefect_api, *options)
    assert done.returncode == 1
    assert said in done.stderr and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()
