"""R2 to R4: where slot 2 comes from.

R2 a `service` line: its template's option, else the client owner's, else empty.
R3 an `alignment_fee` line: always the client owner's, even when its template has an option.
R4 an `adhoc` line (no template): the client owner's.
"""

from tests.source_builder import SourceBuilder
from tests.unit.what_finance_sees import line, problems, slots, state, tracking_sent

BOOK = ("Department", "Central Bookkeeping Team", "service")  # svc-book's option
OWNER = ("Department", "Tax Team", "owner")  # tm-owner's option
EMPTY = (None, None, None)


def _one_line(client_owner: str | None = "tm-owner", **line) -> SourceBuilder:
    b = SourceBuilder()
    b.member("p1", "tm-plain", "Nell No-Option", option=None)
    b.client("p1", "c2", "Delta Ltd", option="opt-pa", owner=client_owner)
    b.invoice("p1", "i1", client_id="c2")
    if line.get("line_type") == "adhoc":
        b.adhoc_line("p1", "i1", "l1", **{k: v for k, v in line.items() if k != "line_type"})
    else:
        b.line("p1", "i1", "l1", **line)
    return b


def test_service_line_uses_its_template_option():
    result = _one_line(line_type="service", template="svc-book").resolve()

    assert slots(result, "l1")[3:] == BOOK
    assert tracking_sent(result)[0][2:] == ("Department", "Central Bookkeeping Team")


def test_service_line_whose_template_has_no_option_uses_the_owner_option():
    result = _one_line(line_type="service", template="svc-accounts").resolve()

    assert slots(result, "l1")[3:] == OWNER
    assert tracking_sent(result)[0][2:] == ("Department", "Tax Team")


def test_service_line_without_template_option_or_owner_option_has_empty_slot2():
    result = _one_line(client_owner="tm-plain", line_type="service", template="svc-accounts").resolve()

    assert slots(result, "l1")[3:] == EMPTY
    assert state(result) == "ready"
    assert tracking_sent(result)[0][2:] == (None, None)


def test_service_line_of_a_client_without_owner_and_template_without_option_has_empty_slot2():
    result = _one_line(client_owner=None, line_type="service", template="svc-accounts").resolve()

    assert slots(result, "l1")[3:] == EMPTY
    assert state(result) == "ready"


def test_alignment_fee_uses_owner_even_when_service_has_option():
    result = _one_line(line_type="alignment_fee", template="svc-book").resolve()

    assert slots(result, "l1")[3:] == OWNER
    assert line(result, "l1")["tracking2_option_id"] == "opt-tax"
    assert tracking_sent(result)[0][2:] == ("Department", "Tax Team")


def test_alignment_fee_of_an_owner_without_option_stays_empty_even_when_service_has_option():
    result = _one_line(client_owner="tm-plain", line_type="alignment_fee", template="svc-book").resolve()

    assert slots(result, "l1")[3:] == EMPTY
    assert state(result) == "ready"


def test_alignment_fee_of_a_client_without_owner_has_empty_slot2():
    result = _one_line(client_owner=None, line_type="alignment_fee", template="svc-book").resolve()

    assert slots(result, "l1")[3:] == EMPTY


def test_adhoc_line_uses_the_owner_option():
    result = _one_line(line_type="adhoc").resolve()

    assert slots(result, "l1")[3:] == OWNER
    assert state(result) == "ready"
    assert problems(result) == []


def test_adhoc_line_of_a_client_without_owner_has_empty_slot2():
    result = _one_line(client_owner=None, line_type="adhoc").resolve()

    assert slots(result, "l1")[3:] == EMPTY
    assert state(result) == "ready"


def test_lines_of_one_invoice_each_take_slot2_from_their_own_source():
    b = SourceBuilder()
    b.invoice("p1", "i1")
    b.line("p1", "i1", "l1", template="svc-book")
    b.line("p1", "i1", "l2", template="svc-accounts")
    b.line("p1", "i1", "l3", line_type="alignment_fee", template="svc-book")
    b.adhoc_line("p1", "i1", "l4")
    result = b.resolve()

    assert [slots(result, f"l{n}")[3:] for n in (1, 2, 3, 4)] == [BOOK, OWNER, OWNER, OWNER]
    assert [t[3] for t in tracking_sent(result)] == [
        "Central Bookkeeping Team",
        "Tax Team",
        "Tax Team",
        "Tax Team",
    ]
