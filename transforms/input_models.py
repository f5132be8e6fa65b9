"""Pandera models of the typed source tables, as `parse_sources.parse_table` hands them to the resolver.

A value that did not parse is null here and already a problem row (INVALID_VALUE), so these models pin
what the resolver relies on: keys present and unique within their practice, known value sets, money as
Decimal with at most 4 places. A failure is a bug in the parser: the run stops and changes nothing.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from transforms.parse_sources import KEYS, ROW
from transforms.vocabulary import (
    INVOICE_STATUSES,
    LEDGERS,
    LINE_TYPES,
    OPTION_STATUSES,
    QUANTITY,
    UNIT_AMOUNT,
)


def _key() -> pa.Column:
    return pa.Column(pl.Utf8, nullable=False, checks=pa.Check.str_length(min_value=1))


def _text() -> pa.Column:
    return pa.Column(pl.Utf8, nullable=True)


def _one_of(values: tuple[str, ...]) -> pa.Column:
    return pa.Column(pl.Utf8, nullable=True, checks=pa.Check.isin(list(values)))


def _model(table: str, columns: dict[str, pa.Column]) -> pa.DataFrameSchema:
    keyed = {k: _key() for k in KEYS[table]}
    return pa.DataFrameSchema(
        {ROW: pa.Column(pl.Int64, checks=pa.Check.ge(1)), **keyed, **columns},
        unique=list(KEYS[table]),
        name=f"typed {table}",
    )


INPUT_MODELS: dict[str, pa.DataFrameSchema] = {
    "practices": _model("practices", {"name": _text(), "ledger": _one_of(LEDGERS)}),
    "tracking_categories": _model(
        "tracking_categories", {"name": _text(), "status": _one_of(OPTION_STATUSES)}
    ),
    "tracking_options": _model(
        "tracking_options",
        {"tracking_category_id": _text(), "name": _text(), "status": _one_of(OPTION_STATUSES)},
    ),
    "team_members": _model("team_members", {"name": _text(), "tracking_option_id": _text()}),
    "service_templates": _model(
        "service_templates",
        {"name": _text(), "tracking_option_id": _text(), "account_code": _text(), "tax_type": _text()},
    ),
    "clients": _model(
        "clients",
        {
            "name": _text(),
            "xero_contact_id": _text(),
            "owner_team_member_id": _text(),
            "tracking_option_id": _text(),
            "consolidate_lines": pa.Column(pl.Boolean, nullable=True),
        },
    ),
    "invoices": _model(
        "invoices",
        {
            "client_id": _text(),
            "invoice_number": _text(),
            "issue_date": pa.Column(pl.Date, nullable=True),
            "due_date": pa.Column(pl.Date, nullable=True),
            "currency": pa.Column(pl.Utf8, nullable=True, checks=pa.Check.str_length(3, 3)),
            "reference": _text(),
            "status": _one_of(INVOICE_STATUSES),
            "updated_at": pa.Column(pl.Datetime("us", "UTC"), nullable=True),
        },
    ),
    "invoice_lines": _model(
        "invoice_lines",
        {
            "position": pa.Column(pl.Int32, nullable=True),
            "line_type": _one_of(LINE_TYPES),
            "service_template_id": _text(),
            "description": _text(),
            "quantity": pa.Column(QUANTITY, nullable=True),
            "unit_amount": pa.Column(UNIT_AMOUNT, nullable=True),
            "account_code": _text(),
            "tax_type": _text(),
        },
    ),
}
