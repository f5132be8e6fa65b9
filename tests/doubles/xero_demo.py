"""`make demo-xero`: the sample pushed to the Xero double, a client moved to another partner, and the retrack
plan it makes, end to end through the `trackline` command.

    python -m tests.doubles.xero_demo [--folder F] [--apply]

1. copies data/sample into a folder of its own (printed) and starts the Xero double (tests/doubles/xero.py)
   on 127.0.0.1 with an organisation per practice on Xero: its tracking categories and options as the
   sample has them, and its clients' contacts;
2. `trackline backfill --emit-batches`, `trackline push`, `trackline verify`;
3. moves the client with the most invoices of the first practice to another option of its category (a
   partner change) in the copy of the sample, and runs `trackline backfill --emit-batches` again: nothing in
   Xero is batched again;
4. `trackline retrack` prints the plan; with --apply, `trackline retrack --apply` updates the invoices in
   the double and `trackline verify` confirms what Xero now holds; `trackline report` shows both.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

from tests.doubles.xero import XeroDouble

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
TRACKLINE = str(Path(sys.executable).with_name("trackline"))


def _read(source: Path, table: str) -> pl.DataFrame:
    return pl.read_csv(source / f"{table}.csv", infer_schema_length=0)


def seed(double: XeroDouble, source: Path) -> dict:
    """An organisation per practice on Xero, as the sample describes it; the connections for them."""
    practices = _read(source, "practices").filter(pl.col("ledger") == "xero")["practice_id"].to_list()
    categories = _read(source, "tracking_categories")
    options = _read(source, "tracking_options")
    clients = _read(source, "clients")
    connections = {}
    for practice_id in practices:
        tenant, app, secret = f"tenant-{practice_id}", f"demo-app-{practice_id}", secrets.token_urlsafe(16)
        double.add_organisation(tenant, client_id=app, client_secret=secret, base_currency="GBP")
        for category in categories.filter(pl.col("practice_id") == practice_id).iter_rows(named=True):
            of = options.filter(
                (pl.col("practice_id") == practice_id)
                & (pl.col("tracking_category_id") == category["tracking_category_id"])
            )
            try:
                double.add_tracking_category(
                    tenant,
                    category["name"],
                    dict(zip(of["name"], of["status"], strict=True)),
                    category["status"],
                )
            except ValueError as refused:  # what Xero would not hold either (a third active category, ...)
                print(f"{practice_id}: tracking category {category['name']!r} not in Xero: {refused}")
        for client in clients.filter(pl.col("practice_id") == practice_id).iter_rows(named=True):
            contact = client["xero_contact_id"]
            if contact and len(contact) == 36:
                try:
                    double.add_contact(tenant, client["name"], contact)
                except ValueError:
                    pass  # a contact id the double cannot hold: Xero refuses those invoices, as it would
        connections[practice_id] = {
            "tenant_id": tenant,
            "client_id": app,
            "client_secret": secret,
            "grant": "client_credentials",
        }
    return connections


def move_a_client(source: Path) -> str:
    """The first practice's client with the most approved invoices moves to the next option of its
    category; says which, in words."""
    clients = _read(source, "clients")
    options = _read(source, "tracking_options")
    invoices = _read(source, "invoices").filter(pl.col("status") == "approved")
    practice_id = sorted(clients.filter(pl.col("tracking_option_id").is_not_null())["practice_id"].unique())[
        0
    ]
    counted = (
        invoices.filter(pl.col("practice_id") == practice_id)
        .group_by("client_id")
        .len()
        .join(clients.filter(pl.col("practice_id") == practice_id), on="client_id")
        .filter(pl.col("tracking_option_id").is_not_null())
        .sort(["len", "client_id"], descending=[True, False])
    )
    client = counted.row(0, named=True)
    of_practice = options.filter(pl.col("practice_id") == practice_id)
    current = of_practice.filter(pl.col("tracking_option_id") == client["tracking_option_id"]).row(
        0, named=True
    )
    siblings = of_practice.filter(
        (pl.col("tracking_category_id") == current["tracking_category_id"])
        & (pl.col("status") == "ACTIVE")
        & (pl.col("tracking_option_id") != current["tracking_option_id"])
    ).sort("tracking_option_id")
    new = siblings.row(0, named=True)
    moved = clients.with_columns(
        pl.when((pl.col("practice_id") == practice_id) & (pl.col("client_id") == client["client_id"]))
        .then(pl.lit(new["tracking_option_id"]))
        .otherwise(pl.col("tracking_option_id"))
        .alias("tracking_option_id")
    )
    moved.write_csv(source / "clients.csv")
    return (
        f"{practice_id}: client {client['client_id']} ({client['name']}, {client['len']} approved invoices) "
        f"moves from {current['name']} to {new['name']}"
    )


def trackline(*args: str, env: dict[str, str]) -> None:
    print(f"\n$ trackline {' '.join(args)}", flush=True)
    done = subprocess.run([TRACKLINE, *args], env=env)
    if done.returncode != 0:
        sys.exit(done.returncode)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.doubles.xero_demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--folder", type=Path, default=None, help="where to work (default: a new temp folder)"
    )
    parser.add_argument("--apply", action="store_true", help="also apply the plan and verify it")
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="trackline-demo-xero-"))
    shutil.rmtree(folder, ignore_errors=True)
    source, warehouse, out = folder / "source", folder / "warehouse.duckdb", folder / "out"
    shutil.copytree(SAMPLE, source)
    with XeroDouble(speed=60) as double:
        connections = folder / "xero_connections.json"
        connections.write_text(json.dumps(seed(double, source), indent=2))
        connections.chmod(0o600)
        env = {
            **os.environ,
            "TRACKLINE_SOURCE": str(source),
            "TRACKLINE_WAREHOUSE": str(warehouse),
            "TRACKLINE_OUT": str(out),
            "TRACKLINE_XERO_CONNECTIONS": str(connections),
            "TRACKLINE_XERO_API_URL": double.api_url,
            "TRACKLINE_XERO_TOKEN_URL": double.token_url,
            "TRACKLINE_XERO_MINUTE_SECONDS": "1",  # the double's clock runs 60 times fast
        }
        print(f"working in {folder}; the Xero double listens at {double.api_url}", flush=True)
        trackline("backfill", "--emit-batches", env=env)
        trackline("push", env=env)
        trackline("verify", env=env)
        print(f"\n# in {source}/clients.csv: {move_a_client(source)}", flush=True)
        trackline("backfill", "--emit-batches", env=env)
        trackline("retrack", env=env)
        if args.apply:
            trackline("retrack", "--apply", env=env)
            trackline("verify", env=env)
            trackline("retrack", env=env)
        trackline("report", env=env)


if __name__ == "__main__":
    main()
