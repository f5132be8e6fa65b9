"""The bundled sample source (data/sample): a deterministic generator of every input table of CONTRACT.md §2.

Practices: `northgate`, the small worked example behind the golden files; `harbour` and `keystone`, bulk Xero
practices that reuse each other's ids (never names) and carry the deliberate problems listed in
data/sample/README.md; `ledgerline` (QuickBooks) and `sagebrook` (Sage). Values are strings (None = empty).
Each practice draws from its own `random.Random(f"{seed}:{practice_id}")`: the files are byte-identical
from run to run. Run as `python -m flows.sources.sample data/sample`.
"""

from __future__ import annotations

import random
import sys
import uuid
from collections import namedtuple
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import polars as pl

COLUMNS: dict[str, list[str]] = {
    "practices": "practice_id name ledger".split(),
    "tracking_categories": "practice_id tracking_category_id name status".split(),
    "tracking_options": "practice_id tracking_option_id tracking_category_id name status".split(),
    "team_members": "practice_id team_member_id name tracking_option_id".split(),
    "service_templates": (
        "practice_id service_template_id name tracking_option_id account_code tax_type"
    ).split(),
    "clients": (
        "practice_id client_id name xero_contact_id owner_team_member_id tracking_option_id consolidate_lines"
    ).split(),
    "invoices": (
        "practice_id invoice_id client_id invoice_number issue_date due_date currency reference "
        "status updated_at"
    ).split(),
    "invoice_lines": (
        "practice_id invoice_id line_id position line_type service_template_id description "
        "quantity unit_amount account_code tax_type"
    ).split(),
}
# Each table's own id column and how its ids are numbered (TC01, O01, T01, S01, C0001, I0001, L00001).
ID_FORMATS = {
    "tracking_categories": ("tracking_category_id", "TC", 2),
    "tracking_options": ("tracking_option_id", "O", 2),
    "team_members": ("team_member_id", "T", 2),
    "service_templates": ("service_template_id", "S", 2),
    "clients": ("client_id", "C", 4),
    "invoices": ("invoice_id", "I", 4),
    "invoice_lines": ("line_id", "L", 5),
}
# Rows are written sorted by practice_id then the table's key: its leading columns.
SORT_KEYS = {table: columns[: 3 if table == "invoice_lines" else 2] for table, columns in COLUMNS.items()}

FIRST_NAMES = "Alice Ben Chloe Daniel Emma Faisal Grace Harry Isla Jack Kiran Laura Nina Priya".split()
LAST_NAMES = "Ahmed Brooks Carter Dawson Evans Gill Hughes Iqbal Khan Lewis O'Neill Patel Shaw".split()
PLACES = "Riverside Hillcrest Oakwood Kingsway Millbrook Westgate Ashford Bramley Castleton Elmstead".split()
TRADES = "Joinery Dental Bakery Logistics Plumbing Architects Florists Motors Software Catering Print".split()
COMPANY_SUFFIXES = ("Ltd", "Ltd", "Ltd", "Limited", "LLP", "& Sons", "Partners")
ADHOC_CHARGES = (  # description, unit amount, account code, tax type
    ("Companies House fee", "34.00", "260", "EXEMPTOUTPUT"),
    ("Software setup", "250.00", "210", "OUTPUT2"),
    ("Additional meeting", "120.00", "200", "OUTPUT2"),
    ("Additional hours", "65.0000", "200", "OUTPUT2"),
    ("Courier disbursement", "18.50", "220", "ZERORATEDOUTPUT"),
)
QUANTITIES = ("1", "1", "1", "1", "2", "0.5", "1.5", "2.5", "3", "7.25", "12")
ACCOUNT_CYCLE = ("200", "200", "210", "220")
TAX_CYCLE = ("OUTPUT2", "OUTPUT2", "OUTPUT2", "EXEMPTOUTPUT", "OUTPUT2", "ZERORATEDOUTPUT")
FIRST_ISSUE, LAST_ISSUE, PROBLEM_ISSUE = date(2024, 1, 1), date(2026, 10, 31), date(2026, 9, 30)
LONG_OPTION_NAME = (
    "Corporate Finance, Transaction Services, Due Diligence and Business Valuations for "
    "Owner-Managed Businesses in the UK and Ireland"
)  # 129 characters
LONG_DESCRIPTION = ("Schedule of work: reconciled bank, VAT, PAYE and director's loan accounts; " * 60)[:4050]


def line(
    line_type: str,
    description: str,
    quantity: str,
    unit_amount: str,
    template: str | None = None,
    account: str | None = None,
    tax: str | None = None,
) -> dict:
    """One invoice line; add "line_id" or "position" to the dict to force them."""
    return {
        "line_type": line_type,
        "service_template_id": template,
        "description": description,
        "quantity": quantity,
        "unit_amount": unit_amount,
        "account_code": account,
        "tax_type": tax,
    }


class Book:
    """The rows of one practice. Ids are numbered in order, so the deliberate problems follow the bulk."""

    def __init__(
        self,
        tables: dict[str, list[dict]],
        used_names: set[str],
        seed: int,
        practice_id: str,
        name: str,
        ledger: str,
        number_prefix: str,
    ) -> None:
        self.tables, self.used_names = tables, used_names
        self.practice_id, self.number_prefix = practice_id, number_prefix
        self.rng = random.Random(f"{seed}:{practice_id}")
        self.counters: dict[str, int] = {}
        self.templates: dict[str, dict] = {}  # first row of each template id, for the bulk lines
        self.tables["practices"].append({"practice_id": practice_id, "name": name, "ledger": ledger})

    def next_id(self, table: str) -> str:
        _, prefix, width = ID_FORMATS[table]
        self.counters[table] = self.counters.get(table, 0) + 1
        return f"{prefix}{self.counters[table]:0{width}d}"

    def add(self, table: str, row_id: str | None, **row: str | None) -> str:
        """Append a row under `row_id`, or under the table's next id; return the id."""
        row_id = row_id or self.next_id(table)
        self.tables[table].append({"practice_id": self.practice_id, ID_FORMATS[table][0]: row_id, **row})
        return row_id

    def unique_name(self, *pools: list[str] | tuple[str, ...]) -> str:
        """A name no practice uses yet, so harbour and keystone share ids but never names."""
        while (name := " ".join(self.rng.choice(pool) for pool in pools)) in self.used_names:
            pass
        self.used_names.add(name)
        return name

    def add_group(self, category: str, options: tuple[str, ...], status: str = "ACTIVE") -> list[str]:
        """A tracking category and its ACTIVE options; return the option ids."""
        category_id = self.add("tracking_categories", None, name=category, status=status)
        return [self.add_option(category_id, name) for name in options]

    def add_option(self, category_id: str, name: str, status: str = "ACTIVE") -> str:
        return self.add("tracking_options", None, tracking_category_id=category_id, name=name, status=status)

    def add_team_member(self, name: str, option: str | None) -> str:
        return self.add("team_members", None, name=name, tracking_option_id=option)

    def add_template(self, name: str, option: str | None, account: str | None, tax: str | None) -> str:
        row = {"name": name, "tracking_option_id": option, "account_code": account, "tax_type": tax}
        self.templates[template_id := self.add("service_templates", None, **row)] = row
        return template_id

    def add_client(
        self,
        option: str | None,
        owner: str | None = "T01",
        consolidate: str | None = "false",
        contact_id: str | None = None,
        name: str | None = None,
    ) -> str:
        """A client, named like a small business unless `name` is given."""
        return self.add(
            "clients",
            None,
            name=name or self.unique_name(PLACES, TRADES, COMPANY_SUFFIXES),
            xero_contact_id=contact_id,
            owner_team_member_id=owner,
            tracking_option_id=option,
            consolidate_lines=consolidate,
        )

    def add_invoice(
        self,
        client_id: str,
        issue: date,
        lines: list[dict],
        status: str = "approved",
        currency: str = "GBP",
        reference: str | None = None,
        raw_date: str | None = None,
    ) -> str:
        """An invoice and its lines; `raw_date` replaces the written issue date (to make it invalid)."""
        updated = datetime.combine(issue, time()) + timedelta(minutes=self.rng.randint(9 * 60, 3 * 24 * 60))
        invoice_id = self.add(
            "invoices",
            None,
            client_id=client_id,
            invoice_number=f"{self.number_prefix}-{1001 + self.counters.get('invoices', 0)}",
            issue_date=raw_date or issue.isoformat(),
            due_date=(issue + timedelta(days=30)).isoformat(),
            currency=currency,
            reference=reference,
            status=status,
            updated_at=updated.strftime("%Y-%m-%dT%H:%M:00Z"),
        )
        self.add_lines(invoice_id, lines)
        return invoice_id

    def add_lines(self, invoice_id: str, lines: list[dict]) -> None:
        """Positions 1, 2, ... in list order and fresh line ids, unless a line gives its own."""
        for position, row in enumerate(lines, start=1):
            row = {"position": str(position), **row}
            self.add("invoice_lines", row.pop("line_id", None), invoice_id=invoice_id, **row)


def build_northgate(book: Book) -> None:
    """The worked example: every approved invoice is ready (README.md says what each line shows)."""
    partner_a, partner_b = book.add_group("Partner", ("Partner A", "Partner B"))
    central, tax_team, accounts_team = book.add_group(
        "Department", ("Central Bookkeeping Team", "Tax Team", "Accounts Team")
    )
    alex = book.add_team_member("Alex Owner", accounts_team)
    sam = book.add_team_member("Sam Clerk", tax_team)
    books = book.add_template("Monthly Bookkeeping", central, "200", "OUTPUT2")
    accounts = book.add_template("Annual Accounts", None, "210", "OUTPUT2")
    tax = book.add_template("Tax Return", None, "200", "OUTPUT2")
    acme = book.add_client(
        partner_a, alex, "false", "6f1d2c3b-8a4e-4f0a-9c2d-1b7e5a3c9d40", name="Acme Widgets Ltd"
    )
    cafe = book.add_client(partner_b, sam, "true", name="Brightside Cafe Ltd")

    def monthly(month: str, unit: str = "450.0000") -> dict:
        return line("service", f"Monthly Bookkeeping - {month} 2026", "1", unit, books)

    fee = line("adhoc", "Companies House confirmation statement", "1", "34.00", None, "260", "EXEMPTOUTPUT")
    hours = line("adhoc", "Additional bookkeeping hours", "2.5", "60.0000", None, "200", "OUTPUT2")
    alignment = line(
        "alignment_fee", "Alignment fee: Monthly Bookkeeping, 12-31 March 2026", "1", "290.3226", books
    )  # names a template with an option, yet slot 2 is the owner's
    book.add_invoice(acme, date(2026, 3, 31), [monthly("March"), alignment, fee], reference="March 2026")
    book.add_invoice(
        acme,
        date(2026, 4, 30),
        [
            monthly("April"),
            line("service", "Annual Accounts - year ended 31 December 2025", "1", "1250.00", accounts),
            line("service", "Tax Return 2024/25 - director", "2", "325.5", tax),
            hours,
        ],
        reference="April 2026",
    )
    book.add_invoice(
        acme,
        date(2026, 5, 31),
        [monthly("May"), line("service", "Tax Return amendment (hours)", "1.5", "95.3333", tax)],
        reference="May 2026",
    )
    book.add_invoice(acme, date(2026, 6, 30), [monthly("June"), hours], "draft", reference="June 2026")
    book.add_invoice(acme, date(2026, 3, 15), [monthly("March"), fee], "void", reference="Raised in error")
    book.add_invoice(
        cafe,
        date(2026, 3, 31),
        [
            monthly("March", "300.0000"),
            line("adhoc", "Payroll run (4 employees)", "4", "12.50", None, "200", "OUTPUT2"),
        ],
    )
    # Listed out of position order: position 1 (bookkeeping, account 200) gets the later line_id, and its
    # account code is the one the consolidated Xero line takes.
    book.add_invoice(
        cafe,
        date(2026, 4, 30),
        [
            line("service", "Annual Accounts - year ended 31 January 2026", "1", "850.00", accounts)
            | {"position": "2"},
            monthly("April", "300.0000") | {"position": "1"},
        ],
    )


# A practice generated in bulk: its first category goes on clients, the second on owners and services.
BulkShape = namedtuple(
    "BulkShape",
    "practice_id name ledger number_prefix categories templates team_members clients invoices add_problems",
    defaults=(None,),
)


def option_or_none(options: list[str], index: int, none_every: int) -> str | None:
    """Options in turn, every `none_every`-th left empty: deterministic, so the problems can name ids."""
    return options[index % len(options)] if options and index % none_every != none_every - 1 else None


def unit_amount(rng: random.Random, base: Decimal, quantity: str) -> str:
    """A unit amount near `base`, 2 or 4 places, whose line amount is never an exact half cent."""
    unit = (base * Decimal(rng.choice(("1", "1", "0.9", "1.1", "1.0375")))).quantize(Decimal("0.0001"))
    while (Decimal(quantity) * unit * 100) % 1 == Decimal("0.5"):
        unit += Decimal("0.0001")
    return f"{unit:.2f}" if unit == unit.quantize(Decimal("0.01")) and rng.random() < 0.5 else f"{unit:.4f}"


def bulk_lines(book: Book, prices: dict[str, Decimal], main: str, issue: date, consolidate: bool) -> list:
    """3 to 5 lines: the client's main service first, then services, alignment fees and ad hoc charges."""
    rng, period = book.rng, f"{issue:%b %Y}"

    def service(
        template_id: str,
        quantity: str,
        base: Decimal,
        line_type: str = "service",
        description: str | None = None,
    ) -> dict:
        template = book.templates[template_id]
        amount = unit_amount(rng, base, quantity)
        return line(
            line_type,
            f"{template['name']} {description or period}",
            quantity,
            amount,
            template_id,
            None if template["account_code"] else "200",
            None if template["tax_type"] else "OUTPUT2",
        )

    lines = [service(main, "1", prices[main])]
    for _ in range(rng.choice((2, 2, 3, 3, 4))):
        kind = rng.random()
        if kind < 0.5:
            template_id = rng.choice(list(prices))
            lines.append(service(template_id, rng.choice(QUANTITIES), prices[template_id]))
        elif kind < 0.75:
            days = rng.randint(3, 27)
            base = prices[main] * days / 30
            lines.append(service(main, "1", base, "alignment_fee", f"alignment ({days} days)"))
        else:
            description, price, account, tax = rng.choice(ADHOC_CHARGES)
            quantity = rng.choice(QUANTITIES)
            amount = unit_amount(rng, Decimal(price), quantity)
            lines.append(line("adhoc", description, quantity, amount, None, account, tax))
    if consolidate:  # one tax type on every line, so the invoice can become one Xero line
        for row in lines:
            row["tax_type"] = "OUTPUT2"
    return lines


def build_bulk_practice(book: Book, shape: BulkShape) -> None:
    """Categories, team, templates, clients and invoices in a realistic mix, all of it free of errors."""
    rng = book.rng
    client_options, service_options = [book.add_group(*group) for group in shape.categories] or [[], []]
    owners = [
        book.add_team_member(book.unique_name(FIRST_NAMES, LAST_NAMES), option_or_none(service_options, i, 4))
        for i in range(shape.team_members)
    ]
    last = len(shape.templates) - 1  # the last template has no account code or tax type: its lines do
    prices = {
        book.add_template(
            name,
            option_or_none(service_options, i, 3),
            None if i == last else ACCOUNT_CYCLE[i % 4],
            None if i == last else TAX_CYCLE[i % 6],
        ): Decimal(rng.randrange(60, 1500, 5))
        for i, name in enumerate(shape.templates)
    }
    clients = []
    for i in range(shape.clients):
        consolidate = i % 18 == 5
        client_id = book.add_client(
            rng.choice(client_options) if client_options and rng.random() < 0.85 else None,
            rng.choice(owners) if rng.random() < 0.9 else None,
            "true" if consolidate else rng.choice(("false", "false", None)),
            str(uuid.UUID(int=rng.getrandbits(128), version=4)) if rng.random() < 0.85 else None,
        )
        currency = rng.choices(("GBP", "AUD", "NZD"), weights=(90, 5, 5))[0]
        clients.append((client_id, currency, rng.choice(list(prices)), consolidate))
    span = (LAST_ISSUE - FIRST_ISSUE).days
    for issue in sorted(FIRST_ISSUE + timedelta(days=rng.randint(0, span)) for _ in range(shape.invoices)):
        client_id, currency, main, consolidate = rng.choice(clients)
        book.add_invoice(
            client_id,
            issue,
            bulk_lines(book, prices, main, issue, consolidate),
            status=rng.choices(("approved", "draft", "void"), weights=(85, 10, 5))[0],
            currency=currency,
            reference=f"Fees {issue:%B %Y}" if rng.random() < 0.6 else None,
        )


def problem_invoice(book: Book, client_id: str, *lines: dict) -> str:
    """An approved invoice: a clean line of template S01 first, then the lines under test."""
    clean = line("service", f"{book.templates['S01']['name']} Sep 2026", "1", "400.00", "S01")
    return book.add_invoice(client_id, PROBLEM_ISSUE, [clean, *lines])


def add_harbour_problems(h: Book) -> None:
    """One approved invoice per deliberate problem. Bulk ids relied on: TC02 Department, O01-O06 partners,
    O07-O12 departments, S01 (option O07), S03 (no option), S15 (no account, no tax type), T01 (O07)."""
    north, _ = h.add_group("Region", ("North", "South"), "ARCHIVED")  # TC03: O13, O14
    closed = h.add_option("TC02", "Payroll Bureau (closed)", "ARCHIVED")  # O15
    long_name = h.add_option("TC02", LONG_OPTION_NAME)  # O16
    h.add_option("TC02", "Old Audit", "DELETED")  # O17, unused
    legacy = h.add_template("Payroll Bureau Legacy", closed, "200", "OUTPUT2")  # S16
    corporate = h.add_template("Corporate Finance", long_name, "210", "OUTPUT2")  # S17
    forensic = h.add_template("Forensic Review", "O09", "200", "OUTPUT2")  # S18, twice
    h.add(
        "service_templates",
        forensic,
        name="Forensic Review (2025 rates)",
        tracking_option_id="O10",
        account_code="200",
        tax_type="OUTPUT2",
    )
    regional_lead = h.add_team_member(h.unique_name(FIRST_NAMES, LAST_NAMES), north)  # T13

    invoice, client = partial(problem_invoice, h), h.add_client
    host = client("O01", name="Smith, Jones & Partners LLP")
    meeting = line("adhoc", "Additional meeting", "1", "120.00", None, "200", "OUTPUT2")
    vat = line("service", "VAT Return Sep 2026", "1", "95.00", "S03")
    invoice(client("O08", owner=None), vat)  # SAME_CATEGORY: client O08, S01's O07
    invoice(
        client("O02", consolidate="true"),  # CONSOLIDATION_TAX_MISMATCH
        line("adhoc", "Courier disbursement", "1", "18.50", None, "220", "ZERORATEDOUTPUT"),
    )
    invoice(client("O21"))  # UNKNOWN_OPTION: O21 is keystone's
    invoice(host, line("service", "Payroll Bureau Sep 2026", "1", "80.00", legacy))  # ARCHIVED_OPTION
    invoice(client("O03", owner=regional_lead), meeting)  # ARCHIVED_OPTION: owner's option's group
    invoice("C9999")  # UNKNOWN_CLIENT
    invoice(host, line("service", "Consultancy", "1", "300.00", None, "200", "OUTPUT2"))  # UNKNOWN_SERVICE
    invoice(client("O04", owner="T99"), meeting)  # UNKNOWN_TEAM_MEMBER
    # MISSING_ACCOUNT_CODE (neither the line nor S15 has one), then three INVALID_VALUEs
    invoice(host, line("service", "R&D Tax Claim FY2025", "1", "1800.00", "S15", None, "OUTPUT2"))
    invoice(host, line("service", "Bookkeeping Q3 2026", "abc", "300.00", "S02"))  # quantity
    invoice(host, line("misc", "Sundry", "1", "25.00", None, "200", "OUTPUT2"))  # line_type
    invoice(host, line("service", "Corporate Finance Sep 2026", "1", "2500.00", corporate))  # option name
    invoice(host, line("service", "Forensic Review Sep 2026", "1", "900.00", forensic))  # DUPLICATE_KEY
    h.add_invoice(host, PROBLEM_ISSUE, [])  # EMPTY_INVOICE
    h.add_lines("I9999", [line("service", "Bookkeeping Sep 2026", "1", "400.00", "S01")])  # ORPHAN_LINE
    # Ready, not held: slot 2 repeats the client's group, but a consolidated invoice sends no slot 2.
    invoice(client("O08", owner=None, consolidate="true"), vat)


def add_keystone_problems(k: Book) -> None:
    """One approved invoice per deliberate problem. Bulk ids relied on: TC01 Director, TC02 Division,
    O01-O05 directors, S01 (option O06, OUTPUT2), S04 (EXEMPTOUTPUT), T01-T08."""
    retired = k.add_option("TC01", "Founding Director (retired)", "ARCHIVED")  # O12
    k.add(
        "tracking_options", "O21", tracking_category_id="TC02", name="Legacy Client Services", status="ACTIVE"
    )  # O21, unused here
    review = k.add_template("Director Review", "O02", "200", "OUTPUT2")  # S12, a Director

    invoice, client = partial(problem_invoice, k), k.add_client
    host = client("O01", consolidate=None, name="Café Lumière Ltd")
    fee = line("adhoc", "Companies House filing fee", "1", "34.00", None, "260", "EXEMPTOUTPUT")
    # SAME_CATEGORY: client O01 and S12's O02 are both Directors
    invoice(client("O01", owner=None), line("service", "Director Review Q3 2026", "1", "600.00", review))
    invoice(
        client("O03", consolidate="true"),  # CONSOLIDATION_TAX_MISMATCH: S01 and S04's
        line("service", "Statutory Accounts FY2025", "1", "950.00", "S04"),
    )
    invoice(client("O13"))  # UNKNOWN_OPTION: O13 is harbour's
    invoice(client(retired))  # ARCHIVED_OPTION: the client's own
    invoice("C0140")  # UNKNOWN_CLIENT: C0140 is harbour's
    # UNKNOWN_SERVICE: S15 is harbour's
    invoice(host, line("service", "R&D Tax Claim", "1", "1500.00", "S15", "200", "OUTPUT2"))
    invoice(client("O02", owner="T12"), fee)  # UNKNOWN_TEAM_MEMBER: T12 is harbour's
    invoice(host, line("adhoc", "Additional meeting", "1", "120.00", None, "200", None))  # MISSING_TAX_TYPE
    # three INVALID_VALUEs: issue_date, unit_amount, description
    k.add_invoice(host, date(2025, 2, 28), [fee], raw_date="2025-02-30")
    invoice(host, line("service", "Quarterly VAT Q3 2026", "1", "12.345678", "S02"))
    invoice(host, line("adhoc", LONG_DESCRIPTION, "1", "750.00", None, "200", "OUTPUT2"))
    twice = k.next_id("invoice_lines")
    invoice(host, fee | {"line_id": twice}, fee | {"line_id": twice})  # DUPLICATE_KEY: line_id
    # ORPHAN_LINE: invoice I1500 is harbour's
    k.add_lines("I1500", [line("service", "Monthly Books Sep 2026", "1", "400.00", "S01")])


PRACTICES = (
    BulkShape(
        "harbour",
        "Harbour & Co",
        "xero",
        "HC",
        (
            (
                "Partner",
                (
                    "Helen Marsh",
                    "Robert Kaye",
                    "Sofia Lindqvist",
                    "Tom Ashworth",
                    "Meera Rao",
                    "Gareth Pryce",
                ),
            ),
            ("Department", ("Audit", "Tax", "Payroll", "Advisory", "Bookkeeping", "Company Secretarial")),
        ),
        (
            "Bookkeeping - Monthly",
            "Bookkeeping - Quarterly",
            "VAT Return",
            "Payroll - Monthly",
            "Payroll - Weekly",
            "Year End Accounts",
            "Corporation Tax Return",
            "Self Assessment",
            "Management Accounts",
            "Company Secretarial",
            "Confirmation Statement",
            "Audit",
            "Advisory Retainer",
            "Cloud Software Subscription",
            "R&D Tax Claim",
        ),
        team_members=12,
        clients=150,
        invoices=1800,
        add_problems=add_harbour_problems,
    ),
    BulkShape(
        "keystone",
        "Keystone Partners",
        "xero",
        "KP",
        (
            ("Director", ("Anika Berg", "Declan Moore", "Fiona Leith", "Hamish Grant", "Ruth Okafor")),
            (
                "Division",
                (
                    "Business Services",
                    "Private Client",
                    "Corporate Tax",
                    "Outsourcing",
                    "Assurance",
                    "Digital",
                ),
            ),
        ),
        (
            "Monthly Books",
            "Quarterly VAT",
            "Payroll Service",
            "Statutory Accounts",
            "CT600 Filing",
            "Personal Tax Return",
            "Board Pack",
            "Cashflow Forecasting",
            "Xero Subscription",
            "Pension Auto-enrolment",
            "Company Formation",
        ),
        team_members=8,
        clients=60,
        invoices=700,
        add_problems=add_keystone_problems,
    ),
    BulkShape(
        "ledgerline",
        "Ledgerline Ltd",
        "quickbooks",
        "LL",
        (
            ("Class", ("Retail", "Hospitality", "Construction", "Nonprofit")),
            ("Location", ("London", "Manchester", "Leeds")),
        ),
        (
            "Bookkeeping",
            "Sales Tax Filing",
            "Payroll Run",
            "Year-End Close",
            "Tax Preparation",
            "CFO Services",
            "QuickBooks Subscription",
            "Consulting",
        ),
        team_members=5,
        clients=40,
        invoices=300,
    ),
    BulkShape(
        "sagebrook",
        "Sagebrook Bookkeeping",
        "sage",
        "SB",
        (),
        ("Sage Bookkeeping", "Sage Payroll"),
        team_members=1,
        clients=3,
        invoices=5,
    ),
)


def build_sample(seed: int = 7) -> dict[str, pl.DataFrame]:
    """Every input table of the sample source, all columns strings, sorted by practice_id then key."""
    tables: dict[str, list[dict]] = {table: [] for table in COLUMNS}
    used_names: set[str] = set()
    build_northgate(Book(tables, used_names, seed, "northgate", "Northgate Accountants", "xero", "NG"))
    for shape in PRACTICES:
        book = Book(tables, used_names, seed, *shape[:4])  # practice_id, name, ledger, number_prefix
        build_bulk_practice(book, shape)
        if shape.add_problems:
            shape.add_problems(book)
    return {
        table: pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS[table], pl.Utf8)).sort(
            SORT_KEYS[table], maintain_order=True
        )
        for table, rows in tables.items()
    }


def write_sample(folder: Path, seed: int = 7) -> None:
    """Write `<table>.csv` for every table into `folder` (UTF-8, header row, empty field = null)."""
    folder.mkdir(parents=True, exist_ok=True)
    for table, frame in build_sample(seed).items():
        frame.write_csv(folder / f"{table}.csv", line_terminator="\n")


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "data/sample")
    write_sample(target)
    print(f"wrote {len(COLUMNS)} tables to {target}")
