"""Do trackline, the DuckDB peer and the pandas peer give the same per-line result, row for row?

The per-line result is what `line_tracking` holds (CONTRACT.md §4) and whether the line's invoice is held:
one row per line of an approved invoice (or one whose status does not parse), keyed by practice_id,
invoice_id, line_id, with tracking1/2 category, option and source, line_amount (as integer cents),
invoice_state (ready, held, not_xero) and hold_codes (the error codes holding the invoice, sorted). Approved
invoices without lines (EMPTY_INVOICE) appear once with a null line_id, so their holds are compared too.

    python -m bench.agreement bench/data/10k      # any source folder (Parquet or CSV)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

KEY = ["practice_id", "invoice_id", "line_id"]
COMPARED = [
    "tracking1_category",
    "tracking1_option",
    "tracking1_source",
    "tracking2_category",
    "tracking2_option",
    "tracking2_source",
    "line_amount_cents",
    "invoice_state",
    "hold_codes",
]
COLUMNS = [*KEY, *COMPARED]
INVOICE = ["practice_id", "invoice_id"]


# trackline's resolution core: sources in memory -> resolved, checked and validated frames ----------------


def trackline_core(frames: dict[str, pl.DataFrame], files: dict[str, str], policy: str = "hold"):
    """What a run's resolution steps (`flows.run.steps`) do between reading the raw tables and writing the warehouse: parse every
    table, resolve every exportable invoice (scope: all), and validate the output tables with Pandera."""
    from transforms.parse_sources import parse_table
    from transforms.resolve_invoices import TABLES, resolve_invoices
    from transforms.schemas import EXCEPTIONS, LINE_TRACKING, XERO_LINE_ITEMS, validate_output

    typed, problems = {}, []
    for table in TABLES:
        frame, found = parse_table(table, frames[table].lazy(), files[table])
        typed[table] = frame
        problems.append(found)
    collected = pl.collect_all([*typed.values(), pl.concat(problems, how="vertical")])
    tables = {t: f.lazy() for t, f in zip(typed, collected[:-1], strict=True)}
    result = resolve_invoices(tables, collected[-1].lazy(), scope=None, policy=policy, files=files)
    validate_output(LINE_TRACKING, result.line_tracking)
    validate_output(EXCEPTIONS, result.exceptions)
    validate_output(XERO_LINE_ITEMS, result.xero_line_items)
    return result


def _chunks(tables: dict[str, pl.LazyFrame], chunk_lines: int) -> pl.DataFrame:
    """(practice_id, invoice_id, chunk): exportable invoices in chunks of whole practice x month
    partitions of about `chunk_lines` lines, as flows.run.steps.plan cuts them."""
    from transforms.resolve_invoices import exportable

    counts = tables["invoice_lines"].group_by(INVOICE).agg(pl.len().alias("n"))
    sized = (
        exportable(tables["invoices"])
        .select(*INVOICE, "issue_date")
        .join(counts, on=INVOICE, how="left")
        .with_columns(
            pl.col("n").fill_null(0),
            pl.col("issue_date").dt.strftime("%Y-%m").fill_null("unknown").alias("month"),
        )
        .sort("practice_id", "month", "invoice_id")
        .collect()
    )
    partitions = (
        sized.group_by("practice_id", "month", maintain_order=True)
        .agg(pl.col("n").sum().alias("lines"))
        .with_columns(((pl.col("lines").cum_sum() - pl.col("lines")) // max(chunk_lines, 1)).alias("chunk"))
    )
    chunked = sized.join(partitions.select("practice_id", "month", "chunk"), on=["practice_id", "month"])
    return chunked.select(*INVOICE, (pl.col("chunk").rank("dense") - 1).cast(pl.Int32).alias("chunk"))


def split_chunks(
    tables: dict[str, pl.DataFrame], partition: pl.DataFrame
) -> dict[int, dict[str, pl.DataFrame]]:
    """Each chunk's invoices and lines (`partition`: practice_id, invoice_id, chunk), split in one pass, as
    the pipeline's source stages them (here in memory: the core is measured from frames in memory)."""
    keys = partition.select(*INVOICE, "chunk")
    split: dict[int, dict[str, pl.DataFrame]] = {}
    for table in ("invoices", "invoice_lines"):
        tagged = tables[table].join(keys, on=INVOICE, how="inner")
        for (chunk,), part in tagged.partition_by("chunk", as_dict=True, include_key=False).items():
            split.setdefault(chunk, {})[table] = part
    return split


def trackline_core_chunks(
    frames: dict[str, pl.DataFrame],
    files: dict[str, str],
    chunk_lines: int | None = None,
    policy: str = "hold",
    sink=None,
) -> dict:
    """The core over the whole source, as the pipeline runs it: parse once, then resolve and validate
    chunk by chunk (whole practice x month partitions of about `chunk_lines` lines; one call with scope None
    when the source has no more lines than that). `sink(result)` receives each chunk's Resolution; the
    time it takes is returned as `sink_seconds`, to be left out of a measurement."""
    import time

    from transforms.parse_sources import parse_table
    from transforms.resolve_invoices import TABLES, resolve_invoices
    from transforms.schemas import EXCEPTIONS, LINE_TRACKING, XERO_LINE_ITEMS, validate_output

    typed, found = {}, []
    for table in TABLES:
        frame, problems = parse_table(table, frames[table].lazy(), files[table])
        typed[table] = frame
        found.append(problems)
    collected = pl.collect_all([*typed.values(), pl.concat(found, how="vertical")])
    tables = {t: f.lazy() for t, f in zip(typed, collected[:-1], strict=True)}
    problems = collected[-1].lazy()
    total_lines = collected[list(typed).index("invoice_lines")].height
    if not chunk_lines or total_lines <= chunk_lines:
        parts = [(None, tables)]
    else:
        chunks = _chunks(tables, chunk_lines)
        split = split_chunks(
            {t: collected[list(typed).index(t)] for t in ("invoices", "invoice_lines")}, chunks
        )
        parts = []
        for chunk in sorted(split):
            keys = split[chunk]["invoices"].select(INVOICE).lazy()
            part = dict(tables)
            for table in ("invoices", "invoice_lines"):
                found = split[chunk].get(table)
                part[table] = (found if found is not None else tables[table].clear().collect()).lazy()
            parts.append((keys, part))
    summary = {"chunks": len(parts), "lines": 0, "invoices": 0, "held": 0, "ready": 0, "sink_seconds": 0.0}
    for keys, part in parts:
        result = resolve_invoices(part, problems, scope=None, policy=policy, files=files)
        if keys is not None:  # problems no invoice can be traced to belong to the whole source
            result.exceptions = result.exceptions.join(keys.collect(), on=INVOICE, how="semi")
        validate_output(LINE_TRACKING, result.line_tracking)
        validate_output(EXCEPTIONS, result.exceptions)
        validate_output(XERO_LINE_ITEMS, result.xero_line_items)
        states = result.invoice_states["invoice_state"].cast(pl.Utf8)
        summary["lines"] += result.line_tracking.height
        summary["invoices"] += result.invoice_states.height
        summary["held"] += int((states == "held").sum())
        summary["ready"] += int((states == "ready").sum())
        if sink is not None:
            started = time.perf_counter()
            sink(result)
            summary["sink_seconds"] += time.perf_counter() - started
        del result
    return summary


class ChunkWriter:
    """A sink for trackline_core_chunks: each chunk's per-line result as <folder>/chunk-<n>.parquet."""

    def __init__(self, folder: str | Path) -> None:
        import shutil

        self.folder = Path(folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.count = 0

    def __call__(self, result) -> None:
        write_canonical(from_trackline(result), self.folder / f"chunk-{self.count:04d}.parquet")
        self.count += 1


def write_canonical(frame: pl.DataFrame, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def read_frames(folder: Path) -> tuple[dict[str, pl.DataFrame], dict[str, str]]:
    """The source as trackline reads it: text columns and `_row`, per table, and the file names."""
    from flows.sources.files import read_source

    return read_source(Path(folder))


# The three results, in one shape -------------------------------------------------------------------------


def _cents(column: str = "line_amount") -> pl.Expr:
    return (pl.col(column).cast(pl.Decimal(20, 2)) * 100).cast(pl.Int64).alias("line_amount_cents")


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.select(
            *(pl.col(c).cast(pl.Utf8) for c in KEY),
            *(pl.col(c).cast(pl.Utf8) for c in COMPARED if c != "line_amount_cents"),
            pl.col("line_amount_cents").cast(pl.Int64),
        )
        .select(COLUMNS)
        .sort(KEY, nulls_last=True)
    )


def from_trackline(result) -> pl.DataFrame:
    """line_tracking with each invoice's state and hold codes, plus one row per invoice without lines."""
    states = result.invoice_states.select(
        *INVOICE,
        pl.col("invoice_state").cast(pl.Utf8),
        pl.col("hold_codes").list.sort().list.join(",").alias("hold_codes"),
    )
    lines = result.line_tracking.join(states.drop("invoice_state"), on=INVOICE, how="left").with_columns(
        _cents()
    )
    lineless = states.join(lines.select(INVOICE).unique(), on=INVOICE, how="anti").with_columns(
        pl.lit(None, pl.Utf8).alias("line_id"),
        *(pl.lit(None, pl.Utf8).alias(c) for c in COMPARED[:6]),
        pl.lit(None, pl.Int64).alias("line_amount_cents"),
    )
    return canonical(pl.concat([lines.select(COLUMNS), lineless.select(COLUMNS)], how="vertical_relaxed"))


def from_duckdb(frame: pl.DataFrame) -> pl.DataFrame:
    return canonical(frame.with_columns(_cents()))


def from_pandas(frame) -> pl.DataFrame:
    return canonical(pl.from_pandas(frame))


def trackline_result(frames: dict[str, pl.DataFrame], files: dict[str, str]) -> pl.DataFrame:
    return from_trackline(trackline_core(frames, files))


def duckdb_result(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    from bench import peer_duckdb

    return from_duckdb(peer_duckdb.resolve_frames(frames))


def pandas_result(frames: dict[str, pl.DataFrame]) -> pl.DataFrame:
    from bench import peer_pandas

    return from_pandas(peer_pandas.resolve({t: f.to_pandas() for t, f in frames.items()}))


# Comparing ----------------------------------------------------------------------------------------------


@dataclass
class Agreement:
    left: str
    right: str
    rows: int
    only_left: pl.DataFrame
    only_right: pl.DataFrame
    differing: dict[str, pl.DataFrame] = field(default_factory=dict)

    @property
    def agrees(self) -> bool:
        return self.only_left.is_empty() and self.only_right.is_empty() and not self.differing

    def describe(self, examples: int = 5) -> str:
        if self.agrees:
            return f"{self.left} and {self.right} agree on all {self.rows} rows"
        parts = [f"{self.left} and {self.right} disagree ({self.rows} rows on the {self.left} side):"]
        if not self.only_left.is_empty():
            parts.append(
                f"  {self.only_left.height} rows only in {self.left}, e.g.\n{self.only_left.head(examples)}"
            )
        if not self.only_right.is_empty():
            parts.append(
                f"  {self.only_right.height} rows only in {self.right}, e.g.\n{self.only_right.head(examples)}"
            )
        for column, rows in self.differing.items():
            parts.append(f"  {column} differs on {rows.height} rows, e.g.\n{rows.head(examples)}")
        return "\n".join(parts)


def compare(left: pl.DataFrame, right: pl.DataFrame, names: tuple[str, str]) -> Agreement:
    """Row-for-row comparison on the key (null line_id = an invoice without lines); nulls compare equal."""
    a, b = names
    in_left = pl.col("_in_left").fill_null(False)
    in_right = pl.col("_in_right").fill_null(False)
    joined = left.with_columns(pl.lit(True).alias("_in_left")).join(
        right.with_columns(pl.lit(True).alias("_in_right")),
        on=KEY,
        how="full",
        nulls_equal=True,
        suffix="_right",
        coalesce=True,
    )
    only_left = joined.filter(in_left & ~in_right).select(COLUMNS)
    only_right = joined.filter(in_right & ~in_left).select(
        KEY, *(pl.col(f"{c}_right").alias(c) for c in COMPARED)
    )
    both = joined.filter(in_left & in_right)
    differing = {}
    for column in COMPARED:
        wrong = both.filter(~pl.col(column).eq_missing(pl.col(f"{column}_right")))
        if not wrong.is_empty():
            differing[column] = wrong.select(
                *KEY, pl.col(column).alias(a), pl.col(f"{column}_right").alias(b), "hold_codes"
            )
    return Agreement(a, b, left.height, only_left, only_right, differing)


def compare_files(
    left: str, right: str, names: tuple[str, str] = ("left", "right"), examples: int = 5
) -> dict:
    """Row-for-row comparison of two per-line results written as Parquet (globs allowed), done by DuckDB
    so that ten million rows a side need not fit in memory at once."""
    import duckdb

    a, b = names
    con = duckdb.connect()
    con.execute("set memory_limit = '6GB'")
    con.execute(f"create view l as select * from read_parquet('{left}')")
    con.execute(f"create view r as select * from read_parquet('{right}')")
    on = " and ".join(f"l.{k} is not distinct from r.{k}" for k in KEY)
    differs = [
        f"count(*) filter (where l.practice_id is not null and r.practice_id is not null and l.{c} is distinct from r.{c}) as {c}"
        for c in COMPARED
    ]
    row = con.execute(
        f"""select
              count(*) filter (where r.practice_id is null) as only_left,
              count(*) filter (where l.practice_id is null) as only_right,
              count(*) filter (where l.practice_id is not null) as left_rows,
              {", ".join(differs)}
            from l full outer join r on {on}"""
    ).fetchone()
    only_left, only_right, rows, *counts = row
    differing = {c: n for c, n in zip(COMPARED, counts, strict=True) if n}
    found = {
        "left": a,
        "right": b,
        "rows": rows,
        "only_left": only_left,
        "only_right": only_right,
        "differing": differing,
        "agrees": not (only_left or only_right or differing),
    }
    if not found["agrees"]:
        mismatch = " or ".join(f"l.{c} is distinct from r.{c}" for c in COMPARED)
        sample = con.execute(
            f"""select coalesce(l.practice_id, r.practice_id) as practice_id, coalesce(l.invoice_id, r.invoice_id)
                   as invoice_id, coalesce(l.line_id, r.line_id) as line_id, l.hold_codes as {a}_codes,
                   r.hold_codes as {b}_codes, l.invoice_state as {a}_state, r.invoice_state as {b}_state
                from l full outer join r on {on}
                where l.practice_id is null or r.practice_id is null or {mismatch} limit {int(examples)}"""
        ).fetchall()
        found["examples"] = [list(map(str, r)) for r in sample]
    found["describe"] = (
        f"{a} and {b} agree on all {rows} rows"
        if found["agrees"]
        else f"{a} and {b} DISAGREE: {only_left} rows only in {a}, {only_right} only in {b}, "
        f"differing columns {differing}; e.g. {found['examples']}"
    )
    con.close()
    return found


def profile_core(folder: Path, top: int = 15) -> dict:
    """Where trackline's core spends its time, on one source: cProfile of the whole call (Python side),
    each Polars plan it collects profiled node by node, and a prototype without the output sorts (same
    rows, checked)."""
    import cProfile
    import pstats
    import time

    frames, files = read_frames(folder)
    captured: list[tuple[int, float]] = []
    plans: list[list[pl.LazyFrame]] = []
    original_collect_all = pl.collect_all

    def spy(frames_, *args, **kwargs):
        plans.append(list(frames_))
        started = time.perf_counter()
        out = original_collect_all(frames_, *args, **kwargs)
        captured.append((len(plans[-1]), time.perf_counter() - started))
        return out

    profiler = cProfile.Profile()
    pl.collect_all = spy
    started = time.perf_counter()
    try:
        profiler.enable()
        original = trackline_core(frames, files)
        profiler.disable()
    finally:
        pl.collect_all = original_collect_all
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (calls, _, own, cumulative, _) in stats.stats.items():
        here = "/transforms/" in filename or "/bench/" in filename
        engine = name in ("collect_all", "collect", "sort", "join", "validate", "is_duplicated", "unique")
        if here or engine:
            place = (
                f"{Path(filename).parent.name}/{Path(filename).name}:{line}"
                if here
                else filename.split("site-packages/")[-1]
            )
            rows.append(
                {"function": f"{place}({name})", "calls": calls, "own_s": own, "cumulative_s": cumulative}
            )
    rows.sort(key=lambda r: -r["cumulative_s"])

    nodes = []
    for which, plan in enumerate(plans):
        for member, frame in enumerate(plan):
            started = time.perf_counter()
            result, timings = frame.profile()
            elapsed = time.perf_counter() - started
            timings = timings.with_columns((pl.col("end") - pl.col("start")).alias("us")).sort(
                "us", descending=True
            )
            nodes.append(
                {
                    "collect": which,
                    "member": member,
                    "alone_s": elapsed,
                    "rows": result.height,
                    "top_nodes": [
                        (n[:90], us / 1e6) for n, us in timings.select("node", "us").head(5).iter_rows()
                    ],
                }
            )

    # Prototype: the eager tail sorts every output frame by its string keys (for a stable order that the
    # warehouse does not keep anyway). Skip those DataFrame sorts (the lazy sort that orders lines on an
    # invoice stays) and compare the outputs in one order: the gain is what the sorts cost.
    sort = pl.DataFrame.sort
    pl.DataFrame.sort = lambda frame, *args, **kwargs: frame
    try:
        started = time.perf_counter()
        unsorted = trackline_core(frames, files)
        prototype_s = time.perf_counter() - started
    finally:
        pl.DataFrame.sort = sort
    started = time.perf_counter()
    trackline_core(frames, files)
    again_s = time.perf_counter() - started

    def ordered(frame: pl.DataFrame) -> pl.DataFrame:
        flat = frame.with_columns(pl.col(pl.List(pl.Utf8)).list.join(","))
        return flat.sort(pl.all().cast(pl.Utf8), nulls_last=True)

    same = all(
        ordered(getattr(unsorted, name)).equals(ordered(getattr(original, name)))
        for name in (
            "line_tracking",
            "invoice_states",
            "exceptions",
            "xero_line_items",
            "xero_invoices",
            "payloads",
        )
    )
    return {
        "seconds": total,
        "collect_all_calls": [{"frames": n, "seconds": s} for n, s in captured],
        "functions": rows[:top],
        "plan_members": nodes,
        "prototype_without_output_sorts": {
            "seconds": prototype_s,
            "original_again_seconds": again_s,
            "same_rows": same,
        },
    }


def check_source(folder: Path) -> list[Agreement]:
    """trackline against both peers on one source folder."""
    frames, files = read_frames(folder)
    mine = trackline_result(frames, files)
    return [
        compare(mine, duckdb_result(frames), ("trackline", "duckdb")),
        compare(mine, pandas_result(frames), ("trackline", "pandas")),
    ]


def summary(result: pl.DataFrame) -> pl.DataFrame:
    """Invoices by state and hold codes: what the result holds, for a report."""
    return (
        result.unique(INVOICE)
        .group_by("invoice_state", "hold_codes")
        .agg(pl.len().alias("invoices"))
        .sort("invoice_state", "invoices", descending=[False, True])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trackline against the DuckDB and pandas peers, row for row")
    parser.add_argument("sources", nargs="+", type=Path)
    args = parser.parse_args(argv)
    ok = True
    for folder in args.sources:
        for agreement in check_source(folder):
            print(f"{folder}: {agreement.describe()}")
            ok &= agreement.agrees
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
