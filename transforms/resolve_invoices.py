"""From typed source tables to everything the warehouse and Xero files need.

`resolve_invoices` is the resolution core: pure Polars, given frames and an explicit scope and policy.
What an invoice's lines share is looked up once per invoice; the lines are then numbered by their invoice
(`_inv`), sorted once, resolved and checked in one frame, and only their outputs are copied out of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms import hold_reasons as holds
from transforms.consolidate import (
    INVOICE,
    consolidate_invoice_lines,
    line_order,
    sorted_by,
    with_run_lookup,
)
from transforms.resolve_slots import option_names, resolve_invoice_lookups, resolve_slots
from transforms.schemas import XERO_LIMITS_OF, limit_failures
from transforms.vocabulary import Code, InvoiceState, Severity
from transforms.xero_payload import (
    XERO_INVOICE_COLUMNS,
    XERO_LINE_COLUMNS,
    canonical_payload,
    sent_tracking,
    xero_invoices,
)

TABLES = (
    "practices",
    "tracking_categories",
    "tracking_options",
    "team_members",
    "service_templates",
    "clients",
    "invoices",
    "invoice_lines",
)

LINE_TRACKING_COLUMNS = [
    "practice_id",
    "invoice_id",
    "line_id",
    "position",
    "line_type",
    "issue_date",
    "line_amount",
    "tracking1_category",
    "tracking1_option",
    "tracking1_source",
    "tracking2_category",
    "tracking2_option",
    "tracking2_source",
    "invoice_state",
    "client_id",
    "service_template_id",
    "tracking1_option_id",
    "tracking2_option_id",
    "account_code",
    "tax_type",
]

# What of a line the Xero line items are made of (consolidate_invoice_lines, sent_tracking).
SENT_COLUMNS = [
    "_inv",
    *(c for c in XERO_LINE_COLUMNS if c not in ("tracking1_name", "tracking2_name")),
    "tracking1_category",
    "tracking2_category",
    "sends_slot1",
    "sends_slot2",
    "consolidated",
]

INVOICE_STATE_COLUMNS = [
    "practice_id",
    "invoice_id",
    "invoice_number",
    "client_id",
    "issue_date",
    "updated_at",
    "invoice_state",
    "hold_codes",
    "line_count",
    "consolidated",
]


@dataclass
class Resolution:
    line_tracking: pl.DataFrame
    invoice_states: pl.DataFrame
    exceptions: pl.DataFrame
    xero_line_items: pl.DataFrame
    xero_invoices: pl.DataFrame

    @property
    def payloads(self) -> pl.DataFrame:
        """(practice_id, invoice_id, payload) of each ready invoice: the text its export digest is taken
        of. Made on demand, by the step that writes the warehouse: resolution itself does not need it."""
        return (
            canonical_payload(self.xero_line_items.lazy(), self.xero_invoices.lazy()).collect().sort(INVOICE)
        )


def default_files() -> dict[str, str]:
    return {t: f"{t}.csv" for t in TABLES}


def exportable(invoices: pl.LazyFrame) -> pl.LazyFrame:
    """Approved invoices, and invoices whose status did not parse (held, so nothing goes unseen)."""
    return invoices.filter((pl.col("status") == "approved") | pl.col("status").is_null())


def mark_sent_parts(lines: pl.LazyFrame, policy: str) -> pl.LazyFrame:
    """What of each line Xero would receive: the line itself (R6), slot 1, and slot 2 (R5, R6, R7).

    Needs the lines sorted by invoice and line_id (see `line_order`)."""
    return (
        lines.with_columns(
            line_order().alias("line_no"),
            holds.same_category().alias("same_category"),
            holds.drops_secondary(policy).alias("drops_slot2"),
        )
        .with_columns(
            (~pl.col("consolidated") | (pl.col("line_no") == 1)).alias("sends_line"),
        )
        .with_columns(
            (pl.col("is_xero") & pl.col("sends_line") & pl.col("tracking1_option_id").is_not_null()).alias(
                "sends_slot1"
            ),
            (
                pl.col("is_xero")
                & ~pl.col("consolidated")
                & ~pl.col("drops_slot2")
                & pl.col("tracking2_option_id").is_not_null()
            ).alias("sends_slot2"),
        )
    )


# Where each value Xero limits comes from: (source table, row column, source column, key column, as what
# Xero takes it, slot). A value of the invoice (number, contact) is one problem of the invoice, not one
# per line.
LIMITED_SOURCES = {
    "invoice_number": ("invoices", "invoice_row", "invoice_number", "invoice_id", "an invoice number", None),
    "contact_name": ("clients", "client_row", "name", "client_id", "a contact name", None),
    "description": ("invoice_lines", "line_row", "description", "line_id", "a line description", None),
    "tracking1_name": (
        "tracking_categories",
        "tracking1_category_row",
        "name",
        "tracking1_category_id",
        "a tracking category name",
        1,
    ),
    "tracking1_option": (
        "tracking_options",
        "tracking1_option_row",
        "name",
        "tracking1_option_id",
        "a tracking option name",
        1,
    ),
    "tracking2_name": (
        "tracking_categories",
        "tracking2_category_row",
        "name",
        "tracking2_category_id",
        "a tracking category name",
        2,
    ),
    "tracking2_option": (
        "tracking_options",
        "tracking2_option_row",
        "name",
        "tracking2_option_id",
        "a tracking option name",
        2,
    ),
}


def _limit_problems(candidate_items: pl.DataFrame, files: dict[str, str]) -> pl.DataFrame:
    """R8: values Xero would receive that break its limits, judged by Pandera on exactly what is sent.

    The detail names the source file, row and column the value comes from, its length and its start;
    a value of the invoice (number, contact) is one problem of the invoice, a value of a line one per line.
    """
    failures = limit_failures(candidate_items) if candidate_items.height else None
    if failures is None or failures.is_empty():
        return pl.DataFrame(schema=holds.PROBLEM_SCHEMA)
    rows = candidate_items.with_row_index("index").join(failures, on="index", how="inner")
    found = []
    for column, (table, row, source_column, key, what, slot) in LIMITED_SOURCES.items():
        value = pl.col(column)
        per_line = table != "invoices" and table != "clients"
        sent_on = (
            pl.format(
                "; sent in slot {} of {} row {} (line {})",
                pl.lit(slot),
                pl.lit(files["invoice_lines"]),
                holds.shown("line_row"),
                pl.col("line_id"),
            )
            if slot
            else pl.lit("")
        )
        found.append(
            rows.filter(pl.col("column") == column).select(
                "practice_id",
                "invoice_id",
                (pl.col("line_id") if per_line else pl.lit(None, pl.Utf8)).alias("line_id"),
                pl.lit("INVALID_VALUE").cast(Code).alias("code"),
                pl.lit("error").cast(Severity).alias("severity"),
                pl.format(
                    "{} row {} ({} '{}'): {} '{}…' is {} characters, Xero takes at most {} in {}{}",
                    pl.lit(files[table]),
                    holds.shown(row),
                    pl.lit(key.removeprefix(f"tracking{slot}_")),
                    holds.shown(key),
                    pl.lit(source_column),
                    value.str.slice(0, 40),
                    value.str.len_chars(),
                    pl.lit(XERO_LIMITS_OF[column]),
                    pl.lit(what),
                    sent_on,
                ).alias("detail"),
                pl.format(
                    "Shorten {} of {} row {} ({} '{}') to at most {} characters, in the practice app{}",
                    pl.lit(source_column),
                    pl.lit(files[table]),
                    holds.shown(row),
                    pl.lit(key.removeprefix(f"tracking{slot}_")),
                    holds.shown(key),
                    pl.lit(XERO_LIMITS_OF[column]),
                    pl.lit(" and in Xero" if slot else ""),
                ).alias("fix"),
            )
        )
    return pl.concat(found, how="vertical").unique(maintain_order=True)


# The line's value each limited value sent is taken from (sent_tracking sends it or nothing).
LIMITED_LINE_VALUES = {
    "invoice_number": "invoice_number",
    "description": "description",
    "tracking1_name": "tracking1_category",
    "tracking1_option": "tracking1_option",
    "tracking2_name": "tracking2_category",
    "tracking2_option": "tracking2_option",
}


def _may_break_limits(long_contacts: pl.Series) -> pl.Expr:
    """Lines whose sent values may break one of Xero's limits (a value longer in bytes than the limit in
    characters, or an invoice whose contact name is), a superset of those Pandera finds: only these are
    judged, not a million lines."""
    longer = [pl.col(v).str.len_bytes() > XERO_LIMITS_OF[c] for c, v in LIMITED_LINE_VALUES.items()]
    return pl.any_horizontal(*longer).fill_null(False) | pl.col("_inv").is_in(long_contacts.implode())


def _contact_name() -> pl.Expr:
    """The contact name Xero receives: only an invoice whose client has no Xero contact id sends one."""
    return pl.when(pl.col("xero_contact_id").is_null()).then(pl.col("client_name"))


def _per_line(values: pl.Series, lines: pl.DataFrame) -> pl.Series:
    """An invoice's value (`values`, in invoice order) on each of its lines."""
    return values.gather(lines["_inv"])


def resolve_invoices(
    tables: dict[str, pl.LazyFrame],
    source_problems: pl.LazyFrame,
    *,
    scope: pl.LazyFrame | None = None,
    policy: str = "hold",
    files: dict[str, str] | None = None,
) -> Resolution:
    """Resolve, check and shape every exportable invoice in `scope` (practice_id, invoice_id; all when None).

    Returns collected frames: line_tracking (every line, held or not), invoice states, open problems
    (exceptions without timestamps), and for ready invoices the Xero line items and headers.
    """
    files = files or default_files()
    candidates = exportable(tables["invoices"].collect().rechunk())
    if scope is not None:
        candidates = candidates.join(scope.select(INVOICE).collect(), on=INVOICE, how="semi")
    names = option_names(tables["tracking_options"], tables["tracking_categories"])

    # One row per invoice to resolve, in key order, with what its lines share; `_inv` numbers them, and
    # a line finds its invoice by it (joins on one integer, not on two texts, for a million lines).
    invoices = (
        resolve_invoice_lookups(
            sorted_by(candidates, INVOICE).lazy(),
            tables["practices"],
            tables["clients"],
            tables["team_members"],
            names,
        )
        .collect()
        .with_row_index("_inv")
    )
    # Each line's invoice, once: lines of invoices to resolve (sorted by invoice and line_id, as
    # line_tracking is, and in one chunk: polars 1.44 panics formatting text columns of differently
    # chunked frames side by side), and lines whose invoice does not exist at all (ORPHAN_LINE).
    all_lines = tables["invoice_lines"].collect()
    found = with_run_lookup(
        all_lines[INVOICE],  # (picked, not selected: a select would copy them into one chunk)
        tables["invoices"]
        .select(*INVOICE, pl.lit(True).alias("_invoice_found"))
        .join(invoices.lazy().select(*INVOICE, "_inv"), on=INVOICE, how="left")
        .collect(),
        INVOICE,
    )
    orphans = all_lines.filter(found["_invoice_found"].is_null()).rechunk()
    lines = sorted_by(all_lines.with_columns(found["_inv"]), ["_inv", "line_id"], found["_inv"].is_not_null())
    del all_lines, found

    # Materialised once: every check below reads the resolved lines.
    marked_df = mark_sent_parts(
        resolve_slots(lines, invoices, tables["service_templates"], names).lazy(), policy
    ).collect()
    del lines
    counts = marked_df.group_by("_inv").agg(pl.len().cast(pl.Int32).alias("line_count"))
    heads_df = invoices.join(counts, on="_inv", how="left", maintain_order="left").with_columns(
        pl.col("line_count").fill_null(0)
    )
    marked, heads = marked_df.lazy(), heads_df.lazy()

    # What Xero would receive, judged against its limits (contact name only without a contact id).
    contacts = heads_df.filter(_contact_name().str.len_bytes() > XERO_LIMITS_OF["contact_name"])["_inv"]
    limit_rows = (
        sent_tracking(marked.filter(pl.col("is_xero") & pl.col("sends_line") & _may_break_limits(contacts)))
        .join(
            heads.select("_inv", "client_name", "xero_contact_id", "invoice_row"),
            on="_inv",
            how="left",
            maintain_order="left",
        )
        .with_columns(_contact_name().alias("contact_name"))
    )

    plan = [
        limit_rows,
        pl.concat(
            [
                holds.invoice_problems(heads, files),
                holds.reference_problems(marked, files),
                holds.amount_problems(marked, files),
                holds.same_category_problems(marked, policy, files),
                holds.option_problems(marked, 1, files),
                holds.option_problems(marked, 2, files),
                holds.consolidation_problems(marked, files),
                holds.source_problems_of_invoices(source_problems, heads, marked),
            ],
            how="vertical",
        ),
        pl.concat(
            [
                holds.orphan_line_problems(orphans.lazy(), files),
                holds.unattributed_source_problems(source_problems),
            ],
            how="vertical",
        ),
    ]
    limit_rows_df, invoice_problems_df, global_problems_df = pl.collect_all(plan)
    del plan, limit_rows, marked, heads

    # Xero's limits, judged by Pandera on exactly what would be sent.
    limits = _limit_problems(limit_rows_df, files)
    not_xero = heads_df.filter(pl.col("not_xero")).select(INVOICE)
    problems = (
        pl.concat([invoice_problems_df, limits], how="vertical")
        .join(not_xero, on=INVOICE, how="anti")
        .unique(maintain_order=True)
    )
    errors = problems.filter(pl.col("severity") == "error")
    hold_codes = errors.group_by(INVOICE).agg(
        pl.col("code").cast(pl.Utf8).unique().sort().alias("hold_codes")
    )

    states = heads_df.join(hold_codes, on=INVOICE, how="left", maintain_order="left").with_columns(
        pl.when(pl.col("not_xero"))
        .then(pl.lit("not_xero"))
        .when(pl.col("hold_codes").is_not_null())
        .then(pl.lit("held"))
        .otherwise(pl.lit("ready"))
        .cast(InvoiceState)
        .alias("invoice_state"),
        pl.col("hold_codes").fill_null([]),
    )
    # The lines' outputs keep only the columns they show: the rest of the resolved lines is let go
    # before the line items are made (their memory is reused).
    marked_df = marked_df.with_columns(_per_line(states["invoice_state"], marked_df).alias("invoice_state"))
    line_tracking = marked_df.select(LINE_TRACKING_COLUMNS)
    sendable = marked_df.select(*SENT_COLUMNS, "sends_line", "invoice_state")
    del marked_df

    ready = pl.col("invoice_state") == "ready"
    items = sent_tracking(consolidate_invoice_lines(sendable, SENT_COLUMNS, ready)).select(
        "_inv", *XERO_LINE_COLUMNS
    )
    del sendable
    heads_out = xero_invoices(items.lazy(), heads_df.lazy()).collect().select(XERO_INVOICE_COLUMNS)
    exceptions = (
        pl.concat([problems, global_problems_df.select(problems.columns)], how="vertical")
        .unique(maintain_order=True)
        .sort(["practice_id", "invoice_id", "line_id", "code", "detail"], nulls_last=True)
    )
    return Resolution(
        line_tracking=line_tracking,
        invoice_states=states.select(INVOICE_STATE_COLUMNS),
        exceptions=exceptions,
        xero_line_items=items.select(XERO_LINE_COLUMNS),
        xero_invoices=heads_out,
    )
