"""Only approved invoices are exported. Drafts and voids are read but produce no Xero output (and, being
no one's concern yet, no line_tracking and no exceptions either)."""

import pytest

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import problems, state


@pytest.mark.parametrize("status", ["draft", "void", "Draft", " VOID "])
def test_drafts_and_voids_produce_nothing(status):
    b = SourceBuilder()
    b.invoice("p1", "i1", status=status)
    b.line("p1", "i1", "l1")
    b.line("p1", "i1", "l2", template="svc-gone", quantity="abc")  # broken, but never sent
    result = b.resolve()

    assert state(result) is None
    assert result.line_tracking.is_empty()
    assert result.xero_line_items.is_empty()
    assert result.xero_invoices.is_empty()
    assert result.payloads.is_empty()
    assert problems(result) == []


def test_only_the_approved_invoice_of_a_client_is_sent():
    b = SourceBuilder()
    for invoice_id, status in (("i1", "draft"), ("i2", "approved"), ("i3", "void")):
        b.invoice("p1", invoice_id, status=status)
        b.line("p1", invoice_id, "l1")
    result = b.resolve()

    assert result.invoice_states["invoice_id"].to_list() == ["i2"]
    assert result.xero_invoices["invoice_id"].to_list() == ["i2"]
    assert set(result.line_tracking["invoice_id"]) == {"i2"}
    assert result.xero_invoices["xero_status"].to_list() == ["AUTHORISED"]
