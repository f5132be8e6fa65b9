"""Run a source through the whole pipeline (plain functions, no Prefect) and read back what came out.

An `Outcome` says how the run ended (success, a documented one-line stop, or a crash), where every invoice
stands, what `exceptions` holds, whether `check_accounting` passes on the committed warehouse, and which
names crossed practices (a practice's row or file carrying another practice's `«marker»`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from flows.run.accounting import AccountingCheckFailed, check_accounting, unaccounted
from flows.run.pipeline import run_pipeline
from flows.run.steps import Scope
from flows.settings import Settings
from flows.sources.files import SourceError, read_source

MARKER = re.compile(r"«([^«»]{1,40})»")
# Output tables whose rows belong to one practice (raw_* are the source itself, shared by design).
PRACTICE_TABLES = (
    "invoice_tracking",
    "line_tracking",
    "xero_invoices",
    "xero_line_items",
    "xero_batches",
    "exceptions",
)


@dataclass
class Outcome:
    stopped: str | None = None  # the documented one-line stop (SourceError)
    crashed: str | None = None  # anything else that escaped the run: a bug
    states: dict[tuple[str, str], str] = field(default_factory=dict)
    codes: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    exceptions: pl.DataFrame = field(default_factory=pl.DataFrame)
    line_count: int = 0
    accounting: str | None = None  # check_accounting's message when it fails
    lost: int = 0  # invoices check_accounting finds unaccounted for (in no state, lines missing, ...)
    leaks: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def clean_stop(self) -> bool:
        return self.stopped is not None and "\n" not in self.stopped

    def state(self, practice_id: str, invoice_id: str) -> str | None:
        return self.states.get((practice_id, invoice_id))

    def problems(self, practice_id: str, invoice_id: str | None = None) -> pl.DataFrame:
        rows = self.exceptions.filter(pl.col("practice_id") == practice_id)
        if invoice_id is not None:
            rows = rows.filter(pl.col("invoice_id") == invoice_id)
        return rows

    def practice_states(self, practice_id: str) -> dict[str, str]:
        return {i: s for (p, i), s in self.states.items() if p == practice_id}


def settings(source: Path, work: Path) -> Settings:
    return Settings(source=source, warehouse=work / "wh" / "warehouse.duckdb", out=work / "out")


def run_source(source: Path, work: Path, flow: str = "backfill", **scope) -> Outcome:
    """One whole run of `source` into a warehouse and output folder under `work`."""
    chosen = settings(source, work)
    try:
        run_pipeline(chosen, Scope(flow, **scope), emit_batches=True, as_tasks=False)
    except SourceError as stop:
        return Outcome(stopped=str(stop))
    except Exception as bug:  # noqa: BLE001 - the point is to catch what should never escape
        frames = traceback.extract_tb(bug.__traceback__)
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
        return Outcome(
            crashed=f"{type(bug).__name__} at {where}: {str(bug).splitlines()[0] if str(bug) else ''}"
        )
    return read_outcome(chosen.warehouse, chosen.out, source)


def show_source(con: duckdb.DuckDBPyConnection, source: Path) -> None:
    """The source's invoices and lines as raw_<table> temp tables: a run reads them from the files and
    keeps no copy, and check_accounting judges a warehouse against them."""
    frames, _ = read_source(source)
    for table in ("invoices", "invoice_lines"):
        con.register("_source", frames[table].to_arrow())
        con.execute(f"create or replace temp table raw_{table} as select * from _source")
        con.unregister("_source")


def read_outcome(warehouse: Path, out: Path, source: Path) -> Outcome:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        show_source(con, source)
        tracking = _frame(
            con, "select practice_id, invoice_id, invoice_state, hold_codes from invoice_tracking"
        )
        exceptions = _frame(
            con, "select practice_id, invoice_id, line_id, code, severity, detail from exceptions"
        )
        line_count = con.execute("select count(*) from line_tracking").fetchone()[0]
        try:
            check_accounting(con, None)
            accounting, lost = None, 0
        except AccountingCheckFailed as failed:
            accounting = str(failed)
            lost = len({keys[:2] for f in unaccounted(con, None, shown=100_000) for keys in f.keys})
        allowed = _own_markers(con)
        leaks = [leak for table in PRACTICE_TABLES for leak in _table_leaks(con, table, allowed)]
        owners = dict(
            con.execute(
                "select path, practice_id from xero_batches union all select csv_path, practice_id from xero_batches"
            ).fetchall()
        )
    finally:
        con.close()
    files = (
        {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
        if out.exists()
        else {}
    )
    leaks += _file_leaks(files, allowed, owners)
    return Outcome(
        states={(p, i): s for p, i, s, _ in tracking.iter_rows()},
        codes={(p, i): set(c or []) for p, i, _, c in tracking.iter_rows()},
        exceptions=exceptions,
        line_count=line_count,
        accounting=accounting,
        lost=lost,
        leaks=leaks,
        files=files,
    )


def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    return pl.from_arrow(con.execute(sql).fetch_arrow_table())


def _markers_by_practice(frame: pl.DataFrame) -> dict[str, set[str]]:
    text = [c for c, t in frame.schema.items() if t == pl.Utf8 and c != "practice_id"]
    if frame.is_empty() or not text or "practice_id" not in frame.columns:
        return {}
    found = (
        frame.filter(pl.col("practice_id").is_not_null())
        .select(
            "practice_id",
            pl.concat_str([pl.col(c).fill_null("") for c in text], separator=" ")
            .str.extract_all(MARKER.pattern)
            .alias("m"),
        )
        .explode("m")
        .drop_nulls("m")
        .group_by("practice_id")
        .agg(pl.col("m").unique())
    )
    return {p: set(ms) for p, ms in found.iter_rows()}


def _own_markers(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """The markers each practice's own source rows carry: normally just its own; a source that moves a row
    to another practice (the fuzz does) makes that row's names the other practice's own."""
    own: dict[str, set[str]] = {}
    raw = [
        r[0]
        for r in con.execute(
            "select table_name from duckdb_tables() where table_name like 'raw_%'"
        ).fetchall()
    ]
    for table in raw:
        for practice_id, markers in _markers_by_practice(_frame(con, f"select * from {table}")).items():
            own.setdefault(practice_id, set()).update(markers)
    return own


def _table_leaks(con: duckdb.DuckDBPyConnection, table: str, allowed: dict[str, set[str]]) -> list[str]:
    found = _markers_by_practice(_frame(con, f"select * from {table}"))
    return [
        f"{table}: a row of practice {practice_id} carries {m}"
        for practice_id, markers in sorted(found.items())
        for m in sorted(markers - allowed.get(practice_id, set()))
    ]


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _file_text(name: str, body: bytes) -> str:
    """The values a batch file holds, unescaped (JSON strings, CSV fields), one after the other."""
    text = body.decode("utf-8", errors="replace")
    if name.endswith(".json"):
        return "\n".join(_strings(json.loads(text)))
    if name.endswith(".csv"):
        return "\n".join(f for row in csv.reader(io.StringIO(text, newline="")) for f in row)
    return text


def _file_leaks(files: dict[str, bytes], allowed: dict[str, set[str]], owners: dict[str, str]) -> list[str]:
    """Names of another practice in a practice's batch files (`owners`: each batch file's practice, from
    xero_batches); a batch file xero_batches does not know is a leak in itself."""
    leaks = []
    for name, body in files.items():
        if not name.startswith("xero/"):
            continue
        if name not in owners:
            leaks.append(f"{name} is in no batch of xero_batches")
            continue
        owner = owners[name]
        for m in sorted(set(MARKER.findall(_file_text(name, body)))):
            if f"«{m}»" not in allowed.get(owner, set()):
                leaks.append(f"{name} (practice {owner}) carries «{m}»")
    return leaks
