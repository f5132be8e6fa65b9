"""R5: the two slots must hold options of different category groups.

Policy `hold` (the default): the invoice is held with SAME_CATEGORY. Policy `drop_secondary`: the line is
sent with slot 1 only and a SAME_CATEGORY warning is recorded.
"""

import pytest

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import (
    hold_codes,
    line,
    problems,
    sent,
    slots,
    state,
    the_problem,
    tracking_sent,
)


def _partner_template_invoice(consolidate: bool | None = None) -> SourceBuilder:
    """Client c1 has Partner A in slot 1; line l1's template gives Partner B (same category) in slot 2,
    line l2's gives Central Bookkeeping Team (Department)."""
    b = SourceBuilder()
    b.template("p1", "svc-partner", "Partner review", option="opt-pb")
    b.client("p1", "c2", "Epsilon Ltd", option="opt-pa", owner="tm-owner", consolidate=consolidate)
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", template="svc-partner")
    b.line("p1", "i1", "l2", template="svc-book")
    return b


def test_two_options_of_one_category_hold_the_invoice_under_the_default_policy():
    result = _partner_template_invoice().resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["SAME_CATEGORY"]
    problem = the_problem(result, "SAME_CATEGORY")
    assert (problem["invoice_id"], problem["line_id"], problem["severity"]) == ("i1", "l1", "error")
    for named in ("invoice_lines.csv row 1", "l1", "Partner A", "Partner B", "'Partner'", "(service)"):
        assert named in problem["detail"]
    assert sent(result) == []


def test_line_tracking_shows_both_same_category_slots_so_the_analyst_sees_the_cause():
    result = _partner_template_invoice().resolve()

    assert slots(result, "l1") == ("Partner", "Partner A", "client", "Partner", "Partner B", "service")
    assert line(result, "l1")["invoice_state"] == "held"


def test_drop_secondary_sends_the_line_with_slot1_only_and_records_a_warning():
    result = _partner_template_invoice().resolve(policy="drop_secondary")

    assert state(result) == "ready"
    assert hold_codes(result) == []
    assert tracking_sent(result) == [
        ("Partner", "Partner A", None, None),
        ("Partner", "Partner A", "Department", "Central Bookkeeping Team"),
    ]
    problem = the_problem(result, "SAME_CATEGORY")
    assert (problem["line_id"], problem["severity"]) == ("l1", "warning")
    assert "Partner B" in problem["detail"] and "slot 1 only" in problem["detail"]


def test_drop_secondary_keeps_the_line_itself_whole():
    result = _partner_template_invoice().resolve(policy="drop_secondary")

    first = sent(result)[0]
    assert (first["line_id"], first["account_code"], first["tax_type"]) == ("l1", "200", "OUTPUT2")
    assert str(first["line_amount"]) == "100.00"


def test_same_category_through_the_owner_names_the_owner_as_source():
    b = SourceBuilder()
    b.member("p1", "tm-partner", "Pat Partner", option="opt-pb")
    b.client("p1", "c2", "Zeta Ltd", option="opt-pa", owner="tm-partner")
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", line_type="alignment_fee")
    result = b.resolve()

    assert state(result) == "held"
    assert "(owner)" in the_problem(result, "SAME_CATEGORY")["detail"]


@pytest.mark.parametrize("policy", ["hold", "drop_secondary"])
def test_same_category_on_a_consolidated_invoice_is_only_a_warning_since_slot2_is_not_sent(policy):
    result = _partner_template_invoice(consolidate=True).resolve(policy=policy)

    assert state(result) == "ready"
    problem = the_problem(result, "SAME_CATEGORY")
    assert problem["severity"] == "warning"
    assert "consolidated" in problem["detail"]
    assert tracking_sent(result) == [("Partner", "Partner A", None, None)]


@pytest.mark.parametrize("policy", ["hold", "drop_secondary"])
def test_options_of_different_categories_raise_nothing(policy):
    b = SourceBuilder()
    b.approved_invoice("p1", "i1", lines=2)
    result = b.resolve(policy=policy)

    assert state(result) == "ready"
    assert problems(result) == []


def test_an_unknown_policy_is_refused_rather_than_guessed():
    b = SourceBuilder()
    b.approved_invoice("p1", "i1")
    with pytest.raises(ValueError, match="drop_secondary"):
        b.resolve(policy="drop")
