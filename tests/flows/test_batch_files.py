"""What a batch file says about itself and where it may go: unit amounts of more than 2 places are
recorded with the batch (Xero reads them right only with unitdp=4), every body is checked against Xero's
schema with formats, and no write leaves the run's folders."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from flows.outputs import Confined, PathOutsideOutput
from flows.xero.files import Files, XeroBodyInvalid, check_body, write_files
from tests.source_builder import SourceBuilder


def _batches(settings) -> dict[str, tuple[int, list[dict]]]:
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        rows = con.execute("select batch_id, unit_dp, path from xero_batches").fetchall()
    finally:
        con.close()
    return {b: (dp, json.loads((settings.out / p).read_text())["Invoices"]) for b, dp, p in rows}


def test_a_batch_with_unit_amounts_of_four_places_says_it_needs_unitdp_4(tmp_path, settings_for, run_plain):
    b = SourceBuilder()
    b.practice("p2")
    for pid in ("p2",):
        b.category(pid, "cat-partner", "Partner")
        b.option(pid, "opt-pa", "cat-partner", "Partner A")
        b.template(pid, "svc-book", "Monthly Bookkeeping", option=None)
        b.client(pid, "c1", "Acme Widgets Ltd", option="opt-pa")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", quantity="3", unit_amount="12.3456")
    b.invoice("p2", "i1")
    b.line("p2", "i1", "l1", quantity="3", unit_amount="12.30")
    settings = settings_for(b.write(tmp_path / "source"))
    run_plain(settings)

    batches = _batches(settings)
    assert batches["p1-000001"][0] == 4
    assert batches["p1-000001"][1][0]["LineItems"][0]["UnitAmount"] == 12.3456
    assert batches["p2-000001"][0] == 2


def test_every_body_is_checked_against_xeros_schema_with_formats():
    body = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": "c-1029"},
                "InvoiceNumber": "INV-1",
                "Date": "2026-01-15",
                "DueDate": "2026-02-14",
                "LineItems": [],
            }
        ]
    }
    with pytest.raises(XeroBodyInvalid, match="ContactID.*uuid"):
        check_body("p1-000002", json.dumps(body).encode())
    body["Invoices"][0]["Contact"] = {"ContactID": "501813ae-fe4d-4e68-8540-97be01fb4d7f"}
    check_body("p1-000002", json.dumps(body).encode())


@pytest.mark.parametrize("name", ["../escape.json", "a/../../escape.json", "/etc/passwd", ".", "xero/.."])
def test_a_path_that_leaves_its_folder_stops_the_run(tmp_path, name):
    with pytest.raises(PathOutsideOutput):
        Confined(tmp_path / "out").file(name)
    assert Confined(tmp_path / "out").file("xero/p1/b.json") == (
        Path(tmp_path).resolve() / "out" / "xero" / "p1" / "b.json"
    )


def test_batch_files_never_go_through_a_symlink_out_of_the_folder(tmp_path):
    """A folder that is a symlink out of the output is refused; a file that is one is not written through."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (out / "xero").mkdir(parents=True)
    elsewhere.mkdir()
    (out / "xero" / "p1").symlink_to(elsewhere)
    with pytest.raises(PathOutsideOutput):
        Confined(out).file("xero/p1/b.json")
    (out / "xero" / "p2").mkdir()
    (out / "xero" / "p2" / "b.csv").symlink_to(elsewhere / "b.csv")
    with pytest.raises((OSError, PathOutsideOutput)):
        write_files(Files(out, ["xero/p2/b.csv"], [[b"a,b\r\n"]]))
    assert not (elsewhere / "b.csv").exists()
