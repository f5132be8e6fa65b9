"""The bad-input matrix (tests/reliability/matrix.py): every case has its documented outcome.

Value cases run together, one practice each, in one source beside an untouched control practice; whole-file
cases run one source each; stop cases ask `read_source`, and a few go through a whole run and the CLI to
show that a stop changes nothing and says one line.
"""

from __future__ import annotations

import csv
import io
import json

import polars as pl
import pytest
import typer

from flows.sources.files import SourceError, read_table
from tests.reliability import matrix
from tests.reliability.harness import run_source, settings
from tests.reliability.matrix import ALONE_CASES, FILE_CASES, STOP_CASES, VALUE_CASES
from tests.reliability.practice import add_practice, empty_source, write_source
from tests.reliability.runs import (
    Verdict,
    run_alone_case,
    run_file_case,
    run_stop_case,
    run_value_cases,
    stop_source,
    value_case_practice,
)
from tests.warehouse_state import files as output_files
from tests.warehouse_state import tables as warehouse_tables


@pytest.fixture(scope="module")
def value_run(tmp_path_factory) -> dict[str, Verdict]:
    verdicts = run_value_cases(VALUE_CASES, tmp_path_factory.mktemp("values"))
    return {v.case.id: v for v in verdicts}


def _ids(case: matrix.Case) -> str:
    return case.id


@pytest.mark.parametrize("case", VALUE_CASES, ids=_ids)
def test_bad_value_has_its_documented_outcome(case, value_run):
    assert value_run[case.id].failures == []


def test_the_run_of_every_bad_value_accounts_for_every_invoice_and_leaks_nothing(value_run):
    outcome = value_run["control"].outcome
    assert outcome.crashed is None and outcome.stopped is None
    assert outcome.accounting is None
    assert outcome.leaks == []
    assert value_run["control"].failures == []  # the control practice: all ready, as if alone


@pytest.mark.parametrize("case", ALONE_CASES, ids=_ids)
def test_bad_value_that_may_reach_any_practice_has_its_documented_outcome(case, tmp_path):
    assert run_alone_case(case, tmp_path).failures == []


@pytest.mark.parametrize("case", FILE_CASES, ids=_ids)
def test_whole_file_variant_has_its_documented_outcome(case, tmp_path):
    assert run_file_case(case, tmp_path).failures == []


@pytest.mark.parametrize("case", STOP_CASES, ids=_ids)
def test_unusable_file_stops_with_one_line_naming_it(case, tmp_path):
    assert run_stop_case(case, tmp_path).failures == []


# A stop, end to end: nothing changes, and the CLI says one line --------------------------------------------

STOPS_END_TO_END = [
    "invoices.latin-1",
    "invoice_lines.quantity:missing-column",
    "clients.ragged-row",
]


@pytest.mark.parametrize("case_id", STOPS_END_TO_END)
def test_a_stopped_run_changes_nothing_and_the_cli_says_one_line(case_id, tmp_path, capsys):
    from flows.cli import _run
    from flows.run.pipeline import run_pipeline
    from flows.run.steps import Scope

    good = write_source(add_practice(empty_source(), "s1"), tmp_path / "good")
    first = run_source(good, tmp_path / "work")
    assert first.states == {("s1", "i1"): "ready", ("s1", "i2"): "ready"}
    chosen = settings(good, tmp_path / "work")
    before = warehouse_tables(chosen.warehouse), output_files(chosen.out)

    case = next(c for c in STOP_CASES if c.id == case_id)
    broken = settings(stop_source(case, tmp_path / "broken"), tmp_path / "work")
    with pytest.raises(typer.Exit) as stopped:
        _run(run_pipeline, broken, Scope("backfill"), True, as_tasks=False)
    assert stopped.value.exit_code == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("trackline: ") and stderr.count("\n") == 1, stderr
    assert f"{case.table}.csv" in stderr

    after = warehouse_tables(chosen.warehouse), output_files(chosen.out)
    assert sorted(before[0]) == sorted(after[0])
    for name in before[0]:
        assert before[0][name].equals(after[0][name]), f"{name} changed"
    assert before[1] == after[1]


# What reaches the files, exactly --------------------------------------------------------------------------


def _practice_of(case_id: str) -> str:
    return value_case_practice(next(i for i, c in enumerate(VALUE_CASES) if c.id == case_id))


def _sent(value_run, case_id: str) -> tuple[list[dict], list[dict]]:
    """The JSON invoices and the CSV rows written for the practice of a case."""
    pid = _practice_of(case_id)
    files = value_run[case_id].outcome.files
    invoices = [
        i
        for name, body in files.items()
        if name.startswith(f"xero/{pid}/") and name.endswith(".json")
        for i in json.loads(body)["Invoices"]
    ]
    rows = [
        r
        for name, body in files.items()
        if name.startswith(f"xero/{pid}/") and name.endswith(".csv")
        for r in csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))
    ]
    return invoices, rows


def test_formula_looking_free_text_reaches_both_files_exactly_as_exported(value_run):
    invoices, rows = _sent(value_run, "invoice_lines.description:formula")
    assert matrix.FORMULA in [item["Description"] for i in invoices for item in i["LineItems"]]
    assert matrix.FORMULA in [r["*Description"] for r in rows]
    invoices, rows = _sent(value_run, "invoices.reference:formula")
    assert matrix.FORMULA in [i.get("Reference") for i in invoices]
    assert matrix.FORMULA in [r["Reference"] for r in rows]


def test_formula_looking_names_never_reach_a_file(value_run):
    for case_id in (
        "tracking_options.name:formula",
        "tracking_categories.name:formula",
        "clients.name:formula",
    ):
        body = b"".join(
            b
            for n, b in value_run[case_id].outcome.files.items()
            if n.startswith(f"xero/{_practice_of(case_id)}/")
        )
        assert b"HYPERLINK" not in body, case_id


def test_quotes_commas_line_breaks_and_non_ascii_reach_the_files_unchanged(value_run):
    pid = _practice_of("clients.name:comma--quote-and-line-break")
    invoices, rows = _sent(value_run, "clients.name:comma--quote-and-line-break")
    name = f'Bolt, "the" Ltd\nNorth «{pid}»'
    assert name in [i["Contact"].get("Name") for i in invoices]
    assert name in [r["*ContactName"] for r in rows]
    pid = _practice_of("tracking_options.name:non-ascii-and-emoji")
    invoices, rows = _sent(value_run, "tracking_options.name:non-ascii-and-emoji")
    option = f"Zoë Øresund 東京 🚀 «{pid}»"
    assert option in [t["Option"] for i in invoices for item in i["LineItems"] for t in item["Tracking"]]
    assert option in [r["TrackingOption1"] for r in rows]


def test_names_at_xero_limits_are_sent_whole(value_run):
    invoices, rows = _sent(value_run, "invoice_lines.description:4-000-characters")
    assert "d" * 4000 in [item["Description"] for i in invoices for item in i["LineItems"]]
    invoices, _ = _sent(value_run, "invoices.invoice_number:255-characters")
    assert "N" * 255 in [i["InvoiceNumber"] for i in invoices]


def test_negative_quantities_are_sent_as_credit_lines(value_run):
    invoices, _ = _sent(value_run, "invoice_lines.quantity:negative")
    amounts = {
        item["Description"].split(" «")[0]: item["LineAmount"] for i in invoices for item in i["LineItems"]
    }
    assert amounts["Adhoc work"] == -25.5


# Parquet types, read as their text ---------------------------------------------------------------------


def test_typed_parquet_columns_are_read_as_the_text_a_csv_would_hold(tmp_path):
    source = add_practice(empty_source(), "t1")
    write_source(source, tmp_path, parquet=("invoices", "invoice_lines", "clients"), typed_parquet=True)
    invoices, _ = read_table(tmp_path, "invoices")
    lines, _ = read_table(tmp_path, "invoice_lines")
    clients, _ = read_table(tmp_path, "clients")
    first = invoices.row(0, named=True)
    assert first["issue_date"] == "2026-01-15"
    assert first["updated_at"] == "2026-01-15T09:00:00Z"  # stored as Europe/London, read in UTC
    assert lines["quantity"].to_list() == ["1.0", "2.0", "1.0"]
    assert lines["position"].to_list() == ["1", "1", "2"]
    assert clients["consolidate_lines"].to_list() == ["false", None]


def test_an_inexact_float_quantity_is_held_not_rounded(tmp_path):
    source = add_practice(add_practice(empty_source(), "t1"), "t2")
    write_source(source, tmp_path / "source", parquet=("invoice_lines",), typed_parquet=True)
    path = tmp_path / "source" / "invoice_lines.parquet"
    frame = pl.read_parquet(path)
    frame = frame.with_columns(
        pl.when(
            (pl.col("practice_id") == "t1") & (pl.col("invoice_id") == "i2") & (pl.col("line_id") == "l1")
        )
        .then(pl.lit(0.1) + pl.lit(0.2))  # 0.30000000000000004
        .otherwise(pl.col("quantity"))
        .alias("quantity")
    )
    frame.write_parquet(path)
    outcome = run_source(tmp_path / "source", tmp_path / "run")
    assert outcome.states[("t1", "i2")] == "held" and outcome.codes[("t1", "i2")] == {"INVALID_VALUE"}
    assert outcome.practice_states("t2") == {"i1": "ready", "i2": "ready"}
    assert outcome.accounting is None


def test_a_stop_message_never_spans_lines_even_when_the_header_does(tmp_path):
    source = add_practice(empty_source(), "t1")
    write_source(source, tmp_path)
    path = tmp_path / "practices.csv"
    path.write_bytes(b'"practice\nid",name,"led\r\nger"\np1,x,xero\n')
    with pytest.raises(SourceError) as stop:
        read_table(tmp_path, "practices")
    assert "\n" not in str(stop.value) and "\r" not in str(stop.value)
    assert "practices.csv: column practice_id, ledger is missing" in str(stop.value)


def test_the_matrix_covers_every_column_of_every_table():
    from transforms.parse_sources import TABLES

    tried = {(c.table, c.column) for c in [*VALUE_CASES, *ALONE_CASES, *STOP_CASES]}
    untried = [(t, c) for t, spec in TABLES.items() for c in spec if (t, c) not in tried]
    assert untried == []
    assert {c.table for c in FILE_CASES if c.table != "*"} == set(TABLES)
