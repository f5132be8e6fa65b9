"""Every exception code says what to do: a one-sentence `fix` in the finance lead's words, built from the
same row and value as its detail, in `exceptions`, in `held_invoices` and in the HTML report.

One test per code of the vocabulary (transforms/vocabulary.py CODES): a code added without a scenario
here, or whose rows carry no fix, fails. Each scenario is a source (or a push to the Xero double, a real
server) that makes the code, and the value its fix must name."""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pytest

from flows.run.pipeline import run_push, run_retrack, run_verify
from tests.doubles.xero import XeroDouble
from tests.flows.test_push import SECRET, _connections, _organisation, _put
from tests.flows.test_verify_retrack import _edit_in_xero, _in_xero
from tests.source_builder import SourceBuilder
from transforms.vocabulary import CODES


def same_category(b: SourceBuilder) -> None:
    b.template("p1", "svc-audit", "Audit", option="opt-pb")  # a Partner option, as the client's
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-audit")


def consolidation_tax_mismatch(b: SourceBuilder) -> None:
    b.client("p1", "c-one", "One Line Ltd", option="opt-pa", consolidate=True)
    b.invoice("p1", "i1", client_id="c-one")
    b.adhoc_line("p1", "i1", "l1", tax_type="OUTPUT2")
    b.adhoc_line("p1", "i1", "l2", tax_type="EXEMPTOUTPUT")


def unknown_option(b: SourceBuilder) -> None:
    b.client("p1", "c-lost", "Lost Ltd", option="opt-gone")
    b.invoice("p1", "i1", client_id="c-lost")
    b.adhoc_line("p1", "i1", "l1")


def archived_option(b: SourceBuilder) -> None:
    b.option("p1", "opt-old", "cat-partner", "Old Partner", status="ARCHIVED")
    b.client("p1", "c-old", "Old Ltd", option="opt-old")
    b.invoice("p1", "i1", client_id="c-old")
    b.adhoc_line("p1", "i1", "l1")


def invalid_value(b: SourceBuilder) -> None:
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", quantity="two")


def unknown_client(b: SourceBuilder) -> None:
    b.approved_invoice("p1", "i1", client_id="c-nobody")


def unknown_service(b: SourceBuilder) -> None:
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-gone")


def unknown_team_member(b: SourceBuilder) -> None:
    b.client("p1", "c-orphan", "Orphan Ltd", option="opt-pa", owner="tm-gone")
    b.invoice("p1", "i1", client_id="c-orphan")
    b.adhoc_line("p1", "i1", "l1")


def missing_account_code(b: SourceBuilder) -> None:
    b.template("p1", "svc-nocode", "Payroll", option="opt-book", account_code=None)
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-nocode")


def missing_tax_type(b: SourceBuilder) -> None:
    b.invoice("p1", "i1")
    b.adhoc_line("p1", "i1", "l-untaxed", tax_type=None)


def duplicate_key(b: SourceBuilder) -> None:
    b.client("p1", "c1", "Acme Widgets Ltd (again)", option="opt-pb")
    b.approved_invoice("p1", "i1")


def empty_invoice(b: SourceBuilder) -> None:
    b.invoice("p1", "i1")


def orphan_line(b: SourceBuilder) -> None:
    b.approved_invoice("p1", "i1")
    b.line("p1", "i-none", "l9")


# code -> (the source that makes it, values its fix names)
RUN_SCENARIOS: dict[str, tuple[Callable[[SourceBuilder], None], tuple[str, ...]]] = {
    "SAME_CATEGORY": (same_category, ("client 'c1'", "'Partner'", "service template 'svc-audit'")),
    "CONSOLIDATION_TAX_MISMATCH": (consolidation_tax_mismatch, ("INV-i1", "client 'c-one'")),
    "UNKNOWN_OPTION": (unknown_option, ("'opt-gone'", "practice 'p1'", "client 'c-lost'")),
    "ARCHIVED_OPTION": (archived_option, ("'Partner: Old Partner'", "client 'c-old'")),
    "INVALID_VALUE": (invalid_value, ("quantity", "invoice_lines.csv row 1")),
    "UNKNOWN_CLIENT": (unknown_client, ("'c-nobody'", "practice 'p1'", "INV-i1")),
    "UNKNOWN_SERVICE": (unknown_service, ("'svc-gone'", "practice 'p1'", "line 'l1'")),
    "UNKNOWN_TEAM_MEMBER": (unknown_team_member, ("'tm-gone'", "client 'c-orphan'")),
    "MISSING_ACCOUNT_CODE": (missing_account_code, ("line 'l1'", "an account code", "'svc-nocode'")),
    "MISSING_TAX_TYPE": (missing_tax_type, ("line 'l-untaxed'", "a tax type")),
    "DUPLICATE_KEY": (duplicate_key, ("clients.csv rows 1, 2", "client_id 'c1'")),
    "EMPTY_INVOICE": (empty_invoice, ("INV-i1", "invoice_lines.csv")),
    "ORPHAN_LINE": (orphan_line, ("'i-none'", "line 'l9'", "practice 'p1'")),
}


def exception_rows(warehouse, code: str) -> list[dict]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cursor = con.execute("select * from exceptions where code = ?", [code])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def assert_fixes(rows: list[dict], code: str, names: tuple[str, ...]) -> None:
    assert rows, f"the scenario for {code} made no {code} exception"
    for row in rows:
        fix = row["fix"]
        assert fix and fix != row["detail"] and "\n" not in fix, row
        assert fix[0].isupper() and not fix.endswith("."), fix
        for name in names:
            assert name in fix, f"{code}: the fix does not name {name}: {fix!r}"


@pytest.mark.parametrize("code", CODES)
def test_every_code_says_what_to_do_from_the_same_row_and_value(code, tmp_path, settings_for, run_plain):
    if code in RUN_SCENARIOS:
        make, names = RUN_SCENARIOS[code]
        b = SourceBuilder()
        make(b)
        settings = settings_for(b.write(tmp_path / "source"))
        run_plain(settings)
        assert_fixes(exception_rows(settings.warehouse, code), code, names)
    elif code in XERO_SCENARIOS:
        settings, names = XERO_SCENARIOS[code](tmp_path, settings_for, run_plain)
        assert_fixes(exception_rows(settings.warehouse, code), code, names)
    else:
        pytest.fail(f"{code} has no scenario here: give it a fix where it is made, and a scenario")


# XERO_ codes: what `trackline push` finds in the practice's Xero organisation (the double) -------------


def _pushed(tmp_path, settings_for, run_plain, xero: XeroDouble, before_push) -> object:
    b = SourceBuilder()
    b.approved_invoice("p1", "i1")
    settings = settings_for(
        b.write(tmp_path / "source"),
        xero_api_url=xero.api_url,
        xero_token_url=xero.token_url,
        xero_connections=_connections(
            tmp_path / "connections.json",
            {
                "p1": {
                    "tenant_id": "tenant-p1",
                    "client_id": "app-tenant-p1",
                    "client_secret": SECRET,
                    "grant": "client_credentials",
                }
            },
        ),
        xero_minute_seconds=1.0,
        xero_retry_wait_seconds=0.05,
        xero_retry_wait_max_seconds=0.2,
        xero_csv_settings=tmp_path / "none.json",
    )
    _organisation(xero)
    run_plain(settings)
    before_push(xero)
    run_push(settings, None, as_tasks=False)
    return settings


def xero_rejected(tmp_path, settings_for, run_plain):
    with XeroDouble(speed=60) as xero:
        settings = _pushed(tmp_path, settings_for, run_plain, xero, lambda x: _put(x, "tenant-p1", "INV-i1"))
    return settings, ("invoice INV-i1", "Xero's message")


def xero_option_not_active(tmp_path, settings_for, run_plain):
    with XeroDouble(speed=60) as xero:
        settings = _pushed(
            tmp_path,
            settings_for,
            run_plain,
            xero,
            lambda x: x.set_option_status("tenant-p1", "Department", "Central Bookkeeping Team", "ARCHIVED"),
        )
    return settings, ("option 'Central Bookkeeping Team' of tracking category 'Department'", "ACTIVE")


def _changed_source(folder, partner: str = "opt-pa", unit_amount: str = "100.00") -> None:
    """The pushed source (`_pushed`) as the practice app has it now."""
    b = SourceBuilder()
    b.rows["clients"][0]["tracking_option_id"] = partner
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", unit_amount=unit_amount)
    b.write(folder)


def xero_tracking_dropped(tmp_path, settings_for, run_plain):
    with XeroDouble(speed=60) as xero:
        settings = _pushed(tmp_path, settings_for, run_plain, xero, lambda x: None)
        (line,) = _in_xero(xero)["INV-i1"]["LineItems"]
        _edit_in_xero(xero, "INV-i1", [{"LineItemID": line["LineItemID"], "Tracking": []}])
        run_verify(settings, None, as_tasks=False)
    return settings, ("Partner A", "ACTIVE", "invoice INV-i1", "trackline retrack --apply")


def sent_invoice_changed(tmp_path, settings_for, run_plain):
    with XeroDouble(speed=60) as xero:
        settings = _pushed(tmp_path, settings_for, run_plain, xero, lambda x: None)
        _changed_source(settings.source, unit_amount="150.00")
        run_plain(settings)
    return settings, ("Invoice INV-i1", "edit it in Xero", "credit it")


def retrack_blocked(tmp_path, settings_for, run_plain):
    with XeroDouble(speed=60) as xero:
        settings = _pushed(tmp_path, settings_for, run_plain, xero, lambda x: None)
        xero.mark_paid("tenant-p1", "INV-i1")
        _changed_source(settings.source, partner="opt-pb")
        run_plain(settings)
        run_retrack(settings, None, as_tasks=False)
    return settings, ("invoice INV-i1", "by hand in Xero")


XERO_SCENARIOS = {
    "XERO_REJECTED": xero_rejected,
    "XERO_OPTION_NOT_ACTIVE": xero_option_not_active,
    "XERO_TRACKING_DROPPED": xero_tracking_dropped,
    "SENT_INVOICE_CHANGED": sent_invoice_changed,
    "RETRACK_BLOCKED": retrack_blocked,
}


def test_held_invoices_and_the_report_show_each_invoices_fix(tmp_path, settings_for, run_plain):
    from flows.reports.html import write_reports
    from flows.reports.views import create_views

    b = SourceBuilder()
    unknown_client(b)
    settings = settings_for(b.write(tmp_path / "source"))
    run_plain(settings)
    con = duckdb.connect(str(settings.warehouse))
    try:
        create_views(con)
        ((fix, first_error),) = con.execute("select fix, first_error from held_invoices").fetchall()
        (exception_fix,) = con.execute("select fix from exceptions").fetchone()
    finally:
        con.close()
    assert fix == exception_fix and "'c-nobody'" in fix and "c-nobody" in first_error
    html = write_reports(settings.warehouse, tmp_path / "reports")[-1].read_text(encoding="utf-8")
    assert "what to do" in html
    assert "Add client &#x27;c-nobody&#x27;" in html or "Add client 'c-nobody'" in html
