"""What Xero receives for an invoice: its header and line items, and a canonical text of both whose
digest decides whether an invoice must be batched again."""

from __future__ import annotations

import polars as pl

from transforms.consolidate import INVOICE

# What Xero receives for one line, in order: the batch files render it and the export digest is taken of it.
SENT_LINE_FIELDS = [
    "line_no",
    "description",
    "quantity",
    "unit_amount",
    "line_amount",
    "account_code",
    "tax_type",
    "tracking1_name",
    "tracking1_option",
    "tracking2_name",
    "tracking2_option",
]

XERO_LINE_COLUMNS = [*INVOICE, "invoice_number", "line_no", "line_id", *SENT_LINE_FIELDS[1:]]

XERO_INVOICE_COLUMNS = [
    "practice_id",
    "invoice_id",
    "invoice_number",
    "client_id",
    "contact_id",
    "contact_name",
    "reference",
    "issue_date",
    "due_date",
    "currency",
    "xero_status",
    "line_amount_types",
    "line_count",
    "total",
    "updated_at",
]


def sent_tracking(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Blank the slots that are not sent (R5 drop_secondary, R6 consolidation, R7 non-Xero)."""
    return lines.with_columns(
        pl.when(pl.col("sends_slot1")).then(pl.col("tracking1_category")).alias("tracking1_name"),
        pl.when(pl.col("sends_slot1")).then(pl.col("tracking1_option")).alias("tracking1_option"),
        pl.when(pl.col("sends_slot2")).then(pl.col("tracking2_category")).alias("tracking2_name"),
        pl.when(pl.col("sends_slot2")).then(pl.col("tracking2_option")).alias("tracking2_option"),
    )


def xero_invoices(items: pl.LazyFrame, invoices: pl.LazyFrame) -> pl.LazyFrame:
    """One header per invoice in `items` (line items as sent, with `_inv`), in the order of `items`, its
    columns from `invoices` (one row per invoice, with `_inv`) and its count and total from its items."""
    totals = items.group_by("_inv", maintain_order=True).agg(
        pl.len().cast(pl.Int32).alias("line_count"),
        pl.col("line_amount").sum().alias("total"),
    )
    return totals.join(invoices, on="_inv", how="left", validate="1:1", maintain_order="left").select(
        *INVOICE,
        "invoice_number",
        "client_id",
        pl.col("xero_contact_id").alias("contact_id"),
        pl.col("client_name").alias("contact_name"),
        "reference",
        "issue_date",
        "due_date",
        "currency",
        pl.lit("AUTHORISED").alias("xero_status"),
        pl.lit("Exclusive").alias("line_amount_types"),
        "line_count",
        "total",
        "updated_at",
    )


def _text(*columns: str) -> list[pl.Expr]:
    return [pl.col(c).cast(pl.Utf8).fill_null("") for c in columns]


def canonical_payload(items: pl.LazyFrame, heads: pl.LazyFrame) -> pl.LazyFrame:
    """(practice_id, invoice_id, payload): a text of everything sent for the invoice, in line order.

    Two runs that would send the same thing produce the same text, so its digest is a fair test of
    "changed since it was batched".
    """
    # Lines are grouped by their header's row number: one integer key, cheaper than the two text ids.
    head_text = heads.with_row_index("_head").select(
        "_head",
        *INVOICE,
        pl.concat_str(
            _text(
                "invoice_number",
                "contact_id",
                "contact_name",
                "reference",
                "issue_date",
                "due_date",
                "currency",
                "xero_status",
                "line_amount_types",
            ),
            separator="\x1f",
        ).alias("head_text"),
    )
    lines_text = (
        items.select(
            *INVOICE, "line_no", pl.concat_str(_text(*SENT_LINE_FIELDS), separator="\x1f").alias("line_text")
        )
        .join(head_text.select("_head", *INVOICE), on=INVOICE, how="inner", validate="m:1")
        .sort("_head", "line_no")
        .group_by("_head", maintain_order=True)
        .agg(pl.col("line_text").str.join("\x1e").alias("lines_text"))
    )
    return head_text.join(lines_text, on="_head", how="inner", validate="1:1").select(
        *INVOICE, pl.concat_str(["head_text", "lines_text"], separator="\x1d").alias("payload")
    )
