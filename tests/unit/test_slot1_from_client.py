"""R1: slot 1 is the client's tracking option, on every line of every invoice of that client, whatever
the line type. No option on the client: slot 1 is empty."""

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import line, slots, state, tracking_sent


def test_every_line_type_carries_the_client_option_in_slot1():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", line_type="service")
    b.line("p1", "i1", "l2", line_type="alignment_fee")
    b.adhoc_line("p1", "i1", "l3")
    result = b.resolve()

    for line_id in ("l1", "l2", "l3"):
        assert slots(result, line_id)[:3] == ("Partner", "Partner A", "client")
    assert [t[:2] for t in tracking_sent(result)] == [("Partner", "Partner A")] * 3


def test_client_without_option_leaves_slot1_empty_and_the_invoice_ready():
    b = SourceBuilder()
    b.client("p1", "c2", "No Option Ltd", option=None, owner="tm-owner")
    b.approved_invoice("p1", "i1", client_id="c2")
    result = b.resolve()

    assert slots(result, "l1")[:3] == (None, None, None)
    assert line(result, "l1")["tracking1_option_id"] is None
    assert state(result) == "ready"
    assert tracking_sent(result) == [(None, None, "Department", "Central Bookkeeping Team")]


def test_each_invoice_takes_slot1_from_its_own_client():
    b = SourceBuilder()
    b.client("p1", "c2", "Beta Ltd", option="opt-pb", owner="tm-owner")
    b.approved_invoice("p1", "i1", client_id="c1")
    b.approved_invoice("p1", "i2", client_id="c2")
    result = b.resolve()

    assert slots(result, "l1", "i1")[1] == "Partner A"
    assert slots(result, "l1", "i2")[1] == "Partner B"


def test_slot1_comes_from_the_client_even_when_the_template_and_owner_have_options():
    b = SourceBuilder()
    b.template("p1", "svc-partner", "Partner work", option="opt-pb")
    b.member("p1", "tm-partner", "Pat Partner", option="opt-pb")
    b.client("p1", "c2", "Gamma Ltd", option="opt-pa", owner="tm-partner")
    b.invoice("p1", "i1", client_id="c2")
    b.line("p1", "i1", "l1", template="svc-partner")
    result = b.resolve(policy="drop_secondary")

    assert slots(result, "l1")[:3] == ("Partner", "Partner A", "client")
