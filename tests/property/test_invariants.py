"""Properties that hold for any source: random practices that share ids but never names."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.source_builder import SourceBuilder
from tests.warehouse_state import assert_same_tables, files, tables

LINE_TYPES = ["service", "alignment_fee", "adhoc"]


@st.composite
def sources(draw) -> SourceBuilder:
    """2-3 practices with the same ids (c1, opt1, tm1, svc1, i1 ...) and names prefixed by the practice."""
    b = SourceBuilder(bare=True)
    for p in draw(st.lists(st.sampled_from(["pa", "pb", "pc"]), min_size=2, max_size=3, unique=True)):
        b.practice(p, ledger=draw(st.sampled_from(["xero", "xero", "xero", "quickbooks"])))
        for c in range(1, 3):
            b.category(
                p, f"cat{c}", f"{p}:Category{c}", status=draw(st.sampled_from(["ACTIVE"] * 5 + ["ARCHIVED"]))
            )
        options = [f"opt{n}" for n in range(1, 5)]
        for n, option in enumerate(options):
            status = draw(st.sampled_from(["ACTIVE"] * 5 + ["ARCHIVED", "DELETED"]))
            b.option(p, option, f"cat{1 + n % 2}", f"{p}:Option{n}", status=status)
        maybe_option = st.one_of(st.none(), st.sampled_from([*options, "opt-missing"]))
        for m in range(1, 3):
            b.member(p, f"tm{m}", f"{p}:Member{m}", option=draw(maybe_option))
        for s in range(1, 3):
            b.template(
                p,
                f"svc{s}",
                f"{p}:Service{s}",
                option=draw(maybe_option),
                tax_type=draw(st.sampled_from(["OUTPUT2", "OUTPUT2", "ZERORATEDOUTPUT", None])),
            )
        for c in range(1, 3):
            b.client(
                p,
                f"c{c}",
                f"{p}:Client{c}",
                option=draw(maybe_option),
                owner=draw(st.sampled_from([None, "tm1", "tm2", "tm-missing"])),
                consolidate=draw(st.sampled_from([None, False, True])),
            )
        for i in range(1, draw(st.integers(1, 4)) + 1):
            b.invoice(
                p,
                f"i{i}",
                client_id=draw(st.sampled_from(["c1", "c2", "c1", "c-missing"])),
                status=draw(st.sampled_from(["approved"] * 4 + ["draft", "void"])),
            )
            for n in range(1, draw(st.integers(0, 4)) + 1):
                line_type = draw(st.sampled_from(LINE_TYPES))
                b.line(
                    p,
                    f"i{i}",
                    f"l{n}",
                    line_type=line_type,
                    template=draw(
                        st.sampled_from(["svc1", "svc2", None] if line_type != "adhoc" else [None, "svc1"])
                    ),
                    quantity=str(
                        draw(st.decimals("-5", "50", places=2, allow_nan=False, allow_infinity=False))
                    ),
                    unit_amount=str(
                        draw(st.decimals("0", "2000", places=4, allow_nan=False, allow_infinity=False))
                    ),
                )
    return b


def _approved(b: SourceBuilder) -> set[tuple[str, str]]:
    return {(r["practice_id"], r["invoice_id"]) for r in b.rows["invoices"] if r["status"] == "approved"}


def _prefix_ok(frame: pl.DataFrame, columns: list[str]) -> bool:
    bad = frame.filter(
        pl.any_horizontal(
            pl.col(c).is_not_null() & ~pl.col(c).str.starts_with(pl.col("practice_id") + ":") for c in columns
        )
    )
    return bad.is_empty()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources(), st.sampled_from(["hold", "drop_secondary"]))
def test_every_approved_invoice_ends_in_exactly_one_state(b, policy):
    result = b.resolve(policy=policy)
    states = result.invoice_states
    assert set(zip(states["practice_id"], states["invoice_id"], strict=True)) == _approved(b)
    assert states.select("practice_id", "invoice_id").is_duplicated().sum() == 0
    assert set(states["invoice_state"].cast(pl.Utf8)) <= {"ready", "held", "not_xero"}
    held = states.filter(pl.col("invoice_state") == "held")
    errors = (
        result.exceptions.filter(pl.col("severity") == "error").select("practice_id", "invoice_id").unique()
    )
    assert (
        held.select("practice_id", "invoice_id")
        .sort(pl.all())
        .equals(
            errors.join(states.select("practice_id", "invoice_id"), on=["practice_id", "invoice_id"]).sort(
                pl.all()
            )
        )
    ), "held exactly when an error names the invoice"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_no_name_crosses_practices(b):
    result = b.resolve()
    assert _prefix_ok(
        result.line_tracking,
        ["tracking1_category", "tracking1_option", "tracking2_category", "tracking2_option"],
    )
    assert _prefix_ok(
        result.xero_line_items, ["tracking1_name", "tracking1_option", "tracking2_name", "tracking2_option"]
    )
    assert _prefix_ok(result.xero_invoices, ["contact_name"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sources())
def test_ready_invoices_send_their_source_amounts_to_the_cent(b):
    result = b.resolve()
    ready = result.invoice_states.filter(pl.col("invoice_state") == "ready")
    source = {}
    for row in b.rows["invoice_lines"]:
        amount = (Decimal(row["quantity"]) * Decimal(row["unit_amount"])).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
        key = (row["practice_id"], row["invoice_id"])
        source[key] = source.get(key, Decimal(0)) + amount
    sent = {}
    for row in result.xero_line_items.iter_rows(named=True):
        assert isinstance(row["line_amount"], Decimal)
        key = (row["practice_id"], row["invoice_id"])
        sent[key] = sent.get(key, Decimal(0)) + row["line_amount"]
    for key in zip(ready["practice_id"], ready["invoice_id"], strict=True):
        assert sent[key] == source[key]


@settings(
    max_examples=5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(b=sources())
def test_running_twice_changes_nothing_and_files_stay_in_their_practice(b, tmp_path_factory):
    from flows.run.pipeline import run_pipeline
    from flows.run.steps import Scope
    from flows.settings import Settings

    home = tmp_path_factory.mktemp("twice")
    settings_ = Settings(source=b.write(home / "src"), warehouse=home / "w.duckdb", out=home / "out")
    run_pipeline(settings_, Scope("nightly"), True, as_tasks=False)
    first_tables, first_files = tables(settings_.warehouse), files(settings_.out)
    again = run_pipeline(settings_, Scope("nightly"), True, as_tasks=False)
    assert again.batches_written == 0
    assert_same_tables(first_tables, tables(settings_.warehouse))
    assert files(settings_.out) == first_files
    for name, content in first_files.items():
        if name.endswith(".json"):
            practice = name.split("/")[1]
            for invoice in json.loads(content)["Invoices"]:
                for line in invoice["LineItems"]:
                    for slot in line["Tracking"]:
                        assert slot["Name"].startswith(practice + ":") and slot["Option"].startswith(
                            practice + ":"
                        )
