"""A real PostgreSQL 15 server for the session (each pytest-xdist worker starts its own, on its own free
port, listening on 127.0.0.1 only, with password authentication), torn down at the end."""

from __future__ import annotations

import itertools

import pytest

from tests.doubles.postgres import load_source, start_postgres

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres():
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database(postgres):
    """A new, empty database of the test's own: its URL (with the password)."""

    def make() -> str:
        return postgres.create_database(f"t{next(_names)}")

    return make


@pytest.fixture
def pg_source(pg_database):
    """A database loaded from a source folder: its URL (with the password)."""

    def make(folder, *, typed: bool = True) -> str:
        url = pg_database()
        load_source(url, folder, typed=typed)
        return url

    return make
