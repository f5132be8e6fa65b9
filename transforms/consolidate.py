"""R6: a client with consolidate_lines gets each invoice as one Xero line."""

from __future__ import annotations

import polars as pl

from transforms.vocabulary import AMOUNT

INVOICE = ["practice_id", "invoice_id"]


def line_order() -> pl.Expr:
    """1-based place of a line on its invoice: lowest position first, then line_id. Needs sorted lines."""
    return pl.int_range(1, pl.len() + 1, dtype=pl.Int32).over(INVOICE)


def sort_lines(lines: pl.LazyFrame) -> pl.LazyFrame:
    return lines.sort([*INVOICE, "position", "line_id"], nulls_last=True)


def is_consolidated() -> pl.Expr:
    """R6 applies to Xero invoices of clients with consolidate_lines (null means false)."""
    return pl.col("consolidate_lines").fill_null(False) & pl.col("is_xero")


def consolidate_invoice_lines(sent: pl.LazyFrame) -> pl.LazyFrame:
    """Collapse the lines of consolidated invoices into one line each.

    quantity 1, unit amount = sum of line amounts, account code, tax type, description and slot 1 of the
    first line, slot 2 empty. Other invoices pass through unchanged. `sent` has one row per source line,
    sorted by invoice and line order, with `line_no` and `consolidated`.
    """
    kept = sent.filter(~pl.col("consolidated"))
    merged = (
        sent.filter(pl.col("consolidated"))
        .group_by(INVOICE, maintain_order=True)
        .agg(
            pl.all().exclude("line_amount", "quantity", "unit_amount").first(),
            pl.col("line_amount").sum().cast(AMOUNT, strict=False).alias("line_amount"),
        )
        .with_columns(
            pl.lit(1, pl.Decimal(18, 4)).alias("quantity"),
            pl.col("line_amount").cast(pl.Decimal(18, 4)).alias("unit_amount"),
            pl.lit(None, pl.Utf8).alias("tracking2_category"),
            pl.lit(None, pl.Utf8).alias("tracking2_option"),
            pl.lit(1, pl.Int32).alias("line_no"),
        )
        .select(sent.collect_schema().names())
    )
    return pl.concat([kept, merged], how="vertical")
