"""Xero's sales-invoice importer reads a practice's CSV dates in its regional format and its tax types by
their display names: each practice's CSV files say them so (flows/xero/import_template.py), from its Xero
organisation's GET /TaxRates (the Xero double, a real server) when it has a connection, else from the CSV
settings file over Xero's standard names; the JSON bodies carry codes and ISO dates whatever the CSV says."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from flows.xero.files import CSV_HEADER
from flows.xero.import_template import STANDARD_TAX_RATE_NAMES, CsvSettingsError, read_csv_settings
from tests.doubles.xero import XeroDouble
from tests.source_builder import SourceBuilder

TRACKLINE = str(Path(sys.executable).with_name("trackline"))


def two_practices() -> SourceBuilder:
    """p1 and p2, the same shape: an invoice each of a bookkeeping line (template: OUTPUT2) and an adhoc
    line with its own tax type (p1 EXEMPTOUTPUT, p2 TAX009: a code Xero's standard rates do not have)."""
    b = SourceBuilder("p1")
    b.practice("p2")
    b.category("p2", "cat-partner", "Partner")
    b.option("p2", "opt-pa", "cat-partner", "Partner A")
    b.template("p2", "svc-book", "Monthly Bookkeeping", option=None)
    b.client("p2", "c1", "Zed Ltd", option="opt-pa")
    for practice, tax in (("p1", "EXEMPTOUTPUT"), ("p2", "TAX009")):
        b.invoice(practice, "i1", issue_date="2026-03-04", due_date="2026-04-05")
        b.line(practice, "i1", "l1")
        b.adhoc_line(practice, "i1", "l2", tax_type=tax)
    return b


def csv_rows(out: Path, practice: str) -> list[dict]:
    files = sorted((out / "xero" / practice).glob("*.csv"))
    rows = []
    for path in files:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            assert next(reader) == CSV_HEADER
            rows += [dict(zip(CSV_HEADER, row, strict=True)) for row in reader]
    return rows


def json_lines(out: Path, practice: str) -> list[tuple[str, str, str]]:
    found = []
    for path in sorted((out / "xero" / practice).glob("*.json")):
        for invoice in json.loads(path.read_text())["Invoices"]:
            found += [(invoice["Date"], invoice["DueDate"], line["TaxType"]) for line in invoice["LineItems"]]
    return found


def write_csv_settings(path: Path, document: dict) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_csv_dates_are_dd_mm_yyyy_and_tax_types_xeros_standard_uk_names_by_default(
    tmp_path, settings_for, run_plain
):
    settings = settings_for(two_practices().write(tmp_path / "src"), xero_csv_settings=tmp_path / "none.json")
    summary = run_plain(settings)
    rows = csv_rows(settings.out, "p1")
    assert {(r["*InvoiceDate"], r["*DueDate"]) for r in rows} == {("04/03/2026", "05/04/2026")}
    assert sorted(r["*TaxType"] for r in rows) == ["20% (VAT on Income)", "Exempt Income"]
    assert sorted(json_lines(settings.out, "p1")) == [
        ("2026-03-04", "2026-04-05", "EXEMPTOUTPUT"),
        ("2026-03-04", "2026-04-05", "OUTPUT2"),
    ]
    # p2's TAX009 has no name: no CSV for p2, its JSON as ever, and one warning naming the code.
    assert csv_rows(settings.out, "p2") == []
    assert sorted(t for *_, t in json_lines(settings.out, "p2")) == ["OUTPUT2", "TAX009"]
    assert len(summary.warnings) == 1
    assert "p2" in summary.warnings[0] and "TAX009" in summary.warnings[0]
    assert str(tmp_path / "none.json") in summary.warnings[0]


def test_the_settings_file_gives_a_practice_its_date_format_region_and_own_names(
    tmp_path, settings_for, run_plain
):
    document = {
        "p1": {"date_format": "MM/DD/YYYY", "tax_rates": {"OUTPUT2": "Standard 20%"}},
        "p2": {"region": "NZ", "tax_rates": {"TAX009": "Books 0%"}},
    }
    settings = settings_for(
        two_practices().write(tmp_path / "src"),
        xero_csv_settings=write_csv_settings(tmp_path / "xero_csv.json", document),
    )
    summary = run_plain(settings)
    assert summary.warnings == []
    p1 = csv_rows(settings.out, "p1")
    assert {(r["*InvoiceDate"], r["*DueDate"]) for r in p1} == {("03/04/2026", "04/05/2026")}
    assert sorted(r["*TaxType"] for r in p1) == ["Exempt Income", "Standard 20%"]
    p2 = csv_rows(settings.out, "p2")
    assert {r["*InvoiceDate"] for r in p2} == {"04/03/2026"}
    assert sorted(r["*TaxType"] for r in p2) == [STANDARD_TAX_RATE_NAMES["NZ"]["OUTPUT2"], "Books 0%"]


@pytest.mark.parametrize(
    ("document", "said"),
    [
        (
            {"p1": {"date_format": "YYYY-MM-DD"}},
            "date_format 'YYYY-MM-DD' is not one of DD/MM/YYYY, MM/DD/YYYY",
        ),
        ({"p1": {"region": "US"}}, "region 'US' is not one of UK, AU, NZ"),
        ({"p1": {"tax_rates": {"OUTPUT2": ""}}}, "tax_rates must map each tax type code to its display name"),
        ({"p1": {"dates": "DD/MM/YYYY"}}, "unknown member 'dates'"),
    ],
)
def test_a_settings_file_it_cannot_use_is_named_with_the_practice_and_what_is_wrong(tmp_path, document, said):
    path = write_csv_settings(tmp_path / "xero_csv.json", document)
    with pytest.raises(CsvSettingsError) as stopped:
        read_csv_settings(path)
    assert str(stopped.value).startswith(f"{path}: practice 'p1': {said}")


def test_a_settings_file_it_cannot_use_stops_the_run_in_one_line_before_anything_changes(
    tmp_path, settings_for
):
    settings = settings_for(
        two_practices().write(tmp_path / "src"),
        xero_csv_settings=write_csv_settings(tmp_path / "xero_csv.json", {"p1": {"region": "US"}}),
    )
    command = [TRACKLINE, "backfill", "--emit-batches", "--source", str(settings.source)]
    command += ["--warehouse", str(settings.warehouse), "--out", str(settings.out)]
    env = {"TRACKLINE_XERO_CSV_SETTINGS": str(settings.xero_csv_settings), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"trackline: {settings.xero_csv_settings}: practice 'p1': region 'US'")
    assert not settings.warehouse.exists() and not settings.out.exists()


def test_a_practice_with_a_connection_gets_its_organisations_names_from_get_taxrates(
    tmp_path, settings_for, run_plain
):
    connections = tmp_path / "connections.json"
    connections.write_text(
        json.dumps(
            {
                "p2": {
                    "tenant_id": "tenant-p2",
                    "client_id": "app-p2",
                    "client_secret": "s3cret",
                    "grant": "client_credentials",
                }
            }
        )
    )
    connections.chmod(0o600)
    with XeroDouble(speed=60) as xero:
        xero.add_organisation("tenant-p2", client_id="app-p2", client_secret="s3cret")
        xero.add_tax_rate("tenant-p2", "OUTPUT2", "20% (VAT on Income)", "20")
        xero.add_tax_rate("tenant-p2", "TAX009", "Publications (0%)", "0")
        settings = settings_for(
            two_practices().write(tmp_path / "src"),
            xero_connections=connections,
            xero_api_url=xero.api_url,
            xero_token_url=xero.token_url,
            xero_csv_settings=tmp_path / "none.json",
        )
        summary = run_plain(settings)
        asked = [r for r in xero.requests if r["path"].lower().endswith("/taxrates")]
    assert summary.warnings == []
    assert len(asked) == 1 and asked[0]["tenant_id"] == "tenant-p2"
    assert sorted(r["*TaxType"] for r in csv_rows(settings.out, "p2")) == [
        "20% (VAT on Income)",
        "Publications (0%)",
    ]
    # p1 has no connection: Xero's standard UK names.
    assert sorted(r["*TaxType"] for r in csv_rows(settings.out, "p1")) == [
        "20% (VAT on Income)",
        "Exempt Income",
    ]
