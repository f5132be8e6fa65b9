"""The output folder: what a run writes there, and the rule that nothing lands outside it."""

from __future__ import annotations

from pathlib import Path


class PathOutsideOutput(RuntimeError):
    """A file would land outside the run's staging or output folder: a bug, so the run stops and
    publishes nothing."""


class Confined:
    """Files under `root`, checked a folder at a time: a folder is resolved (its symlinks followed) once
    and must lie inside the root; a file's name must be a plain name (not `.` or `..`). A file so placed
    is written or moved without following a symlink at its own name (`os.O_NOFOLLOW`, `os.replace`), so
    it cannot land elsewhere either. Every file a run writes or publishes goes through this, so no id or
    name can place a file elsewhere."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root.resolve()
        self.folders: dict[Path, Path] = {}

    def file(self, relative: str | Path) -> Path:
        relative = Path(relative)
        if relative.name in ("", ".", "..") or relative.is_absolute():
            raise PathOutsideOutput(f"a file would be written outside {self.root}: {relative!s}")
        folder = self.folders.get(relative.parent)
        if folder is None:
            folder = (self.root / relative.parent).resolve()
            if not folder.is_relative_to(self.base):
                raise PathOutsideOutput(f"a file would be written outside {self.root}: {relative!s}")
            folder.mkdir(parents=True, exist_ok=True)
            self.folders[relative.parent] = folder
        return folder / relative.name
