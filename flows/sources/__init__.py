"""Where a run reads its source (the Source protocol, flows.sources.protocol): files, CSV or Parquet, and
the bundled sample's generator."""

from __future__ import annotations

from pathlib import Path

from flows.sources.protocol import Source


def source_for(location: Path | str) -> Source:
    """The source a run reads: a folder of files."""
    from flows.sources.interim import InterimSource

    return InterimSource(Path(location))
