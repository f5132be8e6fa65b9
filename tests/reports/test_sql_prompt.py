"""The SQL prompt the README and docs/analysts.md promise: the `duckdb` command installed with the project,
of the same version as the Python package, opening the warehouse read-only and answering the guide's
example queries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.reports.test_analyst_guide import sql_blocks

REPO = Path(__file__).resolve().parents[2]
DUCKDB_CLI = Path(sys.executable).parent / "duckdb"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DUCKDB_CLI), *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_duckdb_command_is_installed_at_the_python_packages_version():
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == f"v{duckdb.__version__}"


@pytest.mark.parametrize("number", range(1, 6))
def test_example_query_answers_through_the_duckdb_command(warehouse, number):
    query = sql_blocks()[number - 1]
    done = cli("-readonly", "-csv", str(warehouse), stdin=query)
    assert done.returncode == 0 and not done.stderr, done.stderr
    header, *rows = done.stdout.splitlines()
    assert rows, f"example {number} returned nothing through the duckdb command"
    assert header.split(",")[0] == "practice_id"


def test_the_prompt_cannot_change_the_warehouse(warehouse):
    done = cli("-readonly", str(warehouse), stdin="delete from runs;")
    assert done.returncode != 0
    assert "read-only" in done.stderr
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from runs").fetchone()[0] > 0
    finally:
        con.close()


def test_make_sql_opens_the_given_warehouse_read_only(warehouse):
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "sql", f"WAREHOUSE={warehouse}"],
        cwd=REPO,
        input="select count(*) > 0 as has_runs from runs;\ninsert into runs select * from runs;\n",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "true" in done.stdout, done.stdout + done.stderr
    assert "read-only" in done.stderr


def test_make_sql_without_a_warehouse_says_what_to_run(tmp_path):
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "sql", f"WAREHOUSE={tmp_path / 'none.duckdb'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert "trackline backfill" in done.stdout + done.stderr
    assert not (tmp_path / "none.duckdb").exists()
