"""`trackline verify` and `trackline retrack` against the Xero double (tests/doubles/xero.py): contract
section 6, Verify and Retrack. Every test pushes p1's invoices for real first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import pytest

from flows.faults import RETRACK_POINTS
from flows.reports.views import reading
from flows.run.pipeline import run_push, run_retrack, run_verify
from flows.xero.retrack import plan_moves
from tests.doubles.xero import XeroDouble
from tests.source_builder import SourceBuilder

TRACKLINE = str(Path(sys.executable).with_name("trackline"))
SECRET = "s3cret-of-p1-never-shown"
TENANT = "tenant-p1"


def _source(c1_partner: str = "opt-pa", unit_amount_of_i2: str = "100.00") -> SourceBuilder:
    """i1..i3 for client c1 (Partner A, unless moved), i4 and i5 for client c2 (Partner B); two lines each,
    the second with a template of its own (Department)."""
    b = SourceBuilder()
    b.rows["clients"][0]["tracking_option_id"] = c1_partner
    b.client("p1", "c2", "Bravo Books Ltd", option="opt-pb", owner="tm-owner")
    for n in range(1, 6):
        b.invoice("p1", f"i{n}", client_id="c1" if n <= 3 else "c2", invoice_number=f"INV-{n:03d}")
        b.line("p1", f"i{n}", "l1", unit_amount=unit_amount_of_i2 if n == 2 else f"{100 * n}.50")
        b.line("p1", f"i{n}", "l2", template="svc-accounts", quantity="2", unit_amount="12.3456")
    return b


@pytest.fixture
def xero():
    with XeroDouble(speed=60) as double:
        yield double


@pytest.fixture
def world(tmp_path, settings_for, run_plain, xero):
    """p1's five invoices backfilled, batched and pushed to p1's organisation in the double."""
    connections = tmp_path / "connections.json"
    connections.write_text(
        json.dumps(
            {
                "p1": {
                    "tenant_id": TENANT,
                    "client_id": f"app-{TENANT}",
                    "client_secret": SECRET,
                    "grant": "client_credentials",
                }
            }
        )
    )
    connections.chmod(0o600)
    settings = settings_for(
        _source().write(tmp_path / "source"),
        batch_max_invoices=2,
        xero_api_url=xero.api_url,
        xero_token_url=xero.token_url,
        xero_connections=connections,
        xero_minute_seconds=1.0,
        xero_retry_wait_seconds=0.05,
        xero_retry_wait_max_seconds=0.2,
    )
    run_plain(settings)
    xero.add_organisation(TENANT, client_id=f"app-{TENANT}", client_secret=SECRET)
    xero.add_tracking_category(TENANT, "Partner", ["Partner A", "Partner B"])
    xero.add_tracking_category(TENANT, "Department", ["Central Bookkeeping Team", "Tax Team"])
    assert run_push(settings, None, as_tasks=False).sent == {"p1": 5}
    return settings


def _query(settings, sql: str, params=()):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _in_xero(xero: XeroDouble) -> dict[str, dict]:
    return {i["InvoiceNumber"]: i for i in xero.invoices(TENANT)}


def _tracking(line: dict) -> list[tuple[str, str]]:
    return [(t["Name"], t["Option"]) for t in line["Tracking"]]


def _edit_in_xero(xero: XeroDouble, number: str, line_items: list[dict]) -> None:
    """A person editing the invoice in Xero's own UI (through the API, as the UI does)."""
    token = httpx.post(
        xero.token_url, data={"grant_type": "client_credentials"}, auth=(f"app-{TENANT}", SECRET)
    ).json()["access_token"]
    invoice = _in_xero(xero)[number]
    httpx.post(
        f"{xero.api_url}/Invoices/{invoice['InvoiceID']}",
        headers={"Authorization": f"Bearer {token}", "xero-tenant-id": TENANT, "Accept": "application/json"},
        json={"Invoices": [{"LineItems": line_items}]},
    ).raise_for_status()


def _move_c1_to_partner_b(world, run_plain, **changes) -> None:
    _source(c1_partner="opt-pb", **changes).write(Path(world.source))
    run_plain(world)


def _plan(settings) -> list[tuple]:
    return _query(
        settings,
        """select invoice_number, line_no, line_amount, xero_tracking1_option, tracking1_option, reason
           from retrack_plan order by invoice_number, line_no""",
    )


def _moves(settings) -> list[dict]:
    with reading(Path(settings.warehouse)) as con:
        return plan_moves(con, None)


# Verify -------------------------------------------------------------------------------------------------


def test_verify_finds_an_option_xero_no_longer_holds_and_records_each_invoices_check(world, xero):
    invoice = _in_xero(xero)["INV-002"]
    first, second = invoice["LineItems"]
    _edit_in_xero(
        xero,
        "INV-002",
        [{"LineItemID": first["LineItemID"], "Tracking": []}, {"LineItemID": second["LineItemID"]}],
    )

    summary = run_verify(world, None, as_tasks=False)

    assert summary["read"] == {"p1": 5} and summary["dropped"] == {"p1": 1}
    ((invoice_id, line_id, detail),) = _query(
        world, "select invoice_id, line_id, detail from exceptions where code = 'XERO_TRACKING_DROPPED'"
    )
    assert (invoice_id, line_id) == ("i2", "l1")
    assert (
        "INV-002 line 1" in detail
        and "sent Partner: Partner A" in detail
        and "Xero has no tracking" in detail
    )
    checked = _query(world, "select count(distinct invoice_id), count(*) from xero_readback")
    assert checked == [(5, 10)]
    reads = [r for r in xero.requests if r["method"] == "GET" and "IDs=" in r["path"]]
    assert len(reads) == 1 and "page=1" in reads[0]["path"]
    assert _query(
        world, "select invoices_checked, invoices_to_check, lines_dropped from xero_verify_status"
    ) == [(5, 0, 1)]


def test_verify_closes_a_drop_once_xero_holds_the_tracking_again(world, xero):
    first, second = _in_xero(xero)["INV-002"]["LineItems"]
    kept = {"LineItemID": second["LineItemID"]}
    _edit_in_xero(xero, "INV-002", [{"LineItemID": first["LineItemID"], "Tracking": []}, kept])
    assert run_verify(world, None, as_tasks=False)["dropped"] == {"p1": 1}
    as_sent = [{"Name": name, "Option": option} for name, option in _tracking(first)]
    _edit_in_xero(xero, "INV-002", [{"LineItemID": first["LineItemID"], "Tracking": as_sent}, kept])
    assert run_verify(world, None, as_tasks=False)["dropped"] == {}
    assert _query(world, "select count(*) from exceptions where code = 'XERO_TRACKING_DROPPED'") == [(0,)]


def test_verify_reads_at_most_its_cap_newest_first_and_the_rest_wait_for_the_next_run(world, xero):
    capped = world.model_copy(update={"xero_verify_max_invoices": 2})
    first = run_verify(capped, None, as_tasks=False)
    assert first["read"] == {"p1": 2} and first["waiting"] == {"p1": 3}
    assert run_verify(capped, None, as_tasks=False)["read"] == {"p1": 2}
    assert run_verify(capped, None, as_tasks=False)["read"] == {"p1": 2}
    assert _query(world, "select count(distinct invoice_id) from xero_readback") == [(5,)]
    assert _query(world, "select invoices_read, invoices_waiting from xero_checks order by started_at") == [
        (2, 3),
        (2, 3),
        (2, 3),
    ]


# The plan ---------------------------------------------------------------------------------------------


def test_a_partner_change_and_a_backfill_yield_a_plan_of_exactly_the_affected_lines_and_totals(
    world, xero, run_plain
):
    batches = _query(world, "select count(*) from xero_batches")
    _move_c1_to_partner_b(world, run_plain)

    assert _query(world, "select count(*) from xero_batches") == batches, "nothing in Xero is batched again"
    plan = _plan(world)
    assert [(r[0], r[1]) for r in plan] == [(f"INV-00{n}", line) for n in (1, 2, 3) for line in (1, 2)]
    assert all(r[3:] == ("Partner A", "Partner B", "client") for r in plan)
    amounts = {(r[0], r[1]): r[2] for r in plan}
    assert amounts[("INV-001", 1)] == Decimal("100.50") and amounts[("INV-001", 2)] == Decimal("24.69")
    (move,) = _moves(world)
    assert (move["category"], move["from_option"], move["to_option"]) == ("Partner", "Partner A", "Partner B")
    assert (move["invoices"], move["lines"]) == (3, 6)
    assert move["amount"] == Decimal("100.50") + Decimal("100.00") + Decimal("300.50") + 3 * Decimal("24.69")


def test_the_plan_is_empty_when_nothing_changed(world, xero, run_plain, prefect_api):
    run_plain(world)
    assert _plan(world) == [] and _moves(world) == []
    assert _query(world, "select count(*) from exceptions where code = 'SENT_INVOICE_CHANGED'") == [(0,)]
    done = _cli(world, prefect_api, "retrack")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the retrack plan is empty" in done.stdout


def test_an_amount_changed_after_sending_is_sent_invoice_changed_never_retracked_nor_batched(
    world, xero, run_plain
):
    batches = _query(world, "select count(*) from xero_batches")
    _move_c1_to_partner_b(world, run_plain, unit_amount_of_i2="150.00")

    ((detail,),) = _query(world, "select detail from exceptions where code = 'SENT_INVOICE_CHANGED'")
    assert "INV-002" in detail and "line 1 unit_amount 100.0000 -> 150.0000" in detail
    assert "credit it, or edit it in Xero" in detail
    assert [r[0] for r in _plan(world)] == ["INV-001", "INV-001", "INV-003", "INV-003"]
    assert _query(world, "select count(*) from xero_batches") == batches
    assert _query(world, "select hold_codes from held_invoices where invoice_id = 'i2'") == [
        ("SENT_INVOICE_CHANGED",)
    ]
    run_retrack(world, None, as_tasks=False)
    assert [line["UnitAmount"] for line in _in_xero(xero)["INV-002"]["LineItems"]][0] == Decimal("100.0000")


def test_a_nightly_looks_at_invoices_recorded_in_xero_since_the_last_whole_run_not_only_its_own(
    world, run_plain
):
    """A nightly compares with Xero the invoices it recomputed, and those whose lines in Xero were recorded
    since (a push, a retrack), not every invoice ever sent: here it does not recompute i2, yet sees it."""
    source = _source()
    for row in source.rows["invoices"]:
        if row["invoice_id"] == "i2":
            row["updated_at"] = "2026-01-01T09:00:00Z"  # before the watermark: no nightly recomputes it
    source.write(Path(world.source))
    run_plain(world, "nightly")
    assert _query(world, "select count(*) from exceptions where code = 'SENT_INVOICE_CHANGED'") == [(0,)]
    with duckdb.connect(str(world.warehouse)) as con:
        con.execute(
            """update xero_sent_lines set unit_amount = 90, tracked_at = now()
               where invoice_id = 'i2' and line_no = 1"""
        )

    summary = run_plain(world, "nightly")

    assert summary.invoices_considered == 4, "the four invoices updated at the watermark, not i2"
    ((detail,),) = _query(world, "select detail from exceptions where code = 'SENT_INVOICE_CHANGED'")
    assert "INV-002" in detail and "line 1 unit_amount 90.0000 -> 100.0000" in detail
    run_plain(world, "nightly")
    assert _query(world, "select count(*) from exceptions where code = 'SENT_INVOICE_CHANGED'") == [(1,)]


# Apply ------------------------------------------------------------------------------------------------


def _unchanged(line: dict) -> tuple:
    return tuple(line[k] for k in ("LineItemID", "Description", "Quantity", "UnitAmount", "LineAmount", "AccountCode", "TaxType"))  # fmt: skip


def test_apply_moves_only_the_tracking_and_verify_confirms_it(world, xero, run_plain):
    before = _in_xero(xero)
    _move_c1_to_partner_b(world, run_plain)

    summary = run_retrack(world, None, as_tasks=False)

    assert summary["updated"] == {"p1": 3} and summary["blocked"] == {}
    after = _in_xero(xero)
    for number in before:
        assert [_unchanged(line) for line in after[number]["LineItems"]] == [
            _unchanged(line) for line in before[number]["LineItems"]
        ]
        assert after[number]["Total"] == before[number]["Total"]
        partner = "Partner B" if number in ("INV-001", "INV-002", "INV-003", "INV-004", "INV-005") else None
        assert all(("Partner", partner) in _tracking(line) for line in after[number]["LineItems"])
        assert [_tracking(line)[1:] for line in after[number]["LineItems"]] == [
            _tracking(line)[1:] for line in before[number]["LineItems"]
        ], "slot 2 kept"
    posts = [r for r in xero.requests if r["method"] == "POST" and "/Invoices/" in r["path"]]
    assert len(posts) == 3 and all(len(r["idempotency_key"]) <= 128 for r in posts)
    assert _plan(world) == []
    assert _query(world, "select count(*), count(distinct invoice_id) from xero_retracks") == [(6, 3)]
    checked = run_verify(world, None, as_tasks=False)
    assert checked["read"] == {"p1": 5} and checked["dropped"] == {}
    assert run_retrack(world, None, as_tasks=False)["updated"] == {}


def test_the_report_shows_the_open_plan_then_verifys_check_of_the_new_tracking(world, xero, run_plain):
    from flows.reports.html import write_reports

    _move_c1_to_partner_b(world, run_plain)
    page = write_reports(Path(world.warehouse), Path(world.out))[-1].read_text()
    assert "Partner A → Partner B" in page and "The retrack plan is empty" not in page

    run_retrack(world, None, as_tasks=False)
    run_verify(world, None, as_tasks=False)
    page = write_reports(Path(world.warehouse), Path(world.out))[-1].read_text()
    assert "The retrack plan is empty" in page
    ((checked_at,),) = _query(world, "select strftime(max(read_at), '%Y-%m-%d %H:%M UTC') from xero_readback")
    assert checked_at in page
    by_option = _query(
        world,
        """select option, sum(net_amount) from tracking_by_option
           where practice_id = 'p1' and category = 'Partner' group by 1""",
    )
    in_xero = _query(world, "select tracking1_option, sum(line_amount) from xero_sent_lines group by 1")
    assert by_option == in_xero == [("Partner B", sum(a for _, a in in_xero))]


@pytest.mark.parametrize(
    "refusal, messages",
    [
        ("paid", ["Invoice not of valid status for modification", "payment or credit note allocated"]),
        ("part-paid", ["This document cannot be edited as it has a payment or credit note allocated to it."]),
        ("credited", ["This document cannot be edited as it has a payment or credit note allocated to it."]),
        ("voided", ["Invoice not of valid status for modification"]),
        ("locked", ["The document cannot be edited as it is currently dated before the period lock date."]),
    ],
)
def test_an_invoice_xero_will_not_edit_is_retrack_blocked_with_xeros_reason(
    world, xero, run_plain, refusal, messages
):
    {
        "paid": lambda: xero.mark_paid(TENANT, "INV-001"),
        "part-paid": lambda: xero.mark_paid(TENANT, "INV-001", "10.00"),
        "credited": lambda: xero.mark_credited(TENANT, "INV-001"),
        "voided": lambda: xero.void(TENANT, "INV-001"),
        "locked": lambda: xero.set_lock_date(TENANT, "2026-01-31"),
    }[refusal]()
    before = _in_xero(xero)["INV-001"]
    _move_c1_to_partner_b(world, run_plain)

    summary = run_retrack(world, None, as_tasks=False)

    blocked = {"INV-001", "INV-002", "INV-003"} if refusal == "locked" else {"INV-001"}
    assert summary["blocked"] == {"p1": len(blocked)} and summary["updated"] == (
        {} if refusal == "locked" else {"p1": 2}
    )
    details = {
        r[0]: r[1]
        for r in _query(
            world,
            "select i.invoice_number, e.detail from exceptions e join xero_invoices i using (practice_id, invoice_id) "
            "where e.code = 'RETRACK_BLOCKED'",
        )
    }
    assert set(details) == blocked
    assert all(m in details["INV-001"] for m in messages)
    assert _in_xero(xero)["INV-001"]["LineItems"] == before["LineItems"]
    # Not asked again for the same update; still in the plan, marked with Xero's reason.
    posts = len([r for r in xero.requests if "/Invoices/" in r["path"]])
    assert run_retrack(world, None, as_tasks=False)["blocked"] == {}
    assert len([r for r in xero.requests if "/Invoices/" in r["path"]]) == posts
    assert _query(world, "select count(*) from exceptions where code = 'RETRACK_BLOCKED'") == [
        (len(blocked),)
    ]
    assert all(
        r[0] for r in _query(world, "select blocked from retrack_plan where invoice_number = 'INV-001'")
    )


def test_a_block_is_closed_once_the_plan_no_longer_asks_for_that_update(world, xero, run_plain):
    xero.mark_paid(TENANT, "INV-001")
    _move_c1_to_partner_b(world, run_plain)
    assert run_retrack(world, None, as_tasks=False)["blocked"] == {"p1": 1}

    _source().write(Path(world.source))  # the client goes back to Partner A
    run_plain(world)
    summary = run_retrack(world, None, as_tasks=False)

    assert summary["updated"] == {"p1": 2}  # the two Xero did update go back too
    assert _query(world, "select count(*) from exceptions where code = 'RETRACK_BLOCKED'") == [(0,)]
    assert _plan(world) == []


# A retrack killed at any point --------------------------------------------------------------------------


def _env(settings, api: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TRACKLINE_") and k != "PREFECT_LOGGING_LEVEL"
    }
    env.update(
        PREFECT_API_URL=api,
        DO_NOT_TRACK="1",
        TRACKLINE_XERO_API_URL=settings.xero_api_url,
        TRACKLINE_XERO_TOKEN_URL=settings.xero_token_url,
        TRACKLINE_XERO_MINUTE_SECONDS="1",
        TRACKLINE_XERO_RETRY_WAIT_SECONDS="0.05",
        TRACKLINE_XERO_RETRY_WAIT_MAX_SECONDS="0.2",
        **extra,
    )
    return env


def _cli(settings, api: str, *command: str, **extra: str) -> subprocess.CompletedProcess:
    full = [
        TRACKLINE, *command, "--warehouse", str(settings.warehouse), "--out", str(settings.out),
        "--connections", str(settings.xero_connections),
    ]  # fmt: skip
    return subprocess.run(full, env=_env(settings, api, **extra), capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("point", RETRACK_POINTS)
def test_a_retrack_killed_at_any_point_and_run_again_updates_each_invoice_once(
    world, xero, run_plain, prefect_api, point
):
    _move_c1_to_partner_b(world, run_plain)
    killed = _cli(world, prefect_api, "retrack", "--apply", TRACKLINE_KILL_AT=point)
    assert killed.returncode == -9, killed.stderr[-2000:]

    again = _cli(world, prefect_api, "retrack", "--apply")
    assert again.returncode == 0, again.stderr[-2000:]
    by_id = {i["InvoiceID"]: i["InvoiceNumber"] for i in xero.invoices(TENANT)}
    posts: dict[str, int] = {}
    for r in xero.requests:
        if r["method"] == "POST" and "/Invoices/" in r["path"] and not r["replayed"]:
            number = by_id[r["path"].split("/Invoices/")[1].split("?")[0]]
            posts[number] = posts.get(number, 0) + 1
    assert posts == {"INV-001": 1, "INV-002": 1, "INV-003": 1}
    assert all(
        ("Partner", "Partner B") in _tracking(line) for i in xero.invoices(TENANT) for line in i["LineItems"]
    )
    assert _plan(world) == []
    assert _query(world, "select count(*) from xero_retracks") == [(6,)]


def test_the_cli_prints_the_plan_with_totals_per_practice_and_move(world, xero, run_plain, prefect_api):
    _move_c1_to_partner_b(world, run_plain)
    done = _cli(world, prefect_api, "retrack", COLUMNS="200")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Partner A → Partner B" in done.stdout
    assert "p1: 6 line moves, £" in done.stdout


def test_the_nightly_flow_verifies_after_its_push(world, xero, prefect_api):
    from flows.run.pipeline import nightly_flow

    summary = nightly_flow(world.model_copy(update={"push_after_nightly": True}))
    assert summary["verify"]["read"] == {"p1": 5} and summary["verify"]["dropped"] == {}
