"""Fixtures for the report tests: one realistic warehouse and its reports per session, and Chromium."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from tests.reports.report_source import realistic_source

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")


def run_into(folder: Path, source_folder: Path, **settings) -> Path:
    """Run a full backfill (with batches) of `source_folder` into folder/; returns the warehouse path."""
    from flows.run.pipeline import run_pipeline
    from flows.run.steps import Scope
    from flows.settings import Settings

    config = Settings(
        source=source_folder, warehouse=folder / "warehouse.duckdb", out=folder / "out", **settings
    )
    run_pipeline(config, Scope("backfill"), emit_batches=True, as_tasks=False)
    return config.warehouse


def add_views(warehouse: Path) -> None:
    """What every run does once the lead wires it (flows.reports.create_views on the run's copy)."""
    from flows.reports.views import create_views

    con = duckdb.connect(str(warehouse))
    try:
        create_views(con)
    finally:
        con.close()


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory) -> Path:
    """A published warehouse built from the realistic source, with the analyst views in it."""
    folder = tmp_path_factory.mktemp("report-warehouse")
    path = run_into(folder, realistic_source().write(folder / "source"))
    add_views(path)
    return path


@pytest.fixture(scope="session")
def report(warehouse, tmp_path_factory) -> tuple[list[Path], Path]:
    """`write_reports` run once: (paths it returned, the output folder)."""
    from flows.reports.html import write_reports

    out = tmp_path_factory.mktemp("report-out")
    return write_reports(warehouse, out), out


@pytest.fixture
def read_only(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    yield con
    con.close()


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium: /usr/bin/chromium, installed once by install_chromium.sh when missing."""
    if not CHROMIUM.exists():
        done = subprocess.run(["sh", str(HERE / "install_chromium.sh")], capture_output=True, text=True)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.fail(f"could not install chromium: {done.stderr.strip()[-2000:]}")
    return shutil.which(str(CHROMIUM)) or str(CHROMIUM)
