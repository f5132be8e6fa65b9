"""Pandera models: the typed inputs the resolver relies on, Xero's limits on what is sent, and the output
tables. Checks are vectorised Polars expressions and run on collected frames, so they check data."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.errors import SchemaErrors

from transforms.vocabulary import (
    AMOUNT,
    CODES,
    INVOICE_STATES,
    LINE_TYPES,
    MAX_CONTACT_NAME,
    MAX_DESCRIPTION,
    MAX_INVOICE_NUMBER,
    MAX_TRACKING_NAME,
    QUANTITY,
    SEVERITIES,
    UNIT_AMOUNT,
)


def _frame_check(name: str, expr: pl.Expr, error: str) -> pa.Check:
    def check(data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(expr.alias("ok"))

    # Pandera reports a check by its error text: start it with the name, so a failure names its check.
    return pa.Check(check, name=name, error=f"{name}: {error}")


def _rounded_amount() -> pl.Expr:
    exact = pl.col("quantity").cast(pl.Decimal(38, 8)) * pl.col("unit_amount").cast(pl.Decimal(38, 8))
    return exact.round(2, mode="half_away_from_zero").cast(AMOUNT) == pl.col("line_amount")


def _text(nullable: bool = True, max_length: int | None = None) -> pa.Column:
    checks = [pa.Check.str_length(max_value=max_length)] if max_length else []
    return pa.Column(pl.Utf8, nullable=nullable, checks=checks)


KEYS = {"practice_id": pa.Column(pl.Utf8), "invoice_id": pa.Column(pl.Utf8)}

# Xero's limits on the values it receives (contract R8). Breaking one holds the invoice with
# INVALID_VALUE: Xero would otherwise cut or reject the value without a word.
XERO_LIMITS = pa.DataFrameSchema(
    {
        "invoice_number": _text(max_length=MAX_INVOICE_NUMBER),
        "contact_name": _text(max_length=MAX_CONTACT_NAME),
        "description": _text(max_length=MAX_DESCRIPTION),
        "tracking1_name": _text(max_length=MAX_TRACKING_NAME),
        "tracking1_option": _text(max_length=MAX_TRACKING_NAME),
        "tracking2_name": _text(max_length=MAX_TRACKING_NAME),
        "tracking2_option": _text(max_length=MAX_TRACKING_NAME),
    },
    name="xero_limits",
)
XERO_LIMITS_OF = {
    "invoice_number": MAX_INVOICE_NUMBER,
    "contact_name": MAX_CONTACT_NAME,
    "description": MAX_DESCRIPTION,
    "tracking1_name": MAX_TRACKING_NAME,
    "tracking1_option": MAX_TRACKING_NAME,
    "tracking2_name": MAX_TRACKING_NAME,
    "tracking2_option": MAX_TRACKING_NAME,
}


def limit_failures(sent: pl.DataFrame) -> pl.DataFrame:
    """Rows of `sent` that break Xero's limits: (row index, column) pairs from Pandera's failure cases."""
    try:
        XERO_LIMITS.validate(sent.select(list(XERO_LIMITS.columns)), lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        return cases.filter(pl.col("index").is_not_null()).select(
            pl.col("index").cast(pl.UInt32), pl.col("column").cast(pl.Utf8)
        )
    return pl.DataFrame(schema={"index": pl.UInt32, "column": pl.Utf8})


LINE_TRACKING = pa.DataFrameSchema(
    {
        **KEYS,
        "line_id": pa.Column(pl.Utf8),
        "position": pa.Column(pl.Int32, nullable=True),
        "line_type": pa.Column(pl.Enum(LINE_TYPES), nullable=True),
        "line_amount": pa.Column(AMOUNT, nullable=True),
        "tracking1_category": _text(),
        "tracking1_option": _text(),
        "tracking1_source": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.isin(["client"])),
        "tracking2_category": _text(),
        "tracking2_option": _text(),
        "tracking2_source": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.isin(["service", "owner"])),
        "invoice_state": pa.Column(pl.Enum(INVOICE_STATES)),
    },
    checks=[
        _frame_check(
            "not_xero_lines_carry_no_slots",
            (pl.col("invoice_state") != "not_xero")
            | (pl.col("tracking1_source").is_null() & pl.col("tracking2_source").is_null()),
            "a line of a non-Xero practice carries a tracking slot (R7)",
        ),
        _frame_check(
            "names_have_a_source",
            (pl.col("tracking1_option").is_null() | pl.col("tracking1_source").is_not_null())
            & (pl.col("tracking2_option").is_null() | pl.col("tracking2_source").is_not_null()),
            "a slot has an option but no source",
        ),
    ],
    unique=["practice_id", "invoice_id", "line_id"],
    name="line_tracking",
)

EXCEPTIONS = pa.DataFrameSchema(
    {
        "practice_id": pa.Column(pl.Utf8, nullable=True),
        "invoice_id": pa.Column(pl.Utf8, nullable=True),
        "line_id": pa.Column(pl.Utf8, nullable=True),
        "code": pa.Column(pl.Enum(CODES)),
        "severity": pa.Column(pl.Enum(SEVERITIES)),
        "detail": pa.Column(pl.Utf8, checks=pa.Check.str_length(min_value=10)),
        # Every code says what to do (transforms.hold_reasons): a problem without a fix is a bug.
        "fix": pa.Column(pl.Utf8, checks=pa.Check.str_length(min_value=10)),
    },
    name="exceptions",
)

XERO_LINE_ITEMS = pa.DataFrameSchema(
    {
        **KEYS,
        "invoice_number": _text(nullable=False, max_length=MAX_INVOICE_NUMBER),
        "line_no": pa.Column(pl.Int32, checks=pa.Check.ge(1)),
        "description": _text(nullable=False, max_length=MAX_DESCRIPTION),
        "quantity": pa.Column(QUANTITY),
        "unit_amount": pa.Column(UNIT_AMOUNT),
        "line_amount": pa.Column(AMOUNT),
        "account_code": _text(nullable=False),
        "tax_type": _text(nullable=False),
        "tracking1_name": _text(max_length=MAX_TRACKING_NAME),
        "tracking1_option": _text(max_length=MAX_TRACKING_NAME),
        "tracking2_name": _text(max_length=MAX_TRACKING_NAME),
        "tracking2_option": _text(max_length=MAX_TRACKING_NAME),
    },
    checks=[
        _frame_check(
            "line_amount_is_quantity_times_unit_amount", _rounded_amount(), "line_amount ≠ round(q × u, 2)"
        ),
        _frame_check(
            "slots_are_different_categories",
            (pl.col("tracking1_name") != pl.col("tracking2_name")).fill_null(True),
            "two options of one category on a line (R5)",
        ),
        _frame_check(
            "names_come_with_options",
            (pl.col("tracking1_name").is_null() == pl.col("tracking1_option").is_null())
            & (pl.col("tracking2_name").is_null() == pl.col("tracking2_option").is_null()),
            "a tracking name without its option",
        ),
    ],
    unique=["practice_id", "invoice_id", "line_no"],
    name="xero_line_items",
)


class OutputCheckFailed(RuntimeError):
    """An output table broke its model: a bug, so the run stops and changes nothing."""


def validate_output(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame:
    try:
        return schema.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        first = cases.head(5).select("column", "check", "failure_case", "index").rows()
        raise OutputCheckFailed(
            f"output table {schema.name} failed {cases.height} check(s), e.g. "
            + "; ".join(f"{col}: {check} on row {idx} ({case})" for col, check, case, idx in first)
        ) from None
