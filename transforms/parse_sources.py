"""Turn the raw source tables (every column text) into typed frames, and say which values do not parse.

A value that does not parse never stops a run: it becomes null in the typed frame and a row in the
problems frame (code INVALID_VALUE, or DUPLICATE_KEY for a key seen twice), which `hold_reasons` turns
into holds on exactly the invoices that depend on it. Each detail names the file, row, key, column and value.

What counts as not parsing (tests/reliability/matrix.py shows every case): an empty or blank required field;
an unknown enum value (enums are matched trimmed and case-insensitively); a date that is not YYYY-MM-DD
(at midnight allowed) within 1900-2099; a decimal with more than 14 digits or 4 places (never rounded), or
in any other notation (1e3, 1,000, £50); a line whose quantity x unit amount is 10^12 or more; a tracking
category or option name or a client name that a spreadsheet would run as a formula (Xero matches those
names exactly, so they cannot be escaped). A repeated invoice of which any copy is approved keeps its first
row with its status unknown, so it is held with DUPLICATE_KEY rather than hidden behind a draft copy.

Columns may come typed (a Parquet file, a database): a column already of the contract's type is used as it
is (`_holds_contract_type`), with the same limits as its text (a date within 1900-2099, a decimal that fits
Decimal(18, 4) exactly, a whole number of at most 9 digits); a column of any other type is read as the text
a CSV export would hold (`as_csv_text`) and parsed as text. A bad typed value gets the hold and the detail
its text would get; only the few rows that need a sentence are ever turned into text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from transforms.vocabulary import (
    CURRENCIES,
    INVOICE_STATUSES,
    LEDGERS,
    LINE_TYPES,
    OPTION_STATUSES,
)

ROW = "_row"  # 1-based data row of the source file (the header is row 0)


@dataclass(frozen=True)
class Column:
    kind: str  # text | name | enum | date | timestamp | decimal | int | bool | currency | guid
    required: bool = True
    values: tuple[str, ...] = ()


KEY = Column("text")
TEXT = Column("text")
OPTIONAL = Column("text", required=False)
# A Xero ContactID: a GUID, 8-4-4-4-12 hex digits in any case. Xero's schema says `format: uuid` and
# refuses the whole request over one that is not, so such a value holds its client's invoices.
GUID = Column("guid", required=False)
# A name Xero matches exactly (tracking category and option names, contact names): it cannot be escaped,
# so one a spreadsheet would run as a formula is held until it is renamed (see FORMULA_START).
NAME = Column("name")


def _enum(values: tuple[str, ...]) -> Column:
    return Column("enum", values=values)


TABLES: dict[str, dict[str, Column]] = {
    "practices": {"practice_id": KEY, "name": TEXT, "ledger": _enum(LEDGERS)},
    "tracking_categories": {
        "practice_id": KEY,
        "tracking_category_id": KEY,
        "name": NAME,
        "status": _enum(OPTION_STATUSES),
    },
    "tracking_options": {
        "practice_id": KEY,
        "tracking_option_id": KEY,
        "tracking_category_id": TEXT,
        "name": NAME,
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
        "name": NAME,
        "xero_contact_id": GUID,
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
GUID_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
INT_PATTERN = r"^[+-]?\d{1,9}(\.0*)?$"  # 3 and 3.0 (a Parquet float column); never 3.5
BOOL_TRUE = ("true", "t", "yes", "y", "1")
BOOL_FALSE = ("false", "f", "no", "n", "0")
FIRST_DATE, LAST_DATE = pl.date(1900, 1, 1), pl.date(2099, 12, 31)
# A date, or a date at midnight as spreadsheets and Parquet timestamps write it: 2026-01-15 00:00:00.
DATE_PATTERN = r"^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0*)?)?Z?)?$"
# Text a spreadsheet runs as a formula when the CSV is opened (OWASP "CSV injection").
FORMULA_START = r"^[=+\-@\t\r]"
# quantity x unit_amount must fit Xero's amounts and a 12-digit total of many lines: at most 10^12.
MAX_LINE_AMOUNT = 10**12

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
    "fix": pl.Utf8,  # what to do about it, in the finance lead's words, from the same row and value
}


def as_csv_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A column of any scalar type as the text a CSV export would hold: a float 1.5 as `1.5`, a Date as
    `2026-01-15`, a timestamp with a zone as ISO-8601 in UTC (`2026-01-15T09:00:00Z`), a bool as `true`."""
    column = pl.col(name)
    if dtype == pl.Utf8:
        return column
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return column.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ").alias(name)
        return column.dt.to_string("%Y-%m-%dT%H:%M:%S%.f").alias(name)
    if dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d").alias(name)
    if dtype == pl.Binary:
        return column.cast(pl.Utf8, strict=False).alias(name)
    return column.cast(pl.Utf8).alias(name)


def _holds_contract_type(col: Column, dtype: pl.DataType) -> bool:
    """Whether a column of `dtype` already holds the contract's type for `col`, so it is used as it is
    rather than read as text: a Date, a Datetime (any zone, or none: then taken as UTC), a Decimal, an
    integer, a Boolean. Text kinds (ids, names, enums) are read as text whatever their type."""
    match col.kind:
        case "date":
            return dtype == pl.Date
        case "timestamp":
            return isinstance(dtype, pl.Datetime)
        case "decimal":
            return isinstance(dtype, pl.Decimal)
        case "int":
            return dtype.is_integer()
        case "bool":
            return dtype == pl.Boolean
    return False


MAX_WHOLE = 999_999_999  # INT_PATTERN: at most 9 digits


def _typed_value(name: str, col: Column, dtype: pl.DataType) -> pl.Expr:
    """The value of a column already of the contract's type, as the typed frame holds it; null where it
    is outside what the contract allows, exactly where the same value written as text would not parse."""
    value = pl.col(name)
    match col.kind:
        case "date":
            return pl.when(value.is_between(FIRST_DATE, LAST_DATE)).then(value)
        case "timestamp":
            zoned = (
                value.dt.convert_time_zone("UTC")
                if dtype.time_zone is not None
                else value.dt.replace_time_zone("UTC")
            )
            utc = zoned.dt.cast_time_unit("us")
            return pl.when(utc.dt.date().is_between(FIRST_DATE, LAST_DATE)).then(utc)
        case "decimal":
            # Decimal(18, 4) holds 14 digits before the point (a cast beyond them is null) and 4 after (a
            # cast cuts the others off, so a value that loses digits on the way is refused, never rounded).
            fitted = value.cast(pl.Decimal(18, 4), strict=False)
            return pl.when(fitted.cast(dtype, strict=False) == value).then(fitted)
        case "int":
            in_range = value <= MAX_WHOLE
            if dtype.is_signed_integer():
                in_range &= value >= -MAX_WHOLE
            return pl.when(in_range).then(value.cast(pl.Int32, strict=False))
        case "bool":
            return value
    raise ValueError(f"column {name} ({col.kind}) has no typed form")


def _typed_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A typed value as a detail sentence quotes it: its CSV text, a decimal without the trailing zeros of
    its type's scale (1.0000010000 reads `1.000001`, so the sentence says what is wrong with it)."""
    text = as_csv_text(name, dtype)
    if isinstance(dtype, pl.Decimal):
        return text.str.replace(r"(\.\d*?)0+$", "${1}").str.replace(r"\.$", "").alias(name)
    return text


def _parsed(name: str, col: Column) -> pl.Expr:
    """The typed value of one column; null where the text does not parse."""
    raw = pl.col(name)
    trimmed = raw.str.strip_chars()
    match col.kind:
        case "text" | "name":
            return pl.when(trimmed != "").then(raw)  # an empty or blank field is null (contract §2)
        case "enum":
            lowered = trimmed.str.to_lowercase()
            canonical = {v.lower(): v for v in col.values}
            return lowered.replace_strict(canonical, default=None, return_dtype=pl.Utf8)
        case "currency":
            upper = trimmed.str.to_uppercase()
            return pl.when(upper.is_in(sorted(CURRENCIES))).then(upper)
        case "guid":
            return pl.when(trimmed.str.contains(GUID_PATTERN)).then(trimmed)
        case "date":
            date = trimmed.str.extract(DATE_PATTERN, 1).str.to_date("%Y-%m-%d", strict=False)
            return pl.when(date.is_between(FIRST_DATE, LAST_DATE)).then(date)
        case "timestamp":
            return _parse_timestamp(trimmed)
        case "decimal":
            ok = trimmed.str.contains(DECIMAL_PATTERN)
            return pl.when(ok).then(trimmed).cast(pl.Decimal(18, 4), strict=False)
        case "int":
            whole = trimmed.str.replace(r"\.0*$", "")
            return pl.when(trimmed.str.contains(INT_PATTERN)).then(whole).cast(pl.Int32, strict=False)
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
    """ISO-8601 in UTC; an offset is honoured, a naive time is taken as UTC, a bare date is midnight UTC."""
    normal = text.str.replace(" ", "T")
    with_zone = normal.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", time_zone="UTC", strict=False)
    naive = normal.str.replace(r"Z$", "")
    seconds = naive.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False)
    minutes = naive.str.to_datetime("%Y-%m-%dT%H:%M", strict=False)
    day = (
        pl.when(naive.str.contains(r"^\d{4}-\d{2}-\d{2}$"))
        .then(naive)
        .str.to_datetime("%Y-%m-%d", strict=False)
    )
    parsed = pl.coalesce(
        with_zone.dt.cast_time_unit("us"),
        pl.coalesce(seconds, minutes, day).dt.cast_time_unit("us").dt.replace_time_zone("UTC"),
    )
    return pl.when(parsed.dt.date().is_between(FIRST_DATE, LAST_DATE)).then(parsed)


# The quick way to parse a value, and where it is the whole answer --------------------------------------
#
# Most values of a real source are already in their plain form ("approved", "12.50", "2026-01-15"): a
# lookup or a cast gives exactly what `_parsed` would, at a fraction of its cost. `_settled` says where the
# quick value is the typed value and the value has no problem: only the other rows (a few, usually) are
# parsed again by `_parsed` and described by `_bad_value`.

PLAIN_DATE = r"^\d{4}-\d{2}-\d{2}$"
PLAIN_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"


def _quick(name: str, col: Column) -> pl.Expr:
    """The value parsed the quick way: equal to `_parsed` wherever `_settled` holds."""
    raw = pl.col(name)
    match col.kind:
        case "text" | "name":
            return raw
        case "enum":
            return pl.when(raw.is_in(col.values)).then(raw)
        case "currency":
            return pl.when(raw.is_in(sorted(CURRENCIES))).then(raw)
        case "guid":
            return pl.when(raw.str.contains(GUID_PATTERN)).then(raw)
        case "date":
            date = raw.str.to_date("%Y-%m-%d", strict=False)
            return pl.when(date.is_between(FIRST_DATE, LAST_DATE)).then(date)
        case "timestamp":
            parsed = raw.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC", strict=False)
            return pl.when(parsed.dt.date().is_between(FIRST_DATE, LAST_DATE)).then(parsed)
        case "decimal":
            return pl.when(raw.str.contains(DECIMAL_PATTERN)).then(raw).cast(pl.Decimal(18, 4), strict=False)
        case "int":
            return raw.cast(pl.Int32, strict=False)
        case "bool":
            return pl.when(raw.is_in(BOOL_TRUE)).then(True).when(raw.is_in(BOOL_FALSE)).then(False)
    raise ValueError(f"unknown column kind {col.kind}")


def _settled(name: str, col: Column, typed: bool = False) -> pl.Expr:
    """Whether the quick value (in `_p_<name>`) is the typed value and the value has no problem.

    Each case only admits the plain form, whose full parse is the quick one: text that starts with a
    printable ASCII character (so it is not blank; a name not with = + - @ either), an enum or currency
    value exactly as spelled, a date YYYY-MM-DD, a timestamp YYYY-MM-DDTHH:MM:SSZ (without fractions of a
    second: polars parses that fixed form ten times faster), a decimal matching DECIMAL_PATTERN, a whole
    number written as Python would write it, a boolean in lower case. A `typed` column (already of the
    contract's type) is settled wherever its value is within the contract's limits.
    """
    raw, quick = pl.col(name), pl.col(f"_p_{name}")
    absent = raw.is_null() & pl.lit(not col.required)  # an optional value left out: null, no problem
    if typed:
        return quick.is_not_null() | absent
    match col.kind:
        case "text":
            return ((raw >= "!") & (raw < "\x7f")).fill_null(False) | absent
        case "name":
            plain = (raw >= "!") & (raw < "\x7f") & ~raw.str.contains(FORMULA_START)
            return plain.fill_null(False) | absent
        case "date":
            return (raw.str.contains(PLAIN_DATE) & quick.is_not_null()).fill_null(False) | absent
        case "timestamp":
            return (raw.str.contains(PLAIN_TIMESTAMP) & quick.is_not_null()).fill_null(False) | absent
        case "int":
            written = (quick.cast(pl.Utf8) == raw) & quick.is_between(-999_999_999, 999_999_999)
            return written.fill_null(False) | absent
        case "enum" | "currency" | "decimal" | "bool" | "guid":
            return quick.is_not_null() | absent
    raise ValueError(f"unknown column kind {col.kind}")


def _reason(col: Column) -> str:
    return {
        "enum": f"is not one of {', '.join(col.values)}",
        "currency": "is not an ISO 4217 currency Xero accepts",
        "guid": "is not a Xero ContactID (a GUID of 8-4-4-4-12 hex digits); Xero refuses the whole request over it",
        "date": "is not a date YYYY-MM-DD between 1900 and 2099",
        "timestamp": "is not an ISO-8601 timestamp between 1900 and 2099",
        "decimal": "is not a decimal with at most 14 digits before and 4 after the point",
        "int": "is not a whole number of at most 9 digits",
        "bool": "is not true or false",
    }.get(col.kind, "is not valid")


def parse_table(table: str, raw: pl.LazyFrame, file_name: str) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Typed rows of one source table (duplicates of a key removed, the first row kept) and its problems."""
    spec = TABLES[table]
    keys = KEYS[table]
    row_checks = ROW_CHECKS.get(table, {})
    # Columns already of the contract's type are used as they are; any other non-text column is read as
    # the text a CSV would hold (a float quantity as `1.5`, an integer id as `7`).
    schema = raw.collect_schema()
    typed_columns = {n: schema[n] for n, c in spec.items() if _holds_contract_type(c, schema[n])}
    raw = raw.with_columns(
        as_csv_text(n, schema[n]) for n in spec if n not in typed_columns and schema[n] != pl.Utf8
    )

    def quick_value(name: str, col: Column) -> pl.Expr:
        return _typed_value(name, col, typed_columns[name]) if name in typed_columns else _quick(name, col)

    def full_value(name: str, col: Column) -> pl.Expr:
        return _typed_value(name, col, typed_columns[name]) if name in typed_columns else _parsed(name, col)

    # Every value parsed the quick way; `_settled` says where that is all there is to it. The other rows
    # (`_suspect`) are parsed in full and, where a value is bad, described: the cost of a sentence is paid
    # only where there is a problem, and that of the full parse only where a value is not plain.
    quick = (
        raw.with_row_index("_i")
        .with_columns(quick_value(name, col).alias(f"_p_{name}") for name, col in spec.items())
        .with_columns(
            pl.any_horizontal(
                *(~_settled(name, col, name in typed_columns) for name, col in spec.items()),
                *(check.broken().fill_null(False) for check in row_checks.values()),
            ).alias("_suspect")
        )
        .collect()
    )
    both = quick.filter(pl.col("_suspect"))
    if both.height:
        both = both.lazy().with_columns(full_value(n, c).alias(f"_p_{n}") for n, c in spec.items()).collect()
    # (The typed columns picked, not selected: a select may copy them into one chunk.)
    typed = pl.DataFrame(
        [quick.get_column(f"_p_{c}" if c in spec else c).alias(c) for c in raw.collect_schema()]
    )
    # The full parse of a suspect row replaces its quick value where they differ (a padded " service" is
    # "service"; a bad value is null either way).
    for name in spec:
        full = both[f"_p_{name}"]
        if both.height and not full.equals(typed[name].gather(both["_i"]), check_names=False):
            typed = typed.with_columns(typed[name].scatter(both["_i"], full))
    del quick  # the text of parsed values is let go (the suspects keep theirs)
    # The suspects' typed values as their text, for the sentences (their typed values stay in `_p_`).
    if both.height and typed_columns:
        both = both.with_columns(_typed_text(n, dtype) for n, dtype in typed_columns.items())
    invalid = _invalid_values(table, both, file_name)
    duplicates, unique = _split_duplicates(table, typed, keys, file_name)
    blank_is_null = {"practice_id", "key", "invoice_id", "line_id"}  # as in the typed frame
    problems = pl.concat([invalid, duplicates], how="vertical").select(
        [
            (pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c)) if c in blank_is_null else pl.col(c))
            .cast(t)
            .alias(c)
            for c, t in PROBLEM_SCHEMA.items()
        ]
    )
    return unique, problems


def _invalid_values(table: str, both: pl.DataFrame, file_name: str) -> pl.LazyFrame:
    """INVALID_VALUE problems of the suspect rows (raw text and full parse side by side in `both`), one
    per bad value, each detail naming the file, row, key, column and value."""
    if both.is_empty():
        return pl.LazyFrame(schema=PROBLEM_SCHEMA)
    spec, keys, row_checks = TABLES[table], KEYS[table], ROW_CHECKS.get(table, {})
    flags = [_is_bad(name, col) for name, col in spec.items()]
    flags += [check.broken().fill_null(False) for check in row_checks.values()]
    # (Collected without common-subexpression elimination: polars 1.44 evaluated a part the sentences
    # share on a frame of another length and panicked, "bitmap_ops.rs: left == right", on some sources.
    # These are the few rows with a bad value, so the sentences cost next to nothing either way.)
    checked = (
        both.lazy()
        .filter(pl.any_horizontal(flags))
        .select(
            ROW,
            *(pl.col(k).alias(f"_key_{k}") for k in keys),
            *(_bad_value(name, col).alias(f"_bad_{name}") for name, col in spec.items()),
            *(
                pl.when(check.broken()).then(check.say()).alias(f"_bad_{name}")
                for name, check in row_checks.items()
            ),
        )
        .collect(optimizations=pl.QueryOptFlags(comm_subexpr_elim=False))
        .lazy()
    )
    bad = pl.concat(
        [
            checked.filter(pl.col(f"_bad_{name}").is_not_null()).select(
                ROW,
                *(pl.col(f"_key_{k}").alias(k) for k in keys),
                pl.lit(name).alias("column"),
                pl.col(f"_bad_{name}").alias("value"),
            )
            for name in [*spec, *row_checks]
        ],
        how="vertical",
        # polars 1.44 panics ("assertion failed: i < self.len()") formatting string columns made of
        # several chunks, as this concat makes them; one chunk each avoids it.
        rechunk=True,
    )
    return bad.select(
        pl.lit(table).alias("table"),
        pl.col(ROW).cast(pl.Int64),
        pl.col("practice_id"),
        pl.col(keys[-1]).alias("key") if table != "invoice_lines" else pl.col("invoice_id").alias("key"),
        _maybe(keys, "invoice_id"),
        _maybe(keys, "line_id"),
        pl.lit("INVALID_VALUE").alias("code"),
        pl.col("column"),
        _say(
            f"{file_name} row ",
            pl.col(ROW),
            f" ({keys[-1]} '",
            pl.col(keys[-1]),
            "'): ",
            pl.col("column"),
            " ",
            pl.col("value"),
        ).alias("detail"),
        _say(
            "Correct ",
            pl.col("column"),
            f" in {file_name} row ",
            pl.col(ROW),
            f" ({keys[-1]} '",
            pl.col(keys[-1]),
            "') in the practice app and export again",
        ).alias("fix"),
    )


@dataclass(frozen=True)
class RowCheck:
    """A check across the columns of a row: whether the row breaks it (from its typed values, in
    `_p_<name>`), and what to say about it (from its text)."""

    broken: Callable[[], pl.Expr]
    say: Callable[[], pl.Expr]


def _line_amount_too_large() -> pl.Expr:
    """quantity x unit_amount beyond MAX_LINE_AMOUNT: Xero cannot take it, and a total would overflow."""
    quantity = pl.col("_p_quantity").cast(pl.Decimal(38, 4))
    unit = pl.col("_p_unit_amount").cast(pl.Decimal(38, 4))
    return (quantity * unit).abs() >= MAX_LINE_AMOUNT


def _line_amount_said() -> pl.Expr:
    return _say(
        "'",
        pl.col("quantity").str.strip_chars(),
        "' x '",
        pl.col("unit_amount").str.strip_chars(),
        f"' is {MAX_LINE_AMOUNT:,} or more; check the line's quantity and unit amount",
    )


# Checks across the columns of a row, reported as INVALID_VALUE of a pseudo-column.
ROW_CHECKS = {
    "invoice_lines": {"quantity x unit_amount": RowCheck(_line_amount_too_large, _line_amount_said)}
}


def _say(*parts: str | pl.Expr) -> pl.Expr:
    """A detail sentence from text and columns; a null column reads as empty, never nulls the sentence.

    (`pl.concat_str`, not `pl.format`: polars 1.44 panics formatting string columns of several chunks.)
    """
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p.cast(pl.Utf8).fill_null("") for p in parts])


def _maybe(keys: tuple[str, ...], name: str) -> pl.Expr:
    return (pl.col(name) if name in keys else pl.lit(None, pl.Utf8)).alias(name)


def _is_bad(name: str, col: Column) -> pl.Expr:
    """Whether the value has a problem (cheap: no sentence), given its parsed value in `_p_<name>`."""
    raw = pl.col(name)
    missing = raw.is_null() | (raw.str.strip_chars() == "")
    required = pl.lit(col.required)
    if col.kind == "text":
        return missing & required
    if col.kind == "name":
        return (missing & required) | raw.str.contains(FORMULA_START).fill_null(False)
    return (~missing & pl.col(f"_p_{name}").is_null()) | (missing & required)


def _bad_value(name: str, col: Column) -> pl.Expr:
    """A description of what is wrong with the value (`'abc' is not a decimal ...`), null when it is fine,
    from its text (in `name`) and its full parse (in `_p_<name>`)."""
    raw = pl.col(name)
    shown = raw.str.slice(0, 80).str.replace_all(r"[\r\n\t]", " ")
    quoted = _say(
        "'", shown, pl.when(raw.str.len_chars() > 80).then(pl.lit("...")).otherwise(pl.lit("")), "'"
    )
    missing = raw.is_null() | (raw.str.strip_chars() == "")
    if col.kind == "text":
        return pl.when(missing & col.required).then(pl.lit("is empty"))
    if col.kind == "name":
        formula = raw.str.contains(FORMULA_START)
        return (
            pl.when(missing & col.required)
            .then(pl.lit("is empty"))
            .when(formula)
            .then(
                _say(
                    quoted,
                    " starts with = + - @ or a tab, which a spreadsheet runs as a formula; Xero matches this "
                    "name exactly, so it cannot be escaped: rename it in Xero and in the practice app",
                )
            )
        )
    parsed = pl.col(f"_p_{name}")
    unparsed = raw.is_not_null() & (raw.str.strip_chars() != "") & parsed.is_null()
    if col.kind == "decimal":
        too_fine = raw.str.strip_chars().str.contains(r"\.\d{5,}$")
        reason = (
            pl.when(too_fine).then(pl.lit("has more than 4 decimal places")).otherwise(pl.lit(_reason(col)))
        )
    else:
        reason = pl.lit(_reason(col))
    expr = pl.when(unparsed).then(_say(quoted, " ", reason))
    if col.required:
        expr = expr.when(missing).then(pl.lit("is empty"))
    return expr


def _split_duplicates(
    table: str, typed: pl.DataFrame, keys: tuple[str, ...], file_name: str
) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Rows whose key is repeated become DUPLICATE_KEY problems; the first row of each key is kept."""
    identified = pl.all_horizontal(pl.col(k).is_not_null() for k in keys)
    # Rows that may share their key: rows of equal keys have equal hashes (and a few others may collide).
    # Only they are counted by key: a window over every key would cost seconds per million rows.
    # (Each key column hashed with its own seed, combined: eight times faster than hashing them together.)
    hashes = typed.select(pl.reduce(operator.xor, [pl.col(k).hash(seed=i) for i, k in enumerate(keys)]))
    hashes = hashes.to_series()
    ordered = hashes.sort()
    repeated = ordered.filter(ordered == ordered.shift(1))
    maybe = typed.with_row_index("_i").filter(hashes.is_in(repeated.implode()))
    counted = maybe.with_columns(
        pl.len().over(keys).alias("_copies"),
        *(
            # Which copy of a repeated invoice is the real one is unknown: when any copy would be exported,
            # the kept one is too (status unknown, so held with DUPLICATE_KEY), never hidden behind a draft.
            [
                ((pl.col("status") == "approved") | pl.col("status").is_null())
                .any()
                .over(keys)
                .alias("_exportable")
            ]
            if table == "invoices"
            else []
        ),
        pl.col(ROW).min().over(keys).alias("_first_row"),
    )
    dupes = counted.lazy().filter((pl.col("_copies") > 1) & identified)
    # The rows of each repeated key, for the (few) repeated keys.
    grouped = dupes.group_by(keys).agg(
        pl.col(ROW).min(),
        pl.col(ROW).sort().cast(pl.Utf8).str.join(", ").alias("_rows"),
    )
    problems = grouped.select(
        pl.lit(table).alias("table"),
        pl.col(ROW).cast(pl.Int64),
        pl.col("practice_id"),
        pl.col(keys[-1]).alias("key") if table != "invoice_lines" else pl.col("invoice_id").alias("key"),
        _maybe(keys, "invoice_id"),
        _maybe(keys, "line_id"),
        pl.lit("DUPLICATE_KEY").alias("code"),
        pl.lit(keys[-1]).alias("column"),
        _say(
            f"{file_name} rows ",
            pl.col("_rows"),
            f" share {keys[-1]} '",
            pl.col(keys[-1]),
            "' in practice '",
            pl.col("practice_id"),
            "'; keep one row per key",
        ).alias("detail"),
        _say(
            f"Keep one of {file_name} rows ",
            pl.col("_rows"),
            f" with {keys[-1]} '",
            pl.col(keys[-1]),
            "' (or give the others ids of their own) in the practice app",
        ).alias("fix"),
    )
    # Kept: rows with a whole key, and of a repeated key only the first row.
    keep = typed.select(identified).to_series()
    first = counted.select(identified & (pl.col(ROW) == pl.col("_first_row"))).to_series()
    keep = keep.scatter(counted["_i"], first)
    if table == "invoices" and counted.height:
        repeated_exportable = counted.select((pl.col("_copies") > 1) & pl.col("_exportable")).to_series()
        status = counted.select(pl.when(repeated_exportable).then(None).otherwise(pl.col("status")))
        typed = typed.with_columns(typed["status"].scatter(counted["_i"], status.to_series()))
    return problems, _kept(typed, keep).lazy()


def _kept(frame: pl.DataFrame, keep: pl.Series) -> pl.DataFrame:
    """The rows of `frame` that `keep` marks. When only a few go (a repeated key or two), the others stay
    as slices of `frame` rather than a copy: a million typed lines are not copied to drop twelve."""
    if keep.all():
        return frame
    dropped = (~keep).arg_true().to_list()
    if len(dropped) > 64 or len(dropped) == frame.height:
        return frame.filter(keep)
    starts, ends = [0, *(d + 1 for d in dropped)], [*dropped, frame.height]
    return pl.concat(
        [frame.slice(s, e - s) for s, e in zip(starts, ends, strict=True) if e > s], rechunk=False
    )
