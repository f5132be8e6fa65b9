"""Xero batch files: a JSON body for POST /Invoices and the same invoices in the CSV import template.

Rendering is vectorised: Polars builds every line's JSON and CSV text at once, with its invoice's own text
riding on it (the invoice's JSON opening on its first line, its closing on its last; the invoice's columns
on each CSV row), so that a batch's body is its lines' texts one after the other: read in place from the
buffers Polars wrote (a slice or two per file, never copied) and written with one system call. Python only
cuts the invoices into batches (vectorised unless the byte limit bites). Text that many lines share
(account code, tax type, tracking; dates) is built once per distinct value. Amounts are written from the Decimal columns' exact text as JSON numbers (never through a
float): 150.0000 -> 150.00, 0.1250 -> 0.125.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import jsonschema
import jsonschema_rs
import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from flows.outputs import Confined
from flows.xero.import_template import CsvTemplates, standard_templates

# Xero's own schema of a POST /Invoices body (../shared/xero/invoices.schema.json), package data of flows.
SCHEMA_PATH = resources.files("flows.xero") / "invoices.schema.json"
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


# Where a practice's files go (contract section 4) ------------------------------------------------------
#
# Ids come from whatever the practice's app exports, so an id never chooses a path by itself. A plain id
# (ASCII letters, digits, `-`, `_`, `.`, not starting with `.`, at most 100 characters) names its folder as
# it is, unless another practice's id differs from it only in case (they would share a folder on a
# case-insensitive file system) or it is a name Windows reserves or silently changes (CON, NUL, COM1, a
# trailing dot). Any other id is encoded: `~`, a lower-case hint of its letters and digits, and 26 base32
# characters of its SHA-256. `~` is never in a plain id and the encoding is lower case, so an encoded
# folder equals no plain one and no other encoded one, even where case is not told apart.

PLAIN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
RESERVED_NAME = re.compile(r"(CON|PRN|AUX|NUL|CLOCK\$|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)


def _plain(practice_id: str) -> bool:
    return (
        PLAIN_ID.fullmatch(practice_id) is not None
        and RESERVED_NAME.fullmatch(practice_id) is None
        and not practice_id.endswith(".")
    )


def encoded_name(practice_id: str) -> str:
    """The stable folder name of an id that cannot name a folder as it is."""
    digest = hashlib.sha256(practice_id.encode("utf-8", "surrogatepass")).digest()
    code = base64.b32encode(digest).decode("ascii").lower()[:26]
    hint = re.sub(r"[^a-z0-9]+", "_", practice_id.lower()).strip("_")[:40]
    return f"~{hint}-{code}" if hint else f"~{code}"


def practice_folders(practice_ids: Iterable[str]) -> dict[str, str]:
    """Each practice's folder name under `xero/` (and the first part of its batch ids), decided among
    every practice id given: the practices of the source and those with batches already."""
    ids = set(practice_ids)
    folded = Counter(p.lower() for p in ids)
    return {p: p if _plain(p) and folded[p.lower()] == 1 else encoded_name(p) for p in ids}


@cache
def xero_validator() -> jsonschema.Draft202012Validator:
    # format checking on: `ContactID` is `format: uuid`, which jsonschema ignores without a checker.
    return jsonschema.Draft202012Validator(
        json.loads(SCHEMA_PATH.read_text()), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@cache
def fast_validator() -> jsonschema_rs.Draft202012Validator:
    """The same schema and formats, compiled (jsonschema-rs): fast enough to check every body written."""
    return jsonschema_rs.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()), validate_formats=True)


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
    """A JSON string literal, escaped in one pass (Aho-Corasick) where it needs escaping, or `null`."""
    escaped = (
        pl.when(text.str.contains_any(JSON_RAW))
        .then(text.str.replace_many(JSON_RAW, JSON_ESCAPED))
        .otherwise(text)
    )
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


def _csv_fields(values: dict[str, pl.Expr], columns: list[str], escape: set[str]) -> list[str | pl.Expr]:
    """The given columns of a template row, comma separated, as pieces for `_cat` (no comma before the
    first or after the last); columns without a value are empty."""
    parts: list[str | pl.Expr] = []
    for k, column in enumerate(columns):
        if k:
            parts.append(",")
        value = values.get(column)
        if value is not None:
            parts.append(csv_field(value) if column in escape else value.cast(pl.Utf8).fill_null(""))
    merged: list[str | pl.Expr] = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


HEAD_COLUMNS = CSV_HEADER[: CSV_HEADER.index("*Description")]
LINE_COLUMNS = CSV_HEADER[CSV_HEADER.index("*Description") : CSV_HEADER.index("Currency")]
TAIL_COLUMNS = CSV_HEADER[CSV_HEADER.index("Currency") :]
# A line's own CSV columns, then those it shares with many lines (rendered once per distinct value).
OWN_COLUMNS = LINE_COLUMNS[: LINE_COLUMNS.index("*UnitAmount") + 1]
SHARED_COLUMNS = LINE_COLUMNS[len(OWN_COLUMNS) :]
SHARED = [
    "account_code",
    "tax_type",
    "tracking1_name",
    "tracking1_option",
    "tracking2_name",
    "tracking2_option",
]
INVOICE_CLOSE = "]}"
CRLF = "\r\n"


def _csv_open() -> pl.Expr:
    """The invoice's part of each CSV row (contact, number, reference, dates) and the comma after it."""
    values = {
        "*ContactName": pl.col("contact_name"),
        "*InvoiceNumber": pl.col("invoice_number"),
        "Reference": pl.col("reference"),
        "*InvoiceDate": pl.col("_csv_issue_date"),
        "*DueDate": pl.col("_csv_due_date"),
    }
    return _cat(
        *_csv_fields(values, HEAD_COLUMNS, escape={"*ContactName", "*InvoiceNumber", "Reference"}), ","
    )


def _csv_close() -> pl.Expr:
    """The comma before the invoice's last columns of each CSV row (currency), them, and the line break."""
    return _cat(",", *_csv_fields({"Currency": pl.col("currency")}, TAIL_COLUMNS, escape=set()), CRLF)


def _csv_shared() -> pl.Expr:
    """From the comma after *UnitAmount to TrackingOption2: discount, account code, tax type, tracking."""
    values = {
        "*AccountCode": pl.col("account_code"),
        "*TaxType": pl.col("tax_name"),
        "TrackingName1": pl.col("tracking1_name"),
        "TrackingOption1": pl.col("tracking1_option"),
        "TrackingName2": pl.col("tracking2_name"),
        "TrackingOption2": pl.col("tracking2_option"),
    }
    return _cat(",", *_csv_fields(values, SHARED_COLUMNS, escape=set(values)))


def _csv_dates(heads: pl.DataFrame, templates: CsvTemplates) -> list[pl.Expr]:
    """The invoice and due dates as the practice's CSV files write them (its date format)."""
    formats = templates.date_formats(heads["practice_id"].unique().to_list())
    columns = []
    for name, date in (("_csv_issue_date", "issue_date"), ("_csv_due_date", "due_date")):
        expr: pl.Expr = pl.lit(None, pl.Utf8)
        for strftime, practices in formats.items():
            expr = (
                pl.when(pl.col("practice_id").is_in(practices))
                .then(pl.col(date).dt.to_string(strftime))
                .otherwise(expr)
            )
        columns.append(expr.alias(name))
    return columns


def _tracking(slot: int) -> pl.Expr:
    name, option = pl.col(f"tracking{slot}_name"), pl.col(f"tracking{slot}_option")
    return pl.when(name.is_not_null()).then(
        _cat('{"Name":', json_string(name), ',"Option":', json_string(option), "}")
    )


def _json_shared() -> tuple[pl.Expr, pl.Expr]:
    """A line item's JSON from AccountCode to the LineAmount key, and from Tracking to its end."""
    tracking = pl.concat_str([_tracking(1), _tracking(2)], separator=",", ignore_nulls=True)
    return (
        _cat(
            ',"AccountCode":',
            json_string(pl.col("account_code")),
            ',"TaxType":',
            json_string(pl.col("tax_type")),
            ',"LineAmount":',
        ),
        _cat(',"Tracking":[', tracking.fill_null(""), "]}"),
    )


def _invoice_open() -> pl.Expr:
    """The invoice's JSON object up to and including the opening of its line items."""
    contact = (
        pl.when(pl.col("contact_id").is_not_null())
        .then(_cat('{"ContactID":', json_string(pl.col("contact_id")), "}"))
        .otherwise(_cat('{"Name":', json_string(pl.col("contact_name")), "}"))
    )
    reference = pl.when(pl.col("reference").is_not_null()).then(
        _cat('"Reference":', json_string(pl.col("reference")), ",")
    )
    return _cat(
        '{"Type":"ACCREC","Contact":',
        contact,
        ',"InvoiceNumber":',
        json_string(pl.col("invoice_number")),
        ",",
        reference.fill_null(""),
        '"Date":"',
        pl.col("_issue_date"),
        '","DueDate":"',
        pl.col("_due_date"),
        '","CurrencyCode":',
        json_string(pl.col("currency")),
        ',"Status":',
        json_string(pl.col("xero_status")),
        ',"LineAmountTypes":',
        json_string(pl.col("line_amount_types")),
        ',"LineItems":[',
    )


def _date_text(dates: pl.Series) -> pl.Series:
    """YYYY-MM-DD, formatted once per day of the dates' range (when it is not absurdly long)."""
    days = dates.cast(pl.Int32)
    low, high = days.min(), days.max()
    if low is None or high - low > 200_000:
        return dates.dt.to_string("%Y-%m-%d")
    table = pl.date_range(dates.min(), dates.max(), eager=True).dt.to_string("%Y-%m-%d")
    return table.gather(days - low)


def _distinct(frame: pl.DataFrame, columns: list[str]) -> tuple[pl.DataFrame, pl.Series]:
    """The distinct rows of `frame[columns]`, and for each row of `frame` the number of its distinct row."""
    groups = frame.select(columns).with_row_index("_row").group_by(columns).agg("_row")
    rows = groups.select(pl.col("_row").explode())["_row"].to_numpy()
    number = np.empty(frame.height, dtype=np.uint32)
    number[rows] = np.repeat(np.arange(groups.height, dtype=np.uint32), groups["_row"].list.len().to_numpy())
    return groups.drop("_row"), pl.Series(number)


class Text:
    """A column of rendered text (Arrow string views, as Polars made it: not copied), read as byte slices.

    A view is (length, buffer, offset) or, up to 12 bytes, the text itself; rows that follow each other
    in one buffer are read as one slice."""

    def __init__(self, series: pl.Series) -> None:
        array = series.to_arrow(compat_level=pl.CompatLevel.newest())
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if array.type != pa.string_view():
            array = array.cast(pa.string_view())
        self.array = array  # keeps the buffers alive
        buffers = array.buffers()
        n = len(array)
        views = np.frombuffer(buffers[1], dtype=np.int32).reshape(-1, 4)[array.offset : array.offset + n]
        self.length = views[:, 0].astype(np.int64)
        inline = self.length <= 12
        # Buffer -1 is the views' own: an inline text starts 4 bytes into its 16-byte view.
        self.buffer = np.where(inline, -1, views[:, 2])
        self.start = np.where(inline, (np.arange(n, dtype=np.int64) + array.offset) * 16 + 4, views[:, 3])
        self.data = [memoryview(b if b is not None else b"") for b in buffers[2:]] + [memoryview(buffers[1])]
        follows = np.zeros(n, dtype=bool)
        follows[1:] = (
            ~inline[1:]
            & ~inline[:-1]
            & (self.buffer[1:] == self.buffer[:-1])
            & (self.start[1:] == self.start[:-1] + self.length[:-1])
        )
        self.runs = np.flatnonzero(~follows)  # first row of each run of rows one slice can read
        self.before = np.zeros(n + 1, dtype=np.int64)  # bytes before each row
        np.cumsum(self.length, out=self.before[1:])

    def pieces(self, first: int, end: int, trim: int = 0) -> list[memoryview]:
        """Rows first .. end - 1 as slices, less `trim` bytes at the end."""
        out = []
        run = int(np.searchsorted(self.runs, first, side="right")) - 1
        while first < end:
            stop = int(self.runs[run + 1]) if run + 1 < len(self.runs) else len(self.length)
            last = min(stop, end) - 1
            begin, finish = int(self.start[first]), int(self.start[last] + self.length[last])
            out.append(self.data[self.buffer[first]][begin:finish])
            first, run = last + 1, run + 1
        while trim:
            cut = min(trim, len(out[-1]))
            out[-1] = out[-1][: len(out[-1]) - cut]
            trim -= cut
            if not len(out[-1]):
                out.pop()
        return out


@dataclass
class Rendered:
    """Every line's JSON and CSV text, in invoice order, laid out so that the text of any run of whole
    invoices is the lines' texts one after the other.

    `json` row k is line k's JSON object, preceded by its invoice's opening (`{"Type":...,"LineItems":[`) on
    the invoice's first line and by "," on the others, and followed on the last line by the invoice's
    closing and SEPARATOR: invoices a..b are rows lines[a] .. lines[b + 1] - 1, less the final SEPARATOR.
    `csv` row k is line k's CSV row with its CRLF.
    """

    invoices: pl.DataFrame  # the rendered invoices' heads rows, in (practice_id, invoice_id) order
    lines: np.ndarray  # int64, invoices.height + 1: invoice i's lines are lines[i] .. lines[i + 1] - 1
    json: Text
    csv: Text
    # bool per line: its unit amount has more than 2 decimal places, which Xero reads only with unitdp=4
    fine_unit: np.ndarray
    # practice_id -> the tax type codes of its lines that have no display name for it: its CSV files are
    # not written (import_template)
    csv_refused: dict[str, list[str]] = field(default_factory=dict)

    def json_bytes(self) -> np.ndarray:
        """Each invoice's JSON object, in bytes (without SEPARATOR)."""
        return np.diff(self.json.before[self.lines]) - len(SEPARATOR)


def order_lines(items: pl.DataFrame) -> pl.DataFrame:
    """Lines (with `invoice`, their invoice's row number) sorted by invoice and line_no (unless they are)."""
    items = items.with_columns(pl.col("invoice").cast(pl.Int64))
    same = pl.col("invoice") == pl.col("invoice").shift(1)
    in_order = (~same | (pl.col("line_no") > pl.col("line_no").shift(1))).fill_null(True).all()
    if items["invoice"].is_sorted() and items.select(in_order).item():
        return items
    return items.sort("invoice", "line_no")


def render_heads(heads: pl.DataFrame, templates: CsvTemplates | None = None) -> pl.DataFrame:
    """Each invoice's own text: its JSON opening (ISO dates), and the start and end of each of its CSV rows
    (dates in its practice's format: `templates`, the standard ones when not given)."""
    templates = templates or standard_templates()
    dated = heads.with_columns(
        _date_text(heads["issue_date"]).alias("_issue_date"),
        _date_text(heads["due_date"]).alias("_due_date"),
        *_csv_dates(heads, templates),
    )
    return dated.select(
        _invoice_open().alias("_open"), _csv_open().alias("_csv_open"), _csv_close().alias("_csv_close")
    )


def line_counts(items: pl.DataFrame, invoices: int) -> np.ndarray:
    """How many of `items` each invoice has (by `invoice`, the row number of their invoice)."""
    return np.bincount(items["invoice"].cast(pl.Int64).to_numpy(), minlength=invoices)


def render_invoices(
    heads: pl.DataFrame,
    items: pl.DataFrame,
    head_text: pl.DataFrame | None = None,
    templates: CsvTemplates | None = None,
) -> Rendered:
    """Render invoices and their lines (an invoice without lines is left out, as it has no batch).

    `heads` are xero_invoices rows, sorted by (practice_id, invoice_id) without repeats; `items` their
    xero_line_items rows (at least line_no, the line's columns and SHARED), in any order, with `invoice`:
    the row number of the line's invoice in `heads`. `head_text` is render_heads(heads, templates) if
    already made. The JSON carries tax type codes; the CSV their display names for the practice
    (`templates`); a practice with a code it has no name for gets no CSV (Rendered.csv_refused).
    """
    templates = templates or standard_templates()
    items = _with_tax_names(order_lines(items), heads["practice_id"], templates)
    refused = items.filter(pl.col("tax_type").is_not_null() & pl.col("tax_name").is_null())
    csv_refused = {
        p: sorted(set(codes))
        for p, codes in refused.group_by("_practice").agg("tax_type").sort("_practice").iter_rows()
    }
    # A refused practice's CSV is not written: its rows are rendered with the code, never published.
    items = items.with_columns(pl.coalesce("tax_name", "tax_type").alias("tax_name")).drop("_practice")
    invoice = items["invoice"]
    counts = line_counts(items, heads.height)
    kept = counts > 0
    lines = np.zeros(int(kept.sum()) + 1, dtype=np.int64)
    np.cumsum(counts[kept], out=lines[1:])
    per_head = render_heads(heads, templates) if head_text is None else head_text
    shared, number = _distinct(items, [*SHARED, "tax_name"])
    json_amount, json_tracking = _json_shared()
    per_shared = shared.select(
        json_amount.alias("_json_amount"),
        json_tracking.alias("_json_tracking"),
        _csv_shared().alias("_csv_shared"),
    )
    own = {
        "*Description": pl.col("description"),
        "*Quantity": pl.col("_quantity"),
        "*UnitAmount": pl.col("_unit_amount"),
    }
    first = (pl.col("invoice") != pl.col("invoice").shift(1)).fill_null(True)
    last = (pl.col("invoice") != pl.col("invoice").shift(-1)).fill_null(True)
    text = items.with_columns(
        *per_head[invoice].get_columns(),
        *per_shared[number].get_columns(),
        decimal_text(pl.col("quantity")).alias("_quantity"),
        decimal_text(pl.col("unit_amount")).alias("_unit_amount"),
    ).select(
        _cat(
            pl.when(first).then(pl.col("_open")).otherwise(pl.lit(",")),
            '{"Description":',
            json_string(pl.col("description")),
            ',"Quantity":',
            pl.col("_quantity"),
            ',"UnitAmount":',
            pl.col("_unit_amount"),
            pl.col("_json_amount"),
            decimal_text(pl.col("line_amount"), scale=2),
            pl.col("_json_tracking"),
            pl.when(last).then(pl.lit(INVOICE_CLOSE + SEPARATOR)).otherwise(pl.lit("")),
        ).alias("json"),
        _cat(
            pl.col("_csv_open"),
            *_csv_fields(own, OWN_COLUMNS, escape={"*Description"}),
            pl.col("_csv_shared"),
            pl.col("_csv_close"),
        ).alias("csv"),
    )
    for column in text.get_columns():
        if column.null_count():
            raise XeroBodyInvalid(
                f"a line could not be rendered as {column.name}: a value it needs is missing"
            )
    unit = items["unit_amount"]
    fine_unit = (unit.cast(pl.Decimal(38, 2), strict=False).cast(unit.dtype) != unit).fill_null(False)
    return Rendered(
        heads.filter(pl.Series(kept)),
        lines,
        Text(text["json"]),
        Text(text["csv"]),
        fine_unit.to_numpy(),
        csv_refused,
    )


def _with_tax_names(items: pl.DataFrame, practice: pl.Series, templates: CsvTemplates) -> pl.DataFrame:
    """Lines (in order) with `_practice` (their invoice's practice_id) and `tax_name`: their tax type's
    display name for that practice, null when it has none (or the line has no tax type)."""
    owner = practice.gather(items["invoice"]).alias("_practice")
    names = templates.tax_names(practice.unique().to_list()).rename({"practice_id": "_practice"})
    return items.with_columns(owner).join(
        names, on=["_practice", "tax_type"], how="left", validate="m:1", maintain_order="left"
    )


def _greedy(sizes: np.ndarray, max_invoices: int, room: int) -> np.ndarray:
    """Batch number (from 0) of each invoice of one practice: a new batch when the invoice would take the
    batch over `max_invoices` invoices or `room` bytes (an invoice alone is never cut)."""
    out = np.empty(len(sizes), dtype=np.int64)
    batch, count, used = 0, 0, 0
    for k, size in enumerate(sizes.tolist()):
        if count and (count >= max_invoices or used + len(SEPARATOR) + size > room):
            batch, count, used = batch + 1, 0, 0
        used += size + (len(SEPARATOR) if count else 0)
        count += 1
        out[k] = batch
    return out


@dataclass
class Cut:
    batches: pl.DataFrame  # batch_id, practice_id, folder, first (its first invoice), invoice_count
    invoice_batch: pl.Series  # each invoice's batch_id


def cut_batches(
    practice: pl.Series,
    sizes: np.ndarray | None,
    next_sequence: dict[str, int],
    max_invoices: int = 50,
    max_bytes: int = 3_500_000,
    folders: Mapping[str, str] | None = None,
) -> Cut:
    """Cut each practice's invoices (`practice`: their practice_id, in invoice order) into batches of at
    most `max_invoices` invoices and `max_bytes` of JSON body (`sizes`: each invoice's JSON in bytes; None
    to cut by count alone), numbered <folder>-<sequence> from `next_sequence`, where <folder> is the
    practice's folder (`folders`, from practice_folders; the practice_id itself when not given)."""
    n = practice.len()
    if not n:
        empty = pl.DataFrame(
            schema={
                "batch_id": pl.Utf8,
                "practice_id": pl.Utf8,
                "folder": pl.Utf8,
                "first": pl.Int64,
                "invoice_count": pl.Int32,
            }
        )
        return Cut(empty, pl.Series("batch_id", [], dtype=pl.Utf8))
    room = max_bytes - len(BODY_START) - len(BODY_END)
    starts = np.flatnonzero(practice.ne_missing(practice.shift(1)).fill_null(True).to_numpy())
    ends = np.append(starts[1:], n).astype(np.int64)
    position = np.arange(n) - np.repeat(starts, ends - starts)
    # Cut by count alone: where every such batch fits in `room`, it is what the greedy cut by count and
    # bytes gives; else cut greedily.
    every = max(max_invoices, 1)
    local = position // every
    new = np.flatnonzero(position % every == 0)
    if sizes is not None and (
        max_invoices < 1
        or (np.add.reduceat(sizes, new) + len(SEPARATOR) * (np.diff(np.append(new, n)) - 1) > room).any()
    ):
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            local[start:end] = _greedy(sizes[start:end], max_invoices, room)
        new = np.flatnonzero((np.diff(local, prepend=-1) != 0) | (position == 0))
    practices = practice.gather(new).to_list()
    names = [p if folders is None else folders[p] for p in practices]
    batch_ids = [
        f"{name}-{next_sequence.get(p, 1) + s:06d}"
        for p, name, s in zip(practices, names, local[new].tolist(), strict=True)
    ]
    count = np.diff(np.append(new, n))
    batches = pl.DataFrame(
        {
            "batch_id": pl.Series(batch_ids, dtype=pl.Utf8),
            "practice_id": pl.Series(practices, dtype=pl.Utf8),
            "folder": pl.Series(names, dtype=pl.Utf8),
            "first": pl.Series(new, dtype=pl.Int64),
            "invoice_count": pl.Series(count, dtype=pl.Int32),
        }
    )
    return Cut(batches, batches["batch_id"].gather(pl.Series(np.repeat(np.arange(len(new)), count))))


@dataclass
class Batched:
    rendered: Rendered
    # batch_id, practice_id, folder, first (its first invoice in rendered.invoices), invoice_count
    batches: pl.DataFrame
    invoice_batch: pl.Series  # each rendered invoice's batch_id


def assign_batches(
    rendered: Rendered,
    next_sequence: dict[str, int],
    max_invoices: int = 50,
    max_bytes: int = 3_500_000,
    folders: Mapping[str, str] | None = None,
) -> Batched:
    """Cut each practice's rendered invoices into batches (cut_batches)."""
    cut = cut_batches(
        rendered.invoices["practice_id"],
        rendered.json_bytes(),
        next_sequence,
        max_invoices,
        max_bytes,
        folders,
    )
    return Batched(rendered, cut.batches, cut.invoice_batch)


@dataclass
class Written:
    # batch_id, practice_id, path, csv_path, invoice_count, line_count, bytes, unit_dp
    batches: pl.DataFrame
    ledger: pl.DataFrame  # the batched invoices' heads rows (as rendered) and their batch_id
    paths: list[str]
    # practice_id -> tax type codes without a display name: its batches have no CSV (csv_path null)
    csv_refused: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Files:
    """The files of some batches, still to write: each is a fixed opening, slices of text, a fixed end."""

    root: Path
    paths: list[str]  # xero/<folder>/<batch_id>.json, each followed by its .csv unless refused
    contents: list[list[bytes | memoryview]]


def plan_batch_files(batched: Batched, root: Path) -> tuple[Written, Files]:
    """What every batch's JSON and CSV under `root/xero/<folder>/` hold, and their rows, without writing
    them (write_files does, checking every body against Xero's schema first)."""
    rendered, batches = batched.rendered, batched.batches
    header = (",".join(CSV_HEADER) + CRLF).encode("utf-8")
    start, end = BODY_START.encode("utf-8"), BODY_END.encode("utf-8")
    first = batches["first"].to_numpy()
    line_from = rendered.lines[first]
    line_to = rendered.lines[np.append(first[1:], len(rendered.lines) - 1).astype(np.int64)]
    paths: list[str] = []
    contents: list[list[bytes | memoryview]] = []
    refused = rendered.csv_refused
    for batch_id, practice_id, folder, line, stop in zip(
        *batches.select("batch_id", "practice_id", "folder").get_columns(),
        line_from.tolist(),
        line_to.tolist(),
        strict=True,
    ):
        paths.append(f"xero/{folder}/{batch_id}.json")
        contents.append([start, *rendered.json.pieces(line, stop, trim=len(SEPARATOR)), end])
        if practice_id not in refused:
            paths.append(f"xero/{folder}/{batch_id}.csv")
            contents.append([header, *rendered.csv.pieces(line, stop)])
    json_bytes = rendered.json.before[line_to] - rendered.json.before[line_from] - len(SEPARATOR)
    fine = np.zeros(len(rendered.fine_unit) + 1, dtype=np.int64)
    np.cumsum(rendered.fine_unit, out=fine[1:])
    written = Written(
        batches=batches.select(
            "batch_id",
            "practice_id",
            pl.format("xero/{}/{}.json", "folder", "batch_id").alias("path"),
            pl.when(~pl.col("practice_id").is_in(pl.Series(list(refused), dtype=pl.Utf8).implode()))
            .then(pl.format("xero/{}/{}.csv", "folder", "batch_id"))
            .alias("csv_path"),
            "invoice_count",
            pl.Series("line_count", line_to - line_from, dtype=pl.Int32),
            pl.Series("bytes", json_bytes + len(start) + len(end), dtype=pl.Int64),
            pl.Series("unit_dp", np.where(fine[line_to] > fine[line_from], 4, 2), dtype=pl.Int16),
        ),
        ledger=rendered.invoices.with_columns(batched.invoice_batch.alias("batch_id")),
        paths=paths,
        csv_refused=refused,
    )
    return written, Files(root, paths, contents)


def write_files(files: Files) -> None:
    """Write planned files, each only inside `files.root` and each JSON body only once it validates
    against Xero's schema with format checking (file I/O releases the GIL: this may run on a thread of its
    own)."""
    confined = Confined(files.root)
    for path, content in zip(files.paths, files.contents, strict=True):
        target = confined.file(path)
        if path.endswith(".json"):
            body = b"".join(content)
            check_body(path.rsplit("/", 1)[1].removesuffix(".json"), body)
            content = [body]
        _write(target, content)


def _write(path: Path, pieces: list[bytes | memoryview]) -> None:
    """Create (or replace) a file holding the pieces one after the other, with one system call where it can."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o666)
    try:
        pieces = [memoryview(piece) for piece in pieces if len(piece)]
        while pieces:
            done = os.writev(descriptor, pieces[:512])
            while pieces and done >= len(pieces[0]):
                done -= len(pieces.pop(0))
            if done:
                pieces[0] = pieces[0][done:]
    finally:
        os.close(descriptor)


def write_batch_files(batched: Batched, root: Path) -> Written:
    """Write every batch's JSON and CSV under `root/xero/<folder>/` (plan_batch_files, write_files)."""
    written, files = plan_batch_files(batched, root)
    write_files(files)
    return written


def check_body(batch_id: str, body: bytes) -> None:
    """Raise XeroBodyInvalid unless the body validates against Xero's schema, formats included."""
    if fast_validator().is_valid(orjson.loads(body)):
        return
    errors = sorted(xero_validator().iter_errors(json.loads(body)), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise XeroBodyInvalid(
            f"batch {batch_id}: body breaks Xero's schema at {'/'.join(map(str, first.path))}: {first.message}"
        )
