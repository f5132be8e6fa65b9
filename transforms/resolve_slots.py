"""Which tracking option goes in each of a line's two Xero slots (rules R1 to R4), and R7 (Xero only).

Every lookup joins on practice_id as well as its key, so one practice's options never reach another's lines.
What an invoice's lines share (practice, client, owner, slot 1) is looked up once per invoice; what differs
per line (service template, slot 2) once per line.
"""

from __future__ import annotations

import polars as pl

from transforms.consolidate import is_consolidated, with_lookup
from transforms.vocabulary import AMOUNT, OPTION_STATUSES, LineType


def slot1_option() -> pl.Expr:
    """R1: slot 1 is the client's tracking option on every line of the client's invoices."""
    return pl.col("client_option_id")


def slot1_source() -> pl.Expr:
    """R1: slot 1 always comes from the client, when the client has an option."""
    return pl.when(slot1_option().is_not_null()).then(pl.lit("client"))


def slot2_from_service() -> pl.Expr:
    """R2: a `service` line whose template has an option takes it for slot 2."""
    return (pl.col("line_type") == "service") & pl.col("template_option_id").is_not_null()


def slot2_from_owner() -> pl.Expr:
    """R2 to R4: every other line of a known type looks to the client owner for slot 2 (R3: an
    `alignment_fee` line does even when its template has an option). Null line type: neither."""
    return (pl.col("line_type").is_not_null() & ~slot2_from_service()).fill_null(False)


def slot2_source() -> pl.Expr:
    """R2 to R4: where slot 2 comes from.

    R2 a `service` line takes its template's option, else the client owner's;
    R3 an `alignment_fee` line always takes the owner's, even when its template has an option;
    R4 an `adhoc` line takes the owner's.
    """
    return (
        pl.when(slot2_from_service())
        .then(pl.lit("service"))
        .when(slot2_from_owner() & pl.col("owner_option_id").is_not_null())
        .then(pl.lit("owner"))
    )


def slot2_option() -> pl.Expr:
    source = pl.col("tracking2_source")
    return (
        pl.when(source == "service")
        .then(pl.col("template_option_id"))
        .when(source == "owner")
        .then(pl.col("owner_option_id"))
    )


def is_xero_practice() -> pl.Expr:
    """R7: tracking is for Xero only; other ledgers get no slots and no Xero output."""
    return pl.col("ledger") == "xero"


def line_amount() -> pl.Expr:
    """quantity × unit_amount, exact, rounded half away from zero to the cent; null when it overflows."""
    exact = pl.col("quantity").cast(pl.Decimal(38, 8)) * pl.col("unit_amount").cast(pl.Decimal(38, 8))
    return exact.round(2, mode="half_away_from_zero").cast(AMOUNT, strict=False)


def _row_number(column: str = "_row") -> pl.Expr:
    """A source row number as a line carries it, for details: 4 bytes (a source has fewer than 4 billion
    rows, and a million lines carry several of them)."""
    return pl.col(column).cast(pl.UInt32)


def _status(column: str = "status") -> pl.Expr:
    """An option's or category's status as a line carries it: an enum of one byte, not a text."""
    return pl.col(column).cast(pl.Enum(OPTION_STATUSES))


def _lookup(frame: pl.LazyFrame, key: str, columns: dict[str, str], found: str) -> pl.LazyFrame:
    return frame.select(
        "practice_id",
        pl.col(key).alias(f"_{found}_key"),
        *((_row_number() if src == "_row" else pl.col(src)).alias(dst) for src, dst in columns.items()),
        pl.lit(True).alias(found),
    )


def option_names(options: pl.LazyFrame, categories: pl.LazyFrame) -> pl.LazyFrame:
    """Each option with its category's name and status: the table both slots look up."""
    cats = categories.select(
        "practice_id",
        "tracking_category_id",
        pl.col("name").alias("category_name"),
        _status().alias("category_status"),
        _row_number().alias("category_row"),
    )
    return options.select(
        "practice_id",
        "tracking_option_id",
        "tracking_category_id",
        pl.col("name").alias("option_name"),
        _status().alias("option_status"),
        _row_number().alias("option_row"),
    ).join(cats, on=["practice_id", "tracking_category_id"], how="left", validate="m:1")


def _slot_lookup(names: pl.LazyFrame, slot: int) -> pl.LazyFrame:
    p = f"tracking{slot}_"
    return names.select(
        "practice_id",
        pl.col("tracking_option_id").alias(f"{p}option_id"),
        pl.col("tracking_category_id").alias(f"{p}category_id"),
        pl.col("category_name").alias(f"{p}category"),
        pl.col("option_name").alias(f"{p}option"),
        pl.col("option_status").alias(f"{p}option_status"),
        pl.col("category_status").alias(f"{p}category_status"),
        pl.col("category_row").alias(f"{p}category_row"),
        pl.col("option_row").alias(f"{p}option_row"),
        pl.lit(True).alias(f"{p}option_found"),
    )


def slot_columns(slot: int) -> list[str]:
    """The columns one slot's lookup adds to a line: the option, its category, where it came from."""
    p = f"tracking{slot}_"
    return [
        f"{p}option_id",
        f"{p}source",
        f"{p}category_id",
        f"{p}category",
        f"{p}option",
        f"{p}option_status",
        f"{p}category_status",
        f"{p}category_row",
        f"{p}option_row",
        f"{p}option_found",
    ]


# What each line takes from its invoice's lookups (resolve_invoice_lookups): the slot rules and the
# checks read these on every line; the rest of the invoice's columns stay with the invoice.
LINE_INVOICE_COLUMNS = [
    "client_id",
    "invoice_number",
    "issue_date",
    "is_xero",
    "consolidated",
    "client_found",
    "client_row",
    "owner_team_member_id",
    "owner_found",
    "owner_option_id",
    *slot_columns(1),
]


def resolve_invoice_lookups(
    invoices: pl.LazyFrame,
    practices: pl.LazyFrame,
    clients: pl.LazyFrame,
    team_members: pl.LazyFrame,
    names: pl.LazyFrame,
) -> pl.LazyFrame:
    """One row per invoice (in the order given): its practice's ledger (R7), its client and the client's
    owner, and slot 1 (R1), which is the client's on every line. Options of non-Xero practices are not
    looked up (R7)."""
    head = invoices.select(
        "practice_id",
        "invoice_id",
        "client_id",
        "invoice_number",
        "issue_date",
        "due_date",
        "currency",
        "reference",
        "status",
        "updated_at",
        pl.col("_row").alias("invoice_row"),
    )
    ledger = _lookup(practices, "practice_id", {"ledger": "ledger", "_row": "practice_row"}, "practice_found")
    ledger = ledger.drop("_practice_found_key")
    client = _lookup(
        clients,
        "client_id",
        {
            "name": "client_name",
            "xero_contact_id": "xero_contact_id",
            "owner_team_member_id": "owner_team_member_id",
            "tracking_option_id": "client_option_id",
            "consolidate_lines": "consolidate_lines",
            "_row": "client_row",
        },
        "client_found",
    )
    owner = _lookup(
        team_members,
        "team_member_id",
        {"tracking_option_id": "owner_option_id", "_row": "owner_row"},
        "owner_found",
    )
    return (
        head.join(ledger, on="practice_id", how="left", validate="m:1", maintain_order="left")
        .join(
            client,
            left_on=["practice_id", "client_id"],
            right_on=["practice_id", "_client_found_key"],
            how="left",
            validate="m:1",
            maintain_order="left",
        )
        .join(
            owner,
            left_on=["practice_id", "owner_team_member_id"],
            right_on=["practice_id", "_owner_found_key"],
            how="left",
            validate="m:1",
            maintain_order="left",
        )
        .with_columns(
            pl.col("consolidate_lines").fill_null(False),
            *(pl.col(c).fill_null(False) for c in ("practice_found", "client_found", "owner_found")),
            is_xero_practice().fill_null(False).alias("is_xero"),
            # An unknown practice is neither: its invoices are held (INVALID_VALUE), not counted as not_xero.
            (pl.col("ledger") != "xero").fill_null(False).alias("not_xero"),
        )
        .with_columns(
            is_consolidated().alias("consolidated"),
            pl.when(pl.col("is_xero")).then(slot1_option()).alias("tracking1_option_id"),
            pl.when(pl.col("is_xero")).then(slot1_source()).alias("tracking1_source"),
        )
        .join(
            _slot_lookup(names, 1),
            on=["practice_id", "tracking1_option_id"],
            how="left",
            validate="m:1",
            maintain_order="left",
        )
        .with_columns(pl.col("tracking1_option_found").fill_null(False))
    )


def resolve_slots(
    lines: pl.DataFrame,
    invoices: pl.DataFrame,
    service_templates: pl.LazyFrame,
    names: pl.LazyFrame,
) -> pl.DataFrame:
    """One row per line (in the order given), with both slots resolved (R1 to R4) and every lookup's result.

    `lines` carry `_inv`, the row of their invoice in `invoices` (resolve_invoice_lookups, numbered).
    Lookup tables are typed source tables, unique by key (parse_sources keeps the first row of a key).
    """
    template = _lookup(
        service_templates,
        "service_template_id",
        {
            "tracking_option_id": "template_option_id",
            "account_code": "template_account_code",
            "tax_type": "template_tax_type",
            "_row": "template_row",
        },
        "template_found",
    ).collect()
    shared = invoices.select(LINE_INVOICE_COLUMNS).rechunk()[lines["_inv"]]
    resolved = with_lookup(
        lines.rename({"_row": "line_row"}).hstack(shared.get_columns()),
        template,
        ["practice_id", "service_template_id"],
        ["practice_id", "_template_found_key"],
    ).with_columns(
        pl.col("line_type").cast(LineType),
        pl.col("template_found").fill_null(False),
        pl.coalesce("account_code", "template_account_code").alias("account_code"),
        pl.coalesce("tax_type", "template_tax_type").alias("tax_type"),
        line_amount().alias("line_amount"),
        pl.when(pl.col("is_xero")).then(slot2_source()).alias("tracking2_source"),
    )
    resolved = with_lookup(
        resolved.with_columns(slot2_option().alias("tracking2_option_id")),
        _slot_lookup(names, 2).collect(),
        ["practice_id", "tracking2_option_id"],
    )
    # What only served to resolve a value is let go: the template's account code and tax type (now the
    # line's own when it has none) and the owner's option (now in slot 2 when it came from the owner).
    return resolved.with_columns(pl.col("tracking2_option_found").fill_null(False)).drop(
        "template_account_code", "template_tax_type", "owner_option_id"
    )
