"""The real `trackline backfill` through Prefect on the bundled sample."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
from typer.testing import CliRunner

from flows.cli import app
from flows.xero.files import CSV_HEADER, xero_validator
from tests.conftest import SAMPLE

runner = CliRunner()


def _args(tmp_path):
    return [
        "--source",
        str(SAMPLE),
        "--warehouse",
        str(tmp_path / "warehouse.duckdb"),
        "--out",
        str(tmp_path / "out"),
    ]


def test_backfill_through_prefect_fills_the_warehouse_and_writes_valid_batches(prefect_api, tmp_path):
    result = runner.invoke(app, ["backfill", "--emit-batches", *_args(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "invoices ready for Xero" in result.output

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    states = dict(con.execute("select invoice_state, count(*) from invoice_tracking group by 1").fetchall())
    invoices = pl.read_csv(SAMPLE / "invoices.csv", infer_schema=False)
    approved = invoices.filter(pl.col("status") == "approved").height
    # every approved invoice of the sample ends in exactly one state
    assert sum(states.values()) == approved
    assert states["held"] == 26 and states["not_xero"] == 264
    # the northgate worked example is clean
    assert (
        con.execute(
            "select count(*) from invoice_tracking where practice_id = 'northgate' and invoice_state <> 'ready'"
        ).fetchone()[0]
        == 0
    )
    batches = con.execute("select practice_id, path, csv_path, invoice_count from xero_batches").fetchall()
    assert {b[0] for b in batches} == {"harbour", "keystone", "northgate"}, "no batch for practices off Xero"
    assert sum(b[3] for b in batches) == states["ready"]
    run = con.execute("select flow, status, invoices_ready, batches_written from runs").fetchall()
    assert run == [("backfill", "success", states["ready"], len(batches))]
    con.close()

    out = tmp_path / "out"
    for _practice, json_path, csv_path, count in batches:
        body = json.loads((out / json_path).read_text())
        assert list(xero_validator().iter_errors(body)) == []
        assert len(body["Invoices"]) == count <= 50
        assert (out / json_path).stat().st_size <= 3_500_000
        with open(out / csv_path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == CSV_HEADER
        assert len({r[CSV_HEADER.index("*InvoiceNumber")] for r in rows[1:]}) == count


def test_second_backfill_on_unchanged_input_writes_no_new_batch(prefect_api, tmp_path):
    first = runner.invoke(app, ["backfill", "--emit-batches", "--practice", "northgate", *_args(tmp_path)])
    assert first.exit_code == 0, first.output
    files_before = sorted(p.name for p in (tmp_path / "out").rglob("*.json"))
    again = runner.invoke(app, ["backfill", "--emit-batches", "--practice", "northgate", *_args(tmp_path)])
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in (tmp_path / "out").rglob("*.json")) == files_before
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    assert con.execute("select batches_written from runs order by started_at").fetchall() == [(1,), (0,)]
    con.close()


def test_missing_table_stops_with_one_line_and_changes_nothing(prefect_api, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for path in SAMPLE.glob("*.csv"):
        if path.name != "clients.csv":
            (source / path.name).write_bytes(path.read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_LOGGING_LEVEL"}
    env["PREFECT_API_URL"] = prefect_api
    command = [str(Path(sys.executable).with_name("trackline")), "backfill", "--source", str(source)]
    command += ["--warehouse", str(tmp_path / "w.duckdb"), "--out", str(tmp_path / "o")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "clients.csv" in result.stderr and "missing" in result.stderr
    assert not (tmp_path / "w.duckdb").exists()
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.json"))
