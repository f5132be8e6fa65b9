"""A real PostgreSQL server for the tests and the benchmark: `initdb` into a temporary data directory owned
by the postgres user (the server refuses to run as root), listening on 127.0.0.1 only on a free port, with
password (scram) authentication so that the never-shown-password tests mean something.

`start_postgres()` returns a `PostgresServer`; `stop()` shuts it down and deletes the data directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER = "trackline"
PASSWORD = "s3cret-Pa55word"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> list[str]:
    """Run a server command as the postgres user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _owner() -> tuple[int, int] | None:
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@dataclass
class PostgresServer:
    data: Path
    port: int
    user: str = USER
    password: str = PASSWORD

    def url(self, database: str, *, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"postgresql://{self.user}{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser (over the local socket, as the postgres user): what it printed."""
        return subprocess.run(
            [
                *_as_postgres(),
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.data),
                "-p",
                str(self.port),
                "-d",
                database,
                "-tA",
                "-c",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def create_database(self, name: str) -> str:
        self.admin(f'create database "{name}" owner {self.user}')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*_as_postgres(), "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self.data.parent, ignore_errors=True)


def postgres_available() -> bool:
    return all(shutil.which(tool) for tool in ("initdb", "pg_ctl", "psql"))


def start_postgres() -> PostgresServer:
    root = Path(tempfile.mkdtemp(prefix="trackline-pg-"))
    data = root / "data"
    owner = _owner()
    if owner:
        os.chown(root, *owner)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if owner:
        os.chown(pwfile, *owner)
    subprocess.run(
        [
            *_as_postgres(),
            "initdb",
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data} -c fsync=off"
    subprocess.run(
        [*_as_postgres(), "pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    server = PostgresServer(data, port)
    server.admin(f"create role {USER} login password '{PASSWORD}'")
    return server


# The contract's tables with their natural SQL types (contract section 2).
SQL_TYPES = {
    "issue_date": "date",
    "due_date": "date",
    "updated_at": "timestamptz",
    "position": "integer",
    "quantity": "numeric",
    "unit_amount": "numeric",
    "consolidate_lines": "boolean",
}


# The indexes the README suggests for the practice-management app's tables.
INDEXES = (
    "create index on invoices (practice_id, invoice_id)",
    "create index on invoices (updated_at)",
    "create index on invoices (status)",
    "create index on invoice_lines (practice_id, invoice_id, line_id)",
)


def _text_batches(path: Path, columns: dict):
    """A table's file as batches of text columns (contract names), a block at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from flows.sources.files import read_table

    names = list(columns)
    if path.suffix != ".parquet":
        frame, _ = read_table(path.parent, path.stem)
        table = frame.drop("_row").to_arrow()
        return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    file = pq.ParquetFile(path)
    schema = pa.schema([(n, pa.string()) for n in names])

    def batches():
        for batch in file.iter_batches(batch_size=200_000, columns=names):
            yield pa.RecordBatch.from_arrays(
                [batch.column(n).cast(pa.string()) for n in names], schema=schema
            )

    return pa.RecordBatchReader.from_batches(schema, batches())


def load_source(
    url: str, folder: Path, *, typed: bool = True, schema: str = "public", indexes: bool = False
) -> None:
    """Load a source folder's tables (CSV or Parquet, read as their text, in file order) into the database
    at `url`: each column of its natural SQL type when `typed` and every value of it fits that type, else
    text; with `indexes`, the README's indexes too. Parquet files are streamed, a block at a time."""
    import adbc_driver_postgresql.dbapi as adbc

    from flows.sources.files import table_file
    from transforms.parse_sources import TABLES

    with adbc.connect(url, autocommit=True) as con, con.cursor() as cur:
        cur.execute(f'create schema if not exists "{schema}"')
        cur.execute(f'set search_path = "{schema}"')
        for table, columns in TABLES.items():
            cur.execute(f'drop table if exists "{schema}"."{table}", "{schema}"."_load_{table}"')
            reader = _text_batches(table_file(folder, table), columns)
            cur.adbc_ingest(f"_load_{table}", reader, mode="create", db_schema_name=schema)
            types = {c: SQL_TYPES.get(c, "text") if typed else "text" for c in columns}
            for c, sql_type in types.items():  # a column with a value its type cannot hold stays text
                if sql_type != "text":
                    try:
                        cur.execute(f'select count("{c}"::{sql_type}) from "{schema}"."_load_{table}"')
                        cur.fetchall()
                    except adbc.Error:
                        types[c] = "text"
            select = ", ".join(f'"{c}"::{t} as "{c}"' for c, t in types.items())
            cur.execute(
                f'create table "{schema}"."{table}" as select {select} from "{schema}"."_load_{table}"'
            )
            cur.execute(f'drop table "{schema}"."_load_{table}"')
        if indexes:
            for index in INDEXES:
                cur.execute(index)
            cur.execute("analyze")


def dump_parquet(url: str, folder: Path, *, schema: str = "public") -> Path:
    """The database's tables as a Parquet snapshot (`<table>.parquet`, columns of the types ADBC reads,
    NUMERIC as its text), rows in their physical order: the same source, as files."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    from transforms.parse_sources import TABLES

    folder.mkdir(parents=True, exist_ok=True)
    with adbc.connect(url, autocommit=True) as con, con.cursor() as cur:
        for table, columns in TABLES.items():
            cur.execute(
                "select column_name, data_type from information_schema.columns "
                f"where table_schema = '{schema}' and table_name = '{table}'"
            )
            types = dict(cur.fetchall())
            select = ", ".join(
                f'"{c}"::text as "{c}"' if types[c] == "numeric" else f'"{c}"' for c in columns
            )
            cur.execute(f'select {select} from "{schema}"."{table}" order by ctid')
            pq.write_table(cur.fetch_arrow_table(), folder / f"{table}.parquet")
    return folder
