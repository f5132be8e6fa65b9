"""docs/analysts.md: its example queries run, read-only, on a real warehouse and answer something."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"


def sql_blocks() -> list[str]:
    return re.findall(r"^```sql\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)


def test_the_guide_has_five_example_queries():
    assert len(sql_blocks()) == 5


def test_the_guide_says_how_to_open_the_warehouse_read_only():
    text = GUIDE.read_text(encoding="utf-8")
    assert "duckdb -readonly data/warehouse.duckdb" in text
    assert 'duckdb.connect("data/warehouse.duckdb", read_only=True)' in text


@pytest.mark.parametrize("number", range(1, 6))
def test_example_query_runs_and_answers(read_only, number):
    query = sql_blocks()[number - 1]
    rows = read_only.execute(query).fetchall()
    assert rows, f"example {number} returned nothing on the realistic warehouse"
