"""The Pandera models of the output tables: each accepts a good frame and rejects a hand-made bad one with
OutputCheckFailed naming the check that failed."""

from decimal import Decimal

import polars as pl
import pytest

from tests.source_builder import SourceBuilder
from transforms.schemas import (
    EXCEPTIONS,
    LINE_TRACKING,
    XERO_LINE_ITEMS,
    OutputCheckFailed,
    validate_output,
)
from transforms.vocabulary import AMOUNT, CODES, INVOICE_STATES, LINE_TYPES, QUANTITY, SEVERITIES, UNIT_AMOUNT


def _line_tracking(**changes) -> pl.DataFrame:
    row = {
        "practice_id": "p1",
        "invoice_id": "i1",
        "line_id": "l1",
        "position": 1,
        "line_type": "service",
        "line_amount": Decimal("100.00"),
        "tracking1_category": "Partner",
        "tracking1_option": "Partner A",
        "tracking1_source": "client",
        "tracking2_category": "Department",
        "tracking2_option": "Tax Team",
        "tracking2_source": "owner",
        "invoice_state": "ready",
    }
    row.update(changes)
    return pl.DataFrame(
        [row],
        schema={
            "practice_id": pl.Utf8,
            "invoice_id": pl.Utf8,
            "line_id": pl.Utf8,
            "position": pl.Int32,
            "line_type": pl.Enum(LINE_TYPES),
            "line_amount": AMOUNT,
            "tracking1_category": pl.Utf8,
            "tracking1_option": pl.Utf8,
            "tracking1_source": pl.Utf8,
            "tracking2_category": pl.Utf8,
            "tracking2_option": pl.Utf8,
            "tracking2_source": pl.Utf8,
            "invoice_state": pl.Enum(INVOICE_STATES),
        },
    )


def _exceptions(**changes) -> pl.DataFrame:
    row = {
        "practice_id": "p1",
        "invoice_id": "i1",
        "line_id": "l1",
        "code": "SAME_CATEGORY",
        "severity": "error",
        "detail": "invoice_lines.csv row 1 (line l1): slot 1 and slot 2 share category 'Partner'",
        "fix": "Give client 'c1' an option outside the 'Partner' category",
    }
    row.update(changes)
    return pl.DataFrame(
        [row],
        schema={
            "practice_id": pl.Utf8,
            "invoice_id": pl.Utf8,
            "line_id": pl.Utf8,
            "code": pl.Enum(CODES),
            "severity": pl.Enum(SEVERITIES),
            "detail": pl.Utf8,
            "fix": pl.Utf8,
        },
    )


def _xero_line_items(*rows: dict) -> pl.DataFrame:
    base = {
        "practice_id": "p1",
        "invoice_id": "i1",
        "invoice_number": "INV-1",
        "line_no": 1,
        "description": "Monthly bookkeeping",
        "quantity": Decimal("3"),
        "unit_amount": Decimal("33.335"),
        "line_amount": Decimal("100.01"),
        "account_code": "200",
        "tax_type": "OUTPUT2",
        "tracking1_name": "Partner",
        "tracking1_option": "Partner A",
        "tracking2_name": "Department",
        "tracking2_option": "Tax Team",
    }
    return pl.DataFrame(
        [{**base, **r} for r in (rows or ({},))],
        schema={
            "practice_id": pl.Utf8,
            "invoice_id": pl.Utf8,
            "invoice_number": pl.Utf8,
            "line_no": pl.Int32,
            "description": pl.Utf8,
            "quantity": QUANTITY,
            "unit_amount": UNIT_AMOUNT,
            "line_amount": AMOUNT,
            "account_code": pl.Utf8,
            "tax_type": pl.Utf8,
            "tracking1_name": pl.Utf8,
            "tracking1_option": pl.Utf8,
            "tracking2_name": pl.Utf8,
            "tracking2_option": pl.Utf8,
        },
    )


def _rejected(schema, frame: pl.DataFrame, *named: str) -> str:
    with pytest.raises(OutputCheckFailed) as failed:
        validate_output(schema, frame)
    message = str(failed.value)
    assert message.startswith(f"output table {schema.name} failed")
    for name in named:
        assert name in message, message
    return message


# line_tracking ---------------------------------------------------------------------------------------


def test_line_tracking_accepts_a_resolved_line_and_a_bare_not_xero_line():
    bare = dict.fromkeys(
        ("tracking1_category", "tracking1_option", "tracking1_source")
        + ("tracking2_category", "tracking2_option", "tracking2_source")
    )
    frame = pl.concat([_line_tracking(), _line_tracking(line_id="l2", invoice_state="not_xero", **bare)])

    assert validate_output(LINE_TRACKING, frame).height == 2


def test_line_tracking_rejects_a_not_xero_line_carrying_a_slot():
    frame = _line_tracking(
        invoice_state="not_xero", tracking2_category=None, tracking2_option=None, tracking2_source=None
    )

    _rejected(LINE_TRACKING, frame, "not_xero_lines_carry_no_slots")


def test_line_tracking_rejects_an_option_without_a_source():
    _rejected(LINE_TRACKING, _line_tracking(tracking2_source=None), "names_have_a_source")


def test_line_tracking_rejects_a_source_outside_its_set():
    _rejected(LINE_TRACKING, _line_tracking(tracking2_source="template"), "tracking2_source", "isin")


def test_line_tracking_rejects_a_line_twice():
    _rejected(LINE_TRACKING, pl.concat([_line_tracking(), _line_tracking()]), "multiple_fields_uniqueness")


def test_line_tracking_rejects_a_float_amount():
    frame = _line_tracking().with_columns(pl.col("line_amount").cast(pl.Float64))

    _rejected(LINE_TRACKING, frame, "line_amount: dtype")


# exceptions ------------------------------------------------------------------------------------------


def test_exceptions_accepts_a_problem_and_an_orphan_with_a_null_invoice():
    frame = pl.concat([_exceptions(), _exceptions(invoice_id=None, code="ORPHAN_LINE")])

    assert validate_output(EXCEPTIONS, frame).height == 2


def test_exceptions_rejects_a_detail_that_says_nothing():
    _rejected(EXCEPTIONS, _exceptions(detail="bad"), "detail", "str_length")


def test_exceptions_rejects_a_null_detail():
    _rejected(EXCEPTIONS, _exceptions(detail=None), "detail", "not_nullable")


def test_exceptions_rejects_a_problem_that_does_not_say_what_to_do():
    _rejected(EXCEPTIONS, _exceptions(fix=None), "fix", "not_nullable")


def test_exceptions_rejects_a_code_outside_the_contract():
    frame = _exceptions().with_columns(pl.lit("OOPS").alias("code"))

    _rejected(EXCEPTIONS, frame, "code: dtype")


# xero_line_items -------------------------------------------------------------------------------------


def test_xero_line_items_accepts_lines_as_sent():
    frame = _xero_line_items(
        {},
        {"line_no": 2, "quantity": Decimal("-3"), "line_amount": Decimal("-100.01")},
        {"line_no": 3, "tracking2_name": None, "tracking2_option": None},
    )

    assert validate_output(XERO_LINE_ITEMS, frame).height == 3


@pytest.mark.parametrize("wrong", ["100.00", "100.02", "-100.01"])
def test_xero_line_items_rejects_a_line_amount_that_is_not_quantity_times_unit_amount_rounded(wrong):
    frame = _xero_line_items({"line_amount": Decimal(wrong)})

    _rejected(XERO_LINE_ITEMS, frame, "line_amount_is_quantity_times_unit_amount", "row 0")


def test_xero_line_items_rejects_two_options_of_one_category():
    frame = _xero_line_items({"tracking2_name": "Partner", "tracking2_option": "Partner B"})

    _rejected(XERO_LINE_ITEMS, frame, "slots_are_different_categories")


def test_xero_line_items_rejects_a_category_name_without_its_option():
    frame = _xero_line_items({"tracking2_option": None})

    _rejected(XERO_LINE_ITEMS, frame, "names_come_with_options")


@pytest.mark.parametrize(
    "column, value",
    [("tracking1_option", "o" * 101), ("description", "d" * 4001), ("invoice_number", "n" * 256)],
)
def test_xero_line_items_rejects_values_over_xero_limits(column, value):
    _rejected(XERO_LINE_ITEMS, _xero_line_items({column: value}), column, "str_length")


@pytest.mark.parametrize("column", ["account_code", "tax_type", "description"])
def test_xero_line_items_rejects_a_line_missing_what_xero_requires(column):
    _rejected(XERO_LINE_ITEMS, _xero_line_items({column: None}), f"{column}: not_nullable")


def test_xero_line_items_rejects_a_line_number_twice_or_below_one():
    _rejected(XERO_LINE_ITEMS, _xero_line_items({}, {}), "multiple_fields_uniqueness")
    _rejected(XERO_LINE_ITEMS, _xero_line_items({"line_no": 0}), "line_no", "greater_than_or_equal_to")


def test_the_models_accept_what_the_resolver_writes_for_ready_held_consolidated_and_not_xero_invoices():
    b = SourceBuilder()
    b.practice("p2", ledger="sage")
    b.client("p2", "c1", "Sage Client")
    b.client("p1", "c2", "Consolidated Ltd", option="opt-pa", owner="tm-owner", consolidate=True)
    b.template("p1", "svc-partner", "Partner review", option="opt-pb")
    b.approved_invoice("p1", "i1", lines=2)  # ready
    b.invoice("p1", "i2")
    b.line("p1", "i2", "l1", template="svc-partner")  # held: SAME_CATEGORY
    b.invoice("p1", "i3", client_id="c2")
    b.line("p1", "i3", "l1", quantity="3", unit_amount="33.335")
    b.line("p1", "i3", "l2", template="svc-partner")  # consolidated: a warning only
    b.approved_invoice("p2", "i1")  # not_xero
    b.line("p1", "i-missing", "l1")  # orphan
    result = b.resolve()

    assert set(result.line_tracking["invoice_state"].cast(str)) == {"ready", "held", "not_xero"}
    assert validate_output(LINE_TRACKING, result.line_tracking).height == 6
    assert validate_output(EXCEPTIONS, result.exceptions).height == 3
    assert validate_output(XERO_LINE_ITEMS, result.xero_line_items).height == 3
