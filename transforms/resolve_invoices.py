"""From typed source tables to everything the warehouse and Xero files need, in one plan.

`resolve_invoices` is the resolution core: pure Polars, given frames and an explicit scope and policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms import hold_reasons as holds
from transforms.consolidate import (
    INVOICE,
    consolidate_invoice_lines,
    is_consolidated,
    line_order,
    sort_lines,
)
from transforms.resolve_slots import resolve_slots
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
    """What of each line Xero would receive: the line itself (R6), slot 1, and slot 2 (R5, R6, R7)."""
    return (
        sort_lines(lines)
        .with_columns(
            line_order().alias("line_no"),
            is_consolidated().alias("consolidated"),
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


def invoice_heads(
    candidates: pl.LazyFrame, lines: pl.LazyFrame, practices: pl.LazyFrame, clients: pl.LazyFrame
) -> pl.LazyFrame:
    counts = lines.group_by(INVOICE).agg(pl.len().cast(pl.Int32).alias("line_count"))
    return (
        candidates.select(
            *INVOICE,
            "client_id",
            "invoice_number",
            "issue_date",
            "updated_at",
            pl.col("_row").alias("invoice_row"),
        )
        .join(
            practices.select("practice_id", "ledger", pl.lit(True).alias("practice_found")),
            on="practice_id",
            how="left",
            validate="m:1",
        )
        .join(
            clients.select(
                "practice_id",
                "client_id",
                "consolidate_lines",
                pl.lit(True).alias("client_found"),
            ),
            on=["practice_id", "client_id"],
            how="left",
            validate="m:1",
        )
        .join(counts, on=INVOICE, how="left", validate="1:1")
        .with_columns(
            pl.col("practice_found", "client_found").fill_null(False),
            pl.col("line_count").fill_null(0),
            (pl.col("ledger") == "xero").fill_null(False).alias("is_xero"),
            (pl.col("ledger") != "xero").fill_null(False).alias("not_xero"),
            (
                pl.col("consolidate_lines").fill_null(False) & (pl.col("ledger") == "xero").fill_null(False)
            ).alias("consolidated"),
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
    failures = limit_failures(candidate_items)
    if failures.is_empty():
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
            )
        )
    return pl.concat(found, how="vertical").unique(maintain_order=True)


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
    (exceptions without timestamps), and for ready invoices the Xero line items, headers and payload text.
    """
    files = files or default_files()
    candidates = exportable(tables["invoices"])
    if scope is not None:
        candidates = candidates.join(scope.select(INVOICE), on=INVOICE, how="semi")
    lines = tables["invoice_lines"].join(candidates.select(INVOICE), on=INVOICE, how="semi")

    resolved = resolve_slots(
        lines,
        candidates,
        tables["practices"],
        tables["clients"],
        tables["team_members"],
        tables["service_templates"],
        tables["tracking_options"],
        tables["tracking_categories"],
    )
    # Materialised once: every check below reads the resolved lines, and Polars would otherwise plan
    # the joins and the sort again for each branch (10x slower on a million lines).
    marked_df, heads_df = pl.collect_all(
        [
            mark_sent_parts(resolved, policy),
            invoice_heads(candidates, lines, tables["practices"], tables["clients"]),
        ]
    )
    marked, heads = marked_df.lazy(), heads_df.lazy()
    orphans = tables["invoice_lines"].join(tables["invoices"].select(INVOICE), on=INVOICE, how="anti")

    would_send = consolidate_invoice_lines(
        sent_tracking(marked.filter(pl.col("is_xero"))).with_columns(
            pl.col("client_name").alias("contact_name"),
        )
    )

    plan = [
        would_send,
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
                holds.orphan_line_problems(orphans, files),
                holds.unattributed_source_problems(source_problems),
            ],
            how="vertical",
        ),
    ]
    would_send_df, invoice_problems_df, global_problems_df = pl.collect_all(plan)

    # Xero's limits, judged by Pandera on exactly what would be sent (contact name only without an id).
    limits = _limit_problems(
        would_send_df.with_columns(
            pl.when(pl.col("xero_contact_id").is_null()).then(pl.col("client_name")).alias("contact_name")
        ),
        files,
    )
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

    states = (
        heads_df.join(hold_codes, on=INVOICE, how="left", validate="1:1")
        .with_columns(
            pl.when(pl.col("not_xero"))
            .then(pl.lit("not_xero"))
            .when(pl.col("hold_codes").is_not_null())
            .then(pl.lit("held"))
            .otherwise(pl.lit("ready"))
            .cast(InvoiceState)
            .alias("invoice_state"),
            pl.col("hold_codes").fill_null([]),
        )
        .select(INVOICE_STATE_COLUMNS)
        .sort(INVOICE)
    )
    ready = states.filter(pl.col("invoice_state") == "ready").select(INVOICE)

    line_tracking = (
        marked_df.join(states.select(*INVOICE, "invoice_state"), on=INVOICE, how="left", validate="m:1")
        .select(LINE_TRACKING_COLUMNS)
        .sort(["practice_id", "invoice_id", "line_id"])
    )
    items = would_send_df.join(ready, on=INVOICE, how="semi").sort([*INVOICE, "line_no"])
    heads_out = xero_invoices(items.lazy()).collect().select(XERO_INVOICE_COLUMNS).sort(INVOICE)
    exceptions = (
        pl.concat([problems, global_problems_df.select(problems.columns)], how="vertical")
        .unique(maintain_order=True)
        .sort(["practice_id", "invoice_id", "line_id", "code", "detail"], nulls_last=True)
    )
    return Resolution(
        line_tracking=line_tracking,
        invoice_states=states,
        exceptions=exceptions,
        xero_line_items=items.select(XERO_LINE_COLUMNS),
        xero_invoices=heads_out,
    )
