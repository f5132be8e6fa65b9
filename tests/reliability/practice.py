"""The practice every reliability case starts from, as rows of text, and writing sources to disk.

Every practice uses the same ids (clients c1 c2, options o-a1 ..., members m1 m2, services svc-1 svc-2,
invoices i1 i2), but each of its names carries the practice's marker `«<practice_id>»`, so a name that
crosses practices is visible anywhere it lands.

Two invoices per practice that depend on disjoint rows, so a case can break what one needs and show the
other is untouched:
- i1 (client c1, one service line on svc-1): slot 1 Partner/Alice from c1, slot 2 Department/Books from svc-1;
- i2 (client c2, a service line on svc-2, which has no option, and an adhoc line): slot 1 Region/North from
  c2, slot 2 Office/Leeds from c2's owner m2 on both lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import polars as pl

from transforms.parse_sources import TABLES

Source = dict[str, list[dict[str, str | None]]]


def marker(practice_id: str) -> str:
    return f"«{practice_id}»"


def empty_source() -> Source:
    return {table: [] for table in TABLES}


def row(table: str, **values: str | None) -> dict[str, str | None]:
    unknown = set(values) - set(TABLES[table])
    assert not unknown, f"{table} has no column {unknown}"
    return {column: values.get(column) for column in TABLES[table]}


def add_practice(source: Source, pid: str, ledger: str = "xero") -> Source:
    """One practice on Xero with two invoices, i1 and i2 (see the module docstring)."""
    m = marker(pid)
    rows = source
    rows["practices"].append(row("practices", practice_id=pid, name=f"Practice {m}", ledger=ledger))
    for cat, name in (
        ("cat-a", "Partner"),
        ("cat-b", "Department"),
        ("cat-c", "Region"),
        ("cat-d", "Office"),
    ):
        rows["tracking_categories"].append(
            row(
                "tracking_categories",
                practice_id=pid,
                tracking_category_id=cat,
                name=f"{name} {m}",
                status="ACTIVE",
            )
        )
    for opt, cat, name in (
        ("o-a1", "cat-a", "Alice"),
        ("o-b1", "cat-b", "Books"),
        ("o-c2", "cat-c", "North"),
        ("o-d2", "cat-d", "Leeds"),
    ):
        rows["tracking_options"].append(
            row(
                "tracking_options",
                practice_id=pid,
                tracking_option_id=opt,
                tracking_category_id=cat,
                name=f"{name} {m}",
                status="ACTIVE",
            )
        )
    rows["team_members"] += [
        row("team_members", practice_id=pid, team_member_id="m1", name=f"Mia {m}", tracking_option_id="o-b1"),
        row("team_members", practice_id=pid, team_member_id="m2", name=f"Max {m}", tracking_option_id="o-d2"),
    ]
    rows["service_templates"] += [
        row(
            "service_templates",
            practice_id=pid,
            service_template_id="svc-1",
            name=f"Bookkeeping {m}",
            tracking_option_id="o-b1",
            account_code="200",
            tax_type="OUTPUT2",
        ),
        row(
            "service_templates",
            practice_id=pid,
            service_template_id="svc-2",
            name=f"Payroll {m}",
            tracking_option_id=None,
            account_code="400",
            tax_type="OUTPUT2",
        ),
    ]
    rows["clients"] += [
        row(
            "clients",
            practice_id=pid,
            client_id="c1",
            name=f"Acme {m}",
            owner_team_member_id="m1",
            tracking_option_id="o-a1",
            consolidate_lines="false",
        ),
        row(
            "clients",
            practice_id=pid,
            client_id="c2",
            name=f"Bolt {m}",
            owner_team_member_id="m2",
            tracking_option_id="o-c2",
        ),
    ]
    for invoice, client in (("i1", "c1"), ("i2", "c2")):
        rows["invoices"].append(
            row(
                "invoices",
                practice_id=pid,
                invoice_id=invoice,
                client_id=client,
                invoice_number=f"INV-{m}-{invoice}",
                issue_date="2026-01-15",
                due_date="2026-02-14",
                currency="GBP",
                reference=f"Ref {m}",
                status="approved",
                updated_at="2026-01-15T09:00:00Z",
            )
        )
    rows["invoice_lines"] += [
        row(
            "invoice_lines",
            practice_id=pid,
            invoice_id="i1",
            line_id="l1",
            position="1",
            line_type="service",
            service_template_id="svc-1",
            description=f"Books work {m}",
            quantity="1",
            unit_amount="100.00",
        ),
        row(
            "invoice_lines",
            practice_id=pid,
            invoice_id="i2",
            line_id="l1",
            position="1",
            line_type="service",
            service_template_id="svc-2",
            description=f"Payroll work {m}",
            quantity="2",
            unit_amount="50.00",
        ),
        row(
            "invoice_lines",
            practice_id=pid,
            invoice_id="i2",
            line_id="l2",
            position="2",
            line_type="adhoc",
            description=f"Adhoc work {m}",
            quantity="1",
            unit_amount="25.50",
            account_code="200",
            tax_type="OUTPUT2",
        ),
    ]
    return source


# The row of each table that i2 (and only i2) depends on; for practices, both invoices depend on it.
VICTIM_ROW: dict[str, dict[str, str]] = {
    "practices": {},
    "tracking_categories": {"tracking_category_id": "cat-c"},
    "tracking_options": {"tracking_option_id": "o-c2"},
    "team_members": {"team_member_id": "m2"},
    "service_templates": {"service_template_id": "svc-2"},
    "clients": {"client_id": "c2"},
    "invoices": {"invoice_id": "i2"},
    "invoice_lines": {"invoice_id": "i2", "line_id": "l1"},
}
VICTIMS: dict[str, tuple[str, ...]] = {table: ("i2",) for table in TABLES} | {"practices": ("i1", "i2")}


def find_row(source: Source, table: str, pid: str, keys: dict[str, str]) -> dict[str, str | None]:
    found = [r for r in source[table] if r["practice_id"] == pid and all(r[k] == v for k, v in keys.items())]
    assert len(found) == 1, f"{table} {pid} {keys}: {len(found)} rows"
    return found[0]


def csv_bytes(
    rows: list[dict[str, str | None]],
    columns: list[str],
    *,
    newline: str = "\n",
    quote_all: bool = False,
) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(
        buffer, lineterminator=newline, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    )
    writer.writerow(columns)
    for r in rows:
        writer.writerow(["" if r.get(c) is None else r[c] for c in columns])
    return buffer.getvalue().encode("utf-8")


def write_source(
    source: Source,
    folder: Path,
    *,
    parquet: tuple[str, ...] = (),
    typed_parquet: bool = False,
    transform: Callable[[str, bytes], bytes] | None = None,
    columns: Callable[[str, list[str]], list[str]] | None = None,
) -> Path:
    """Write each table as CSV (or Parquet for tables in `parquet`).

    `transform(table, bytes)` rewrites a CSV's bytes (BOM, CRLF, corruption); `columns(table, names)` picks
    the header (extra, missing or reordered columns); `typed_parquet` writes Parquet columns with the types
    a real export would use (dates, floats, booleans, timestamps) instead of text.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for table, spec in TABLES.items():
        names = list(spec)
        header = columns(table, names) if columns else names
        rows = source[table]
        if table in parquet:
            frame = pl.DataFrame(
                [{c: r.get(c) for c in header} for r in rows],
                schema={c: pl.Utf8 for c in header},
                orient="row",
            )
            if typed_parquet:
                frame = frame.with_columns(_natural_types(table, header))
            frame.write_parquet(folder / f"{table}.parquet")
            continue
        data = csv_bytes(rows, header)
        if transform:
            data = transform(table, data)
        (folder / f"{table}.csv").write_bytes(data)
    return folder


def _natural_types(table: str, header: list[str]) -> list[pl.Expr]:
    """How an app's Parquet export would type the columns."""
    kinds = {name: col.kind for name, col in TABLES[table].items() if name in header}
    out = []
    for name, kind in kinds.items():
        column = pl.col(name)
        if kind == "date":
            out.append(column.str.to_date("%Y-%m-%d", strict=False))
        elif kind == "timestamp":
            out.append(
                column.str.to_datetime(
                    "%Y-%m-%dT%H:%M:%S%#z", time_zone="UTC", strict=False
                ).dt.convert_time_zone("Europe/London")
            )
        elif kind == "decimal":
            out.append(column.cast(pl.Float64, strict=False))
        elif kind == "int":
            out.append(column.cast(pl.Int64, strict=False))
        elif kind == "bool":
            out.append(
                column.replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
            )
    return out
