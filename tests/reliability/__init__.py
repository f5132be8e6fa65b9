"""Reliability: bad input never crashes a run, never loses an invoice, never leaks one practice into another.

- `practice.py`   the small practice every case starts from, and writing sources as CSV or Parquet
- `harness.py`    runs a source through the whole pipeline (no Prefect) and reads back what came out
- `matrix.py`     the bad-input matrix as data: table, column, what goes wrong, the documented outcome
- `test_*.py`     the matrix, check_accounting, tenant isolation and the fuzz run
- `figures.py`    `make reliability`: the table the README quotes
"""
