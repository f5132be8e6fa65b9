"""check_accounting on warehouses a run built, then broken on purpose: each break is caught, in one line."""

from __future__ import annotations

import shutil
from datetime import date

import duckdb
import polars as pl
import pytest

from flows.run.accounting import AccountingCheckFailed, check_accounting
from tests.reliability.harness import run_source, settings, show_source
from tests.reliability.practice import add_practice, empty_source, find_row, row, write_source
from tests.warehouse_state import materialize_stored_tables


def _source():
    """Two practices on Xero and one on Sage; a held invoice, a draft, an orphan line."""
    source = add_practice(add_practice(add_practice(empty_source(), "a1"), "a2"), "a3", ledger="sage")
    find_row(source, "invoices", "a1", {"invoice_id": "i2"})["status"] = "sent"  # does not parse: held
    source["invoices"].append(
        dict(find_row(source, "invoices", "a2", {"invoice_id": "i1"}), invoice_id="i3", status="draft")
    )
    source["invoice_lines"].append(
        row(
            "invoice_lines",
            practice_id="a2",
            invoice_id="i9",
            line_id="l7",
            position="1",
            line_type="adhoc",
            description="orphan «a2»",
            quantity="1",
            unit_amount="1",
            account_code="200",
            tax_type="OUTPUT2",
        )
    )
    return source


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("accounting")
    outcome = run_source(write_source(_source(), work / "source"), work)
    assert outcome.crashed is None and outcome.stopped is None
    assert outcome.states == {
        ("a1", "i1"): "ready",
        ("a1", "i2"): "held",
        ("a2", "i1"): "ready",
        ("a2", "i2"): "ready",
        ("a3", "i1"): "not_xero",
        ("a3", "i2"): "not_xero",
    }
    return settings(work / "source", work).warehouse, work / "source"


@pytest.fixture
def con(built, tmp_path):
    warehouse, source = built
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse, copy)
    connection = duckdb.connect(str(copy))
    materialize_stored_tables(connection)  # so that the tests can break them
    show_source(connection, source)
    yield connection
    connection.close()


def _fails(con, keys=None) -> str:
    with pytest.raises(AccountingCheckFailed) as failed:
        check_accounting(con, keys)
    message = str(failed.value)
    assert "\n" not in message and message.startswith("accounting check failed: ")
    return message


def _keys(*pairs: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(pairs, schema=["practice_id", "invoice_id"], orient="row")


def test_a_run_accounts_for_every_invoice_line_and_orphan(con):
    check_accounting(con, None)
    check_accounting(con, _keys(("a1", "i1")))


def test_an_approved_invoice_in_no_state_fails(con):
    con.execute("delete from invoice_tracking where practice_id = 'a2' and invoice_id = 'i2'")
    assert "1 approved invoices of the source are in no state in invoice_tracking (a2/i2)" in _fails(con)


def test_an_invoice_whose_status_did_not_parse_must_be_accounted_for_too(con):
    con.execute("delete from invoice_tracking where practice_id = 'a1' and invoice_id = 'i2'")
    assert "(a1/i2)" in _fails(con)


def test_an_invoice_of_another_ledger_must_be_not_xero_not_missing(con):
    con.execute("delete from invoice_tracking where practice_id = 'a3'")
    assert "2 approved invoices of the source are in no state" in _fails(con)


def test_an_invoice_in_two_states_fails(con):
    con.execute("create or replace table invoice_tracking as select * from invoice_tracking")  # no key
    con.execute(
        "insert into invoice_tracking select * replace ('held' as invoice_state) from invoice_tracking "
        "where invoice_id = 'i1' and practice_id = 'a2'"
    )
    assert "more than one state" in _fails(con)


def test_an_unknown_state_fails(con):
    con.execute(
        "update invoice_tracking set invoice_state = 'parked' where practice_id = 'a2' and invoice_id = 'i1'"
    )
    assert "not ready, held or not_xero (a2/i1)" in _fails(con)


def test_a_held_invoice_without_an_error_saying_why_fails(con):
    con.execute("delete from exceptions where practice_id = 'a1' and invoice_id = 'i2'")
    assert "held invoices have no open error in exceptions saying why (a1/i2)" in _fails(con)


def test_a_ready_invoice_with_an_open_error_fails(con):
    con.execute(
        "insert into exceptions values ('a2', 'i1', null, 'UNKNOWN_OPTION', 'error', 'planted', now(), now(), 'fix')"
    )
    assert "ready invoices have an open error in exceptions (a2/i1)" in _fails(con)


def test_a_line_missing_from_line_tracking_fails(con):
    con.execute("delete from line_tracking where practice_id = 'a2' and invoice_id = 'i2' and line_id = 'l2'")
    assert "lines of the source are not in line_tracking (a2/i2/l2)" in _fails(con)


def test_a_line_in_two_rows_fails(con):
    con.execute("create or replace table line_tracking as select * from line_tracking")  # no key
    con.execute(
        "insert into line_tracking select * from line_tracking "
        "where practice_id = 'a2' and invoice_id = 'i2' and line_id = 'l1'"
    )
    assert "lines are in more than one line_tracking row (a2/i2/l1)" in _fails(con)


def test_a_line_tracking_row_that_is_no_line_of_the_source_fails(con):
    con.execute(
        "insert into line_tracking select * replace ('l5' as line_id) from line_tracking "
        "where practice_id = 'a2' and invoice_id = 'i2' and line_id = 'l1'"
    )
    assert "line_tracking rows are not lines of the source (a2/i2/l5)" in _fails(con)


def test_a_line_whose_state_disagrees_with_its_invoice_fails(con):
    con.execute(
        "update line_tracking set invoice_state = 'held' where practice_id = 'a2' and invoice_id = 'i1'"
    )
    assert "disagree with their invoice's state (a2/i1/l1)" in _fails(con)


def test_line_tracking_rows_of_no_invoice_fail(con):
    con.execute(
        "insert into line_tracking select * replace ('i8' as invoice_id) from line_tracking "
        "where practice_id = 'a2' and invoice_id = 'i1'"
    )
    assert "belong to no invoice in invoice_tracking (a2/i8/l1)" in _fails(con)


def test_a_ready_invoice_with_a_line_that_cannot_be_told_apart_fails(con):
    con.execute(
        "update raw_invoice_lines set line_id = '' "
        "where practice_id = 'a2' and invoice_id = 'i2' and line_id = 'l2'"
    )
    message = _fails(con)
    assert "ready invoices have a line of the source without a line_id or practice_id (a2/i2)" in message
    con.execute(
        "update raw_invoice_lines set practice_id = null, line_id = 'l2' "
        "where practice_id = 'a2' and invoice_id = 'i2' and line_id = ''"
    )
    assert "(a1/i2" not in _fails(con)  # a1/i2 is held already; every ready i2 is named
    assert "(a2/i2" in _fails(con)


def test_an_orphan_line_missing_from_exceptions_fails(con):
    con.execute("delete from exceptions where code = 'ORPHAN_LINE'")
    assert "orphan lines of the source are not in exceptions (a2/i9/l7)" in _fails(con)


def test_drafts_and_voids_need_no_state(con):
    con.execute("update raw_invoices set status = 'VOID ' where practice_id = 'a2' and invoice_id = 'i1'")
    con.execute("delete from invoice_tracking where practice_id = 'a2' and invoice_id = 'i1'")
    con.execute("delete from line_tracking where practice_id = 'a2' and invoice_id = 'i1'")
    check_accounting(con, None)


def test_a_repeated_invoice_with_any_approved_copy_must_be_accounted_for(con):
    con.execute(
        "insert into raw_invoices select * replace ('draft' as status) from raw_invoices "
        "where practice_id = 'a2' and invoice_id = 'i1'"
    )
    check_accounting(con, None)
    con.execute("delete from invoice_tracking where practice_id = 'a2' and invoice_id = 'i1'")
    assert "(a2/i1)" in _fails(con)


def test_only_invoices_in_scope_are_judged_against_the_source(con):
    con.execute("delete from invoice_tracking where practice_id = 'a2' and invoice_id = 'i2'")
    con.execute("delete from line_tracking where practice_id = 'a2' and invoice_id = 'i2'")
    check_accounting(con, _keys(("a1", "i1"), ("a2", "i1")))
    assert "(a2/i2)" in _fails(con, _keys(("a2", "i2")))
    assert "(a2/i2)" in _fails(con, None)


def test_orphan_lines_are_judged_whatever_the_scope(con):
    con.execute("delete from exceptions where code = 'ORPHAN_LINE'")
    assert "orphan lines" in _fails(con, _keys(("a1", "i1")))


def test_several_failures_are_named_in_one_line(con):
    con.execute("delete from invoice_tracking where practice_id = 'a2'")
    con.execute("delete from exceptions where code = 'ORPHAN_LINE'")
    message = _fails(con)
    assert "2 approved invoices of the source are in no state" in message
    assert "belong to no invoice in invoice_tracking" in message and "orphan lines" in message


def test_a_warehouse_without_a_source_fails(tmp_path):
    connection = duckdb.connect(str(tmp_path / "empty.duckdb"))
    try:
        assert "the warehouse has no" in _fails(connection)
    finally:
        connection.close()


# Scope in real runs --------------------------------------------------------------------------------------


def test_a_backfill_over_a_range_accounts_for_its_scope_not_the_invoices_it_never_computed(tmp_path):
    source = add_practice(empty_source(), "b1")
    find_row(source, "invoices", "b1", {"invoice_id": "i2"})["issue_date"] = "2025-06-01"
    outcome = run_source(write_source(source, tmp_path / "source"), tmp_path, date_from=date(2026, 1, 1))
    assert outcome.states == {("b1", "i1"): "ready"}
    connection = duckdb.connect(str(settings(tmp_path / "source", tmp_path).warehouse), read_only=True)
    show_source(connection, tmp_path / "source")
    try:
        check_accounting(connection, _keys(("b1", "i1")))
        assert "(b1/i2)" in _fails(connection, None)
    finally:
        connection.close()


def test_an_invoice_exported_late_with_an_old_updated_at_is_accounted_for_by_the_next_nightly(tmp_path):
    """The nightly takes invoices changed since its watermark, and those it never saw: one that arrives
    with an older updated_at is computed too, so the whole source is accounted for (as a nightly checks)."""
    source = add_practice(empty_source(), "n1")
    late = find_row(source, "invoices", "n1", {"invoice_id": "i2"})
    source["invoices"].remove(late)
    run_source(write_source(source, tmp_path / "source"), tmp_path, flow="nightly")
    source["invoices"].append(dict(late, updated_at="2025-12-31T09:00:00Z"))  # before the watermark
    outcome = run_source(write_source(source, tmp_path / "source"), tmp_path, flow="nightly")
    assert outcome.states[("n1", "i2")] == "ready"
    assert outcome.accounting is None


def test_a_nightly_judging_only_its_own_invoices_still_finds_an_approved_invoice_the_warehouse_lacks(con):
    # A nightly judges what it recomputed in full and every other invoice of the source for presence in
    # the index: an invoice no run ever computed is caught though it is not among the nightly's own.
    check_accounting(con, _keys(("a1", "i1")), present=True)
    con.execute("delete from store_index where practice_id = 'a2' and invoice_id = 'i2'")
    with pytest.raises(AccountingCheckFailed) as failed:
        check_accounting(con, _keys(("a1", "i1")), present=True)
    assert "1 approved invoices of the source are in no part of the warehouse (store_index) (a2/i2)" in str(
        failed.value
    )


def test_the_presence_check_asks_nothing_of_drafts_and_other_ledgers_states_are_presence_too(con):
    # a2/i3 is a draft (not exportable): never in the warehouse, never asked for; a3's invoices are not_xero
    # and stored, so present.
    con.execute("delete from store_index where practice_id = 'a2' and invoice_id = 'i3'")
    check_accounting(con, _keys(("a1", "i1")), present=True)
    con.execute("delete from store_index where practice_id = 'a3' and invoice_id = 'i1'")
    with pytest.raises(AccountingCheckFailed, match=r"\(a3/i1\)"):
        check_accounting(con, _keys(("a1", "i1")), present=True)
