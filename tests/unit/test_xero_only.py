"""R7: tracking is for Xero only. Invoices of practices whose ledger is not `xero` get no tracking and no
Xero output; they are counted as `not_xero`, not as errors."""

import pytest

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import line, problems, sent, slots, state


@pytest.mark.parametrize("ledger", ["quickbooks", "sage", "freeagent", "none"])
def test_invoices_of_a_non_xero_practice_are_not_xero_with_no_slots_and_no_xero_output(ledger):
    b = SourceBuilder(ledger=ledger)
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", line_type="service")
    b.line("p1", "i1", "l2", line_type="alignment_fee")
    b.adhoc_line("p1", "i1", "l3")
    result = b.resolve()

    assert state(result) == "not_xero"
    for line_id in ("l1", "l2", "l3"):
        assert slots(result, line_id) == (None,) * 6
        assert line(result, line_id)["invoice_state"] == "not_xero"
        assert line(result, line_id)["tracking1_option_id"] is None
        assert line(result, line_id)["tracking2_option_id"] is None
    assert result.xero_line_items.is_empty()
    assert result.xero_invoices.is_empty()
    assert result.payloads.is_empty()
    assert problems(result) == []


def test_problems_of_a_non_xero_invoice_are_not_counted_as_errors():
    b = SourceBuilder(ledger="sage")
    b.option("p1", "opt-old", "cat-dept", "Old Team", status="ARCHIVED")
    b.template("p1", "svc-old", "Old work", option="opt-old", account_code=None, tax_type=None)
    b.client("p1", "c2", "Ghost Owner Ltd", option="opt-nowhere", owner="tm-ghost", consolidate=True)
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", template="svc-old")
    b.line("p1", "i1", "l2", line_type="alignment_fee", tax_type="EXEMPTOUTPUT")
    b.invoice("p1", "i2", client_id="nobody")
    b.line("p1", "i2", "l1")
    result = b.resolve()

    assert state(result, "i1") == "not_xero"
    assert state(result, "i2") == "not_xero"
    assert problems(result) == []


def test_a_xero_practice_beside_a_non_xero_one_still_gets_its_slots_and_output():
    b = SourceBuilder()
    b.practice("p2", ledger="quickbooks")
    b.category("p2", "cat-partner", "Partner")
    b.option("p2", "opt-pa", "cat-partner", "QB Partner")
    b.client("p2", "c1", "QB Client", option="opt-pa")
    b.approved_invoice("p1", "i1")
    b.approved_invoice("p2", "i1")
    result = b.resolve()

    assert state(result, "i1", "p1") == "ready"
    assert state(result, "i1", "p2") == "not_xero"
    assert slots(result, "l1", "i1", "p1")[1] == "Partner A"
    assert slots(result, "l1", "i1", "p2")[1] is None
    assert len(sent(result, "i1", "p1")) == 1
    assert sent(result, "i1", "p2") == []
