"""The warehouse's numbered migrations (sql/migrations), applied by a tiny runner.

sql/ of the checkout is installed as the package data flows.sql (see pyproject.toml): found the same way
from a checkout, an editable install or a wheel.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from importlib.resources.abc import Traversable

import duckdb

SQL: Traversable = resources.files("flows.sql")


def apply_migrations(con: duckdb.DuckDBPyConnection, folder: Traversable = SQL / "migrations") -> list[str]:
    """Apply sql/migrations/NNN_name.sql (or NNN_name.py, whose `migrate(con)` does what SQL cannot) not
    yet in schema_migrations, in order, each in its own transaction; returns what was applied."""
    con.execute(
        "create table if not exists schema_migrations (version integer primary key, name varchar, applied_at timestamptz)"
    )
    con.execute("comment on table schema_migrations is 'Migrations applied to this warehouse, by number.'")
    done = {row[0] for row in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    names = sorted(
        p.name for p in folder.iterdir() if p.name[:1].isdigit() and p.name.endswith((".sql", ".py"))
    )
    for name in names:
        path = folder / name
        version = int(name.split("_", 1)[0])
        if version in done:
            continue
        con.execute("begin")
        stem = name.rsplit(".", 1)[0]
        if name.endswith(".py"):
            _python_migration(path, stem).migrate(con)
        else:
            con.execute(path.read_text())
        con.execute("insert into schema_migrations values (?, ?, now())", [version, stem])
        con.execute("commit")
        applied.append(stem)
    return applied


def _python_migration(path: Traversable, stem: str):
    with resources.as_file(path) as file:
        spec = importlib.util.spec_from_file_location(f"trackline_migration_{stem}", file)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module
