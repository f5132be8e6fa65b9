"""Xero batch files: a JSON body for POST /Invoices and the same invoices in the CSV import template.

Amounts are written from Decimals as JSON numbers (simplejson, use_decimal) so they are exact to the cent.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

import jsonschema
import polars as pl
import simplejson

SCHEMA_PATH = Path(__file__).resolve().parent / "xero" / "invoices.schema.json"
CSV_HEADER = (
    "*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,PORegion,"
    "POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,Total,InventoryItemCode,*Description,"
    "*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,TaxAmount,TrackingName1,TrackingOption1,TrackingName2,"
    "TrackingOption2,Currency,BrandingTheme"
).split(",")
CENT = Decimal("0.01")


class XeroBodyInvalid(RuntimeError):
    """A body broke Xero's schema: a bug, so the run stops and publishes nothing."""


@cache
def xero_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def decimal_text(value: Decimal) -> Decimal:
    """At least 2 places, no trailing zeros beyond them, never an exponent: 150.0000 -> 150.00, 0.1250 -> 0.125."""
    if value == value.quantize(CENT):
        return value.quantize(CENT)
    return value.normalize() if value.normalize().as_tuple().exponent >= -4 else value


@dataclass
class Batch:
    batch_id: str
    practice_id: str
    invoice_ids: list[str]
    body: bytes
    csv_text: str
    line_count: int


def invoice_body(head: dict, items: list[dict]) -> dict:
    contact = {"ContactID": head["contact_id"]} if head["contact_id"] else {"Name": head["contact_name"]}
    body = {
        "Type": "ACCREC",
        "Contact": contact,
        "InvoiceNumber": head["invoice_number"],
        "Reference": head["reference"],
        "Date": head["issue_date"].isoformat(),
        "DueDate": head["due_date"].isoformat(),
        "CurrencyCode": head["currency"],
        "Status": head["xero_status"],
        "LineAmountTypes": head["line_amount_types"],
        "LineItems": [line_item(item) for item in items],
    }
    if body["Reference"] is None:
        del body["Reference"]
    return body


def line_item(item: dict) -> dict:
    tracking = [
        {"Name": item[f"tracking{slot}_name"], "Option": item[f"tracking{slot}_option"]}
        for slot in (1, 2)
        if item[f"tracking{slot}_name"] is not None
    ]
    return {
        "Description": item["description"],
        "Quantity": decimal_text(item["quantity"]),
        "UnitAmount": decimal_text(item["unit_amount"]),
        "AccountCode": item["account_code"],
        "TaxType": item["tax_type"],
        "LineAmount": item["line_amount"].quantize(CENT),
        "Tracking": tracking,
    }


def dumps(body: dict) -> bytes:
    return simplejson.dumps(body, use_decimal=True, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def csv_rows(head: dict, items: list[dict]) -> list[list[str]]:
    rows = []
    for item in items:
        row = dict.fromkeys(CSV_HEADER, "")
        row["*ContactName"] = head["contact_name"]
        row["*InvoiceNumber"] = head["invoice_number"]
        row["Reference"] = head["reference"] or ""
        row["*InvoiceDate"] = head["issue_date"].isoformat()
        row["*DueDate"] = head["due_date"].isoformat()
        row["*Description"] = item["description"]
        row["*Quantity"] = str(decimal_text(item["quantity"]))
        row["*UnitAmount"] = str(decimal_text(item["unit_amount"]))
        row["*AccountCode"] = item["account_code"]
        row["*TaxType"] = item["tax_type"]
        row["TrackingName1"] = item["tracking1_name"] or ""
        row["TrackingOption1"] = item["tracking1_option"] or ""
        row["TrackingName2"] = item["tracking2_name"] or ""
        row["TrackingOption2"] = item["tracking2_option"] or ""
        row["Currency"] = head["currency"]
        rows.append([row[c] for c in CSV_HEADER])
    return rows


def render_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def plan_batches(
    heads: pl.DataFrame,
    items: pl.DataFrame,
    next_sequence: dict[str, int],
    max_invoices: int = 50,
    max_bytes: int = 3_500_000,
) -> list[Batch]:
    """Group each practice's invoices (in invoice order) into batches of at most `max_invoices` invoices
    and `max_bytes` of JSON, numbering them <practice_id>-<sequence> from `next_sequence`."""
    lines_of: dict[tuple[str, str], list[dict]] = {}
    for item in items.sort(["practice_id", "invoice_id", "line_no"]).iter_rows(named=True):
        lines_of.setdefault((item["practice_id"], item["invoice_id"]), []).append(item)
    batches: list[Batch] = []
    envelope = len(b'{\n  "Invoices": [\n  ]\n}\n')
    for (practice_id,), group in heads.sort(["practice_id", "invoice_id"]).group_by(
        ["practice_id"], maintain_order=True
    ):
        sequence = next_sequence.get(practice_id, 1)
        pending: list[tuple[dict, list[dict], dict, int]] = []
        size = envelope

        def flush() -> None:
            nonlocal sequence, pending, size
            if not pending:
                return
            batch_id = f"{practice_id}-{sequence:06d}"
            body = dumps({"Invoices": [p[2] for p in pending]})
            rows = [row for head, its, _, _ in pending for row in csv_rows(head, its)]
            batches.append(
                Batch(batch_id, practice_id, [p[0]["invoice_id"] for p in pending], body, render_csv(rows), len(rows))
            )
            sequence += 1
            pending, size = [], envelope

        for head in group.iter_rows(named=True):
            its = lines_of[(practice_id, head["invoice_id"])]
            invoice = invoice_body(head, its)
            invoice_size = len(dumps(invoice)) + 4
            if pending and (len(pending) >= max_invoices or size + invoice_size > max_bytes):
                flush()
            pending.append((head, its, invoice, invoice_size))
            size += invoice_size
        flush()
    return batches


def check_body(batch: Batch) -> None:
    body = json.loads(batch.body)
    errors = sorted(xero_validator().iter_errors(body), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        raise XeroBodyInvalid(
            f"batch {batch.batch_id}: body breaks Xero's schema at {'/'.join(map(str, first.path))}: {first.message}"
        )


def write_batch(batch: Batch, root: Path) -> tuple[str, str]:
    """Write the JSON and CSV of a batch under `root`; return their paths relative to it."""
    folder = root / "xero" / batch.practice_id
    folder.mkdir(parents=True, exist_ok=True)
    json_rel = f"xero/{batch.practice_id}/{batch.batch_id}.json"
    csv_rel = f"xero/{batch.practice_id}/{batch.batch_id}.csv"
    (root / json_rel).write_bytes(batch.body)
    (root / csv_rel).write_text(batch.csv_text, encoding="utf-8", newline="")
    return json_rel, csv_rel
