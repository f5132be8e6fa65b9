"""A small but realistic source for the report tests and the demo screenshot.

Two Xero practices over twelve months, one QuickBooks practice, two currencies, consolidated clients,
a credit line, option names full of HTML metacharacters, and a few deliberate holds (SAME_CATEGORY,
ARCHIVED_OPTION, UNKNOWN_SERVICE, MISSING_TAX_TYPE, EMPTY_INVOICE, DUPLICATE_KEY), an orphan line and
drafts. Deterministic: one seeded Random.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

from tests.source_builder import SourceBuilder

MONTHS = [date(2025, m, 1) for m in range(1, 13)]
# A name an HTML report must escape: tag-like, ampersand, both quotes.
TRICKY_PARTNER = 'Singh & O\'Brien <Audit> "SO"'


def _harbour(b: SourceBuilder) -> None:
    p = "harbour"
    b.practice(p, "Harbour & Co")
    b.category(p, "TC-P", "Partner")
    b.category(p, "TC-D", "Department")
    b.category(p, "TC-R", "Region", status="ARCHIVED")
    partners = {"O-HM": "Helen Marsh", "O-RK": "Robert Kaye", "O-SO": TRICKY_PARTNER}
    departments = {"O-BK": "Bookkeeping", "O-TX": "Tax", "O-PY": "Payroll", "O-AD": "Advisory"}
    for option_id, name in partners.items():
        b.option(p, option_id, "TC-P", name)
    for option_id, name in departments.items():
        b.option(p, option_id, "TC-D", name)
    b.option(p, "O-OLD", "TC-P", "Former Partner", status="ARCHIVED")
    b.option(p, "O-NORTH", "TC-R", "North")
    b.member(p, "T1", "Kiran Carter", option="O-BK")
    b.member(p, "T2", "Harry Dawson", option="O-TX")
    b.member(p, "T3", "Priya Patel", option="O-AD")
    b.member(p, "T4", "Jack Lewis", option=None)
    b.template(p, "S-BK", "Bookkeeping - Monthly", option="O-BK")
    b.template(p, "S-VAT", "VAT Return", option="O-TX")
    b.template(p, "S-PAY", "Payroll Bureau", option="O-PY")
    b.template(p, "S-ACC", "Annual Accounts", option=None)  # falls back to the owner (R2)
    b.template(p, "S-CT", "Corporation Tax Return", option=None)
    b.template(p, "S-NOTAX", "Ad-hoc Advice", option="O-AD", tax_type=None)


def _keystone(b: SourceBuilder) -> None:
    p = "keystone"
    b.practice(p, "Keystone Partners")
    b.category(p, "KC-O", "Office")
    b.category(p, "KC-S", "Service Line")
    for option_id, name in {"K-LDN": "London", "K-MAN": "Manchester", "K-EDI": "Edinburgh"}.items():
        b.option(p, option_id, "KC-O", name)
    for option_id, name in {"K-CMP": "Compliance", "K-ADV": "Advisory & Deals"}.items():
        b.option(p, option_id, "KC-S", name)
    b.member(p, "T1", "Nina Shaw", option="K-CMP")
    b.member(p, "T2", "Ben Gill", option="K-ADV")
    b.template(p, "S-BK", "Compliance Pack", option="K-CMP")
    b.template(p, "S-DD", "Due Diligence", option=None)


def _ledgerline(b: SourceBuilder) -> None:
    p = "ledgerline"
    b.practice(p, "Ledgerline", ledger="quickbooks")
    b.category(p, "TC-P", "Partner")
    b.option(p, "O-HM", "TC-P", "Helen Marsh")
    b.template(p, "S-BK", "Bookkeeping", option=None)
    b.client(p, "C1", "Quick Books Client", option="O-HM")
    for n, month in enumerate(MONTHS[:3], start=1):
        b.invoice(p, f"Q{n}", client_id="C1", issue_date=str(month + timedelta(days=4)))
        b.line(p, f"Q{n}", f"Q{n}-1", template="S-BK", unit_amount="99.00")


def _clients(b: SourceBuilder, rng: random.Random) -> dict[str, list[str]]:
    harbour = []
    for n in range(1, 31):
        client = f"C{n:02d}"
        option = [None, "O-HM", "O-HM", "O-RK", "O-RK", "O-SO"][n % 6]
        owner = [None, "T1", "T2", "T3", "T4"][n % 5]
        b.client("harbour", client, f"Client {n} Ltd", option=option, owner=owner, consolidate=n % 10 == 3)
        harbour.append(client)
    b.client("harbour", "C-EUR", "Euro Exports BV", option="O-RK", owner="T2")
    b.client("harbour", "C-SAME", "Same Category Ltd", option="O-TX", owner="T1")  # Department in both slots
    b.client("harbour", "C-OLD", "Archived Partner Ltd", option="O-OLD", owner="T1")
    keystone = []
    for n in range(1, 13):
        client = f"K{n:02d}"
        option = ["K-LDN", "K-LDN", "K-MAN", "K-EDI"][n % 4]
        b.client("keystone", client, f"Keystone Client {n}", option=option, owner=["T1", "T2"][n % 2])
        keystone.append(client)
    return {"harbour": harbour, "keystone": keystone}


def _invoices(b: SourceBuilder, rng: random.Random, clients: dict[str, list[str]]) -> None:
    templates = {
        "harbour": [
            ("S-BK", "450.00"),
            ("S-VAT", "180.00"),
            ("S-PAY", "95.50"),
            ("S-ACC", "1200.00"),
            ("S-CT", "650.00"),
        ],
        "keystone": [("S-BK", "800.00"), ("S-DD", "2500.00")],
    }
    per_month = {"harbour": 12, "keystone": 6}
    for practice, count in per_month.items():
        n = 0
        for month_no, month in enumerate(MONTHS):
            for _ in range(count + month_no % 3):
                n += 1
                invoice = f"{practice[0].upper()}{n:04d}"
                client = rng.choice(clients[practice])
                issued = month + timedelta(days=rng.randrange(0, 27))
                status = "draft" if n % 23 == 0 else "void" if n % 31 == 0 else "approved"
                b.invoice(
                    practice,
                    invoice,
                    client_id=client,
                    issue_date=str(issued),
                    status=status,
                    updated_at=f"{issued}T10:00:00Z",
                    due_date=str(issued + timedelta(days=30)),
                )
                for line_no in range(1, rng.randrange(2, 5)):
                    template, price = rng.choice(templates[practice])
                    kind = rng.choices(["service", "alignment_fee", "adhoc"], [8, 1, 1])[0]
                    line = f"{invoice}-{line_no}"
                    if kind == "adhoc":
                        b.line(
                            practice,
                            invoice,
                            line,
                            line_type="adhoc",
                            template=None,
                            unit_amount="65.0000",
                            quantity=rng.choice(["1", "1.5", "2.25"]),
                            account_code="200",
                            tax_type="OUTPUT2",
                        )
                    else:
                        b.line(
                            practice,
                            invoice,
                            line,
                            line_type=kind,
                            template=template,
                            unit_amount=price,
                            quantity=rng.choice(["1", "1", "2", "0.5"]),
                        )
                if n % 17 == 0:  # a goodwill credit on the invoice
                    b.line(
                        practice,
                        invoice,
                        f"{invoice}-cr",
                        line_type="adhoc",
                        template=None,
                        unit_amount="-50.00",
                        account_code="200",
                        tax_type="OUTPUT2",
                    )
    # Euro client of harbour: a few invoices in EUR.
    for n, month in enumerate(MONTHS[::3], start=1):
        invoice = f"HE{n:02d}"
        b.invoice(
            "harbour", invoice, client_id="C-EUR", issue_date=str(month + timedelta(days=9)), currency="EUR"
        )
        b.line("harbour", invoice, f"{invoice}-1", template="S-ACC", unit_amount="1500.00")
        b.line("harbour", invoice, f"{invoice}-2", template="S-VAT", unit_amount="210.00")


def _problems(b: SourceBuilder) -> None:
    p = "harbour"
    b.invoice(p, "X-SAME", client_id="C-SAME", issue_date="2025-06-12")
    b.line(p, "X-SAME", "X-SAME-1", template="S-VAT", unit_amount="300.00")
    b.invoice(p, "X-OLD", client_id="C-OLD", issue_date="2025-09-03")
    b.line(p, "X-OLD", "X-OLD-1", template="S-BK", unit_amount="450.00")
    b.line(p, "X-OLD", "X-OLD-2", template="S-ACC", unit_amount="1200.00")
    b.invoice(p, "X-SVC", client_id="C01", issue_date="2025-11-20")
    b.line(p, "X-SVC", "X-SVC-1", template="S-GONE", unit_amount="210.00")
    b.invoice(p, "X-TAX", client_id="C02", issue_date="2025-12-01")
    b.line(p, "X-TAX", "X-TAX-1", template="S-NOTAX", unit_amount="375.25")
    b.invoice(p, "X-TAX2", client_id="C04", issue_date="2025-12-05")
    b.line(p, "X-TAX2", "X-TAX2-1", template="S-NOTAX", unit_amount="99.99")
    b.invoice(p, "X-EMPTY", client_id="C05", issue_date="2025-10-10")  # approved, no lines
    b.line(p, "X-GONE", "X-GONE-1", template="S-BK", unit_amount="45.00")  # its invoice does not exist
    b.template(p, "S-DUP", "Duplicated Template", option="O-BK")
    b.template(p, "S-DUP", "Duplicated Template (copy)", option="O-TX")
    b.invoice(p, "X-DUP", client_id="C06", issue_date="2025-08-08")
    b.line(p, "X-DUP", "X-DUP-1", template="S-DUP", unit_amount="640.00")
    b.line(p, "X-DUP", "X-DUP-2", template="S-BK", unit_amount="450.00")


def realistic_source(seed: int = 4) -> SourceBuilder:
    rng = random.Random(seed)
    b = SourceBuilder(bare=True)
    _harbour(b)
    _keystone(b)
    _ledgerline(b)
    clients = _clients(b, rng)
    _invoices(b, rng, clients)
    _problems(b)
    return b
