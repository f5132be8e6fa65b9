"""Resolving and batching in small chunks gives exactly what one big chunk gives."""

from __future__ import annotations

from tests.conftest import SAMPLE
from tests.warehouse_state import assert_same_tables, files, tables


def test_small_chunks_give_the_same_tables_and_files_as_one_chunk(tmp_path, run_plain):
    from flows.settings import Settings

    results = {}
    for chunk_lines in (50, 10_000_000):
        home = tmp_path / str(chunk_lines)
        settings = Settings(
            source=SAMPLE, warehouse=home / "w.duckdb", out=home / "out", chunk_lines=chunk_lines
        )
        summary = run_plain(settings, practices=("northgate", "keystone"))
        results[chunk_lines] = (summary, tables(settings.warehouse), files(settings.out))
    small, big = results[50], results[10_000_000]
    assert small[0].batches_written == big[0].batches_written > 1
    assert_same_tables(small[1], big[1])
    assert small[2] == big[2]
