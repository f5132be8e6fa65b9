"""`trackline push`: the written batches not yet accepted by Xero, sent to each practice's own organisation
(contract section 6), exactly once, and every outcome recorded.

For each practice with a connection, in parallel (each within its organisation's limits, flows.xero.api):

1. its organisation's tracking categories (`GET /TrackingCategories?includeArchived=true`): an invoice
   naming a category or option Xero does not have ACTIVE is not sent (XERO_OPTION_NOT_ACTIVE), until a
   push finds it active;
2. each of its batches, less its invoices already in Xero, refused by Xero with the same content, or
   batched again since with other content: the batch file's body with only the others, as
   `PUT /Invoices?summarizeErrors=false&unitdp=4` with an Idempotency-Key made of the batch and the
   digests of what it carries (the same for every attempt at the same content);
3. Xero's answer, invoice by invoice: accepted (xero_sent_invoices, with Xero's InvoiceID and each line's
   LineItemID) or refused (XERO_REJECTED with Xero's messages; xero_rejections keeps the digest, and the
   invoice is sent again only when what would be sent for it changes).

Exactly once, whatever kills the push. Before a request goes out, the journal (a file beside the warehouse,
each line flushed to disk) says which invoices it carries; when the answer comes, the journal says what
Xero did; every request is journaled as it is made. The warehouse is written once, atomically, at the end
(flows.run.publish). The next push first takes what the journal holds of pushes that never committed; for
a request whose answer never came it asks Xero what it has (`GET /Invoices?InvoiceNumbers=...`) and
records what it finds as sent before anything is resent (Xero would also refuse a second invoice with the
same number, and a repeated Idempotency-Key within six minutes returns the first answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from flows import faults
from flows.warehouse import writes as wh
from flows.xero.api import (
    Attempt,
    DayLimitReached,
    Limits,
    Organisation,
    Xero,
    XeroAuthError,
    XeroUnavailable,
    load_connections,
)
from transforms.vocabulary import XERO_CODES

INVOICE = ["practice_id", "invoice_id"]
PUT_PARAMS = {"summarizeErrors": "false", "unitdp": "4"}
LOOKUP_AT_ONCE = 40  # invoice numbers asked for in one GET /Invoices


def journal_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".xero-journal")


@dataclass(frozen=True)
class PushSettings:
    api_url: str
    token_url: str
    connections: Path
    limits: Limits


# What to send ------------------------------------------------------------------------------------------

PENDING_SQL = """
    with current as (
        select practice_id, invoice_id, digest from invoice_tracking where invoice_state = 'ready'
    )
    select l.practice_id, l.batch_id, l.invoice_id, l.digest, x.invoice_number, b.path
    from export_ledger l
    join current c using (practice_id, invoice_id)
    join xero_invoices x using (practice_id, invoice_id)
    join xero_batches b on b.batch_id = l.batch_id
    where l.digest = c.digest
      and not exists (select 1 from xero_sent_invoices s
                      where s.practice_id = l.practice_id and s.invoice_id = l.invoice_id)
      and not exists (select 1 from xero_rejections r
                      where r.practice_id = l.practice_id and r.invoice_id = l.invoice_id and r.digest = l.digest)
    order by l.practice_id, l.batch_id, l.invoice_id
"""

TRACKING_SQL = """
    select x.practice_id, x.invoice_id, x.line_no, x.tracking1_name, x.tracking1_option,
           x.tracking2_name, x.tracking2_option
    from xero_line_items x semi join _pending p using (practice_id, invoice_id)
    where x.tracking1_name is not null or x.tracking2_name is not null
"""


@dataclass
class Sending:
    """One request to make: a batch's file, and the invoices of it to send (in the file's order)."""

    practice_id: str
    batch_id: str
    path: Path
    invoices: list[dict]  # invoice_id, invoice_number, digest

    @property
    def key(self) -> str:
        content = "\x1f".join([self.practice_id, self.batch_id, *(i["digest"] for i in self.invoices)])
        return "trackline-" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:48]

    def body(self) -> bytes:
        """The batch file's body with only these invoices (found in it by InvoiceNumber)."""
        document = json.loads(self.path.read_bytes())
        wanted = {i["invoice_number"] for i in self.invoices}
        kept = [i for i in document["Invoices"] if i["InvoiceNumber"] in wanted]
        if len(kept) != len(self.invoices):
            raise RuntimeError(f"{self.path}: the batch file does not hold the invoices its ledger rows say")
        return json.dumps({"Invoices": kept}).encode("utf-8")


# The journal --------------------------------------------------------------------------------------------


class Journal:
    """What a push said and heard, a line at a time, each flushed to disk before the push goes on."""

    def __init__(self, path: Path, push_id: str) -> None:
        self.path, self.push_id = path, push_id
        self.handle = None

    def __enter__(self) -> Journal:
        self.handle = open(self.path, "a", encoding="utf-8")
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()

    def write(self, entry: dict) -> None:
        self.handle.write(json.dumps({**entry, "push_id": self.push_id}, default=str) + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())

    @staticmethod
    def read(path: Path) -> list[dict]:
        if not path.exists():
            return []
        entries = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a kill: nothing after it was written
        return entries

    @staticmethod
    def unanswered(path: Path) -> list[dict]:
        """The journal's requests still without an answer (kept for the next push once this one commits)."""
        entries = Journal.read(path)
        answered = {e["key"] for e in entries if e["event"] == "answered"}
        return [e for e in entries if e["event"] == "sending" and e["key"] not in answered]

    @staticmethod
    def keep_only(path: Path, entries: list[dict]) -> None:
        """Rewrite the journal to hold only `entries` (requests still without an answer), atomically."""
        partial = path.with_name(path.name + ".partial")
        with open(partial, "w", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)


# The outcome of a push ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a push found out, as rows for the warehouse."""

    push_id: str
    sent: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    not_active: list[dict] = field(default_factory=list)  # practice_id, invoice_id, why
    looked_at: list[dict] = field(default_factory=list)  # every invoice the push judged (its XERO_ codes)
    requests: list[dict] = field(default_factory=list)  # Attempts, as dicts
    skipped: dict[str, str] = field(default_factory=dict)  # practice -> why
    unfinished: dict[str, str] = field(default_factory=dict)  # skipped because Xero failed: practice -> why
    unanswered: list[dict] = field(default_factory=list)  # `sending` entries whose answer never came
    batches_sent: int = 0

    def answered(self, entry: dict) -> None:
        """Take an `answered` entry of the journal."""
        for result in entry["results"]:
            row = {
                **result,
                "practice_id": entry["practice_id"],
                "batch_id": entry["batch_id"],
                "at": entry["at"],
            }
            (self.rejected if result.get("errors") else self.sent).append(row)
            self.looked_at.append({"practice_id": entry["practice_id"], "invoice_id": result["invoice_id"]})

    @property
    def done(self) -> pl.DataFrame:
        """The invoices Xero answered for: not to be sent again by this push."""
        keys = [
            {"practice_id": r["practice_id"], "invoice_id": r["invoice_id"]}
            for r in self.sent + self.rejected
        ]
        return pl.DataFrame(keys, schema={"practice_id": pl.Utf8, "invoice_id": pl.Utf8})


def replay(entries: list[dict], committed: set[str], push_id: str) -> Outcome:
    """What the journal holds of pushes that never committed: their answers and requests, and the
    requests whose answer never came (those of a committed push too: it could not learn their outcome)."""
    outcome = Outcome(push_id)
    answered = {e["key"] for e in entries if e["event"] == "answered"}
    for entry in entries:
        fresh = entry.get("push_id") not in committed
        if entry["event"] == "answered" and fresh:
            outcome.answered(entry)
        elif entry["event"] == "request" and fresh:
            outcome.requests.append(entry["attempt"])
        elif entry["event"] == "sending" and entry["key"] not in answered:
            outcome.unanswered.append(entry)
    return outcome


# Sending ------------------------------------------------------------------------------------------------


def _active_names(categories: dict) -> dict[str, set[str]]:
    """Category name -> its ACTIVE option names, for the ACTIVE categories of an organisation."""
    return {
        c["Name"]: {o["Name"] for o in c.get("Options", []) if o.get("Status") == "ACTIVE"}
        for c in categories.get("TrackingCategories", [])
        if c.get("Status") == "ACTIVE"
    }


def not_active(lines: pl.DataFrame, active: dict[str, set[str]]) -> dict[str, list[tuple[str, str]]]:
    """invoice_id -> what of its tracking Xero does not have ACTIVE, in words, and each time what to make
    ACTIVE in Xero (`lines`: invoice_id, line_no and the four tracking columns of xero_line_items)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for invoice_id, line_no, *slots in lines.iter_rows():
        for slot, (name, option) in enumerate(zip(slots[::2], slots[1::2], strict=True), start=1):
            if name is None:
                continue
            if name not in active:
                why = f"line {line_no} slot {slot}: category '{name}' is not an ACTIVE tracking category in Xero"
                what = f"tracking category '{name}' with its option '{option}'"
            elif option not in active[name]:
                why = f"line {line_no} slot {slot}: option '{option}' of '{name}' is not ACTIVE in Xero"
                what = f"option '{option}' of tracking category '{name}'"
            else:
                continue
            found.setdefault(invoice_id, []).append((why, what))
    return found


def _sent(invoice: dict, xero_invoice: dict) -> dict:
    return {
        "invoice_id": invoice["invoice_id"],
        "invoice_number": invoice["invoice_number"],
        "digest": invoice["digest"],
        "xero_invoice_id": xero_invoice["InvoiceID"],
        "line_item_ids": [line["LineItemID"] for line in xero_invoice.get("LineItems", [])],
        "errors": [],
    }


def _refused(invoice: dict, messages: list[str]) -> dict:
    return {**invoice, "errors": messages or ["Xero refused it without a message"]}


async def _lookup(org: Organisation, numbers: list[str]) -> dict[str, dict]:
    """InvoiceNumber -> the invoice Xero has (with its lines), for those of `numbers` it has."""
    found: dict[str, dict] = {}
    for start in range(0, len(numbers), LOOKUP_AT_ONCE):
        asked = numbers[start : start + LOOKUP_AT_ONCE]
        params = {"InvoiceNumbers": ",".join(asked), "page": "1"}
        response = await org.call("GET", "/Invoices", purpose="lookup", params=params)
        if response.status_code != 200:
            raise XeroUnavailable(f"GET /Invoices?InvoiceNumbers=... answered {response.status_code}")
        for invoice in response.json().get("Invoices", []):
            if invoice.get("Type") == "ACCREC" and invoice.get("Status") not in ("DELETED", "VOIDED"):
                found[invoice["InvoiceNumber"]] = invoice
    return found


async def _send(org: Organisation, sending: Sending, journal: Journal, outcome: Outcome) -> None:
    body = sending.body()
    journal.write(
        {
            "event": "sending",
            "practice_id": sending.practice_id,
            "batch_id": sending.batch_id,
            "key": sending.key,
            "invoices": sending.invoices,
            "at": datetime.now(UTC).isoformat(),
        }
    )
    faults.checkpoint("push-sending")
    response = await org.call(
        "PUT",
        "/Invoices",
        purpose="send",
        params=PUT_PARAMS,
        body=body,
        key=sending.key,
        batch_id=sending.batch_id,
    )
    faults.checkpoint("push-answered")  # Xero has decided; the journal does not know yet
    if response.status_code == 200:
        answers = response.json().get("Invoices", [])
        if len(answers) != len(sending.invoices):
            raise XeroUnavailable(f"batch {sending.batch_id}: Xero answered for {len(answers)} invoices")
        results = [
            _refused(i, [e.get("Message", "") for e in x.get("ValidationErrors", [])])
            if x.get("HasErrors") or x.get("StatusAttributeString") == "ERROR"
            else _sent(i, x)
            for i, x in zip(sending.invoices, answers, strict=True)
        ]
    elif response.status_code == 400:
        # The whole request refused (its body, its size): nothing was created; each invoice says why.
        answer = response.json() if "json" in response.headers.get("content-type", "") else {}
        message = answer.get("Message") or answer.get("Detail") or response.text[:200]
        results = [_refused(i, [message]) for i in sending.invoices]
    else:
        raise XeroUnavailable(f"PUT /Invoices for batch {sending.batch_id} answered {response.status_code}")
    entry = {
        "event": "answered",
        "practice_id": sending.practice_id,
        "batch_id": sending.batch_id,
        "key": sending.key,
        "results": results,
        "at": datetime.now(UTC).isoformat(),
    }
    journal.write(entry)
    outcome.answered(entry)
    outcome.batches_sent += 1


async def _recover(org: Organisation, unanswered: list[dict], journal: Journal, outcome: Outcome) -> None:
    """Requests of an earlier push whose answer never came: what Xero has of them is recorded as sent."""
    invoices = [i for entry in unanswered for i in entry["invoices"]]
    found = await _lookup(org, sorted({i["invoice_number"] for i in invoices}))
    for entry in unanswered:
        answer = {
            "event": "answered",
            "practice_id": entry["practice_id"],
            "batch_id": entry["batch_id"],
            "key": entry["key"],
            "results": [
                _sent(i, found[i["invoice_number"]])
                for i in entry["invoices"]
                if i["invoice_number"] in found
            ],
            "found_by_lookup": True,
            "at": datetime.now(UTC).isoformat(),
        }
        journal.write(answer)
        outcome.answered(answer)


async def _send_or_leave(org: Organisation, sending: Sending, journal: Journal, outcome: Outcome) -> None:
    """One batch; when Xero keeps failing for it through every retry, it is left for the next push (the
    practice is unfinished) and the practice's other batches go on. A stop for the whole organisation (its
    daily limit, its credentials) still stops them all."""
    try:
        await _send(org, sending, journal, outcome)
    except XeroUnavailable as problem:
        practice_id = org.connection.practice_id
        outcome.skipped[practice_id] = outcome.unfinished[practice_id] = str(problem)


async def push_practice(
    org: Organisation,
    rows: pl.DataFrame,
    tracking: pl.DataFrame,
    unanswered: list[dict],
    journal: Journal,
    outcome: Outcome,
) -> None:
    """Everything one practice has to send (see the module docstring)."""
    practice_id = org.connection.practice_id
    try:
        if unanswered:
            await _recover(org, unanswered, journal, outcome)
            rows = rows.join(outcome.done, on=INVOICE, how="anti")
        if rows.is_empty():
            return
        answer = await org.call(
            "GET", "/TrackingCategories", purpose="categories", params={"includeArchived": "true"}
        )
        if answer.status_code != 200:
            raise XeroUnavailable(f"GET /TrackingCategories answered {answer.status_code}")
        inactive = not_active(tracking.drop("practice_id"), _active_names(answer.json()))
        for invoice_id in rows["invoice_id"].unique().to_list():
            outcome.looked_at.append({"practice_id": practice_id, "invoice_id": invoice_id})
            if invoice_id in inactive:
                outcome.not_active.append(
                    {"practice_id": practice_id, "invoice_id": invoice_id, "why": inactive[invoice_id]}
                )
        sendable = rows.filter(~pl.col("invoice_id").is_in(list(inactive)))
        sendings = [
            Sending(
                practice_id,
                batch_id,
                Path(batch["path"][0]),
                batch.select("invoice_id", "invoice_number", "digest").to_dicts(),
            )
            for (batch_id,), batch in sendable.group_by("batch_id", maintain_order=True)
        ]
        # A task group, not gather: when one send stops the practice, the others are cancelled at once
        # (what they sent is in the journal, and the next push looks it up) rather than left running.
        async with asyncio.TaskGroup() as group:
            for sending in sendings:
                group.create_task(_send_or_leave(org, sending, journal, outcome))
    except* DayLimitReached as stops:
        outcome.skipped[practice_id] = str(stops.exceptions[0])
    except* (XeroAuthError, XeroUnavailable) as stops:
        outcome.skipped[practice_id] = outcome.unfinished[practice_id] = str(stops.exceptions[0])


async def push(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    warehouse: Path,
    push_id: str,
    settings: PushSettings,
    practices: list[str] | None,
) -> Outcome:
    """One push (see the module docstring): the journal taken in, then every practice's batches sent.
    Reads the warehouse through `con` and writes nothing to it (`record` does)."""
    committed = {r[0] for r in con.execute("select push_id from xero_pushes").fetchall()}
    outcome = replay(Journal.read(journal_path(warehouse)), committed, push_id)
    rows = wh.query(con, PENDING_SQL).with_columns(
        pl.concat_str([pl.lit(f"{out}/"), pl.col("path")]).alias("path")
    )
    rows = rows.join(outcome.done, on=INVOICE, how="anti")
    if practices:
        rows = rows.filter(pl.col("practice_id").is_in(practices))
    unanswered: dict[str, list[dict]] = {}
    for entry in outcome.unanswered:
        if not practices or entry["practice_id"] in practices:
            unanswered.setdefault(entry["practice_id"], []).append(entry)
    wanted = set(rows["practice_id"].unique().to_list()) | set(unanswered)
    connections = load_connections(settings.connections) if wanted else {}
    for practice_id in sorted(wanted - set(connections)):
        outcome.skipped[practice_id] = "no Xero connection for it in the connections file"
    sendable = sorted(wanted & set(connections))
    if not sendable:
        return outcome
    con.register("_pending", wh.arrow(rows.select(INVOICE).unique()))
    tracking = wh.query(con, TRACKING_SQL)
    con.unregister("_pending")
    with Journal(journal_path(warehouse), push_id) as journal:

        def recorded(attempt: Attempt) -> None:
            made = {**asdict(attempt), "requested_at": attempt.requested_at.isoformat()}
            journal.write({"event": "request", "attempt": made})
            outcome.requests.append(made)

        xero = Xero(
            settings.api_url, settings.token_url, settings.connections, connections, settings.limits, recorded
        )
        try:
            await asyncio.gather(
                *(
                    push_practice(
                        xero.organisation(p),
                        rows.filter(pl.col("practice_id") == p),
                        tracking.filter(pl.col("practice_id") == p),
                        unanswered.get(p, []),
                        journal,
                        outcome,
                    )
                    for p in sendable
                )
            )
        finally:
            await xero.close()
    outcome.unanswered = [e for e in outcome.unanswered if e["practice_id"] not in sendable]
    faults.checkpoint("push-journaled")
    return outcome


# Recording ----------------------------------------------------------------------------------------------


def record(con: duckdb.DuckDBPyConnection, outcome: Outcome, started: datetime, finished: datetime) -> None:
    """What the push found out, in the warehouse (the push's working copy: it commits atomically)."""
    if outcome.sent:
        _insert_new(
            con,
            "xero_sent_invoices",
            pl.DataFrame(
                [
                    {
                        "practice_id": r["practice_id"],
                        "invoice_id": r["invoice_id"],
                        "invoice_number": r["invoice_number"],
                        "batch_id": r["batch_id"],
                        "xero_invoice_id": r["xero_invoice_id"],
                        "line_item_ids": r["line_item_ids"],
                        "digest": r["digest"],
                        "sent_at": datetime.fromisoformat(r["at"]),
                        "push_id": outcome.push_id,
                    }
                    for r in outcome.sent
                ],
                schema_overrides={"line_item_ids": pl.List(pl.Utf8)},
                infer_schema_length=None,
            ),
            "x.practice_id = n.practice_id and x.invoice_id = n.invoice_id",
        )
        con.execute(SENT_LINES_SQL, [outcome.push_id])
    if outcome.rejected:
        _insert_new(
            con,
            "xero_rejections",
            pl.DataFrame(
                [
                    {
                        "practice_id": r["practice_id"],
                        "invoice_id": r["invoice_id"],
                        "digest": r["digest"],
                        "batch_id": r["batch_id"],
                        "messages": r["errors"],
                        "rejected_at": datetime.fromisoformat(r["at"]),
                        "push_id": outcome.push_id,
                    }
                    for r in outcome.rejected
                ],
                schema_overrides={"messages": pl.List(pl.Utf8)},
                infer_schema_length=None,
            ),
            "x.practice_id = n.practice_id and x.invoice_id = n.invoice_id and x.digest = n.digest",
        )
    _exceptions(con, outcome, finished)
    if outcome.requests:
        requests = pl.DataFrame(outcome.requests, infer_schema_length=None).with_columns(
            pl.lit(outcome.push_id).alias("push_id"),
            pl.col("requested_at").cast(pl.Utf8).str.to_datetime(time_zone="UTC"),
        )
        wh.insert(con, "xero_requests", requests)
    con.execute(
        "insert into xero_pushes values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            outcome.push_id,
            started,
            finished,
            sorted({r["practice_id"] for r in outcome.looked_at}),
            outcome.batches_sent,
            len(outcome.sent),
            len(outcome.rejected),
            len(outcome.not_active),
            len(outcome.requests),
            sorted(outcome.skipped),
        ],
    )


# What Xero now holds of each invoice this push created, line by line (verify and retrack compare with it):
# the lines sent are the invoice's current xero_line_items, as the push sent only current content. An
# invoice found after a lost answer whose content has changed since keeps no lines (verify skips it).
SENT_LINES_SQL = """
    insert into xero_sent_lines
    with sent as (
        select s.* from xero_sent_invoices s
        join invoice_tracking t using (practice_id, invoice_id)
        where s.push_id = ? and t.digest = s.digest
          and not exists (select 1 from xero_sent_lines l
                          where l.practice_id = s.practice_id and l.invoice_id = s.invoice_id)
    ),
    lines as (
        select x.*, row_number() over (partition by x.practice_id, x.invoice_id order by x.line_no) as n
        from xero_line_items x semi join sent using (practice_id, invoice_id)
    )
    select s.practice_id, s.invoice_id, s.xero_invoice_id, l.line_no, s.line_item_ids[l.n], l.line_id,
           l.description, l.quantity, l.unit_amount, l.line_amount, l.account_code, l.tax_type,
           l.tracking1_name, l.tracking1_option, l.tracking2_name, l.tracking2_option, s.sent_at, s.push_id
    from sent s join lines l using (practice_id, invoice_id)
    where len(s.line_item_ids) = (select count(*) from lines c
                                  where c.practice_id = s.practice_id and c.invoice_id = s.invoice_id)
"""


def _insert_new(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame, same: str) -> None:
    con.register("_new", wh.arrow(rows))
    try:
        con.execute(
            f"insert into {table} select * from _new n where not exists (select 1 from {table} x where {same})"
        )
    finally:
        con.unregister("_new")


def _exceptions(con: duckdb.DuckDBPyConnection, outcome: Outcome, now: datetime) -> None:
    """XERO_REJECTED and XERO_OPTION_NOT_ACTIVE for the invoices the push judged: opened for what Xero
    refused or lacks, closed for what went through."""
    if not outcome.looked_at:
        return
    found = [
        {
            "practice_id": r["practice_id"],
            "invoice_id": r["invoice_id"],
            "line_id": None,
            "code": "XERO_REJECTED",
            "severity": "error",
            "detail": f"Xero refused invoice {r['invoice_number']} (batch {r['batch_id']}): "
            + "; ".join(r["errors"]),
            "fix": f"Correct invoice {r['invoice_number']} in the practice app (or in Xero) as Xero's "
            "message says; the next run batches it again and the next push sends it",
        }
        for r in outcome.rejected
    ] + [
        {
            "practice_id": r["practice_id"],
            "invoice_id": r["invoice_id"],
            "line_id": None,
            "code": "XERO_OPTION_NOT_ACTIVE",
            "severity": "error",
            "detail": "not sent: "
            + "; ".join(why for why, _ in r["why"])
            + "; make it ACTIVE in Xero and the next push sends it",
            "fix": "Make "
            + " and ".join(dict.fromkeys(what for _, what in r["why"]))
            + " ACTIVE in the practice's Xero organisation, or change the tracking in the practice app",
        }
        for r in outcome.not_active
    ]
    columns = ("practice_id", "invoice_id", "line_id", "code", "severity", "detail", "fix")
    wh.merge_exceptions(
        con,
        pl.DataFrame(found, schema={c: pl.Utf8 for c in columns}),
        pl.DataFrame(outcome.looked_at, schema={"practice_id": pl.Utf8, "invoice_id": pl.Utf8}),
        now,
        unattributed=False,
        codes=XERO_CODES,
    )
