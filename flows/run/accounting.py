"""Every invoice accounted for: the check a run makes on its working warehouse before it publishes anything.

After a run, every exportable invoice of the source (an approved invoice, or one whose status did not parse,
with a practice_id and an invoice_id) must be in exactly one state in `invoice_tracking` (ready, held or
not_xero), a held one with an open error in `exceptions` and a ready one with none, and each of its lines
in exactly one `line_tracking` row carrying the same state; a line of the source whose invoice does not
exist must be an ORPHAN_LINE in `exceptions`. A line that cannot be told apart (no line_id, or no
practice_id) must keep every invoice it may belong to from being sent as ready, since the invoice would
reach Xero without it.

Scope: `run_scope_keys` is the set of (practice_id, invoice_id) the run promised to account for; None
means the whole source. The source tables (`raw_*`, the run's source registered on its connection) hold
the source as the run saw it (a nightly sees only what it can need: flows.run.steps._nightly_source), but a
backfill over a date range or a practice only recomputes its own invoices, so an invoice outside that range
may rightly be absent (never computed yet) or reflect the source of the run that last computed it; it is
not judged against this source. Nightly runs and backfills without a range pass None: then every
exportable invoice of the source must be accounted for, which is what catches an invoice a nightly never
picks up (one exported late with an old updated_at). Orphan lines are recomputed by every run, so they
are checked whatever the scope.

The check reads only the warehouse (DuckDB SQL), so it judges what would be published, not what the
resolution meant to write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import polars as pl

from flows.warehouse.writes import arrow
from transforms.vocabulary import RUN_CODES

SHOWN = 3  # offending keys named in the message
# The codes a run decides on (what Xero did with a sent invoice holds nothing: transforms.vocabulary).
RUN_CODE_LIST = ", ".join(f"'{code}'" for code in RUN_CODES)

# The source, as the checks see it (temp tables of the run, built in this order). Mirrors
# transforms.parse_sources: an id is there when it is not blank; a status parses when, trimmed and
# lower-cased, it is one of the contract's; an invoice with any exportable copy is exportable.
_SOURCE: dict[str, str] = {
    "raw_inv": """
        select practice_id, invoice_id,
               lower(_acc_strip(status)) in ('draft', 'approved', 'void') as status_parses,
               lower(_acc_strip(status)) = 'approved' as approved
        from raw_invoices
        where _acc_has(practice_id) and _acc_has(invoice_id)
    """,
    # the source's invoices that its lines judged here name (the orphan check needs no others)
    "invoice_keys": """
        select distinct practice_id, invoice_id from raw_inv
        semi join (select practice_id, invoice_id from raw_invoice_lines) using (practice_id, invoice_id)
    """,
    "in_scope": """
        select practice_id, invoice_id from raw_inv
        {scope_filter}
        group by all
        having bool_or(approved or status_parses is not true)
    """,
    # Exportable invoices of the source that the warehouse holds no rows of (its index: flows.warehouse.store),
    # for a run that judges only its own invoices in full (`present`).
    "unstored": """
        select practice_id, invoice_id
        from (select * from raw_inv
              anti join (select practice_id, invoice_id from store_index where not loose)
                  using (practice_id, invoice_id))
        group by all having bool_or(approved or status_parses is not true)
    """,
    "raw_lines": """
        select practice_id, invoice_id, line_id,
               _acc_has(practice_id) as has_practice,
               _acc_has(invoice_id) as has_invoice,
               _acc_has(line_id) as has_line
        from raw_invoice_lines
    """,
    # Each invoice's lines on both sides in a few numbers (rows, a sum of their ids' hashes, states): only
    # the invoices where they differ (a repeated line, a missing one, another state...) are compared line
    # by line (`suspect`), so ten million lines are grouped once a side rather than joined line by line.
    "source_sums": """
        select practice_id, invoice_id, count(*) as lines, sum(hash(line_id)) as ids
        from raw_lines
        {line_filter}
        where has_line is true and has_practice and has_invoice
        group by all
    """,
    # lines that cannot be told apart: no line_id, or no practice_id (a handful)
    "keyless_lines": """
        select practice_id, invoice_id, line_id, has_practice, has_line from raw_lines
        where has_invoice is true and (has_line is not true or has_practice is not true)
    """,
    # each invoice in scope against invoice_tracking, once: its states, and whether an error is open on it
    "invoice_match": """
        select s.practice_id, s.invoice_id, count(t.invoice_id) as states,
               bool_or(t.invoice_id is not null
                       and coalesce(t.invoice_state, '') not in ('ready', 'held', 'not_xero')) as odd_state,
               count(*) filter (where t.invoice_state = 'held') as held,
               count(*) filter (where t.invoice_state = 'ready') as ready,
               bool_or(e.invoice_id is not null) as has_error
        from in_scope s
        left join invoice_tracking t using (practice_id, invoice_id)
        left join (select distinct practice_id, invoice_id from exceptions
                   where severity = 'error' and invoice_id is not null and code in ({run_codes}))
                  e using (practice_id, invoice_id)
        group by all
    """,
    # (each invoice's rows of a state summed first, then matched to its invoice's states)
    "tracked_sums": """
        select l.practice_id, l.invoice_id, sum(l.lines) as lines, sum(l.ids) as ids,
               bool_or(t.practice_id is not null and l.invoice_state is distinct from t.invoice_state)
                   as disagrees,
               bool_or(t.practice_id is null) as no_invoice
        from (select practice_id, invoice_id, invoice_state, count(*) as lines, sum(hash(line_id)) as ids
              from line_tracking {line_filter} group by all) l
        left join invoice_tracking t using (practice_id, invoice_id)
        group by all
    """,
    "suspect": """
        select practice_id, invoice_id
        from (select * from in_scope {line_filter})
        left join source_sums s using (practice_id, invoice_id)
        left join tracked_sums t using (practice_id, invoice_id)
        where s.lines is distinct from t.lines or s.ids is distinct from t.ids or t.disagrees
    """,
    "source_lines": """
        select distinct l.practice_id, l.invoice_id, l.line_id
        from raw_lines l join suspect s using (practice_id, invoice_id)
        where l.has_line is true
    """,
    "tracked_lines": """
        select l.practice_id, l.invoice_id, l.line_id, count(*) as copies,
               bool_or(t.practice_id is not null and l.invoice_state is distinct from t.invoice_state)
                   as disagrees
        from line_tracking l join suspect s using (practice_id, invoice_id)
        left join invoice_tracking t using (practice_id, invoice_id)
        group by all
    """,
    "line_match": """
        select practice_id, invoice_id, line_id,
               s.line_id is not null as in_source, t.line_id is not null as tracked,
               coalesce(t.copies, 0) as copies, coalesce(t.disagrees, false) as disagrees
        from source_lines s full join tracked_lines t using (practice_id, invoice_id, line_id)
    """,
}

_CHECKS: dict[str, str] = {
    # every exportable invoice of the source is held by the warehouse (`present`: the others are judged
    # below, as every one is when the run judges the whole source)
    "approved invoices of the source are in no part of the warehouse (store_index)": """
        select practice_id, invoice_id, null as line_id from unstored
    """,
    # every exportable invoice of the source is in exactly one state
    "approved invoices of the source are in no state in invoice_tracking": """
        select practice_id, invoice_id, null as line_id from invoice_match where states = 0
    """,
    "invoices are in more than one state, or in one that is not ready, held or not_xero": """
        select practice_id, invoice_id, null as line_id from invoice_match
        where states > 1 or odd_state
    """,
    "held invoices have no open error in exceptions saying why": """
        select practice_id, invoice_id, null as line_id from invoice_match where held > 0 and not has_error
    """,
    "ready invoices have an open error in exceptions": """
        select practice_id, invoice_id, null as line_id from invoice_match where ready > 0 and has_error
    """,
    # every line of such an invoice is in exactly one line_tracking row, with its invoice's state
    "lines of the source are not in line_tracking": """
        select practice_id, invoice_id, line_id from line_match where in_source and not tracked
    """,
    "lines are in more than one line_tracking row": """
        select practice_id, invoice_id, line_id from line_match where copies > 1
    """,
    "line_tracking rows are not lines of the source": """
        select practice_id, invoice_id, line_id from line_match where tracked and not in_source
    """,
    "line_tracking rows disagree with their invoice's state": """
        select practice_id, invoice_id, line_id from line_match where disagrees
    """,
    "line_tracking rows belong to no invoice in invoice_tracking": """
        select l.practice_id, l.invoice_id, l.line_id from line_tracking l
        semi join (select practice_id, invoice_id from tracked_sums where no_invoice) using (practice_id, invoice_id)
    """,
    # a line that cannot be told apart keeps its invoice (any practice's, without a practice_id) from Xero
    "ready invoices have a line of the source without a line_id or practice_id": """
        select s.practice_id, s.invoice_id, null as line_id from in_scope s
        semi join (select t.practice_id, t.invoice_id from keyless_lines l join invoice_tracking t
                     on l.invoice_id = t.invoice_id
                    and ((l.practice_id = t.practice_id and l.has_line is not true)
                         or l.has_practice is not true)
                   where t.invoice_state = 'ready') k using (practice_id, invoice_id)
    """,
    # a line whose invoice does not exist is an ORPHAN_LINE
    "orphan lines of the source are not in exceptions": """
        select l.practice_id, l.invoice_id, l.line_id from raw_lines l
        semi join (select practice_id, invoice_id from source_sums
                   anti join invoice_keys using (practice_id, invoice_id)) using (practice_id, invoice_id)
        where l.has_practice and l.has_invoice and l.has_line
          and not exists (select 1 from exceptions e
                          where e.code = 'ORPHAN_LINE' and e.practice_id = l.practice_id
                            and e.line_id = l.line_id)
    """,
}


# What a chunk's own check (flows.run.steps.check, `lines_only`) leaves out: the checks of each invoice's
# states, which the run's last check makes for every invoice in scope on the warehouse as it will be
# published, and orphan lines, which a chunk cannot hold (its lines are those of its invoices).
_INVOICE_LEVEL_SOURCES = {"invoice_keys", "invoice_match"}
_INVOICE_LEVEL_CHECKS = {
    "approved invoices of the source are in no state in invoice_tracking",
    "invoices are in more than one state, or in one that is not ready, held or not_xero",
    "held invoices have no open error in exceptions saying why",
    "ready invoices have an open error in exceptions",
    "orphan lines of the source are not in exceptions",
}


def _shared(sql: str) -> str:
    """SQL reading the run's temp tables of the source (`in_scope` -> `_acc_in_scope`, ...)."""
    for name in _SOURCE:
        sql = re.sub(rf"\b{name}\b", f"_acc_{name}", sql)
    return sql


# What only a run that judges its own invoices in full and the rest of the source for presence makes.
_PRESENCE_SOURCES = {"unstored"}
_PRESENCE_CHECKS = {"approved invoices of the source are in no part of the warehouse (store_index)"}

assert _INVOICE_LEVEL_CHECKS <= _CHECKS.keys() and _INVOICE_LEVEL_SOURCES <= _SOURCE.keys()


class AccountingCheckFailed(RuntimeError):
    """An invoice or line of the source is not accounted for: a bug, so the run publishes nothing."""


@dataclass
class Unaccounted:
    """One check that failed: what it says, how many rows, and the first (practice, invoice[, line]) keys."""

    what: str
    count: int
    keys: list[tuple[str, ...]]


def unaccounted(
    con: duckdb.DuckDBPyConnection,
    run_scope_keys: pl.DataFrame | None = None,
    shown: int = SHOWN,
    line_scope_keys: pl.DataFrame | None = None,
    lines_only: bool = False,
    present: bool = False,
) -> list[Unaccounted]:
    """Every check of the module docstring that fails in the warehouse of `con`; empty when all pass.

    `line_scope_keys`: the invoices whose lines are judged line by line (the run's own, whose source lines
    it read); None for every invoice in scope. `lines_only`: the checks of lines only (a chunk's own).
    `present`: also that every exportable invoice of the source, in scope or not, is in the warehouse's
    index (a nightly judges its own invoices in full; the others' rows were judged by the runs that wrote
    them, and this one changed none of them)."""
    needed = ("raw_invoices", "raw_invoice_lines", "invoice_tracking", "line_tracking")
    needed += (() if lines_only else ("exceptions",)) + (("store_index",) if present else ())
    missing = [name for name in needed if not _readable(con, name)]
    if missing:
        return [Unaccounted(f"the warehouse has no {', '.join(sorted(missing))}", 0, [])]
    scope_filter = line_filter = ""
    if run_scope_keys is not None:
        con.register("_accounting_scope", arrow(run_scope_keys.select("practice_id", "invoice_id")))
        scope_filter = "semi join _accounting_scope k using (practice_id, invoice_id)"
    if line_scope_keys is not None:
        con.register("_accounting_lines", arrow(line_scope_keys.select("practice_id", "invoice_id")))
        line_filter = "semi join _accounting_lines using (practice_id, invoice_id)"
    # Text stripped of whitespace as transforms.parse_sources strips it (Unicode White_Space, as Rust's
    # trim: SQL's trim() takes spaces only, so a practice_id of a line break would be an id here). A
    # status that is already one of the contract's, as nearly all are, is taken as it is.
    con.execute(
        r"""create or replace temp macro _acc_strip(x) as
            case when x in ('draft', 'approved', 'void') then x
                 else regexp_replace(x, '^[\s\x{0B}\x{85}\p{Z}]+|[\s\x{0B}\x{85}\p{Z}]+$', '', 'g') end"""
    )
    # Whether text stripped so is not empty: it holds a character that is not white space. Text that
    # starts with a visible ASCII character does, without a search (nearly every id).
    con.execute(
        r"""create or replace temp macro _acc_has(x) as
            case when x is null then null
                 when ascii(x) between 33 and 126 then true
                 else regexp_matches(x, '[^\s\x{0B}\x{85}\p{Z}]') end"""
    )
    try:
        # The source's invoices and lines, read once into temp tables the checks share.
        for name, sql in _SOURCE.items():
            if (lines_only and name in _INVOICE_LEVEL_SOURCES) or (not present and name in _PRESENCE_SOURCES):
                continue
            source_sql = _shared(
                sql.format(scope_filter=scope_filter, line_filter=line_filter, run_codes=RUN_CODE_LIST)
            )
            con.execute(f"create or replace temp table _acc_{name} as {source_sql}")
        failures = []
        for what, sql in _CHECKS.items():
            if (lines_only and what in _INVOICE_LEVEL_CHECKS) or (not present and what in _PRESENCE_CHECKS):
                continue
            sql = _shared(sql)
            rows = con.execute(f"select * from ({sql}) order by all limit {shown + 1}").fetchall()
            if rows:
                count = con.execute(f"select count(*) from ({sql})").fetchone()[0]
                failures.append(
                    Unaccounted(what, count, [tuple(p for p in r if p is not None) for r in rows])
                )
        return failures
    finally:
        for name in _SOURCE:
            con.execute(f"drop table if exists _acc_{name}")
        if run_scope_keys is not None:
            con.unregister("_accounting_scope")
        if line_scope_keys is not None:
            con.unregister("_accounting_lines")


def _readable(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """A table, view or frame registered on the connection (raw_* are the run's source, registered)."""
    try:
        con.execute(f"select 1 from {name} limit 0")
    except duckdb.CatalogException:
        return False
    return True


def check_accounting(
    con: duckdb.DuckDBPyConnection,
    run_scope_keys: pl.DataFrame | None = None,
    line_scope_keys: pl.DataFrame | None = None,
    lines_only: bool = False,
    present: bool = False,
) -> None:
    """Raise AccountingCheckFailed (one line) unless every exportable invoice in scope is accounted for.

    `run_scope_keys`: the (practice_id, invoice_id) pairs the run recomputed; None for the whole source.
    `line_scope_keys`: the invoices judged line by line; None for all in scope. `lines_only`: only the
    checks of their lines; `present`: the source's other invoices judged for presence only (`unaccounted`).
    """
    failures = unaccounted(
        con, run_scope_keys, line_scope_keys=line_scope_keys, lines_only=lines_only, present=present
    )
    if failures:
        raise AccountingCheckFailed(
            "accounting check failed: "
            + "; ".join(
                (f"{f.count} {f.what}" if f.count else f.what) + (f" ({_keys(f.keys)})" if f.keys else "")
                for f in failures
            )
            + "; nothing was published (`trackline backfill` recomputes every invoice; "
            + "if this persists, report it)"
        )


def _keys(rows: list[tuple]) -> str:
    shown = [
        re.sub(r"[\x00-\x1f\x7f]", " ", "/".join(str(part)[:60] for part in row)) for row in rows[:SHOWN]
    ]
    return ", ".join(shown) + (", ..." if len(rows) > SHOWN else "")
