"""EMPTY_INVOICE (an approved invoice with no lines) and ORPHAN_LINE (a line whose invoice does not exist
in its practice; recorded with a null invoice)."""

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, problems, state, the_problem


def test_an_approved_invoice_without_lines_is_held_with_empty_invoice():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.approved_invoice("p1", "i2")
    result = b.resolve()

    assert state(result, "i1") == "held"
    assert hold_codes(result, "i1") == ["EMPTY_INVOICE"]
    problem = the_problem(result, "EMPTY_INVOICE")
    assert (problem["invoice_id"], problem["line_id"], problem["severity"]) == ("i1", None, "error")
    assert "invoices.csv row 1" in problem["detail"] and "INV-i1" in problem["detail"]
    assert result.xero_invoices["invoice_id"].to_list() == ["i2"]


def test_a_draft_without_lines_is_not_an_empty_invoice():
    b = SourceBuilder()
    b.invoice("p1", "i1", status="draft")
    result = b.resolve()

    assert problems(result) == []


def test_a_line_whose_invoice_does_not_exist_is_an_orphan_recorded_with_a_null_invoice():
    b = SourceBuilder()
    b.approved_invoice("p1", "i1")
    b.line("p1", "i-missing", "l7")
    result = b.resolve()

    problem = the_problem(result, "ORPHAN_LINE")
    assert (problem["practice_id"], problem["invoice_id"], problem["line_id"]) == ("p1", None, "l7")
    assert problem["severity"] == "error"
    for named in ("invoice_lines.csv row 2", "l7", "invoice_id 'i-missing'", "practice 'p1'", "invoices.csv"):
        assert named in problem["detail"]
    assert state(result, "i1") == "ready"
    assert "i-missing" not in result.line_tracking["invoice_id"].to_list()


def test_a_line_pointing_at_an_invoice_of_another_practice_is_an_orphan():
    b = SourceBuilder()
    b.practice("p2")
    b.approved_invoice("p1", "i1")
    b.line("p2", "i1", "l1")
    result = b.resolve()

    problem = the_problem(result, "ORPHAN_LINE")
    assert (problem["practice_id"], problem["invoice_id"]) == ("p2", None)
    assert [r["line_id"] for r in result.line_tracking.to_dicts()] == ["l1"]
    assert result.line_tracking["practice_id"].to_list() == ["p1"]


def test_a_line_of_a_draft_is_not_an_orphan():
    b = SourceBuilder()
    b.invoice("p1", "i1", status="draft")
    b.line("p1", "i1", "l1")
    result = b.resolve()

    assert problems(result, "ORPHAN_LINE") == []
