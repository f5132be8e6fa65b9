"""DUPLICATE_KEY: a key seen twice in its practice. The invoices that depend on the duplicated key are
held; the others are not."""

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, problems, sent, state


def _errors(result, invoice_id: str) -> list[dict]:
    return [
        p
        for p in problems(result, "DUPLICATE_KEY")
        if p["invoice_id"] == invoice_id and p["severity"] == "error"
    ]


def test_a_duplicated_template_holds_the_invoices_that_use_it_and_only_those():
    b = SourceBuilder()
    b.template("p1", "svc-book", "Monthly Bookkeeping (copy)", option="opt-tax")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-book")
    b.invoice("p1", "i2")
    b.line("p1", "i2", "l1", template="svc-accounts")
    result = b.resolve()

    assert state(result, "i1") == "held"
    assert hold_codes(result, "i1") == ["DUPLICATE_KEY"]
    [problem] = _errors(result, "i1")
    assert problem["line_id"] == "l1"
    for named in ("service_templates.csv", "rows 1, 3", "'svc-book'", "'p1'"):
        assert named in problem["detail"]
    assert sent(result, "i1") == []
    assert state(result, "i2") == "ready"


def test_a_duplicated_line_id_holds_its_invoice():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", unit_amount="100")
    b.line("p1", "i1", "l1", unit_amount="250")
    b.approved_invoice("p1", "i2")
    result = b.resolve()

    assert state(result, "i1") == "held"
    assert hold_codes(result, "i1") == ["DUPLICATE_KEY"]
    [problem] = _errors(result, "i1")
    for named in ("invoice_lines.csv", "rows 1, 2", "line_id 'l1'"):
        assert named in problem["detail"]
    assert state(result, "i2") == "ready"


def test_the_same_line_id_on_two_invoices_is_not_a_duplicate():
    b = SourceBuilder()
    b.approved_invoice("p1", "i1")
    b.approved_invoice("p1", "i2")
    result = b.resolve()

    assert (state(result, "i1"), state(result, "i2")) == ("ready", "ready")
    assert problems(result) == []


def test_the_same_key_in_two_practices_is_not_a_duplicate():
    b = SourceBuilder()
    b.practice("p2")
    b.template("p2", "svc-book", "Their bookkeeping", option=None)
    b.approved_invoice("p1", "i1")
    result = b.resolve()

    assert state(result) == "ready"
    assert problems(result) == []


def test_a_duplicated_owner_holds_a_line_needing_it_even_when_the_kept_copy_has_no_option():
    b = SourceBuilder()
    b.member("p1", "tm-shared", "First copy", option=None)
    b.member("p1", "tm-shared", "Second copy", option="opt-tax")
    b.client("p1", "c2", "Omicron Ltd", option="opt-pa", owner="tm-shared")
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", line_type="alignment_fee")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["DUPLICATE_KEY"]
    assert "team_members.csv" in _errors(result, "i1")[0]["detail"]


def test_a_duplicated_owner_does_not_hold_an_invoice_whose_lines_do_not_need_the_owner():
    b = SourceBuilder()
    b.member("p1", "tm-owner", "Olive again", option="opt-book")
    b.approved_invoice("p1", "i1")  # svc-book gives slot 2 itself
    result = b.resolve()

    assert state(result) == "ready"
    assert [p["severity"] for p in problems(result, "DUPLICATE_KEY")] == ["warning"]


def test_a_duplicated_invoice_id_is_held_even_when_the_first_copy_is_a_draft():
    b = SourceBuilder()
    b.invoice("p1", "i1", status="draft")
    b.invoice("p1", "i1", status="approved")
    b.line("p1", "i1", "l1")
    result = b.resolve()

    assert state(result) == "held"
    assert "DUPLICATE_KEY" in hold_codes(result)
    assert "invoices.csv" in _errors(result, "i1")[0]["detail"]
