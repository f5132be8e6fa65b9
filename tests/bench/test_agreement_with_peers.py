"""trackline, the DuckDB SQL peer and the pandas peer give the same per-line result, row for row.

The benchmark (`make bench`) times the three on the same data; this keeps the peers honest in `make test`:
on a small generated source that carries every hold reason, on the bundled sample, and on a handful of
edge cases built by hand. No timings are asserted here.
"""

from __future__ import annotations

import polars as pl
import pytest

from bench import agreement
from bench.generate import generate, write_source
from tests.conftest import SAMPLE
from tests.source_builder import SourceBuilder

HOLD_CODES = {
    "SAME_CATEGORY",
    "CONSOLIDATION_TAX_MISMATCH",
    "UNKNOWN_OPTION",
    "ARCHIVED_OPTION",
    "INVALID_VALUE",
    "UNKNOWN_CLIENT",
    "UNKNOWN_SERVICE",
    "UNKNOWN_TEAM_MEMBER",
    "MISSING_ACCOUNT_CODE",
    "MISSING_TAX_TYPE",
    "DUPLICATE_KEY",
    "EMPTY_INVOICE",
}


def _assert_all_agree(frames: dict[str, pl.DataFrame], files: dict[str, str]) -> pl.DataFrame:
    mine = agreement.trackline_result(frames, files)
    for other, theirs in (
        ("duckdb", agreement.duckdb_result(frames)),
        ("pandas", agreement.pandas_result(frames)),
    ):
        found = agreement.compare(mine, theirs, ("trackline", other))
        assert found.agrees, found.describe()
    return mine


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench") / "10k"
    tables, manifest = generate(10_000, seed=7)
    write_source(tables, folder, manifest)
    return folder


def test_the_generator_gives_the_same_rows_for_the_same_seed():
    first, _ = generate(2_000, seed=11)
    again, _ = generate(2_000, seed=11)
    other, _ = generate(2_000, seed=12)
    assert all(first[t].equals(again[t]) for t in first)
    assert not first["invoice_lines"].equals(other["invoice_lines"])


def test_trackline_agrees_with_both_peers_on_a_generated_source_with_every_hold_reason(generated):
    frames, files = agreement.read_frames(generated)
    result = _assert_all_agree(frames, files)

    codes = set(result["hold_codes"].str.split(",").explode().drop_nulls()) - {""}
    assert codes == HOLD_CODES
    states = set(result["invoice_state"])
    assert states == {"ready", "held", "not_xero"}
    held = (
        result.filter(pl.col("invoice_state") == "held").select("practice_id", "invoice_id").unique().height
    )
    invoices = result.select("practice_id", "invoice_id").unique().height
    assert 0 < held < invoices / 10


def test_trackline_agrees_with_both_peers_on_the_bundled_sample():
    if not (SAMPLE / "invoices.csv").exists():
        pytest.skip("no bundled sample source")
    frames, files = agreement.read_frames(SAMPLE)
    _assert_all_agree(frames, files)


def test_trackline_agrees_with_both_peers_on_edge_cases():
    b = SourceBuilder()
    p = "p1"
    b.option(p, "opt-old", "cat-dept", "Old Team", status="ARCHIVED")
    b.option(p, "opt-eq", "cat-dept", "=SUM(A1)")  # a name a spreadsheet would run: held when sent
    b.template(p, "svc-old", "Old Work", option="opt-old")
    b.template(p, "svc-eq", "Formula Work", option="opt-eq")
    b.template(p, "svc-partner", "Partner Review", option="opt-pb")
    b.member(p, "tm-gone-option", "Gone Option", option="opt-nowhere")
    b.client(p, "c2", "Consolidated Ltd", option="opt-pa", owner="tm-nobody", consolidate=True)
    b.client(p, "c3", "Blank Option Ltd", option="  ", owner="tm-gone-option")
    b.client(p, "c4", "Maybe Ltd", option="opt-pa", owner="tm-owner")
    b.rows["clients"][-1]["consolidate_lines"] = "perhaps"
    # plain, position as 3.0, date at midnight, credit line rounding half away from zero
    b.invoice(p, "i1", issue_date="2026-01-15 00:00:00")
    b.line(p, "i1", "l1", position="3.0", quantity="-1.5", unit_amount="0.0033")
    b.adhoc_line(p, "i1", "l2", position=1)
    # R5, R8 on slot 2, R3 with a template option, blank template id
    b.invoice(p, "i2")
    b.line(p, "i2", "l1", template="svc-partner")
    b.line(p, "i2", "l2", line_type="alignment_fee", template="svc-old")
    b.line(p, "i2", "l3", template="svc-eq")
    b.line(p, "i2", "l4", line_type="adhoc", template=" ", account_code="200", tax_type="OUTPUT2")
    # consolidated: slot-2 problems do not hold, the first line is the lowest position
    b.invoice(p, "i3", client_id="c2")
    b.line(p, "i3", "l9", template="svc-old", position=2, tax_type="OUTPUT2")
    b.line(p, "i3", "l1", template="svc-partner", position=2, tax_type="OUTPUT2")
    # consolidated with mixed tax types
    b.invoice(p, "i4", client_id="c2")
    b.line(p, "i4", "l1", tax_type="OUTPUT2")
    b.line(p, "i4", "l2", tax_type="EXEMPTOUTPUT")
    # a blank client option, an owner whose option is unknown
    b.invoice(p, "i5", client_id="c3")
    b.adhoc_line(p, "i5", "l1")
    # a client row that does not parse; an unknown template; missing codes
    b.invoice(p, "i6", client_id="c4")
    b.line(p, "i6", "l1", template="svc-nowhere")
    b.line(p, "i6", "l2", line_type="adhoc", template=None, account_code=None, tax_type="OUTPUT2")
    # a repeated invoice whose first copy is a draft, a repeated line, an empty invoice, an orphan line
    b.invoice(p, "i7", status="draft")
    b.invoice(p, "i7")
    b.line(p, "i7", "l1")
    b.invoice(p, "i8")
    b.line(p, "i8", "l1")
    b.line(p, "i8", "l1", quantity="2")
    b.invoice(p, "i9")
    b.line(p, "i-none", "l1")
    # values that do not parse: status, quantity with 5 places, a line amount over 10^12, a bad date
    b.invoice(p, "i10", status="APPROVED?")
    b.line(p, "i10", "l1")
    b.invoice(p, "i11")
    b.line(p, "i11", "l1", quantity="1.00001")
    b.line(p, "i11", "l2", quantity="99999999", unit_amount="99999")
    b.invoice(p, "i12", issue_date="2026-02-30")
    b.line(p, "i12", "l1")
    # another practice, not on Xero, reusing the ids; an invoice of a practice that does not exist
    b.practice("p2", ledger="sage")
    b.client("p2", "c1", "Sage Client", option="opt-pa", owner="tm-owner")
    b.invoice("p2", "i1")
    b.line("p2", "i1", "l1")
    b.invoice("p3", "i1", client_id="c1")
    b.line("p3", "i1", "l1")

    frames = b.frames()
    files = {t: f"{t}.csv" for t in frames}
    result = _assert_all_agree(frames, files)
    assert result.filter(pl.col("invoice_id") == "i3")["invoice_state"].unique().to_list() == ["ready"]
