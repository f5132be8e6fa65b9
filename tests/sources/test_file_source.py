"""FileSource: every method of the Source protocol on a folder of CSV files, of text Parquet and of typed
Parquet; the stops of the bad-input matrix, word for word; and the CSV quirks read as meant."""

from __future__ import annotations

import codecs
import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.sources import files
from flows.sources.files import FileSource, SourceError, read_source
from flows.sources.protocol import INVOICE_KEY_COLUMNS, REFERENCE_TABLES, StagedChunk
from tests.reliability.matrix import FILE_CASES, STOP_CASES
from tests.reliability.practice import Source, add_practice, empty_source, find_row, row, write_source
from tests.reliability.runs import stop_source
from transforms.parse_sources import ROW, TABLES, as_csv_text, parse_table

INVOICE = ["practice_id", "invoice_id"]
FORMATS = ("csv", "parquet", "typed")


def awkward_source() -> Source:
    """Two practices, plus the rows a source method must not get wrong: a repeated invoice key, invoices
    and lines without their keys (null, blank), an orphan line, and a line whose practice_id is padded
    (keys are compared exactly as held, so it names no invoice)."""
    source = add_practice(add_practice(empty_source(), "p1"), "p2")
    repeated = dict(find_row(source, "invoices", "p1", {"invoice_id": "i1"}), reference="a second copy")
    source["invoices"] += [
        repeated,
        row(
            "invoices",
            practice_id=None,
            invoice_id="i5",
            status="approved",
            updated_at="2020-01-01T00:00:00Z",
        ),
        row(
            "invoices",
            practice_id="p2",
            invoice_id="  ",
            status="approved",
            updated_at="2020-01-01T00:00:00Z",
        ),
    ]
    source["invoice_lines"] += [
        row("invoice_lines", practice_id=None, invoice_id="i1", line_id="l8", position="3"),
        row("invoice_lines", practice_id="p1", invoice_id=" ", line_id="l9", position="4"),
        row("invoice_lines", practice_id="p1", invoice_id="i9", line_id="l1", position="1"),
        row("invoice_lines", practice_id=" p1", invoice_id="i1", line_id="l7", position="5"),
        row("invoice_lines", practice_id="p2", invoice_id="i2", line_id="l3", position="3", quantity="1.5"),
    ]
    return source


def write(source: Source, folder: Path, fmt: str) -> Path:
    if fmt == "csv":
        return write_source(source, folder)
    return write_source(source, folder, parquet=tuple(TABLES), typed_parquet=fmt == "typed")


def as_written(source: Source, folder: Path, table: str, fmt: str) -> pl.DataFrame:
    """What the table holds, worked out without FileSource: a Parquet file's own columns and types; a CSV
    file's text, an empty field read as null."""
    if fmt != "csv":
        frame = pl.read_parquet(folder / f"{table}.parquet").select(list(TABLES[table]))
    else:
        frame = pl.DataFrame(
            [[r[c] or None for c in TABLES[table]] for r in source[table]],
            schema={c: pl.Utf8 for c in TABLES[table]},
            orient="row",
        )
    return frame.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))


def opened(folder: Path, scratch: Path) -> FileSource:
    source = FileSource(folder)
    source.open(scratch)
    return source


def keyless(frame: pl.DataFrame) -> pl.Series:
    return frame.select(
        pl.any_horizontal((pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "")) for c in INVOICE)
    ).to_series()


@pytest.fixture(params=FORMATS)
def awkward(request, tmp_path) -> tuple[Source, Path, str, FileSource]:
    source = awkward_source()
    folder = write(source, tmp_path / "source", request.param)
    return source, folder, request.param, opened(folder, tmp_path / "scratch")


# What the source is -------------------------------------------------------------------------------------


def test_describe_names_the_folder_and_file_name_names_the_file_details_cite(tmp_path):
    source = add_practice(empty_source(), "p1")
    folder = write_source(source, tmp_path / "source", parquet=("invoices",))
    files_source = FileSource(folder)
    assert files_source.describe() == str(folder)
    assert files_source.file_name("invoices") == "invoices.parquet"
    assert files_source.file_name("invoice_lines") == "invoice_lines.csv"
    files_source.open(tmp_path / "scratch")
    assert [files_source.file_name(t) for t in ("invoices", "invoice_lines", "clients")] == [
        "invoices.parquet",
        "invoice_lines.csv",
        "clients.csv",
    ]


def test_a_source_that_is_not_open_says_so(tmp_path):
    folder = write_source(add_practice(empty_source(), "p1"), tmp_path / "source")
    with pytest.raises(RuntimeError, match="not open"):
        FileSource(folder).invoice_keys()


# The tables as read ---------------------------------------------------------------------------------------


def test_reference_holds_the_six_tables_as_read(awkward):
    source, folder, fmt, files_source = awkward
    reference = files_source.reference()
    assert list(reference) == list(REFERENCE_TABLES)
    for table, frame in reference.items():
        assert frame.columns == [ROW, *TABLES[table]]
        assert frame.equals(as_written(source, folder, table, fmt)), table


def test_typed_parquet_columns_keep_their_types(tmp_path):
    folder = write(add_practice(empty_source(), "p1"), tmp_path / "source", "typed")
    files_source = opened(folder, tmp_path / "scratch")
    lines = files_source.table("invoice_lines")
    invoices = files_source.invoice_keys()
    clients = files_source.reference()["clients"]
    assert (lines.schema["quantity"], lines.schema["position"]) == (pl.Float64, pl.Int64)
    assert invoices.schema["issue_date"] == pl.Date
    assert invoices.schema["updated_at"] == pl.Datetime("us", "Europe/London")
    assert clients.schema["consolidate_lines"] == pl.Boolean


def test_invoice_keys_are_every_invoices_row_as_read(awkward):
    source, folder, fmt, files_source = awkward
    keys = files_source.invoice_keys()
    assert keys.columns == list(INVOICE_KEY_COLUMNS)
    assert keys.sort(ROW).equals(as_written(source, folder, "invoices", fmt).select(INVOICE_KEY_COLUMNS))


def test_line_counts_count_the_lines_naming_each_key_with_blank_and_null_keys_their_own_groups(awkward):
    source, folder, fmt, files_source = awkward
    counts = files_source.line_counts()
    assert counts.columns == [*INVOICE, "lines"] and counts.schema["lines"] == pl.Int64
    lines = as_written(source, folder, "invoice_lines", fmt)
    expected = lines.group_by(INVOICE).agg(pl.len().cast(pl.Int64).alias("lines"))
    assert counts.sort(INVOICE, nulls_last=True).equals(expected.sort(INVOICE, nulls_last=True))
    as_dict = {(p, i): n for p, i, n in counts.iter_rows()}
    assert as_dict[("p1", "i1")] == 1 and as_dict[("p2", "i2")] == 3
    assert as_dict[(None, "i1")] == 1 and as_dict[("p1", " ")] == 1 and as_dict[(" p1", "i1")] == 1


def test_loose_lines_are_the_keyless_lines_and_the_orphans(awkward):
    source, folder, fmt, files_source = awkward
    invoices = files_source.invoice_keys().select(INVOICE)
    loose = files_source.loose_lines(invoices)
    lines = as_written(source, folder, "invoice_lines", fmt)
    assert loose.equals(
        lines.filter(pl.col("line_id").is_in(["l8", "l9", "l7"]) | (pl.col("invoice_id") == "i9"))
    )
    assert sorted(loose["line_id"].to_list()) == ["l1", "l7", "l8", "l9"]


def test_a_line_whose_invoice_has_no_key_is_loose_even_when_their_blank_keys_are_equal(tmp_path):
    source = add_practice(empty_source(), "p1")
    source["invoices"].append(row("invoices", practice_id="p1", invoice_id=" ", status="approved"))
    source["invoice_lines"].append(row("invoice_lines", practice_id="p1", invoice_id=" ", line_id="l1"))
    files_source = opened(write(source, tmp_path / "source", "parquet"), tmp_path / "scratch")
    loose = files_source.loose_lines(files_source.invoice_keys().select(INVOICE))
    assert loose["invoice_id"].to_list() == [" "]


def test_loose_lines_found_against_the_sources_own_invoices_are_the_same(awkward):
    """Without a list of invoices the source finds the orphans itself (one pass, holding no key list)."""
    _, _, _, files_source = awkward
    given = files_source.loose_lines(files_source.invoice_keys().select(INVOICE))
    found = files_source.loose_lines()
    assert found.select(ROW, *INVOICE, "line_id").equals(given.select(ROW, *INVOICE, "line_id"))


def test_practices_count_each_practices_invoices_and_lines(awkward):
    source, folder, fmt, files_source = awkward
    sizes = files_source.practices()
    invoices = as_written(source, folder, "invoices", fmt).filter(
        ~keyless(as_written(source, folder, "invoices", fmt))
    )
    lines = as_written(source, folder, "invoice_lines", fmt)
    lines = lines.filter(~keyless(lines))
    expected_invoices = dict(invoices.group_by("practice_id").len().iter_rows())
    expected_lines = dict(lines.group_by("practice_id").len().iter_rows())
    assert {p: n for p, n, _ in sizes.iter_rows() if n} == expected_invoices
    assert {p: n for p, _, n in sizes.iter_rows() if n} == expected_lines


def test_invoice_keys_and_line_counts_of_some_practices_are_those_practices_rows(awkward):
    _, _, _, files_source = awkward
    every, counts = files_source.invoice_keys(), files_source.line_counts()
    for practice in files_source.practices()["practice_id"].to_list():
        some = files_source.invoice_keys(practices=[practice])
        assert some.sort(ROW).equals(every.filter(pl.col("practice_id") == practice).sort(ROW))
        mine = files_source.line_counts(practices=[practice]).sort(INVOICE)
        assert mine.equals(counts.filter(pl.col("practice_id") == practice).sort(INVOICE))


def test_loose_invoices_are_the_invoices_rows_without_their_keys(awkward):
    source, folder, fmt, files_source = awkward
    loose = files_source.loose_invoices()
    invoices = as_written(source, folder, "invoices", fmt)
    assert loose.sort(ROW).equals(invoices.filter(keyless(invoices)))
    assert loose.height == 2


# Staging ------------------------------------------------------------------------------------------------


def staged_rows(staged: list[StagedChunk]) -> dict[int, tuple[pl.DataFrame, pl.DataFrame]]:
    return {s.chunk: (pl.read_parquet(s.invoices), pl.read_parquet(s.lines)) for s in staged}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunk_of=st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=12, max_size=12))
def test_stage_puts_every_row_of_a_chunk_in_its_files_and_nothing_else(awkward, chunk_of):
    source, folder, fmt, files_source = awkward
    invoices = as_written(source, folder, "invoices", fmt)
    lines = as_written(source, folder, "invoice_lines", fmt)
    keys = invoices.select(INVOICE).unique(maintain_order=True)
    assert keys.height <= len(chunk_of)
    assignment = keys.with_columns(pl.Series("chunk", chunk_of[: keys.height], dtype=pl.Int64)).drop_nulls(
        "chunk"
    )
    with tempfile.TemporaryDirectory() as out:
        staged = files_source.stage(assignment, Path(out) / "staged")
        got = staged_rows(staged)
    assert sorted(got) == sorted(set(assignment["chunk"].to_list()))
    assert [s.chunk for s in staged] == sorted(got)
    for chunk, (chunk_invoices, chunk_lines) in got.items():
        mine = assignment.filter(pl.col("chunk") == chunk).drop("chunk")
        expect_invoices = invoices.filter(~keyless(invoices)).join(mine, on=INVOICE, how="semi")
        expect_lines = lines.filter(~keyless(lines)).join(mine, on=INVOICE, how="semi")
        assert chunk_invoices.columns == [ROW, *TABLES["invoices"]]
        assert chunk_invoices.sort(ROW)[ROW].to_list() == expect_invoices[ROW].to_list()
        assert chunk_lines.sort(ROW)[ROW].to_list() == expect_lines[ROW].to_list()


def test_stage_writes_a_repeated_key_s_every_row_and_never_a_keyless_one(awkward, tmp_path):
    source, folder, fmt, files_source = awkward
    keys = files_source.invoice_keys().select(INVOICE).unique()
    staged = files_source.stage(keys.with_columns(pl.lit(7).alias("chunk")), tmp_path / "staged")
    assert [s.chunk for s in staged] == [7]
    (invoices, lines), *_ = staged_rows(staged).values()
    p1_i1 = invoices.filter((pl.col("practice_id") == "p1") & (pl.col("invoice_id") == "i1"))
    assert p1_i1["reference"].sort().to_list() == ["Ref «p1»", "a second copy"]
    assert keyless(invoices).sum() == 0 and keyless(lines).sum() == 0
    assert invoices.height == 5 and lines.height == 7  # 2 + 3 invoices rows, 6 + 1 lines with an invoice


def test_staged_rows_are_the_rows_as_read(awkward, tmp_path):
    source, folder, fmt, files_source = awkward
    keys = files_source.invoice_keys().select(INVOICE).unique()
    (staged,) = files_source.stage(keys.with_columns(pl.lit(0).alias("chunk")), tmp_path / "staged")
    for table, path in (("invoices", staged.invoices), ("invoice_lines", staged.lines)):
        written = files_source.table(table)
        got = pl.read_parquet(path).sort(ROW)
        expected = written.join(got.select(ROW), on=ROW, how="semi").sort(ROW)
        # (DuckDB writes a zoned timestamp in UTC: the same instant, as its text shows.)
        text = [as_csv_text(c, t) for c, t in got.schema.items()]
        assert got.select(text).equals(expected.select(as_csv_text(c, t) for c, t in expected.schema.items()))
        for column, dtype in got.schema.items():
            same_kind = dtype == expected.schema[column] or (
                isinstance(dtype, pl.Datetime) and isinstance(expected.schema[column], pl.Datetime)
            )
            assert same_kind, (table, column, dtype, expected.schema[column])
        typed, problems = parse_table(table, got.lazy(), f"{table}.x")
        typed_expected, problems_expected = parse_table(table, expected.lazy(), f"{table}.x")
        assert typed.collect().sort(ROW).equals(typed_expected.collect().sort(ROW))
        assert problems.collect().sort(ROW, "column").equals(problems_expected.collect().sort(ROW, "column"))


def test_a_chunk_without_rows_still_gets_both_files(awkward, tmp_path):
    source, folder, fmt, files_source = awkward
    assignment = pl.DataFrame({"practice_id": ["p1", "p9"], "invoice_id": ["i1", "i1"], "chunk": [0, 3]})
    staged = files_source.stage(assignment, tmp_path / "staged")
    assert [s.chunk for s in staged] == [0, 3]
    empty = staged[1]
    assert pl.read_parquet(empty.invoices).height == 0 and pl.read_parquet(empty.lines).height == 0
    assert pl.read_parquet(empty.lines).schema == pl.read_parquet(staged[0].lines).schema


def test_stage_refuses_an_assignment_that_names_a_key_twice(awkward, tmp_path):
    _, _, _, files_source = awkward
    twice = pl.DataFrame({"practice_id": ["p1", "p1"], "invoice_id": ["i1", "i1"], "chunk": [0, 1]})
    with pytest.raises(ValueError, match="twice"):
        files_source.stage(twice, tmp_path / "staged")


def test_integer_keys_are_matched_on_their_text(tmp_path):
    source = add_practice(empty_source(), "1")
    for r in source["invoices"] + source["invoice_lines"]:
        r["invoice_id"] = r["invoice_id"][1:]  # i1 -> 1
    source["invoice_lines"].append(row("invoice_lines", practice_id="1", invoice_id="9", line_id="l5"))
    folder = write_source(source, tmp_path / "source", parquet=("invoices", "invoice_lines"))
    for table in ("invoices", "invoice_lines"):
        path = folder / f"{table}.parquet"
        pl.read_parquet(path).with_columns(pl.col(INVOICE).cast(pl.Int64)).write_parquet(path)
    files_source = opened(folder, tmp_path / "scratch")
    keys = files_source.invoice_keys()
    assert keys.schema["invoice_id"] == pl.Int64
    as_text = keys.select(pl.col(INVOICE).cast(pl.Utf8))
    assert files_source.loose_lines(as_text)["line_id"].to_list() == ["l5"]
    assert files_source.loose_lines(keys.select(INVOICE))["line_id"].to_list() == ["l5"]
    (staged,) = files_source.stage(as_text.with_columns(pl.lit(0).alias("chunk")), tmp_path / "staged")
    assert pl.read_parquet(staged.lines).height == 3 and pl.read_parquet(staged.invoices).height == 2


# Changed since a watermark ------------------------------------------------------------------------------


def invoices_updated_at(values: list | pl.Series, folder: Path, fmt: str) -> FileSource:
    """A source whose invoices i0, i1, ... (of practice p1) have these updated_at values."""
    source = add_practice(empty_source(), "p1")
    template = source["invoices"][0]
    source["invoices"] = [
        dict(template, invoice_id=f"i{n}", updated_at=v if isinstance(v, str) or v is None else "x")
        for n, v in enumerate(values)
    ]
    write(source, folder, "csv" if fmt == "csv" else "parquet")
    if fmt != "csv" and not all(isinstance(v, str) or v is None for v in values):
        path = folder / "invoices.parquet"
        pl.read_parquet(path).with_columns(pl.Series("updated_at", values)).write_parquet(path)
    return opened(folder, folder.parent / "scratch")


def may_have_changed(files_source: FileSource, watermark: datetime) -> set[str]:
    """The invoices whose updated_at, parsed as a run parses it, is not known to be at or before the
    watermark: it does not parse, or it is later."""
    typed, _ = parse_table("invoices", files_source.table("invoices").lazy(), "invoices.csv")
    updated = typed.collect()
    return set(
        updated.filter(pl.col("updated_at").is_null() | (pl.col("updated_at") > watermark))["invoice_id"]
    )


TEXT_TIMES = st.one_of(
    st.datetimes(datetime(1850, 1, 1), datetime(2150, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")),
    st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)).map(
        lambda d: d.isoformat(timespec="microseconds") + "Z"
    ),
    st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)).map(lambda d: d.isoformat(sep=" ")),
    st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)).map(lambda d: d.isoformat() + "+02:00"),
    st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d")),
    st.sampled_from(
        ["", "  ", "yesterday", "2026-13-45T99:99:99Z", " 2020-01-01T00:00:00Z ", "2020-02-30T00:00:00Z"]
    ),
    st.none(),
)
WATERMARKS = st.datetimes(datetime(1995, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC))


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(TEXT_TIMES, min_size=1, max_size=8),
    watermark=WATERMARKS,
    fmt=st.sampled_from(["csv", "parquet"]),
)
def test_invoice_keys_since_a_watermark_never_drop_a_text_row_that_may_have_changed(values, watermark, fmt):
    with tempfile.TemporaryDirectory() as folder:
        files_source = invoices_updated_at(values, Path(folder) / "source", fmt)
        kept = set(files_source.invoice_keys(changed_since=watermark)["invoice_id"])
        assert may_have_changed(files_source, watermark) <= kept


ZONES = st.sampled_from([None, "UTC", "Europe/London", "America/New_York", "Asia/Kolkata"])


@settings(max_examples=40, deadline=None)
@given(
    moments=st.lists(
        st.one_of(st.none(), st.datetimes(datetime(1850, 1, 1), datetime(2150, 1, 1))), min_size=1, max_size=8
    ),
    zone=ZONES,
    unit=st.sampled_from(["ns", "us", "ms"]),
    watermark=WATERMARKS,
)
def test_invoice_keys_since_a_watermark_never_drop_a_typed_row_that_may_have_changed(
    moments, zone, unit, watermark
):
    series = pl.Series("updated_at", moments, dtype=pl.Datetime(unit))
    if zone is not None:
        series = series.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    with tempfile.TemporaryDirectory() as folder:
        files_source = invoices_updated_at(series, Path(folder) / "source", "parquet")
        kept = set(files_source.invoice_keys(changed_since=watermark)["invoice_id"])
        assert may_have_changed(files_source, watermark) <= kept


def test_invoice_keys_since_a_watermark_leave_out_what_is_provably_before_it(tmp_path):
    watermark = datetime(2026, 1, 15, 9, 0, 0, 500_000, tzinfo=UTC)
    values = [
        "2026-01-15T08:59:59Z",  # a second before: left out
        "2026-01-15T08:59:59.999Z",  # before, to the second: left out
        "2026-01-15T09:00:00Z",  # the watermark's own second: kept (not provably before)
        "2026-01-15T09:00:01Z",
        "1850-01-01T00:00:00Z",  # does not parse (before 1900): kept
        "2026-01-15T07:00:00+00:00",  # not the ISO UTC form: kept
        None,
    ]
    files_source = invoices_updated_at(values, tmp_path / "source", "csv")
    kept = files_source.invoice_keys(changed_since=watermark)["invoice_id"].to_list()
    assert kept == ["i2", "i3", "i4", "i5", "i6"]
    assert files_source.invoice_keys()["invoice_id"].to_list() == [f"i{n}" for n in range(7)]


def test_invoice_keys_since_a_watermark_compare_typed_times_in_utc(tmp_path):
    wall_clock = pl.Series(
        "updated_at", [datetime(2026, 6, 1, 9, 59, 59), datetime(2026, 6, 1, 10, 0, 1), None]
    )
    london = wall_clock.dt.replace_time_zone("Europe/London")  # 08:59:59 and 09:00:01 UTC (summer time)
    files_source = invoices_updated_at(london, tmp_path / "source", "parquet")
    kept = files_source.invoice_keys(changed_since=datetime(2026, 6, 1, 9, tzinfo=UTC))
    assert kept["invoice_id"].to_list() == ["i1", "i2"]
    naive = pl.Series("updated_at", [datetime(2026, 6, 1, 8), datetime(2026, 6, 1, 10)])  # taken as UTC
    files_source = invoices_updated_at(naive, tmp_path / "naive", "parquet")
    kept = files_source.invoice_keys(changed_since=datetime(2026, 6, 1, 9, tzinfo=UTC))
    assert kept["invoice_id"].to_list() == ["i1"]


def test_invoice_keys_since_a_watermark_keep_rows_without_their_keys(awkward):
    source, folder, fmt, files_source = awkward
    kept = files_source.invoice_keys(changed_since=datetime(2030, 1, 1, tzinfo=UTC))
    assert kept.height == 2 and keyless(kept).all()


# Stops: the matrix, word for word ------------------------------------------------------------------------


def today_says(case, folder: Path) -> str:
    """The stop read_source gave for the case before FileSource, word for word."""
    table, kind = case.table, case.id.split(".", 1)[1]
    csv_path, names = folder / f"{table}.csv", list(TABLES[table])
    if kind == "missing-file":
        return f"{csv_path}: file is missing (expected {table}.csv or {table}.parquet)"
    if kind in ("empty-file", "blank-file"):
        return f"{csv_path}: file is empty (it needs at least a header row)"
    if kind == "latin-1":
        offset = csv_path.read_bytes().index(b"\xa3")
        return f"{csv_path}: line 2 is not valid UTF-8 (byte offset {offset}); save the file as UTF-8"
    if kind == "utf-16":
        return f"{csv_path}: line 1 is not valid UTF-8 (byte offset 0); save the file as UTF-8"
    if kind == "repeated-column":
        return f"{csv_path}: column {names[1]} appears twice in the header; keep one"
    if kind == "ragged-row":
        return (
            f"{csv_path}: cannot be read as CSV (line 2 has {len(names) + 1} fields, the header has "
            f"{len(names)}); check its quotes and separators"
        )
    if kind == "open-quote":
        return f"{csv_path}: cannot be read as CSV (a quote is not closed); check its quotes and separators"
    if kind == "semicolons":
        return (
            f"{csv_path}: column {', '.join(names)} is missing (header has: {';'.join(names)}); "
            "is it separated by ';' instead of ','?"
        )
    if kind == "both-formats":
        return f"{folder}: both {table}.parquet and {table}.csv exist; keep one"
    if kind == "parquet-corrupt":  # the reason is the Parquet reader's own
        return f"{folder / f'{table}.parquet'}: cannot be read as Parquet (parquet: File out of specification: The file must end with PAR1)"
    if kind == "parquet-nested":
        return (
            f"{folder / f'{table}.parquet'}: column {names[-1]} holds List(String) values, not single values; "
            "export it as text or numbers"
        )
    assert kind.endswith("missing-column"), kind
    others = ", ".join(n for n in names if n != case.column)
    return f"{csv_path}: column {case.column} is missing (header has: {others})"


@pytest.mark.parametrize("case", STOP_CASES, ids=lambda c: c.id)
def test_open_stops_on_every_unusable_file_of_the_matrix_word_for_word(case, tmp_path):
    folder = stop_source(case, tmp_path / "source")
    expected = today_says(case, folder)
    with pytest.raises(SourceError) as stop:
        FileSource(folder).open(tmp_path / "scratch")
    assert str(stop.value) == expected
    with pytest.raises(SourceError) as stop:
        read_source(folder)
    assert str(stop.value) == expected


@pytest.mark.parametrize("block", [1, 2, 3, 5, 7, 64])
def test_utf8_is_checked_a_block_at_a_time_naming_the_line_and_offset_of_the_bad_byte(
    block, tmp_path, monkeypatch
):
    monkeypatch.setattr(files, "BLOCK", block)
    folder = write_source(add_practice(empty_source(), "p1"), tmp_path / "source")
    path = folder / "clients.csv"
    data = path.read_bytes()
    bad = data.index(b"\n", data.index(b"\n") + 1) + 5  # five bytes into line 3
    path.write_bytes(codecs.BOM_UTF8 + data[:bad] + b"\xe9t\xc3" + data[bad:])
    with pytest.raises(SourceError) as stop:
        FileSource(folder).open(tmp_path / "scratch")
    assert str(stop.value) == f"{path}: line 3 is not valid UTF-8 (byte offset {bad}); save the file as UTF-8"


@pytest.mark.parametrize("block", [1, 2, 3, 5])
def test_characters_split_between_blocks_are_valid_utf8(block, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "BLOCK", block)
    source = add_practice(empty_source(), "p1")
    source["clients"][0]["name"] = "Zoë Øresund 東京 🚀"
    folder = write_source(source, tmp_path / "source", transform=lambda t, d: codecs.BOM_UTF8 + d)
    clients = opened(folder, tmp_path / "scratch").reference()["clients"]
    assert clients["name"][0] == "Zoë Øresund 東京 🚀"


def test_a_stop_names_the_table_in_contract_order(tmp_path):
    folder = write_source(add_practice(empty_source(), "p1"), tmp_path / "source")
    (folder / "invoice_lines.csv").write_bytes(b"")
    (folder / "clients.csv").write_bytes(b"")
    with pytest.raises(SourceError, match="clients.csv: file is empty"):
        FileSource(folder).open(tmp_path / "scratch")


# CSV quirks, read as meant ----------------------------------------------------------------------------------

QUIRKS = [c for c in FILE_CASES if c.table == "*" and "parquet" not in c.write and c.id != "*.mixed"]


@pytest.mark.parametrize("case", QUIRKS, ids=lambda c: c.id)
def test_every_csv_quirk_of_the_matrix_is_converted_as_meant(case, tmp_path):
    source = awkward_source()
    source["invoice_lines"][0]["description"] = 'two\r\nlines, "quoted"'
    source["clients"][0]["name"] = 'Bolt, "the" Ltd\nNorth'
    folder = write_source(source, tmp_path / "source", **case.write)
    files_source = opened(folder, tmp_path / "scratch")
    for table in TABLES:
        got = files_source.table(table)
        expected = as_written(source, folder, table, "csv")
        # A line break inside quotes is rewritten with the file's (CR-only: every CR is then a line end).
        breaks = pl.col(pl.Utf8).str.replace_all("\r\n", "\n")
        if case.id == "*.crlf":
            expected = expected.with_columns(breaks.str.replace_all("\n", "\r\n"))
        if case.id == "*.cr":
            expected = expected.with_columns(breaks.str.replace_all("\r", "\n"))
        assert got.equals(expected), (case.id, table)
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == sorted(f"{t}.parquet" for t in TABLES)


def test_quoted_line_breaks_keep_one_row_per_record(tmp_path):
    source = add_practice(empty_source(), "p1")
    source["invoice_lines"][0]["description"] = "one\ntwo\nthree"
    folder = write_source(source, tmp_path / "source")
    lines = opened(folder, tmp_path / "scratch").table("invoice_lines")
    assert lines[ROW].to_list() == [1, 2, 3]
    assert lines["description"][0] == "one\ntwo\nthree"


def test_a_header_only_csv_is_an_empty_table(tmp_path):
    source = add_practice(empty_source(), "p1")
    source["invoice_lines"] = []
    folder = write_source(source, tmp_path / "source")
    files_source = opened(folder, tmp_path / "scratch")
    assert files_source.line_counts().height == 0
    assert files_source.table("invoice_lines").columns == [ROW, *TABLES["invoice_lines"]]


def test_opening_a_csv_source_never_reads_a_file_whole(tmp_path, monkeypatch):
    folder = write_source(
        add_practice(empty_source(), "p1"), tmp_path / "source", transform=lambda t, d: codecs.BOM_UTF8 + d
    )

    def whole(self, *args, **kwargs):
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    monkeypatch.setattr(Path, "read_text", whole)
    monkeypatch.setattr(files, "BLOCK", 16)  # many blocks even for a small file
    files_source = opened(folder, tmp_path / "scratch")
    assert files_source.line_counts()["lines"].sum() == 3


# Parquet, read in place --------------------------------------------------------------------------------------


def test_a_parquet_table_is_read_in_place_under_its_contract_names(tmp_path):
    source = add_practice(empty_source(), "p1")
    folder = write_source(source, tmp_path / "source", parquet=tuple(TABLES))
    path = folder / "invoice_lines.parquet"
    frame = pl.read_parquet(path)
    padded = {c: f"  {c} " for c in frame.columns}
    frame.rename(padded).with_columns(pl.lit("x").alias("exported_by")).select(
        "exported_by", *reversed(list(padded.values()))
    ).write_parquet(path)
    files_source = opened(folder, tmp_path / "scratch")
    lines = files_source.table("invoice_lines")
    assert lines.equals(
        as_written(
            source,
            write_source(source, tmp_path / "plain", parquet=tuple(TABLES)),
            "invoice_lines",
            "parquet",
        )
    )
    assert not (tmp_path / "scratch").exists() or list((tmp_path / "scratch").iterdir()) == []


def test_a_parquet_file_that_breaks_after_its_footer_stops_with_one_line_when_read(tmp_path):
    source = add_practice(empty_source(), "p1")
    folder = write_source(source, tmp_path / "source", parquet=("invoice_lines",))
    path = folder / "invoice_lines.parquet"
    pl.read_parquet(path).write_parquet(path, compression="zstd")
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    data = bytearray(path.read_bytes())
    for n in range(chunks.num_columns):  # each column's data, not the footer
        column = chunks.column(n)
        start = column.dictionary_page_offset or column.data_page_offset
        for at in range(start + column.total_compressed_size // 2, start + column.total_compressed_size):
            data[at] = 0xFF
    path.write_bytes(bytes(data))
    files_source = opened(folder, tmp_path / "scratch")
    with pytest.raises(SourceError) as stop:
        files_source.line_counts()
    assert str(stop.value).startswith(f"{path}: cannot be read as Parquet (")
    assert "\n" not in str(stop.value)
    with pytest.raises(SourceError):
        files_source.stage(
            pl.DataFrame({"practice_id": ["p1"], "invoice_id": ["i1"], "chunk": [0]}), tmp_path / "s"
        )


def test_a_typed_parquet_decimal_and_date_reach_the_staged_files_typed(tmp_path):
    source = add_practice(empty_source(), "p1")
    folder = write_source(source, tmp_path / "source", parquet=("invoices", "invoice_lines"))
    path = folder / "invoice_lines.parquet"
    pl.read_parquet(path).with_columns(pl.col("quantity").cast(pl.Decimal(18, 4))).write_parquet(path)
    path = folder / "invoices.parquet"
    pl.read_parquet(path).with_columns(pl.col("issue_date").str.to_date()).write_parquet(path)
    files_source = opened(folder, tmp_path / "scratch")
    keys = files_source.invoice_keys().select(INVOICE)
    (staged,) = files_source.stage(keys.with_columns(pl.lit(0).alias("chunk")), tmp_path / "staged")
    lines, invoices = pl.read_parquet(staged.lines), pl.read_parquet(staged.invoices)
    assert lines.schema["quantity"] == pl.Decimal(18, 4)
    assert sorted(lines["quantity"].to_list()) == [Decimal("1"), Decimal("1"), Decimal("2")]
    assert invoices.schema["issue_date"] == pl.Date
    assert invoices["issue_date"].to_list() == [date(2026, 1, 15)] * 2
