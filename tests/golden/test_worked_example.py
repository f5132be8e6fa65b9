"""The help page's worked example (practice northgate of the sample) as Xero receives it, byte for byte.

Regenerate on purpose only: `TRACKLINE_REGENERATE_GOLDEN=1 pytest tests/golden`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import SAMPLE

GOLDEN = Path(__file__).parent / "northgate"


@pytest.fixture(scope="module")
def northgate_out(tmp_path_factory):
    from flows.run.pipeline import run_pipeline
    from flows.run.steps import Scope
    from flows.settings import Settings

    root = tmp_path_factory.mktemp("golden")
    settings = Settings(source=SAMPLE, warehouse=root / "w.duckdb", out=root / "out")
    run_pipeline(settings, Scope("backfill", practices=("northgate",)), emit_batches=True, as_tasks=False)
    return root / "out" / "xero" / "northgate"


@pytest.mark.parametrize("name", ["northgate-000001.json", "northgate-000001.csv"])
def test_worked_example_matches_golden_file(northgate_out, name):
    produced = (northgate_out / name).read_bytes()
    if os.environ.get("TRACKLINE_REGENERATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        (GOLDEN / name).write_bytes(produced)
    assert produced == (GOLDEN / name).read_bytes()


def test_worked_example_has_every_rule_of_the_help_page(northgate_out):
    import json

    body = json.loads((northgate_out / "northgate-000001.json").read_text())
    acme = [i for i in body["Invoices"] if "ContactID" in i["Contact"]]
    lines = [line for invoice in acme for line in invoice["LineItems"]]
    slot1 = {line["Tracking"][0]["Option"] for line in lines}
    assert slot1 == {"Partner A"}, "slot 1 is the client's option on every line"
    slot2_by_description = {line["Description"]: line["Tracking"][1]["Option"] for line in lines}
    assert any(v == "Central Bookkeeping Team" for v in slot2_by_description.values())
    fee = [d for d in slot2_by_description if "alignment" in d.lower()]
    assert fee and all(slot2_by_description[d] != "Central Bookkeeping Team" for d in fee)
