"""The generator streamed a chunk at a time gives the rows it gives in memory; its typed source holds those
rows with the contract's natural types, and trackline and the DuckDB peer give it the text source's result
but for the defects its manifest says it cannot carry; the bare slot peer gives the full peer's slots on
every ready line. No timings are asserted here."""

from __future__ import annotations

import polars as pl
import pytest

from bench import agreement, peer_duckdb, peer_slots
from bench.generate import COLUMNS, TYPED, generate, read_manifest, write_generated

KEYS = ["practice_id", "invoice_id", "line_id"]
KEY = pl.concat_str("practice_id", pl.lit("/"), "invoice_id")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("typed")
    text, typed = root / "10k", root / "10k-typed"
    write_generated(10_000, seed=7, text=text, typed=typed, chunk_lines=1_500)  # 7 chunks and the tail
    return text, typed


def _not_carried(folder) -> list[str]:
    carried = read_manifest(folder)["typed"]["defects_not_carried"]
    return [key for variants in carried.values() for keys in variants.values() for key in keys]


def test_the_streamed_chunks_give_the_rows_generate_gives(sources):
    text, _ = sources
    tables, manifest = generate(10_000, seed=7)
    for table, frame in tables.items():
        assert pl.read_parquet(text / f"{table}.parquet").equals(frame), table
    assert read_manifest(text)["rows"] == manifest["rows"]
    assert read_manifest(text)["defects"] == manifest["defects"]


def test_a_typed_source_holds_the_same_rows_with_the_contracts_types(sources):
    text, typed = sources
    for table, columns in COLUMNS.items():
        words, values = (
            pl.read_parquet(text / f"{table}.parquet"),
            pl.read_parquet(typed / f"{table}.parquet"),
        )
        assert values.columns == columns and values.height == words.height, table
        for column in columns:
            dtype = TYPED.get(table, {}).get(column)
            if dtype is None:
                assert values[column].equals(words[column]), (table, column)
                continue
            assert values.schema[column] == dtype, (table, column)
            kept = values[column].is_not_null()
            as_text = words[column].filter(kept)
            if isinstance(dtype, pl.Datetime):
                back = values[column].filter(kept).dt.to_string("%Y-%m-%dT%H:%M:%SZ")
            elif dtype == pl.Date:
                back = values[column].filter(kept).dt.to_string("%Y-%m-%d")
            elif isinstance(dtype, pl.Decimal):
                back, as_text = values[column].filter(kept), as_text.cast(dtype)
            else:
                back = values[column].filter(kept).cast(pl.Utf8)
            assert back.equals(as_text, check_names=False), (table, column)
    lost = read_manifest(typed)["typed"]["null_instead_of"]
    assert {value for values in lost.values() for value in values} == {
        "1,5",
        "12.34567",
        "2023-02-30",
        "yesterday",
        "first",
        "maybe",
    }


def test_a_typed_source_gives_the_text_sources_result_but_for_what_it_cannot_carry(sources):
    text, typed = sources
    from_text = agreement.trackline_result(*agreement.read_frames(text))
    from_typed = agreement.trackline_result(*agreement.read_frames(typed))
    gone = _not_carried(typed)
    assert gone
    found = agreement.compare(
        from_text.filter(~KEY.is_in(gone)), from_typed.filter(~KEY.is_in(gone)), ("text", "typed")
    )
    assert found.agrees, found.describe()
    assert set(from_text.filter(KEY.is_in(gone))["hold_codes"]) == {"INVALID_VALUE"}
    assert set(from_typed.filter(KEY.is_in(gone))["invoice_state"]) == {"ready"}
    assert "client:C9005" not in read_manifest(typed)["defects"]["INVALID_VALUE"]

    con = peer_duckdb.connect()
    peer_duckdb.load_files(con, typed)
    peer_duckdb.resolve(con)
    found = agreement.compare(
        from_typed, agreement.from_duckdb(peer_duckdb.result(con)), ("trackline", "duckdb")
    )
    assert found.agrees, found.describe()


def test_the_bare_slot_peer_gives_the_full_peers_slots_on_every_ready_line(sources):
    _, typed = sources
    con = peer_duckdb.connect()
    bare = pl.from_arrow(peer_slots.resolve(con, typed))
    peer_duckdb.load_files(con, typed)
    peer_duckdb.resolve(con)
    full = peer_duckdb.result(con)
    slots = [c for c in bare.columns if c.startswith("tracking")]
    ready = full.filter(pl.col("invoice_state") == "ready").select(KEYS + slots)
    assert ready.height > 5_000
    joined = ready.join(bare, on=KEYS, how="left", suffix="_bare")
    assert joined.height == ready.height  # a ready line's options are not repeated: one row each
    differ = joined.filter(pl.any_horizontal(pl.col(c).ne_missing(pl.col(f"{c}_bare")) for c in slots))
    assert differ.is_empty(), differ.head()
    # every approved line is there, and nothing but approved lines
    approved = agreement.read_frames(typed)[0]["invoices"].filter(pl.col("status") == "approved")
    lines = agreement.read_frames(typed)[0]["invoice_lines"].join(
        approved.select("practice_id", "invoice_id").unique(), on=["practice_id", "invoice_id"], how="semi"
    )
    assert bare.select(KEYS).unique().height == lines.select(KEYS).unique().height
