"""The batch files as flows.xero.files lays them out: every line's text in one buffer, each file written
from slices of it. Checked against a plain Python rendering of the same rules, and the cut by bytes
(rare: only huge invoices reach it) against the greedy cut it must equal."""

from __future__ import annotations

import json
import random
from datetime import date
from decimal import Decimal

import duckdb
import numpy as np
import polars as pl
import pytest

from flows.xero import files as xf
from flows.xero.import_template import CsvTemplates, PracticeTemplate

SHORT = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}


def json_text(value: str | None) -> str:
    if value is None:
        return "null"
    out = []
    for char in value:
        if char in '\\"':
            out.append("\\" + char)
        elif ord(char) < 32:
            out.append(SHORT.get(ord(char), f"\\u{ord(char):04x}"))
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def csv_text(value) -> str:
    text = "" if value is None else str(value)
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"\r\n') else text


def amount_text(value: Decimal) -> str:
    text = f"{value:.4f}"
    return text[:-2] if text.endswith("00") else text[:-1] if text.endswith("0") else text


def reference(heads: list[dict], items: list[dict]) -> tuple[list[str], list[str]]:
    """Each invoice's JSON object and CSV rows, by the rules written out by hand."""
    objects, rows = [], []
    for head in sorted(heads, key=lambda h: (h["practice_id"], h["invoice_id"])):
        lines = sorted(
            (
                i
                for i in items
                if (i["practice_id"], i["invoice_id"]) == (head["practice_id"], head["invoice_id"])
            ),
            key=lambda i: i["line_no"],
        )
        if not lines:
            continue
        contact = (
            '{"ContactID":' + json_text(head["contact_id"]) + "}"
            if head["contact_id"] is not None
            else '{"Name":' + json_text(head["contact_name"]) + "}"
        )
        reference_part = (
            "" if head["reference"] is None else '"Reference":' + json_text(head["reference"]) + ","
        )
        items_json = []
        for line in lines:
            tracking = [
                '{"Name":'
                + json_text(line[f"tracking{s}_name"])
                + ',"Option":'
                + json_text(line[f"tracking{s}_option"])
                + "}"
                for s in (1, 2)
                if line[f"tracking{s}_name"] is not None
            ]
            items_json.append(
                '{"Description":'
                + json_text(line["description"])
                + ',"Quantity":'
                + amount_text(line["quantity"])
                + ',"UnitAmount":'
                + amount_text(line["unit_amount"])
                + ',"AccountCode":'
                + json_text(line["account_code"])
                + ',"TaxType":'
                + json_text(line["tax_type"])
                + ',"LineAmount":'
                + f"{line['line_amount']:.2f}"
                + ',"Tracking":['
                + ",".join(tracking)
                + "]}"
            )
            rows.append(
                ",".join(
                    [csv_text(head["contact_name"])]
                    + [""] * 9
                    + [csv_text(head["invoice_number"]), csv_text(head["reference"])]
                    + [csv_date(head, "issue_date"), csv_date(head, "due_date"), "", ""]
                    + [
                        csv_text(line["description"]),
                        amount_text(line["quantity"]),
                        amount_text(line["unit_amount"]),
                    ]
                    + ["", csv_text(line["account_code"]), csv_text(TAX_NAMES[line["tax_type"]]), ""]
                    + [csv_text(line[f"tracking{s}_{k}"]) for s in (1, 2) for k in ("name", "option")]
                    + [head["currency"], ""]
                )
            )
        objects.append(
            '{"Type":"ACCREC","Contact":'
            + contact
            + ',"InvoiceNumber":'
            + json_text(head["invoice_number"])
            + ","
            + reference_part
            + '"Date":"'
            + head["issue_date"].isoformat()
            + '","DueDate":"'
            + head["due_date"].isoformat()
            + '","CurrencyCode":'
            + json_text(head["currency"])
            + ',"Status":'
            + json_text(head["xero_status"])
            + ',"LineAmountTypes":'
            + json_text(head["line_amount_types"])
            + ',"LineItems":['
            + ",".join(items_json)
            + "]}"
        )
    return objects, rows


# The CSV's dates in each practice's format (p0 a US organisation), its tax types by their display names.
TAX_NAMES = {"OUTPUT2": "20% (VAT on Income)", 'NO"NE': 'No "VAT", none'}
DATE_FORMATS = {"p0": "%m/%d/%Y", "p1": "%d/%m/%Y", "p2": "%d/%m/%Y"}
TEMPLATES = CsvTemplates(
    PracticeTemplate("DD/MM/YYYY", TAX_NAMES, "the test"),
    {"p0": PracticeTemplate("MM/DD/YYYY", TAX_NAMES, "the test")},
)


def csv_date(head: dict, column: str) -> str:
    return head[column].strftime(DATE_FORMATS[head["practice_id"]])


HEAD_SCHEMA = {
    "practice_id": pl.Utf8,
    "invoice_id": pl.Utf8,
    "invoice_number": pl.Utf8,
    "contact_id": pl.Utf8,
    "contact_name": pl.Utf8,
    "reference": pl.Utf8,
    "issue_date": pl.Date,
    "due_date": pl.Date,
    "currency": pl.Utf8,
    "xero_status": pl.Utf8,
    "line_amount_types": pl.Utf8,
    "line_count": pl.Int32,
}
LINE_SCHEMA = {
    "practice_id": pl.Utf8,
    "invoice_id": pl.Utf8,
    "line_no": pl.Int32,
    "description": pl.Utf8,
    "quantity": pl.Decimal(18, 4),
    "unit_amount": pl.Decimal(18, 4),
    "line_amount": pl.Decimal(18, 2),
    "account_code": pl.Utf8,
    "tax_type": pl.Utf8,
    "tracking1_name": pl.Utf8,
    "tracking1_option": pl.Utf8,
    "tracking2_name": pl.Utf8,
    "tracking2_option": pl.Utf8,
}
AWKWARD = [
    "plain",
    'say "hi", then\nleave',
    "back\\slash\ttab\r\x01\x1f\x7f",
    "café — 東京 ✓",
    "",
    "a,b",
    "x" * 40,
]


def sample(invoices: int = 60, seed: int = 7) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    heads, items = [], []
    for k in range(invoices):
        practice = f"p{k % 3}"
        invoice = f"i{k:04d}"
        heads.append(
            {
                "practice_id": practice,
                "invoice_id": invoice,
                "invoice_number": rng.choice(["INV-1", 'INV,"2"', "INV\n3"]) + str(k),
                "contact_id": rng.choice(
                    [None, "501813ae-fe4d-4e68-8540-97be01fb4d7f", "5D6C2E0A-1B2C-4D3E-8F90-A1B2C3D4E5F6"]
                ),
                "contact_name": rng.choice(AWKWARD),
                "reference": rng.choice([None, None, "PO-1", "PO, 2"]),
                "issue_date": date(2024, 1, 1 + k % 28),
                "due_date": date(2024 + k % 3, 2, 1 + k % 27),
                "currency": "GBP",
                "xero_status": "AUTHORISED",
                "line_amount_types": "Exclusive",
                "line_count": 0,
            }
        )
        count = 0 if k == 5 else rng.randint(1, 6)  # invoice 5 has no lines: it gets no batch
        heads[-1]["line_count"] = count
        for line_no in rng.sample(range(1, count + 1), count):  # out of order
            name1 = rng.choice([None, "Partner", "Dé,pt"])
            name2 = rng.choice([None, "Region"])
            items.append(
                {
                    "practice_id": practice,
                    "invoice_id": invoice,
                    "line_no": line_no,
                    "description": rng.choice(AWKWARD),
                    "quantity": Decimal(rng.choice(["1", "2.5", "0.125", "-3", "1234.5678", "0.0100"])),
                    "unit_amount": Decimal(rng.choice(["150", "0.1250", "99.99", "-0.0001", "7.1"])),
                    "line_amount": Decimal(rng.choice(["1.00", "-2.50", "1234567.89", "0.00"])),
                    "account_code": rng.choice(["200", "2,00", "21\t5"]),
                    "tax_type": rng.choice(["OUTPUT2", 'NO"NE']),
                    "tracking1_name": name1,
                    "tracking1_option": None if name1 is None else rng.choice(["Isla", "O'Neill, Q", "é"]),
                    "tracking2_name": name2,
                    "tracking2_option": None if name2 is None else rng.choice(["South", "N\\E"]),
                }
            )
    return heads, items


def render(heads: list[dict], items: list[dict], tmp_path, max_invoices=50, max_bytes=3_500_000):
    head_frame = pl.DataFrame(heads, schema=HEAD_SCHEMA).sort(xf.INVOICE)
    keys = head_frame.select(xf.INVOICE).with_row_index("invoice")
    item_frame = (
        pl.DataFrame(items, schema=LINE_SCHEMA)
        .join(keys, on=xf.INVOICE)
        .sample(fraction=1.0, shuffle=True, seed=1)
    )
    rendered = xf.render_invoices(head_frame, item_frame, templates=TEMPLATES)
    return xf.write_batch_files(xf.assign_batches(rendered, {}, max_invoices, max_bytes), tmp_path)


def test_files_hold_every_invoice_as_the_rules_spell_it(tmp_path):
    heads, items = sample()
    written = render(heads, items, tmp_path, max_invoices=7)
    objects, rows = reference(heads, items)
    bodies, csv_rows = [], []
    for path, csv_path in zip(written.batches["path"], written.batches["csv_path"], strict=True):
        body = (tmp_path / path).read_bytes()
        assert body.startswith(xf.BODY_START.encode()) and body.endswith(xf.BODY_END.encode())
        bodies += body[len(xf.BODY_START) : -len(xf.BODY_END)].decode().split(xf.SEPARATOR)
        json.loads(body)
        text = (tmp_path / csv_path).read_bytes().decode()
        header, _, rest = text.partition("\r\n")
        assert header == ",".join(xf.CSV_HEADER) and rest.endswith("\r\n")
        csv_rows.append(rest)
    assert bodies == objects
    assert "".join(csv_rows) == "".join(row + "\r\n" for row in rows)
    assert written.batches["bytes"].to_list() == [
        (tmp_path / p).stat().st_size for p in written.batches["path"]
    ]
    assert written.ledger.height == len(objects) == len(heads) - 1
    assert written.batches["invoice_count"].max() <= 7


def test_a_text_column_reads_back_from_its_slices():
    values = [
        "",
        "short",
        None,
        "twelve bytes",
        "thirteen byte",
        "x" * 100,
        "é" * 7,
        "",
        "last one here",
    ] * 40
    series = pl.concat([pl.Series(values[:100]), pl.Series(values[100:])], rechunk=False)
    text = xf.Text(series.fill_null(""))
    flat = [v or "" for v in values]
    for first, end in [(0, len(flat)), (3, 4), (5, 250), (99, 101), (17, 18), (0, 1)]:
        assert b"".join(text.pieces(first, end)).decode() == "".join(flat[first:end])
        assert text.before[end] - text.before[first] == len("".join(flat[first:end]).encode())
    assert b"".join(text.pieces(4, 6, trim=3)).decode() == ("thirteen byte" + "x" * 100)[:-3]


def greedy(practices: list[str], sizes: list[int], max_invoices: int, max_bytes: int) -> list[str]:
    """The cut as the step has always made it, invoice by invoice."""
    room = max_bytes - len(xf.BODY_START) - len(xf.BODY_END)
    out, state = [], {}
    for practice, size in zip(practices, sizes, strict=True):
        sequence, count, used = state.get(practice, (1, 0, 0))
        if count and (count >= max_invoices or used + len(xf.SEPARATOR) + size > room):
            sequence, count, used = sequence + 1, 0, 0
        used += size + (len(xf.SEPARATOR) if count else 0)
        state[practice] = (sequence, count + 1, used)
        out.append(f"{practice}-{sequence:06d}")
    return out


@pytest.mark.parametrize("seed", range(6))
def test_the_cut_is_the_greedy_cut_by_count_and_bytes(seed):
    rng = random.Random(seed)
    practices = sorted(rng.choice(["a", "b", "c"]) for _ in range(400))
    huge = seed % 2 == 0
    sizes = [rng.choice([300, 2000, 9000 if huge else 400]) for _ in practices]
    max_invoices, max_bytes = rng.choice([(5, 20_000), (50, 40_000), (3, 3_500_000), (1, 100)])
    cut = xf.cut_batches(pl.Series(practices), np.array(sizes), {}, max_invoices, max_bytes)
    assert cut.invoice_batch.to_list() == greedy(practices, sizes, max_invoices, max_bytes)
    by_count = xf.cut_batches(pl.Series(practices), None, {"b": 7}, max_invoices, max_bytes)
    assert by_count.invoice_batch.to_list() == [
        p + "-" + f"{int(b.split('-')[1]) + (6 if p == 'b' else 0):06d}"
        for p, b in zip(practices, greedy(practices, [0] * len(sizes), max_invoices, 10**12), strict=True)
    ]


def test_batches_cut_by_bytes_are_recorded_as_written(tmp_path, run_plain):
    """A byte limit that cuts batches before their invoice count does: the rows recorded by count are
    corrected, and every table agrees with the files."""
    from flows.settings import Settings
    from tests.conftest import SAMPLE

    settings = Settings(
        source=SAMPLE, warehouse=tmp_path / "w.duckdb", out=tmp_path / "out", batch_max_bytes=6_000
    )
    summary = run_plain(settings, practices=("northgate", "keystone"))
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        batches = pl.from_arrow(con.execute("select * from xero_batches").fetch_arrow_table())
        ledger = pl.from_arrow(
            con.execute("select practice_id, invoice_id, batch_id from export_ledger").fetch_arrow_table()
        )
        invoices = pl.from_arrow(
            con.execute(
                "select invoice_number, batch_id from xero_invoices where batch_id is not null"
            ).fetch_arrow_table()
        )
        lines = con.execute(
            """select count(*) from xero_line_items l join xero_invoices i using (practice_id, invoice_id)
               where l.batch_id is distinct from i.batch_id"""
        ).fetchone()[0]
    finally:
        con.close()
    assert summary.batches_written == batches.height > 2
    assert ledger.height == invoices.height == summary.invoices_batched
    assert ledger.select("practice_id", "invoice_id").n_unique() == ledger.height
    assert lines == 0
    in_files = {}
    cut_by_bytes = False
    for row in batches.iter_rows(named=True):
        body = (settings.out / row["path"]).read_bytes()
        assert len(body) == row["bytes"]
        numbers = [i["InvoiceNumber"] for i in json.loads(body)["Invoices"]]
        assert len(numbers) == row["invoice_count"]
        assert len(body) <= 6_000 or len(numbers) == 1
        cut_by_bytes |= len(numbers) < 50
        in_files.update(dict.fromkeys(numbers, row["batch_id"]))
    assert cut_by_bytes
    assert dict(invoices.iter_rows()) == in_files


def test_a_practice_with_a_tax_type_it_has_no_name_for_gets_no_csv_and_the_same_json(tmp_path):
    heads, items = sample()
    for line in items:
        if line["practice_id"] == "p1" and line["tax_type"] == "OUTPUT2":
            line["tax_type"] = "TAX009"
    named = {**TAX_NAMES, "TAX009": "Custom"}
    all_named = CsvTemplates(PracticeTemplate("DD/MM/YYYY", named, "the test"))
    some_named = CsvTemplates(PracticeTemplate("DD/MM/YYYY", TAX_NAMES, "the test"))
    written = {}
    for name, templates in (("all", all_named), ("some", some_named)):
        head_frame = pl.DataFrame(heads, schema=HEAD_SCHEMA).sort(xf.INVOICE)
        keys = head_frame.select(xf.INVOICE).with_row_index("invoice")
        item_frame = pl.DataFrame(items, schema=LINE_SCHEMA).join(keys, on=xf.INVOICE)
        rendered = xf.render_invoices(head_frame, item_frame, templates=templates)
        written[name] = xf.write_batch_files(xf.assign_batches(rendered, {}, 7), tmp_path / name)
    some = written["some"]
    assert some.csv_refused == {"p1": ["TAX009"]}
    by_practice = dict(zip(some.batches["batch_id"], some.batches["csv_path"], strict=True))
    assert all((path is None) == batch.startswith("p1-") for batch, path in by_practice.items())
    assert not list((tmp_path / "some").rglob("p1-*.csv"))
    assert sorted(p.name for p in (tmp_path / "some").rglob("*.csv")) == sorted(
        p.name for p in (tmp_path / "all").rglob("*.csv") if not p.name.startswith("p1-")
    )
    for path in written["all"].batches["path"]:
        assert (tmp_path / "some" / path).read_bytes() == (tmp_path / "all" / path).read_bytes()
