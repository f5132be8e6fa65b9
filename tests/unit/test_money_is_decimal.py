"""Money is decimal end to end, never a float. A line's amount is quantity × unit_amount rounded to 2
places, half away from zero."""

from decimal import Decimal

import polars as pl
import pytest

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import line, sent


def _amount_of(quantity: str, unit_amount: str) -> Decimal:
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", quantity=quantity, unit_amount=unit_amount)
    result = b.resolve()
    assert line(result, "l1")["line_amount"] == sent(result)[0]["line_amount"]
    return sent(result)[0]["line_amount"]


@pytest.mark.parametrize(
    "quantity, unit_amount, amount",
    [
        ("3", "33.335", "100.01"),  # 100.005: half away from zero, not to even
        ("-3", "33.335", "-100.01"),
        ("1", "0.005", "0.01"),
        ("1", "0.0049", "0.00"),
        ("0.5", "0.0250", "0.01"),  # 0.0125
        ("7", "0.1", "0.70"),  # 0.7000000000000001 as a float
        ("12345678.9", "12.3456", "152414813.43"),  # 152414813.42784 exactly
    ],
)
def test_line_amount_is_quantity_times_unit_amount_rounded_half_away_from_zero(quantity, unit_amount, amount):
    assert _amount_of(quantity, unit_amount) == Decimal(amount)


def test_money_columns_are_decimals_in_every_output():
    b = SourceBuilder()
    b.approved_invoice("p1", "i1", lines=2)
    result = b.resolve()

    assert result.line_tracking.schema["line_amount"] == pl.Decimal(18, 2)
    items = result.xero_line_items.schema
    assert (items["quantity"], items["unit_amount"], items["line_amount"]) == (
        pl.Decimal(18, 4),
        pl.Decimal(18, 4),
        pl.Decimal(18, 2),
    )
    assert isinstance(result.xero_invoices.schema["total"], pl.Decimal)
    for row in sent(result):
        assert all(type(row[c]) is Decimal for c in ("quantity", "unit_amount", "line_amount"))
    assert type(result.xero_invoices["total"].item()) is Decimal


def test_a_total_of_many_tenths_is_exact():
    b = SourceBuilder()
    b.client("p1", "c2", "Tenths Ltd", option="opt-pa", owner="tm-owner", consolidate=True)
    b.invoice("p1", "i1", client_id="c2")
    for n in range(10):
        b.line("p1", "i1", f"l{n}", unit_amount="0.1")
    b.invoice("p1", "i2")
    for n in range(10):
        b.line("p1", "i2", f"l{n}", unit_amount="0.1")
    result = b.resolve()

    assert sent(result, "i1")[0]["unit_amount"] == Decimal("1.00")
    totals = dict(zip(result.xero_invoices["invoice_id"], result.xero_invoices["total"], strict=True))
    assert totals == {"i1": Decimal("1.00"), "i2": Decimal("1.00")}
