"""Where a run reads its source (the Source protocol, flows.sources.protocol): a folder of files, CSV or
Parquet (flows.sources.files), a PostgreSQL database (flows.sources.postgres), and the bundled sample's
generator (flows.sources.sample)."""

from __future__ import annotations

from pathlib import Path

from flows.sources.protocol import Source


def source_for(
    location: Path | str,
    *,
    memory_limit: str = "1GB",
    schema: str = "public",
    password: str | None = None,
) -> Source:
    """The source a run reads: a `postgresql://` URL (tables in `schema`), else a folder of files."""
    from flows.sources.postgres import PostgresSource, is_postgres_url

    if is_postgres_url(str(location)):
        return PostgresSource(str(location), schema=schema, password=password)
    from flows.sources.files import FileSource

    return FileSource(Path(location), memory_limit=memory_limit)
