"""Which tracking option goes in each of a line's two Xero slots (rules R1 to R4), and R7 (Xero only).

Every lookup joins on practice_id as well as its key, so one practice's options never reach another's lines.
"""

from __future__ import annotations

import polars as pl

from transforms.vocabulary import AMOUNT, LineType


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


def _lookup(frame: pl.LazyFrame, key: str, columns: dict[str, str], found: str) -> pl.LazyFrame:
    return frame.select(
        "practice_id",
        pl.col(key).alias(f"_{found}_key"),
        *(pl.col(src).alias(dst) for src, dst in columns.items()),
        pl.lit(True).alias(found),
    )


def option_names(options: pl.LazyFrame, categories: pl.LazyFrame) -> pl.LazyFrame:
    """Each option with its category's name and status: the table both slots look up."""
    cats = categories.select(
        "practice_id",
        "tracking_category_id",
        pl.col("name").alias("category_name"),
        pl.col("status").alias("category_status"),
        pl.col("_row").alias("category_row"),
    )
    return options.select(
        "practice_id",
        "tracking_option_id",
        "tracking_category_id",
        pl.col("name").alias("option_name"),
        pl.col("status").alias("option_status"),
        pl.col("_row").alias("option_row"),
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


def resolve_slots(
    lines: pl.LazyFrame,
    invoices: pl.LazyFrame,
    practices: pl.LazyFrame,
    clients: pl.LazyFrame,
    team_members: pl.LazyFrame,
    service_templates: pl.LazyFrame,
    options: pl.LazyFrame,
    categories: pl.LazyFrame,
) -> pl.LazyFrame:
    """One row per line of the given invoices, with both slots resolved (R1 to R4) and every lookup's result.

    `invoices` holds the invoices to resolve; `lines` may hold more (they are inner-joined). Options of
    non-Xero practices are not looked up (R7): their lines carry no slots.
    """
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
    )
    names = option_names(options, categories)

    resolved = (
        lines.rename({"_row": "line_row"})
        .join(head, on=["practice_id", "invoice_id"], how="inner", validate="m:1")
        .join(ledger, on="practice_id", how="left", validate="m:1")
        .join(
            client,
            left_on=["practice_id", "client_id"],
            right_on=["practice_id", "_client_found_key"],
            how="left",
            validate="m:1",
        )
        .join(
            owner,
            left_on=["practice_id", "owner_team_member_id"],
            right_on=["practice_id", "_owner_found_key"],
            how="left",
            validate="m:1",
        )
        .join(
            template,
            left_on=["practice_id", "service_template_id"],
            right_on=["practice_id", "_template_found_key"],
            how="left",
            validate="m:1",
        )
        .with_columns(
            pl.col("line_type").cast(LineType),
            pl.col("consolidate_lines").fill_null(False),
            *(
                pl.col(c).fill_null(False)
                for c in ("practice_found", "client_found", "owner_found", "template_found")
            ),
            pl.coalesce("account_code", "template_account_code").alias("account_code"),
            pl.coalesce("tax_type", "template_tax_type").alias("tax_type"),
            line_amount().alias("line_amount"),
            is_xero_practice().fill_null(False).alias("is_xero"),
        )
        .with_columns(
            pl.when(pl.col("is_xero")).then(slot1_option()).alias("tracking1_option_id"),
            pl.when(pl.col("is_xero")).then(slot1_source()).alias("tracking1_source"),
            pl.when(pl.col("is_xero")).then(slot2_source()).alias("tracking2_source"),
        )
        .with_columns(slot2_option().alias("tracking2_option_id"))
        .join(_slot_lookup(names, 1), on=["practice_id", "tracking1_option_id"], how="left", validate="m:1")
        .join(_slot_lookup(names, 2), on=["practice_id", "tracking2_option_id"], how="left", validate="m:1")
        .with_columns(pl.col("tracking1_option_found", "tracking2_option_found").fill_null(False))
    )
    return resolved
