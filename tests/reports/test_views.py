"""The analyst views: commented, and every money total exact to the cent against what Xero receives."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from flows.reports.views import create_views, view_names
from tests.reports.conftest import add_views, run_into
from tests.source_builder import SourceBuilder

SHARES = {
    "slot1": ["slot1_filled", "slot1_empty"],
    "slot2": ["slot2_service", "slot2_owner", "slot2_none"],
}


def grouped(con, sql: str) -> dict:
    """{key columns...: value} from a query whose last column is the value."""
    return {tuple(row[:-1]): row[-1] for row in con.execute(sql).fetchall()}


XERO_BY_MONTH = """
    select x.practice_id, h.currency, date_trunc('month', h.issue_date)::date, sum(x.line_amount)
    from xero_line_items x
    join xero_invoices h using (practice_id, invoice_id)
    join invoice_tracking t using (practice_id, invoice_id)
    where t.invoice_state = 'ready'
    group by all
"""


def test_every_view_and_every_column_has_a_comment(read_only):
    views = dict(
        read_only.execute("select view_name, comment from duckdb_views() where not internal").fetchall()
    )
    assert set(view_names()) <= set(views)
    for view in view_names():
        assert views[view], f"{view} has no comment"
        columns = read_only.execute(
            "select column_name, comment from duckdb_columns() where table_name = ?", [view]
        ).fetchall()
        assert columns, view
        assert [c for c, comment in columns if not comment] == [], f"{view}: columns without a comment"


def test_report_views_are_the_expected_ones():
    assert {"tracking_summary", "tracking_coverage", "exception_summary"} <= set(view_names())


def test_money_columns_stay_decimal(read_only):
    # (raw_* show the source as read, as text, as the raw_ tables always have; xero_invoices and the other
    # tables kept as Parquet parts are views now, so their columns are looked at too)
    money = read_only.execute(
        """select table_name, column_name, data_type from duckdb_columns()
           where table_name in (select view_name from duckdb_views() where not internal)
             and not starts_with(table_name, 'raw_')
             and (column_name like '%amount%' and column_name not like '%share%')
             and column_name <> 'line_amount_types'  -- Xero's LineAmountTypes: Exclusive"""
    ).fetchall()
    assert money
    assert [m for m in money if not m[2].startswith("DECIMAL")] == []


def test_the_source_has_what_the_reconciliations_need(read_only):
    """Credits, consolidated invoices, two currencies and held invoices: else the tests below prove little."""
    assert read_only.execute("select count(*) from line_tracking where line_amount < 0").fetchone()[0] > 0
    assert read_only.execute("select count(*) from invoice_tracking where consolidated").fetchone()[0] > 0
    assert read_only.execute("select count(distinct currency) from xero_invoices").fetchone()[0] > 1
    assert read_only.execute("select count(*) from held_invoices").fetchone()[0] > 0


def test_tracking_summary_reconciles_with_xero_line_items_to_the_cent(read_only):
    summary = grouped(
        read_only, "select practice_id, currency, month, sum(net_amount) from tracking_summary group by all"
    )
    assert summary == grouped(read_only, XERO_BY_MONTH)
    lines = read_only.execute("select sum(lines) from tracking_summary").fetchone()[0]
    assert lines == read_only.execute("select count(*) from xero_line_items").fetchone()[0]
    assert all(isinstance(v, Decimal) for v in summary.values())


def test_tracking_summary_counts_each_ready_invoice_in_its_month(read_only):
    invoices = read_only.execute(
        """select count(*) from (select distinct practice_id, invoice_id from xero_line_items)"""
    ).fetchone()[0]
    ready = read_only.execute(
        "select count(*) from invoice_tracking where invoice_state = 'ready'"
    ).fetchone()[0]
    assert invoices == ready
    # An invoice with one option pair per line counts once per row; never fewer than the invoices.
    assert read_only.execute("select sum(invoices) from tracking_summary").fetchone()[0] >= ready


@pytest.mark.parametrize("slot", [1, 2])
def test_tracking_by_option_adds_up_to_the_xero_total_within_each_slot(read_only, slot):
    by_option = grouped(
        read_only,
        f"""select practice_id, currency, month, sum(net_amount) from tracking_by_option
            where slot = {slot} group by all""",
    )
    assert by_option == grouped(read_only, XERO_BY_MONTH)


def test_coverage_amounts_reconcile_with_xero_line_items_to_the_cent(read_only):
    coverage = grouped(read_only, "select practice_id, currency, month, net_amount from tracking_coverage")
    assert coverage == grouped(read_only, XERO_BY_MONTH)
    parts = read_only.execute(
        """select count(*) from tracking_coverage
           where slot2_service_amount + slot2_owner_amount + slot2_none_amount <> net_amount
              or slot2_service_lines + slot2_owner_lines + slot2_none_lines <> lines"""
    ).fetchone()[0]
    assert parts == 0


def test_coverage_shares_lie_in_the_unit_interval_and_sum_to_one_per_slot(read_only):
    cursor = read_only.execute("select * from tracking_coverage")
    names = [d[0] for d in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    assert rows
    for row in rows:
        for parts in SHARES.values():
            for measure in ("line", "amount"):
                shares = [row[f"{p}_{measure}_share"] for p in parts]
                if measure == "amount" and row["absolute_amount"] == 0:
                    assert shares == [None] * len(parts)
                    continue
                assert all(0 <= s <= 1 for s in shares), (row, parts, measure)
                assert sum(shares) == pytest.approx(1, abs=1e-12), (row, parts, measure)


def test_held_money_reconciles_with_the_lines_of_held_invoices(read_only):
    held_lines = grouped(
        read_only,
        """select t.practice_id, t.invoice_id, coalesce(sum(l.line_amount), 0)
           from invoice_tracking t left join line_tracking l using (practice_id, invoice_id)
           where t.invoice_state = 'held' group by all""",
    )
    held_view = grouped(read_only, "select practice_id, invoice_id, amount from held_invoices")
    assert held_view == held_lines
    # Per code: the money of each held invoice with an error of that code, once.
    expected = grouped(
        read_only,
        """select e.practice_id, e.code, sum(h.amount) from held_invoices h
           join (select distinct practice_id, invoice_id, code from exceptions where severity = 'error') e
             using (practice_id, invoice_id)
           group by all""",
    )
    summary = grouped(
        read_only,
        """select practice_id, code, sum(amount_held) from exception_summary
           where severity = 'error' and invoices_held > 0 group by all""",
    )
    assert summary == expected


def test_exception_summary_counts_each_held_invoice_under_each_of_its_codes(read_only):
    expected = grouped(
        read_only,
        """select e.practice_id, e.code, count(distinct e.invoice_id) from exceptions e
           join invoice_tracking t using (practice_id, invoice_id)
           where e.severity = 'error' and t.invoice_state = 'held' group by all""",
    )
    summary = grouped(
        read_only,
        """select practice_id, code, sum(invoices_held) from exception_summary
           where invoices_held > 0 group by all""",
    )
    assert summary == expected
    codes = {code for _, code in expected}
    assert {"EMPTY_INVOICE", "DUPLICATE_KEY", "SAME_CATEGORY", "ARCHIVED_OPTION"} <= codes
    held = read_only.execute("select count(*) from invoice_tracking where invoice_state = 'held'").fetchone()[
        0
    ]
    assert read_only.execute("select count(*) from held_invoices").fetchone()[0] == held


def test_exception_summary_keeps_problems_that_name_no_invoice(read_only):
    orphans = read_only.execute(
        """select exceptions, invoices, invoices_held, amount_held from exception_summary
           where code = 'ORPHAN_LINE'"""
    ).fetchall()
    assert orphans == [(1, 0, 0, Decimal("0.00"))]
    warnings = read_only.execute(
        "select sum(invoices_held) from exception_summary where severity = 'warning'"
    ).fetchone()[0]
    assert warnings == 0


def test_ready_and_held_money_make_up_every_line_of_a_xero_practice(read_only):
    ready = read_only.execute("select sum(net_amount) from tracking_summary").fetchone()[0]
    held = read_only.execute("select sum(amount) from held_invoices").fetchone()[0]
    every = read_only.execute(
        "select sum(line_amount) from line_tracking where invoice_state in ('ready', 'held')"
    ).fetchone()[0]
    assert ready == read_only.execute("select sum(line_amount) from xero_line_items").fetchone()[0]
    assert ready + held == every


def test_exception_summary_counts_every_open_exception_once(read_only):
    assert (
        read_only.execute("select sum(exceptions) from exception_summary").fetchone()[0]
        == (read_only.execute("select count(*) from exceptions").fetchone()[0])
    )
    ages = read_only.execute("select min(oldest_age_days) from exception_summary").fetchone()[0]
    assert ages >= 0


def test_slot2_fallback_reconciles_with_the_service_lines_of_ready_invoices(read_only):
    view = grouped(
        read_only,
        """select practice_id, service_template_id, sum(net_amount)
           from slot2_fallback_by_service group by all""",
    )
    lines = grouped(
        read_only,
        """select practice_id, service_template_id, sum(line_amount) from line_tracking
           where invoice_state = 'ready' and line_type = 'service' group by all""",
    )
    assert view == lines
    names = read_only.execute(
        "select count(*) from slot2_fallback_by_service where service_name is null"
    ).fetchone()
    assert names[0] == 0


# --- small worked cases -----------------------------------------------------------------------------------


def small_warehouse(tmp_path, build) -> duckdb.DuckDBPyConnection:
    source = SourceBuilder()
    build(source)
    path = run_into(tmp_path, source.write(tmp_path / "source"))
    add_views(path)
    return duckdb.connect(str(path), read_only=True)


def coverage_row(con) -> dict:
    cursor = con.execute("select * from tracking_coverage")
    names = [d[0] for d in cursor.description]
    (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))


def test_coverage_says_where_slot2_came_from(tmp_path):
    def build(s: SourceBuilder) -> None:
        s.invoice("p1", "i1")
        s.line("p1", "i1", "l1", template="svc-book", unit_amount="300.00")  # service option
        s.line("p1", "i1", "l2", template="svc-accounts", unit_amount="100.00")  # falls back to the owner
        s.client("p1", "c2", "No Owner Ltd", option=None)
        s.invoice("p1", "i2", client_id="c2")
        s.line("p1", "i2", "l3", template="svc-accounts", unit_amount="100.00")  # nothing anywhere

    con = small_warehouse(tmp_path, build)
    row = coverage_row(con)
    assert row["lines"] == 3 and row["net_amount"] == Decimal("500.00")
    assert row["slot1_filled_line_share"] == pytest.approx(2 / 3)
    assert row["slot1_filled_amount_share"] == pytest.approx(400 / 500)
    assert (row["slot2_service_lines"], row["slot2_owner_lines"], row["slot2_none_lines"]) == (1, 1, 1)
    assert row["slot2_service_amount_share"] == pytest.approx(300 / 500)
    assert row["slot2_not_sent_lines"] == 0
    fallback = dict(
        con.execute("select service_template_id, fallback_share from slot2_fallback_by_service").fetchall()
    )
    assert fallback == {"svc-book": 0.0, "svc-accounts": 0.5}


def test_coverage_counts_a_consolidated_invoice_as_sending_no_slot2(tmp_path):
    def build(s: SourceBuilder) -> None:
        s.client("p1", "c9", "Consolidated Ltd", option="opt-pa", owner="tm-owner", consolidate=True)
        s.invoice("p1", "i1", client_id="c9")
        s.line("p1", "i1", "l1", template="svc-book", unit_amount="120.00")
        s.line("p1", "i1", "l2", template="svc-accounts", unit_amount="80.00")

    con = small_warehouse(tmp_path, build)
    row = coverage_row(con)
    assert row["lines"] == 2 and row["net_amount"] == Decimal("200.00")
    assert row["slot2_none_line_share"] == 1.0 and row["slot2_not_sent_lines"] == 2
    summary = con.execute(
        "select tracking1_option, tracking2_option, lines, net_amount from tracking_summary"
    )
    assert summary.fetchall() == [("Partner A", None, 1, Decimal("200.00"))]


def test_amount_shares_stay_in_the_unit_interval_with_a_credit_line(tmp_path):
    def build(s: SourceBuilder) -> None:
        s.client("p1", "c2", "Untracked Ltd", option=None, owner="tm-owner")
        s.invoice("p1", "i1", client_id="c2")
        s.line("p1", "i1", "l1", template="svc-book", unit_amount="100.00")
        s.invoice("p1", "i2")
        s.line("p1", "i2", "l2", line_type="adhoc", template=None, unit_amount="-100.00", account_code="200",
               tax_type="OUTPUT2")  # fmt: skip

    con = small_warehouse(tmp_path, build)
    row = coverage_row(con)
    assert row["net_amount"] == Decimal("0.00")
    assert row["slot1_filled_amount_share"] == pytest.approx(0.5)
    assert row["slot1_empty_amount_share"] == pytest.approx(0.5)


def test_exception_summary_holds_an_invoice_money_once_per_code(tmp_path):
    def build(s: SourceBuilder) -> None:
        s.template("p1", "svc-bare", "Bare", option="opt-book", account_code=None, tax_type=None)
        s.invoice("p1", "i1")
        s.line("p1", "i1", "l1", template="svc-bare", unit_amount="40.00")
        s.line("p1", "i1", "l2", template="svc-bare", unit_amount="60.00")
        s.invoice("p1", "i2")
        s.line("p1", "i2", "l3", template="svc-book", unit_amount="10.00")

    con = small_warehouse(tmp_path, build)
    rows = con.execute(
        """select code, exceptions, invoices, lines, invoices_held, amount_held
           from exception_summary order by code"""
    ).fetchall()
    assert rows == [
        ("MISSING_ACCOUNT_CODE", 2, 1, 2, 1, Decimal("100.00")),
        ("MISSING_TAX_TYPE", 2, 1, 2, 1, Decimal("100.00")),
    ]
    held = con.execute("select invoice_id, amount, hold_codes, errors from held_invoices").fetchall()
    assert held == [("i1", Decimal("100.00"), "MISSING_ACCOUNT_CODE, MISSING_TAX_TYPE", 4)]


def test_create_views_can_run_again_on_the_same_warehouse(tmp_path):
    con = small_warehouse(tmp_path, lambda s: (s.invoice("p1", "i1"), s.line("p1", "i1", "l1")))
    path = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()[0]
    con.close()
    writable = duckdb.connect(path)
    create_views(writable)
    create_views(writable)
    assert writable.execute("select sum(net_amount) from tracking_summary").fetchone()[0] == Decimal("100.00")
    writable.close()


def test_a_run_publishes_the_views(tmp_path):
    source = SourceBuilder()
    source.invoice("p1", "i1").line("p1", "i1", "l1")
    path = run_into(tmp_path, source.write(tmp_path / "source"))
    con = duckdb.connect(str(path), read_only=True)
    views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    con.close()
    assert set(view_names()) <= views


def test_held_invoices_show_the_currency_their_source_row_gives(read_only, warehouse):
    """A held invoice is not in xero_invoices, and the source's invoices are not copied into the warehouse:
    its currency comes from invoice_tracking.source_currency, as the source gave it."""
    source = warehouse.parent / "source" / "invoices.csv"
    given = {
        (p, i): c
        for p, i, c in duckdb.sql(
            f"select practice_id, invoice_id, upper(trim(currency)) from read_csv('{source}', all_varchar = true)"
        ).fetchall()
    }
    held = read_only.execute("select practice_id, invoice_id, currency from held_invoices").fetchall()
    assert held
    for practice_id, invoice_id, currency in held:
        assert currency == given[(practice_id, invoice_id)], (practice_id, invoice_id)
