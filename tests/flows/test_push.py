"""`trackline push` against the Xero double (tests/doubles/xero.py), one test per behaviour of contract
section 6: connections and tokens, the requests and Xero's limits, every outcome recorded, exactly once."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flows.faults import PUSH_POINTS
from flows.run.pipeline import run_push
from tests.doubles.xero import Limits as XeroLimits
from tests.doubles.xero import XeroDouble
from tests.source_builder import SourceBuilder

TRACKLINE = str(Path(sys.executable).with_name("trackline"))
SECRET = "s3cret-of-p1-never-shown"


def _source(invoices: int = 5) -> SourceBuilder:
    b = SourceBuilder()
    for n in range(1, invoices + 1):
        b.invoice("p1", f"i{n}", invoice_number=f"INV-{n:03d}")
        b.line("p1", f"i{n}", "l1")
        b.line("p1", f"i{n}", "l2", template="svc-accounts")
    return b


def _organisation(xero: XeroDouble, tenant: str = "tenant-p1", **connection) -> None:
    xero.add_organisation(tenant, client_id=f"app-{tenant}", client_secret=SECRET, **connection)
    xero.add_tracking_category(tenant, "Partner", ["Partner A", "Partner B"])
    xero.add_tracking_category(tenant, "Department", ["Central Bookkeeping Team", "Tax Team"])


def _connections(path: Path, entries: dict) -> Path:
    path.write_text(json.dumps(entries))
    path.chmod(0o600)
    return path


@pytest.fixture
def xero():
    with XeroDouble(speed=60) as double:
        yield double


@pytest.fixture
def world(tmp_path, settings_for, run_plain, xero):
    """p1's five invoices backfilled into batches of two, and p1's organisation in the double."""
    settings = settings_for(
        _source().write(tmp_path / "source"),
        batch_max_invoices=2,
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
        xero_minute_seconds=1.0,  # the double's minute (speed 60)
        xero_retry_wait_seconds=0.05,
        xero_retry_wait_max_seconds=0.2,
    )
    run_plain(settings)
    _organisation(xero)
    return settings


def _query(settings, sql: str, params=()):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _sent_numbers(xero: XeroDouble, tenant: str = "tenant-p1") -> list[str]:
    return sorted(i["InvoiceNumber"] for i in xero.invoices(tenant))


def test_push_sends_every_batch_once_and_records_xeros_invoice_and_line_item_ids(world, xero):
    summary = run_push(world, None, as_tasks=False)

    assert summary.sent == {"p1": 5} and summary.batches_sent == 3
    assert _sent_numbers(xero) == [f"INV-{n:03d}" for n in range(1, 6)]
    rows = _query(
        world, "select invoice_number, xero_invoice_id, line_item_ids, digest from xero_sent_invoices"
    )
    by_number = {i["InvoiceNumber"]: i for i in xero.invoices("tenant-p1")}
    for number, xero_id, line_items, digest in rows:
        assert xero_id == by_number[number]["InvoiceID"]
        assert line_items == [line["LineItemID"] for line in by_number[number]["LineItems"]]
        assert len(digest) == 32
    puts = [r for r in xero.requests if r["method"] == "PUT"]
    assert all("summarizeErrors=false" in r["path"] and "unitdp=4" in r["path"] for r in puts)
    assert len({r["idempotency_key"] for r in puts}) == 3 and all(
        len(r["idempotency_key"]) <= 128 for r in puts
    )


def test_a_second_push_sends_nothing_more(world, xero):
    run_push(world, None, as_tasks=False)
    again = run_push(world, None, as_tasks=False)
    assert again.sent == {} and again.batches_sent == 0
    assert [xero.count_created("tenant-p1", f"INV-{n:03d}") for n in range(1, 6)] == [1] * 5


def test_every_request_is_recorded_with_xeros_limit_headers(world, xero):
    run_push(world, None, as_tasks=False)
    rows = _query(
        world,
        "select purpose, method, status, outcome, min_limit_remaining, day_limit_remaining from xero_requests",
    )
    purposes = sorted(r[0] for r in rows)
    assert purposes.count("send") == 3 and "categories" in purposes and "token" in purposes
    assert all(r[3] == "ok" for r in rows)
    assert all(r[4] is not None and r[5] is not None for r in rows if r[0] != "token")


def test_an_invoice_xero_refuses_is_an_exception_quoting_xero_and_sent_again_only_when_it_changes(
    world, xero, tmp_path, run_plain
):
    _put(xero, "tenant-p1", "INV-003")  # the organisation has an INV-003: Xero refuses a second one
    summary = run_push(world, None, as_tasks=False)

    assert summary.sent == {"p1": 4} and summary.rejected == {"p1": 1}
    ((detail,),) = _query(
        world, "select detail from exceptions where code = 'XERO_REJECTED' and invoice_id = 'i3'"
    )
    assert "INV-003" in detail and "Invoice # must be unique." in detail
    assert run_push(world, None, as_tasks=False).rejected == {}  # the same content is not sent again

    # The practice renumbers it: what would be sent changes, so it is batched and sent again.
    builder = _source()
    builder.rows["invoices"][2]["invoice_number"] = "INV-003-B"
    builder.write(Path(world.source))
    run_plain(world)
    assert run_push(world, None, as_tasks=False).sent == {"p1": 1}
    assert "INV-003-B" in _sent_numbers(xero)
    assert _query(world, "select count(*) from exceptions where code = 'XERO_REJECTED'") == [(0,)]


def _put(
    xero: XeroDouble, tenant: str, number: str, app: str | None = None, refresh_token: str | None = None
) -> None:
    """An invoice the organisation already has (made in Xero by hand, say)."""
    import httpx

    grant = (
        {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if refresh_token
        else {"grant_type": "client_credentials"}
    )
    answer = httpx.post(xero.token_url, data=grant, auth=(app or f"app-{tenant}", SECRET))
    answer.raise_for_status()
    token = answer.json()
    httpx.put(
        xero.api_url + "/Invoices",
        headers={
            "Authorization": f"Bearer {token['access_token']}",
            "xero-tenant-id": tenant,
            "Accept": "application/json",
        },
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"Name": "Walk-in"},
                    "InvoiceNumber": number,
                    "Date": "2026-01-01",
                    "DueDate": "2026-01-31",
                    "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200"}],
                }
            ]
        },
    ).raise_for_status()


def test_tracking_xero_does_not_have_active_is_not_sent_until_it_is(world, xero):
    xero.set_option_status("tenant-p1", "Department", "Central Bookkeeping Team", "ARCHIVED")
    summary = run_push(world, None, as_tasks=False)

    assert summary.sent == {} and summary.not_active == {"p1": 5}
    details = [
        r[0] for r in _query(world, "select detail from exceptions where code = 'XERO_OPTION_NOT_ACTIVE'")
    ]
    assert len(details) == 5 and all("Central Bookkeeping Team" in d for d in details)
    assert _sent_numbers(xero) == []

    xero.set_option_status("tenant-p1", "Department", "Central Bookkeeping Team", "ACTIVE")
    assert run_push(world, None, as_tasks=False).sent == {"p1": 5}
    assert _query(world, "select count(*) from exceptions where code like 'XERO_%'") == [(0,)]


def test_a_practice_with_batches_and_no_connection_is_reported_and_skipped(world, xero):
    _connections(Path(world.xero_connections), {})
    summary = run_push(world, None, as_tasks=False)
    assert summary.skipped == {"p1": "no Xero connection for it in the connections file"}
    assert _sent_numbers(xero) == []


def test_a_connections_file_others_can_read_is_refused_in_one_line(world, prefect_api):
    Path(world.xero_connections).chmod(0o644)
    done = _cli(world, prefect_api)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "readable by others" in done.stderr
    assert SECRET not in done.stderr + done.stdout


@pytest.fixture
def strict_xero():
    """A double whose used refresh tokens stop working at once (Xero allows them 30 minutes)."""
    with XeroDouble(speed=60, limits=XeroLimits(refresh_grace_seconds=0)) as double:
        yield double


def test_a_refresh_token_is_rotated_and_written_back_before_it_is_used(
    tmp_path, settings_for, run_plain, strict_xero
):
    xero = strict_xero
    settings = _refresh_world(tmp_path, settings_for, run_plain, xero)
    summary = run_push(settings, None, as_tasks=False)
    assert summary.sent == {"p1": 5}
    written = json.loads(Path(settings.xero_connections).read_text())["p1"]["refresh_token"]
    assert written != "first-refresh-token"
    assert stat.S_IMODE(os.stat(settings.xero_connections).st_mode) == 0o600
    # the old one is spent: only the written one can refresh again (a new push refreshes at its start)
    _put(xero, "tenant-p1", "INV-900", app="app-tenant-p1", refresh_token=written)


def test_a_refresh_that_fails_leaves_the_old_refresh_token_in_place(
    tmp_path, settings_for, run_plain, strict_xero
):
    xero = strict_xero
    settings = _refresh_world(tmp_path, settings_for, run_plain, xero)
    xero.fail_next(1, status=503, path_contains="/connect/token")
    summary = run_push(settings, None, as_tasks=False)
    assert "p1" in summary.skipped
    assert (
        json.loads(Path(settings.xero_connections).read_text())["p1"]["refresh_token"]
        == "first-refresh-token"
    )


def _refresh_world(tmp_path, settings_for, run_plain, xero):
    settings = settings_for(
        _source().write(tmp_path / "source"),
        batch_max_invoices=2,
        xero_api_url=xero.api_url,
        xero_token_url=xero.token_url,
        xero_connections=_connections(
            tmp_path / "connections.json",
            {
                "p1": {
                    "tenant_id": "tenant-p1",
                    "client_id": "app-tenant-p1",
                    "client_secret": SECRET,
                    "grant": "refresh_token",
                    "refresh_token": "first-refresh-token",
                }
            },
        ),  # fmt: skip
        xero_minute_seconds=1.0,
        xero_retry_wait_seconds=0.05,
        xero_retry_wait_max_seconds=0.2,
    )
    run_plain(settings)
    _organisation(xero, grant="refresh_token", refresh_token="first-refresh-token")
    return settings


def test_5xx_and_broken_connections_are_retried_with_the_same_key(world, xero):
    xero.fail_next(2, status=503, path_contains="/Invoices")
    xero.drop_after_commit(1, path_contains="/Invoices?summarizeErrors")
    summary = run_push(world, None, as_tasks=False)

    assert summary.sent == {"p1": 5}
    assert [xero.count_created("tenant-p1", f"INV-{n:03d}") for n in range(1, 6)] == [1] * 5
    puts = [r for r in xero.requests if r["method"] == "PUT"]
    assert len(puts) > 3  # some were attempts again, each with its batch's one key
    by_key: dict[str, int] = {}
    for r in puts:
        by_key[r["idempotency_key"]] = by_key.get(r["idempotency_key"], 0) + 1
    assert len(by_key) == 3 and max(by_key.values()) >= 2


def test_xero_failing_through_every_retry_ends_the_push_non_zero_and_the_next_push_finishes(
    world, xero, prefect_api
):
    xero.fail_next(1000, status=503, path_contains="/Invoices")  # every attempt at every batch
    failed = _cli(world, prefect_api)

    assert failed.returncode == 1
    lines = failed.stderr.strip().splitlines()
    assert "Traceback" not in failed.stderr and "Traceback" not in failed.stdout
    assert lines[-2].startswith("trackline: practice p1 skipped: ") and "503" in lines[-2]
    assert lines[-1].startswith("trackline: 1 practice(s) not finished because Xero failed")
    assert xero.invoices("tenant-p1") == []

    xero.clear_faults()  # Xero is back
    again = _cli(world, prefect_api)
    assert again.returncode == 0, again.stderr[-2000:]
    assert [xero.count_created("tenant-p1", f"INV-{n:03d}") for n in range(1, 6)] == [1] * 5


def test_a_429_for_the_minute_waits_retry_after_and_resends_with_the_same_key(
    tmp_path, settings_for, run_plain
):
    with XeroDouble(speed=60, limits=XeroLimits(per_minute=2)) as xero:
        settings = _world_on(
            xero, tmp_path, settings_for, run_plain, per_minute=10
        )  # trackline asks too fast
        summary = run_push(settings, None, as_tasks=False)
        assert summary.sent == {"p1": 5}
        limited = [r for r in xero.requests if r["status"] == 429]
        assert limited, "the double's minute limit was reached"
        rows = _query(
            settings, "select rate_limit_problem, retry_after from xero_requests where status = 429"
        )
        assert all(problem == "minute" and wait is not None for problem, wait in rows)


def test_a_429_for_the_day_stops_that_practice_for_this_push(tmp_path, settings_for, run_plain):
    with XeroDouble(speed=60, limits=XeroLimits(per_day=3)) as xero:
        settings = _world_on(xero, tmp_path, settings_for, run_plain)
        summary = run_push(settings, None, as_tasks=False)
        assert "daily limit" in summary.skipped["p1"]
        after = len(xero.requests)
        assert sum(1 for r in xero.requests if r["status"] == 429) == 1  # nothing more was asked after it
        assert after == len(xero.requests)


def test_no_more_than_5_requests_in_flight_and_60_a_minute_per_organisation(
    tmp_path, settings_for, run_plain
):
    with XeroDouble(speed=60) as xero:
        settings = _world_on(xero, tmp_path, settings_for, run_plain, invoices=40, per_batch=1)
        xero.slow(0.2, count=40, path_contains="/Invoices?summarizeErrors")
        summary = run_push(settings, None, as_tasks=False)
        assert summary.sent == {"p1": 40}
        assert xero.peak_in_flight("tenant-p1") <= 5
        assert not [r for r in xero.requests if r["status"] == 429]


def _world_on(
    xero, tmp_path, settings_for, run_plain, invoices: int = 5, per_batch: int = 2, per_minute: int = 60
):
    settings = settings_for(
        _source(invoices).write(tmp_path / "source"),
        batch_max_invoices=per_batch,
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
        xero_requests_per_minute=per_minute,
        xero_retry_wait_seconds=0.05,
        xero_retry_wait_max_seconds=0.2,
    )
    run_plain(settings)
    _organisation(xero)
    return settings


# A push killed at any point ------------------------------------------------------------------------------


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


def _cli(settings, api: str, **extra: str) -> subprocess.CompletedProcess:
    command = [
        TRACKLINE, "push", "--warehouse", str(settings.warehouse), "--out", str(settings.out),
        "--connections", str(settings.xero_connections),
    ]  # fmt: skip
    return subprocess.run(
        command, env=_env(settings, api, **extra), capture_output=True, text=True, timeout=240
    )


@pytest.mark.parametrize("point", PUSH_POINTS)
def test_a_push_killed_at_any_point_and_run_again_creates_every_invoice_once(world, xero, prefect_api, point):
    killed = _cli(world, prefect_api, TRACKLINE_KILL_AT=point)
    assert killed.returncode == -9, killed.stderr[-2000:]

    again = _cli(world, prefect_api)
    assert again.returncode == 0, again.stderr[-2000:]
    numbers = [f"INV-{n:03d}" for n in range(1, 6)]
    assert [xero.count_created("tenant-p1", n) for n in numbers] == [1] * 5
    recorded = _query(world, "select invoice_number, xero_invoice_id from xero_sent_invoices order by 1")
    by_number = {i["InvoiceNumber"]: i["InvoiceID"] for i in xero.invoices("tenant-p1")}
    assert recorded == [(n, by_number[n]) for n in numbers], "the warehouse records match Xero"
    assert _query(world, "select count(*) from xero_pushes") >= [(1,)]


def test_no_secret_or_token_reaches_output_logs_exceptions_or_the_warehouse(world, xero, prefect_api):
    done = _cli(world, prefect_api, PREFECT_LOGGING_LEVEL="DEBUG")
    assert done.returncode == 0, done.stderr[-2000:]
    tokens = {*xero._access_tokens, *xero._refresh_tokens}  # every token the double issued
    assert tokens
    secrets = {SECRET, *tokens}
    printed = done.stdout + done.stderr
    dump = Path(world.warehouse).read_bytes()
    con = duckdb.connect(str(world.warehouse), read_only=True)
    try:
        texts = "\n".join(
            str(r)
            for t in ("exceptions", "xero_requests", "xero_pushes", "runs")
            for r in con.execute(f"select * from {t}").fetchall()
        )
    finally:
        con.close()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        logs = "\n".join(log.message for log in client.read_logs())
        flows = "\n".join(json.dumps(r.parameters, default=str) for r in client.read_flow_runs())
    for secret in secrets:
        assert secret not in printed and secret not in texts and secret not in logs and secret not in flows
        assert secret.encode() not in dump
    journal = Path(str(world.warehouse) + ".xero-journal")
    assert not journal.exists() or SECRET not in journal.read_text()


def test_the_nightly_flow_pushes_its_batches_when_push_after_nightly_is_set(world, xero, prefect_api):
    from flows.run.pipeline import nightly_flow

    summary = nightly_flow(world.model_copy(update={"push_after_nightly": True}))
    assert summary["push"]["sent"] == {"p1": 5}
    assert _sent_numbers(xero) == [f"INV-{n:03d}" for n in range(1, 6)]


def test_a_push_to_many_organisations_records_every_request(tmp_path, settings_for, run_plain):
    """120 practices: the first hundred requests to come back are token and category reads (no batch), and
    the sends after them still go into xero_requests (the frame's columns are not guessed from the first
    hundred rows)."""
    practices = [f"p{n:03d}" for n in range(1, 121)]
    b = SourceBuilder(bare=True)
    entries = {}
    with XeroDouble(speed=60) as xero:
        for p in practices:
            b.practice(p)
            b.category(p, "cat-partner", "Partner")
            b.option(p, "opt-pa", "cat-partner", "Partner A")
            b.template(p, "svc-book", "Monthly Bookkeeping")
            b.client(p, "c1", "Acme Widgets Ltd", option="opt-pa")
            b.invoice(p, "i1", invoice_number="INV-001")
            b.line(p, "i1", "l1", position=1)
            xero.add_organisation(f"tenant-{p}", client_id=f"app-{p}", client_secret=SECRET)
            xero.add_tracking_category(f"tenant-{p}", "Partner", ["Partner A"])
            entries[p] = {
                "tenant_id": f"tenant-{p}",
                "client_id": f"app-{p}",
                "client_secret": SECRET,
                "grant": "client_credentials",
            }
        settings = settings_for(
            b.write(tmp_path / "source"),
            xero_api_url=xero.api_url,
            xero_token_url=xero.token_url,
            xero_connections=_connections(tmp_path / "connections.json", entries),
            xero_minute_seconds=1.0,
        )
        run_plain(settings)
        summary = run_push(settings, None, as_tasks=False)

        assert summary.skipped == {}, list(summary.skipped.items())[:3]
        assert summary.sent == {p: 1 for p in practices}
        assert all(xero.count_created(f"tenant-{p}", "INV-001") == 1 for p in practices)
    sends = _query(
        settings, "select count(*), count(distinct batch_id) from xero_requests where purpose = 'send'"
    )
    assert sends == [(120, 120)]


def test_a_batch_xero_keeps_failing_is_left_for_the_next_push_and_the_others_go(world, xero, run_plain):
    one_at_a_time = world.model_copy(
        update={
            "xero_in_flight": 1,
            "xero_attempts": 3,
            "batch_max_invoices": 1,
            "out": world.out.with_name("one"),
        }
    )
    run_plain(one_at_a_time.model_copy(update={"warehouse": world.warehouse.with_name("one.duckdb")}))
    one_at_a_time = one_at_a_time.model_copy(update={"warehouse": world.warehouse.with_name("one.duckdb")})
    # A 500 for the first batch: Xero answers it again for that Idempotency-Key for six minutes (the
    # double's clock runs 60 times fast: six real seconds), so every retry of it gets the same 500; every
    # request after it is held half a second, so the other batches are still to go when it gives up.
    xero.fail_next(1, status=500, path_contains="/Invoices?summarizeErrors")
    xero.slow(0.5, count=20, path_contains="/Invoices?summarizeErrors")

    summary = run_push(one_at_a_time, None, as_tasks=False)

    assert summary.sent == {"p1": 4} and "status 500" in summary.unfinished["p1"]
    assert _sent_numbers(xero) == ["INV-002", "INV-003", "INV-004", "INV-005"]
    xero.clear_faults()
    xero.advance(400)  # past the six minutes Xero remembers that answer
    again = run_push(one_at_a_time, None, as_tasks=False)
    assert again.sent == {"p1": 1} and again.unfinished == {}
    assert [xero.count_created("tenant-p1", f"INV-{n:03d}") for n in range(1, 6)] == [1] * 5
