"""The output folder: what a run writes there, and the rule that nothing lands outside it."""

from __future__ import annotations

from pathlib import Path


class PathOutsideOutput(RuntimeError):
    """A file would land outside the run's staging or output folder: a bug, so the run stops and
    publishes nothing."""


def inside(root: Path, path: Path) -> Path:
    """`path`, resolved, if it lies inside `root` (resolved); else PathOutsideOutput. Every file a run
    writes or publishes goes through this, so no id or name can place a file elsewhere."""
    resolved, base = path.resolve(), root.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise PathOutsideOutput(f"a file would be written outside {root}: {path!r}")
    return resolved
