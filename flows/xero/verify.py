"""`trackline verify`: what Xero kept of the tracking sent (contract section 6, Verify).

Xero accepts an invoice and drops, without a word, tracking it does not recognise. verify reads the invoices
trackline created back from each practice's organisation (`GET /Invoices?IDs=...`, paged) and compares each
line's tracking, found by its LineItemID, with what trackline last set (xero_sent_lines: what the push sent,
or what `trackline retrack --apply` set since). A line whose tracking differs gets XERO_TRACKING_DROPPED,
naming the line, what was sent and what Xero has; a later verify that finds it right closes it.

Reads stay within Xero's daily budget: a run reads at most `max_invoices` invoices per organisation, those
never read since their tracking was set first (newest first), then those read longest ago; an organisation
stops when Xero says fewer than `day_reserve` calls are left today (or answers 429 for the day). The rest
wait for the next run. What was read is kept in xero_readback (each invoice's last check). Nothing here
writes to Xero, so a verify killed at any point leaves nothing to finish: the next one reads again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb
import polars as pl

from flows.warehouse import writes as wh
from flows.xero.api import (
    Attempt,
    DayLimitReached,
    Organisation,
    Xero,
    XeroAuthError,
    XeroUnavailable,
    load_connections,
)
from flows.xero.push import PushSettings
from transforms.vocabulary import VERIFY_CODES

INVOICE = ["practice_id", "invoice_id"]
READ_AT_ONCE = 50  # InvoiceIDs asked for in one GET /Invoices (a GUID is 36 characters of the URL)
SLOTS = ("tracking1_name", "tracking1_option", "tracking2_name", "tracking2_option")


@dataclass(frozen=True)
class VerifySettings:
    xero: PushSettings
    max_invoices: int  # per organisation and run
    day_reserve: int  # calls of the day left to pushes: below this, verify stops for the organisation


# What to read -------------------------------------------------------------------------------------------

CANDIDATES_SQL = """
    with in_xero as (
        select practice_id, invoice_id, any_value(xero_invoice_id) as xero_invoice_id,
               max(tracked_at) as tracked_at
        from xero_sent_lines group by all
    ),
    last_read as (
        select practice_id, invoice_id, max(read_at) as read_at from xero_readback group by all
    )
    select x.practice_id, x.invoice_id, x.xero_invoice_id, s.invoice_number,
           r.read_at is null or r.read_at < x.tracked_at as due
    from in_xero x
    join xero_sent_invoices s using (practice_id, invoice_id)
    left join last_read r using (practice_id, invoice_id)
    order by x.practice_id, due desc,
             case when due then x.tracked_at end desc nulls last, r.read_at, x.invoice_id
"""

EXPECTED_SQL = """
    select l.practice_id, l.invoice_id, l.line_no, l.line_item_id, l.line_id,
           l.tracking1_name, l.tracking1_option, l.tracking2_name, l.tracking2_option
    from xero_sent_lines l semi join _chosen c using (practice_id, invoice_id)
    order by l.practice_id, l.invoice_id, l.line_no
"""


@dataclass
class Readback:
    """What a verify read and found, as rows for the warehouse."""

    check_id: str
    read: list[dict] = field(default_factory=list)  # xero_readback rows
    looked_at: list[dict] = field(default_factory=list)  # practice_id, invoice_id of every invoice read
    dropped: list[dict] = field(default_factory=list)  # exception rows
    requests: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    waiting: dict[str, int] = field(default_factory=dict)  # practice -> invoices left for a later run

    def recorder(self) -> Callable[[Attempt], None]:
        def recorded(attempt: Attempt) -> None:
            self.requests.append({**asdict(attempt), "requested_at": attempt.requested_at.isoformat()})

        return recorded


def _tracking_text(pairs: list[tuple[str, str]]) -> str:
    return ", ".join(f"{name}: {option}" for name, option in pairs) or "no tracking"


def _sent_pairs(line: dict) -> list[tuple[str, str]]:
    return [
        (line[f"tracking{n}_name"], line[f"tracking{n}_option"])
        for n in (1, 2)
        if line[f"tracking{n}_name"] is not None
    ]


def compare_invoice(
    number: str, expected: list[dict], xero_invoice: dict | None
) -> tuple[list[dict], list[dict]]:
    """(the readback rows, the lines dropped) of one invoice: `expected` its xero_sent_lines rows, and
    `xero_invoice` what Xero returned for it (None: nothing)."""
    first = expected[0]
    base = {
        "practice_id": first["practice_id"],
        "invoice_id": first["invoice_id"],
        "xero_invoice_id": first["xero_invoice_id"],
    }
    if xero_invoice is None:
        return [{**base, "line_item_id": None, "xero_status": "NOT_FOUND", **dict.fromkeys(SLOTS)}], []
    status = xero_invoice.get("Status") or "UNKNOWN"
    held: dict[str, list[tuple[str, str]]] = {}
    rows = []
    for line in xero_invoice.get("LineItems") or []:
        pairs = [(t.get("Name"), t.get("Option")) for t in line.get("Tracking") or []]
        held[line.get("LineItemID")] = pairs
        slots = {}
        for n in (1, 2):
            name, option = pairs[n - 1] if len(pairs) >= n else (None, None)
            slots[f"tracking{n}_name"], slots[f"tracking{n}_option"] = name, option
        rows.append({**base, "line_item_id": line.get("LineItemID"), "xero_status": status, **slots})
    dropped = []
    for line in expected:
        sent = _sent_pairs(line)
        kept = held.get(line["line_item_id"])
        if kept is not None and sorted(kept) == sorted(sent):
            continue
        has = "no such line" if kept is None else _tracking_text(kept)
        dropped.append(
            {
                "practice_id": line["practice_id"],
                "invoice_id": line["invoice_id"],
                "line_id": line["line_id"],
                "code": "XERO_TRACKING_DROPPED",
                "severity": "error",
                "detail": f"invoice {number} line {line['line_no']} (LineItemID {line['line_item_id']}): "
                f"sent {_tracking_text(sent)}; Xero has {has}",
                "fix": f"Make {_tracking_text(sent)} ACTIVE in the practice's Xero organisation, then run "
                f"`trackline retrack --apply` to set invoice {number}'s tracking again",
            }
        )
    return rows, dropped


# Reading ------------------------------------------------------------------------------------------------


def _day_left(response) -> int | None:
    try:
        return int(response.headers["X-DayLimit-Remaining"])
    except (KeyError, ValueError):
        return None


async def read_invoices(
    org: Organisation, ids: list[str], day_reserve: int, purpose: str = "readback"
) -> tuple[dict[str, dict], int]:
    """InvoiceID (lower case) -> the invoice Xero has, with its lines, for those of `ids` it has; and how
    many of `ids` (from the first) were asked for: fewer than all when Xero's day budget ran below
    `day_reserve` first."""
    found: dict[str, dict] = {}
    for start in range(0, len(ids), READ_AT_ONCE):
        asked = ids[start : start + READ_AT_ONCE]
        page, pages, left = 1, 1, None
        while page <= pages:
            params = {"IDs": ",".join(asked), "page": str(page), "pageSize": str(READ_AT_ONCE)}
            response = await org.call("GET", "/Invoices", purpose=purpose, params=params)
            if response.status_code != 200:
                raise XeroUnavailable(f"GET /Invoices?IDs=... answered {response.status_code}")
            answer = response.json()
            for invoice in answer.get("Invoices", []):
                found[str(invoice.get("InvoiceID", "")).lower()] = invoice
            pages = (answer.get("pagination") or {}).get("pageCount") or 1
            left = _day_left(response)
            page += 1
        if left is not None and left < day_reserve:
            return found, start + len(asked)
    return found, len(ids)


async def verify_practice(
    org: Organisation,
    chosen: pl.DataFrame,
    expected: pl.DataFrame,
    settings: VerifySettings,
    readback: Readback,
) -> None:
    """Read one organisation's chosen invoices and compare them with what trackline set."""
    practice_id = org.connection.practice_id
    try:
        found, asked = await read_invoices(org, chosen["xero_invoice_id"].to_list(), settings.day_reserve)
    except (DayLimitReached, XeroAuthError, XeroUnavailable) as stop:
        readback.skipped[practice_id] = str(stop)
        readback.waiting[practice_id] = readback.waiting.get(practice_id, 0) + chosen.height
        return
    if asked < chosen.height:
        readback.skipped[practice_id] = (
            f"stopped with fewer than {settings.day_reserve} of Xero's calls left today"
        )
        readback.waiting[practice_id] = readback.waiting.get(practice_id, 0) + chosen.height - asked
    lines_of: dict[str, list[dict]] = {}
    for line in expected.to_dicts():
        lines_of.setdefault(line["invoice_id"], []).append(line)
    for invoice in chosen.head(asked).to_dicts():
        lines = [
            {**line, "xero_invoice_id": invoice["xero_invoice_id"]}
            for line in lines_of[invoice["invoice_id"]]
        ]
        rows, dropped = compare_invoice(
            invoice["invoice_number"], lines, found.get(invoice["xero_invoice_id"].lower())
        )
        readback.read.extend(rows)
        readback.dropped.extend(dropped)
        readback.looked_at.append({"practice_id": practice_id, "invoice_id": invoice["invoice_id"]})


async def verify(
    con: duckdb.DuckDBPyConnection, check_id: str, settings: VerifySettings, practices: list[str] | None
) -> Readback:
    """One verify (see the module docstring): reads the warehouse through `con`, writes nothing to it."""
    readback = Readback(check_id)
    candidates = wh.query(con, CANDIDATES_SQL)
    if practices:
        candidates = candidates.filter(pl.col("practice_id").is_in(practices))
    if candidates.is_empty():
        return readback
    connections = load_connections(settings.xero.connections)
    wanted = sorted(candidates["practice_id"].unique().to_list())
    for practice_id in wanted:
        if practice_id not in connections:
            readback.skipped[practice_id] = "no Xero connection for it in the connections file"
    chosen = (
        candidates.filter(pl.col("practice_id").is_in(list(connections)))
        .group_by("practice_id", maintain_order=True)
        .head(settings.max_invoices)
    )
    for practice_id, count in candidates.group_by("practice_id").len().iter_rows():
        taken = chosen.filter(pl.col("practice_id") == practice_id).height
        if practice_id in connections and count > taken:
            readback.waiting[practice_id] = count - taken
    if chosen.is_empty():
        return readback
    con.register("_chosen", wh.arrow(chosen.select(INVOICE)))
    try:
        expected = wh.query(con, EXPECTED_SQL)
    finally:
        con.unregister("_chosen")
    x = settings.xero
    xero = Xero(x.api_url, x.token_url, x.connections, connections, x.limits, readback.recorder())
    try:
        await asyncio.gather(
            *(
                verify_practice(
                    xero.organisation(p),
                    chosen.filter(pl.col("practice_id") == p),
                    expected.filter(pl.col("practice_id") == p),
                    settings,
                    readback,
                )
                for p in sorted(chosen["practice_id"].unique().to_list())
            )
        )
    finally:
        await xero.close()
    return readback


# Recording ----------------------------------------------------------------------------------------------


def record_requests(con: duckdb.DuckDBPyConnection, check_id: str, requests: list[dict]) -> None:
    if requests:
        rows = pl.DataFrame(requests, infer_schema_length=None).with_columns(
            pl.lit(check_id).alias("push_id"),
            pl.col("requested_at").cast(pl.Utf8).str.to_datetime(time_zone="UTC"),
        )
        wh.insert(con, "xero_requests", rows)


def record_check(
    con: duckdb.DuckDBPyConnection,
    check_id: str,
    command: str,
    started: datetime,
    finished: datetime,
    practices: list[str],
    counts: dict[str, int],
    requests: int,
    skipped: list[str],
) -> None:
    con.execute(
        "insert into xero_checks values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            check_id,
            command,
            started,
            finished,
            sorted(practices),
            counts.get("read", 0),
            counts.get("waiting", 0),
            counts.get("dropped", 0),
            counts.get("updated", 0),
            counts.get("blocked", 0),
            requests,
            sorted(skipped),
        ],
    )


def record(con: duckdb.DuckDBPyConnection, readback: Readback, started: datetime, finished: datetime) -> None:
    """What the verify read, in the warehouse (its working copy: it commits atomically)."""
    if readback.looked_at:
        looked = pl.DataFrame(readback.looked_at, schema={"practice_id": pl.Utf8, "invoice_id": pl.Utf8})
        con.register("_looked", wh.arrow(looked))
        try:
            con.execute(
                "delete from xero_readback r using _looked l where r.practice_id = l.practice_id and r.invoice_id = l.invoice_id"
            )
        finally:
            con.unregister("_looked")
        rows = pl.DataFrame(
            readback.read,
            schema={
                c: pl.Utf8
                for c in (
                    "practice_id",
                    "invoice_id",
                    "xero_invoice_id",
                    "line_item_id",
                    "xero_status",
                    *SLOTS,
                )
            },
        )
        wh.insert(
            con,
            "xero_readback",
            rows.with_columns(
                pl.lit(finished).alias("read_at"), pl.lit(readback.check_id).alias("verify_id")
            ),
        )
        columns = ("practice_id", "invoice_id", "line_id", "code", "severity", "detail", "fix")
        wh.merge_exceptions(
            con,
            pl.DataFrame(readback.dropped, schema={c: pl.Utf8 for c in columns}),
            looked,
            finished,
            unattributed=False,
            codes=VERIFY_CODES,
        )
    record_requests(con, readback.check_id, readback.requests)
    record_check(
        con,
        readback.check_id,
        "verify",
        started,
        finished,
        sorted({r["practice_id"] for r in readback.looked_at}),
        {
            "read": len(readback.looked_at),
            "waiting": sum(readback.waiting.values()),
            "dropped": len(readback.dropped),
        },
        len(readback.requests),
        list(readback.skipped),
    )


def summary_of(readback: Readback) -> dict:
    def count(rows: list[dict]) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in rows:
            found[row["practice_id"]] = found.get(row["practice_id"], 0) + 1
        return dict(sorted(found.items()))

    return {
        "check_id": readback.check_id,
        "read": count(readback.looked_at),
        "dropped": count(readback.dropped),
        "waiting": dict(sorted(readback.waiting.items())),
        "skipped": dict(sorted(readback.skipped.items())),
        "requests": len(readback.requests),
    }
