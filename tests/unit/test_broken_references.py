"""Error codes of references that lead nowhere: UNKNOWN_CLIENT, UNKNOWN_SERVICE (a `service` line whose
template is missing or unknown), UNKNOWN_TEAM_MEMBER (owner set but unknown), MISSING_ACCOUNT_CODE and
MISSING_TAX_TYPE (a line's effective account code and tax type are its own, else its template's)."""

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, problems, sent, state, the_problem


def test_an_invoice_of_an_unknown_client_is_held_with_unknown_client():
    b = SourceBuilder()
    b.approved_invoice("p1", "i1", client_id="c-nobody")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["UNKNOWN_CLIENT"]
    problem = the_problem(result, "UNKNOWN_CLIENT")
    assert (problem["invoice_id"], problem["line_id"], problem["severity"]) == ("i1", None, "error")
    for named in ("invoices.csv row 1", "INV-i1", "client_id 'c-nobody'", "practice 'p1'"):
        assert named in problem["detail"]
    assert sent(result) == []


def test_a_client_of_another_practice_is_unknown():
    b = SourceBuilder()
    b.practice("p2")
    b.client("p2", "c-elsewhere", "Elsewhere Ltd")
    b.approved_invoice("p1", "i1", client_id="c-elsewhere")
    result = b.resolve()

    assert hold_codes(result) == ["UNKNOWN_CLIENT"]


def test_a_service_line_without_a_template_is_held_with_unknown_service():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template=None, account_code="200", tax_type="OUTPUT2")
    result = b.resolve()

    assert hold_codes(result) == ["UNKNOWN_SERVICE"]
    problem = the_problem(result, "UNKNOWN_SERVICE")
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")
    assert (
        "invoice_lines.csv row 1 (line l1)" in problem["detail"]
        and "service_template_id" in problem["detail"]
    )


def test_a_service_line_naming_an_unknown_template_is_held_with_unknown_service_only():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-gone")
    result = b.resolve()

    assert hold_codes(result) == ["UNKNOWN_SERVICE"]
    problem = the_problem(result, "UNKNOWN_SERVICE")
    for named in ("invoice_lines.csv row 1", "'svc-gone'", "practice 'p1'", "service_templates.csv"):
        assert named in problem["detail"]


def test_an_unknown_owner_needed_for_slot2_holds_the_invoice_with_unknown_team_member():
    b = SourceBuilder()
    b.client("p1", "c2", "Nu Ltd", option="opt-pa", owner="tm-left")
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", line_type="alignment_fee")
    result = b.resolve()

    assert hold_codes(result) == ["UNKNOWN_TEAM_MEMBER"]
    problem = the_problem(result, "UNKNOWN_TEAM_MEMBER")
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")
    for named in (
        "invoice_lines.csv row 1",
        "client 'c2'",
        "'tm-left'",
        "clients.csv row 2",
        "team_members.csv",
    ):
        assert named in problem["detail"]


def test_an_unknown_owner_not_needed_by_any_line_does_not_hold():
    b = SourceBuilder()
    b.client("p1", "c2", "Xi Ltd", option="opt-pa", owner="tm-left")
    b.approved_invoice("p1", "i1", client_id="c2")  # svc-book has its own option
    result = b.resolve()

    assert state(result) == "ready"
    assert problems(result) == []


def test_a_line_without_account_code_on_it_or_its_template_is_held_with_missing_account_code():
    b = SourceBuilder()
    b.template("p1", "svc-bare", "Bare", option="opt-book", account_code=None)
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-bare")
    result = b.resolve()

    assert hold_codes(result) == ["MISSING_ACCOUNT_CODE"]
    problem = the_problem(result, "MISSING_ACCOUNT_CODE")
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")
    assert "invoice_lines.csv row 1 (line l1)" in problem["detail"] and "'svc-bare'" in problem["detail"]


def test_a_line_own_account_code_and_tax_type_win_over_the_template():
    b = SourceBuilder()
    b.template("p1", "svc-bare", "Bare", option="opt-book", account_code=None, tax_type=None)
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-bare", account_code="260", tax_type="EXEMPTOUTPUT")
    b.line("p1", "i1", "l2", template="svc-book", account_code="270")
    result = b.resolve()

    assert state(result) == "ready"
    assert [(r["account_code"], r["tax_type"]) for r in sent(result)] == [
        ("260", "EXEMPTOUTPUT"),
        ("270", "OUTPUT2"),
    ]


def test_an_adhoc_line_without_tax_type_is_held_with_missing_tax_type():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.adhoc_line("p1", "i1", "l1", tax_type=None)
    result = b.resolve()

    assert hold_codes(result) == ["MISSING_TAX_TYPE"]
    problem = the_problem(result, "MISSING_TAX_TYPE")
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")
    assert "invoice_lines.csv row 1 (line l1)" in problem["detail"] and "tax_type" in problem["detail"]
