"""trackline works as a Prefect worker's image installs it: from a wheel, in a fresh virtual environment,
run from a folder that is not the checkout (the migrations, report views and Xero's schema travel in it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb

from tests.conftest import REPO, SAMPLE

WHEELHOUSE = REPO / ".venv" / "wheelhouse"  # every dependency's wheel, kept by `make setup`


def _checkout(tmp: Path) -> Path:
    """The checkout's files (tracked, or new and not ignored), copied: a wheel built in the checkout itself
    would pick up whatever an earlier build left in build/ (modules since moved or removed)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    copy = tmp / "checkout"
    for name in filter(None, listed.decode().split("\0")):
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return copy


def _run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_wheel_carries_the_sql_and_xeros_schema(tmp_path):
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", tmp_path / "dist", _checkout(tmp_path))  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("trackline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {n for n in names if n.endswith(".py") and not n.startswith("flows/sql/")}
    tracked = {str(p.relative_to(REPO)) for d in ("flows", "transforms") for p in (REPO / d).rglob("*.py")}
    assert modules == tracked  # every module, and no module that is not in the checkout
    migrations = {p.name for p in (REPO / "sql" / "migrations").iterdir() if p.suffix in (".sql", ".py")}
    reports = {p.name for p in (REPO / "sql" / "reports").glob("*.sql")}
    assert {f"flows/sql/migrations/{m}" for m in migrations} <= names
    assert {f"flows/sql/reports/{r}" for r in reports} <= names
    assert "flows/xero/invoices.schema.json" in names


def test_an_installed_wheel_runs_a_backfill_outside_the_checkout(tmp_path, prefect_api):
    dist, venv, elsewhere = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", dist, _checkout(tmp_path))  # fmt: skip
    (wheel,) = dist.glob("trackline-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # pip of the test's own environment installs into the new one, offline, from the cached wheels.
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile",
         "--no-index", "--find-links", WHEELHOUSE, "-c", REPO / "constraints.txt", wheel)  # fmt: skip

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLINE_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(PREFECT_API_URL=prefect_api, DO_NOT_TRACK="1", PATH=f"{venv / 'bin'}:{env['PATH']}")
    where = _run(python, "-c", "import flows, transforms; print(flows.__file__, transforms.__file__)",
                 cwd=elsewhere, env=env)  # fmt: skip
    assert all(str(venv) in path for path in where.stdout.split()), where.stdout

    _run(venv / "bin" / "trackline", "backfill", "--emit-batches", "--source", SAMPLE,
         "--warehouse", "w.duckdb", "--out", "out", cwd=elsewhere, env=env)  # fmt: skip
    con = duckdb.connect(str(elsewhere / "w.duckdb"), read_only=True)
    states = dict(con.execute("select invoice_state, count(*) from invoice_tracking group by all").fetchall())
    views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    con.close()
    assert states["ready"] > 0 and states["held"] > 0
    assert "held_invoices" in views
    bodies = sorted((elsewhere / "out" / "xero").rglob("*.json"))
    assert bodies and json.loads(bodies[0].read_text())["Invoices"]
