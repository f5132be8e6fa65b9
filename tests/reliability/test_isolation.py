"""Tenant isolation, as properties: practices that share ids (clients, options, categories, members,
services, invoices) but not names. Whatever each practice has or lacks, and whatever its rows refer to,
no name crosses practices, in the warehouse or in the files, and each slot holds the name its own practice
gives that option id (or nothing, when its practice has no such option)."""

from __future__ import annotations

import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import duckdb
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.harness import Outcome, run_source
from tests.reliability.harness import settings as run_settings
from tests.reliability.practice import Source, empty_source, marker, row, write_source

CATEGORIES = ("k1", "k2", "k3")
OPTIONS = ("o1", "o2", "o3", "o4")
MEMBERS = ("m1", "m2")
SERVICES = ("s1", "s2")
CLIENTS = ("c1", "c2")
INVOICES = ("i1", "i2", "i3")

maybe = lambda values: st.none() | st.sampled_from(values)  # noqa: E731 - a reference that may be missing


@st.composite
def practice_rows(draw, pid: str) -> Source:
    """One practice: a random subset of the shared ids, each row referring to any id (its own or not)."""
    m = marker(pid)
    rows = empty_source()
    rows["practices"].append(
        row(
            "practices", practice_id=pid, name=f"P {m}", ledger=draw(st.sampled_from(["xero"] * 4 + ["sage"]))
        )
    )
    for cat in draw(st.sets(st.sampled_from(CATEGORIES), min_size=1)):
        rows["tracking_categories"].append(
            row(
                "tracking_categories",
                practice_id=pid,
                tracking_category_id=cat,
                name=f"Cat {cat} {m}",
                status=draw(st.sampled_from(["ACTIVE"] * 5 + ["ARCHIVED"])),
            )
        )
    for opt in draw(st.sets(st.sampled_from(OPTIONS), min_size=1)):
        rows["tracking_options"].append(
            row(
                "tracking_options",
                practice_id=pid,
                tracking_option_id=opt,
                tracking_category_id=draw(st.sampled_from(CATEGORIES)),
                name=f"Opt {opt} {m}",
                status="ACTIVE",
            )
        )
    for member in draw(st.sets(st.sampled_from(MEMBERS))):
        rows["team_members"].append(
            row(
                "team_members",
                practice_id=pid,
                team_member_id=member,
                name=f"Member {member} {m}",
                tracking_option_id=draw(maybe(OPTIONS)),
            )
        )
    for service in draw(st.sets(st.sampled_from(SERVICES), min_size=1)):
        rows["service_templates"].append(
            row(
                "service_templates",
                practice_id=pid,
                service_template_id=service,
                name=f"Service {service} {m}",
                tracking_option_id=draw(maybe(OPTIONS)),
                account_code="200",
                tax_type="OUTPUT2",
            )
        )
    for client in draw(st.sets(st.sampled_from(CLIENTS), min_size=1)):
        rows["clients"].append(
            row(
                "clients",
                practice_id=pid,
                client_id=client,
                name=f"Client {client} {m}",
                # a Xero ContactID (a GUID) of the client's own: the same id in every practice sharing it
                xero_contact_id=draw(st.none() | st.just(str(uuid.uuid5(uuid.NAMESPACE_URL, client)))),
                owner_team_member_id=draw(maybe(MEMBERS)),
                tracking_option_id=draw(maybe(OPTIONS)),
                consolidate_lines=draw(st.sampled_from([None, "false", "true"])),
            )
        )
    for invoice in draw(st.sets(st.sampled_from(INVOICES), min_size=1)):
        rows["invoices"].append(
            row(
                "invoices",
                practice_id=pid,
                invoice_id=invoice,
                client_id=draw(st.sampled_from(CLIENTS)),
                invoice_number=f"INV {invoice} {m}",
                issue_date="2026-01-15",
                due_date="2026-02-14",
                currency="GBP",
                reference=f"Ref {m}",
                status=draw(st.sampled_from(["approved"] * 4 + ["draft"])),
                updated_at="2026-01-15T09:00:00Z",
            )
        )
        for n in range(draw(st.integers(0, 3))):
            line_type = draw(st.sampled_from(["service", "service", "alignment_fee", "adhoc"]))
            rows["invoice_lines"].append(
                row(
                    "invoice_lines",
                    practice_id=pid,
                    invoice_id=invoice,
                    line_id=f"l{n}",
                    position=str(n),
                    line_type=line_type,
                    service_template_id=None if line_type == "adhoc" else draw(st.sampled_from(SERVICES)),
                    description=f"Work {n} {m}",
                    quantity="1",
                    unit_amount="10.00",
                    account_code="200" if line_type == "adhoc" else None,
                    tax_type="OUTPUT2" if line_type == "adhoc" else None,
                )
            )
    return rows


@st.composite
def shared_id_sources(draw) -> Source:
    source = empty_source()
    for pid in [f"p{n}" for n in range(draw(st.integers(2, 3)))]:
        for table, rows in draw(practice_rows(pid)).items():
            source[table] += rows
    return source


def check_isolation(source: Source, work: Path) -> Outcome:
    """Run the source and assert the isolation properties; returns the outcome (for `make reliability`)."""
    outcome = run_source(write_source(source, work / "source"), work / "run")
    assert outcome.crashed is None and outcome.stopped is None, outcome.crashed or outcome.stopped
    assert outcome.accounting is None, outcome.accounting
    assert outcome.leaks == [], outcome.leaks
    assert slot_name_errors(source, run_settings(work / "source", work / "run").warehouse) == []
    return outcome


def slot_name_errors(source: Source, warehouse: Path) -> list[str]:
    """Slots of line_tracking not named as the line's own practice names that option id (and its category)."""
    options = {(r["practice_id"], r["tracking_option_id"]): r for r in source["tracking_options"]}
    categories = {
        (r["practice_id"], r["tracking_category_id"]): r["name"] for r in source["tracking_categories"]
    }
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        lines = pl.from_arrow(con.execute("select * from line_tracking").fetch_arrow_table())
    finally:
        con.close()
    errors = []
    for line in lines.iter_rows(named=True):
        for slot in (1, 2):
            option_id = line[f"tracking{slot}_option_id"]
            own = options.get((line["practice_id"], option_id))
            expected_option = own["name"] if own else None
            expected_category = (
                categories.get((line["practice_id"], own["tracking_category_id"])) if own else None
            )
            got = (
                line[f"tracking{slot}_option"],
                line[f"tracking{slot}_category"] if expected_option else None,
            )
            if got != (expected_option, expected_category if expected_option else None):
                where = (
                    f"{line['practice_id']}/{line['invoice_id']}/{line['line_id']} slot {slot} ({option_id})"
                )
                errors.append(f"{where}: {got}, expected {(expected_option, expected_category)}")
    return errors


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(source=shared_id_sources())
def test_no_name_crosses_practices_that_share_ids(source):
    with TemporaryDirectory() as work:
        check_isolation(source, Path(work))


def test_an_id_only_another_practice_has_is_unknown_not_borrowed(tmp_path):
    """The plainest case, spelled out: p1's client names option o9, which only p2 has."""
    source = empty_source()
    for pid in ("p1", "p2"):
        m = marker(pid)
        source["practices"].append(row("practices", practice_id=pid, name=f"P {m}", ledger="xero"))
        source["tracking_categories"].append(
            row(
                "tracking_categories",
                practice_id=pid,
                tracking_category_id="k1",
                name=f"Cat {m}",
                status="ACTIVE",
            )
        )
        source["service_templates"].append(
            row(
                "service_templates",
                practice_id=pid,
                service_template_id="s1",
                name=f"S {m}",
                account_code="200",
                tax_type="OUTPUT2",
            )
        )
        source["clients"].append(
            row("clients", practice_id=pid, client_id="c1", name=f"Client {m}", tracking_option_id="o9")
        )
        source["invoices"].append(
            row(
                "invoices",
                practice_id=pid,
                invoice_id="i1",
                client_id="c1",
                invoice_number=f"INV {m}",
                issue_date="2026-01-15",
                due_date="2026-02-14",
                currency="GBP",
                status="approved",
                updated_at="2026-01-15T09:00:00Z",
            )
        )
        source["invoice_lines"].append(
            row(
                "invoice_lines",
                practice_id=pid,
                invoice_id="i1",
                line_id="l1",
                position="1",
                line_type="service",
                service_template_id="s1",
                description=f"Work {m}",
                quantity="1",
                unit_amount="10",
            )
        )
    source["tracking_options"].append(
        row(
            "tracking_options",
            practice_id="p2",
            tracking_option_id="o9",
            tracking_category_id="k1",
            name="Nine «p2»",
            status="ACTIVE",
        )
    )
    outcome = check_isolation(source, tmp_path)
    assert outcome.states == {("p1", "i1"): "held", ("p2", "i1"): "ready"}
    assert outcome.codes[("p1", "i1")] == {"UNKNOWN_OPTION"}
