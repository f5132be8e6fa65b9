"""Invoices already in Xero when the configuration changes (contract section 6, Retrack).

An invoice Xero accepted is never batched again as new (flows.xero.batches): Xero would refuse its number,
and a POST would overwrite its lines. What a later run resolves for it is compared, line by line, with what
Xero holds (xero_sent_lines):

- its amounts or lines changed (a line added or gone, a description, quantity, unit amount, amount, account
  or tax type): SENT_INVOICE_CHANGED, found by every run for the invoices it recomputed
  (`sent_invoice_changes`). Nothing updates it: the finance lead credits it, or edits it in Xero.
- only tracking changed (a client's partner, a template's department, an owner's option): its lines are in
  the view retrack_plan. `trackline retrack` prints the plan's totals per practice and option move;
  `--apply` updates each invoice with `POST /Invoices/{InvoiceID}`: every line restated as sent, with its
  LineItemID, quantity, amounts, account and tax type, only Tracking changed.

Apply works as push does (flows.xero.push): within each organisation's limits (flows.xero.api), one
Idempotency-Key per invoice and target tracking, a journal beside the warehouse written before each
request and after each answer, the warehouse written once at the end. A retrack killed at any point and run
again updates each invoice once: for an update whose answer never came it first reads the invoice back and,
when Xero already has the target tracking, records it as done without asking again. Xero's refusal (paid,
part-paid, credited, voided, locked period) is RETRACK_BLOCKED with Xero's words; the same update is not
asked again (xero_retrack_blocks), a different one is.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from flows import faults
from flows.warehouse import writes as wh
from flows.warehouse.migrations import SQL
from flows.warehouse.store import Store
from flows.xero.api import (
    Attempt,
    DayLimitReached,
    Organisation,
    Xero,
    XeroAuthError,
    XeroUnavailable,
    load_connections,
)
from flows.xero.push import Journal, PushSettings
from flows.xero.verify import SLOTS, read_invoices, record_check, record_requests
from transforms.vocabulary import RETRACK_CODES, SENT_CODES

INVOICE = ["practice_id", "invoice_id"]
PLAN_VIEW = SQL / "reports" / "retrack_plan.sql"
# What must not change for an update to be only of tracking: the line fields besides tracking.
KEPT_FIELDS = ("description", "quantity", "unit_amount", "line_amount", "account_code", "tax_type")


def journal_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".xero-retrack-journal")


# Found by a run: invoices in Xero whose amounts or lines changed -----------------------------------------

CHANGED_SQL = """
    with sent as (
        select l.* from xero_sent_lines l semi join _in_xero using (practice_id, invoice_id)
    ),
    now as (
        select x.* from ({lines}) x
        join ({states}) t using (practice_id, invoice_id)
        where t.invoice_state = 'ready'
    ),
    pairs as (
        select coalesce(s.practice_id, n.practice_id) as practice_id,
               coalesce(s.invoice_id, n.invoice_id) as invoice_id,
               coalesce(s.line_no, n.line_no) as line_no,
               n.invoice_number, s.xero_invoice_id,
               concat_ws('; ',
                   case when s.line_no is null then 'line ' || n.line_no || ' is new (' || n.line_amount || ')' end,
                   case when n.line_no is null then 'line ' || s.line_no || ' is gone (' || s.line_amount || ')' end,
                   {differences}
               ) as what
        from sent s
        full join now n on s.practice_id = n.practice_id and s.invoice_id = n.invoice_id and s.line_no = n.line_no
    ),
    numbers as (
        select distinct practice_id, invoice_id, invoice_number from now
    ),
    ids as (
        select distinct practice_id, invoice_id, xero_invoice_id from sent
    )
    select p.practice_id, p.invoice_id, any_value(n.invoice_number) as invoice_number,
           any_value(i.xero_invoice_id) as xero_invoice_id,
           list(p.what order by p.line_no) as changes
    from pairs p
    join numbers n using (practice_id, invoice_id)
    join ids i using (practice_id, invoice_id)
    where p.what <> ''
    group by all
"""


def _difference(column: str) -> str:
    return (
        f"case when s.line_no is not null and n.line_no is not null and s.{column} is distinct from n.{column} "
        f"then 'line ' || s.line_no || ' {column} ' || coalesce(s.{column}::varchar, 'empty') || ' -> ' "
        f"|| coalesce(n.{column}::varchar, 'empty') end"
    )


def sent_invoice_changes(
    store: Store,
    only: Sequence[Path] | None,
    now: datetime,
    tracked_since: datetime | None = None,
) -> int:
    """SENT_INVOICE_CHANGED for every invoice in Xero (of `only`: Parquet files of the invoices a run
    recomputed or let go of, and those whose lines in Xero were recorded at or after `tracked_since`;
    None: all) whose amounts or lines now differ from what Xero holds; closed for those that no longer
    do. Only the parts of the store holding those invoices are read. Returns how many are open."""
    con = store.con
    scope, params = "", []
    if only is not None:
        listed = ", ".join("'" + str(p).replace("'", "''") + "'" for p in only)
        named = [f"select practice_id, invoice_id from read_parquet([{listed}])"] if only else []
        if tracked_since is not None:
            named.append("select practice_id, invoice_id from xero_sent_lines where tracked_at >= ?")
            params.append(tracked_since)
        if not named:
            return 0
        scope = f"semi join ({' union '.join(named)}) o using (practice_id, invoice_id)"
    in_xero = wh.query(con, f"select distinct practice_id, invoice_id from xero_sent_lines l {scope}", params)
    if in_xero.is_empty():
        return 0
    con.register("_in_xero", wh.arrow(in_xero))
    try:
        changed = wh.query(
            con,
            CHANGED_SQL.format(
                lines=store.current_rows_sql("xero_line_items", "select * from _in_xero"),
                states=store.current_rows_sql("invoice_tracking", "select * from _in_xero"),
                differences=",\n".join(_difference(c) for c in KEPT_FIELDS),
            ),
        )
    finally:
        con.unregister("_in_xero")
    found = [
        {
            "practice_id": r["practice_id"],
            "invoice_id": r["invoice_id"],
            "line_id": None,
            "code": "SENT_INVOICE_CHANGED",
            "severity": "error",
            "detail": f"invoice {r['invoice_number']} is in Xero (InvoiceID {r['xero_invoice_id']}) and its lines "
            f"changed in the source since: {'; '.join(r['changes'][:5])}"
            + (f" (and {len(r['changes']) - 5} more)" if len(r["changes"]) > 5 else "")
            + "; trackline does not change amounts in Xero: credit it, or edit it in Xero",
            "fix": f"Invoice {r['invoice_number']} changed after Xero accepted it: edit it in Xero to match, or "
            "credit it there and issue the change as a new invoice from the practice app",
        }
        for r in changed.to_dicts()
    ]
    columns = ("practice_id", "invoice_id", "line_id", "code", "severity", "detail", "fix")
    wh.merge_exceptions(
        con,
        pl.DataFrame(found, schema={c: pl.Utf8 for c in columns}),
        in_xero,
        now,
        unattributed=False,
        codes=SENT_CODES,
    )
    return len(found)


# The plan -----------------------------------------------------------------------------------------------


def plan_moves(con: duckdb.DuckDBPyConnection, practices: list[str] | None) -> list[dict]:
    """The plan's totals per practice and option move (the view retrack_plan_moves)."""
    where, params = "", []
    if practices:
        where = "where practice_id in (" + ", ".join("?" for _ in practices) + ")"
        params = list(practices)
    return wh.query(
        con,
        f"select * from retrack_plan_moves {where} order by practice_id, category, amount desc, from_option, to_option",
        params,
    ).to_dicts()


# Apply --------------------------------------------------------------------------------------------------

PLAN_SQL = """
    select p.practice_id, p.invoice_id, p.invoice_number, p.xero_invoice_id, p.target_digest,
           l.line_no, l.line_item_id, l.description, l.quantity, l.unit_amount, l.line_amount,
           l.account_code, l.tax_type,
           l.tracking1_name as from_tracking1_name, l.tracking1_option as from_tracking1_option,
           l.tracking2_name as from_tracking2_name, l.tracking2_option as from_tracking2_option,
           case when m.line_no is null then l.tracking1_name else m.tracking1_name end as tracking1_name,
           case when m.line_no is null then l.tracking1_option else m.tracking1_option end as tracking1_option,
           case when m.line_no is null then l.tracking2_name else m.tracking2_name end as tracking2_name,
           case when m.line_no is null then l.tracking2_option else m.tracking2_option end as tracking2_option,
           m.line_no is not null as moved, m.reason
    from (select distinct practice_id, invoice_id, invoice_number, xero_invoice_id, target_digest
          from retrack_plan where blocked is null) p
    join xero_sent_lines l using (practice_id, invoice_id)
    left join retrack_plan m using (practice_id, invoice_id, line_no)
    order by p.practice_id, p.invoice_id, l.line_no
"""


@dataclass
class Update:
    """One invoice to update: its lines as Xero holds them, each with the tracking it should carry."""

    practice_id: str
    invoice_id: str
    invoice_number: str
    xero_invoice_id: str
    target_digest: str
    lines: list[dict]

    @property
    def key(self) -> str:
        """The same for every attempt at this update: of this invoice, from the tracking it has to the
        tracking it should have."""
        before = [str(line.get(f"from_{c}")) for line in self.lines for c in SLOTS]
        content = "\x1f".join(["retrack", self.practice_id, self.invoice_id, *before, self.target_digest])
        return "trackline-" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:48]

    def body(self) -> bytes:
        """`{"Invoices": [{InvoiceID, LineItems}]}`: every line restated as sent, with its LineItemID, only
        Tracking new. Amounts are JSON numbers written from the decimals."""
        items = []
        for line in self.lines:
            item = {
                "LineItemID": line["line_item_id"],
                "Description": line["description"],
                "Quantity": _number(line["quantity"]),
                "UnitAmount": _number(line["unit_amount"]),
                "LineAmount": _number(line["line_amount"]),
                "AccountCode": line["account_code"],
                "TaxType": line["tax_type"],
                "Tracking": [
                    {"Name": line[f"tracking{n}_name"], "Option": line[f"tracking{n}_option"]}
                    for n in (1, 2)
                    if line[f"tracking{n}_name"] is not None
                ],
            }
            items.append({k: v for k, v in item.items() if v is not None})
        text = json.dumps({"Invoices": [{"InvoiceID": self.xero_invoice_id, "LineItems": items}]})
        return _NUMBER.sub(lambda m: m.group(1), text).encode("utf-8")

    def holds_target(self, xero_invoice: dict) -> bool:
        """Whether Xero's invoice already carries the tracking this update sets, on every line."""
        held = {
            line.get("LineItemID"): sorted(
                (t.get("Name"), t.get("Option")) for t in line.get("Tracking") or []
            )
            for line in xero_invoice.get("LineItems") or []
        }
        return all(
            held.get(line["line_item_id"])
            == sorted(
                (line[f"tracking{n}_name"], line[f"tracking{n}_option"])
                for n in (1, 2)
                if line[f"tracking{n}_name"] is not None
            )
            for line in self.lines
        )


_NUMBER = re.compile(r'"\\u0000(-?[0-9.]+)"')


def _number(value: Decimal | None) -> str | None:
    """A decimal as a placeholder `Update.body` writes as a bare JSON number, exactly."""
    return None if value is None else "\x00" + format(Decimal(value), "f")


def updates_of(rows: pl.DataFrame) -> list[Update]:
    updates = []
    for (practice_id, invoice_id), invoice in rows.group_by(INVOICE, maintain_order=True):
        first = invoice.row(0, named=True)
        updates.append(
            Update(
                practice_id,
                invoice_id,
                first["invoice_number"],
                first["xero_invoice_id"],
                first["target_digest"],
                invoice.drop(
                    "practice_id", "invoice_id", "invoice_number", "xero_invoice_id", "target_digest"
                ).to_dicts(),
            )
        )
    return updates


@dataclass
class Applied:
    """What a retrack --apply found out, as rows for the warehouse."""

    check_id: str
    updated: list[dict] = field(default_factory=list)  # journal `answered` results
    blocked: list[dict] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    unanswered: list[dict] = field(default_factory=list)
    practices: set[str] = field(default_factory=set)

    def answered(self, entry: dict) -> None:
        (self.blocked if entry.get("messages") else self.updated).append(entry)

    @property
    def done(self) -> set[tuple[str, str, str]]:
        return {(e["practice_id"], e["invoice_id"], e["target_digest"]) for e in self.updated + self.blocked}


def replay(entries: list[dict], committed: set[str], check_id: str) -> Applied:
    applied = Applied(check_id)
    answered = {e["key"] for e in entries if e["event"] == "answered"}
    for entry in entries:
        fresh = entry.get("push_id") not in committed
        if entry["event"] == "answered" and fresh:
            applied.answered(entry)
        elif entry["event"] == "request" and fresh:
            applied.requests.append(entry["attempt"])
        elif entry["event"] == "sending" and entry["key"] not in answered:
            applied.unanswered.append(entry)
    return applied


def _answer(update: Update, messages: list[str] | None, at: str, found_by_lookup: bool = False) -> dict:
    return {
        "event": "answered",
        "practice_id": update.practice_id,
        "invoice_id": update.invoice_id,
        "invoice_number": update.invoice_number,
        "xero_invoice_id": update.xero_invoice_id,
        "target_digest": update.target_digest,
        "key": update.key,
        "lines": [
            {k: str(v) if isinstance(v, Decimal) else v for k, v in line.items()} for line in update.lines
        ],
        "messages": messages or [],
        "found_by_lookup": found_by_lookup,
        "at": at,
    }


def _refusal(response) -> list[str]:
    """Xero's ValidationErrors messages of a refused update (or its one Message)."""
    try:
        answer = response.json()
    except ValueError:
        return [response.text[:200] or f"status {response.status_code}"]
    messages = [
        error.get("Message", "")
        for element in answer.get("Elements") or []
        for error in element.get("ValidationErrors") or []
    ]
    return [m for m in messages if m] or [answer.get("Message") or answer.get("Detail") or "refused"]


async def _update(org: Organisation, update: Update, journal: Journal, applied: Applied) -> None:
    body = update.body()
    journal.write(
        {
            "event": "sending",
            "practice_id": update.practice_id,
            "invoice_id": update.invoice_id,
            "key": update.key,
            "update": asdict(update),
            "at": datetime.now(UTC).isoformat(),
        }
    )
    faults.checkpoint("retrack-sending")
    response = await org.call(
        "POST",
        f"/Invoices/{update.xero_invoice_id}",
        purpose="retrack",
        params={"unitdp": "4"},
        body=body,
        key=update.key,
    )
    faults.checkpoint("retrack-answered")
    at = datetime.now(UTC).isoformat()
    if response.status_code == 200:
        entry = _answer(update, None, at)
    elif response.status_code in (400, 404):
        entry = _answer(update, _refusal(response), at)
    else:
        raise XeroUnavailable(f"POST /Invoices/{{InvoiceID}} answered {response.status_code}")
    journal.write(entry)
    applied.answered(entry)


async def _recover(org: Organisation, unanswered: list[dict], journal: Journal, applied: Applied) -> None:
    """Updates of an earlier retrack whose answer never came: those Xero already holds are recorded as done."""
    updates = [Update(**e["update"]) for e in unanswered]
    found, _ = await read_invoices(org, [u.xero_invoice_id for u in updates], 0, purpose="lookup")
    at = datetime.now(UTC).isoformat()
    for update in updates:
        invoice = found.get(update.xero_invoice_id.lower())
        if invoice is not None and update.holds_target(invoice):
            entry = _answer(update, None, at, found_by_lookup=True)
            journal.write(entry)
            applied.answered(entry)


async def apply_practice(
    org: Organisation, updates: list[Update], unanswered: list[dict], journal: Journal, applied: Applied
) -> None:
    practice_id = org.connection.practice_id
    try:
        if unanswered:
            await _recover(org, unanswered, journal, applied)
        done = applied.done
        todo = [u for u in updates if (u.practice_id, u.invoice_id, u.target_digest) not in done]
        await asyncio.gather(*(_update(org, u, journal, applied) for u in todo))
    except (DayLimitReached, XeroAuthError, XeroUnavailable) as stop:
        applied.skipped[practice_id] = str(stop)


def read_plan(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    con.execute(PLAN_VIEW.read_text())  # the view as this version defines it
    return wh.query(con, PLAN_SQL)


async def apply(
    con: duckdb.DuckDBPyConnection,
    warehouse: Path,
    check_id: str,
    settings: PushSettings,
    practices: list[str] | None,
) -> Applied:
    """One retrack --apply (see the module docstring). Reads the warehouse through `con`, writes nothing
    to it (`record` does)."""
    committed = {
        r[0] for r in con.execute("select check_id from xero_checks where command = 'retrack'").fetchall()
    }
    applied = replay(Journal.read(journal_path(warehouse)), committed, check_id)
    rows = read_plan(con)
    if practices:
        rows = rows.filter(pl.col("practice_id").is_in(practices))
    updates = [
        u for u in updates_of(rows) if (u.practice_id, u.invoice_id, u.target_digest) not in applied.done
    ]
    unanswered: dict[str, list[dict]] = {}
    for entry in applied.unanswered:
        if not practices or entry["practice_id"] in practices:
            unanswered.setdefault(entry["practice_id"], []).append(entry)
    wanted = {u.practice_id for u in updates} | set(unanswered)
    open_blocks = {
        r[0]
        for r in con.execute(
            "select distinct practice_id from exceptions where code = 'RETRACK_BLOCKED'"
        ).fetchall()
    }
    # The practices this retrack answers for: their RETRACK_BLOCKED are made to match the plan (record).
    applied.practices = set(practices) if practices else wanted | open_blocks
    if not wanted:
        return applied
    connections = load_connections(settings.connections)
    for practice_id in sorted(wanted - set(connections)):
        applied.skipped[practice_id] = "no Xero connection for it in the connections file"
    reachable = sorted(wanted & set(connections))
    with Journal(journal_path(warehouse), check_id) as journal:

        def recorded(attempt: Attempt) -> None:
            made = {**asdict(attempt), "requested_at": attempt.requested_at.isoformat()}
            journal.write({"event": "request", "attempt": made})
            applied.requests.append(made)

        xero = Xero(
            settings.api_url, settings.token_url, settings.connections, connections, settings.limits, recorded
        )
        try:
            await asyncio.gather(
                *(
                    apply_practice(
                        xero.organisation(p),
                        [u for u in updates if u.practice_id == p],
                        unanswered.get(p, []),
                        journal,
                        applied,
                    )
                    for p in reachable
                )
            )
        finally:
            await xero.close()
    applied.unanswered = [e for e in applied.unanswered if e["practice_id"] not in reachable]
    faults.checkpoint("retrack-journaled")
    return applied


# Recording ----------------------------------------------------------------------------------------------

UPDATE_LINES_SQL = """
    update xero_sent_lines l
    set tracking1_name = n.tracking1_name, tracking1_option = n.tracking1_option,
        tracking2_name = n.tracking2_name, tracking2_option = n.tracking2_option,
        tracked_at = n.at, tracked_by = ?
    from _updated n
    where l.practice_id = n.practice_id and l.invoice_id = n.invoice_id and l.line_no = n.line_no
"""


def record(con: duckdb.DuckDBPyConnection, applied: Applied, started: datetime, finished: datetime) -> None:
    """What the retrack did, in the warehouse (its working copy: it commits atomically)."""
    lines = [
        {
            "practice_id": e["practice_id"],
            "invoice_id": e["invoice_id"],
            "xero_invoice_id": e["xero_invoice_id"],
            "at": datetime.fromisoformat(e["at"]),
            **line,
        }
        for e in applied.updated
        for line in e["lines"]
    ]
    if lines:
        frame = pl.DataFrame(lines, infer_schema_length=None)
        con.register("_updated", wh.arrow(frame))
        try:
            con.execute(UPDATE_LINES_SQL, [applied.check_id])
        finally:
            con.unregister("_updated")
        moved = frame.filter(pl.col("moved"))
        wh.insert(
            con,
            "xero_retracks",
            moved.select(
                "practice_id",
                "invoice_id",
                "xero_invoice_id",
                "line_no",
                "line_item_id",
                pl.col("line_amount").cast(pl.Decimal(18, 2)),
                "from_tracking1_option",
                "from_tracking2_option",
                *(pl.col(c).alias(f"to_{c}") for c in SLOTS),
                pl.col("reason").fill_null("client"),
                pl.col("at").alias("retracked_at"),
                pl.lit(applied.check_id).alias("retrack_id"),
            ),
        )
    if applied.blocked:
        wh.insert(
            con,
            "xero_retrack_blocks",
            pl.DataFrame(
                [
                    {
                        "practice_id": e["practice_id"],
                        "invoice_id": e["invoice_id"],
                        "digest": e["target_digest"],
                        "messages": e["messages"],
                        "blocked_at": datetime.fromisoformat(e["at"]),
                        "retrack_id": applied.check_id,
                    }
                    for e in applied.blocked
                ],
                schema_overrides={"messages": pl.List(pl.Utf8)},
                infer_schema_length=None,
            ),
        )
    _exceptions(con, applied, finished)
    record_requests(con, applied.check_id, applied.requests)
    record_check(
        con,
        applied.check_id,
        "retrack",
        started,
        finished,
        sorted(applied.practices),
        {"updated": len(applied.updated), "blocked": len(applied.blocked)},
        len(applied.requests),
        list(applied.skipped),
    )


def _exceptions(con: duckdb.DuckDBPyConnection, applied: Applied, now: datetime) -> None:
    """RETRACK_BLOCKED: open for each invoice whose update Xero refused, while the plan still asks for that
    update; closed once it is updated or the plan no longer asks for it."""
    if not applied.practices:
        return
    con.execute(PLAN_VIEW.read_text())
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in sorted(applied.practices))
    still = wh.query(
        con,
        f"""select distinct practice_id, invoice_id, invoice_number, blocked from retrack_plan
            where blocked is not null and practice_id in ({listed})""",
    )
    found = [
        {
            "practice_id": r["practice_id"],
            "invoice_id": r["invoice_id"],
            "line_id": None,
            "code": "RETRACK_BLOCKED",
            "severity": "error",
            "detail": f"invoice {r['invoice_number']}: Xero refused to update its tracking: {r['blocked']}",
            "fix": f"Set the tracking of invoice {r['invoice_number']} by hand in Xero, which will not let "
            "trackline edit it (the detail says why), or credit it there and reissue it",
        }
        for r in still.to_dicts()
    ]
    scope = wh.query(
        con,
        f"""select distinct practice_id, invoice_id from exceptions
            where code = 'RETRACK_BLOCKED' and practice_id in ({listed})""",
    )
    touched = pl.DataFrame(
        [
            {"practice_id": e["practice_id"], "invoice_id": e["invoice_id"]}
            for e in applied.updated + applied.blocked
        ],
        schema={"practice_id": pl.Utf8, "invoice_id": pl.Utf8},
    )
    columns = ("practice_id", "invoice_id", "line_id", "code", "severity", "detail", "fix")
    wh.merge_exceptions(
        con,
        pl.DataFrame(found, schema={c: pl.Utf8 for c in columns}),
        pl.concat([scope, touched, still.select(INVOICE)]).unique(),
        now,
        unattributed=False,
        codes=RETRACK_CODES,
    )


def summary_of(applied: Applied) -> dict:
    def count(rows: list[dict]) -> dict[str, int]:
        found: dict[str, int] = {}
        for row in rows:
            found[row["practice_id"]] = found.get(row["practice_id"], 0) + 1
        return dict(sorted(found.items()))

    return {
        "check_id": applied.check_id,
        "updated": count(applied.updated),
        "blocked": count(applied.blocked),
        "blocked_why": {
            f"{e['practice_id']} {e['invoice_number']}": " ".join(e["messages"]) for e in applied.blocked
        },
        "skipped": dict(sorted(applied.skipped.items())),
        "requests": len(applied.requests),
    }
