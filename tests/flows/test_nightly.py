"""The nightly flow's incremental behaviour, run through the same steps without Prefect (fast).

The Prefect-run flows themselves are covered in test_backfill_flow.py and test_atomicity.py.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.source_builder import SourceBuilder
from tests.warehouse_state import assert_same_tables, files, tables


def _source() -> SourceBuilder:
    b = SourceBuilder()
    b.option("p1", "opt-old", "cat-dept", "Old Team", status="ARCHIVED")
    b.template("p1", "svc-old", "Legacy Service", option="opt-old")
    for n in range(1, 5):
        b.invoice("p1", f"i{n}", updated_at=f"2026-01-0{n}T09:00:00Z")
        b.line("p1", f"i{n}", "l1")
        b.line("p1", f"i{n}", "l2", template="svc-accounts")
    b.invoice("p1", "i9", updated_at="2026-01-05T09:00:00Z")
    b.line("p1", "i9", "l1", template="svc-old")  # held: ARCHIVED_OPTION
    return b


def _set(builder: SourceBuilder, table: str, match: dict, **values) -> None:
    rows = [r for r in builder.rows[table] if all(r[k] == v for k, v in match.items())]
    assert rows, f"no {table} row matches {match}"
    for row in rows:
        row.update({k: str(v) for k, v in values.items()})


def _query(settings, sql: str):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def world(tmp_path, settings_for, run_plain):
    builder = _source()
    settings = settings_for(tmp_path / "src")

    def run(flow: str = "nightly"):
        builder.write(tmp_path / "src")
        return run_plain(settings, flow=flow)

    return builder, settings, run


def test_first_nightly_takes_everything_then_only_invoices_changed_since(world):
    builder, settings, run = world
    first = run()
    assert first.invoices_considered == 5
    _set(builder, "invoices", {"invoice_id": "i2"}, updated_at="2026-02-01T10:00:00Z")
    _set(builder, "invoice_lines", {"invoice_id": "i2", "line_id": "l1"}, unit_amount="120.00")
    second = run()
    # i2 changed after the watermark; i9 is still held, so it is tried again
    assert second.invoices_considered == 2
    assert (
        _query(settings, "select watermark from runs order by started_at")[-1][0]
        .isoformat()
        .startswith("2026-02-01T10:00")
    )


def test_held_invoice_is_released_and_batched_when_its_cause_is_fixed(world):
    builder, settings, run = world
    run()
    assert _query(settings, "select invoice_state from invoice_tracking where invoice_id = 'i9'") == [
        ("held",)
    ]
    assert _query(settings, "select code from exceptions where invoice_id = 'i9'") == [("ARCHIVED_OPTION",)]

    _set(builder, "tracking_options", {"tracking_option_id": "opt-old"}, status="ACTIVE")  # un-archived
    summary = run()
    assert summary.invoices_ready == 1 and summary.batches_written == 1
    assert _query(settings, "select invoice_state from invoice_tracking where invoice_id = 'i9'") == [
        ("ready",)
    ]
    assert _query(settings, "select count(*) from exceptions where invoice_id = 'i9'") == [(0,)]
    closed = _query(
        settings, "select code, closed_at > first_seen_at from exception_history where invoice_id = 'i9'"
    )
    assert closed == [("ARCHIVED_OPTION", True)]
    assert _query(settings, "select count(*) from export_ledger where invoice_id = 'i9'") == [(1,)]


def test_open_exception_keeps_its_first_seen_at(world):
    _, settings, run = world
    run()
    first = _query(settings, "select first_seen_at, last_seen_at from exceptions where invoice_id = 'i9'")
    run()
    again = _query(settings, "select first_seen_at, last_seen_at from exceptions where invoice_id = 'i9'")
    assert again[0][0] == first[0][0]
    assert again[0][1] > first[0][1]


def test_invoice_is_batched_again_only_when_what_is_sent_changes(world):
    builder, settings, run = world
    run()
    batches = _query(settings, "select count(*) from xero_batches")[0][0]

    _set(builder, "invoices", {"invoice_id": "i1"}, updated_at="2026-03-01T09:00:00Z")  # touched, not changed
    touched = run()
    assert touched.invoices_considered == 2 and touched.batches_written == 0

    _set(builder, "invoices", {"invoice_id": "i1"}, updated_at="2026-03-02T09:00:00Z")
    _set(builder, "clients", {"client_id": "c1"}, tracking_option_id="opt-pb")  # slot 1 changes on i1
    changed = run()
    assert changed.batches_written == 1 and changed.invoices_batched == 1
    assert _query(settings, "select count(*) from xero_batches")[0][0] == batches + 1
    ledger = _query(
        settings, "select count(distinct digest), count(*) from export_ledger where invoice_id = 'i1'"
    )
    assert ledger == [(2, 2)]
    assert _query(
        settings, "select distinct tracking1_option from xero_line_items where invoice_id = 'i1'"
    ) == [("Partner B",)]


def test_an_invoice_changed_back_to_what_an_earlier_batch_carried_is_batched_again(world):
    """What would be sent is compared with the latest batch that carried the invoice, not with every
    batch: content that goes back to what an earlier batch held has changed since the last one."""
    builder, settings, run = world
    run()
    original = [r["tracking_option_id"] for r in builder.rows["clients"] if r["client_id"] == "c1"][0]
    _set(builder, "invoices", {"invoice_id": "i1"}, updated_at="2026-03-02T09:00:00Z")
    _set(builder, "clients", {"client_id": "c1"}, tracking_option_id="opt-pb")
    assert run().invoices_batched == 1

    _set(builder, "invoices", {"invoice_id": "i1"}, updated_at="2026-03-03T09:00:00Z")
    _set(builder, "clients", {"client_id": "c1"}, tracking_option_id=original)
    back = run()

    assert back.batches_written == 1 and back.invoices_batched == 1
    ledger = _query(
        settings, "select count(distinct digest), count(*) from export_ledger where invoice_id = 'i1'"
    )
    assert ledger == [(2, 3)], "the first digest batched twice, the second once"
    assert run().batches_written == 0, "and not again while it stays so"


def test_two_nightly_runs_on_unchanged_input_change_nothing(world, tmp_path):
    _, settings, run = world
    run()
    before_tables, before_files = tables(settings.warehouse), files(settings.out)
    summary = run()
    assert summary.batches_written == 0
    assert_same_tables(before_tables, tables(settings.warehouse))
    assert files(settings.out) == before_files


def test_backfill_of_a_range_replaces_only_that_range(tmp_path, settings_for, run_plain):
    builder = SourceBuilder()
    builder.invoice("p1", "jan", issue_date="2026-01-10").line("p1", "jan", "l1")
    builder.invoice("p1", "feb", issue_date="2026-02-10").line("p1", "feb", "l1")
    builder.write(tmp_path / "src")
    settings = settings_for(tmp_path / "src")
    run_plain(settings, emit_batches=False)
    _set(builder, "invoices", {"invoice_id": "jan"}, status="void")
    _set(builder, "invoices", {"invoice_id": "feb"}, status="void")
    builder.write(tmp_path / "src")
    from datetime import date

    run_plain(settings, emit_batches=False, date_from=date(2026, 2, 1), date_to=date(2026, 2, 28))
    # February was recomputed: the voided invoice is gone; January was not touched
    assert _query(settings, "select invoice_id from invoice_tracking order by 1") == [("jan",)]
    assert _query(settings, "select invoice_id from line_tracking order by 1") == [("jan",)]


def test_nightly_picks_up_an_invoice_it_never_saw_even_with_an_old_updated_at(world):
    builder, settings, run = world
    run()
    builder.invoice("p1", "late", updated_at="2025-06-01T09:00:00Z").line("p1", "late", "l1")
    summary = run()
    assert summary.invoices_considered == 2  # the late one, and the held one tried again
    assert _query(settings, "select invoice_state from invoice_tracking where invoice_id = 'late'") == [
        ("ready",)
    ]


def test_a_run_whose_accounting_check_fails_publishes_nothing(world, monkeypatch):
    from flows.run import accounting, steps

    builder, settings, run = world
    run()
    before_tables, before_files = tables(settings.warehouse), files(settings.out)
    _set(builder, "invoices", {"invoice_id": "i2"}, updated_at="2026-02-01T10:00:00Z")
    _set(builder, "invoice_lines", {"invoice_id": "i2", "line_id": "l1"}, unit_amount="120.00")

    def lose_an_invoice(con, keys, **scope):
        if not scope.get("lines_only"):  # the last check, on the run's warehouse (a chunk's has its own)
            con.execute("delete from store_index where invoice_id = 'i2'")  # i2's rows no longer shown
        accounting.check_accounting(con, keys, **scope)

    monkeypatch.setattr(steps, "check_accounting", lose_an_invoice)
    with pytest.raises(accounting.AccountingCheckFailed, match="i2"):
        run()
    assert_same_tables(before_tables, tables(settings.warehouse))
    assert files(settings.out) == before_files


def test_a_chunk_whose_lines_are_not_accounted_for_stops_the_run_and_publishes_nothing(world, monkeypatch):
    """A chunk's lines are checked on a thread while the next chunk resolves: its verdict still stops the
    run before anything is published."""
    from flows.run import accounting, steps

    builder, settings, run = world
    run()
    before_tables, before_files = tables(settings.warehouse), files(settings.out)
    _set(builder, "invoices", {"invoice_id": "i2"}, updated_at="2026-02-01T10:00:00Z")

    def lose_the_lines(con, keys, **scope):
        if scope.get("lines_only"):  # the chunk's own check: its line_tracking rows are gone
            con.execute("create temp table _none as select * from line_tracking limit 0")
            con.execute("create or replace temp view line_tracking as select * from _none")
        accounting.check_accounting(con, keys, **scope)

    monkeypatch.setattr(steps, "check_accounting", lose_the_lines)
    with pytest.raises(
        accounting.AccountingCheckFailed, match="lines of the source are not in line_tracking"
    ):
        run()
    assert_same_tables(before_tables, tables(settings.warehouse))
    assert files(settings.out) == before_files


def test_a_run_that_fails_to_record_an_orphan_line_publishes_nothing(world, monkeypatch):
    """The run's last check judges the lines no invoice takes against every invoice of the source: an
    orphan line missing from exceptions stops the run."""
    from flows.run import accounting, steps

    builder, settings, run = world
    run()
    before_tables, before_files = tables(settings.warehouse), files(settings.out)
    builder.line("p1", "i-gone", "l1")  # a line whose invoice does not exist
    recorded = steps.holds.orphan_line_problems
    monkeypatch.setattr(
        steps.holds, "orphan_line_problems", lambda lines, names: recorded(lines, names).head(0)
    )
    with pytest.raises(
        accounting.AccountingCheckFailed, match="orphan lines of the source are not in exceptions"
    ):
        run()
    assert_same_tables(before_tables, tables(settings.warehouse))
    assert files(settings.out) == before_files


def test_a_nightly_leaves_the_tracking_as_a_backfill_of_the_same_source_would(world, tmp_path, run_plain):
    """A nightly reads only what changed, is held or is new (flows.run.steps._nightly_source); what it leaves
    must be what recomputing everything from the same source gives."""
    builder, settings, run = world
    run()
    _set(builder, "invoices", {"invoice_id": "i2"}, updated_at="2026-02-01T10:00:00Z")
    _set(builder, "invoice_lines", {"invoice_id": "i2", "line_id": "l2"}, unit_amount="oops")
    _set(builder, "invoices", {"invoice_id": "i3"}, status="void", updated_at="2026-02-01T10:00:00+00:00")
    _set(builder, "invoices", {"invoice_id": "i4"}, updated_at="2026-02-01 11:00")  # not ISO UTC text
    builder.line("p1", "i4", "", quantity="2")  # a line without its line_id holds i4
    builder.invoice("p1", "late", updated_at="2025-06-01T09:00:00Z").line("p1", "late", "l1")
    builder.invoice("p1", "draft", status="draft", updated_at="2025-06-01T09:00:00Z")
    builder.line("p1", "ghost", "l1")  # an orphan line
    i1_again = dict(builder.rows["invoices"][0], reference="again", updated_at="2026-02-02T08:00:00Z")
    builder.rows["invoices"].append(i1_again)  # i1 twice: held with DUPLICATE_KEY
    run()

    fresh = settings.model_copy(update={"warehouse": tmp_path / "fresh" / "w.duckdb", "out": tmp_path / "fo"})
    run_plain(fresh, flow="backfill", emit_batches=False)
    nightly, backfill = tables(settings.warehouse), tables(fresh.warehouse)
    for table in ("invoice_tracking", "line_tracking", "exceptions"):
        assert nightly[table].equals(backfill[table]), f"{table} differs"
    states = dict(_query(settings, "select invoice_id, invoice_state from invoice_tracking"))
    assert states == {"i1": "held", "i2": "held", "i4": "held", "i9": "held", "late": "ready"}
