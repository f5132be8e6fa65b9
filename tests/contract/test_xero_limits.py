"""`limit_failures`: which (row index, column) of what would be sent breaks Xero's length limits (names
100 characters, descriptions 4,000, invoice numbers and contact names 255)."""

import polars as pl

from transforms.schemas import XERO_LIMITS_OF, limit_failures


def _sent(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        [{c: r.get(c) for c in XERO_LIMITS_OF} for r in rows], schema=dict.fromkeys(XERO_LIMITS_OF, pl.Utf8)
    )


def _pairs(failures: pl.DataFrame) -> set[tuple[int, str]]:
    return set(failures.select("index", "column").iter_rows())


def test_values_at_the_limits_pass():
    sent = _sent(
        [
            {
                "invoice_number": "n" * 255,
                "contact_name": "c" * 255,
                "description": "d" * 4000,
                "tracking1_name": "a" * 100,
                "tracking1_option": "b" * 100,
                "tracking2_name": "e" * 100,
                "tracking2_option": "f" * 100,
            },
            {},  # nothing sent in any of them
        ]
    )

    failures = limit_failures(sent)

    assert failures.is_empty()
    assert failures.schema == {"index": pl.UInt32, "column": pl.Utf8}


def test_each_value_one_over_its_limit_is_named_by_row_index_and_column():
    sent = _sent(
        [
            {"invoice_number": "ok"},
            {"invoice_number": "n" * 256},
            {"description": "d" * 4001, "tracking1_name": "a" * 101},
            {"tracking2_option": "f" * 101},
            {"contact_name": "c" * 256, "tracking1_option": "b" * 101, "tracking2_name": "e" * 101},
        ]
    )

    assert _pairs(limit_failures(sent)) == {
        (1, "invoice_number"),
        (2, "description"),
        (2, "tracking1_name"),
        (3, "tracking2_option"),
        (4, "contact_name"),
        (4, "tracking1_option"),
        (4, "tracking2_name"),
    }


def test_limits_count_characters_not_bytes():
    sent = _sent([{"tracking1_option": "é" * 100}, {"tracking1_option": "€" * 101}])

    assert _pairs(limit_failures(sent)) == {(1, "tracking1_option")}


def test_extra_columns_of_the_sent_frame_are_ignored():
    sent = _sent([{"description": "d" * 4001}]).with_columns(pl.lit("x" * 5000).alias("internal_note"))

    assert _pairs(limit_failures(sent)) == {(0, "description")}
