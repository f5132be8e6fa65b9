"""Turn the raw source tables (every column text) into typed frames, and say which values do not parse.

A value that does not parse never stops a run: it becomes null in the typed frame and a row in the
problems frame (code INVALID_VALUE, or DUPLICATE_KEY for a key seen twice), which `hold_reasons` turns
into holds on exactly the invoices that depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms.vocabulary import (
    CURRENCIES,
    INVOICE_STATUSES,
    LEDGERS,
    LINE_TYPES,
    OPTION_STATUSES,
    QUANTITY,
    UNIT_AMOUNT,
)

ROW = "_row"  # 1-based data row of the source file (the header is row 0)


@dataclass(frozen=True)
class Column:
    kind: str  # text | enum | date | timestamp | decimal | int | bool | currency
    required: bool = True
    values: tuple[str, ...] = ()


KEY = Column("text")
TEXT = Column("text")
OPTIONAL = Column("text", required=False)


def _enum(values: tuple[str, ...]) -> Column:
    return Column("enum", values=values)


TABLES: dict[str, dict[str, Column]] = {
    "practices": {"practice_id": KEY, "name": TEXT, "ledger": _enum(LEDGERS)},
    "tracking_categories": {
        "practice_id": KEY,
        "tracking_category_id": KEY,
        "name": TEXT,
        "status": _enum(OPTION_STATUSES),
    },
    "tracking_options": {
        "practice_id": KEY,
        "tracking_option_id": KEY,
        "tracking_category_id": TEXT,
        "name": TEXT,
        "status": _enum(OPTION_STATUSES),
    },
    "team_members": {
        "practice_id": KEY,
        "team_member_id": KEY,
        "name": TEXT,
        "tracking_option_id": OPTIONAL,
    },
    "service_templates": {
        "practice_id": KEY,
        "service_template_id": KEY,
        "name": TEXT,
        "tracking_option_id": OPTIONAL,
        "account_code": OPTIONAL,
        "tax_type": OPTIONAL,
    },
    "clients": {
        "practice_id": KEY,
        "client_id": KEY,
        "name": TEXT,
        "xero_contact_id": OPTIONAL,
        "owner_team_member_id": OPTIONAL,
        "tracking_option_id": OPTIONAL,
        "consolidate_lines": Column("bool", required=False),
    },
    "invoices": {
        "practice_id": KEY,
        "invoice_id": KEY,
        "client_id": TEXT,
        "invoice_number": TEXT,
        "issue_date": Column("date"),
        "due_date": Column("date"),
        "currency": Column("currency"),
        "reference": OPTIONAL,
        "status": _enum(INVOICE_STATUSES),
        "updated_at": Column("timestamp"),
    },
    "invoice_lines": {
        "practice_id": KEY,
        "invoice_id": KEY,
        "line_id": KEY,
        "position": Column("int"),
        "line_type": _enum(LINE_TYPES),
        "service_template_id": OPTIONAL,
        "description": TEXT,
        "quantity": Column("decimal"),
        "unit_amount": Column("decimal"),
        "account_code": OPTIONAL,
        "tax_type": OPTIONAL,
    },
}

KEYS: dict[str, tuple[str, ...]] = {
    "practices": ("practice_id",),
    "tracking_categories": ("practice_id", "tracking_category_id"),
    "tracking_options": ("practice_id", "tracking_option_id"),
    "team_members": ("practice_id", "team_member_id"),
    "service_templates": ("practice_id", "service_template_id"),
    "clients": ("practice_id", "client_id"),
    "invoices": ("practice_id", "invoice_id"),
    "invoice_lines": ("practice_id", "invoice_id", "line_id"),
}

DECIMAL_PATTERN = r"^[+-]?(\d{1,14})(\.\d{0,4})?$"
BOOL_TRUE = ("true", "t", "yes", "y", "1")
BOOL_FALSE = ("false", "f", "no", "n", "0")
FIRST_DATE, LAST_DATE = pl.date(1900, 1, 1), pl.date(2099, 12, 31)

# The problems frame: one row per value that does not parse, or per row whose key is repeated.
PROBLEM_SCHEMA = {
    "table": pl.Utf8,
    ROW: pl.Int64,
    "practice_id": pl.Utf8,
    "key": pl.Utf8,  # the row's own id (invoice_id for invoices and lines, client_id for clients, ...)
    "invoice_id": pl.Utf8,  # only for invoices and invoice_lines
    "line_id": pl.Utf8,  # only for invoice_lines
    "code": pl.Utf8,
    "column": pl.Utf8,
    "detail": pl.Utf8,
}


def _parsed(name: str, col: Column) -> pl.Expr:
    """The typed value of one column; null where the text does not parse."""
    raw = pl.col(name)
    trimmed = raw.str.strip_chars()
    match col.kind:
        case "text":
            return raw
        case "enum":
            lowered = trimmed.str.to_lowercase()
            canonical = {v.lower(): v for v in col.values}
            return lowered.replace_strict(canonical, default=None, return_dtype=pl.Utf8)
        case "currency":
            upper = trimmed.str.to_uppercase()
            return pl.when(upper.is_in(sorted(CURRENCIES))).then(upper)
        case "date":
            date = trimmed.str.to_date("%Y-%m-%d", strict=False)
            return pl.when(date.is_between(FIRST_DATE, LAST_DATE)).then(date)
        case "timestamp":
            return _parse_timestamp(trimmed)
        case "decimal":
            ok = trimmed.str.contains(DECIMAL_PATTERN)
            return pl.when(ok).then(trimmed).cast(pl.Decimal(18, 4), strict=False)
        case "int":
            return trimmed.cast(pl.Int32, strict=False)
        case "bool":
            lowered = trimmed.str.to_lowercase()
            return (
                pl.when(lowered.is_in(BOOL_TRUE))
                .then(True)
                .when(lowered.is_in(BOOL_FALSE))
                .then(False)
                .otherwise(None)
            )
    raise ValueError(f"unknown column kind {col.kind}")


def _parse_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO-8601 in UTC; an offset is honoured, a naive time is taken as UTC."""
    with_zone = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC", strict=False)
    normal = text.str.replace(r"Z$", "").str.replace(" ", "T")
    naive = normal.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False).dt.replace_time_zone("UTC")
    return pl.coalesce(with_zone, naive).dt.cast_time_unit("us")


def _reason(col: Column) -> str:
    return {
        "enum": f"is not one of {', '.join(col.values)}",
        "currency": "is not an ISO 4217 currency Xero accepts",
        "date": "is not a date YYYY-MM-DD between 1900 and 2099",
        "timestamp": "is not an ISO-8601 timestamp",
        "decimal": "is not a decimal with at most 14 digits before and 4 after the point",
        "int": "is not a whole number",
        "bool": "is not true or false",
    }.get(col.kind, "is not valid")


def parse_table(table: str, raw: pl.LazyFrame, file_name: str) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Typed rows of one source table (duplicates of a key removed, the first row kept) and its problems."""
    spec = TABLES[table]
    keys = KEYS[table]
    typed = raw.with_columns(_parsed(name, col).alias(name) for name, col in spec.items())
    checked = raw.select(
        ROW,
        *(pl.col(k).alias(f"_key_{k}") for k in keys),
        *(_bad_value(name, col).alias(f"_bad_{name}") for name, col in spec.items()),
    )
    bad = pl.concat(
        [
            checked.filter(pl.col(f"_bad_{name}").is_not_null()).select(
                ROW,
                *(pl.col(f"_key_{k}").alias(k) for k in keys),
                pl.lit(name).alias("column"),
                pl.col(f"_bad_{name}").alias("value"),
            )
            for name in spec
        ],
        how="vertical",
        # polars 1.44 panics ("assertion failed: i < self.len()") formatting string columns made of
        # several chunks, as this concat makes them; one chunk each avoids it.
        rechunk=True,
    )
    invalid = bad.select(
        pl.lit(table).alias("table"),
        pl.col(ROW).cast(pl.Int64),
        pl.col("practice_id"),
        pl.col(keys[-1]).alias("key") if table != "invoice_lines" else pl.col("invoice_id").alias("key"),
        _maybe(keys, "invoice_id"),
        _maybe(keys, "line_id"),
        pl.lit("INVALID_VALUE").alias("code"),
        pl.col("column"),
        pl.format(
            "{} row {} ({} '{}'): {} {}",
            pl.lit(file_name),
            pl.col(ROW),
            pl.lit(keys[-1]),
            pl.col(keys[-1]),
            pl.col("column"),
            pl.col("value"),
        ).alias("detail"),
    )
    duplicates, unique = _split_duplicates(table, typed, keys, file_name)
    problems = pl.concat([invalid, duplicates], how="vertical").select(
        [pl.col(c).cast(t) for c, t in PROBLEM_SCHEMA.items()]
    )
    return unique, problems


def _maybe(keys: tuple[str, ...], name: str) -> pl.Expr:
    return (pl.col(name) if name in keys else pl.lit(None, pl.Utf8)).alias(name)


def _bad_value(name: str, col: Column) -> pl.Expr:
    """A description of what is wrong with the value (`'abc' is not a decimal ...`), null when it is fine."""
    raw = pl.col(name)
    quoted = pl.format("'{}'", raw.str.slice(0, 80))
    missing = raw.is_null() | (raw.str.strip_chars() == "")
    if col.kind == "text":
        return pl.when(missing & col.required).then(pl.lit("is empty"))
    parsed = _parsed(name, col)
    unparsed = raw.is_not_null() & (raw.str.strip_chars() != "") & parsed.is_null()
    if col.kind == "decimal":
        too_fine = raw.str.strip_chars().str.contains(r"\.\d{5,}$")
        reason = pl.when(too_fine).then(pl.lit("has more than 4 decimal places")).otherwise(
            pl.lit(_reason(col))
        )
    else:
        reason = pl.lit(_reason(col))
    expr = pl.when(unparsed).then(pl.format("{} {}", quoted, reason))
    if col.required:
        expr = expr.when(missing).then(pl.lit("is empty"))
    return expr


def _split_duplicates(
    table: str, typed: pl.LazyFrame, keys: tuple[str, ...], file_name: str
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Rows whose key is repeated become DUPLICATE_KEY problems; the first row of each key is kept."""
    counted = typed.with_columns(
        pl.len().over(keys).alias("_copies"),
        pl.col(ROW).min().over(keys).alias("_first_row"),
        pl.col(ROW).sort().cast(pl.Utf8).str.join(", ").over(keys).alias("_rows"),
    )
    dupes = counted.filter((pl.col("_copies") > 1) & pl.all_horizontal(pl.col(k).is_not_null() for k in keys))
    key_text = pl.concat_str([pl.format("{} '{}'", pl.lit(k), pl.col(k)) for k in keys[-1:]], separator=", ")
    problems = dupes.filter(pl.col(ROW) == pl.col("_first_row")).select(
        pl.lit(table).alias("table"),
        pl.col(ROW).cast(pl.Int64),
        pl.col("practice_id"),
        pl.col(keys[-1]).alias("key") if table != "invoice_lines" else pl.col("invoice_id").alias("key"),
        _maybe(keys, "invoice_id"),
        _maybe(keys, "line_id"),
        pl.lit("DUPLICATE_KEY").alias("code"),
        pl.lit(keys[-1]).alias("column"),
        pl.format(
            "{} rows {} share {} in practice '{}'",
            pl.lit(file_name),
            pl.col("_rows"),
            key_text,
            pl.col("practice_id"),
        ).alias("detail"),
    )
    identified = pl.all_horizontal(pl.col(k).is_not_null() for k in keys)
    unique = counted.filter(identified & (pl.col(ROW) == pl.col("_first_row"))).drop(
        "_copies", "_first_row", "_rows"
    )
    return problems, unique
