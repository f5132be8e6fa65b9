"""Fuzz: corrupt a good two-practice source (cells, bytes, lines) and run it. The only way a run may end other
than in success is the documented one-line stop naming a file; a run that succeeds accounts for every
invoice (check_accounting) and leaks no name across practices."""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import Outcome, run_source
from tests.reliability.matrix import FORMULA
from tests.reliability.practice import add_practice, csv_bytes, empty_source
from transforms.parse_sources import TABLES

BASE = add_practice(add_practice(empty_source(), "f1"), "f2")
FILES = {table: csv_bytes(BASE[table], list(spec)) for table, spec in TABLES.items()}

NASTY = [
    "",
    " ",
    "NULL",
    "null",
    "NaN",
    "inf",
    "-0",
    "1e308",
    "9" * 40,
    "-1",
    "0.00001",
    "12345678901234.5678",
    "=1+1",
    FORMULA,
    "@SUM(A1)",
    "+cmd",
    "\t=x",
    "a\x00b",
    '"',
    '""',
    "'",
    "\n",
    "\r\n",
    "é",
    "\u202e",
    "\ufeff",
    "💥" * 30,
    "x" * 5000,
    "2026-13-01",
    "0000-00-00",
    "1970-01-01T00:00:00Z",
    "2026-01-15 00:00:00",
    "true",
    "maybe",
    "approved",
    "APPROVED",
    "draft",
    "void",
    "xero",
    "sage",
    "ACTIVE",
    "ARCHIVED",
    "c1",
    "c2",
    "o-a1",
    "o-c2",
    "m2",
    "svc-1",
    "svc-2",
    "i1",
    "i2",
    "l1",
    "f1",
    "f2",
    "cat-d",
]
values = st.sampled_from(NASTY) | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12
)


@st.composite
def corruption(draw) -> tuple[str, dict[str, bytes]]:
    """A few corruptions of the base source: cells, rows, lines, raw bytes. Returns (what, files)."""
    rows = {table: [dict(r) for r in BASE[table]] for table in TABLES}
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        table = draw(st.sampled_from(list(TABLES)))
        kind = draw(st.sampled_from(["cell", "cell", "cell", "copy-row", "drop-row"]))
        if not rows[table]:
            continue
        index = draw(st.integers(0, len(rows[table]) - 1))
        if kind == "cell":
            column = draw(st.sampled_from(list(TABLES[table])))
            rows[table][index][column] = draw(values)
            steps.append(f"{table}[{index}].{column}")
        elif kind == "copy-row":
            copy = dict(rows[table][index])
            column = draw(st.sampled_from(list(TABLES[table])))
            copy[column] = draw(values)
            rows[table].append(copy)
            steps.append(f"{table}[{index}] copied, {column} changed")
        else:
            rows[table].pop(index)
            steps.append(f"{table}[{index}] dropped")
    files = {table: csv_bytes(rows[table], list(spec)) for table, spec in TABLES.items()}
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):  # raw damage in half the sources
        table = draw(st.sampled_from(list(TABLES)))
        data = files[table]
        kind = draw(
            st.sampled_from(["insert-bytes", "insert-text", "delete", "truncate", "dup-line", "swap-lines"])
        )
        at = draw(st.integers(0, len(data)))
        lines = data.split(b"\n")
        if kind == "insert-bytes":
            data = data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]
        elif kind == "insert-text":
            text = data.decode("utf-8", errors="surrogateescape")  # earlier damage may have broken UTF-8
            cut = draw(st.integers(0, len(text)))
            data = (
                text[:cut]
                + draw(st.sampled_from([",", '"', "\n", "\r", "\r\n", ",,", '",', "\ufeff"]) | values)
                + text[cut:]
            ).encode("utf-8", errors="surrogateescape")
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 30)) :]
        elif kind == "truncate":
            data = data[:at]
        elif kind == "dup-line":
            n = draw(st.integers(0, len(lines) - 1))
            data = b"\n".join(lines[: n + 1] + lines[n:])
        else:
            a, b = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[a], lines[b] = lines[b], lines[a]
            data = b"\n".join(lines)
        files[table] = data
        steps.append(f"{table}.csv {kind} at {at}")
    return "; ".join(steps), files


def fuzz_once(files: dict[str, bytes], work: Path) -> Outcome:
    """Run a corrupted source; assert it ended as documented. Returns the outcome (for `make reliability`)."""
    source = work / "source"
    source.mkdir(parents=True)
    for table, data in files.items():
        (source / f"{table}.csv").write_bytes(data)
    outcome = run_source(source, work / "run")
    assert outcome.crashed is None, outcome.crashed
    if outcome.stopped is not None:
        assert outcome.clean_stop, outcome.stopped
        assert str(source) in outcome.stopped, outcome.stopped  # names the file
        return outcome
    assert outcome.accounting is None, outcome.accounting
    assert outcome.leaks == [], outcome.leaks
    return outcome


@settings(
    max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(case=corruption())
def test_a_corrupted_source_succeeds_or_stops_in_one_line(case):
    what, files = case
    with TemporaryDirectory() as work:
        fuzz_once(files, Path(work))
