"""Shared fixtures. Tests never touch data/warehouse.duckdb or data/out: everything lives in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    """One Prefect API server for the whole session (it takes ~10 s to start; the first start on a fresh
    machine also runs its database migrations, hence the generous timeout)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=300):
        yield PREFECT_API_URL.value()


@pytest.fixture
def settings_for(tmp_path):
    """Settings for a source folder, with a warehouse and output folder of the test's own."""
    from flows.settings import Settings

    def make(source: Path, **overrides) -> Settings:
        return Settings(
            source=source, warehouse=tmp_path / "wh" / "warehouse.duckdb", out=tmp_path / "out", **overrides
        )

    return make


@pytest.fixture
def run_plain():
    """Run the pipeline's steps without Prefect (the flows themselves are tested in tests/flows)."""
    from flows.run.pipeline import run_pipeline
    from flows.run.steps import Scope

    def run(settings, flow: str = "backfill", emit_batches: bool = True, **scope):
        return run_pipeline(settings, Scope(flow, **scope), emit_batches, as_tasks=False)

    return run
