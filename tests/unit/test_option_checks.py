"""R8: every option sent must exist in the invoice's own practice (UNKNOWN_OPTION), and it and its
category must be ACTIVE (ARCHIVED_OPTION). R5 and R8 apply to what is sent: a consolidated invoice sends
no slot 2, so slot-2 problems do not hold it (they are recorded as warnings). What is sent must fit Xero's
limits (names 100 characters, descriptions 4,000, invoice numbers 255): else INVALID_VALUE, never a cut."""

import pytest

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import hold_codes, line, problems, sent, slots, state, the_problem


def _slot2_from(option_status: str = "ACTIVE", category_status: str = "ACTIVE", consolidate=None):
    """Line l1's slot 2 comes from template svc-x, whose option opt-x is in category cat-x."""
    b = SourceBuilder()
    b.category("p1", "cat-x", "Office", status=category_status)
    b.option("p1", "opt-x", "cat-x", "Leeds", status=option_status)
    b.template("p1", "svc-x", "Office work", option="opt-x")
    b.client("p1", "c2", "Eta Ltd", option="opt-pa", owner="tm-owner", consolidate=consolidate)
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", template="svc-x")
    b.line("p1", "i1", "l2", template="svc-book")
    return b


# ARCHIVED_OPTION -------------------------------------------------------------------------------------


def test_an_archived_option_holds_the_invoice():
    result = _slot2_from(option_status="ARCHIVED").resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["ARCHIVED_OPTION"]
    problem = the_problem(result, "ARCHIVED_OPTION")
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")
    for named in ("invoice_lines.csv row 1", "slot 2", "Office: Leeds", "option ARCHIVED", "service"):
        assert named in problem["detail"]
    assert sent(result) == []


def test_an_active_option_of_an_archived_category_holds_the_invoice():
    result = _slot2_from(category_status="ARCHIVED").resolve()

    assert state(result) == "held"
    problem = the_problem(result, "ARCHIVED_OPTION")
    assert "option ACTIVE" in problem["detail"] and "category ARCHIVED" in problem["detail"]


def test_a_deleted_option_holds_the_invoice_as_not_active():
    result = _slot2_from(option_status="DELETED").resolve()

    assert hold_codes(result) == ["ARCHIVED_OPTION"]
    assert "option DELETED" in the_problem(result, "ARCHIVED_OPTION")["detail"]


def test_an_archived_client_option_in_slot1_holds_the_invoice():
    b = SourceBuilder()
    b.option("p1", "opt-gone", "cat-partner", "Partner Gone", status="ARCHIVED")
    b.client("p1", "c2", "Theta Ltd", option="opt-gone", owner="tm-owner")
    b.approved_invoice("p1", "i1", client_id="c2")
    result = b.resolve()

    assert hold_codes(result) == ["ARCHIVED_OPTION"]
    assert (
        "slot 1 'Partner: Partner Gone' from the client" in the_problem(result, "ARCHIVED_OPTION")["detail"]
    )


# UNKNOWN_OPTION --------------------------------------------------------------------------------------


def test_an_option_id_that_does_not_exist_holds_the_invoice_and_keeps_its_source():
    b = SourceBuilder()
    b.client("p1", "c2", "Iota Ltd", option="opt-typo", owner="tm-owner")
    b.approved_invoice("p1", "i1", client_id="c2")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["UNKNOWN_OPTION"]
    assert slots(result, "l1")[:3] == (None, None, "client")
    assert line(result, "l1")["tracking1_option_id"] == "opt-typo"
    problem = the_problem(result, "UNKNOWN_OPTION")
    for named in (
        "invoice_lines.csv row 1",
        "slot 1",
        "'opt-typo'",
        "client",
        "'p1'",
        "tracking_options.csv",
    ):
        assert named in problem["detail"]


def test_an_option_id_that_exists_only_in_another_practice_is_unknown():
    b = SourceBuilder()
    b.practice("p2")
    b.category("p2", "cat-region", "Region")
    b.option("p2", "opt-north", "cat-region", "North")
    b.template("p1", "svc-north", "North work", option="opt-north")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-north")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["UNKNOWN_OPTION"]
    assert slots(result, "l1")[3:] == (None, None, "service")
    problem = the_problem(result, "UNKNOWN_OPTION")
    assert "'opt-north'" in problem["detail"] and "practice 'p1'" in problem["detail"]
    assert "North" not in (line(result, "l1")["tracking2_option"] or "")


def test_one_option_id_in_two_practices_resolves_to_each_practice_own_option():
    b = SourceBuilder()
    b.practice("p2")
    b.category("p2", "cat-partner", "Partner")
    b.option("p2", "opt-pa", "cat-partner", "Partner Anne (p2)")
    b.client("p2", "c1", "Same Id Ltd", option="opt-pa")
    b.approved_invoice("p1", "i1")
    b.invoice("p2", "i1")
    b.adhoc_line("p2", "i1", "l1")
    result = b.resolve()

    assert slots(result, "l1", "i1", "p1")[1] == "Partner A"
    assert slots(result, "l1", "i1", "p2")[1] == "Partner Anne (p2)"
    assert sent(result, "i1", "p2")[0]["tracking1_option"] == "Partner Anne (p2)"


def test_an_option_whose_category_does_not_exist_is_unknown():
    b = SourceBuilder()
    b.option("p1", "opt-lost", "cat-missing", "Lost")
    b.template("p1", "svc-lost", "Lost work", option="opt-lost")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-lost")
    result = b.resolve()

    assert hold_codes(result) == ["UNKNOWN_OPTION"]
    assert "'cat-missing'" in the_problem(result, "UNKNOWN_OPTION")["detail"]


# Judged on what is sent ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option_status, category_status, code",
    [("ARCHIVED", "ACTIVE", "ARCHIVED_OPTION"), ("ACTIVE", "ARCHIVED", "ARCHIVED_OPTION")],
)
def test_a_consolidated_invoice_is_not_held_for_an_inactive_slot2_option_but_warns(
    option_status, category_status, code
):
    result = _slot2_from(option_status, category_status, consolidate=True).resolve()

    assert state(result) == "ready"
    problem = the_problem(result, code)
    assert (problem["line_id"], problem["severity"]) == ("l1", "warning")
    assert "consolidated" in problem["detail"]
    assert [r["tracking2_option"] for r in sent(result)] == [None]


def test_a_consolidated_invoice_is_not_held_for_an_unknown_slot2_option_but_warns():
    b = SourceBuilder()
    b.template("p1", "svc-typo", "Typo work", option="opt-typo")
    b.client("p1", "c2", "Kappa Ltd", option="opt-pa", owner="tm-owner", consolidate=True)
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", template="svc-typo")
    result = b.resolve()

    assert state(result) == "ready"
    problem = the_problem(result, "UNKNOWN_OPTION")
    assert (problem["severity"], problem["line_id"]) == ("warning", "l1")
    assert len(sent(result)) == 1


def test_a_consolidated_invoice_is_not_held_for_an_unknown_owner_but_warns():
    b = SourceBuilder()
    b.client("p1", "c2", "Lambda Ltd", option="opt-pa", owner="tm-ghost", consolidate=True)
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", line_type="alignment_fee")
    result = b.resolve()

    assert state(result) == "ready"
    problem = the_problem(result, "UNKNOWN_TEAM_MEMBER")
    assert problem["severity"] == "warning"
    assert "'tm-ghost'" in problem["detail"]


def test_a_consolidated_invoice_is_still_held_for_its_slot1_option():
    b = SourceBuilder()
    b.option("p1", "opt-gone", "cat-partner", "Partner Gone", status="ARCHIVED")
    b.client("p1", "c2", "Mu Ltd", option="opt-gone", owner="tm-owner", consolidate=True)
    b.approved_invoice("p1", "i1", client_id="c2", lines=3)
    result = b.resolve()

    assert state(result) == "held"
    problem = the_problem(result, "ARCHIVED_OPTION")
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")


def test_a_slot2_dropped_under_drop_secondary_does_not_hold_for_being_archived():
    b = SourceBuilder()
    b.option("p1", "opt-old-partner", "cat-partner", "Old Partner", status="ARCHIVED")
    b.template("p1", "svc-old", "Old partner work", option="opt-old-partner")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-old")
    result = b.resolve(policy="drop_secondary")

    assert state(result) == "ready"
    assert {(p["code"], p["severity"]) for p in problems(result)} == {
        ("SAME_CATEGORY", "warning"),
        ("ARCHIVED_OPTION", "warning"),
    }
    assert sent(result)[0]["tracking2_option"] is None


# Xero's length limits, on what is sent ---------------------------------------------------------------


def _named(
    category: str = "Partner", option: str = "Partner A", slot2_option: str = "Central Bookkeeping Team"
):
    b = SourceBuilder(bare=True)
    b.practice("p1")
    b.category("p1", "cat-partner", category)
    b.category("p1", "cat-dept", "Department")
    b.option("p1", "opt-pa", "cat-partner", option)
    b.option("p1", "opt-book", "cat-dept", slot2_option)
    b.template("p1", "svc-book", "Monthly Bookkeeping", option="opt-book")
    b.member("p1", "tm-owner", "Olive Owner")
    b.client("p1", "c1", "Acme Widgets Ltd", option="opt-pa", owner="tm-owner")
    b.client("p1", "c2", "Consolidated Ltd", option="opt-pa", owner="tm-owner", consolidate=True)
    return b


@pytest.mark.parametrize("field", ["category", "option", "slot2_option"])
def test_a_tracking_name_of_101_characters_holds_the_invoice_naming_file_row_and_column(field):
    b = _named(**{field: "N" * 101})
    b.approved_invoice("p1", "i1")
    result = b.resolve()

    assert state(result) == "held"
    assert hold_codes(result) == ["INVALID_VALUE"]
    problem = the_problem(result, "INVALID_VALUE")
    table = "tracking_categories.csv row 1" if field == "category" else "tracking_options.csv row"
    for named in (table, "name 'NNNN", "101 characters", "at most 100", "invoice_lines.csv row 1 (line l1)"):
        assert named in problem["detail"]
    assert (problem["line_id"], problem["severity"]) == ("l1", "error")


def test_tracking_names_of_exactly_100_characters_are_sent_whole():
    b = _named(category="C" * 100, option="O" * 100, slot2_option="S" * 100)
    b.approved_invoice("p1", "i1")
    result = b.resolve()

    assert state(result) == "ready"
    [item] = sent(result)
    assert (item["tracking1_name"], item["tracking1_option"], item["tracking2_option"]) == (
        "C" * 100,
        "O" * 100,
        "S" * 100,
    )


def test_an_over_long_slot2_name_does_not_hold_a_consolidated_invoice_which_does_not_send_it():
    b = _named(slot2_option="S" * 101)
    b.approved_invoice("p1", "i1", client_id="c2")
    result = b.resolve()

    assert state(result) == "ready"
    assert problems(result, "INVALID_VALUE") == []


def test_an_over_long_slot2_name_does_not_hold_a_line_whose_slot2_is_dropped():
    b = _named(category="Partner", slot2_option="S" * 101)
    b.option("p1", "opt-long-partner", "cat-partner", "P" * 101)
    b.template("p1", "svc-partner", "Partner work", option="opt-long-partner")
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-partner")
    result = b.resolve(policy="drop_secondary")

    assert state(result) == "ready"
    assert problems(result, "INVALID_VALUE") == []


def test_a_description_of_4001_characters_holds_the_invoice_and_4000_is_sent_whole():
    b = _named()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", description="d" * 4001)
    b.invoice("p1", "i2")
    b.line("p1", "i2", "l1", description="d" * 4000)
    result = b.resolve()

    assert state(result, "i1") == "held"
    problem = the_problem(result, "INVALID_VALUE")
    for named in ("invoice_lines.csv row 1", "l1", "description", "4001 characters", "at most 4000"):
        assert named in problem["detail"]
    assert state(result, "i2") == "ready"
    assert sent(result, "i2")[0]["description"] == "d" * 4000


def test_an_over_long_description_of_a_line_merged_away_by_consolidation_does_not_hold():
    b = _named()
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", description="Monthly bookkeeping")
    b.line("p1", "i1", "l2", description="d" * 4001)
    result = b.resolve()

    assert state(result) == "ready"
    assert sent(result)[0]["description"] == "Monthly bookkeeping"


def test_an_invoice_number_of_256_characters_holds_the_invoice_once_and_255_is_sent_whole():
    b = _named()
    b.invoice("p1", "i1", invoice_number="N" * 256)
    b.line("p1", "i1", "l1")
    b.line("p1", "i1", "l2")
    b.invoice("p1", "i2", invoice_number="M" * 255)
    b.line("p1", "i2", "l1")
    result = b.resolve()

    assert state(result, "i1") == "held"
    problem = the_problem(result, "INVALID_VALUE")
    assert (problem["invoice_id"], problem["line_id"]) == ("i1", None)
    for named in ("invoices.csv row 1", "'i1'", "invoice_number", "256 characters", "at most 255"):
        assert named in problem["detail"]
    assert state(result, "i2") == "ready"
    assert sent(result, "i2")[0]["invoice_number"] == "M" * 255
