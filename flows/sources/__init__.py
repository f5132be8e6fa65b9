"""Where a run reads its source (the Source protocol, flows.sources.protocol): a folder of files, CSV or
Parquet (flows.sources.files), and the bundled sample's generator (flows.sources.sample)."""

from __future__ import annotations

from pathlib import Path

from flows.sources.protocol import Source


def source_for(location: Path | str, *, memory_limit: str = "1GB") -> Source:
    """The source a run reads: a folder of files."""
    from flows.sources.files import FileSource

    return FileSource(Path(location), memory_limit=memory_limit)
