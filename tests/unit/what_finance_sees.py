"""What a practice's finance lead reads off a Resolution: a line's slots, an invoice's state, its problems
and what Xero receives. Plain dicts, so a failing assert shows the whole row."""

from __future__ import annotations

from transforms.resolve_invoices import Resolution


def line(result: Resolution, line_id: str, invoice_id: str = "i1", practice_id: str = "p1") -> dict:
    """The line_tracking row of one source line (its slots as resolved, before consolidation)."""
    rows = [
        r
        for r in result.line_tracking.to_dicts()
        if (r["practice_id"], r["invoice_id"], r["line_id"]) == (practice_id, invoice_id, line_id)
    ]
    assert len(rows) == 1, f"expected one line_tracking row for {line_id}, got {rows}"
    return rows[0]


def slots(result: Resolution, line_id: str, invoice_id: str = "i1", practice_id: str = "p1") -> tuple:
    """(slot 1 category, option, source, slot 2 category, option, source) of a line."""
    row = line(result, line_id, invoice_id, practice_id)
    return (
        row["tracking1_category"],
        row["tracking1_option"],
        row["tracking1_source"],
        row["tracking2_category"],
        row["tracking2_option"],
        row["tracking2_source"],
    )


def state(result: Resolution, invoice_id: str = "i1", practice_id: str = "p1") -> str | None:
    """ready, held or not_xero; None when the invoice was not considered at all (draft, void)."""
    rows = result.invoice_states.filter(
        (result.invoice_states["practice_id"] == practice_id)
        & (result.invoice_states["invoice_id"] == invoice_id)
    )
    return None if rows.is_empty() else rows["invoice_state"].cast(str).item()


def hold_codes(result: Resolution, invoice_id: str = "i1", practice_id: str = "p1") -> list[str]:
    rows = result.invoice_states.filter(
        (result.invoice_states["practice_id"] == practice_id)
        & (result.invoice_states["invoice_id"] == invoice_id)
    )
    return rows["hold_codes"].item().to_list()


def problems(result: Resolution, code: str | None = None) -> list[dict]:
    """Exception rows (code and severity as text), optionally of one code."""
    rows = [
        {**r, "code": str(r["code"]), "severity": str(r["severity"])} for r in result.exceptions.to_dicts()
    ]
    return [r for r in rows if code is None or r["code"] == code]


def the_problem(result: Resolution, code: str) -> dict:
    """The one exception of a code; fails when there are none or several."""
    rows = problems(result, code)
    assert len(rows) == 1, f"expected one {code}, got {problems(result)}"
    return rows[0]


def sent(result: Resolution, invoice_id: str = "i1", practice_id: str = "p1") -> list[dict]:
    """The invoice's xero_line_items rows, in line order: what Xero receives."""
    items = result.xero_line_items
    rows = items.filter((items["practice_id"] == practice_id) & (items["invoice_id"] == invoice_id))
    return rows.sort("line_no").to_dicts()


def tracking_sent(result: Resolution, invoice_id: str = "i1", practice_id: str = "p1") -> list[tuple]:
    """(tracking1_name, tracking1_option, tracking2_name, tracking2_option) per line sent."""
    return [
        (r["tracking1_name"], r["tracking1_option"], r["tracking2_name"], r["tracking2_option"])
        for r in sent(result, invoice_id, practice_id)
    ]
