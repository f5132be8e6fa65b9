"""INVALID_VALUE: a value that does not parse or is outside its allowed set holds the invoices that depend
on it; the detail names the file, row, column and value. (Values too long for Xero: test_option_checks.)"""

from decimal import Decimal

import polars as pl
import pytest

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, line, problems, sent, state, the_problem
from transforms import hold_reasons as holds
from transforms.resolve_invoices import default_files


def _invalid(result, invoice_id: str = "i1") -> dict:
    assert state(result, invoice_id) == "held"
    assert hold_codes(result, invoice_id) == ["INVALID_VALUE"]
    assert sent(result, invoice_id) == []
    problem = the_problem(result, "INVALID_VALUE")
    assert problem["severity"] == "error"
    return problem


@pytest.mark.parametrize("column, value", [("issue_date", "2026-02-30"), ("due_date", "14/02/2026")])
def test_a_date_that_is_not_a_date_holds_the_invoice_naming_the_column(column, value):
    b = SourceBuilder()
    b.invoice("p1", "i1", **{column: value})
    b.line("p1", "i1", "l1")
    problem = _invalid(b.resolve())

    assert (problem["invoice_id"], problem["line_id"]) == ("i1", None)
    for named in ("invoices.csv row 1", "'i1'", column, f"'{value}'"):
        assert named in problem["detail"]


def test_a_quantity_of_abc_holds_the_invoice_naming_the_column():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1")
    b.line("p1", "i1", "l2", quantity="abc")
    result = b.resolve()
    problem = _invalid(result)

    assert problem["line_id"] == "l2"
    for named in ("invoice_lines.csv row 2", "'l2'", "quantity", "'abc'"):
        assert named in problem["detail"]
    assert line(result, "l1")["invoice_state"] == "held"


def test_an_unknown_line_type_holds_the_invoice_naming_the_column():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", line_type="retainer")
    result = b.resolve()
    problem = _invalid(result)

    for named in ("invoice_lines.csv row 1", "line_type", "'retainer'"):
        assert named in problem["detail"]
    assert line(result, "l1")["line_type"] is None
    assert line(result, "l1")["tracking2_source"] is None


def test_a_unit_amount_with_five_decimal_places_holds_the_invoice_rather_than_being_rounded():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", unit_amount="33.33335")
    problem = _invalid(b.resolve())

    for named in ("unit_amount", "'33.33335'", "more than 4 decimal places"):
        assert named in problem["detail"]


def test_a_unit_amount_with_four_decimal_places_is_fine():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", unit_amount="33.3333", quantity="3")
    result = b.resolve()

    assert state(result) == "ready"
    assert str(sent(result)[0]["line_amount"]) == "100.00"


def test_a_line_amount_too_large_for_xero_holds_the_invoice_rather_than_sending_nothing():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", quantity="99999999999999", unit_amount="99999999999999")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["INVALID_VALUE"]
    assert sent(result) == []
    for problem in problems(result, "INVALID_VALUE"):
        assert problem["line_id"] == "l1"
        for named in ("invoice_lines.csv row 1", "quantity", "unit_amount", "99999999999999"):
            assert named in problem["detail"]


def test_a_consolidated_total_too_large_for_one_line_amount_is_an_invalid_value():
    lines = pl.LazyFrame(
        {
            "practice_id": ["p1", "p1", "p1"],
            "invoice_id": ["i1", "i1", "i2"],
            "invoice_number": ["INV-1", "INV-1", "INV-2"],
            "consolidated": [True, True, True],
            "line_amount": [Decimal("9000000000000000.00"), Decimal("9000000000000000.00"), Decimal("5.00")],
        },
        schema_overrides={"line_amount": pl.Decimal(18, 2)},
    )
    found = holds.amount_problems(lines, default_files()).collect().to_dicts()

    assert [(p["invoice_id"], str(p["code"]), str(p["severity"])) for p in found] == [
        ("i1", "INVALID_VALUE", "error")
    ]
    assert "INV-1" in found[0]["detail"] and "18000000000000000.00" in found[0]["detail"]


def test_an_invoice_status_outside_the_allowed_set_holds_the_invoice_instead_of_dropping_it():
    b = SourceBuilder()
    b.invoice("p1", "i1", status="authorised")
    b.line("p1", "i1", "l1")
    problem = _invalid(b.resolve())

    assert "status" in problem["detail"] and "'authorised'" in problem["detail"]


def test_an_invoice_of_an_unknown_practice_is_held_with_invalid_value():
    b = SourceBuilder()
    b.invoice("p-nowhere", "i1")
    b.line("p-nowhere", "i1", "l1")
    result = b.resolve()

    assert state(result, "i1", "p-nowhere") == "held"
    assert "INVALID_VALUE" in hold_codes(result, "i1", "p-nowhere")
    problem = the_problem(result, "INVALID_VALUE")
    assert "invoices.csv row 1" in problem["detail"] and "practice_id 'p-nowhere'" in problem["detail"]


def test_an_invalid_value_in_a_template_holds_the_invoices_that_use_it():
    b = SourceBuilder()
    b.template("p1", "svc-nameless", name=None, option="opt-book")  # name is required
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-nameless")
    b.approved_invoice("p1", "i2")
    result = b.resolve()

    assert state(result, "i1") == "held"
    assert state(result, "i2") == "ready"
    errors = [p for p in result.exceptions.to_dicts() if str(p["severity"]) == "error"]
    assert [(p["invoice_id"], p["line_id"]) for p in errors] == [("i1", "l1")]
    assert "service_templates.csv row 3" in errors[0]["detail"] and "name" in errors[0]["detail"]


def test_a_contact_id_that_is_not_a_guid_holds_the_clients_invoices_naming_the_column_and_value():
    b = SourceBuilder()
    b.client("p1", "c2", "Bolt Ltd", option="opt-pb", owner="tm-owner", contact_id="c-1029")
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1")
    b.invoice("p1", "i2", client_id="c1")
    b.line("p1", "i2", "l1")
    result = b.resolve()
    assert state(result, "i1") == "held" and hold_codes(result, "i1") == ["INVALID_VALUE"]
    assert sent(result, "i1") == []
    # held with an error on the invoice (the row itself is also a warning of the source, as any
    # reference row that does not parse)
    (problem,) = [p for p in problems(result, "INVALID_VALUE") if p["invoice_id"] == "i1"]
    assert problem["severity"] == "error"
    for named in ("clients.csv row 2", "'c2'", "xero_contact_id", "'c-1029'", "GUID"):
        assert named in problem["detail"]
    assert state(result, "i2") == "ready"  # the other client's invoice is sent


@pytest.mark.parametrize(
    "contact_id", ["501813ae-fe4d-4e68-8540-97be01fb4d7f", " 501813AE-FE4D-4E68-8540-97BE01FB4D7F "]
)
def test_a_guid_contact_id_in_any_case_is_sent_as_the_contact(contact_id):
    b = SourceBuilder()
    b.client("p1", "c2", "Bolt Ltd", option="opt-pb", owner="tm-owner", contact_id=contact_id)
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1")
    result = b.resolve()

    assert state(result, "i1") == "ready"
    assert result.xero_invoices.row(0, named=True)["contact_id"] == contact_id.strip()


def test_a_contact_id_that_is_not_a_guid_holds_nothing_outside_xero():
    b = SourceBuilder(ledger="quickbooks")
    b.client("p1", "c2", "Bolt Ltd", contact_id="c-1029")
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1")
    assert state(b.resolve(), "i1") == "not_xero"
