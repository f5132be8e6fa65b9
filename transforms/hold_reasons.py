"""Why an invoice is held: R5 (same category), R8 (options that exist and are active), broken references,
and R9 (any error on any line holds the whole invoice).

Each check returns problem rows (practice_id, invoice_id, line_id, code, severity, detail, fix): the detail
says what is wrong, the fix what to do about it, in the finance lead's words, both from the same row and
value. A problem
that changes what Xero receives is an `error` and holds its invoice; one about something that is not
sent (slot 2 of a consolidated invoice, say) is a `warning` and holds nothing.
"""

from __future__ import annotations

import polars as pl

from transforms.resolve_slots import slot2_from_owner
from transforms.vocabulary import UNIT_AMOUNT, Code, Severity

PROBLEM_COLUMNS = ["practice_id", "invoice_id", "line_id", "code", "severity", "detail", "fix"]
PROBLEM_SCHEMA = {
    "practice_id": pl.Utf8,
    "invoice_id": pl.Utf8,
    "line_id": pl.Utf8,
    "code": Code,
    "severity": Severity,
    "detail": pl.Utf8,
    "fix": pl.Utf8,
}
POLICIES = ("hold", "drop_secondary")


def problems(
    frame: pl.LazyFrame,
    when: pl.Expr,
    code: str,
    detail: pl.Expr,
    severity: pl.Expr | str = "error",
    *,
    fix: pl.Expr,
) -> pl.LazyFrame:
    """Rows of `frame` meeting `when`, as problems with the given code, detail and fix (one sentence: what
    to change, and where, so that the next run finds it fixed)."""
    line_id = pl.col("line_id") if "line_id" in frame.collect_schema().names() else pl.lit(None, pl.Utf8)
    sev = pl.lit(severity) if isinstance(severity, str) else severity
    keys = ["_practice_id", "_invoice_id", "_line_id"]
    found = frame.filter(when).with_columns(
        pl.col("practice_id").alias("_practice_id"),
        pl.col("invoice_id").alias("_invoice_id"),
        line_id.alias("_line_id"),
    )
    # A null value in a detail reads "(none)": pl.format would otherwise make the whole detail null.
    readable = found.with_columns(pl.col(pl.String).exclude(keys).fill_null("(none)"))
    return readable.select(
        pl.col("_practice_id").alias("practice_id"),
        pl.col("_invoice_id").alias("invoice_id"),
        pl.col("_line_id").alias("line_id"),
        pl.lit(code).cast(Code).alias("code"),
        sev.cast(Severity).alias("severity"),
        detail.alias("detail"),
        fix.alias("fix"),
    )


def shown(column: str | pl.Expr) -> pl.Expr:
    """A value as a detail shows it, `(none)` for a null, whatever its type (`problems` does this for
    text columns; numbers such as row numbers need it here)."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.cast(pl.Utf8).fill_null("(none)")


def _where(file: str, row: str, line: bool = True) -> pl.Expr:
    """`invoice_lines.csv row 12 (line L3)`: the place a detail starts from."""
    if line:
        return pl.format("{} row {} (line {})", pl.lit(file), shown(row), shown("line_id"))
    number = pl.coalesce(pl.col("invoice_number"), pl.col("invoice_id"))
    return pl.format("{} row {} (invoice {})", pl.lit(file), shown(row), shown(number))


# R5 -------------------------------------------------------------------------------------------------


def same_category() -> pl.Expr:
    """R5: the two slots hold options of the same category group."""
    return (pl.col("tracking1_category_id") == pl.col("tracking2_category_id")).fill_null(False)


def drops_secondary(policy: str) -> pl.Expr:
    """R5 under policy `drop_secondary`: the line is sent with slot 1 only."""
    if policy not in POLICIES:
        raise ValueError(f"same-category policy must be one of {POLICIES}, not {policy!r}")
    return same_category() & pl.lit(policy == "drop_secondary")


def same_category_problems(lines: pl.LazyFrame, policy: str, files: dict[str, str]) -> pl.LazyFrame:
    held = pl.lit(policy == "hold") & ~pl.col("consolidated")
    detail = pl.format(
        "{}: slot 1 '{}' (client) and slot 2 '{}' ({}) are both options of category '{}'{}",
        _where(files["invoice_lines"], "line_row"),
        shown("tracking1_option"),
        shown("tracking2_option"),
        shown("tracking2_source"),
        shown("tracking1_category"),
        pl.when(pl.col("consolidated"))
        .then(pl.lit("; the invoice is consolidated, so slot 2 is not sent"))
        .when(held)
        .then(pl.lit(""))
        .otherwise(pl.lit("; sent with slot 1 only")),
    )
    severity = pl.when(held).then(pl.lit("error")).otherwise(pl.lit("warning"))
    slot2_holder = (
        pl.when(pl.col("tracking2_source") == "service")
        .then(pl.format("service template '{}'", shown("service_template_id")))
        .otherwise(pl.format("team member '{}' (the client's owner)", shown("owner_team_member_id")))
    )
    fix = pl.format(
        "Give client '{}' an option outside the '{}' category, or give {} an option outside it",
        shown("client_id"),
        shown("tracking1_category"),
        slot2_holder,
    )
    return problems(lines, same_category(), "SAME_CATEGORY", detail, severity, fix=fix)


# R8 -------------------------------------------------------------------------------------------------


def option_problems(lines: pl.LazyFrame, slot: int, files: dict[str, str]) -> pl.LazyFrame:
    """R8 on what is sent: the option must exist in the invoice's own practice, and it and its category
    must be ACTIVE.

    A slot that is sent and breaks this is an `error`. Slot 2 of a Xero line that is resolved but not
    sent (consolidated invoice, or dropped under `drop_secondary`) is checked too, as a `warning`: it
    holds nothing, but the broken option is not hidden. Slot 1 is the client's on every line, so a slot 1
    not sent (later lines of a consolidated invoice) is the one line 1 sends, already checked there.
    """
    p = f"tracking{slot}_"
    sent = pl.col(f"sends_slot{slot}")
    unsent = ~sent & pl.col("is_xero") & pl.col(f"{p}option_id").is_not_null()
    checked = (sent | unsent) if slot == 2 else sent
    severity = pl.when(sent).then(pl.lit("error")).otherwise(pl.lit("warning"))
    not_sent = (
        pl.when(sent)
        .then(pl.lit(""))
        .when(pl.col("consolidated"))
        .then(pl.lit("; the invoice is consolidated, so slot 2 is not sent"))
        .otherwise(pl.lit("; slot 2 is not sent (same category as slot 1)"))
    )
    where = _where(files["invoice_lines"], "line_row")
    source = shown(f"{p}source")
    holder = _option_holder(slot)
    found = pl.col(f"{p}option_found")
    unknown_option = checked & ~found
    unknown_category = checked & found & pl.col(f"{p}category").is_null()
    option_status = pl.col(f"{p}option_status")
    category_status = pl.col(f"{p}category_status")
    inactive = (
        checked
        & found
        & pl.col(f"{p}category").is_not_null()
        & ((option_status != "ACTIVE").fill_null(False) | (category_status != "ACTIVE").fill_null(False))
    )
    return pl.concat(
        [
            problems(
                lines,
                unknown_option,
                "UNKNOWN_OPTION",
                pl.format(
                    "{}: slot {} option id '{}' from the {} is not in practice '{}' {}{}",
                    where,
                    pl.lit(slot),
                    shown(f"{p}option_id"),
                    source,
                    shown("practice_id"),
                    pl.lit(files["tracking_options"]),
                    not_sent,
                ),
                severity,
                fix=pl.format(
                    "Add option id '{}' to practice '{}' in {}, or give {} an option it has",
                    shown(f"{p}option_id"),
                    shown("practice_id"),
                    pl.lit(files["tracking_options"]),
                    holder,
                ),
            ),
            problems(
                lines,
                unknown_category,
                "UNKNOWN_OPTION",
                pl.format(
                    "{}: slot {} option '{}' ({} row {}) names category id '{}', "
                    "which is not in practice '{}' {}{}",
                    where,
                    pl.lit(slot),
                    shown(f"{p}option"),
                    pl.lit(files["tracking_options"]),
                    shown(f"{p}option_row"),
                    shown(f"{p}category_id"),
                    shown("practice_id"),
                    pl.lit(files["tracking_categories"]),
                    not_sent,
                ),
                severity,
                fix=pl.format(
                    "Add category id '{}' to practice '{}' in {}, or move option '{}' to a category it has",
                    shown(f"{p}category_id"),
                    shown("practice_id"),
                    pl.lit(files["tracking_categories"]),
                    shown(f"{p}option"),
                ),
            ),
            problems(
                lines,
                inactive,
                "ARCHIVED_OPTION",
                pl.format(
                    "{}: slot {} '{}: {}' from the {} is not active (option {}, category {}){}",
                    where,
                    pl.lit(slot),
                    shown(f"{p}category"),
                    shown(f"{p}option"),
                    source,
                    shown(option_status),
                    shown(category_status),
                    not_sent,
                ),
                severity,
                fix=pl.format(
                    "Make '{}: {}' active again in the practice app, or give {} an active option",
                    shown(f"{p}category"),
                    shown(f"{p}option"),
                    holder,
                ),
            ),
        ],
        how="vertical",
    )


def _option_holder(slot: int) -> pl.Expr:
    """Who gave the slot its option, for a fix: `client 'C1'`, `service template 'S1'`, `team member 'T1'`."""
    source = pl.col(f"tracking{slot}_source")
    return (
        pl.when(source == "client")
        .then(pl.format("client '{}'", shown("client_id")))
        .when(source == "service")
        .then(pl.format("service template '{}'", shown("service_template_id")))
        .otherwise(
            pl.format(
                "team member '{}' (the owner of client '{}')",
                shown("owner_team_member_id"),
                shown("client_id"),
            )
        )
    )


# References -----------------------------------------------------------------------------------------


def reference_problems(lines: pl.LazyFrame, files: dict[str, str]) -> pl.LazyFrame:
    """Broken references of lines: templates, owners, account codes and tax types."""
    where = _where(files["invoice_lines"], "line_row")
    template_id = pl.col("service_template_id")
    owner_unknown = (
        pl.col("owner_team_member_id").is_not_null() & ~pl.col("owner_found") & pl.col("client_found")
    )
    # Slot 2 of a consolidated invoice is not sent, so an unknown owner there does not hold it.
    owner_severity = pl.when(pl.col("consolidated")).then(pl.lit("warning")).otherwise(pl.lit("error"))
    owner_not_sent = (
        pl.when(pl.col("consolidated"))
        .then(pl.lit("; the invoice is consolidated, so slot 2 is not sent"))
        .otherwise(pl.lit(""))
    )
    fields_sent = pl.col("sends_line")
    # A missing or unknown template is its own UNKNOWN_SERVICE: the account code and tax type it would
    # give are not known, so they are not reported missing as well.
    lookable = pl.col("template_found") | (
        template_id.is_null() & (pl.col("line_type") != "service").fill_null(True)
    )
    # Said before `problems` reads a null template id as "(none)".
    lines = lines.with_columns(
        pl.when(template_id.is_null())
        .then(pl.lit("and the line names no service template"))
        .otherwise(pl.format("nor on its service template '{}'", template_id))
        .alias("_template_named")
    )
    template_named = pl.col("_template_named")
    return pl.concat(
        [
            problems(
                lines,
                (pl.col("line_type") == "service") & template_id.is_null(),
                "UNKNOWN_SERVICE",
                pl.format("{}: service line has no service_template_id", where),
                fix=pl.format(
                    "Give line '{}' of invoice '{}' a service template, or make it an adhoc line",
                    shown("line_id"),
                    shown("invoice_id"),
                ),
            ),
            problems(
                lines,
                template_id.is_not_null() & ~pl.col("template_found"),
                "UNKNOWN_SERVICE",
                pl.format(
                    "{}: service_template_id '{}' is not in practice '{}' {}",
                    where,
                    template_id,
                    pl.col("practice_id"),
                    pl.lit(files["service_templates"]),
                ),
                fix=pl.format(
                    "Add service template '{}' to practice '{}' in {}, or give line '{}' a template it has",
                    template_id,
                    pl.col("practice_id"),
                    pl.lit(files["service_templates"]),
                    shown("line_id"),
                ),
            ),
            problems(
                lines,
                slot2_from_owner() & owner_unknown,
                "UNKNOWN_TEAM_MEMBER",
                pl.format(
                    "{}: slot 2 needs the owner of client '{}', but owner_team_member_id '{}' ({} row {}) "
                    "is not in practice '{}' {}{}",
                    where,
                    shown("client_id"),
                    shown("owner_team_member_id"),
                    pl.lit(files["clients"]),
                    shown("client_row"),
                    shown("practice_id"),
                    pl.lit(files["team_members"]),
                    owner_not_sent,
                ),
                owner_severity,
                fix=pl.format(
                    "Add team member '{}' to practice '{}' in {}, or give client '{}' an owner who is there",
                    shown("owner_team_member_id"),
                    shown("practice_id"),
                    pl.lit(files["team_members"]),
                    shown("client_id"),
                ),
            ),
            problems(
                lines,
                fields_sent & lookable & pl.col("account_code").is_null(),
                "MISSING_ACCOUNT_CODE",
                pl.format("{}: no account_code on the line, {}", where, template_named),
                fix=_give_line_or_template("an account code"),
            ),
            problems(
                lines,
                (fields_sent | pl.col("consolidated")) & lookable & pl.col("tax_type").is_null(),
                "MISSING_TAX_TYPE",
                pl.format("{}: no tax_type on the line, {}", where, template_named),
                fix=_give_line_or_template("a tax type"),
            ),
        ],
        how="vertical",
    )


def _give_line_or_template(what: str) -> pl.Expr:
    """`Give line 'L1' an account code, or give its service template 'S1' one` (no template: the line)."""
    return (
        pl.when(pl.col("service_template_id").is_null() | (pl.col("service_template_id") == "(none)"))
        .then(pl.format(f"Give line '{{}}' of invoice '{{}}' {what}", shown("line_id"), shown("invoice_id")))
        .otherwise(
            pl.format(
                f"Give line '{{}}' of invoice '{{}}' {what}, or give its service template '{{}}' one",
                shown("line_id"),
                shown("invoice_id"),
                pl.col("service_template_id"),
            )
        )
    )


def amount_problems(lines: pl.LazyFrame, files: dict[str, str]) -> pl.LazyFrame:
    """A consolidated invoice whose one amount, the sum of its lines, is too large to be its one line's
    unit amount (a decimal of 14 digits and 4 places, 10^14 and over): held with INVALID_VALUE rather than
    sent without an amount. (A line's own quantity × unit_amount is bounded when the source is parsed, but
    a hundred lines just under that bound add up past it.)"""
    totals = (
        lines.filter(pl.col("consolidated"))
        .group_by("practice_id", "invoice_id")
        .agg(
            pl.col("invoice_number").first(),
            pl.col("line_amount").cast(pl.Decimal(38, 2)).sum().alias("total"),
            pl.col("line_amount").is_null().any().alias("some_missing"),
        )
    )
    total_overflow = ~pl.col("some_missing") & pl.col("total").cast(UNIT_AMOUNT, strict=False).is_null()
    return problems(
        totals,
        total_overflow,
        "INVALID_VALUE",
        pl.format(
            "invoice {} of a consolidate_lines client: the sum of its line amounts, {}, "
            "is too large for one Xero line amount",
            shown(pl.coalesce("invoice_number", "invoice_id")),
            shown("total"),
        ),
        fix=pl.format(
            "Split invoice {} into invoices of smaller totals, or turn off consolidate_lines for its client",
            shown(pl.coalesce("invoice_number", "invoice_id")),
        ),
    )


def consolidation_problems(lines: pl.LazyFrame, files: dict[str, str]) -> pl.LazyFrame:
    """R6: a consolidated invoice whose lines have different effective tax types is held."""
    taxed = lines.filter(pl.col("consolidated") & pl.col("tax_type").is_not_null())
    mixed_invoices = (
        taxed.group_by("practice_id", "invoice_id")
        .agg(pl.col("tax_type").n_unique().alias("tax_types"))
        .filter(pl.col("tax_types") > 1)
    )
    # The (few) mixed invoices' lines, in line order, named one by one.
    mixed = (
        taxed.join(mixed_invoices, on=["practice_id", "invoice_id"], how="semi")
        .sort("practice_id", "invoice_id", "line_no")
        .group_by("practice_id", "invoice_id", maintain_order=True)
        .agg(
            pl.col("invoice_number").first(),
            pl.col("client_id").first(),
            pl.format(
                "row {} (line {}) tax_type '{}'", shown("line_row"), pl.col("line_id"), pl.col("tax_type")
            )
            .str.join(", ")
            .alias("pairs"),
        )
    )
    return problems(
        mixed,
        pl.lit(True),
        "CONSOLIDATION_TAX_MISMATCH",
        pl.format(
            "invoice {} of a consolidate_lines client cannot be one Xero line: its lines have different "
            "tax types: {} {}",
            shown(pl.coalesce("invoice_number", "invoice_id")),
            pl.lit(files["invoice_lines"]),
            pl.col("pairs"),
        ),
        fix=pl.format(
            "Give every line of invoice {} the same tax type, or turn off consolidate_lines for client '{}'",
            shown(pl.coalesce("invoice_number", "invoice_id")),
            shown("client_id"),
        ),
    )


def invoice_problems(heads: pl.LazyFrame, files: dict[str, str]) -> pl.LazyFrame:
    """Invoice-level checks: the practice and client exist, and an approved invoice has lines."""
    where = _where(files["invoices"], "invoice_row", line=False)
    return pl.concat(
        [
            problems(
                heads,
                ~pl.col("practice_found"),
                "INVALID_VALUE",
                pl.format(
                    "{}: practice_id '{}' is not in {}",
                    where,
                    pl.col("practice_id"),
                    pl.lit(files["practices"]),
                ),
                fix=pl.format(
                    "Add practice '{}' to {}, or correct the practice_id of invoice {}",
                    pl.col("practice_id"),
                    pl.lit(files["practices"]),
                    shown(pl.coalesce("invoice_number", "invoice_id")),
                ),
            ),
            problems(
                heads,
                pl.col("is_xero") & ~pl.col("client_found") & pl.col("client_id").is_not_null(),
                "UNKNOWN_CLIENT",
                pl.format(
                    "{}: client_id '{}' is not in practice '{}' {}",
                    where,
                    pl.col("client_id"),
                    pl.col("practice_id"),
                    pl.lit(files["clients"]),
                ),
                fix=pl.format(
                    "Add client '{}' to practice '{}' in {}, or give invoice {} a client it has",
                    pl.col("client_id"),
                    pl.col("practice_id"),
                    pl.lit(files["clients"]),
                    shown(pl.coalesce("invoice_number", "invoice_id")),
                ),
            ),
            problems(
                heads,
                pl.col("is_xero") & (pl.col("line_count") == 0),
                "EMPTY_INVOICE",
                pl.format("{}: approved invoice has no lines in {}", where, pl.lit(files["invoice_lines"])),
                fix=pl.format(
                    "Add the lines of invoice {} to {}, or void it in the practice app",
                    shown(pl.coalesce("invoice_number", "invoice_id")),
                    pl.lit(files["invoice_lines"]),
                ),
            ),
        ],
        how="vertical",
    )


def orphan_line_problems(orphans: pl.LazyFrame, files: dict[str, str]) -> pl.LazyFrame:
    """Lines whose invoice does not exist in their practice: recorded with a null invoice."""
    return problems(
        orphans.rename({"invoice_id": "missing_invoice_id"}).with_columns(
            pl.lit(None, pl.Utf8).alias("invoice_id")
        ),
        pl.lit(True),
        "ORPHAN_LINE",
        pl.format(
            "{} row {} (line {}): invoice_id '{}' is not in practice '{}' {}",
            pl.lit(files["invoice_lines"]),
            pl.col("_row"),
            pl.col("line_id"),
            pl.col("missing_invoice_id"),
            pl.col("practice_id"),
            pl.lit(files["invoices"]),
        ),
        fix=pl.format(
            "Add invoice '{}' to practice '{}' in {}, or correct the invoice_id of line '{}' (or remove it)",
            pl.col("missing_invoice_id"),
            pl.col("practice_id"),
            pl.lit(files["invoices"]),
            pl.col("line_id"),
        ),
    )


def source_problems_of_invoices(
    source: pl.LazyFrame, heads: pl.LazyFrame, lines: pl.LazyFrame
) -> pl.LazyFrame:
    """Values that did not parse, and repeated keys, held against the invoices that depend on them.

    An invoice depends on its own row and lines (and on any line naming its invoice id without a
    practice_id), its practice and client, the templates its lines name,
    the owner wherever slot 2 would come from it (R2 to R4) and be sent (not on a consolidated invoice),
    and the options and categories it sends.
    """

    def by(table: str) -> pl.LazyFrame:
        return source.filter(pl.col("table") == table).select(
            "practice_id", "key", "line_id", "detail", "code", "fix"
        )

    inv = heads.select("practice_id", "invoice_id", "client_id")
    own = [
        by("invoices")
        .join(
            inv.select("practice_id", pl.col("invoice_id").alias("key")),
            on=["practice_id", "key"],
            how="inner",
        )
        .rename({"key": "invoice_id"}),
        by("invoice_lines")
        .join(
            inv.select("practice_id", pl.col("invoice_id").alias("key")),
            on=["practice_id", "key"],
            how="inner",
        )
        .rename({"key": "invoice_id"}),
        # A line without a practice_id may belong to that invoice id in any practice: none of them may be
        # sent without it, so each is held (the row carries no practice's data, so nothing crosses over).
        by("invoice_lines")
        .filter(pl.col("practice_id").is_null())
        .drop("practice_id")
        .join(inv.select("practice_id", pl.col("invoice_id").alias("key")), on="key", how="inner")
        .rename({"key": "invoice_id"}),
    ]
    by_invoice = [
        by("practices").drop("line_id").join(inv.select("practice_id", "invoice_id"), on="practice_id"),
        by("clients")
        .drop("line_id")
        .join(inv, left_on=["practice_id", "key"], right_on=["practice_id", "client_id"])
        .drop("key"),
    ]
    # Where each line depends on a reference row, as (table, the line's column naming it, when it does).
    # The owner is depended on wherever slot 2 would come from it and be sent, whichever copy of a
    # repeated team member was kept (the kept copy may have no option, the other one may).
    depends = (
        ("service_templates", "service_template_id", pl.lit(True)),
        (
            "team_members",
            "owner_team_member_id",
            pl.col("is_xero") & ~pl.col("consolidated") & slot2_from_owner(),
        ),
        ("tracking_options", "tracking1_option_id", pl.col("sends_slot1")),
        ("tracking_options", "tracking2_option_id", pl.col("sends_slot2")),
        ("tracking_categories", "tracking1_category_id", pl.col("sends_slot1")),
        ("tracking_categories", "tracking2_category_id", pl.col("sends_slot2")),
    )
    # Source problems are few: only lines naming one of their keys are joined (a million lines otherwise).
    problem_keys = source.select("table", "key").collect()
    by_line = []
    for table, column, when in depends:
        keys = problem_keys.filter(pl.col("table") == table)["key"].drop_nulls()
        if keys.is_empty():
            continue
        used = lines.filter(pl.col(column).is_in(keys.implode()) & when).select(
            "practice_id", "invoice_id", "line_id", pl.col(column).alias("key")
        )
        by_line.append(
            by(table)
            .drop("line_id")
            .join(used, on=["practice_id", "key"])
            .select("practice_id", "invoice_id", "line_id", "detail", "code", "fix")
        )
    columns = ["practice_id", "invoice_id", "line_id", "code", "detail", "fix"]
    frames = (
        [f.select(columns) for f in own]
        + [f.with_columns(pl.lit(None, pl.Utf8).alias("line_id")).select(columns) for f in by_invoice]
        + [f.select(columns) for f in by_line]
    )
    return (
        pl.concat(frames, how="vertical")
        .unique(maintain_order=True)
        .select(
            "practice_id",
            "invoice_id",
            "line_id",
            pl.col("code").cast(Code),
            pl.lit("error").cast(Severity).alias("severity"),
            "detail",
            "fix",
        )
    )


def unattributed_source_problems(source: pl.LazyFrame) -> pl.LazyFrame:
    """Problems of rows no invoice can be traced to: errors for invoices and lines whose keys are missing,
    warnings for reference rows (which also hold every invoice that uses them)."""
    is_invoice_data = pl.col("table").is_in(["invoices", "invoice_lines"])
    unidentified = pl.col("practice_id").is_null() | pl.col("key").is_null()
    return source.filter(~is_invoice_data | unidentified).select(
        "practice_id",
        pl.when(is_invoice_data).then(pl.col("invoice_id")).alias("invoice_id"),
        pl.when(is_invoice_data).then(pl.col("line_id")).alias("line_id"),
        pl.col("code").cast(Code),
        pl.when(is_invoice_data)
        .then(pl.lit("error"))
        .otherwise(pl.lit("warning"))
        .cast(Severity)
        .alias("severity"),
        "detail",
        "fix",
    )
