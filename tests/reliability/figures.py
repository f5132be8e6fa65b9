"""`make reliability`: run the bad-input matrix, shared-id practices, corrupted sources and hostile practice
ids, and print what happened, as the README quotes it.

    python -m tests.reliability.figures [--isolation N] [--fuzz N] [--ids N]

Hypothesis draws the isolation and fuzz inputs derandomized, so the same code prints the same table.
Lost invoices are what `check_accounting` finds unaccounted for; leaks are names of one practice found in
another's rows or files. Both must be 0. Exit status 1 when they are not, or when any input did not end as
documented (listed under the table).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from tests.reliability.harness import Outcome, run_source
from tests.reliability.harness import settings as run_settings
from tests.reliability.practice import write_source
from tests.reliability.runs import run_matrix
from tests.reliability.test_fuzz import corruption
from tests.reliability.test_hostile_ids import HOSTILE, IDS, hostile_run
from tests.reliability.test_isolation import shared_id_sources, slot_name_errors


@dataclass
class Tally:
    name: str
    inputs: int = 0
    stopped: int = 0
    held: int = 0
    lost: int = 0
    leaks: int = 0
    crashes: int = 0
    not_as_documented: list[str] = field(default_factory=list)
    runs: set[int] = field(default_factory=set)  # outcomes counted already (value cases share one run)

    def add(self, outcome: Outcome, held: int, label: str, failures: list[str] | None = None) -> None:
        self.inputs += 1
        self.stopped += outcome.clean_stop
        self.held += held
        if id(outcome) not in self.runs:
            self.runs.add(id(outcome))
            self.lost += outcome.lost
            self.leaks += len(outcome.leaks)
            self.crashes += outcome.crashed is not None
        if failures:
            self.not_as_documented.append(f"{label}: {failures[0]}")


def _held(outcome: Outcome, practices: tuple[str, ...] | None = None) -> int:
    return sum(
        1 for (p, _), s in outcome.states.items() if s == "held" and (practices is None or p in practices)
    )


def matrix_tally(work: Path) -> Tally:
    tally = Tally("bad-input matrix")
    for verdict in run_matrix(work):
        if verdict.case.id == "control":
            continue
        tally.add(verdict.outcome, verdict.held, verdict.case.id, verdict.failures)
    return tally


def _drawn(strategy, examples: int, each) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value):
        each(value)

    run()


def isolation_tally(work: Path, examples: int) -> Tally:
    tally = Tally("shared ids, not names")

    def each(source) -> None:
        folder = work / f"iso-{tally.inputs}"
        outcome = run_source(write_source(source, folder / "source"), folder / "run")
        if outcome.crashed is None and outcome.stopped is None:
            outcome.leaks += slot_name_errors(
                source, run_settings(folder / "source", folder / "run").warehouse
            )
        failures = [f for f in [outcome.crashed, outcome.stopped, outcome.accounting, *outcome.leaks] if f]
        tally.add(outcome, _held(outcome), f"isolation example {tally.inputs + 1}", failures)

    _drawn(shared_id_sources(), examples, each)
    return tally


def fuzz_tally(work: Path, examples: int) -> Tally:
    tally = Tally("corrupted sources (fuzz)")

    def each(case) -> None:
        what, files = case
        folder = work / f"fuzz-{tally.inputs}"
        source = folder / "source"
        source.mkdir(parents=True)
        for table, data in files.items():
            (source / f"{table}.csv").write_bytes(data)
        outcome = run_source(source, folder / "run")
        failures = [f for f in [outcome.crashed, outcome.accounting, *outcome.leaks] if f]
        if outcome.stopped and not outcome.clean_stop:
            failures.append(f"stop is not one line: {outcome.stopped!r}")
        tally.add(outcome, _held(outcome), f"fuzz ({what})", failures)

    _drawn(corruption(), examples, each)
    return tally


def hostile_tally(work: Path, examples: int) -> Tally:
    """The table of hostile practice ids as one source, then sources of random ids: a file outside its
    practice's folder, or two practices in one folder, counts as a leak."""
    tally = Tally("hostile practice ids")

    def each(ids) -> None:
        outcome, _, wrong = hostile_run(list(ids), work / f"ids-{tally.inputs}")
        outcome.leaks += wrong
        failures = [f for f in [outcome.crashed, outcome.stopped, outcome.accounting, *outcome.leaks] if f]
        tally.add(outcome, _held(outcome), f"ids {list(ids)!r}", failures)

    each(HOSTILE)
    _drawn(st.lists(IDS, min_size=2, max_size=5, unique=True), examples, each)
    return tally


COLUMNS = (
    "inputs",
    "tried",
    "runs stopped cleanly",
    "invoices held",
    "invoices lost (must be 0)",
    "cross-practice leaks (must be 0)",
    "crashes",
)


def render(tallies: list[Tally]) -> Table:
    table = Table(title="trackline reliability: bad input never crashes, loses or leaks")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "inputs" else "right", no_wrap=True)
    total = Tally("total")
    for t in tallies:
        table.add_row(
            t.name, str(t.inputs), str(t.stopped), str(t.held), str(t.lost), str(t.leaks), str(t.crashes)
        )
        for name in ("inputs", "stopped", "held", "lost", "leaks", "crashes"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
    table.add_section()
    table.add_row(
        "total",
        str(total.inputs),
        str(total.stopped),
        str(total.held),
        str(total.lost),
        str(total.leaks),
        str(total.crashes),
        style="bold",
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isolation", type=int, default=30, help="shared-id sources to draw (default 30)")
    parser.add_argument("--fuzz", type=int, default=60, help="corrupted sources to draw (default 60)")
    parser.add_argument("--ids", type=int, default=20, help="sources of random practice ids (default 20)")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 150))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder, console.status("running the reliability inputs..."):
        work = Path(folder)
        tallies = [
            matrix_tally(work / "matrix"),
            isolation_tally(work / "isolation", args.isolation),
            fuzz_tally(work / "fuzz", args.fuzz),
            hostile_tally(work / "ids", args.ids),
        ]
    console.print(render(tallies))
    console.print(f"({time.monotonic() - started:.0f} s)", style="dim")
    off = [line for t in tallies for line in t.not_as_documented]
    if off:
        console.print(f"{len(off)} input(s) did not end as documented:", style="bold red")
        for line in off:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
    bad = sum(t.lost + t.leaks + t.crashes for t in tallies)
    return 1 if bad or off else 0


if __name__ == "__main__":
    sys.exit(main())
