"""Sources: every method of the Source protocol on files (CSV and Parquet, text and typed)."""
