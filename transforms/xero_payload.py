"""What Xero receives for an invoice: its header and line items, and a canonical text of both whose
digest decides whether an invoice must be batched again."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

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

# What of a header goes into its canonical text, in order.
SENT_HEAD_FIELDS = [
    "invoice_number",
    "contact_id",
    "contact_name",
    "reference",
    "issue_date",
    "due_date",
    "currency",
    "xero_status",
    "line_amount_types",
]

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


# Rows per record batch of `canonical_payload_arrow`'s table: DuckDB scans a table's batches on as many
# threads as it has, a table of one batch on one.
PAYLOAD_BATCH_ROWS = 32_768

# The canonical text's separators: between fields, between lines, and between the header and its lines.
FIELD, LINE, HEAD = "\x1f", "\x1e", "\x1d"


def _head_text() -> pl.Expr:
    return pl.concat_str(_text(*SENT_HEAD_FIELDS), separator=FIELD)


def _line_text() -> pl.Expr:
    return pl.concat_str(_text(*SENT_LINE_FIELDS), separator=FIELD)


def canonical_payload(items: pl.LazyFrame, heads: pl.LazyFrame) -> pl.LazyFrame:
    """(practice_id, invoice_id, payload): a text of everything sent for the invoice, in line order.

    Two runs that would send the same thing produce the same text, so its digest is a fair test of
    "changed since it was batched". `canonical_payload_arrow` makes the same texts faster when the
    items come grouped by invoice in the headers' order (as a resolution's do).
    """
    # Lines are grouped by their header's row number: one integer key, cheaper than the two text ids.
    head_text = heads.with_row_index("_head").select("_head", *INVOICE, _head_text().alias("head_text"))
    lines_text = (
        items.select(*INVOICE, "line_no", _line_text().alias("line_text"))
        .join(head_text.select("_head", *INVOICE), on=INVOICE, how="inner", validate="m:1")
        .sort("_head", "line_no")
        .group_by("_head", maintain_order=True)
        .agg(pl.col("line_text").str.join(LINE).alias("lines_text"))
    )
    return head_text.join(lines_text, on="_head", how="inner", validate="1:1").select(
        *INVOICE, pl.concat_str(["head_text", "lines_text"], separator=HEAD).alias("payload")
    )


def canonical_payload_arrow(items: pl.DataFrame, heads: pl.DataFrame) -> pa.Table:
    """`canonical_payload` as an Arrow table of large strings (what DuckDB scans fastest) in batches of
    PAYLOAD_BATCH_ROWS: the same rows and the same texts, in the order of `heads` when the fast way below
    applies (else in no set order).

    The fast way: when `items` list each header's lines together, in the headers' order and in
    increasing line_no (a resolution's line items do), the texts of all invoices, one after the other,
    are one run of pieces: a header's text and HEAD, its first line's text, then LINE and the text of
    each other line. Written into one Arrow buffer, each invoice's text is a slice of it: no join, no
    sort, no group and no copy per invoice. Anything else (or anything it cannot vouch for) goes the
    general way.
    """
    starts = _runs_of_heads(items, heads)
    if starts is None:
        return _batched(canonical_payload(items.lazy(), heads.lazy()).collect())
    # The pieces in the order they are written, two per line: before it, its header's text and HEAD (a
    # first line) or LINE (any other); then the line's text. They are gathered as views of the texts
    # (no text is copied) and copied once, into one Arrow buffer.
    n, m = heads.height, items.height
    texts = pl.concat(
        [
            _dates_as_text(heads).select(pl.concat_str([_head_text(), pl.lit(HEAD)])).to_series(),
            pl.Series([LINE]),
            items.select(_line_text()).to_series(),
        ]
    ).rechunk()
    order = np.empty(2 * m, dtype=np.uint32)
    order[0::2] = n
    order[2 * starts[:-1]] = np.arange(n, dtype=np.uint32)
    order[1::2] = np.arange(n + 1, n + 1 + m, dtype=np.uint32)
    pieces = texts.gather(order).to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(pieces, pa.ChunkedArray):
        pieces = pieces.combine_chunks()
    if pieces.null_count or not pa.types.is_large_string(pieces.type):
        return _batched(canonical_payload(items.lazy(), heads.lazy()).collect())
    _, offsets, data = pieces.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64, count=pieces.offset + len(pieces) + 1)[pieces.offset :]
    payload = pa.LargeStringArray.from_buffers(n, pa.py_buffer(ends[2 * starts]), data)
    keys = heads.select(INVOICE).to_arrow(compat_level=pl.CompatLevel.oldest())
    return _batched(keys.append_column("payload", payload))


def _dates_as_text(heads: pl.DataFrame) -> pl.DataFrame:
    """`heads` with their dates sent as text, each distinct date formatted once: the text a cast of each
    row makes (a few thousand dates for a quarter of a million headers, several times faster)."""
    texts = []
    for column in SENT_HEAD_FIELDS:
        dates = heads.get_column(column)
        if dates.dtype == pl.Date and not dates.null_count():
            distinct = dates.unique()
            texts.append(dates.replace_strict(distinct, distinct.cast(pl.Utf8), return_dtype=pl.Utf8))
    return heads.with_columns(texts)


def _batched(payloads: pa.Table | pl.DataFrame) -> pa.Table:
    if isinstance(payloads, pl.DataFrame):
        payloads = payloads.to_arrow(compat_level=pl.CompatLevel.oldest())
    return pa.Table.from_batches(payloads.to_batches(max_chunksize=PAYLOAD_BATCH_ROWS), payloads.schema)


def _runs_of_heads(items: pl.DataFrame, heads: pl.DataFrame) -> np.ndarray | None:
    """Where each header's lines start in `items`, and where the last ends (heads.height + 1 row numbers),
    when `items` are runs of lines, one per header, in the headers' order, with line_no increasing in
    each, and headers have unique, non-null keys (what makes the fast way's texts the general way's);
    else None."""
    if items.is_empty() or heads.is_empty() or heads.height + 1 + 2 * items.height >= 2**32:
        return None
    if any(heads.get_column(c).null_count() for c in INVOICE) or items.get_column("line_no").null_count():
        return None
    changed = pl.any_horizontal(pl.col(c) != pl.col(c).shift(1) for c in INVOICE)
    first = items.select(changed.fill_null(True)).to_series()
    start_rows = first.arg_true()
    if start_rows.len() != heads.height:
        return None
    if not items.select(INVOICE)[start_rows].equals(heads.select(INVOICE)):
        return None
    if not _strictly_increasing(heads) and heads.select(pl.struct(INVOICE).is_duplicated().any()).item():
        return None
    increasing = items.select(pl.col("line_no").cast(pl.Int64).diff().fill_null(1) > 0).to_series() | first
    if not increasing.all():
        return None
    starts = np.empty(heads.height + 1, dtype=np.int64)
    starts[:-1] = start_rows.to_numpy()
    starts[-1] = items.height
    return starts


def _strictly_increasing(heads: pl.DataFrame) -> bool:
    """Whether the headers' keys increase from row to row (a resolution's do): then no two are equal,
    told without hashing them."""
    practice, invoice = pl.col("practice_id"), pl.col("invoice_id")
    before, same = practice.shift(1), practice == practice.shift(1)
    return heads.select(
        ((practice > before) | (same & (invoice > invoice.shift(1)))).fill_null(True).all()
    ).item()
