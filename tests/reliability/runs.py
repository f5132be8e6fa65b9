"""Running the matrix and judging each case against its documented outcome.

`judge` returns what differs from the documented outcome (an empty list when the case behaves as
documented), so the tests and `make reliability` read the same verdicts.
"""

from __future__ import annotations

import codecs
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from flows.sources.files import SourceError, read_source
from tests.reliability.harness import Outcome, run_source
from tests.reliability.matrix import (
    ALONE_CASES,
    FILE_CASES,
    STOP_CASES,
    VALUE_CASES,
    Case,
    Held,
    NotExported,
    Orphaned,
    Ready,
    Stop,
)
from tests.reliability.practice import Source, add_practice, empty_source, row, write_source
from transforms.parse_sources import TABLES

CONTROL = "ctrl"  # an untouched practice beside every case
INVOICES = ("i1", "i2")


def control_practice(source: Source) -> Source:
    """The control practice, with the rows cases refer to as 'only another practice has'."""
    add_practice(source, CONTROL)
    source["tracking_options"].append(
        row(
            "tracking_options",
            practice_id=CONTROL,
            tracking_option_id="o-x9",
            tracking_category_id="cat-d",
            name="Other «ctrl»",
            status="ACTIVE",
        )
    )
    source["clients"].append(
        row("clients", practice_id=CONTROL, client_id="c-x9", name="Other client «ctrl»")
    )
    source["service_templates"].append(
        row(
            "service_templates",
            practice_id=CONTROL,
            service_template_id="svc-x9",
            name="Other «ctrl»",
            account_code="200",
            tax_type="OUTPUT2",
        )
    )
    return source


@dataclass
class Verdict:
    case: Case
    practices: tuple[str, ...]  # the practices the case was tried in
    outcome: Outcome
    failures: list[str]

    @property
    def held(self) -> int:
        return sum(1 for (p, _), s in self.outcome.states.items() if p in self.practices and s == "held")


# Value cases: one practice per case, all in one source --------------------------------------------------


def value_case_practice(index: int) -> str:
    return f"v{index:03d}"


def run_value_cases(cases: list[Case], work: Path) -> list[Verdict]:
    source = control_practice(empty_source())
    for index, case in enumerate(cases):
        pid = value_case_practice(index)
        add_practice(source, pid)
        case.edit(source, pid)
    outcome = run_source(write_source(source, work / "source"), work / "run")
    verdicts = [
        Verdict(case, (value_case_practice(i),), outcome, judge(case, outcome, value_case_practice(i)))
        for i, case in enumerate(cases)
    ]
    return verdicts + [Verdict(_CONTROL_CASE, (CONTROL,), outcome, judge(_CONTROL_CASE, outcome, CONTROL))]


_CONTROL_CASE = Case("control", "*", "*", "untouched practice beside the cases", Ready())


def run_alone_case(case: Case, work: Path) -> Verdict:
    """A case that may rightly reach other practices' invoices of the same id (see ALONE_CASES)."""
    source = control_practice(empty_source())
    add_practice(source, "v000")
    case.edit(source, "v000")
    outcome = run_source(write_source(source, work / "source"), work / "run")
    failures = judge(case, outcome, "v000")
    if isinstance(case.expect, Held):  # every i2, in any practice, is held; the rest is ready
        failures += judge(case, outcome, CONTROL)
    return Verdict(case, ("v000", CONTROL), outcome, failures)


# File cases: one run each ------------------------------------------------------------------------------


def run_file_case(case: Case, work: Path) -> Verdict:
    source = add_practice(add_practice(empty_source(), "f1"), "f2")
    if case.column == "*" and case.table != "*":  # header only
        source[case.table] = []
    folder = write_source(source, work / "source", **case.write)
    outcome = run_source(folder, work / "run")
    pids = ("f1", "f2")
    return Verdict(case, pids, outcome, [f for pid in pids for f in judge(case, outcome, pid)])


# Stop cases: the broken file, and read_source's verdict -------------------------------------------------


def stop_source(case: Case, folder: Path) -> Path:
    """A one-practice source with `case.table`'s file broken as the case says."""
    source = add_practice(empty_source(), "s1")
    table, kind = case.table, case.id.split(".", 1)[1]
    names = list(TABLES[table])
    options: dict = {}
    if kind.endswith("missing-column"):
        options["columns"] = lambda t, n: [c for c in n if not (t == table and c == case.column)]
    elif kind == "repeated-column":
        options["columns"] = lambda t, n: [*n, n[1]] if t == table else n
    elif kind in ("parquet-corrupt", "parquet-nested"):
        options["parquet"] = (table,)
    write_source(source, folder, **options)
    path = folder / f"{table}.csv"
    data = path.read_bytes() if path.exists() else b""
    lines = data.split(b"\n")
    if kind == "missing-file":
        path.unlink()
    elif kind == "empty-file":
        path.write_bytes(b"")
    elif kind == "blank-file":
        path.write_bytes(b"\n  \n\n")
    elif kind == "latin-1":
        lines[1] = lines[1] + b"\xa3"  # cp1252 pound sign at the end of the first data row
        path.write_bytes(b"\n".join(lines))
    elif kind == "utf-16":
        path.write_bytes(codecs.BOM_UTF16_LE + data.decode("utf-8").encode("utf-16-le"))
    elif kind == "ragged-row":
        lines[1] = lines[1] + b",surplus"
        path.write_bytes(b"\n".join(lines))
    elif kind == "open-quote":
        cells = lines[1].split(b",")
        cells[2] = b'"' + cells[2]
        lines[1] = b",".join(cells)
        path.write_bytes(b"\n".join(lines))
    elif kind == "semicolons":
        path.write_bytes(data.replace(b",", b";"))
    elif kind == "both-formats":
        pl.DataFrame({c: [] for c in names}, schema={c: pl.Utf8 for c in names}).write_parquet(
            folder / f"{table}.parquet"
        )
    elif kind == "parquet-corrupt":
        parquet = folder / f"{table}.parquet"
        parquet.write_bytes(parquet.read_bytes()[: len(parquet.read_bytes()) // 2])
    elif kind == "parquet-nested":
        parquet = folder / f"{table}.parquet"
        frame = pl.read_parquet(parquet)
        frame.with_columns(
            pl.col(names[-1]).map_elements(lambda v: [v], return_dtype=pl.List(pl.Utf8))
        ).write_parquet(parquet)
    return folder


def run_stop_case(case: Case, work: Path) -> Verdict:
    folder = stop_source(case, work / "source")
    try:
        read_source(folder)
        outcome = Outcome()
    except SourceError as stop:
        outcome = Outcome(stopped=str(stop))
    except Exception as bug:  # noqa: BLE001
        outcome = Outcome(crashed=f"{type(bug).__name__}: {str(bug).splitlines()[0] if str(bug) else ''}")
    return Verdict(case, ("s1",), outcome, judge(case, outcome, "s1"))


# Judging ------------------------------------------------------------------------------------------------


def judge(case: Case, outcome: Outcome, pid: str) -> list[str]:
    """What differs from the documented outcome of `case` in practice `pid` (empty: all as documented)."""
    expect = case.expect
    if outcome.crashed:
        return [f"crashed: {outcome.crashed}"]
    if isinstance(expect, Stop):
        if outcome.stopped is None:
            return ["did not stop"]
        failures = []
        if not outcome.clean_stop:
            failures.append(f"stop message is not one line: {outcome.stopped!r}")
        if expect.says not in outcome.stopped:
            failures.append(f"stop message {outcome.stopped!r} does not say {expect.says!r}")
        if case.table != "*" and case.table not in outcome.stopped:
            failures.append(f"stop message {outcome.stopped!r} does not name {case.table}")
        return failures
    if outcome.stopped:
        return [f"stopped: {outcome.stopped}"]
    failures = []
    if outcome.accounting:
        failures.append(outcome.accounting)
    failures += [f"leak: {leak}" for leak in outcome.leaks[:3]]
    states = outcome.practice_states(pid)
    untouched: tuple[str, ...] = INVOICES
    if isinstance(expect, Held):
        victims = case.victims
        untouched = tuple(i for i in INVOICES if i not in victims)
        for invoice in victims:
            if states.get(invoice) != "held":
                failures.append(f"{pid}/{invoice} is {states.get(invoice)}, expected held")
                continue
            missing = set(expect.codes) - outcome.codes[(pid, invoice)]
            if missing:
                failures.append(
                    f"{pid}/{invoice} held with {sorted(outcome.codes[(pid, invoice)])}, "
                    f"not {sorted(missing)}"
                )
            says = expect.detail_says or (case.column if case.column != "*" else f"{case.table}.csv")
            details = outcome.problems(pid, invoice).filter(pl.col("severity") == "error")["detail"].to_list()
            if not any(says in d for d in details):
                failures.append(f"no error detail of {pid}/{invoice} says {says!r}: {details[:3]}")
    elif isinstance(expect, NotExported):
        untouched = tuple(i for i in INVOICES if i not in expect.invoices)
        for invoice in expect.invoices:
            if invoice in states:
                failures.append(f"{pid}/{invoice} is {states[invoice]}, expected not exported")
    elif isinstance(expect, Orphaned):
        untouched = tuple(i for i in INVOICES if i not in expect.absent)
        for invoice in expect.absent:
            if invoice in states:
                failures.append(f"{pid}/{invoice} is {states[invoice]}, expected absent")
        recorded = outcome.problems(pid).filter(
            pl.col("invoice_id").is_null() & (pl.col("code") == expect.code)
        )
        for line in expect.lines:
            if recorded.filter(pl.col("line_id") == line).is_empty():
                failures.append(f"{pid} line {line} is not recorded as {expect.code}")
        if not expect.lines and recorded.filter(pl.col("severity") == "error").is_empty():
            failures.append(f"{pid}: no {expect.code} error recorded without an invoice")
    elif isinstance(expect, Ready):
        untouched = expect.invoices
    for invoice in untouched:
        if states.get(invoice) != "ready":
            failures.append(
                f"{pid}/{invoice} is {states.get(invoice)}, expected ready "
                f"(codes {sorted(outcome.codes.get((pid, invoice), []))})"
            )
    return failures


def run_matrix(work: Path) -> list[Verdict]:
    """Every case of the matrix (used by `make reliability`; the tests run the same groups as fixtures)."""
    verdicts = run_value_cases(VALUE_CASES, work / "values")
    for n, case in enumerate(ALONE_CASES):
        verdicts.append(run_alone_case(case, work / f"alone-{n}"))
    for n, case in enumerate(FILE_CASES):
        verdicts.append(run_file_case(case, work / f"file-{n}"))
    for n, case in enumerate(STOP_CASES):
        verdicts.append(run_stop_case(case, work / f"stop-{n}"))
        shutil.rmtree(work / f"stop-{n}", ignore_errors=True)
    return verdicts
