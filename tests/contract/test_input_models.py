"""The typed-source models: what the resolver may rely on after parsing, and a parser bug stops the run."""

from __future__ import annotations

import polars as pl
import pytest

from tests.source_builder import SourceBuilder
from transforms.input_models import INPUT_MODELS
from transforms.parse_sources import parse_table
from transforms.schemas import OutputCheckFailed, validate_output


def _typed(builder: SourceBuilder) -> dict[str, pl.DataFrame]:
    return {t: parse_table(t, f.lazy(), f"{t}.csv")[0].collect() for t, f in builder.frames().items()}


def test_parsed_tables_satisfy_their_models_even_when_values_are_bad():
    b = SourceBuilder()
    b.invoice("p1", "i1", status="Approved", issue_date="2025-02-30").line("p1", "i1", "l1", quantity="abc")
    b.line("p1", "i1", "l1", line_type="misc")  # a repeated key, an unknown enum
    b.template("p1", "svc-book", "Copy", option=None)  # a repeated template
    for table, frame in _typed(b).items():
        validate_output(INPUT_MODELS[table], frame)


def test_a_parser_that_let_a_duplicate_key_through_stops_the_run():
    frame = _typed(SourceBuilder())["service_templates"]
    broken = pl.concat([frame, frame.head(1)])
    with pytest.raises(OutputCheckFailed, match="typed service_templates"):
        validate_output(INPUT_MODELS["service_templates"], broken)


def test_a_parser_that_let_an_unknown_status_through_stops_the_run():
    frame = _typed(SourceBuilder())["tracking_options"].with_columns(pl.lit("Archived").alias("status"))
    with pytest.raises(OutputCheckFailed, match="isin"):
        validate_output(INPUT_MODELS["tracking_options"], frame)
