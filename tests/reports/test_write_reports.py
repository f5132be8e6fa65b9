"""`trackline report`: CSV and Parquet per view, one self-contained HTML page, the warehouse only read."""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import sys
from decimal import Decimal

import duckdb
import pyarrow.parquet as pq
import pytest

from flows.reports.html import HTML_NAME, write_reports
from flows.reports.views import view_names
from flows.warehouse.lock import WarehouseLocked
from tests.reports.conftest import run_into
from tests.reports.report_source import TRICKY_PARTNER
from tests.source_builder import SourceBuilder


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_writes_csv_and_parquet_for_every_view_then_the_html(report):
    paths, out = report
    folder = out / "reports"
    expected = [folder / f"{v}.{fmt}" for v in view_names() for fmt in ("csv", "parquet")]
    assert paths == [*expected, folder / HTML_NAME]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no partial files left


@pytest.mark.parametrize(
    "view", ["tracking_summary", "tracking_coverage", "exception_summary", "held_invoices"]
)
def test_files_hold_exactly_the_view(report, read_only, view):
    paths, out = report
    rows = read_only.execute(f"select count(*) from {view}").fetchone()[0]
    assert pq.read_table(out / "reports" / f"{view}.parquet").num_rows == rows
    with open(out / "reports" / f"{view}.csv", newline="", encoding="utf-8") as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == rows


def test_money_stays_decimal_in_parquet_and_csv(report, read_only):
    paths, out = report
    table = pq.read_table(out / "reports" / "tracking_summary.parquet")
    assert str(table.schema.field("net_amount").type).startswith("decimal128(")
    assert (
        sum(table.column("net_amount").to_pylist())
        == read_only.execute("select sum(line_amount) from xero_line_items").fetchone()[0]
    )
    with open(out / "reports" / "tracking_summary.csv", newline="", encoding="utf-8") as handle:
        amounts = [row["net_amount"] for row in csv.DictReader(handle)]
    assert all(re.fullmatch(r"-?\d+\.\d\d", a) for a in amounts)
    assert sum(Decimal(a) for a in amounts) == sum(table.column("net_amount").to_pylist())


def test_the_warehouse_is_only_read_even_while_an_analyst_holds_it_open(tmp_path):
    source = SourceBuilder()
    source.invoice("p1", "i1").line("p1", "i1", "l1")
    warehouse = run_into(tmp_path / "run", source.write(tmp_path / "source"))
    before = digest(warehouse)
    analyst = duckdb.connect(str(warehouse), read_only=True)
    try:
        paths = write_reports(warehouse, tmp_path / "out")
        assert analyst.execute("select count(*) from xero_line_items").fetchone()[0] == 1
    finally:
        analyst.close()
    assert digest(warehouse) == before
    assert not list(warehouse.parent.glob("*.wal"))
    assert paths[-1].name == HTML_NAME


def test_html_is_self_contained(report):
    page = (report[1] / "reports" / HTML_NAME).read_text(encoding="utf-8")
    assert re.search(r"https?:|ftp:|//[a-z0-9]", page, re.IGNORECASE) is None
    assert "<script" not in page.lower()
    assert re.findall(r"""\bsrc\s*=""", page) == []
    hrefs = re.findall(r"""\bhref="([^"]*)\"""", page)
    assert hrefs and all(h.startswith(("#", "data:")) for h in hrefs), hrefs
    assert all(u.startswith("#") for u in re.findall(r"url\(([^)]*)\)", page))
    assert page.count("<svg") >= 2


def test_html_escapes_text_from_the_data(report):
    page = (report[1] / "reports" / HTML_NAME).read_text(encoding="utf-8")
    escaped = "Singh &amp; O&#x27;Brien &lt;Audit&gt; &quot;SO&quot;"
    assert page.count(escaped) >= 1  # the slot-1 x slot-2 matrix
    assert TRICKY_PARTNER not in page and "<Audit>" not in page
    # The chart legend carries it too, as SVG text escaped by matplotlib (quotes need no escape there).
    assert 'Singh &amp; O\'Brien &lt;Audit&gt; "SO"</text>' in page


def test_html_has_the_headline_the_charts_the_matrix_and_the_exceptions(report):
    page = (report[1] / "reports" / HTML_NAME).read_text(encoding="utf-8")
    headings = [
        "Headline",
        "Net amount by month, by slot-1 option",
        "Slot 1 × slot 2",
        "Coverage over time",
        "Open exceptions",
        "Held invoices",
    ]
    for heading in headings:
        assert f">{heading}<" in page, heading
    assert "ARCHIVED_OPTION" in page and "SAME_CATEGORY" in page
    assert 'class="matrix"' in page


def test_report_on_an_empty_warehouse_still_renders(tmp_path):
    source = SourceBuilder()  # reference data only: no invoice at all
    warehouse = run_into(tmp_path / "run", source.write(tmp_path / "source"))
    paths = write_reports(warehouse, tmp_path / "out")
    page = paths[-1].read_text(encoding="utf-8")
    assert "No open exceptions." in page and "No invoice is held." in page


def test_a_warehouse_open_for_writing_elsewhere_stops_with_one_clear_line(tmp_path):
    source = SourceBuilder()
    source.invoice("p1", "i1").line("p1", "i1", "l1")
    warehouse = run_into(tmp_path / "run", source.write(tmp_path / "source"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(WarehouseLocked, match="open for writing"):
            write_reports(warehouse, tmp_path / "out")
    finally:
        holder.communicate("", timeout=30)
    assert not (tmp_path / "out" / "reports" / HTML_NAME).exists()


HOLD_OPEN = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("open", flush=True)
sys.stdin.read()
"""
