"""R9: an invoice is atomic. Any error on any of its lines holds the whole invoice; a held invoice is
written to exceptions with a code and a detail naming the offending row and value. Nothing is dropped
without a trace."""

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, line, problems, sent, slots, state


def _three_lines_one_broken() -> SourceBuilder:
    b = SourceBuilder()
    b.template("p1", "svc-nocode", "No code", option="opt-book", account_code=None)
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1")
    b.line("p1", "i1", "l2", template="svc-nocode")
    b.line("p1", "i1", "l3", line_type="alignment_fee")
    b.approved_invoice("p1", "i2", lines=2)  # same client, nothing wrong
    return b


def test_one_bad_line_holds_every_line_of_its_invoice():
    result = _three_lines_one_broken().resolve()

    assert state(result, "i1") == "held"
    assert [line(result, f"l{n}", "i1")["invoice_state"] for n in (1, 2, 3)] == ["held"] * 3
    assert sent(result, "i1") == []
    assert result.xero_invoices.filter(result.xero_invoices["invoice_id"] == "i1").is_empty()
    assert result.payloads.filter(result.payloads["invoice_id"] == "i1").is_empty()


def test_a_held_invoice_does_not_hold_another_invoice_of_the_same_client():
    result = _three_lines_one_broken().resolve()

    assert state(result, "i2") == "ready"
    assert [r["line_id"] for r in sent(result, "i2")] == ["l1", "l2"]


def test_lines_of_a_held_invoice_still_show_their_resolved_slots():
    result = _three_lines_one_broken().resolve()

    assert slots(result, "l2", "i1") == (
        "Partner",
        "Partner A",
        "client",
        "Department",
        "Central Bookkeeping Team",
        "service",
    )
    assert slots(result, "l3", "i1")[3:] == ("Department", "Tax Team", "owner")


def test_the_hold_is_recorded_against_the_invoice_and_the_offending_line():
    result = _three_lines_one_broken().resolve()

    [problem] = problems(result)
    assert (problem["practice_id"], problem["invoice_id"], problem["line_id"]) == ("p1", "i1", "l2")
    assert (problem["code"], problem["severity"]) == ("MISSING_ACCOUNT_CODE", "error")
    assert "invoice_lines.csv row 2 (line l2)" in problem["detail"] and "'svc-nocode'" in problem["detail"]


def test_every_error_of_an_invoice_is_recorded_and_listed_in_its_hold_codes():
    b = SourceBuilder()
    b.option("p1", "opt-old", "cat-dept", "Old Team", status="ARCHIVED")
    b.template("p1", "svc-old", "Old work", option="opt-old")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-old")
    b.line("p1", "i1", "l2", quantity="abc")
    b.line("p1", "i1", "l3", template="svc-gone")
    result = b.resolve()

    assert hold_codes(result) == ["ARCHIVED_OPTION", "INVALID_VALUE", "UNKNOWN_SERVICE"]
    recorded = {(p["line_id"], p["code"]) for p in problems(result) if p["severity"] == "error"}
    assert {("l1", "ARCHIVED_OPTION"), ("l2", "INVALID_VALUE"), ("l3", "UNKNOWN_SERVICE")} <= recorded


def test_a_warning_alone_does_not_hold_the_invoice():
    b = SourceBuilder()
    b.template("p1", "svc-partner", "Partner review", option="opt-pb")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-partner")
    result = b.resolve(policy="drop_secondary")

    assert [p["severity"] for p in problems(result)] == ["warning"]
    assert state(result) == "ready"
    assert hold_codes(result) == []


def test_every_error_names_a_row_in_its_detail():
    result = _three_lines_one_broken().resolve()
    b = SourceBuilder()
    b.invoice("p1", "i1", client_id="nobody", issue_date="31/01/2026")
    b.line("p1", "i1", "l1", line_type="retainer", template=None)
    more = b.resolve()

    for problem in problems(result) + problems(more):
        assert problem["detail"] and " row " in problem["detail"], problem


def test_a_line_without_a_practice_holds_that_invoice_id_in_every_practice_and_no_other_invoice():
    b = SourceBuilder()
    b.practice("p2")
    b.category("p2", "cat-partner", "Partner")
    b.option("p2", "opt-pa", "cat-partner", "Partner A")
    b.template("p2", "svc-book", "Bookkeeping")
    b.client("p2", "c1", "Other Practice Client", option="opt-pa")
    for practice in ("p1", "p2"):
        b.approved_invoice(practice, "i1")
        b.approved_invoice(practice, "i2")
    b.line(None, "i2", "l9")  # which practice's i2 it belongs to cannot be known
    result = b.resolve()

    for practice in ("p1", "p2"):
        assert state(result, "i2", practice) == "held"
        assert hold_codes(result, "i2", practice) == ["INVALID_VALUE"]
        assert sent(result, "i2", practice) == []
        assert state(result, "i1", practice) == "ready"
    held_for = {(p["practice_id"], p["invoice_id"]) for p in problems(result) if p["severity"] == "error"}
    assert {("p1", "i2"), ("p2", "i2")} <= held_for
    assert all("practice_id" in p["detail"] and "l9" in p["detail"] for p in problems(result))
