"""The Xero double behaves as Xero does: each test starts the real server on 127.0.0.1 and talks to it with httpx."""

from __future__ import annotations

import base64
import json
import signal
import ssl
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.doubles.xero import (
    ALLOCATED,
    CONTACT_NOT_FOUND,
    DUE_DATE_MISSING,
    LOCKED_EDIT,
    NOT_FOUND_TEXT,
    NUMBER_NOT_UNIQUE,
    STATUS_NOT_VALID_FOR_MODIFICATION,
    Limits,
    XeroDouble,
)

REPO = Path(__file__).resolve().parents[2]
TENANT = "5b0f2a52-8e0e-4d7c-9a4b-2f6f3c1d7e01"
OTHER_TENANT = "0c3d9e7a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
CLIENT_ID, CLIENT_SECRET = "custom-connection-client", "custom-connection-secret"
CONTACT_ID = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"
PUSH = "/Invoices?summarizeErrors=false&unitdp=4"
HTTP = {"verify": ssl.create_default_context(), "timeout": 10}  # one context: httpx builds one per client


def post(url: str, **options) -> httpx.Response:
    return httpx.post(url, **HTTP, **options)


def get(url: str, **options) -> httpx.Response:
    return httpx.get(url, **HTTP, **options)


@contextmanager
def seeded(**options):
    """A started double with one organisation reached by a custom connection."""
    with XeroDouble(**options) as double:
        double.add_organisation(TENANT, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, name="Northgate")
        double.add_tracking_category(
            TENANT, "Partner", {"Alice": "ACTIVE", "Carol": "ACTIVE", "Bob": "ARCHIVED"}
        )
        double.add_tracking_category(TENANT, "Service", ["Audit", "Tax"])
        double.add_tracking_category(TENANT, "Office", ["Leeds"], status="ARCHIVED")
        double.add_contact(TENANT, "Acme Ltd", CONTACT_ID)
        double.add_tax_rate(TENANT, "OUTPUT2", "15% GST on Income", 15)
        yield double


def token(double: XeroDouble) -> str:
    response = post(
        double.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    response.raise_for_status()
    return response.json()["access_token"]


@contextmanager
def api_client(double: XeroDouble, tenant_id: str = TENANT):
    headers = {
        "Authorization": f"Bearer {token(double)}",
        "xero-tenant-id": tenant_id,
        "Accept": "application/json",
    }
    with httpx.Client(base_url=double.api_url, headers=headers, **HTTP) as client:
        yield client


@pytest.fixture
def xero():
    with seeded() as double:
        yield double


@pytest.fixture
def api(xero):
    with api_client(xero) as client:
        yield client


def without_nones(document: dict) -> dict:
    """A builder's None means the field is left out: a JSON null would fail Xero's schema."""
    return {key: value for key, value in document.items() if value is not None}


def line(**overrides) -> dict:
    return without_nones(
        {
            "Description": "Annual accounts",
            "Quantity": 1,
            "UnitAmount": 150,
            "AccountCode": "200",
            "TaxType": "OUTPUT2",
            "LineAmount": 150,
            "Tracking": [{"Name": "Partner", "Option": "Alice"}, {"Name": "Service", "Option": "Audit"}],
        }
        | overrides
    )


def invoice(number: str = "INV-1", **overrides) -> dict:
    return without_nones(
        {
            "Type": "ACCREC",
            "Contact": {"ContactID": CONTACT_ID},
            "InvoiceNumber": number,
            "Date": "2026-07-01",
            "DueDate": "2026-07-31",
            "Status": "AUTHORISED",
            "LineAmountTypes": "Exclusive",
            "LineItems": [line()],
        }
        | overrides
    )


def push(
    client: httpx.Client, *invoices: dict, path: str = PUSH, key: str | None = None, timeout: float = 10
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.put(path, json={"Invoices": list(invoices)}, headers=headers, timeout=timeout)


def exact(response: httpx.Response) -> dict:
    """A body with its amounts as Decimal, the way Xero writes them."""
    return json.loads(response.text, parse_float=Decimal)


def messages(document: dict) -> list[str]:
    return [error["Message"] for error in document.get("ValidationErrors", [])]


def pushed(client: httpx.Client, *invoices: dict, path: str = PUSH) -> list[dict]:
    """The invoices echoed by a push that Xero answered with 200."""
    response = push(client, *invoices, path=path)
    assert response.status_code == 200, response.text
    return exact(response)["Invoices"]


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


# Identity


def test_a_custom_connection_gets_a_30_minute_bearer_token(xero):
    credentials = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    response = post(
        xero.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {credentials}"},
    )

    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer" and body["access_token"]
    assert "refresh_token" not in body and "accounting.transactions" in body["scope"]


def test_a_client_may_send_its_credentials_as_form_fields(xero):
    form = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    assert post(xero.token_url, data=form).status_code == 200


def test_a_wrong_client_secret_is_invalid_client(xero):
    response = post(xero.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "wrong"))

    assert (response.status_code, response.json()) == (400, {"error": "invalid_client"})


def test_a_standard_app_may_not_use_client_credentials():
    with XeroDouble() as double:
        double.add_organisation(
            TENANT, client_id="app", client_secret="s", grant="refresh_token", refresh_token="r1"
        )
        response = post(double.token_url, data={"grant_type": "client_credentials"}, auth=("app", "s"))

    assert (response.status_code, response.json()) == (400, {"error": "unauthorized_client"})


def refresh(double: XeroDouble, refresh_token: str) -> httpx.Response:
    return post(
        double.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=("app", "s"),
    )


def test_a_refresh_token_works_once_and_rotates():
    with XeroDouble(limits=Limits(refresh_grace_seconds=0)) as double:
        double.add_organisation(
            TENANT, client_id="app", client_secret="s", grant="refresh_token", refresh_token="r1"
        )
        first = refresh(double, "r1")
        again = refresh(double, "r1")
        rotated = refresh(double, first.json()["refresh_token"])

    assert first.status_code == 200 and "offline_access" in first.json()["scope"]
    assert first.json()["refresh_token"] not in ("r1", None) and first.json()["expires_in"] == 1800
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != first.json()["refresh_token"]


def test_a_used_refresh_token_works_again_only_within_the_30_minute_grace():
    with XeroDouble() as double:
        double.add_organisation(
            TENANT, client_id="app", client_secret="s", grant="refresh_token", refresh_token="r1"
        )
        first = refresh(double, "r1").json()
        double.advance(29 * 60)
        retried = refresh(double, "r1").json()
        double.advance(2 * 60)
        late = refresh(double, "r1")

    assert retried["refresh_token"] == first["refresh_token"]
    assert retried["access_token"] != first["access_token"]
    assert late.json() == {"error": "invalid_grant"}


def test_an_expired_access_token_gets_401_token_expired(xero, api):
    xero.advance(30 * 60 + 1)

    response = api.get("/TrackingCategories")

    assert response.status_code == 401
    assert response.json()["Detail"].startswith("TokenExpired: token expired at ")


def test_no_token_gets_401_authentication_unsuccessful(xero):
    response = get(f"{xero.api_url}/Invoices", headers={"xero-tenant-id": TENANT})

    assert (response.status_code, response.json()["Detail"]) == (401, "AuthenticationUnsuccessful")


def test_a_token_whose_app_is_not_connected_to_the_organisation_gets_403(xero):
    xero.add_organisation(OTHER_TENANT, client_id="other-app", client_secret="other-secret")

    with api_client(xero, tenant_id=OTHER_TENANT) as client:
        response = client.get("/Invoices")

    assert response.status_code == 403
    assert response.json() | {"Instance": None} == {
        "Type": None,
        "Title": "Forbidden",
        "Status": 403,
        "Detail": "AuthenticationUnsuccessful",
        "Instance": None,
        "Extensions": {},
    }


def test_rejected_tokens_get_401_until_the_count_is_spent(xero, api):
    xero.reject_tokens_next(1)

    assert api.get("/TaxRates").status_code == 401
    assert api.get("/TaxRates").status_code == 200


# Settings the organisation has


def test_tracking_categories_omit_archived_ones_unless_asked(api):
    def shown(params: str) -> dict[str, list[str]]:
        categories = api.get(f"/TrackingCategories{params}").json()["TrackingCategories"]
        return {c["Name"]: [o["Name"] for o in c["Options"]] for c in categories}

    assert shown("") == {"Partner": ["Alice", "Carol"], "Service": ["Audit", "Tax"]}
    assert shown("?includeArchived=true") == {
        "Office": ["Leeds"],
        "Partner": ["Alice", "Carol", "Bob"],
        "Service": ["Audit", "Tax"],
    }


def test_tracking_categories_carry_their_ids_and_statuses(api):
    partner = api.get("/TrackingCategories?includeArchived=true").json()["TrackingCategories"][1]

    assert partner["Name"] == "Partner" and partner["Status"] == "ACTIVE"
    assert uuid.UUID(partner["TrackingCategoryID"])
    assert {(o["Name"], o["Status"]) for o in partner["Options"]} >= {("Bob", "ARCHIVED")}
    assert all(uuid.UUID(o["TrackingOptionID"]) for o in partner["Options"])


def test_tax_rates_are_listed(api):
    rates = api.get("/TaxRates").json()["TaxRates"]

    assert [(r["TaxType"], r["Name"], r["EffectiveRate"]) for r in rates] == [
        ("OUTPUT2", "15% GST on Income", 15)
    ]


def test_an_organisation_keeps_at_most_two_active_tracking_categories(xero):
    with pytest.raises(ValueError, match="at most 2 active"):
        xero.set_category_status(TENANT, "Office", "ACTIVE")


# Creating invoices


def test_an_accepted_invoice_gets_ids_for_itself_and_each_line(api):
    (saved,) = pushed(api, invoice(LineItems=[line(), line(Description="Tax return")]))

    assert saved["StatusAttributeString"] == "OK" and saved["HasErrors"] is False
    assert uuid.UUID(saved["InvoiceID"])
    assert len({uuid.UUID(item["LineItemID"]) for item in saved["LineItems"]}) == 2
    assert (saved["SubTotal"], saved["TotalTax"], saved["Total"], saved["AmountDue"]) == (300, 45, 345, 345)


def test_a_second_invoice_with_the_same_number_is_refused(xero, api):
    pushed(api, invoice("INV-1"))

    (refused,) = pushed(api, invoice("inv-1"))

    assert refused["HasErrors"] is True and refused["StatusAttributeString"] == "ERROR"
    assert messages(refused) == [NUMBER_NOT_UNIQUE]
    assert xero.count_created(TENANT, "INV-1") == 1 and len(xero.invoices(TENANT)) == 1


def test_unknown_tracking_is_dropped_silently_and_the_invoice_accepted(xero, api):
    tracking = [{"Name": "Partner", "Option": "Zoe"}, {"Name": "Region", "Option": "North"}]
    tracking.append({"Name": "Service", "Option": "Tax"})

    (saved,) = pushed(api, invoice(LineItems=[line(Tracking=tracking)]))

    assert saved["StatusAttributeString"] == "OK" and messages(saved) == []
    (stored,) = xero.invoices(TENANT)
    assert [(t["Name"], t["Option"]) for t in stored["LineItems"][0]["Tracking"]] == [("Service", "Tax")]


def test_an_archived_option_or_category_is_dropped_silently(xero, api):
    tracking = [{"Name": "Partner", "Option": "Bob"}, {"Name": "Office", "Option": "Leeds"}]

    (saved,) = pushed(api, invoice(LineItems=[line(Tracking=tracking)]))

    assert saved["StatusAttributeString"] == "OK"
    assert xero.invoices(TENANT)[0]["LineItems"][0]["Tracking"] == []


def test_of_two_options_of_one_category_xero_keeps_the_last(xero, api):
    tracking = [{"Name": "Partner", "Option": "Alice"}, {"Name": "Partner", "Option": "Carol"}]

    pushed(api, invoice(LineItems=[line(Tracking=tracking)]))

    (kept,) = xero.invoices(TENANT)[0]["LineItems"][0]["Tracking"]
    assert (kept["Name"], kept["Option"]) == ("Partner", "Carol")
    assert uuid.UUID(kept["TrackingCategoryID"]) and uuid.UUID(kept["TrackingOptionID"])


def test_a_contact_id_that_is_not_a_guid_fails_the_schema(xero, api):
    response = push(api, invoice(Contact={"ContactID": "ACME-1"}))

    assert response.status_code == 400
    assert response.json()["ErrorNumber"] == 14 and response.json()["Type"] == "PostDataInvalidException"
    assert "ContactID" in response.json()["Message"]
    assert xero.invoices(TENANT) == []


def test_an_unknown_contact_id_is_refused_per_invoice(api):
    (refused,) = pushed(api, invoice(Contact={"ContactID": str(uuid.uuid4())}))

    assert messages(refused) == [CONTACT_NOT_FOUND]


def test_a_contact_name_xero_does_not_have_creates_the_contact(api):
    first, second = pushed(api, invoice("INV-1", Contact={"Name": "Brand New Ltd"}), invoice("INV-2"))
    (third,) = pushed(api, invoice("INV-3", Contact={"Name": "brand new ltd"}))

    assert first["StatusAttributeString"] == "OK"
    assert uuid.UUID(first["Contact"]["ContactID"]) and first["Contact"]["ContactID"] != CONTACT_ID
    assert third["Contact"]["ContactID"] == first["Contact"]["ContactID"]
    assert second["Contact"]["Name"] == "Acme Ltd"


def test_an_authorised_invoice_without_due_date_is_refused(api):
    refused, draft = pushed(
        api, invoice("INV-1", DueDate=None), invoice("INV-2", Status="DRAFT", DueDate=None)
    )

    assert messages(refused) == [DUE_DATE_MISSING]
    assert draft["StatusAttributeString"] == "OK"


def test_without_unitdp_unit_amounts_are_rounded_to_two_places(xero, api):
    twelve = line(UnitAmount=12.345, LineAmount=None)

    (saved,) = pushed(api, invoice(LineItems=[twelve]), path="/Invoices?summarizeErrors=false")

    assert (saved["LineItems"][0]["UnitAmount"], saved["LineItems"][0]["LineAmount"]) == (
        Decimal("12.35"),
    ) * 2
    assert xero.invoices(TENANT)[0]["LineItems"][0]["UnitAmount"] == Decimal("12.3500")


def test_without_unitdp_a_four_place_unit_amount_no_longer_matches_its_line_amount(xero, api):
    four_places = line(Quantity=8, UnitAmount=0.125, LineAmount=1.00)

    (refused,) = pushed(api, invoice(LineItems=[four_places]), path="/Invoices?summarizeErrors=false")
    (saved,) = pushed(api, invoice(LineItems=[four_places]))

    assert messages(refused) == ["The line total 1.00 does not match the expected line total 1.04"]
    assert saved["LineItems"][0]["UnitAmount"] == 0.125 and saved["LineItems"][0]["LineAmount"] == 1
    assert xero.count_created(TENANT, "INV-1") == 1


def test_with_unitdp_4_unit_amounts_keep_four_places_and_are_written_exactly(api):
    response = push(api, invoice(LineItems=[line(Quantity=3, UnitAmount=0.33335, LineAmount=None)]))

    assert '"UnitAmount": 0.3334' in response.text and '"Quantity": 3.0000' in response.text
    assert '"LineAmount": 1.00' in response.text


def test_a_line_amount_that_disagrees_with_quantity_times_unit_amount_is_refused(api):
    (refused,) = pushed(api, invoice(LineItems=[line(Quantity=2, UnitAmount=10, LineAmount=25)]))

    assert messages(refused) == ["The line total 25.00 does not match the expected line total 20.00"]


def test_a_missing_line_amount_is_calculated(api):
    (saved,) = pushed(api, invoice(LineItems=[line(Quantity=3, UnitAmount=10, LineAmount=None)]))

    assert saved["LineItems"][0]["LineAmount"] == 30 and saved["Total"] == Decimal("34.5")


def test_by_default_one_invoice_in_error_refuses_the_whole_request(xero, api):
    response = push(api, invoice("INV-1"), invoice("INV-2", DueDate=None), path="/Invoices?unitdp=4")

    assert response.status_code == 400
    body = response.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    assert [(e["InvoiceNumber"], messages(e)) for e in body["Elements"]] == [("INV-2", [DUE_DATE_MISSING])]
    assert xero.invoices(TENANT) == []


def test_more_than_50_invoices_are_refused_whole(xero, api):
    response = push(api, *(invoice(f"INV-{n}") for n in range(51)))

    assert response.status_code == 400 and response.json()["Type"] == "ValidationException"
    assert xero.invoices(TENANT) == []


def test_a_body_over_3_5_mb_is_refused_whole(xero, api):
    response = push(api, invoice(Reference="x" * 3_600_000))

    assert response.status_code == 400 and xero.invoices(TENANT) == []


def test_a_body_that_is_not_json_is_refused_whole(api):
    response = api.put(PUSH, content=b'{"Invoices": [', headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json()["Message"].startswith("JSON request body could not be read")


def test_a_body_sent_without_a_json_content_type_is_refused(api):
    response = api.put(PUSH, content=json.dumps({"Invoices": [invoice()]}).encode())

    assert response.status_code == 400 and response.json()["Type"] == "PostDataInvalidException"


def test_unknown_codes_are_refused_once_the_organisation_has_accounts(xero, api):
    xero.add_account(TENANT, "200")

    (refused,) = pushed(api, invoice(LineItems=[line(AccountCode="999", TaxType="OUTPUT9")]))

    assert messages(refused) == [
        "Account code '999' is not a valid code for this document.",
        "The TaxType code OUTPUT9 does not exist or cannot be used for this type of transaction.",
    ]


def test_without_accounts_any_code_is_accepted(api):
    (saved,) = pushed(api, invoice(LineItems=[line(AccountCode="999", TaxType="WHATEVER")]))

    assert saved["StatusAttributeString"] == "OK" and saved["TotalTax"] == 0


def test_an_invoice_dated_in_a_locked_period_cannot_be_created(xero, api):
    xero.set_lock_date(TENANT, "2026-07-01")

    (refused,) = pushed(api, invoice())

    assert messages(refused) == [
        "The document date cannot be before the period lock date, currently set at 01-Jul-2026."
    ]


def test_inclusive_line_amounts_carry_their_tax_inside(api):
    (saved,) = pushed(
        api, invoice(LineAmountTypes="Inclusive", LineItems=[line(UnitAmount=115, LineAmount=115)])
    )

    assert (saved["SubTotal"], saved["TotalTax"], saved["Total"]) == (100, 15, 115)


# Reading invoices


def test_get_invoices_by_ids_returns_line_items_and_tracking(api):
    first, _ = pushed(api, invoice("INV-1"), invoice("INV-2"))

    (found,) = api.get("/Invoices", params={"IDs": first["InvoiceID"]}).json()["Invoices"]

    assert found["InvoiceNumber"] == "INV-1"
    assert [(t["Name"], t["Option"]) for t in found["LineItems"][0]["Tracking"]] == [
        ("Partner", "Alice"),
        ("Service", "Audit"),
    ]
    assert found["LineItems"][0]["LineItemID"] == first["LineItems"][0]["LineItemID"]


def test_get_invoices_without_paging_or_ids_omits_line_items(api):
    pushed(api, invoice("INV-1"))

    (found,) = api.get("/Invoices", params={"InvoiceNumbers": "INV-1"}).json()["Invoices"]

    assert found["LineItems"] == [] and found["Total"] == Decimal("172.5")


def test_get_invoices_pages_hold_100_with_their_lines(api):
    for batch in range(3):
        pushed(api, *(invoice(f"INV-{batch}-{n}") for n in range(40)))

    first = api.get("/Invoices?page=1").json()
    second = api.get("/Invoices?page=2").json()

    assert len(first["Invoices"]) == 100 and len(second["Invoices"]) == 20
    assert second["pagination"] == {"page": 2, "pageSize": 100, "pageCount": 2, "itemCount": 120}
    assert all(i["LineItems"] for i in second["Invoices"])


def test_get_invoices_filters_by_status(api, xero):
    pushed(api, invoice("INV-1"), invoice("INV-2", Status="DRAFT"))

    found = api.get("/Invoices?Statuses=DRAFT").json()["Invoices"]

    assert [i["InvoiceNumber"] for i in found] == ["INV-2"]


def test_where_filters_are_refused_rather_than_ignored(api):
    response = api.get("/Invoices", params={"where": 'Status=="DRAFT"'})

    assert response.status_code == 400


def test_get_one_invoice_by_id_has_its_lines_and_an_unknown_one_is_404(api):
    (saved,) = pushed(api, invoice())

    found = api.get(f"/Invoices/{saved['InvoiceID']}").json()["Invoices"][0]
    missing = api.get(f"/Invoices/{uuid.uuid4()}")

    assert found["LineItems"][0]["Tracking"] and found["Date"].startswith("/Date(")
    assert (missing.status_code, missing.text) == (404, NOT_FOUND_TEXT)


# Updating invoices


def retrack(client: httpx.Client, saved: dict, option: str) -> httpx.Response:
    lines = [
        {"LineItemID": item["LineItemID"], "Tracking": [{"Name": "Partner", "Option": option}]}
        for item in saved["LineItems"]
    ]
    return client.post(f"/Invoices/{saved['InvoiceID']}?unitdp=4", json={"Invoices": [{"LineItems": lines}]})


def test_an_update_keeps_line_item_ids_and_changes_only_the_tracking(xero, api):
    (saved,) = pushed(api, invoice())

    response = retrack(api, saved, "Carol")

    assert response.status_code == 200
    (stored,) = xero.invoices(TENANT)
    (stored_line,) = stored["LineItems"]
    assert stored_line["LineItemID"] == saved["LineItems"][0]["LineItemID"]
    assert [(t["Name"], t["Option"]) for t in stored_line["Tracking"]] == [("Partner", "Carol")]
    assert (stored_line["LineAmount"], stored["Total"]) == (150, Decimal("172.5"))
    assert xero.count_created(TENANT, "INV-1") == 1


def test_a_stored_line_left_out_of_an_update_is_deleted(xero, api):
    (saved,) = pushed(api, invoice(LineItems=[line(), line(Description="Tax return")]))
    kept = {"LineItemID": saved["LineItems"][0]["LineItemID"]}

    api.post(f"/Invoices/{saved['InvoiceID']}", json={"Invoices": [{"LineItems": [kept]}]})

    assert [i["LineItemID"] for i in xero.invoices(TENANT)[0]["LineItems"]] == [kept["LineItemID"]]


def test_post_invoices_with_an_existing_number_updates_that_invoice(xero, api):
    pushed(api, invoice("INV-1"))

    response = api.post(PUSH, json={"Invoices": [invoice("INV-1", Reference="Second go")]})

    assert response.json()["Invoices"][0]["StatusAttributeString"] == "OK"
    assert xero.count_created(TENANT, "INV-1") == 1
    assert xero.invoices(TENANT)[0]["Reference"] == "Second go"


def test_an_authorised_invoice_cannot_go_back_to_draft(api):
    (saved,) = pushed(api, invoice())

    (refused,) = exact(
        api.post(PUSH, json={"Invoices": [{"InvoiceID": saved["InvoiceID"], "Status": "DRAFT"}]})
    )["Invoices"]

    assert messages(refused) == [STATUS_NOT_VALID_FOR_MODIFICATION]


def test_post_with_an_unknown_invoice_id_is_refused_per_invoice(api):
    response = api.post(PUSH, json={"Invoices": [invoice(InvoiceID=str(uuid.uuid4()))]})

    assert messages(exact(response)["Invoices"][0]) == [
        "The Invoice with the specified InvoiceID could not be found"
    ]


def refusal(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    (element,) = response.json()["Elements"]
    return messages(element)


def test_a_paid_invoice_refuses_an_update_with_xeros_reason(xero, api):
    (saved,) = pushed(api, invoice())
    xero.mark_paid(TENANT, "INV-1")

    assert refusal(retrack(api, saved, "Carol")) == [STATUS_NOT_VALID_FOR_MODIFICATION, ALLOCATED]
    assert xero.invoices(TENANT)[0]["Status"] == "PAID"


def test_a_part_paid_invoice_refuses_an_update(xero, api):
    (saved,) = pushed(api, invoice())
    xero.mark_paid(TENANT, "INV-1", amount="50.00")

    assert refusal(retrack(api, saved, "Carol")) == [ALLOCATED]
    stored = xero.invoices(TENANT)[0]
    assert (stored["Status"], stored["AmountPaid"], stored["AmountDue"]) == (
        "AUTHORISED",
        50,
        Decimal("122.5"),
    )


def test_a_credited_invoice_refuses_an_update(xero, api):
    (saved,) = pushed(api, invoice())
    xero.mark_credited(TENANT, "INV-1", amount=10)

    assert refusal(retrack(api, saved, "Carol")) == [ALLOCATED]
    assert xero.invoices(TENANT)[0]["CreditNotes"][0]["AppliedAmount"] == 10


def test_a_voided_invoice_refuses_an_update(xero, api):
    (saved,) = pushed(api, invoice())
    xero.void(TENANT, "INV-1")

    assert refusal(retrack(api, saved, "Carol")) == [STATUS_NOT_VALID_FOR_MODIFICATION]


def test_an_invoice_in_a_locked_period_refuses_an_update(xero, api):
    (saved,) = pushed(api, invoice())
    xero.set_lock_date(TENANT, "2026-07-31")

    assert refusal(retrack(api, saved, "Carol")) == [LOCKED_EDIT]


def test_a_paid_invoice_can_still_be_marked_sent(xero, api):
    (saved,) = pushed(api, invoice())
    xero.mark_paid(TENANT, "INV-1")

    response = api.post(f"/Invoices/{saved['InvoiceID']}", json={"Invoices": [{"SentToContact": True}]})

    assert response.status_code == 200 and xero.invoices(TENANT)[0]["SentToContact"] is True


# Rate limits


def test_every_response_carries_the_remaining_limits(api):
    api.get("/TaxRates")
    response = api.get("/TaxRates")

    assert response.headers["X-MinLimit-Remaining"] == "58"
    assert response.headers["X-DayLimit-Remaining"] == "4998"
    assert response.headers["X-AppMinLimit-Remaining"] == "9998"


def test_a_sixth_request_in_flight_gets_429_concurrent(xero, api):
    xero.slow(0.4, count=5)
    with ThreadPoolExecutor(5) as pool:
        first_five = [pool.submit(api.get, "/TaxRates") for _ in range(5)]
        wait_until(lambda: xero.peak_in_flight(TENANT) == 5)
        sixth = api.get("/TaxRates")

    assert sixth.status_code == 429
    assert sixth.headers["X-Rate-Limit-Problem"] == "concurrent" and "Retry-After" not in sixth.headers
    assert [f.result().status_code for f in first_five] == [200] * 5
    assert xero.peak_in_flight(TENANT) == 6


def test_the_61st_request_in_a_minute_gets_429_minute_with_retry_after(api):
    answers = [api.get("/TaxRates") for _ in range(61)]

    assert [a.status_code for a in answers[:60]] == [200] * 60
    refused = answers[60]
    assert refused.status_code == 429 and refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert "rate%20limit%20exceeded" in refused.text


def test_time_speed_makes_the_minute_limit_reset_in_a_second():
    with seeded(speed=60, limits=Limits(per_minute=2)) as double, api_client(double) as client:
        answers = [client.get("/TaxRates") for _ in range(3)]
        wait = float(answers[2].headers["Retry-After"])
        time.sleep(wait)
        after = client.get("/TaxRates")

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 0 < wait <= 1
    assert after.status_code == 200


def test_retry_after_is_written_in_real_seconds_as_a_decimal_when_the_clock_runs_fast():
    with seeded(speed=60, limits=Limits(per_minute=1)) as double, api_client(double) as client:
        client.get("/TaxRates")
        double.advance(30)
        refused = client.get("/TaxRates")

    assert refused.headers["Retry-After"] == "0.5"


def test_the_day_limit_is_named_day_and_waits_for_the_rest_of_the_day():
    with seeded(limits=Limits(per_day=2)) as double, api_client(double) as client:
        answers = [client.get("/TaxRates") for _ in range(3)]

    assert answers[2].status_code == 429 and answers[2].headers["X-Rate-Limit-Problem"] == "day"
    assert 86000 < int(answers[2].headers["Retry-After"]) <= 86400


def test_the_app_minute_limit_counts_every_organisation_of_the_app():
    with XeroDouble(limits=Limits(app_per_minute=3)) as double:
        double.add_organisation(
            TENANT, client_id="app", client_secret="s", grant="refresh_token", refresh_token="a"
        )
        double.add_organisation(OTHER_TENANT, client_id="app", client_secret="s", grant="refresh_token")
        access = refresh(double, "a").json()["access_token"]
        headers = {"Authorization": f"Bearer {access}", "Accept": "application/json"}
        statuses = [
            get(f"{double.api_url}/TaxRates", headers=headers | {"xero-tenant-id": tenant})
            for tenant in (TENANT, OTHER_TENANT, TENANT, OTHER_TENANT)
        ]

    assert [s.status_code for s in statuses] == [200, 200, 200, 429]
    assert statuses[3].headers["X-Rate-Limit-Problem"] == "appminute"


# Idempotency


def test_a_repeated_idempotency_key_returns_the_first_response_without_creating_again(xero, api):
    first = push(api, invoice(), key="batch-1-digest")
    second = push(api, invoice(), key="batch-1-digest")

    assert first.status_code == second.status_code == 200
    assert second.json()["Invoices"][0]["InvoiceID"] == first.json()["Invoices"][0]["InvoiceID"]
    assert xero.count_created(TENANT, "INV-1") == 1
    assert [r["replayed"] for r in xero.requests if r["idempotency_key"]] == [False, True]


def test_the_same_idempotency_key_with_a_different_body_is_refused(xero, api):
    push(api, invoice("INV-1"), key="batch-1")

    response = push(api, invoice("INV-2"), key="batch-1")

    assert response.status_code == 400
    assert response.json()["Detail"] == "Idempotency Key batch-1 is used with a different request."
    assert xero.count_created(TENANT, "INV-2") == 0


def test_an_idempotency_key_over_128_characters_is_refused(xero, api):
    assert push(api, invoice(), key="k" * 128).status_code == 200
    assert push(api, invoice("INV-2"), key="k" * 129).status_code == 400
    assert xero.count_created(TENANT, "INV-2") == 0


def test_an_idempotency_key_is_forgotten_after_six_minutes(xero, api):
    push(api, invoice(), key="batch-1")
    xero.advance(6 * 60)

    again = push(api, invoice(), key="batch-1")

    assert messages(again.json()["Invoices"][0]) == [NUMBER_NOT_UNIQUE]
    assert xero.count_created(TENANT, "INV-1") == 1


def test_an_internal_error_is_remembered_under_its_idempotency_key(xero, api):
    xero.fail_next(1, status=500)

    first = push(api, invoice(), key="batch-1")
    again = push(api, invoice(), key="batch-1")
    fresh = push(api, invoice(), key="batch-1-retry")

    assert first.status_code == again.status_code == 500
    assert fresh.status_code == 200 and xero.count_created(TENANT, "INV-1") == 1


def test_a_503_does_no_work_and_is_not_remembered(xero, api):
    xero.fail_next(1, status=503, path_contains="/Invoices")

    failed = push(api, invoice(), key="batch-1")
    retried = push(api, invoice(), key="batch-1")

    assert (failed.status_code, retried.status_code) == (503, 200)
    assert xero.count_created(TENANT, "INV-1") == 1


# Faults


def test_dropped_connection_after_commit_has_still_created_the_invoice(xero, api):
    xero.drop_after_commit(1, path_contains="/Invoices")

    with pytest.raises(httpx.TransportError):
        push(api, invoice(), key="batch-1")
    found = api.get("/Invoices", params={"InvoiceNumbers": "INV-1"}).json()["Invoices"]
    retried = push(api, invoice(), key="batch-1")

    assert [i["InvoiceNumber"] for i in found] == ["INV-1"]
    assert retried.json()["Invoices"][0]["InvoiceID"] == found[0]["InvoiceID"]
    assert xero.count_created(TENANT, "INV-1") == 1
    assert [r["dropped"] for r in xero.requests if r["idempotency_key"]] == [True, False]


def test_a_dropped_refresh_answer_leaves_the_old_refresh_token_usable_in_the_grace():
    with XeroDouble() as double:
        double.add_organisation(
            TENANT, client_id="app", client_secret="s", grant="refresh_token", refresh_token="r1"
        )
        double.drop_after_commit(1, path_contains="/connect/token")
        with pytest.raises(httpx.TransportError):
            refresh(double, "r1")
        retried = refresh(double, "r1")

    assert retried.status_code == 200 and retried.json()["refresh_token"] != "r1"


def test_slow_holds_a_request_before_the_work_so_a_client_that_gives_up_finds_nothing_yet(xero, api):
    xero.slow(0.5, path_contains="/Invoices")

    with pytest.raises(httpx.ReadTimeout):
        push(api, invoice(), key="batch-1", timeout=0.1)
    looked = api.get("/Invoices", params={"InvoiceNumbers": "INV-1"}).json()["Invoices"]
    wait_until(lambda: xero.count_created(TENANT, "INV-1") == 1)

    assert looked == []


def test_slow_after_work_answers_late_with_the_work_done(xero, api):
    xero.slow(0.5, path_contains="/Invoices", after_work=True)

    with pytest.raises(httpx.ReadTimeout):
        push(api, invoice(), key="batch-1", timeout=0.1)
    wait_until(lambda: xero.requests[-1]["status"] == 200)

    assert xero.count_created(TENANT, "INV-1") == 1


def test_faults_are_consumed_in_order(xero, api):
    xero.fail_next(1, status=502)
    xero.fail_next(1, status=504)

    assert [api.get("/TaxRates").status_code for _ in range(3)] == [502, 504, 200]


# The rest


def test_unknown_paths_get_xeros_404(api):
    response = api.get("/Nonsense")

    assert (response.status_code, response.text) == (404, NOT_FOUND_TEXT)


def test_a_request_that_does_not_accept_json_is_not_answered_in_json(api):
    response = api.get("/TaxRates", headers={"Accept": "*/*"})

    assert response.status_code == 406


def test_the_request_log_never_holds_the_authorization_header(xero, api):
    pushed(api, invoice())

    log = json.dumps(xero.requests)
    assert api.headers["Authorization"].split()[1] not in log and CLIENT_SECRET not in log
    assert xero.requests[-1] | {"time": None} == {
        "time": None,
        "method": "PUT",
        "path": f"/api.xro/2.0{PUSH}",
        "tenant_id": TENANT,
        "idempotency_key": None,
        "in_flight": 0,
        "status": 200,
        "replayed": False,
        "dropped": False,
    }


def test_the_cli_serves_organisations_from_a_json_file(tmp_path):
    seed = {
        "organisations": [
            {
                "tenant_id": TENANT,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "tracking_categories": [{"name": "Partner", "options": {"Alice": "ACTIVE"}}],
                "contacts": [{"name": "Acme Ltd", "contact_id": CONTACT_ID}],
                "tax_rates": [{"tax_type": "OUTPUT2", "name": "GST", "rate": "15"}],
            }
        ]
    }
    orgs = tmp_path / "orgs.json"
    orgs.write_text(json.dumps(seed))
    command = [sys.executable, "-m", "tests.doubles.xero", "--port", "0", "--orgs", str(orgs), "--speed", "2"]
    server = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        urls = dict(server.stdout.readline().split() for _ in range(2))
        access = post(
            urls["token_url"], data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET)
        ).json()
        categories = get(
            f"{urls['api_url']}/TrackingCategories",
            headers={
                "Authorization": f"Bearer {access['access_token']}",
                "xero-tenant-id": TENANT,
                "Accept": "application/json",
            },
        ).json()["TrackingCategories"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)

    assert urls["api_url"].endswith("/api.xro/2.0") and urls["token_url"].endswith("/connect/token")
    assert access["expires_in"] == 900
    assert [c["Name"] for c in categories] == ["Partner"]
