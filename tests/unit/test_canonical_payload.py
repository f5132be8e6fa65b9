"""The export digest is md5 of an invoice's canonical text, stored in warehouses and compared with old ones:
a different digest would batch every invoice again. `canonical_payload_arrow` (the fast way the chunk step
takes) must make exactly `canonical_payload`'s texts, and the chunk step's digests must be the ones the
texts had before it (pinned below, from the implementation it replaced)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from decimal import Decimal

import polars as pl
import pytest

from flows.run.steps import _digests
from tests.source_builder import SourceBuilder
from transforms.xero_payload import _runs_of_heads, canonical_payload, canonical_payload_arrow

INVOICE = ["practice_id", "invoice_id"]


def _source() -> SourceBuilder:
    b = SourceBuilder()
    b.client("p1", "c2", "Consolidated Ltd", option="opt-pa", owner="tm-owner", consolidate=True)
    b.client("p1", "c3", "Contacted Ltd", option="opt-pb", contact_id="6d1f3c8e-2b4a-4c1e-9f0a-3b2c1d4e5f60")
    b.invoice("p1", "i1", reference="PO 7")
    b.line("p1", "i1", "l1", quantity="2.5", unit_amount="10.1")
    b.line("p1", "i1", "l2", unit_amount="-12.5", description="Café — naïve ✓ \t tab")
    b.line("p1", "i1", "l10", template="svc-accounts", quantity="0.0001", unit_amount="99999.9999")
    b.invoice("p1", "i2", client_id="c2")
    b.line("p1", "i2", "l1", quantity="3", unit_amount="33.335")
    b.line("p1", "i2", "l2", quantity="1", unit_amount="0")
    b.invoice("p1", "i3", client_id="c3", issue_date="2025-12-31", due_date="2026-01-30")
    b.line("p1", "i3", "l1", template="svc-accounts")
    b.invoice("p1", "i4")  # held: a line of an unknown template
    b.line("p1", "i4", "l1", template="svc-missing")
    b.invoice("p1", "i0")
    b.line("p1", "i0", "l1", position=2)
    b.line("p1", "i0", "l2", position=1)
    return b


# md5 of each ready invoice's canonical text, made by the implementation before canonical_payload_arrow.
PINNED = {
    ("p1", "i0"): "9221b00bb96fd21bfcfbd9797b4a0a5a",
    ("p1", "i1"): "b9ced97cd2df2b805bb5d751b959801a",
    ("p1", "i2"): "d6c945055967880f8ed3c1ca26f0bb60",
    ("p1", "i3"): "8e6c352acb670e9fdf2ab46ff5327160",
}


def _md5(texts: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {
        (p, i): hashlib.md5(t.encode()).hexdigest()
        for p, i, t in texts.select(*INVOICE, "payload").iter_rows()
    }


def _texts(table) -> pl.DataFrame:
    return pl.DataFrame(pl.from_arrow(table)).sort(INVOICE)


@pytest.fixture(scope="module")
def resolved():
    return _source().resolve()


def test_the_chunk_steps_digests_are_the_pinned_ones(resolved):
    digests = _digests(resolved)
    found = {(p, i): d for p, i, d in digests.select(*INVOICE, "digest").iter_rows()}
    assert found == PINNED
    assert digests.join(resolved.xero_invoices, on=INVOICE, how="anti").is_empty()
    assert digests.sort(INVOICE)["total"].to_list() == resolved.xero_invoices.sort(INVOICE)["total"].to_list()


def test_the_chunk_steps_digests_are_the_same_the_general_way(resolved):
    """Headers not in their items' order: the texts are made the general way, the totals joined."""
    shuffled = dataclasses.replace(resolved, xero_invoices=resolved.xero_invoices.reverse())
    digests = _digests(shuffled)
    assert {(p, i): d for p, i, d in digests.select(*INVOICE, "digest").iter_rows()} == PINNED
    totals = resolved.xero_invoices.select(*INVOICE, "total")
    assert digests.drop("digest").sort(INVOICE).equals(totals.sort(INVOICE))


def test_the_digests_are_md5_of_the_canonical_texts(resolved):
    general = canonical_payload(resolved.xero_line_items.lazy(), resolved.xero_invoices.lazy()).collect()
    assert _md5(general) == PINNED
    assert _md5(resolved.payloads) == PINNED


def test_a_resolutions_items_take_the_fast_way(resolved):
    assert _runs_of_heads(resolved.xero_line_items, resolved.xero_invoices) is not None


def _frames(invoices: int = 40, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Line items and headers as a resolution makes them (grouped, in header order, line_no increasing),
    with nulls, empty and non-ASCII texts, separators' neighbours and decimals of every sign."""
    rng = random.Random(seed)
    words = [None, "", "a", "Ünïcödé ✓", "x" * 40, "tab\there", "new\nline", "P0001-1"]
    heads, items = [], []
    for n in range(invoices):
        practice, invoice = f"P{n // 7:03d}", f"INV{n:05d}"
        heads.append(
            {
                "practice_id": practice,
                "invoice_id": invoice,
                "invoice_number": f"{practice}-{n}",
                "contact_id": rng.choice(words),
                "contact_name": rng.choice(words),
                "reference": rng.choice(words),
                "issue_date": rng.choice([None, "2024-02-29", "1999-12-31"]),
                "due_date": "2026-01-01",
                "currency": "GBP",
                "xero_status": "AUTHORISED",
                "line_amount_types": "Exclusive",
                "total": Decimal("1.00"),
            }
        )
        line_no = 0
        for _ in range(rng.randint(1, 6)):
            line_no += rng.randint(1, 3)
            items.append(
                {
                    "practice_id": practice,
                    "invoice_id": invoice,
                    "line_no": line_no,
                    "description": rng.choice(words),
                    "quantity": Decimal(rng.choice(["1", "0.0001", "-2.5", "12345678.1234", "0"])),
                    "unit_amount": rng.choice([None, Decimal("-0.0001"), Decimal("100")]),
                    "line_amount": Decimal(rng.choice(["0.01", "-100.00", "0"])),
                    "account_code": rng.choice(words),
                    "tax_type": "OUTPUT2",
                    "tracking1_name": rng.choice(words),
                    "tracking1_option": rng.choice(words),
                    "tracking2_name": rng.choice(words),
                    "tracking2_option": rng.choice(words),
                }
            )
    heads_df = pl.DataFrame(heads).with_columns(
        pl.col("issue_date", "due_date").str.to_date(), pl.col("total").cast(pl.Decimal(38, 2))
    )
    items_df = pl.DataFrame(items).with_columns(
        pl.col("line_no").cast(pl.Int32),
        pl.col("quantity", "unit_amount").cast(pl.Decimal(18, 4)),
        pl.col("line_amount").cast(pl.Decimal(18, 2)),
    )
    return items_df, heads_df


def _general(items: pl.DataFrame, heads: pl.DataFrame) -> pl.DataFrame:
    return canonical_payload(items.lazy(), heads.lazy()).collect().sort(INVOICE)


@pytest.mark.parametrize("seed", range(5))
def test_the_fast_way_makes_the_general_ways_texts(seed):
    items, heads = _frames(seed=seed)
    assert _runs_of_heads(items, heads) is not None
    fast = pl.DataFrame(pl.from_arrow(canonical_payload_arrow(items, heads)))
    assert fast.select(INVOICE).equals(heads.select(INVOICE)), "in the headers' order"
    assert fast.sort(INVOICE).equals(_general(items, heads))


def _shuffled(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)


CASES = {
    "items shuffled": lambda i, h: (_shuffled(i, 1), h),
    "headers shuffled": lambda i, h: (i, _shuffled(h, 2)),
    "a header without lines": lambda i, h: (i.filter(pl.col("invoice_id") != "INV00003"), h),
    "lines without a header": lambda i, h: (i, h.filter(pl.col("invoice_id") != "INV00003")),
    "lines of a header apart": lambda i, h: (pl.concat([i, i.filter(pl.col("invoice_id") == "INV00000")]), h),
    "a header's lines out of order": lambda i, h: (
        i.with_columns(
            pl.when(pl.col("invoice_id") == "INV00001").then(-pl.col("line_no")).otherwise("line_no")
        ),
        h,
    ),
    "a null key": lambda i, h: (
        i.with_columns(
            pl.when(pl.col("invoice_id") == "INV00002")
            .then(None)
            .otherwise("practice_id")
            .alias("practice_id")
        ),
        h.with_columns(
            pl.when(pl.col("invoice_id") == "INV00002")
            .then(None)
            .otherwise("practice_id")
            .alias("practice_id")
        ),
    ),
    "no lines": lambda i, h: (i.clear(), h),
    "no headers": lambda i, h: (i, h.clear()),
}


@pytest.mark.parametrize("case", CASES)
def test_what_the_fast_way_cannot_vouch_for_goes_the_general_way(case):
    items, heads = CASES[case](*_frames(seed=7))
    assert _runs_of_heads(items, heads) is None
    assert _texts(canonical_payload_arrow(items, heads)).equals(_general(items, heads))


def test_duplicate_headers_fail_as_the_general_way_does():
    items, heads = _frames(seed=3)
    heads = pl.concat([heads, heads.head(1)])
    assert _runs_of_heads(items, heads) is None
    with pytest.raises(pl.exceptions.ComputeError):
        canonical_payload_arrow(items, heads)
