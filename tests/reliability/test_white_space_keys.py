"""A key of white space is no key, to the run and to its accounting check alike."""

from __future__ import annotations

from tests.reliability.harness import run_source
from tests.reliability.practice import add_practice, empty_source, find_row, write_source


def test_a_key_of_a_line_break_is_no_key_to_the_check_either(tmp_path):
    """parse_sources strips every kind of white space (as Rust's trim); the check must see the same keys,
    or an invoice whose practice_id is a line break would be an approved invoice in no state."""
    source = add_practice(add_practice(empty_source(), "w1"), "w2")
    find_row(source, "invoices", "w1", {"invoice_id": "i1"})["practice_id"] = "\n"
    outcome = run_source(write_source(source, tmp_path / "source"), tmp_path)
    assert outcome.crashed is None and outcome.accounting is None
    assert outcome.practice_states("w2") == {"i1": "ready", "i2": "ready"}
