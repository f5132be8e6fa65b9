"""Where a run reads its source: files (CSV or Parquet) today, and the bundled sample's generator."""
