"""The DuckDB warehouse: its migrations, and the writes of a run's results."""
