"""A double of Xero's Accounting API and identity server that behaves as Xero does, not as we wish.

It is a real HTTP/1.1 server on 127.0.0.1 (keep-alive included), started by the tests, holding every
organisation, token and invoice in memory. Tests seed it through the Python API of `XeroDouble`, talk to it over
HTTP like trackline will talk to Xero, then inspect what Xero would now hold.

Where each behaviour comes from is said in brackets: [docs] Xero's developer documentation or FAQ, [yaml] Xero's
OpenAPI description in ../shared/xero/xero_accounting.yaml, [issue] a Xero SDK or client issue quoting Xero's
answer, [kb] a vendor's knowledge-base article quoting Xero's message, [assumed] what Xero most plausibly does
where nothing public says.

Identity (`POST /connect/token`)
- A client authenticates with HTTP Basic `client_id:client_secret` or with form fields. A custom connection asks
  `grant_type=client_credentials`; a standard app asks `grant_type=refresh_token&refresh_token=...`. Answers are
  `{"access_token", "expires_in", "token_type": "Bearer", "scope"}`, plus `"refresh_token"` for the second grant.
  Access tokens live 30 minutes [docs]. Every refresh returns a new refresh token; the one handed in keeps
  working for a 30-minute grace period in case the answer was lost, then answers `invalid_grant` [docs: Xero's
  official community reply on refresh tokens] (`Limits.refresh_grace_seconds`, 0 for strict tests). A retry
  within the grace period gets a new access token and the same successor refresh token [assumed]. Unused refresh
  tokens expire after 60 days [docs]. Errors are `{"error": "invalid_client" | "invalid_grant" |
  "unauthorized_client" | "unsupported_grant_type"}` with status 400, as Xero's IdentityServer answers every token
  error [docs: OAuth troubleshooting; issue: XeroAPI/xoauth#9 shows a 400]; a grant the app is not set up for is
  `unauthorized_client` [issue].
- `expires_in` is written in real seconds (see Time).

Every API call
- needs `Authorization: Bearer <token>`. No or unknown token: 401 `{"Type": null, "Title": "Unauthorized",
  "Status": 401, "Detail": "AuthenticationUnsuccessful", "Instance": ..., "Extensions": {}}`; expired token: the
  same with `"Detail": "TokenExpired: token expired at MM/DD/YYYY HH:MM:SS"` [issue: pyxero#337, xeroizer#509].
- needs `xero-tenant-id` naming an organisation the token's app is connected to, else 403 with
  `"Detail": "AuthenticationUnsuccessful"` [docs: OAuth troubleshooting; issue]. Tokens of an app reach every
  organisation that app is connected to [assumed: real tokens are per user and app].
- is answered in JSON only when the request accepts `application/json`: Xero answers XML otherwise [assumed from
  Xero's "requests and responses" page, which the stored copies searched do not hold]. The double speaks no XML,
  so it answers 406 Not Acceptable with a one-line reason, which catches a client that forgot the header as
  surely as Xero's XML would [assumed].
- unknown paths or methods: 404 with the text `The resource you're looking for cannot be found` [issue: pyxero's
  test "verified response from the live API"; xero-python].

Rate limits, per organisation and app [docs: API limits, FAQ]
- 5 calls in flight, 60 a minute, 5,000 a day, and 10,000 a minute for the app across organisations
  (`Limits`). Windows are fixed and start at an organisation's first call, so they reset at different times per
  organisation [docs]. Every answer to an authenticated call carries `X-DayLimit-Remaining`,
  `X-MinLimit-Remaining` and `X-AppMinLimit-Remaining` [docs].
- Over a limit: 429 with `X-Rate-Limit-Problem` naming it, `day`, `minute` [issue: XeroAPI/xero-python#74,
  tap-xero], `appminute` or `concurrent` [assumed: Xero lists no values, xero-node#634], and a body
  `oauth_problem=rate%20limit%20exceeded&oauth_problem_advice=please%20wait%20before%20retrying%20the%20xero%20api`
  [issue: pyxero#323 shows that advice parsed from a 429]. `Retry-After` comes only with the minute and day limits,
  as the docs say; a concurrent or app-minute 429 has none [docs]. A refused call is not counted [assumed].
- `peak_in_flight` counts what the client attempted, the refused call included.

Idempotency [docs: idempotent requests, as quoted by two independent integration notes]
- `Idempotency-Key` on POST and PUT (ignored on GET), at most 128 characters [yaml], else 400. Keys are per app,
  and here per organisation too [assumed]. A repeated key within 6 minutes of the first call returns the stored answer, without doing the
  work again; it still counts against the rate limits. The same key with a different method, path or body is
  refused: 400 `Idempotency Key <key> is used with a different request.` Errors Xero produces are remembered
  too: a 400 or a 500 comes back again for 6 minutes. A 429, 401 or 403 happens before the key is looked at,
  and the gateway faults 502/503/504 of `fail_next` happen in front of the API, so none of those is
  remembered [assumed]. A second call with a key whose first call is still running waits for it [assumed].

Invoices
- `PUT /Invoices` creates; `POST /Invoices` creates or updates: an invoice with an `InvoiceID`, or an ACCREC with
  the `InvoiceNumber` of an existing invoice, updates that invoice [docs; issue: xeroizer#121 "If I POST a new
  invoice with that same invoice number it will update the existing invoice"]. An `InvoiceID` in a PUT body is
  ignored [assumed]; an unknown one in a POST is `The Invoice with the specified InvoiceID could not be found`
  [assumed]. `POST /Invoices/{InvoiceID}` updates the invoice named in the path with the first invoice of the body.
- A body must be JSON sent as `application/json`, at most 3.5 MB, with at most 50 invoices, and valid against
  the schema (`schema_path`, Draft 2020-12 with format checking, so a `ContactID` that is not a GUID fails).
  Otherwise it is refused whole with 400: not JSON or not valid as `{"ErrorNumber": 14, "Type":
  "PostDataInvalidException", "Message": "JSON request body could not be read, ..."}` [issue:
  xero-php-oauth2#205]; too many or too big as a `ValidationException` [assumed: Xero documents 3.5 MB and
  recommends 50; the double holds trackline to both].
- `summarizeErrors=true` (Xero's default): any invoice in error refuses the whole request with 400
  `{"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred", "Elements":
  [the invoices in error]}` and nothing is saved [issue: Xero-Java#171; all-or-nothing assumed].
  `summarizeErrors=false`: 200, every invoice echoed in order with `StatusAttributeString` `OK` (saved, with
  `InvoiceID` and each line's `LineItemID`) or `ERROR` (with `HasErrors` and `ValidationErrors[{"Message"}]`)
  [docs; yaml].
- Per-invoice refusals and their messages: a second ACCREC `InvoiceNumber` the organisation has, voided or
  deleted ones included, compared without case: `Invoice # must be unique.` [yaml example; issue: Xero-Net#266];
  `SUBMITTED` or `AUTHORISED` without `DueDate`: `The document DueDate field must be specified.` [issue:
  xeroizer#290]; an unknown `ContactID`: `The Contact with the specified ContactID could not be found` [code of a
  Xero client matching on it]; a `Contact` with neither: `Contact cannot be empty.` [gist of a Xero answer]; a
  `Type` other than ACCREC/ACCPAY: `Invoice not of valid type for creation` [docs, as quoted]; a `Status` other
  than DRAFT/SUBMITTED/AUTHORISED on create: `Invoice not of valid status for creation` [assumed by analogy];
  dated on or before the lock date: `The document date cannot be before the period lock date, currently set at
  30-Nov-2018.` [kb]. When the organisation has accounts (`add_account`): an unknown `AccountCode`: `Account
  code '999' is not a valid code for this document.` [kb]; an unknown `TaxType`: `The TaxType code XYZ does not
  exist or cannot be used for this type of transaction.` [kb]; none on an approved line with an amount:
  `Account code or ID must be specified.` [kb]. Without accounts any code is accepted.
- A `Contact.Name` that is not a contact (compared without case) creates the contact [docs].
- Amounts: `UnitAmount` is rounded to 2 places unless `unitdp=4`, then to 4; `Quantity` to 4 [docs: rounding in
  Xero]. Half-way rounds away from zero [assumed]. With `Quantity`, `UnitAmount` and `LineAmount` all given,
  `LineAmount` must equal `Quantity x UnitAmount` (less any `DiscountRate` or `DiscountAmount`) rounded to 2
  places, else `The line total 1.00 does not match the expected line total 1.04` [issue: Xero-NetStandard#147,
  #412; which number comes first is assumed]; a missing one of the three is calculated [yaml]. So a client that forgets `unitdp=4` is refused on
  any line whose unit price has more than 2 places. Tax is per line, rounded to 2 places [docs: rounding].
- Tracking [yaml; shared/xero/README.md]: an entry whose category or option is unknown or not ACTIVE is dropped
  silently and the invoice accepted; of two options of one category the last is kept; an organisation has at most
  2 active categories and 4 in all [Xero community answer; integration notes], so a line keeps at most 2. Names match exactly, or by `TrackingCategoryID` /
  `TrackingOptionID` [assumed].
- Updates patch: fields left out keep their values; a line with a known `LineItemID` keeps its id and the values
  it does not restate, a line without one is new, a stored line left out is deleted [docs, as quoted;
  patching of lines assumed]. Status changes follow Xero's table (DRAFT/SUBMITTED to each other, AUTHORISED or
  DELETED; AUTHORISED to VOIDED) else `Invoice not of valid status for modification` [docs; issue].
- Edits Xero refuses: VOIDED or DELETED: `Invoice not of valid status for modification`; dated on or before the
  lock date: `The document cannot be edited as it is currently dated before the period lock date.` [kb]; with a
  payment or credit note allocated (part-paid, credited, PAID): `This document cannot be edited as it has a
  payment or credit note allocated to it.`, preceded for PAID by `Invoice not of valid status for modification`
  [kb; issue], unless the edit changes only `SentToContact` or `DueDate` [docs: "not every change bumps
  UpdatedDateUTC (DueDate/SentToContact on partly-paid docs)"; the exact set is assumed].
- `GET /Invoices` filters by `IDs`, `InvoiceNumbers`, `Statuses`, `ContactIDs` (comma-separated) and
  `If-Modified-Since`, in order of `UpdatedDateUTC`; with `page` it answers 100 a page (`pageSize` up to 1,000)
  with a `pagination` object. Line items come only when paged or when `IDs` are given; otherwise `LineItems` is
  empty [docs; yaml example]. `where` is not implemented and answers 400 rather than being ignored.
  `GET /Invoices/{InvoiceID}` (or an invoice number) has its lines.
- Answers use Xero's envelope `{"Id", "Status": "OK", "ProviderName", "DateTimeUTC", ...}`, dates as
  `/Date(ms+0000)/` with `DateString`, and amounts written exactly (`40.00`, `2.0000`) [yaml].

Time
- The double has its own clock (`speed`, default 1.0; 60 makes a Xero minute last one real second; `advance`
  jumps it). Rate windows, token lifetimes, the refresh grace and the idempotency memory run on it. What the double
  tells a client about time is in real seconds, so a client that takes it literally waits the right real time:
  `Retry-After` is the Xero seconds left, rounded up to whole Xero seconds, divided by `speed`, written as an
  integer when whole and as a decimal such as `0.5` otherwise; `expires_in` is 1800 / speed, at least 1.

Faults on cue, consumed in the order given, each applying to the next requests it matches (`path_contains` a
substring of path and query, `tenant_id` the `xero-tenant-id` header): `fail_next` answers a status without doing
the work (500 as Xero's internal error `{"ErrorNumber": 500, "Type": "UnknownErrorException", ...}` [assumed],
remembered under an idempotency key; other statuses as a gateway in front of the API would, in plain text);
`drop_after_commit` does the work and remembers the answer, then closes the socket without a byte, so the client
sees a broken connection; `slow` holds the request, in flight, for some real seconds before doing the work (or,
with `after_work`, between the work and the answer); `reject_tokens_next` answers 401 TokenExpired to valid
tokens. A fault without `path_contains` waits for an API call: to fault the token endpoint, name it.

Command line: `python -m tests.doubles.xero --port 8765 --orgs orgs.json [--speed 1]` serves until interrupted
and prints its `api_url` and `token_url`. The JSON file is

    {"speed": 1,                                                   (optional; --speed wins)
     "organisations": [
       {"tenant_id": "...", "name": "Northgate", "base_currency": "NZD",
        "client_id": "...", "client_secret": "...", "grant": "client_credentials" | "refresh_token",
        "refresh_token": "...",                                    (for grant refresh_token)
        "tracking_categories": [{"name": "Partner", "status": "ACTIVE",
                                 "options": {"Alice": "ACTIVE", "Bob": "ARCHIVED"}}],   (or a list of names)
        "contacts": [{"name": "Acme Ltd", "contact_id": "..."}],  (contact_id optional)
        "tax_rates": [{"tax_type": "OUTPUT2", "name": "15% GST on Income", "rate": "15"}],
        "accounts": ["200", "260"],                                (optional: enables account checks)
        "lock_date": "2024-03-31"}]}                               (optional)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from email.message import Message
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jsonschema
import jsonschema_rs

API_PREFIX = "/api.xro/2.0"
TOKEN_PATH = "/connect/token"
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
RATE_LIMIT_TEXT = "oauth_problem=rate%20limit%20exceeded&oauth_problem_advice=please%20wait%20before%20retrying%20the%20xero%20api"
INTERNAL_ERROR_TEXT = (
    "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current service "
    "status. Contact the API support team at api@xero.com for more assistance."
)
GRANTED_SCOPE = "accounting.transactions accounting.settings accounting.contacts"
GRANTS = ("client_credentials", "refresh_token")

# Xero's messages, as Xero words them (see the module docstring for where each comes from).
NUMBER_NOT_UNIQUE = "Invoice # must be unique."
DUE_DATE_MISSING = "The document DueDate field must be specified."
CONTACT_NOT_FOUND = "The Contact with the specified ContactID could not be found"
CONTACT_EMPTY = "Contact cannot be empty."
INVOICE_NOT_FOUND = "The Invoice with the specified InvoiceID could not be found"
TYPE_NOT_VALID = "Invoice not of valid type for creation"
STATUS_NOT_VALID_FOR_CREATION = "Invoice not of valid status for creation"
STATUS_NOT_VALID_FOR_MODIFICATION = "Invoice not of valid status for modification"
ALLOCATED = "This document cannot be edited as it has a payment or credit note allocated to it."
LOCKED_EDIT = "The document cannot be edited as it is currently dated before the period lock date."
ACCOUNT_MISSING = "Account code or ID must be specified."

CREATABLE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
STATUSES_NEEDING_DUE_DATE = ("SUBMITTED", "AUTHORISED")
STATUS_CHANGES = {
    "DRAFT": {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"SUBMITTED", "AUTHORISED", "DRAFT", "DELETED"},
    "AUTHORISED": {"AUTHORISED", "VOIDED"},
    "PAID": {"PAID"},
    "VOIDED": {"VOIDED"},
    "DELETED": {"DELETED"},
}
EDITABLE_AFTER_ALLOCATION = frozenset({"sent_to_contact", "due_date"})

CENTS = Decimal("0.01")
FOUR_PLACES = Decimal("0.0001")
ZERO = Decimal(0)


def default_schema_path() -> Path:
    """The invoice body schema in the repository, else the shared copy next to the worktree."""
    here = Path(__file__).resolve()
    in_repository = here.parents[2] / "flows/xero/invoices.schema.json"
    if in_repository.exists():
        return in_repository
    return (here.parent / "../../../shared/xero/invoices.schema.json").resolve()


@dataclass(frozen=True)
class Limits:
    """Xero's limits, which a test may lower (times in Xero seconds, see `Clock`)."""

    concurrent: int = 5
    per_minute: int = 60
    per_day: int = 5000
    app_per_minute: int = 10_000
    invoices_per_request: int = 50
    body_bytes: int = 3_500_000
    idempotency_key_chars: int = 128
    idempotency_seconds: float = 6 * 60
    access_token_seconds: float = 30 * 60
    refresh_grace_seconds: float = 30 * 60
    refresh_token_seconds: float = 60 * 86400


class Clock:
    """The double's time: Xero seconds that pass `speed` times as fast as real ones, and can be advanced."""

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._wall = time.time()
        self._monotonic = time.monotonic()
        self._skipped = 0.0

    def now(self) -> float:
        return self._wall + (time.monotonic() - self._monotonic) * self.speed + self._skipped

    def advance(self, seconds: float) -> None:
        self._skipped += seconds

    def today(self) -> date:
        return datetime.fromtimestamp(self.now(), UTC).date()

    def real_seconds_text(self, xero_seconds: float) -> str:
        """Xero's whole seconds to wait, as real seconds: `37`, or `0.634` when the clock runs fast."""
        whole = max(1, math.ceil(xero_seconds - 1e-9))
        real = whole / self.speed
        if real == int(real):
            return str(int(real))
        return f"{math.ceil(real * 1000) / 1000:.3f}".rstrip("0").rstrip(".")


# --- How Xero writes things --------------------------------------------------------------------------------


def rounded(amount: Decimal, places: Decimal) -> Decimal:
    """Half-way away from zero, and never a negative zero."""
    return amount.quantize(places, rounding=ROUND_HALF_UP) + 0


def unit_places(unitdp: int) -> Decimal:
    return FOUR_PLACES if unitdp == 4 else CENTS


def ms_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def day_moment(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def utc_moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def lock_date_text(day: date) -> str:
    return day.strftime("%d-%b-%Y")


_EXACT = "\x00exact:"
_EXACT_WRITTEN = re.compile(r'"\\u0000exact:(-?[0-9]+(?:\.[0-9]+)?)"')


def _exact_number(value: object) -> str:
    if isinstance(value, Decimal):
        return _EXACT + format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON")


def render_json(document: object) -> bytes:
    """JSON with every Decimal written as the exact number it is (`40.00`, not `40.0`)."""
    text = json.dumps(document, default=_exact_number, ensure_ascii=False)
    return _EXACT_WRITTEN.sub(r"\1", text).encode()


def is_guid(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def new_guid() -> str:
    return str(uuid.uuid4())


# --- Answers --------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Reply:
        return replace(self, headers=dict(self.headers))


def json_reply(status: int, document: object) -> Reply:
    return Reply(status, render_json(document))


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), "text/plain; charset=utf-8")


def problem_reply(status: int, detail: str) -> Reply:
    """The problem shape Xero's gateway answers 400/401/403 in."""
    title = HTTPStatus(status).phrase
    return json_reply(
        status,
        {
            "Type": None,
            "Title": title,
            "Status": status,
            "Detail": detail,
            "Instance": new_guid(),
            "Extensions": {},
        },
    )


def validation_exception(elements: list[dict]) -> Reply:
    return json_reply(
        400,
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        },
    )


def request_refused(message: str) -> Reply:
    """A whole request refused for one reason, in the ValidationException shape."""
    return validation_exception([{"ValidationErrors": [{"Message": message}]}])


def post_data_invalid(message: str) -> Reply:
    return json_reply(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message})


def internal_error() -> Reply:
    return json_reply(
        500, {"ErrorNumber": 500, "Type": "UnknownErrorException", "Message": INTERNAL_ERROR_TEXT}
    )


def oauth_error(error: str) -> Reply:
    return json_reply(400, {"error": error})


def token_expired(at: float) -> Reply:
    return problem_reply(401, f"TokenExpired: token expired at {utc_moment(at):%m/%d/%Y %H:%M:%S}")


class BodyUnreadable(Exception):
    """A body Xero cannot read at all: the whole request is refused with PostDataInvalidException."""


# --- What an organisation holds --------------------------------------------------------------------------------


@dataclass
class TrackingOption:
    option_id: str
    name: str
    status: str = "ACTIVE"


@dataclass
class TrackingCategory:
    category_id: str
    name: str
    status: str
    options: list[TrackingOption]

    def option_for(self, entry: dict) -> TrackingOption | None:
        if "TrackingOptionID" in entry:
            return next((o for o in self.options if o.option_id == entry["TrackingOptionID"]), None)
        return next((o for o in self.options if o.name == entry.get("Option")), None)


@dataclass
class Contact:
    contact_id: str
    name: str


@dataclass
class TaxRate:
    tax_type: str
    name: str
    rate: Decimal


@dataclass(frozen=True)
class Tracked:
    category_id: str
    option_id: str
    name: str
    option: str


@dataclass
class Line:
    line_item_id: str
    description: str | None
    quantity: Decimal
    unit_amount: Decimal
    line_amount: Decimal
    tax_type: str | None
    tax_amount: Decimal
    tax_given: bool
    account_code: str | None
    item_code: str | None
    discount_rate: Decimal | None
    discount_amount: Decimal | None
    tracking: tuple[Tracked, ...]


@dataclass
class Allocation:
    """A payment or a credit note applied to an invoice."""

    allocation_id: str
    amount: Decimal
    on: date
    number: str | None = None


@dataclass
class Invoice:
    invoice_id: str
    type: str
    contact_id: str
    number: str | None
    reference: str | None
    issued: date
    due: date | None
    status: str
    line_amount_types: str
    currency_code: str
    lines: list[Line]
    sent_to_contact: bool = False
    payments: list[Allocation] = field(default_factory=list)
    credit_notes: list[Allocation] = field(default_factory=list)
    updated_at: float = 0.0
    sequence: int = 0

    @property
    def sub_total(self) -> Decimal:
        total = sum((line.line_amount for line in self.lines), ZERO)
        if self.line_amount_types == "Inclusive":
            return total - self.total_tax
        return total

    @property
    def total_tax(self) -> Decimal:
        return sum((line.tax_amount for line in self.lines), ZERO)

    @property
    def total(self) -> Decimal:
        return self.sub_total + self.total_tax

    @property
    def amount_paid(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)

    @property
    def amount_credited(self) -> Decimal:
        return sum((c.amount for c in self.credit_notes), ZERO)

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid - self.amount_credited

    def substance(self) -> dict:
        """What an edit can change, by field, to tell which fields an edit changed."""
        return {
            "type": self.type,
            "contact_id": self.contact_id,
            "number": self.number,
            "reference": self.reference,
            "issued": self.issued,
            "due": self.due,
            "status": self.status,
            "line_amount_types": self.line_amount_types,
            "currency_code": self.currency_code,
            "lines": [replace(line, tax_given=False) for line in self.lines],
            "sent_to_contact": self.sent_to_contact,
        }


@dataclass
class Window:
    """A fixed rate window that starts at the first call after the previous one ended."""

    seconds: float
    limit: int
    started: float | None = None
    count: int = 0

    def _roll(self, now: float) -> None:
        if self.started is None or now >= self.started + self.seconds:
            self.started, self.count = now, 0

    def full(self, now: float) -> bool:
        self._roll(now)
        return self.count >= self.limit

    def take(self, now: float) -> None:
        self._roll(now)
        self.count += 1

    def remaining(self, now: float) -> int:
        self._roll(now)
        return max(0, self.limit - self.count)

    def seconds_left(self, now: float) -> float:
        self._roll(now)
        return self.started + self.seconds - now


@dataclass
class Organisation:
    tenant_id: str
    name: str
    base_currency: str
    minute: Window
    day: Window
    categories: list[TrackingCategory] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    tax_rates: dict[str, TaxRate] = field(default_factory=dict)
    accounts: set[str] = field(default_factory=set)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    created_numbers: list[str | None] = field(default_factory=list)
    lock_date: date | None = None
    in_flight: int = 0
    peak_in_flight: int = 0

    def category_for(self, entry: dict) -> TrackingCategory | None:
        if "TrackingCategoryID" in entry:
            return next((c for c in self.categories if c.category_id == entry["TrackingCategoryID"]), None)
        return next((c for c in self.categories if c.name == entry.get("Name")), None)

    def category_named(self, name: str) -> TrackingCategory:
        category = next((c for c in self.categories if c.name == name), None)
        if category is None:
            raise KeyError(f"organisation {self.tenant_id} has no tracking category {name!r}")
        return category

    def contact_with_id(self, contact_id: str) -> Contact | None:
        return next((c for c in self.contacts if c.contact_id == contact_id), None)

    def contact_named(self, name: str) -> Contact | None:
        folded = name.strip().casefold()
        return next((c for c in self.contacts if c.name.strip().casefold() == folded), None)

    def invoice_numbered(self, number: str) -> Invoice | None:
        folded = number_key(number)
        return next(
            (
                i
                for i in self.invoices.values()
                if i.type == "ACCREC" and i.number and number_key(i.number) == folded
            ),
            None,
        )

    def invoice_called(self, number: str) -> Invoice:
        """The invoice a test names by its number (for the setup methods)."""
        invoice = next((i for i in self.invoices.values() if i.number == number), None)
        if invoice is None:
            raise KeyError(f"organisation {self.tenant_id} has no invoice {number!r}")
        return invoice

    def next_free_number(self) -> str:
        taken = {number_key(i.number) for i in self.invoices.values() if i.number}
        n = len(self.created_numbers) + 1
        while number_key(f"INV-{n:04d}") in taken:
            n += 1
        return f"INV-{n:04d}"


def number_key(number: str) -> str:
    return number.strip().casefold()


@dataclass
class App:
    client_id: str
    client_secret: str
    grant: str
    minute: Window
    tenants: set[str] = field(default_factory=set)


@dataclass
class AccessToken:
    value: str
    client_id: str
    expires_at: float


@dataclass
class RefreshToken:
    value: str
    client_id: str
    expires_at: float
    used_at: float | None = None
    successor: str | None = None


@dataclass
class Remembered:
    """The answer stored under an idempotency key."""

    fingerprint: str
    first_call: float
    reply: Reply | None = None


@dataclass
class Fault:
    kind: str  # "fail", "drop", "slow", or "none" for a call that meets no fault
    remaining: int
    status: int = 503
    seconds: float = 0.0
    after_work: bool = False
    path_contains: str | None = None
    tenant_id: str | None = None

    @property
    def gateway_reply(self) -> Reply | None:
        """What a gateway in front of the API answers instead of the API (every failure but a 500)."""
        if self.kind == "fail" and self.status != 500:
            return text_reply(self.status, HTTPStatus(self.status).phrase)
        return None

    @property
    def fails_inside(self) -> bool:
        """A 500 is Xero's own internal error: it happens where the work would, under the idempotency key."""
        return self.kind == "fail" and self.status == 500

    @property
    def drops(self) -> bool:
        return self.kind == "drop"

    @property
    def delay_before_work(self) -> float:
        return self.seconds if self.kind == "slow" and not self.after_work else 0.0

    @property
    def delay_after_work(self) -> float:
        return self.seconds if self.kind == "slow" and self.after_work else 0.0

    def matches(self, call: Call) -> bool:
        """A fault without `path_contains` waits for an API call; the token endpoint must be named."""
        if self.path_contains is None and call.path.lower() == TOKEN_PATH:
            return False
        if self.path_contains is not None and self.path_contains not in call.target:
            return False
        return self.tenant_id is None or self.tenant_id == call.header("xero-tenant-id")


@dataclass
class LoggedRequest:
    time: float
    method: str
    path: str
    tenant_id: str | None
    idempotency_key: str | None
    in_flight: int | None = None
    status: int | None = None
    replayed: bool = False
    dropped: bool = False


@dataclass
class Call:
    """One HTTP request as the double reads it."""

    method: str
    target: str
    headers: Message
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        """A query parameter, its name compared without case as Xero does."""
        for key, values in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items():
            if key.lower() == name.lower():
                return values[-1]
        return None

    def flag(self, name: str, default: bool) -> bool:
        value = self.param(name)
        return default if value is None else value.strip().lower() == "true"

    def unitdp(self) -> int:
        """4 places for unit amounts only when asked with `unitdp=4`, else Xero's 2."""
        return 4 if self.param("unitdp") == "4" else 2

    def accepts_json(self) -> bool:
        return "application/json" in (self.header("Accept") or "").lower()


@dataclass
class Answer:
    reply: Reply
    drop: bool = False
    delay: float = 0.0
    release: Callable[[], None] = lambda: None


# --- How Xero reads an invoice ---------------------------------------------------------------------------------


@dataclass
class Draft:
    """An invoice as it would be saved, or the reasons Xero refuses it."""

    payload: dict
    invoice: Invoice | None = None
    errors: list[str] = field(default_factory=list)
    new_contact_name: str | None = None
    creating: bool = True

    def refused(self) -> dict:
        echo = dict(self.payload)
        if self.invoice is not None and not self.creating:
            echo.setdefault("InvoiceID", self.invoice.invoice_id)
        echo.update(
            HasErrors=True,
            StatusAttributeString="ERROR",
            ValidationErrors=[{"Message": message} for message in self.errors],
        )
        return echo


def read_date(payload: dict, key: str, default: date | None) -> date | None:
    """`YYYY-MM-DD`, or with a time that Xero ignores; anything else makes the body unreadable."""
    if key not in payload or payload[key] in (None, ""):
        return default
    text = payload[key]
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[0-9:.]*)?", text):
        raise BodyUnreadable(
            f"JSON request body could not be read, Error: {key} '{text}' is not a valid date"
        )
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise BodyUnreadable(f"JSON request body could not be read, Error: {key} '{text}': {exc}") from exc


def amount(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def kept_tracking(org: Organisation, entries: Iterable[dict] | None) -> tuple[Tracked, ...]:
    """What Xero keeps of a line's tracking: ACTIVE categories and options only, the last option of a category,
    everything else dropped without a word."""
    kept: dict[str, Tracked] = {}
    for entry in entries or ():
        category = org.category_for(entry)
        if category is None or category.status != "ACTIVE":
            continue
        option = category.option_for(entry)
        if option is None or option.status != "ACTIVE":
            continue
        kept.pop(category.category_id, None)
        kept[category.category_id] = Tracked(
            category.category_id, option.option_id, category.name, option.name
        )
    return tuple(kept.values())[-2:]


def expected_line_amount(
    quantity: Decimal, unit: Decimal, discount_rate: Decimal | None, discount_amount: Decimal | None
) -> Decimal:
    gross = quantity * unit
    if discount_rate is not None:
        gross = gross * (100 - discount_rate) / 100
    if discount_amount is not None:
        gross -= discount_amount
    return rounded(gross, CENTS)


def line_amounts(payload: dict, before: Line | None, unitdp: int, errors: list[str]) -> tuple[Decimal, ...]:
    """Quantity, UnitAmount and LineAmount as Xero keeps them: rounded, a missing one calculated, and the three
    checked against each other when all are known. A line that restates none of them keeps its amounts."""
    quantity, unit, line_amount = (amount(payload.get(k)) for k in ("Quantity", "UnitAmount", "LineAmount"))
    if before is not None:
        if quantity is None and unit is None and line_amount is None:
            return before.quantity, before.unit_amount, before.line_amount
        quantity = before.quantity if quantity is None else quantity
        unit = before.unit_amount if unit is None else unit
    if quantity is None and unit is None and line_amount is None:
        return ZERO, ZERO, ZERO
    calculated = quantity is None or unit is None
    if quantity is None and unit is None:
        quantity, unit = Decimal(1), line_amount
    elif unit is None:
        unit = line_amount / quantity if line_amount is not None and quantity else ZERO
    elif quantity is None:
        quantity = line_amount / unit if line_amount is not None and unit else Decimal(1)
    quantity, unit = rounded(quantity, FOUR_PLACES), rounded(unit, unit_places(unitdp))
    expected = expected_line_amount(
        quantity,
        unit,
        amount(payload.get("DiscountRate", before.discount_rate if before else None)),
        amount(payload.get("DiscountAmount", before.discount_amount if before else None)),
    )
    if line_amount is None:
        return quantity, unit, expected
    line_amount = rounded(line_amount, CENTS)
    if not calculated and line_amount != expected:
        errors.append(f"The line total {line_amount} does not match the expected line total {expected}")
    return quantity, unit, line_amount


def line_tax(line: Line, line_amount_types: str, org: Organisation) -> Decimal:
    if line.tax_given:
        return line.tax_amount
    tax_rate = org.tax_rates.get(line.tax_type or "")
    if tax_rate is None or line_amount_types == "NoTax":
        return ZERO
    if line_amount_types == "Inclusive":
        return rounded(line.line_amount * tax_rate.rate / (100 + tax_rate.rate), CENTS)
    return rounded(line.line_amount * tax_rate.rate / 100, CENTS)


def code_refusals(org: Organisation, line: Line, status: str) -> list[str]:
    """Account and tax codes are checked only against an organisation whose chart of accounts is known."""
    if not org.accounts:
        return []
    refusals = []
    if line.account_code is None and status != "DRAFT" and line.line_amount:
        refusals.append(ACCOUNT_MISSING)
    elif line.account_code is not None and line.account_code not in org.accounts:
        refusals.append(f"Account code '{line.account_code}' is not a valid code for this document.")
    if line.tax_type is not None and org.tax_rates and line.tax_type not in org.tax_rates:
        refusals.append(
            f"The TaxType code {line.tax_type} does not exist or cannot be used for this type of transaction."
        )
    return refusals


def draft_line(org: Organisation, payload: dict, before: Line | None, unitdp: int, errors: list[str]) -> Line:
    def kept(key: str, attribute: str) -> object:
        if key in payload:
            return payload[key]
        return getattr(before, attribute) if before is not None else None

    quantity, unit, line_amount = line_amounts(payload, before, unitdp, errors)
    if "Tracking" in payload or before is None:
        tracking = kept_tracking(org, payload.get("Tracking"))
    else:
        tracking = before.tracking
    tax_given = payload.get("TaxAmount") is not None
    return Line(
        line_item_id=before.line_item_id if before is not None else new_guid(),
        description=kept("Description", "description"),
        quantity=quantity,
        unit_amount=unit,
        line_amount=line_amount,
        tax_type=kept("TaxType", "tax_type"),
        tax_amount=rounded(Decimal(str(payload["TaxAmount"])), CENTS) if tax_given else ZERO,
        tax_given=tax_given,
        account_code=kept("AccountCode", "account_code"),
        item_code=kept("ItemCode", "item_code"),
        discount_rate=amount(kept("DiscountRate", "discount_rate")),
        discount_amount=amount(kept("DiscountAmount", "discount_amount")),
        tracking=tracking,
    )


def draft_lines(
    org: Organisation, payloads: list[dict] | None, before: list[Line], unitdp: int, errors: list[str]
) -> list[Line]:
    """Lines matched by LineItemID keep their id and what they do not restate; unmatched stored lines go."""
    if payloads is None:
        return [replace(line) for line in before]
    stored = {line.line_item_id: line for line in before}
    return [draft_line(org, p, stored.get(p.get("LineItemID")), unitdp, errors) for p in payloads]


def chosen_contact(
    org: Organisation, payload: dict | None, before: Invoice | None, errors: list[str]
) -> tuple[str, str | None]:
    """The contact's id, or the name of a contact Xero will create."""
    if payload is None and before is not None:
        return before.contact_id, None
    payload = payload or {}
    if payload.get("ContactID"):
        contact = org.contact_with_id(payload["ContactID"])
        if contact is None:
            errors.append(CONTACT_NOT_FOUND)
            return "", None
        return contact.contact_id, None
    name = (payload.get("Name") or "").strip()
    if not name:
        if before is not None:
            return before.contact_id, None
        errors.append(CONTACT_EMPTY)
        return "", None
    contact = org.contact_named(name)
    return (contact.contact_id, None) if contact else ("", name)


def number_taken(org: Organisation, number: str, invoice_id: str | None, pending: set[str]) -> bool:
    holder = org.invoice_numbered(number)
    return number_key(number) in pending or (holder is not None and holder.invoice_id != invoice_id)


def edit_refusals(org: Organisation, before: Invoice, after: Invoice) -> list[str]:
    """Why Xero refuses to edit an invoice, in Xero's words; empty when it edits."""
    if before.status in ("VOIDED", "DELETED"):
        return [STATUS_NOT_VALID_FOR_MODIFICATION]
    if org.lock_date is not None and before.issued <= org.lock_date:
        return [LOCKED_EDIT]
    if before.payments or before.credit_notes:
        was, now = before.substance(), after.substance()
        if {k for k in was if was[k] != now[k]} - EDITABLE_AFTER_ALLOCATION:
            if before.status == "PAID":
                return [STATUS_NOT_VALID_FOR_MODIFICATION, ALLOCATED]
            return [ALLOCATED]
    return []


def draft_invoice(
    org: Organisation, payload: dict, before: Invoice | None, unitdp: int, pending: set[str], today: date
) -> Draft:
    """Read one invoice of a body the way Xero does, against what the organisation holds."""
    creating = before is None
    draft = Draft(payload, creating=creating)
    errors = draft.errors
    kind = payload.get("Type") or (before.type if before else None)
    if kind not in ("ACCREC", "ACCPAY"):
        errors.append(TYPE_NOT_VALID)
    contact_id, draft.new_contact_name = chosen_contact(org, payload.get("Contact"), before, errors)
    status = payload.get("Status") or (before.status if before else "DRAFT")
    if creating and status not in CREATABLE_STATUSES:
        errors.append(STATUS_NOT_VALID_FOR_CREATION)
    if not creating and status not in STATUS_CHANGES.get(before.status, set()):
        errors.append(STATUS_NOT_VALID_FOR_MODIFICATION)
    issued = read_date(payload, "Date", before.issued if before else today)
    due = read_date(payload, "DueDate", before.due if before else None)
    if status in STATUSES_NEEDING_DUE_DATE and due is None:
        errors.append(DUE_DATE_MISSING)
    number = payload.get("InvoiceNumber") or (before.number if before else None)
    invoice_id = before.invoice_id if before else new_guid()
    if kind == "ACCREC" and number and number_taken(org, number, invoice_id, pending):
        errors.append(NUMBER_NOT_UNIQUE)
    if org.lock_date is not None and issued <= org.lock_date and (creating or issued != before.issued):
        errors.append(
            f"The document date cannot be before the period lock date, currently set at "
            f"{lock_date_text(org.lock_date)}."
        )
    line_amount_types = payload.get("LineAmountTypes") or (
        before.line_amount_types if before else "Exclusive"
    )
    lines = draft_lines(org, payload.get("LineItems"), before.lines if before else [], unitdp, errors)
    for line in lines:
        line.tax_amount = line_tax(line, line_amount_types, org)
        errors.extend(code_refusals(org, line, status))
    draft.invoice = Invoice(
        invoice_id=invoice_id,
        type=kind or "ACCREC",
        contact_id=contact_id,
        number=number,
        reference=payload.get("Reference", before.reference if before else None),
        issued=issued,
        due=due,
        status=status,
        line_amount_types=line_amount_types,
        currency_code=payload.get("CurrencyCode") or (before.currency_code if before else org.base_currency),
        lines=lines,
        sent_to_contact=bool(payload.get("SentToContact", before.sent_to_contact if before else False)),
        payments=list(before.payments) if before else [],
        credit_notes=list(before.credit_notes) if before else [],
        sequence=before.sequence if before else 0,
    )
    if before is not None:
        refusals = edit_refusals(org, before, draft.invoice)
        if refusals:
            draft.errors[:] = refusals
    return draft


# --- How Xero writes an invoice --------------------------------------------------------------------------------


def allocation_document(allocation: Allocation, kind: str) -> dict:
    moment = day_moment(allocation.on)
    if kind == "payment":
        return {
            "PaymentID": allocation.allocation_id,
            "Date": ms_date(moment),
            "Amount": allocation.amount,
            "CurrencyRate": Decimal("1.000000"),
            "HasAccount": False,
            "HasValidationErrors": False,
        }
    return {
        "CreditNoteID": allocation.allocation_id,
        "CreditNoteNumber": allocation.number,
        "AppliedAmount": allocation.amount,
        "Total": allocation.amount,
        "DateString": f"{moment:%Y-%m-%dT%H:%M:%S}",
        "Date": ms_date(moment),
        "HasErrors": False,
    }


def line_document(line: Line, unitdp: int) -> dict:
    document = {
        "Description": line.description,
        "UnitAmount": rounded(line.unit_amount, unit_places(unitdp)),
        "TaxType": line.tax_type,
        "TaxAmount": line.tax_amount,
        "LineAmount": line.line_amount,
        "AccountCode": line.account_code,
        "Tracking": [
            {
                "Name": t.name,
                "Option": t.option,
                "TrackingCategoryID": t.category_id,
                "TrackingOptionID": t.option_id,
            }
            for t in line.tracking
        ],
        "Quantity": line.quantity,
        "LineItemID": line.line_item_id,
        "ValidationErrors": [],
    }
    if line.item_code is not None:
        document["ItemCode"] = line.item_code
    if line.discount_rate is not None:
        document["DiscountRate"] = line.discount_rate
    if line.discount_amount is not None:
        document["DiscountAmount"] = line.discount_amount
    return {key: value for key, value in document.items() if value is not None}


def invoice_document(org: Organisation, invoice: Invoice, unitdp: int, with_lines: bool) -> dict:
    contact = org.contact_with_id(invoice.contact_id)
    issued = day_moment(invoice.issued)
    document = {
        "Type": invoice.type,
        "InvoiceID": invoice.invoice_id,
        "InvoiceNumber": invoice.number or "",
        "Reference": invoice.reference or "",
        "Payments": [allocation_document(p, "payment") for p in invoice.payments],
        "CreditNotes": [allocation_document(c, "credit note") for c in invoice.credit_notes],
        "Prepayments": [],
        "Overpayments": [],
        "AmountDue": invoice.amount_due,
        "AmountPaid": invoice.amount_paid,
        "AmountCredited": invoice.amount_credited,
        "SentToContact": invoice.sent_to_contact,
        "CurrencyRate": Decimal("1.000000"),
        "IsDiscounted": any(line.discount_rate or line.discount_amount for line in invoice.lines),
        "HasAttachments": False,
        "HasErrors": False,
        "Contact": {
            "ContactID": invoice.contact_id,
            "Name": contact.name if contact else "",
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "ContactPersons": [],
            "HasValidationErrors": False,
        },
        "DateString": f"{issued:%Y-%m-%dT%H:%M:%S}",
        "Date": ms_date(issued),
    }
    if invoice.due is not None:
        due = day_moment(invoice.due)
        document.update(DueDateString=f"{due:%Y-%m-%dT%H:%M:%S}", DueDate=ms_date(due))
    updated = utc_moment(invoice.updated_at)
    document.update(
        Status=invoice.status,
        LineAmountTypes=invoice.line_amount_types,
        LineItems=[line_document(line, unitdp) for line in invoice.lines] if with_lines else [],
        SubTotal=invoice.sub_total,
        TotalTax=invoice.total_tax,
        Total=invoice.total,
        UpdatedDateUTC=ms_date(updated),
        UpdatedDateUTCString=f"{updated:%Y-%m-%dT%H:%M:%SZ}",
        CurrencyCode=invoice.currency_code,
    )
    if invoice.status == "PAID":
        last = max(invoice.payments + invoice.credit_notes, key=lambda a: a.on)
        document["FullyPaidOnDate"] = ms_date(day_moment(last.on))
    return document


def shown_statuses(include_archived: bool) -> tuple[str, ...]:
    """What GET /TrackingCategories shows: ACTIVE categories and options, ARCHIVED too when asked, never DELETED."""
    return ("ACTIVE", "ARCHIVED") if include_archived else ("ACTIVE",)


def category_document(category: TrackingCategory, shown: tuple[str, ...]) -> dict:
    return {
        "Name": category.name,
        "Status": category.status,
        "TrackingCategoryID": category.category_id,
        "Options": [
            {"TrackingOptionID": o.option_id, "Name": o.name, "Status": o.status}
            for o in category.options
            if o.status in shown
        ],
    }


def tax_rate_document(tax_rate: TaxRate) -> dict:
    rate = rounded(tax_rate.rate, FOUR_PLACES)
    return {
        "Name": tax_rate.name,
        "TaxType": tax_rate.tax_type,
        "ReportTaxType": "OUTPUT",
        "CanApplyToAssets": True,
        "CanApplyToEquity": True,
        "CanApplyToExpenses": True,
        "CanApplyToLiabilities": True,
        "CanApplyToRevenue": True,
        "DisplayTaxRate": rate,
        "EffectiveRate": rate,
        "Status": "ACTIVE",
        "TaxComponents": [
            {"Name": tax_rate.name, "Rate": rate, "IsCompound": False, "IsNonRecoverable": False}
        ],
    }


def listed(value: str | None) -> list[str]:
    """A comma-separated query value, quotes and spaces around each item removed."""
    items = (item.strip().strip('"').strip() for item in (value or "").split(","))
    return [item for item in items if item]


# --- The double ------------------------------------------------------------------------------------------------


class XeroDouble:
    """Xero's Accounting API and identity server on 127.0.0.1, in memory. See the module docstring."""

    def __init__(
        self,
        *,
        schema_path: Path | str | None = None,
        limits: Limits | None = None,
        speed: float = 1.0,
        port: int = 0,
        app_name: str = "trackline",
    ) -> None:
        self.limits = limits or Limits()
        self.clock = Clock(speed)
        self.schema_path = Path(schema_path) if schema_path is not None else default_schema_path()
        schema = json.loads(self.schema_path.read_text())
        self._fast_validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
        self._validator = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        self.app_name = app_name
        self._port = port
        self._lock = threading.RLock()
        self._answered = threading.Condition(self._lock)
        self._organisations: dict[str, Organisation] = {}
        self._apps: dict[str, App] = {}
        self._access_tokens: dict[str, AccessToken] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self._remembered: dict[tuple[str, str, str], Remembered] = {}
        self._faults: list[Fault] = []
        self._tokens_to_reject = 0
        self._log: list[LoggedRequest] = []
        self._sequence = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # Serving

    def start(self, port: int | None = None) -> XeroDouble:
        if self._server is not None:
            raise RuntimeError("the Xero double is already serving")
        self._server = _Server(("127.0.0.1", self._port if port is None else port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="xero-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> XeroDouble:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the Xero double is not serving: call start()")
        return self._server.server_address[1]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{TOKEN_PATH}"

    # Time

    @property
    def speed(self) -> float:
        return self.clock.speed

    def advance(self, seconds: float) -> None:
        """Move the double's clock on by some Xero seconds (tokens expire, windows reset, keys are forgotten)."""
        self.clock.advance(seconds)

    # Organisations and what they hold

    def add_organisation(
        self,
        tenant_id: str,
        *,
        client_id: str,
        client_secret: str,
        grant: str = "client_credentials",
        refresh_token: str | None = None,
        name: str | None = None,
        base_currency: str = "NZD",
    ) -> None:
        """An organisation and the app that reaches it: a custom connection (one organisation) or a standard app
        with the refresh token its user handed over (needed the first time an app is named)."""
        if grant not in GRANTS:
            raise ValueError(f"grant must be one of {GRANTS}, not {grant!r}")
        with self._lock:
            if tenant_id in self._organisations:
                raise ValueError(f"organisation {tenant_id} already exists")
            app = self._apps.get(client_id)
            if grant == "refresh_token" and not refresh_token and app is None:
                raise ValueError("a standard app (grant refresh_token) needs its initial refresh_token")
            if app is None:
                app = App(client_id, client_secret, grant, Window(60, self.limits.app_per_minute))
                self._apps[client_id] = app
            elif (app.client_secret, app.grant) != (client_secret, grant):
                raise ValueError(f"app {client_id} is already known with another secret or grant")
            if grant == "client_credentials" and app.tenants:
                raise ValueError("a custom connection reaches exactly one organisation")
            app.tenants.add(tenant_id)
            self._organisations[tenant_id] = Organisation(
                tenant_id,
                name or f"Organisation {tenant_id[:8]}",
                base_currency,
                minute=Window(60, self.limits.per_minute),
                day=Window(86400, self.limits.per_day),
            )
            if refresh_token:
                expires = self.clock.now() + self.limits.refresh_token_seconds
                self._refresh_tokens[refresh_token] = RefreshToken(refresh_token, client_id, expires)

    def _organisation(self, tenant_id: str) -> Organisation:
        try:
            return self._organisations[tenant_id]
        except KeyError:
            raise KeyError(f"no organisation {tenant_id}: call add_organisation first") from None

    def add_tracking_category(
        self, tenant_id: str, name: str, options: dict[str, str] | list[str], status: str = "ACTIVE"
    ) -> str:
        """A tracking category with its options (name to ACTIVE/ARCHIVED, or names all ACTIVE); its id. Xero
        allows 2 ACTIVE categories and 4 in all."""
        with self._lock:
            org = self._organisation(tenant_id)
            if any(c.name == name for c in org.categories):
                raise ValueError(f"organisation {tenant_id} already has a tracking category {name!r}")
            if status == "ACTIVE" and sum(c.status == "ACTIVE" for c in org.categories) >= 2:
                raise ValueError("Xero allows at most 2 active tracking categories per organisation")
            if len(org.categories) >= 4:
                raise ValueError(
                    "Xero allows at most 4 tracking categories per organisation, archived ones included"
                )
            statuses = dict.fromkeys(options, "ACTIVE") if isinstance(options, list) else dict(options)
            category = TrackingCategory(
                new_guid(), name, status, [TrackingOption(new_guid(), o, s) for o, s in statuses.items()]
            )
            org.categories.append(category)
            return category.category_id

    def add_tracking_option(self, tenant_id: str, category: str, option: str, status: str = "ACTIVE") -> str:
        with self._lock:
            found = self._organisation(tenant_id).category_named(category)
            added = TrackingOption(new_guid(), option, status)
            found.options.append(added)
            return added.option_id

    def set_option_status(self, tenant_id: str, category: str, option: str, status: str) -> None:
        with self._lock:
            found = self._organisation(tenant_id).category_named(category)
            match = next((o for o in found.options if o.name == option), None)
            if match is None:
                raise KeyError(f"tracking category {category!r} has no option {option!r}")
            match.status = status

    def set_category_status(self, tenant_id: str, category: str, status: str) -> None:
        """Xero lets an organisation have at most 2 ACTIVE tracking categories."""
        with self._lock:
            org = self._organisation(tenant_id)
            found = org.category_named(category)
            active = [c for c in org.categories if c.status == "ACTIVE" and c is not found]
            if status == "ACTIVE" and len(active) >= 2:
                raise ValueError("Xero allows at most 2 active tracking categories per organisation")
            found.status = status

    def add_contact(self, tenant_id: str, name: str, contact_id: str | None = None) -> str:
        with self._lock:
            contact = Contact(contact_id or new_guid(), name)
            self._organisation(tenant_id).contacts.append(contact)
            return contact.contact_id

    def add_tax_rate(self, tenant_id: str, tax_type: str, name: str, rate: Decimal | float | str) -> None:
        with self._lock:
            self._organisation(tenant_id).tax_rates[tax_type] = TaxRate(tax_type, name, Decimal(str(rate)))

    def add_account(self, tenant_id: str, code: str) -> None:
        """Once an organisation has accounts, unknown account codes and tax types are refused."""
        with self._lock:
            self._organisation(tenant_id).accounts.add(code)

    def set_lock_date(self, tenant_id: str, lock_date: date | str | None) -> None:
        """The period lock: invoices dated on or before it can be neither created nor edited."""
        if isinstance(lock_date, str):
            lock_date = date.fromisoformat(lock_date)
        with self._lock:
            self._organisation(tenant_id).lock_date = lock_date

    # Invoice states that refuse edits

    def mark_paid(
        self, tenant_id: str, invoice_number: str, amount: Decimal | float | str | None = None
    ) -> None:
        """A payment against an AUTHORISED invoice, in full (PAID) unless an amount is given (part-paid)."""
        self._allocate(tenant_id, invoice_number, amount, "payments")

    def mark_credited(
        self, tenant_id: str, invoice_number: str, amount: Decimal | float | str | None = None
    ) -> None:
        """A credit note allocated to an AUTHORISED invoice, in full unless an amount is given."""
        self._allocate(tenant_id, invoice_number, amount, "credit_notes")

    def _allocate(self, tenant_id: str, invoice_number: str, value: object, kind: str) -> None:
        with self._lock:
            org = self._organisation(tenant_id)
            invoice = org.invoice_called(invoice_number)
            if invoice.status != "AUTHORISED":
                raise ValueError("Payments can only be made against Authorised documents.")
            applied = invoice.amount_due if value is None else rounded(Decimal(str(value)), CENTS)
            if applied <= 0 or applied > invoice.amount_due:
                raise ValueError("Payment amount exceeds the amount outstanding on this document.")
            allocations = getattr(invoice, kind)
            number = f"CN-{len(allocations) + 1:04d}" if kind == "credit_notes" else None
            allocations.append(Allocation(new_guid(), applied, self.clock.today(), number))
            if invoice.amount_due == 0:
                invoice.status = "PAID"
            invoice.updated_at = self.clock.now()

    def void(self, tenant_id: str, invoice_number: str) -> None:
        with self._lock:
            invoice = self._organisation(tenant_id).invoice_called(invoice_number)
            if invoice.status != "AUTHORISED" or invoice.payments or invoice.credit_notes:
                raise ValueError("Xero voids only AUTHORISED invoices with nothing allocated to them")
            invoice.status = "VOIDED"
            invoice.updated_at = self.clock.now()

    # Faults on cue

    def fail_next(
        self,
        count: int = 1,
        status: int = 503,
        path_contains: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        with self._lock:
            self._faults.append(
                Fault("fail", count, status=status, path_contains=path_contains, tenant_id=tenant_id)
            )

    def drop_after_commit(
        self, count: int = 1, path_contains: str | None = None, tenant_id: str | None = None
    ) -> None:
        with self._lock:
            self._faults.append(Fault("drop", count, path_contains=path_contains, tenant_id=tenant_id))

    def slow(
        self,
        seconds: float,
        count: int = 1,
        path_contains: str | None = None,
        tenant_id: str | None = None,
        after_work: bool = False,
    ) -> None:
        """Hold matching requests, in flight, for some real seconds: before the work is done (a client that
        times out and looks finds nothing yet), or with `after_work` between the work and the answer."""
        with self._lock:
            self._faults.append(
                Fault(
                    "slow",
                    count,
                    seconds=seconds,
                    after_work=after_work,
                    path_contains=path_contains,
                    tenant_id=tenant_id,
                )
            )

    def clear_faults(self) -> None:
        """Xero is well again: every fault still waiting is dropped."""
        with self._lock:
            self._faults.clear()

    def reject_tokens_next(self, count: int = 1) -> None:
        with self._lock:
            self._tokens_to_reject += count

    def _fault_met(self, call: Call) -> Fault:
        """The first fault still waiting that this call matches, used up by one; held here if it is slow."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(call)), Fault("none", 0))
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
        time.sleep(fault.delay_before_work)
        return fault

    # Inspection

    def invoices(self, tenant_id: str) -> list[dict]:
        """Every stored invoice as Xero returns it (lines included, 4 places), amounts as Decimal."""
        with self._lock:
            org = self._organisation(tenant_id)
            documents = [invoice_document(org, i, 4, True) for i in self._in_update_order(org)]
        return json.loads(render_json(documents), parse_float=Decimal)

    @property
    def requests(self) -> list[dict]:
        """Every request: time (Xero clock), method, path, tenant_id, idempotency_key, in_flight at arrival,
        status, replayed, dropped. Never the Authorization header."""
        with self._lock:
            return [asdict(entry) for entry in self._log]

    def peak_in_flight(self, tenant_id: str) -> int:
        with self._lock:
            return self._organisation(tenant_id).peak_in_flight

    def count_created(self, tenant_id: str, invoice_number: str) -> int:
        with self._lock:
            return self._organisation(tenant_id).created_numbers.count(invoice_number)

    # Answering

    def answer(self, call: Call) -> Answer:
        entry = LoggedRequest(
            self.clock.now(),
            call.method,
            call.target,
            call.header("xero-tenant-id"),
            call.header("Idempotency-Key"),
        )
        with self._lock:
            self._log.append(entry)
        path = call.path.lower()
        try:
            if path == TOKEN_PATH:
                answer = self._answer_token_call(call)
            elif path.startswith(API_PREFIX.lower() + "/"):
                answer = self._answer_api_call(call, entry)
            else:
                answer = Answer(text_reply(404, NOT_FOUND_TEXT))
        except Exception:
            traceback.print_exc()
            answer = Answer(internal_error())
        entry.status, entry.dropped = answer.reply.status, answer.drop
        return answer

    def _answer_token_call(self, call: Call) -> Answer:
        fault = self._fault_met(call)
        if fault.gateway_reply is not None:
            return Answer(fault.gateway_reply)
        reply = internal_error() if fault.fails_inside else self._token(call)
        return Answer(reply, drop=fault.drops, delay=fault.delay_after_work)

    def _answer_api_call(self, call: Call, entry: LoggedRequest) -> Answer:
        app, refusal = self._authenticated(call)
        if refusal is not None:
            return Answer(refusal)
        now = self.clock.now()
        with self._lock:
            org = self._organisations[call.header("xero-tenant-id")]
            entry.in_flight = org.in_flight
            org.peak_in_flight = max(org.peak_in_flight, org.in_flight + 1)
            refusal = self._rate_refusal(org, app, now)
            if refusal is None:
                for window in (org.minute, org.day, app.minute):
                    window.take(now)
                org.in_flight += 1
            remaining = {
                "X-DayLimit-Remaining": str(org.day.remaining(now)),
                "X-MinLimit-Remaining": str(org.minute.remaining(now)),
                "X-AppMinLimit-Remaining": str(app.minute.remaining(now)),
            }
        if refusal is not None:
            refusal.headers.update(remaining)
            return Answer(refusal)

        def release() -> None:
            with self._lock:
                org.in_flight -= 1

        try:
            fault = self._fault_met(call)
            if fault.gateway_reply is not None:
                reply = fault.gateway_reply
            elif not call.accepts_json():
                reply = text_reply(406, "The double answers JSON only: send Accept: application/json")
            elif fault.fails_inside:
                reply = self._remembering(call, app, org, entry, internal_error)
            else:
                reply = self._remembering(call, app, org, entry, lambda: self._route(call, org))
        except BaseException:
            release()
            raise
        reply.headers.update(remaining)
        return Answer(reply, drop=fault.drops, delay=fault.delay_after_work, release=release)

    # Identity

    def _token(self, call: Call) -> Reply:
        if call.method != "POST":
            return oauth_error("invalid_request")
        form = {k: v[-1] for k, v in parse_qs(call.body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, credentials = (call.header("Authorization") or "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(credentials).decode().partition(":")
            except ValueError:
                return oauth_error("invalid_client")
        with self._lock:
            app = self._apps.get(client_id or "")
            if app is None or not secrets.compare_digest(
                app.client_secret.encode(), (client_secret or "").encode()
            ):
                return oauth_error("invalid_client")
            grant = form.get("grant_type")
            if grant not in GRANTS:
                return oauth_error("unsupported_grant_type")
            if grant != app.grant:
                return oauth_error("unauthorized_client")
            now = self.clock.now()
            successor = None
            if grant == "refresh_token":
                successor = self._rotated(app, form.get("refresh_token") or "", now)
                if successor is None:
                    return oauth_error("invalid_grant")
            issued = {
                "access_token": self._issue_access_token(app, now),
                "expires_in": max(1, round(self.limits.access_token_seconds / self.clock.speed)),
                "token_type": "Bearer",
            }
        if successor is not None:
            issued["refresh_token"] = successor.value
            issued["scope"] = GRANTED_SCOPE + " offline_access"
        else:
            issued["scope"] = form.get("scope") or GRANTED_SCOPE
        return json_reply(200, issued)

    def _issue_access_token(self, app: App, now: float) -> str:
        value = secrets.token_urlsafe(32)
        self._access_tokens[value] = AccessToken(value, app.client_id, now + self.limits.access_token_seconds)
        return value

    def _rotated(self, app: App, presented: str, now: float) -> RefreshToken | None:
        """The refresh token that replaces the one presented: a new one on first use; within the grace period
        the same successor again; afterwards none."""
        token = self._refresh_tokens.get(presented)
        if token is None or token.client_id != app.client_id:
            return None
        if token.used_at is None:
            if now >= token.expires_at:
                return None
            successor = RefreshToken(
                secrets.token_urlsafe(32), app.client_id, now + self.limits.refresh_token_seconds
            )
            self._refresh_tokens[successor.value] = successor
            token.used_at, token.successor = now, successor.value
            return successor
        if now - token.used_at < self.limits.refresh_grace_seconds and token.successor:
            return self._refresh_tokens[token.successor]
        return None

    def _authenticated(self, call: Call) -> tuple[App | None, Reply | None]:
        """The app behind a call's bearer token, or Xero's 401/403."""
        scheme, _, value = (call.header("Authorization") or "").partition(" ")
        now = self.clock.now()
        with self._lock:
            token = self._access_tokens.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is None:
                return None, problem_reply(401, "AuthenticationUnsuccessful")
            if now >= token.expires_at:
                return None, token_expired(token.expires_at)
            if self._tokens_to_reject > 0:
                self._tokens_to_reject -= 1
                return None, token_expired(now)
            app = self._apps[token.client_id]
            tenant_id = call.header("xero-tenant-id")
            if not tenant_id or tenant_id not in app.tenants or tenant_id not in self._organisations:
                return None, problem_reply(403, "AuthenticationUnsuccessful")
            return app, None

    # Rate limits

    def _rate_refusal(self, org: Organisation, app: App, now: float) -> Reply | None:
        if org.day.full(now):
            return self._too_many("day", org.day.seconds_left(now))
        if org.minute.full(now):
            return self._too_many("minute", org.minute.seconds_left(now))
        if app.minute.full(now):
            return self._too_many("appminute", None)
        if org.in_flight >= self.limits.concurrent:
            return self._too_many("concurrent", None)
        return None

    def _too_many(self, problem: str, seconds_left: float | None) -> Reply:
        reply = text_reply(429, RATE_LIMIT_TEXT)
        reply.headers["X-Rate-Limit-Problem"] = problem
        if seconds_left is not None:
            reply.headers["Retry-After"] = self.clock.real_seconds_text(seconds_left)
        return reply

    # Idempotency

    def _remembering(
        self, call: Call, app: App, org: Organisation, entry: LoggedRequest, work: Callable[[], Reply]
    ) -> Reply:
        """Do the work once per idempotency key and six minutes; answer repeats from memory."""
        key = call.header("Idempotency-Key")
        if key is None or call.method not in ("POST", "PUT", "PATCH"):
            return work()
        if len(key) > self.limits.idempotency_key_chars:
            return problem_reply(
                400, f"Idempotency Key must be at most {self.limits.idempotency_key_chars} characters"
            )
        scope = (app.client_id, org.tenant_id, key)
        fingerprint = hashlib.sha256(
            b"\0".join([call.method.encode(), call.target.encode(), call.body])
        ).hexdigest()
        now = self.clock.now()
        with self._answered:
            for held, remembered in list(self._remembered.items()):
                if (
                    now - remembered.first_call >= self.limits.idempotency_seconds
                    and remembered.reply is not None
                ):
                    del self._remembered[held]
            remembered = self._remembered.get(scope)
            if remembered is not None:
                if remembered.fingerprint != fingerprint:
                    return problem_reply(400, f"Idempotency Key {key} is used with a different request.")
                while remembered.reply is None:
                    self._answered.wait()
                entry.replayed = True
                return remembered.reply.copy()
            remembered = Remembered(fingerprint, now)
            self._remembered[scope] = remembered
        try:
            reply = work()
        except Exception:
            traceback.print_exc()
            reply = internal_error()
        with self._answered:
            remembered.reply = reply.copy()
            self._answered.notify_all()
        return reply

    # The Accounting API

    def _route(self, call: Call, org: Organisation) -> Reply:
        parts = [p for p in call.path[len(API_PREFIX) :].split("/") if p]
        resource = parts[0].lower() if parts else ""
        method = call.method
        if resource == "invoices" and len(parts) == 1:
            if method == "GET":
                return self._list_invoices(call, org)
            if method in ("PUT", "POST"):
                return self._save_invoices(call, org, creating_only=method == "PUT")
        if resource == "invoices" and len(parts) == 2:
            if method == "GET":
                return self._one_invoice(call, org, parts[1])
            if method == "POST":
                return self._update_invoice(call, org, parts[1])
        if resource == "trackingcategories" and len(parts) == 1 and method == "GET":
            return self._tracking_categories(call, org)
        if resource == "taxrates" and len(parts) == 1 and method == "GET":
            with self._lock:
                return self._envelope(TaxRates=[tax_rate_document(t) for t in org.tax_rates.values()])
        return text_reply(404, NOT_FOUND_TEXT)

    def _envelope(self, **content: object) -> Reply:
        return json_reply(
            200,
            {
                "Id": new_guid(),
                "Status": "OK",
                "ProviderName": self.app_name,
                "DateTimeUTC": ms_date(utc_moment(self.clock.now())),
                **content,
            },
        )

    def _tracking_categories(self, call: Call, org: Organisation) -> Reply:
        shown = shown_statuses(call.flag("includeArchived", False))
        with self._lock:
            categories = sorted((c for c in org.categories if c.status in shown), key=lambda c: c.name)
            return self._envelope(TrackingCategories=[category_document(c, shown) for c in categories])

    def _in_update_order(self, org: Organisation) -> list[Invoice]:
        return sorted(org.invoices.values(), key=lambda i: (i.updated_at, i.sequence))

    def _list_invoices(self, call: Call, org: Organisation) -> Reply:
        if call.param("where") is not None:
            return request_refused(
                "The double does not implement where: filter with IDs, InvoiceNumbers, Statuses"
            )
        ids = {i.lower() for i in listed(call.param("IDs"))}
        numbers = {number_key(n) for n in listed(call.param("InvoiceNumbers"))}
        statuses = {s.upper() for s in listed(call.param("Statuses"))}
        contact_ids = {c.lower() for c in listed(call.param("ContactIDs"))}
        since = self._modified_since(call)
        unitdp = call.unitdp()
        page_text = call.param("page")
        with self._lock:
            chosen = [
                invoice
                for invoice in self._in_update_order(org)
                if (not ids or invoice.invoice_id.lower() in ids)
                and (not numbers or (invoice.number and number_key(invoice.number) in numbers))
                and (not statuses or invoice.status in statuses)
                and (not contact_ids or invoice.contact_id.lower() in contact_ids)
                and (since is None or invoice.updated_at >= since)
            ]
            content: dict[str, object] = {}
            if page_text is not None:
                page = max(1, int(page_text)) if page_text.isdigit() else 1
                size_text = call.param("pageSize") or "100"
                size = min(1000, max(1, int(size_text))) if size_text.isdigit() else 100
                content["pagination"] = {
                    "page": page,
                    "pageSize": size,
                    "pageCount": math.ceil(len(chosen) / size),
                    "itemCount": len(chosen),
                }
                chosen = chosen[(page - 1) * size : page * size]
            with_lines = page_text is not None or bool(ids)
            content["Invoices"] = [invoice_document(org, i, unitdp, with_lines) for i in chosen]
            return self._envelope(**content)

    def _modified_since(self, call: Call) -> float | None:
        text = call.header("If-Modified-Since")
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                moment = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None  # a header Xero cannot read filters nothing [assumed]
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()

    def _invoice_by_path(self, org: Organisation, identifier: str) -> Invoice | None:
        if is_guid(identifier):
            return next(
                (i for i in org.invoices.values() if i.invoice_id.lower() == identifier.lower()), None
            )
        return org.invoice_numbered(identifier)

    def _one_invoice(self, call: Call, org: Organisation, identifier: str) -> Reply:
        unitdp = call.unitdp()
        with self._lock:
            invoice = self._invoice_by_path(org, identifier)
            if invoice is None:
                return text_reply(404, NOT_FOUND_TEXT)
            return self._envelope(Invoices=[invoice_document(org, invoice, unitdp, True)])

    def _read_invoices_body(self, call: Call) -> list[dict] | Reply:
        """The invoices of a body, or Xero's refusal of the whole request."""
        if "application/json" not in (call.header("Content-Type") or "").lower():
            return post_data_invalid(
                "The request body could not be read: send JSON with Content-Type: application/json"
            )
        if len(call.body) > self.limits.body_bytes:
            return request_refused(f"The request is over the {self.limits.body_bytes:,} byte limit")
        try:
            body = json.loads(call.body, parse_float=Decimal)
        except (UnicodeDecodeError, ValueError) as exc:
            return post_data_invalid(f"JSON request body could not be read, Error: {exc}")
        # The compiled validator (jsonschema-rs, same schema and formats) passes most bodies at once; only
        # a body it refuses goes through jsonschema, for Xero's message.
        error = (
            None
            if self._fast_validator.is_valid(json.loads(call.body))
            else jsonschema.exceptions.best_match(self._validator.iter_errors(body))
        )
        if error is not None:
            return post_data_invalid(
                f"JSON request body could not be read, Error: {error.json_path}: {error.message}"
            )
        invoices = body.get("Invoices")
        if not isinstance(invoices, list):
            return post_data_invalid("JSON request body could not be read, Error: no Invoices in the body")
        if len(invoices) > self.limits.invoices_per_request:
            return request_refused(
                f"No more than {self.limits.invoices_per_request} invoices can be sent in one request"
            )
        return invoices

    def _save_invoices(self, call: Call, org: Organisation, *, creating_only: bool) -> Reply:
        payloads = self._read_invoices_body(call)
        if isinstance(payloads, Reply):
            return payloads
        summarize = call.flag("summarizeErrors", True)
        unitdp = call.unitdp()
        with self._lock:
            try:
                drafts = self._drafts(org, payloads, unitdp, creating_only)
            except BodyUnreadable as exc:
                return post_data_invalid(str(exc))
            refused = [d for d in drafts if d.errors]
            if summarize and refused:
                return validation_exception([d.refused() for d in refused])
            documents = []
            for draft in drafts:
                if draft.errors:
                    documents.append(draft.refused())
                    continue
                invoice = self._keep(org, draft)
                documents.append(
                    invoice_document(org, invoice, unitdp, True) | {"StatusAttributeString": "OK"}
                )
            return self._envelope(Invoices=documents)

    def _drafts(
        self, org: Organisation, payloads: list[dict], unitdp: int, creating_only: bool
    ) -> list[Draft]:
        pending: set[str] = set()
        drafts = []
        for payload in payloads:
            before, missing = self._invoice_updated_by(org, payload, creating_only)
            if missing:
                drafts.append(Draft(payload, errors=[INVOICE_NOT_FOUND], creating=False))
                continue
            draft = draft_invoice(org, payload, before, unitdp, pending, self.clock.today())
            if not draft.errors and draft.invoice.type == "ACCREC" and draft.invoice.number:
                pending.add(number_key(draft.invoice.number))
            drafts.append(draft)
        return drafts

    def _invoice_updated_by(
        self, org: Organisation, payload: dict, creating_only: bool
    ) -> tuple[Invoice | None, bool]:
        """The stored invoice a POST updates (by InvoiceID, or an ACCREC's InvoiceNumber), and whether an
        InvoiceID named one that does not exist. PUT only creates."""
        if creating_only:
            return None, False
        if payload.get("InvoiceID"):
            before = self._invoice_by_path(org, payload["InvoiceID"])
            return before, before is None
        if payload.get("Type", "ACCREC") == "ACCREC" and payload.get("InvoiceNumber"):
            return org.invoice_numbered(payload["InvoiceNumber"]), False
        return None, False

    def _update_invoice(self, call: Call, org: Organisation, identifier: str) -> Reply:
        payloads = self._read_invoices_body(call)
        if isinstance(payloads, Reply):
            return payloads
        unitdp = call.unitdp()
        with self._lock:
            before = self._invoice_by_path(org, identifier)
            if before is None:
                return text_reply(404, NOT_FOUND_TEXT)
            if not payloads:
                return self._envelope(Invoices=[invoice_document(org, before, unitdp, True)])
            try:
                draft = draft_invoice(org, payloads[0], before, unitdp, set(), self.clock.today())
            except BodyUnreadable as exc:
                return post_data_invalid(str(exc))
            if draft.errors:
                return validation_exception([draft.refused()])
            invoice = self._keep(org, draft)
            return self._envelope(Invoices=[invoice_document(org, invoice, unitdp, True)])

    def _keep(self, org: Organisation, draft: Draft) -> Invoice:
        """Save a draft Xero accepted: its new contact, its number, its time."""
        invoice = draft.invoice
        if draft.new_contact_name:
            contact = org.contact_named(draft.new_contact_name)
            if contact is None:
                contact = Contact(new_guid(), draft.new_contact_name)
                org.contacts.append(contact)
            invoice.contact_id = contact.contact_id
        if invoice.type == "ACCREC" and not invoice.number:
            invoice.number = org.next_free_number()
        invoice.updated_at = self.clock.now()
        if draft.creating:
            self._sequence += 1
            invoice.sequence = self._sequence
            org.created_numbers.append(invoice.number)
        org.invoices[invoice.invoice_id] = invoice
        return invoice


# --- HTTP ----------------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    # Xero's edge takes every connection a busy app opens; socketserver's backlog of 5 reset them when a
    # push to 100 organisations opened its connections at once [assumed].
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], double: XeroDouble) -> None:
        self.double = double
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def opened(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def closed(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that gave up before its answer is an ordinary day for Xero, not an error of the double."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Keep-alive connections would otherwise outlive the server."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 300
    disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.closed(self.connection)

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        call = Call(self.command, self.path, self.headers, self._body())
        answer = self.server.double.answer(call)
        try:
            time.sleep(answer.delay)
            if answer.drop:
                self._drop()
            else:
                self._write(answer.reply)
        finally:
            answer.release()

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Xero-Correlation-Id", new_guid())
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _drop(self) -> None:
        """Close the socket without a byte of answer: the client sees a broken connection."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


# --- Command line --------------------------------------------------------------------------------------------


def seed_organisations(double: XeroDouble, seed: dict) -> None:
    """Organisations, categories, contacts, tax rates, accounts and lock dates from the CLI's JSON file."""
    for org in seed.get("organisations", []):
        tenant_id = org["tenant_id"]
        double.add_organisation(
            tenant_id,
            client_id=org["client_id"],
            client_secret=org["client_secret"],
            grant=org.get("grant", "client_credentials"),
            refresh_token=org.get("refresh_token"),
            name=org.get("name"),
            base_currency=org.get("base_currency", "NZD"),
        )
        for category in org.get("tracking_categories", []):
            double.add_tracking_category(
                tenant_id, category["name"], category.get("options", []), category.get("status", "ACTIVE")
            )
        for contact in org.get("contacts", []):
            double.add_contact(tenant_id, contact["name"], contact.get("contact_id"))
        for tax_rate in org.get("tax_rates", []):
            double.add_tax_rate(tenant_id, tax_rate["tax_type"], tax_rate["name"], tax_rate["rate"])
        for code in org.get("accounts", []):
            double.add_account(tenant_id, code)
        if org.get("lock_date"):
            double.set_lock_date(tenant_id, org["lock_date"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.doubles.xero", description="Serve the Xero double until interrupted."
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--orgs", type=Path, required=True, help="organisations to seed (see the module docstring)"
    )
    parser.add_argument("--speed", type=float, default=None, help="Xero seconds per real second (default 1)")
    args = parser.parse_args(argv)
    seed = json.loads(args.orgs.read_text())
    double = XeroDouble(speed=args.speed if args.speed is not None else float(seed.get("speed", 1.0)))
    seed_organisations(double, seed)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    double.start(args.port)
    print(f"api_url {double.api_url}", flush=True)
    print(f"token_url {double.token_url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()


if __name__ == "__main__":
    main()
