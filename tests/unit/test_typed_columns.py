"""Typed sources stay typed: a source written as typed Parquet (dates, timestamps, decimals, integers,
booleans) resolves to exactly what the same source written as text resolves to — line_tracking, invoice
states, exceptions with their details, and what Xero receives — bad values included: a typed value the
contract does not allow gets the hold and the sentence its text gets."""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.sources.files import FileSource
from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, problems, sent, state, the_problem
from transforms import parse_sources
from transforms.parse_sources import ROW, TABLES, as_csv_text, parse_table
from transforms.resolve_invoices import Resolution, default_files, resolve_invoices

Frames = dict[str, pl.DataFrame]


def text_of(frames: Frames) -> Frames:
    """The same source as text: each typed value as an export writes it (a decimal without the trailing
    zeros of its type's scale, the rest as a CSV export of the column would hold it)."""

    def written(name: str, dtype: pl.DataType) -> pl.Expr:
        if isinstance(dtype, pl.Decimal):
            return pl.col(name).map_elements(lambda d: format(d.normalize(), "f"), return_dtype=pl.Utf8)
        return as_csv_text(name, dtype).cast(pl.Utf8)

    return {
        table: frame.with_columns(written(c, t) for c, t in frame.schema.items() if c != ROW)
        for table, frame in frames.items()
    }


def resolve_files(frames: Frames, folder: Path, suffix: str) -> Resolution:
    """Write the source (Parquet or CSV), read it back through FileSource, parse and resolve it; details
    name the same files either way, so that they can be compared."""
    folder.mkdir(parents=True)
    for table, frame in frames.items():
        if suffix == "parquet":
            frame.drop(ROW).write_parquet(folder / f"{table}.parquet")
        else:
            frame.drop(ROW).write_csv(folder / f"{table}.csv")
    source = FileSource(folder)
    source.open(folder.parent / f"scratch-{suffix}")
    files = default_files()
    typed, found = {}, []
    for table in TABLES:
        typed[table], problems_of_table = parse_table(table, source.table(table).lazy(), files[table])
        found.append(problems_of_table)
    collected = {t: f.collect().lazy() for t, f in typed.items()}
    return resolve_invoices(collected, pl.concat(found).collect().lazy(), files=files)


def typed_and_text(frames: Frames, folder: Path) -> tuple[Resolution, Resolution]:
    return (
        resolve_files(frames, folder / "typed", "parquet"),
        resolve_files(text_of(frames), folder / "text", "csv"),
    )


def in_order(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort([c for c, t in frame.schema.items() if not isinstance(t, pl.List)], nulls_last=True)


def assert_same_resolution(typed: Resolution, text: Resolution) -> None:
    for part in ("line_tracking", "invoice_states", "exceptions", "xero_line_items", "xero_invoices"):
        mine, theirs = in_order(getattr(typed, part)), in_order(getattr(text, part))
        assert mine.schema == theirs.schema, part
        assert mine.to_dicts() == theirs.to_dicts(), part


def with_columns(frames: Frames, table: str, **columns: pl.Series | list) -> Frames:
    return {**frames, table: frames[table].with_columns(pl.Series(n, v) for n, v in columns.items())}


def lines_and_invoices(invoices: int = 2, lines: int = 2) -> SourceBuilder:
    b = SourceBuilder()
    b.client("p1", "c2", "Bolt Ltd", option="opt-pb", owner="tm-owner", consolidate=True)
    for n in range(invoices):
        b.invoice("p1", f"i{n}", client_id="c1" if n % 2 == 0 else "c2")
        for m in range(lines):
            if m % 2 == 0:
                b.line("p1", f"i{n}", f"l{m}")
            else:
                b.adhoc_line("p1", f"i{n}", f"l{m}")
    return b


def natural_types(frames: Frames) -> Frames:
    """The builder's text as a typed export holds it: Date, Datetime in a zone, Decimal, Int64, Boolean."""
    invoices = frames["invoices"].with_columns(
        pl.col("issue_date", "due_date").str.to_date(),
        pl.col("updated_at").str.to_datetime(time_zone="UTC").dt.convert_time_zone("Europe/London"),
    )
    lines = frames["invoice_lines"].with_columns(
        pl.col("quantity", "unit_amount").cast(pl.Decimal(18, 4)), pl.col("position").cast(pl.Int64)
    )
    clients = frames["clients"].with_columns(pl.col("consolidate_lines") == "true")
    return {**frames, "invoices": invoices, "invoice_lines": lines, "clients": clients}


# The same source, typed or text --------------------------------------------------------------------------


def test_a_typed_source_resolves_exactly_as_the_same_source_as_text(tmp_path):
    frames = natural_types(lines_and_invoices(invoices=4, lines=3).frames())
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert state(typed, "i0") == "ready" and state(typed, "i1") == "ready"
    assert typed.xero_invoices.filter(pl.col("invoice_id") == "i1")["line_count"].item() == 1  # consolidated


ZONES = st.sampled_from([None, "UTC", "Europe/London", "America/New_York", "Asia/Kathmandu"])


def mostly(valid: st.SearchStrategy, bad: st.SearchStrategy, clean: bool) -> st.SearchStrategy:
    """Values the contract allows, and one in ten it does not (none in a clean source)."""
    return valid if clean else st.one_of(*[valid] * 9, bad)


@st.composite
def typed_sources(draw) -> Frames:
    """A practice's invoices and lines with typed values drawn from each contract type's range and beyond
    it (a date in 1850 or 2150, a decimal of 6 places or 16 digits, a position of 13 digits, nulls); a
    third of the sources hold only allowed values, so ready invoices and what Xero receives are compared
    too."""
    clean = draw(st.integers(0, 2)) == 0
    invoices, lines = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    frames = lines_and_invoices(invoices, lines).frames()
    n_invoices, n_lines = frames["invoices"].height, frames["invoice_lines"].height

    def each(values: st.SearchStrategy, n: int) -> list:
        return draw(st.lists(values, min_size=n, max_size=n))

    dates = mostly(
        st.dates(date(1900, 1, 1), date(2099, 12, 31)),
        st.one_of(st.dates(date(1850, 1, 1), date(2150, 12, 31)), st.none()),
        clean,
    )
    moments = mostly(
        st.datetimes(datetime(1900, 1, 2), datetime(2099, 12, 30)),
        st.one_of(st.datetimes(datetime(1850, 1, 1), datetime(2150, 12, 31)), st.none()),
        clean,
    )
    zone, unit = draw(ZONES), draw(st.sampled_from(["ns", "us", "ms"]))
    updated = pl.Series("updated_at", each(moments, n_invoices), dtype=pl.Datetime(unit))
    if zone is not None:
        updated = updated.dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
    frames = with_columns(
        frames,
        "invoices",
        issue_date=pl.Series(each(dates, n_invoices), dtype=pl.Date),
        due_date=pl.Series(each(dates, n_invoices), dtype=pl.Date),
        updated_at=updated,
    )
    scale = draw(st.integers(0, 6))
    amounts = mostly(
        st.integers(-(10**6), 10**6).map(lambda n: Decimal(n).scaleb(-min(scale, 4))),
        st.one_of(
            st.integers(-(10**16), 10**16).map(lambda n: Decimal(n).scaleb(-scale)),
            st.just(Decimal("99999999999999.9999") if scale >= 4 else Decimal(10**14)),
            st.none(),
        ),
        clean,
    )
    positions = mostly(st.integers(1, 999), st.one_of(st.integers(-(2**40), 2**40), st.none()), clean)
    frames = with_columns(
        frames,
        "invoice_lines",
        quantity=pl.Series(each(amounts, n_lines), dtype=pl.Decimal(38, scale)),
        unit_amount=pl.Series(each(amounts, n_lines), dtype=pl.Decimal(38, scale)),
        position=pl.Series(each(positions, n_lines), dtype=pl.Int64),
    )
    consolidate = pl.Series(each(st.one_of(st.booleans(), st.none()), 2), dtype=pl.Boolean)
    return with_columns(frames, "clients", consolidate_lines=consolidate)


@settings(max_examples=40, deadline=None)
@given(frames=typed_sources())
def test_any_typed_source_resolves_exactly_as_the_same_source_as_text(frames):
    with tempfile.TemporaryDirectory() as folder:
        typed, text = typed_and_text(frames, Path(folder))
    assert_same_resolution(typed, text)


# Bad typed values: the hold and the sentence their text gets -------------------------------------------------


def one_invoice() -> Frames:
    b = SourceBuilder()
    b.approved_invoice("p1", "i1")
    return natural_types(b.frames())


def the_invalid_value(result: Resolution) -> str:
    assert state(result) == "held" and hold_codes(result) == ["INVALID_VALUE"] and sent(result) == []
    return the_problem(result, "INVALID_VALUE")["detail"]


def test_a_date_in_1850_is_held_with_the_sentence_its_text_gets(tmp_path):
    frames = with_columns(one_invoice(), "invoices", issue_date=pl.Series([date(1850, 1, 1)]))
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert the_invalid_value(typed) == (
        "invoices.csv row 1 (invoice_id 'i1'): issue_date '1850-01-01' is not a date YYYY-MM-DD between 1900 and 2099"
    )


def test_a_decimal_with_six_places_is_held_never_rounded(tmp_path):
    quantity = pl.Series([Decimal("1.000001")], dtype=pl.Decimal(18, 6))
    frames = with_columns(one_invoice(), "invoice_lines", quantity=quantity)
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert the_invalid_value(typed).endswith("quantity '1.000001' has more than 4 decimal places")


def test_a_decimal_of_too_many_digits_is_held_saying_so(tmp_path):
    unit_amount = pl.Series([Decimal("123456789012345.5")], dtype=pl.Decimal(38, 10))
    frames = with_columns(one_invoice(), "invoice_lines", unit_amount=unit_amount)
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert the_invalid_value(typed).endswith(
        "unit_amount '123456789012345.5' is not a decimal with at most 14 digits before and 4 after the point"
    )


def test_a_decimal_of_a_wider_scale_that_fits_four_places_is_used_as_it_is(tmp_path):
    unit_amount = pl.Series([Decimal("33.3333000000")], dtype=pl.Decimal(38, 10))
    quantity = pl.Series([Decimal(3)], dtype=pl.Decimal(38, 10))
    frames = with_columns(one_invoice(), "invoice_lines", unit_amount=unit_amount, quantity=quantity)
    typed, _ = typed_and_text(frames, tmp_path)
    assert state(typed) == "ready"
    assert (
        sent(typed)[0]["unit_amount"] == Decimal("33.3333") and str(sent(typed)[0]["line_amount"]) == "100.00"
    )


def test_a_whole_number_out_of_range_is_held_with_the_sentence_its_text_gets(tmp_path):
    frames = with_columns(one_invoice(), "invoice_lines", position=pl.Series([10**10]))
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert the_invalid_value(typed).endswith(
        "position '10000000000' is not a whole number of at most 9 digits"
    )


def test_a_huge_typed_line_amount_is_held_naming_both_values(tmp_path):
    quantity = pl.Series([Decimal("20000000000")], dtype=pl.Decimal(18, 4))
    frames = with_columns(one_invoice(), "invoice_lines", quantity=quantity)
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert "'20000000000' x '100' is 1,000,000,000,000 or more" in the_invalid_value(typed)


def test_an_empty_required_typed_value_is_held_as_empty(tmp_path):
    frames = with_columns(one_invoice(), "invoices", due_date=pl.Series([None], dtype=pl.Date))
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert the_invalid_value(typed).endswith("due_date is empty")


# Timestamps ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "updated_at",
    [
        pl.Series([datetime(2026, 1, 15, 9)]).dt.replace_time_zone("Europe/London"),
        pl.Series([datetime(2026, 1, 15, 4)]).dt.replace_time_zone("America/New_York"),
        pl.Series([datetime(2026, 1, 15, 9)], dtype=pl.Datetime("ns")),
        pl.Series([datetime(2026, 1, 15, 9)], dtype=pl.Datetime("ms", "UTC")),
    ],
    ids=["london", "new-york", "naive-ns", "utc-ms"],
)
def test_a_typed_timestamp_is_read_in_utc_and_a_naive_one_as_utc(updated_at, tmp_path):
    frames = with_columns(one_invoice(), "invoices", updated_at=updated_at.alias("updated_at"))
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert typed.invoice_states["updated_at"].to_list() == [datetime(2026, 1, 15, 9, tzinfo=UTC)]


# Other types: read as their text ---------------------------------------------------------------------------


def test_a_float_quantity_is_read_as_its_text_so_an_inexact_one_is_held(tmp_path):
    frames = with_columns(one_invoice(), "invoice_lines", quantity=pl.Series([0.1 + 0.2]))
    typed, _ = typed_and_text(frames, tmp_path)
    assert the_invalid_value(typed).endswith("quantity '0.30000000000000004' has more than 4 decimal places")
    frames = with_columns(
        one_invoice(), "invoice_lines", quantity=pl.Series([1.5]), position=pl.Series([1.0])
    )
    typed, _ = typed_and_text(frames, tmp_path / "exact")
    assert state(typed) == "ready" and sent(typed)[0]["quantity"] == Decimal("1.5")


def test_integer_ids_and_an_integer_quantity_are_read_as_their_text(tmp_path):
    b = SourceBuilder("7")
    b.approved_invoice("7", "42")
    frames = natural_types(b.frames())
    frames = {
        table: frame.with_columns(
            pl.col(c).cast(pl.Int64) for c in ("practice_id", "invoice_id") if c in frame.columns
        )
        for table, frame in frames.items()
    }
    frames = with_columns(frames, "invoice_lines", quantity=pl.Series([3]))
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert state(typed, "42", "7") == "ready"
    assert sent(typed, "42", "7")[0]["quantity"] == Decimal(3)


def test_a_date_where_a_timestamp_is_expected_is_midnight_utc(tmp_path):
    frames = with_columns(one_invoice(), "invoices", updated_at=pl.Series([date(2026, 1, 15)]))
    typed, _ = typed_and_text(frames, tmp_path)
    assert typed.invoice_states["updated_at"].to_list() == [datetime(2026, 1, 15, tzinfo=UTC)]


# The quick path ---------------------------------------------------------------------------------------------


def test_a_clean_typed_source_is_never_turned_into_text(monkeypatch):
    frames = natural_types(lines_and_invoices(invoices=3, lines=2).frames())

    def no_text(name, dtype):
        raise AssertionError(f"{name} turned into text")

    monkeypatch.setattr(parse_sources, "_typed_text", no_text)
    for table in ("invoices", "invoice_lines"):
        typed, found = parse_table(table, frames[table].lazy(), f"{table}.parquet")
        assert found.collect().is_empty() and typed.collect().height == frames[table].height
    bad = with_columns(frames, "invoice_lines", position=pl.Series([10**10] + [1] * 5))
    with pytest.raises(AssertionError, match="turned into text"):
        parse_table("invoice_lines", bad["invoice_lines"].lazy(), "invoice_lines.parquet")


def test_only_the_bad_rows_of_a_typed_column_are_described(tmp_path):
    frames = natural_types(lines_and_invoices(invoices=3, lines=2).frames())
    frames = with_columns(
        frames, "invoices", issue_date=pl.Series([date(2026, 1, 15), date(1850, 1, 1), date(2026, 1, 15)])
    )
    typed, text = typed_and_text(frames, tmp_path)
    assert_same_resolution(typed, text)
    assert [p["invoice_id"] for p in problems(typed, "INVALID_VALUE")] == ["i1"]
