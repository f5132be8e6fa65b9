"""R6: a client with consolidate_lines gets each invoice as one Xero line; and the order of an invoice's lines.

Also the few frame operations the resolution builds on. Its frames are a million lines long, so each step
copies as few of their columns as it can: a column is gathered from one place to another once, and only
when it must be.
"""

from __future__ import annotations

import polars as pl

from transforms.vocabulary import AMOUNT

INVOICE = ["practice_id", "invoice_id"]


def sorted_by(frame: pl.DataFrame, by: list[str], keep: pl.Series | None = None) -> pl.DataFrame:
    """The rows of `frame` (those `keep` marks; all when None) sorted by `by`, nulls last, in one chunk.

    A stable sort (much faster than an unstable one on text keys). A frame in one chunk and already in
    order (a source exported in key order usually is) is only filtered. Else its rows are gathered, column
    by column, each from one chunk (gathering from many is ten times slower): one column is copied at a
    time, not the whole frame twice.
    """
    rows = pl.int_range(pl.len(), dtype=pl.UInt32)
    keys = [pl.col(c) for c in by]
    if keep is not None:
        rows, keys = rows.filter(keep), [k.filter(keep) for k in keys]
    order = frame.select(rows.sort_by(keys, nulls_last=True, maintain_order=True)).to_series()
    if order.is_sorted() and max(frame.n_chunks("all"), default=1) == 1:
        result = frame if keep is None or keep.all() else frame.filter(keep)
    else:
        result = pl.DataFrame([frame.get_column(c).rechunk().gather(order) for c in frame.columns])
    # Said so, polars groups and joins by the first key in one pass over its runs.
    first = result.get_column(by[0])
    return result.with_columns(first.set_sorted()) if first.null_count() == 0 else result


def with_lookup(
    frame: pl.DataFrame, lookup: pl.DataFrame, left_on: list[str], right_on: list[str] | None = None
) -> pl.DataFrame:
    """`frame` with the other columns of its row in `lookup` (unique by `right_on`), null where it has none.

    A left join that copies no column of `frame`: only its keys are joined, and the looked-up columns put
    beside it (a join would gather every column of a million lines again)."""
    columns = [c for c in lookup.columns if c not in (right_on or left_on)]
    found = (
        frame.lazy()
        .select(left_on)
        .join(lookup.lazy(), left_on=left_on, right_on=right_on or left_on, how="left", maintain_order="left")
        .select(columns)
        .collect()
    )
    return frame.hstack(found.get_columns())


def with_run_lookup(frame: pl.DataFrame, lookup: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """`with_lookup` for a frame whose rows come in runs of equal keys (a source lists an invoice's lines
    together): each run is looked up once, and its row put beside each of its rows."""
    starts = (pl.int_range(pl.len()) == 0) | pl.any_horizontal(
        pl.col(k).ne_missing(pl.col(k).shift(1)) for k in on
    )
    runs = frame.select(starts.alias("start"), (starts.cum_sum() - 1).alias("run"))
    found = with_lookup(frame[on].filter(runs["start"]), lookup, on).drop(on)
    return frame.hstack(found[runs["run"]].get_columns())


def line_order() -> pl.Expr:
    """1-based place of a line on its invoice: lowest position first (no position last), then line_id.

    Needs the lines sorted by invoice (`_inv`) and line_id. A stable sort by (`_inv`, position) then puts
    each invoice's lines in line order, in the same rows the invoice already holds; a line's place is its
    row in that order minus its invoice's first row, put back in the line's own row.
    """
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    new_invoice = (pl.col("_inv") != pl.col("_inv").shift(1)).fill_null(True)
    place = (row - pl.when(new_invoice).then(row).forward_fill() + 1).cast(pl.Int32)
    return place.sort_by(pl.arg_sort_by("_inv", "position", nulls_last=True, maintain_order=True))


def is_consolidated() -> pl.Expr:
    """R6 applies to Xero invoices of clients with consolidate_lines (null means false)."""
    return pl.col("consolidate_lines").fill_null(False) & pl.col("is_xero")


def consolidate_invoice_lines(
    lines: pl.DataFrame, columns: list[str], sent: pl.Expr | None = None
) -> pl.DataFrame:
    """The lines Xero receives for the invoices `sent` marks (all when None), `columns` of them, in invoice
    and line order: the lines of a consolidated invoice collapsed into one, other invoices' lines as they
    are.

    A consolidated invoice's one line is its first line (line_no 1), with quantity 1, unit amount = sum
    of the invoice's line amounts: account code, tax type, description and slot 1 are the first line's,
    and slot 2 is not sent (`sends_slot2`, R6). `lines` has one row per source line, with `_inv` (the
    invoice), `line_no`, `line_amount`, `sends_line` (line_no 1 of a consolidated invoice, every line of
    another) and `consolidated`.
    """
    sent = pl.lit(True) if sent is None else sent
    consolidated = pl.col("consolidated")
    totals = (
        lines.lazy()
        .filter(sent & consolidated)
        .group_by("_inv")
        .agg(pl.col("line_amount").sum().cast(AMOUNT, strict=False).alias("_total"))
        .collect()
    )
    # Narrow first: only `columns` of the lines sent are copied, once, in order.
    items = sorted_by(
        lines.select(columns), ["_inv", "line_no"], lines.select(sent & pl.col("sends_line")).to_series()
    )
    if totals.is_empty():
        return items
    return (
        with_lookup(items, totals, ["_inv"])
        .with_columns(
            pl.when(consolidated).then(pl.lit(1, pl.Decimal(18, 4))).otherwise("quantity").alias("quantity"),
            pl.when(consolidated)
            .then(pl.col("_total").cast(pl.Decimal(18, 4), strict=False))  # too large: held (amount_problems)
            .otherwise("unit_amount")
            .alias("unit_amount"),
            pl.when(consolidated).then("_total").otherwise("line_amount").alias("line_amount"),
        )
        .select(columns)
    )
