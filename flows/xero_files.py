"""Xero batch files: a JSON body for POST /Invoices and the same invoices in the CSV import template.

Rendering is vectorised (Polars builds every invoice's JSON and CSV text at once); Python only cuts the
invoices into batches and writes the files. Amounts are written from the Decimal columns' exact text as
JSON numbers (never through a float): 150.0000 -> 150.00, 0.1250 -> 0.125.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jsonschema
import polars as pl

SCHEMA_PATH = Path(__file__).resolve().parent / "xero" / "invoices.schema.json"
CSV_HEADER = (
    "*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,PORegion,"
    "POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,Total,InventoryItemCode,*Description,"
    "*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,TaxAmount,TrackingName1,TrackingOption1,TrackingName2,"
    "TrackingOption2,Currency,BrandingTheme"
).split(",")
BODY_START = '{"Invoices": [\n'
BODY_END = "\n]}\n"
SEPARATOR = ",\n"
INVOICE = ["practice_id", "invoice_id"]


class XeroBodyInvalid(RuntimeError):
    """A body broke Xero's schema: a bug, so the run stops and publishes nothing."""


@cache
def xero_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def decimal_text(amount: pl.Expr, scale: int = 4) -> pl.Expr:
    """A Decimal's exact text with at least 2 places and no trailing zeros beyond them."""
    if scale <= 2:
        return amount.cast(pl.Utf8)
    cents = amount.cast(pl.Decimal(38, 2), strict=False)
    return (
        pl.when(cents.cast(pl.Decimal(38, scale)) == amount)
        .then(cents.cast(pl.Utf8))
        .otherwise(amount.cast(pl.Utf8).str.strip_chars_end("0"))
    )


# Every character that may not stand raw in a JSON string (RFC 8259 section 7), and its escape.
_SHORT_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}
JSON_RAW = ["\\", '"'] + [chr(c) for c in range(32)]
JSON_ESCAPED = ["\\\\", '\\"'] + [_SHORT_ESCAPES.get(c, f"\\u{c:04x}") for c in range(32)]


def json_string(text: pl.Expr) -> pl.Expr:
    """A JSON string literal, escaped in one pass (Aho-Corasick), or `null`."""
    escaped = text.str.replace_many(JSON_RAW, JSON_ESCAPED)
    return pl.concat_str([pl.lit('"'), escaped, pl.lit('"')]).fill_null("null")


def csv_field(text: pl.Expr) -> pl.Expr:
    """RFC 4180: quoted when it holds a comma, quote or line break; empty for null."""
    value = text.cast(pl.Utf8).fill_null("")
    return (
        pl.when(value.str.contains_any([",", '"', "\r", "\n"]))
        .then(pl.concat_str([pl.lit('"'), value.str.replace_all('"', '""', literal=True), pl.lit('"')]))
        .otherwise(value)
    )


def _cat(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate literal text and expressions (null if any expression is null)."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])


def _tracking(slot: int) -> pl.Expr:
    name, option = pl.col(f"tracking{slot}_name"), pl.col(f"tracking{slot}_option")
    return pl.when(name.is_not_null()).then(
        _cat('{"Name":', json_string(name), ',"Option":', json_string(option), "}")
    )


def _line_item_json() -> pl.Expr:
    tracking = pl.concat_str([_tracking(1), _tracking(2)], separator=",", ignore_nulls=True)
    return _cat(
        '{"Description":',
        json_string(pl.col("description")),
        ',"Quantity":',
        decimal_text(pl.col("quantity")),
        ',"UnitAmount":',
        decimal_text(pl.col("unit_amount")),
        ',"AccountCode":',
        json_string(pl.col("account_code")),
        ',"TaxType":',
        json_string(pl.col("tax_type")),
        ',"LineAmount":',
        decimal_text(pl.col("line_amount"), scale=2),
        ',"Tracking":[',
        tracking.fill_null(""),
        "]}",
    )


def _csv_row(values: dict[str, pl.Expr], columns: list[str], escape: set[str]) -> pl.Expr:
    """The given columns of a template row, comma separated; columns without a value are empty."""
    parts = []
    for column in columns:
        value = values.get(column)
        if value is None:
            parts.append(pl.lit(""))
        else:
            parts.append(csv_field(value) if column in escape else value.cast(pl.Utf8).fill_null(""))
    return pl.concat_str(parts, separator=",")


HEAD_COLUMNS = CSV_HEADER[: CSV_HEADER.index("*Description")]
LINE_COLUMNS = CSV_HEADER[CSV_HEADER.index("*Description") : CSV_HEADER.index("Currency")]
TAIL_COLUMNS = CSV_HEADER[CSV_HEADER.index("Currency") :]


def _csv_head() -> pl.Expr:
    """The invoice's part of each CSV row (contact, number, reference, dates): built once per invoice."""
    values = {
        "*ContactName": pl.col("contact_name"),
        "*InvoiceNumber": pl.col("invoice_number"),
        "Reference": pl.col("reference"),
        "*InvoiceDate": pl.col("issue_date").dt.to_string("%Y-%m-%d"),
        "*DueDate": pl.col("due_date").dt.to_string("%Y-%m-%d"),
    }
    return _csv_row(values, HEAD_COLUMNS, escape={"*ContactName", "*InvoiceNumber", "Reference"})


def _csv_tail() -> pl.Expr:
    return _csv_row({"Currency": pl.col("currency")}, TAIL_COLUMNS, escape=set())


def _csv_line() -> pl.Expr:
    """The line's part of its CSV row, from *Description to TrackingOption2."""
    values = {
        "*Description": pl.col("description"),
        "*Quantity": decimal_text(pl.col("quantity")),
        "*UnitAmount": decimal_text(pl.col("unit_amount")),
        "*AccountCode": pl.col("account_code"),
        "*TaxType": pl.col("tax_type"),
        "TrackingName1": pl.col("tracking1_name"),
        "TrackingOption1": pl.col("tracking1_option"),
        "TrackingName2": pl.col("tracking2_name"),
        "TrackingOption2": pl.col("tracking2_option"),
    }
    text = {c for c in values if c not in ("*Quantity", "*UnitAmount")}
    return _csv_row(values, LINE_COLUMNS, escape=text)


def render_invoices(heads: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """One row per invoice: its JSON object and CSV rows as text, its line count and JSON size in bytes.

    `heads` are xero_invoices rows, `items` their xero_line_items rows.
    """
    head_csv = heads.lazy().select(*INVOICE, _csv_head().alias("csv_head"), _csv_tail().alias("csv_tail"))
    lines = (
        items.lazy()
        .sort([*INVOICE, "line_no"])
        .with_columns(_line_item_json().alias("line_json"), _csv_line().alias("csv_line"))
        .join(head_csv, on=INVOICE, how="inner")
        .group_by(INVOICE, maintain_order=True)
        .agg(
            pl.col("line_json").str.join(",").alias("line_items"),
            pl.concat_str(["csv_head", "csv_line", "csv_tail"], separator=",").str.join("\r\n").alias("csv"),
            pl.len().cast(pl.Int32).alias("line_count"),
        )
    )
    contact = (
        pl.when(pl.col("contact_id").is_not_null())
        .then(_cat('{"ContactID":', json_string(pl.col("contact_id")), "}"))
        .otherwise(_cat('{"Name":', json_string(pl.col("contact_name")), "}"))
    )
    reference = pl.when(pl.col("reference").is_not_null()).then(
        _cat('"Reference":', json_string(pl.col("reference")), ",")
    )
    invoice = _cat(
        '{"Type":"ACCREC","Contact":',
        contact,
        ',"InvoiceNumber":',
        json_string(pl.col("invoice_number")),
        ",",
        reference.fill_null(""),
        '"Date":"',
        pl.col("issue_date").dt.to_string("%Y-%m-%d"),
        '","DueDate":"',
        pl.col("due_date").dt.to_string("%Y-%m-%d"),
        '","CurrencyCode":',
        json_string(pl.col("currency")),
        ',"Status":',
        json_string(pl.col("xero_status")),
        ',"LineAmountTypes":',
        json_string(pl.col("line_amount_types")),
        ',"LineItems":[',
        pl.col("line_items"),
        "]}",
    )
    return (
        heads.lazy()
        .join(lines, on=INVOICE, how="inner", validate="1:1")
        .select(*INVOICE, invoice.alias("json"), "csv", "line_count")
        .with_columns(pl.col("json").str.len_bytes().alias("bytes"))
        .sort(INVOICE)
        .collect()
    )


def assign_batches(
    rendered: pl.DataFrame, next_sequence: dict[str, int], max_invoices: int = 50, max_bytes: int = 3_500_000
) -> pl.DataFrame:
    """Cut each practice's invoices (in invoice order) into batches of at most `max_invoices` invoices and
    `max_bytes` of JSON body, numbered <practice_id>-<sequence> from `next_sequence`."""
    room = max_bytes - len(BODY_START) - len(BODY_END)
    batch_ids: list[str] = []
    for practice_id, sizes in zip(
        *rendered.group_by("practice_id", maintain_order=True).agg("bytes").get_columns(), strict=True
    ):
        sequence, count, used = next_sequence.get(practice_id, 1), 0, 0
        for size in sizes:
            if count and (count >= max_invoices or used + len(SEPARATOR) + size > room):
                sequence, count, used = sequence + 1, 0, 0
            used += size + (len(SEPARATOR) if count else 0)
            count += 1
            batch_ids.append(f"{practice_id}-{sequence:06d}")
    return rendered.with_columns(pl.Series("batch_id", batch_ids, dtype=pl.Utf8))


@dataclass
class Written:
    batches: pl.DataFrame  # batch_id, practice_id, path, csv_path, invoice_count, line_count, bytes
    ledger: pl.DataFrame  # practice_id, invoice_id, batch_id
    paths: list[str]


def write_batch_files(batched: pl.DataFrame, root: Path) -> Written:
    """Write every batch's JSON and CSV under `root/xero/<practice_id>/`.

    The first invoice of each practice is checked against Xero's schema as the run goes (every invoice is
    built by the same expressions, and the values the schema limits are checked by Pandera before); the
    tests check every body they produce in full.
    """
    header = ",".join(CSV_HEADER) + "\r\n"
    bodies = (
        batched.group_by("batch_id", maintain_order=True)
        .agg(
            pl.col("practice_id").first(),
            pl.col("json").str.join(SEPARATOR),
            pl.col("csv").str.join("\r\n"),
            pl.len().cast(pl.Int32).alias("invoice_count"),
            pl.col("line_count").sum().cast(pl.Int32),
        )
        .with_columns(
            _cat("xero/", pl.col("practice_id"), "/", pl.col("batch_id"), ".json").alias("path"),
            _cat("xero/", pl.col("practice_id"), "/", pl.col("batch_id"), ".csv").alias("csv_path"),
        )
    )
    sizes, paths, checked = [], [], set()
    for folder in bodies["practice_id"].unique():
        (root / "xero" / folder).mkdir(parents=True, exist_ok=True)
    for batch_id, practice_id, body_json, body_csv, path, csv_path in bodies.select(
        "batch_id", "practice_id", "json", "csv", "path", "csv_path"
    ).iter_rows():
        body = (BODY_START + body_json + BODY_END).encode("utf-8")
        if practice_id not in checked:
            first = body_json[
                : len(body_json) if SEPARATOR not in body_json else body_json.index(SEPARATOR + "{")
            ]
            check_body(batch_id, (BODY_START + first + BODY_END).encode("utf-8"))
            checked.add(practice_id)
        (root / path).write_bytes(body)
        (root / csv_path).write_bytes((header + body_csv + "\r\n").encode("utf-8"))
        sizes.append(len(body))
        paths += [path, csv_path]
    return Written(
        batches=bodies.select(
            "batch_id",
            "practice_id",
            "path",
            "csv_path",
            "invoice_count",
            "line_count",
            pl.Series("bytes", sizes, dtype=pl.Int64),
        ),
        ledger=batched.select(*INVOICE, "batch_id"),
        paths=paths,
    )


def check_body(batch_id: str, body: bytes) -> None:
    errors = sorted(xero_validator().iter_errors(json.loads(body)), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise XeroBodyInvalid(
            f"batch {batch_id}: body breaks Xero's schema at {'/'.join(map(str, first.path))}: {first.message}"
        )
