"""R6: a client with consolidate_lines gets each invoice as one Xero line: quantity 1, unit amount = the
sum of the line amounts, account code and tax type of the first line (lowest position, then line_id),
slot 1 of the first line, slot 2 empty. Lines with different effective tax types cannot be consolidated:
held with CONSOLIDATION_TAX_MISMATCH."""

from decimal import Decimal

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, line, problems, sent, slots, state, the_problem


def _consolidating(consolidate: bool | None = True) -> SourceBuilder:
    b = SourceBuilder()
    b.template("p1", "svc-payroll", "Payroll", option="opt-book", account_code="210", tax_type="OUTPUT2")
    b.client("p1", "c2", "Consolidated Ltd", option="opt-pa", owner="tm-owner", consolidate=consolidate)
    b.invoice("p1", "i1", client_id="c2")
    return b


def test_consolidated_invoice_is_one_line_of_quantity_one_and_the_exact_sum():
    b = _consolidating()
    b.line("p1", "i1", "l1", quantity="1", unit_amount="100.00")
    b.line("p1", "i1", "l2", quantity="3", unit_amount="33.335")  # 100.005 -> 100.01
    b.line("p1", "i1", "l3", quantity="2.5", unit_amount="10.1")  # 25.25
    result = b.resolve()

    assert state(result) == "ready"
    [only] = sent(result)
    assert only["line_no"] == 1
    assert only["quantity"] == Decimal("1")
    assert only["unit_amount"] == Decimal("225.26")
    assert only["line_amount"] == Decimal("225.26")
    assert all(isinstance(only[c], Decimal) for c in ("quantity", "unit_amount", "line_amount"))
    assert result.xero_invoices["total"].item() == Decimal("225.26")


def test_consolidated_line_takes_account_code_tax_type_description_and_slot1_of_the_first_line():
    b = _consolidating()
    b.line("p1", "i1", "l1", template="svc-book", position=2)
    b.line("p1", "i1", "l2", template="svc-payroll", position=1, description="Payroll for March")
    result = b.resolve()

    [only] = sent(result)
    assert (only["line_id"], only["account_code"], only["tax_type"]) == ("l2", "210", "OUTPUT2")
    assert only["description"] == "Payroll for March"
    assert (only["tracking1_name"], only["tracking1_option"]) == ("Partner", "Partner A")


def test_first_line_is_the_lowest_position_then_the_lowest_line_id():
    b = _consolidating()
    b.line("p1", "i1", "lb", template="svc-book", position=1)
    b.line("p1", "i1", "la", template="svc-payroll", position=1)
    b.line("p1", "i1", "l0", template="svc-book", position=5)
    result = b.resolve()

    [only] = sent(result)
    assert (only["line_id"], only["account_code"]) == ("la", "210")


def test_consolidated_line_sends_no_slot2():
    b = _consolidating()
    b.line("p1", "i1", "l1", template="svc-book")
    b.line("p1", "i1", "l2", line_type="alignment_fee")
    result = b.resolve()

    [only] = sent(result)
    assert (only["tracking2_name"], only["tracking2_option"]) == (None, None)
    assert problems(result) == []


def test_line_tracking_keeps_every_source_line_with_its_resolved_slots():
    b = _consolidating()
    b.line("p1", "i1", "l1", template="svc-book", quantity="2", unit_amount="50")
    b.line("p1", "i1", "l2", line_type="alignment_fee", unit_amount="20")
    result = b.resolve()

    assert slots(result, "l1")[3:] == ("Department", "Central Bookkeeping Team", "service")
    assert slots(result, "l2")[3:] == ("Department", "Tax Team", "owner")
    assert [line(result, i)["line_amount"] for i in ("l1", "l2")] == [Decimal("100.00"), Decimal("20.00")]
    assert result.invoice_states["consolidated"].item() is True


def test_lines_with_different_tax_types_are_held_with_consolidation_tax_mismatch():
    b = _consolidating()
    b.line("p1", "i1", "l1", template="svc-book")
    b.line("p1", "i1", "l2", template="svc-book", tax_type="EXEMPTOUTPUT")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["CONSOLIDATION_TAX_MISMATCH"]
    problem = the_problem(result, "CONSOLIDATION_TAX_MISMATCH")
    assert (problem["invoice_id"], problem["severity"]) == ("i1", "error")
    for named in ("invoice_lines.csv", "row 1", "l1", "OUTPUT2", "row 2", "l2", "EXEMPTOUTPUT"):
        assert named in problem["detail"]
    assert sent(result) == []


def test_tax_types_are_compared_as_effective_ones_so_a_line_repeating_its_template_tax_type_consolidates():
    b = _consolidating()
    b.line("p1", "i1", "l1", template="svc-book")  # OUTPUT2 from the template
    b.adhoc_line("p1", "i1", "l2", tax_type="OUTPUT2")  # its own OUTPUT2
    result = b.resolve()

    assert state(result) == "ready"
    assert len(sent(result)) == 1


def test_a_line_own_tax_type_overrides_its_template_and_can_break_consolidation():
    b = _consolidating()
    b.line("p1", "i1", "l1", template="svc-book")  # OUTPUT2
    b.line("p1", "i1", "l2", template="svc-payroll", tax_type="ZERORATEDOUTPUT")
    result = b.resolve()

    assert hold_codes(result) == ["CONSOLIDATION_TAX_MISMATCH"]


def test_the_same_lines_without_consolidate_lines_are_sent_one_by_one():
    for consolidate in (None, False):
        b = _consolidating(consolidate=consolidate)
        b.line("p1", "i1", "l1", template="svc-book")
        b.line("p1", "i1", "l2", template="svc-book", tax_type="EXEMPTOUTPUT")
        result = b.resolve()

        assert state(result) == "ready"
        assert [r["line_id"] for r in sent(result)] == ["l1", "l2"]
        assert result.invoice_states["consolidated"].item() is False


def test_a_single_line_consolidated_invoice_is_sent_as_one_line_without_slot2():
    b = _consolidating()
    b.line("p1", "i1", "l1", quantity="4", unit_amount="12.5")
    result = b.resolve()

    [only] = sent(result)
    assert (only["quantity"], only["unit_amount"], only["line_amount"]) == (
        Decimal("1"),
        Decimal("50"),
        Decimal("50"),
    )
    assert only["tracking2_option"] is None


def test_a_consolidated_total_past_what_one_unit_amount_holds_is_held_not_a_crash():
    """Each line is under the 10^12 a line may be, but 150 of them add up past the 10^14 a unit amount of
    4 places can hold: the invoice is held with INVALID_VALUE, and every other invoice still resolves."""
    b = _consolidating()
    for n in range(150):
        b.line("p1", "i1", f"l{n:03d}", template="svc-payroll", quantity="1", unit_amount="999999999999.99")
    b.invoice("p1", "i2", client_id="c2")
    b.line("p1", "i2", "l1", template="svc-payroll", quantity="2", unit_amount="10.00")
    result = b.resolve()

    assert state(result, "i1") == "held"
    assert hold_codes(result, "i1") == ["INVALID_VALUE"]
    assert "149999999999998.50" in the_problem(result, "INVALID_VALUE")["detail"]
    assert state(result, "i2") == "ready"
    assert sent(result, "i1") == []
    [only] = sent(result, "i2")
    assert only["unit_amount"] == Decimal("20.00")
