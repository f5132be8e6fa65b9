"""Deterministic, vectorised generator of contract-shaped sources (CONTRACT.md §2) at any size.

    python -m bench.generate 1M            # writes bench/data/1M/<table>.parquet (skips if already there)
    python -m bench.generate 10k --seed 3 --force
    python -m bench.generate 2M 10M 30M --typed   # also bench/data/<size>-typed/ (see "Typed sources")

Shape: hundreds of practices (about sqrt(lines)/5, between 10 and 600), most on Xero, each with 2 or 3
tracking categories (Partner, Department, Region); team members and service templates with and without
options; clients with and without an option, an owner and consolidate_lines; about 4 lines per invoice.
Every value is text (as a CSV export would give), so the bad rows can hold values that do not parse.

Bad rows: a dozen or so "defect practices" (the biggest Xero ones) carry a few special reference rows
(an archived option, an option in an archived category, an unknown option id on a template, a duplicated
option, a team member without a name, ...), and about 0.3% of all invoices, drawn from those practices,
carry exactly one defect each: at least two invoices per kind, every hold reason of CONTRACT.md §3 among
them, plus defects that must *not* hold (slot-2 problems of consolidated invoices) and orphan lines.
`manifest.json` beside the tables lists the defect invoices by kind.

Everything is drawn from one numpy Generator seeded with `seed`: the same size and seed give the same rows.
Nothing loops over rows in Python: rows are built from numpy index arithmetic and Polars expressions.

Memory: the draws are made table-wide, in the same order as when the whole tables were built in memory
(so the rows are the same as that generator's, seed for seed: 1M and 10M compared equal, manifests byte
for byte), but each is reduced at once to a compact array (about 13 bytes a line and 17 an invoice). The
text rows of invoices and invoice_lines are then built a run of whole invoices at a time (`--chunk-lines`,
default 1M lines) and appended to the Parquet files as row groups with pyarrow's ParquetWriter; the
reference tables (at most a few hundred thousand rows) are built whole. 10M lines peak at about 1.2 GiB
(6.3 GiB when every table was held as text). The Parquet files differ from the earlier ones in layout
only (row groups of 128Ki rows, pyarrow's zstd), not in rows, order or column types (large strings).

Typed sources (`--typed`, `bench/data/<size>-typed/`): the same rows with the contract's natural types, as
a PostgreSQL source would hold them: issue_date and due_date Date, updated_at Datetime(us, UTC), quantity
and unit_amount Decimal(18, 4), position Int32, consolidate_lines Boolean; every other column text. Each
value is parsed as the contract parses text. A few of the deliberate defects are values no typed column
can hold (2023-02-30, a quantity of `1,5`, a unit amount with 5 places, `yesterday`, a position `first`,
a consolidate_lines of `maybe`). Keeping those columns as text whenever a row needs it was not chosen: every
generated source has every defect, so the typed source would be text in exactly the columns it exists to
type. Instead such a cell is null in the typed source (what a typed database column can hold in its place),
and the manifest says so: `typed.null_instead_of` counts the cells per column and value (the writer stops
if any other value fails to type); `typed.defects_held_as_missing_value` lists the defects whose invoices
are still held with INVALID_VALUE, now for a required value that is missing (the detail differs);
`typed.defects_not_carried` lists those the typed source cannot carry at all (a null consolidate_lines is
false by the contract, so the `client:C9005` invoices are not held there), and they are left out of its
`defects`. Everything else holds as in the text source (tests/bench/test_typed_sources.py).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

GENERATOR_VERSION = 3
DEFAULT_SEED = 20240611
DATA = Path(__file__).resolve().parent / "data"

COLUMNS: dict[str, list[str]] = {
    "practices": ["practice_id", "name", "ledger"],
    "tracking_categories": ["practice_id", "tracking_category_id", "name", "status"],
    "tracking_options": ["practice_id", "tracking_option_id", "tracking_category_id", "name", "status"],
    "team_members": ["practice_id", "team_member_id", "name", "tracking_option_id"],
    "service_templates": [
        "practice_id",
        "service_template_id",
        "name",
        "tracking_option_id",
        "account_code",
        "tax_type",
    ],
    "clients": [
        "practice_id",
        "client_id",
        "name",
        "xero_contact_id",
        "owner_team_member_id",
        "tracking_option_id",
        "consolidate_lines",
    ],
    "invoices": [
        "practice_id",
        "invoice_id",
        "client_id",
        "invoice_number",
        "issue_date",
        "due_date",
        "currency",
        "reference",
        "status",
        "updated_at",
    ],
    "invoice_lines": [
        "practice_id",
        "invoice_id",
        "line_id",
        "position",
        "line_type",
        "service_template_id",
        "description",
        "quantity",
        "unit_amount",
        "account_code",
        "tax_type",
    ],
}

LEDGERS = np.array(["xero", "quickbooks", "sage", "freeagent", "none"])
LEDGER_P = [0.86, 0.06, 0.04, 0.02, 0.02]
CATEGORY_NAMES = np.array(["Partner", "Department", "Region"])
FIRST = np.array(
    "Alice Ben Chloe Daniel Emma Faisal Grace Harry Isla Jack Kiran Laura Nina Priya Omar Ruth".split()
)
LAST = np.array(
    "Ahmed Brooks Carter Dawson Evans Gill Hughes Iqbal Khan Lewis O'Neill Patel Shaw Marsh Kaye".split()
)
DEPARTMENTS = np.array(
    [
        "Central Bookkeeping Team",
        "Tax Team",
        "Accounts Team",
        "Payroll Bureau",
        "Audit",
        "Advisory",
        "Corporate Finance",
        "Company Secretarial",
        "VAT Team",
        "Private Client",
    ]
)
REGIONS = np.array(["North", "South", "East", "West", "Central", "London"])
SERVICES = np.array(
    [
        "Bookkeeping - Monthly",
        "Bookkeeping - Quarterly",
        "Annual Accounts",
        "VAT Return",
        "Payroll - Monthly",
        "Self Assessment",
        "Corporation Tax Return",
        "Management Accounts",
        "Confirmation Statement",
        "Company Secretarial",
        "Advisory Retainer",
        "CIS Returns",
        "R&D Tax Claim",
        "Cloud Software Subscription",
    ]
)
ADHOC = np.array(
    [
        "Companies House fee",
        "Software setup",
        "Additional meeting",
        "Additional hours",
        "Courier disbursement",
    ]
)
PLACES = np.array(
    "Riverside Hillcrest Oakwood Kingsway Millbrook Westgate Ashford Bramley Castleton Elmstead".split()
)
TRADES = np.array(
    "Joinery Dental Bakery Logistics Plumbing Architects Florists Motors Software Catering Print".split()
)
SUFFIXES = np.array(["Ltd", "Ltd", "Ltd", "Limited", "LLP", "& Sons", "Partners"])
FIRMS = np.array(["Accountants", "& Co", "Partners", "Bookkeeping", "Tax Advisers", "LLP"])
QUANTITIES = np.array(["1", "1", "1", "1", "2", "0.5", "1.5", "2.5", "3", "7.25", "12"])
ACCOUNTS = np.array(["200", "210", "215", "220"])
TAXES = np.array(["OUTPUT2", "ZERORATEDOUTPUT", "EXEMPTOUTPUT"])
LONG_OPTION = (
    "Corporate Finance, Transaction Services, Due Diligence and Business Valuations for Owner-Managed "
    "Businesses in the UK"
)  # 120 characters: over Xero's 100
LONG_DESCRIPTION = ("Schedule of work: reconciled bank, VAT, PAYE and director's loan accounts; " * 60)[:4100]
LONG_CLIENT = ("The Very Long Named Holding Company of Riverside, Hillcrest and Oakwood " * 5)[:300]
FIRST_DAY = date(2019, 1, 1)
DAYS = 7 * 365


# Sizes ---------------------------------------------------------------------------------------------------


def size_lines(size: str) -> int:
    """'10k' -> 10_000, '1M' -> 1_000_000, '2.5M', or a plain number of lines."""
    text = size.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = float(text[:-1] if factor > 1 else text)
    return int(round(number * factor))


def practice_count(n_lines: int) -> int:
    return int(max(10, min(600, round(math.sqrt(max(n_lines, 1)) / 5))))


# Vectorised helpers --------------------------------------------------------------------------------------


def _within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., n-1 for each group of `counts` rows, concatenated."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _uniform(rng: np.random.Generator, n: np.ndarray) -> np.ndarray:
    """A 1-based draw in 1..n for each element of n (n >= 1)."""
    return 1 + np.floor(rng.random(len(n)) * n).astype(np.int64)


def _num(prefix: str, numbers: np.ndarray | pl.Series, width: int) -> pl.Series:
    return prefix + pl.Series(np.asarray(numbers)).cast(pl.Utf8).str.zfill(width)


def _guids(rng: np.random.Generator, n: int) -> pl.Series:
    """n random Xero ContactIDs, 8-4-4-4-12 lower-case hex digits."""
    digits = (
        pl.Series(np.frombuffer(rng.bytes(16 * n), dtype="S16")).bin.encode("hex")
        if n
        else pl.Series([], dtype=pl.Utf8)
    )
    return pl.select(
        pl.concat_str(
            [pl.lit(digits).str.slice(a, b - a) for a, b in ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))],
            separator="-",
        )
    ).to_series()


def _text(values) -> pl.Series:
    return pl.Series(values, dtype=pl.Utf8)


def _pick(values, index: np.ndarray) -> pl.Series:
    """values[index] as a text Series (None allowed among the values), without numpy string arrays."""
    return pl.Series(list(values), dtype=pl.Utf8).gather(pl.Series(np.asarray(index, dtype=np.int64)))


def _join(*parts) -> pl.Series:
    """Element-wise concatenation of numpy string arrays, Series and plain strings."""
    exprs = [pl.lit(p) if isinstance(p, str) else pl.lit(pl.Series(p, dtype=pl.Utf8)) for p in parts]
    return pl.select(pl.concat_str(exprs)).to_series()


def _null_where(series: pl.Series, mask: np.ndarray) -> pl.Series:
    return pl.select(pl.when(pl.lit(pl.Series(mask))).then(None).otherwise(pl.lit(series))).to_series()


def _frame(table: str, **columns) -> pl.DataFrame:
    return pl.DataFrame({c: columns[c] for c in COLUMNS[table]}).cast(pl.Utf8)


# The clean bulk ------------------------------------------------------------------------------------------


class Book:
    """The clean rows of every table, plus the numpy arrays the defects need."""

    def __init__(self, n_lines: int, rng: np.random.Generator) -> None:
        self.n_lines, self.rng = n_lines, rng
        self._practices()
        self._categories_and_options()
        self._team_and_templates()
        self._invoices()
        self._clients()
        self._invoice_rows()
        self._lines()

    def _practices(self) -> None:
        rng = self.rng
        P = self.P = practice_count(self.n_lines)
        ledger = rng.choice(LEDGERS, P, p=LEDGER_P)
        weight = rng.lognormal(0.0, 0.9, P)
        ledger[np.argmax(weight)] = "xero"
        self.weight = weight / weight.sum()
        self.is_xero = ledger == "xero"
        self.pid = _num("P", np.arange(1, P + 1), 4)
        names = _join(PLACES[rng.integers(0, len(PLACES), P)], " ", FIRMS[rng.integers(0, len(FIRMS), P)])
        self.practices = _frame("practices", practice_id=self.pid, name=names, ledger=_text(ledger))
        xero = np.flatnonzero(self.is_xero)
        self.defect_practices = xero[np.argsort(-self.weight[xero], kind="stable")][:12]

    def _categories_and_options(self) -> None:
        rng, P = self.rng, self.P
        self.n_cat = 2 + (rng.random(P) < 0.5).astype(np.int64)
        p = np.repeat(np.arange(P), self.n_cat)
        c = _within(self.n_cat) + 1
        self.categories = _frame(
            "tracking_categories",
            practice_id=self.pid.gather(p),
            tracking_category_id=_num("TC", c, 1),
            name=_text(CATEGORY_NAMES[c - 1]),
            status=pl.Series(["ACTIVE"] * len(p)),
        )
        self.n_opt = np.stack(
            [
                rng.integers(3, 13, P),
                rng.integers(3, 11, P),
                np.where(self.n_cat == 3, rng.integers(2, 7, P), 0),
            ]
        )
        frames = []
        for cat in (1, 2, 3):
            counts = self.n_opt[cat - 1]
            p = np.repeat(np.arange(P), counts)
            k = _within(counts) + 1
            if cat == 1:
                names = _join(FIRST[(k * 7 + p * 3) % len(FIRST)], " ", LAST[(k * 5 + p) % len(LAST)])
            elif cat == 2:
                suffix = np.where(k > len(DEPARTMENTS), " " + (k // len(DEPARTMENTS) + 1).astype(str), "")
                names = _join(DEPARTMENTS[(k - 1) % len(DEPARTMENTS)], suffix)
            else:
                names = _text(REGIONS[(k - 1) % len(REGIONS)])
            frames.append(
                _frame(
                    "tracking_options",
                    practice_id=self.pid.gather(p),
                    tracking_option_id=_num(f"O{cat}-", k, 2),
                    tracking_category_id=pl.Series([f"TC{cat}"] * len(p)),
                    name=names,
                    status=pl.Series(["ACTIVE"] * len(p)),
                )
            )
        self.options = pl.concat(frames)

    def _option_of(self, cat: int, practices: np.ndarray) -> pl.Series:
        """A random option id of category `cat` in each of the given practices."""
        return _num(f"O{cat}-", _uniform(self.rng, self.n_opt[cat - 1][practices]), 2)

    def _team_and_templates(self) -> None:
        rng, P = self.rng, self.P
        self.n_tm = rng.integers(6, 31, P)
        p = np.repeat(np.arange(P), self.n_tm)
        k = _within(self.n_tm) + 1
        n = len(p)
        names = _join(FIRST[rng.integers(0, len(FIRST), n)], " ", LAST[rng.integers(0, len(LAST), n)])
        self.team = _frame(
            "team_members",
            practice_id=self.pid.gather(p),
            team_member_id=_num("T", k, 3),
            name=names,
            tracking_option_id=_null_where(self._option_of(2, p), rng.random(n) >= 0.75),
        )
        self.n_st = rng.integers(8, 25, P)
        p = np.repeat(np.arange(P), self.n_st)
        k = _within(self.n_st) + 1
        n = len(p)
        suffix = np.where(k > len(SERVICES), " " + (k // len(SERVICES) + 1).astype(str), "")
        names = _join(SERVICES[(k - 1) % len(SERVICES)], suffix)
        draw = rng.random(n)
        has_region = self.n_cat[p] == 3
        region_p = np.where(has_region, p, 0)
        option = pl.select(
            pl.when(pl.lit(pl.Series(draw < 0.55)))
            .then(pl.lit(self._option_of(2, p)))
            .when(pl.lit(pl.Series((draw < 0.65) & has_region)))
            .then(pl.lit(self._option_of(3, region_p)))
        ).to_series()
        self.templates = _frame(
            "service_templates",
            practice_id=self.pid.gather(p),
            service_template_id=_num("S", k, 3),
            name=names,
            tracking_option_id=option,
            account_code=_text(ACCOUNTS[rng.integers(0, len(ACCOUNTS), n)]),
            tax_type=_text(rng.choice(TAXES, n, p=[0.85, 0.10, 0.05])),
        )

    def _invoices(self) -> None:
        rng = self.rng
        guess = int(self.n_lines / 4 * 1.05) + 16
        counts = 1 + rng.poisson(3.0, guess)
        cum = np.cumsum(counts)
        n_inv = int(np.searchsorted(cum, self.n_lines)) + 1
        counts = counts[:n_inv].copy()
        counts[-1] -= int(cum[n_inv - 1] - self.n_lines)
        self.n_inv, self.counts = n_inv, counts
        self.inv_p = np.sort(rng.choice(self.P, n_inv, p=self.weight))
        self.inv_per_practice = np.bincount(self.inv_p, minlength=self.P)

    def _clients(self) -> None:
        rng, P = self.rng, self.P
        self.n_cl = np.maximum(3, np.round(self.inv_per_practice / 10).astype(np.int64))
        self.cl_offset = np.cumsum(self.n_cl) - self.n_cl
        p = np.repeat(np.arange(P), self.n_cl)
        k = _within(self.n_cl) + 1
        n = len(p)
        names = _join(
            PLACES[rng.integers(0, len(PLACES), n)],
            " ",
            TRADES[rng.integers(0, len(TRADES), n)],
            " ",
            SUFFIXES[rng.integers(0, len(SUFFIXES), n)],
        )
        contact = _guids(np.random.default_rng(int(rng.integers(0, 2**32))), n)
        draw = rng.random(n)
        consolidate = _null_where(
            _text(np.where(draw < 0.08, "true", "false")), (draw >= 0.08) & (draw < 0.12)
        )
        self.cl_consolidated = draw < 0.08
        self.cl_has_option = rng.random(n) < 0.85
        self.clients = _frame(
            "clients",
            practice_id=self.pid.gather(p),
            client_id=_num("C", k, 5),
            name=names,
            xero_contact_id=_null_where(contact, rng.random(n) >= 0.7),
            owner_team_member_id=_null_where(_num("T", _uniform(rng, self.n_tm[p]), 3), rng.random(n) >= 0.9),
            tracking_option_id=_null_where(self._option_of(1, p), ~self.cl_has_option),
            consolidate_lines=consolidate,
        )

    def _invoice_rows(self) -> None:
        """The invoices' draws, kept as compact arrays: `invoice_frame` makes their text rows."""
        rng, n = self.rng, self.n_inv
        p = self.inv_p
        self.inv_local = np.arange(n) - np.repeat(
            np.cumsum(self.inv_per_practice) - self.inv_per_practice, self.inv_per_practice
        )
        client_local = _uniform(rng, self.n_cl[p])
        self.inv_client = self.cl_offset[p] + client_local - 1
        self.inv_client_local = client_local.astype(np.int32)
        status = rng.choice(3, n, p=[0.90, 0.06, 0.04])
        self.inv_approved = status == 0
        self.inv_status = status.astype(np.int8)
        del status, client_local
        self.inv_day = rng.integers(0, DAYS, n).astype(np.int16)
        self.inv_due = rng.choice([14, 30, 30, 45, 60], n).astype(np.int8)
        self.inv_updated = rng.integers(3600, 5 * 86400, n).astype(np.int32)
        self.inv_reference = rng.integers(0, 10**6, n).astype(np.int32)
        self.inv_no_reference = rng.random(n) >= 0.4
        self.inv_currency = rng.choice(3, n, p=[0.9, 0.06, 0.04]).astype(np.int8)

    def _lines(self) -> None:
        """The lines' draws, in the order (and so with the values) the whole-table generator drew them, each
        reduced at once to a compact array (13 bytes a line in all): `line_frame` makes their text rows."""
        rng, counts, n = self.rng, self.counts, self.n_lines
        self.line_start = np.cumsum(counts) - counts
        lines_per_practice = np.bincount(self.inv_p, weights=counts, minlength=self.P).astype(np.int64)
        self.practice_line_start = np.cumsum(lines_per_practice) - lines_per_practice
        self.reversed = rng.random(self.n_inv) < 0.1
        kind = rng.choice(3, n, p=[0.78, 0.10, 0.12]).astype(np.int8)  # service, alignment_fee, adhoc
        self.line_kind = kind
        self.line_with_template = (kind == 0) | ((kind == 1) & (rng.random(n) < 0.5))
        self.line_template = _uniform(rng, np.repeat(self.n_st[self.inv_p], counts)).astype(np.int16)
        self.line_adhoc = rng.integers(0, len(ADHOC), n).astype(np.int8)
        # unit amounts, in ten-thousandths: mostly whole pence, some with 4 places, a few credits
        four_places = rng.random(n) < 0.08
        scaled = np.where(
            four_places, rng.integers(10_000, 2_500_000, n), rng.integers(100, 25_000, n) * 100
        ).astype(np.int32)
        credit = rng.random(n) < 0.01
        np.negative(scaled, out=scaled, where=credit)
        self.line_four_places, self.line_scaled = four_places, scaled
        del credit
        own_codes = ~self.line_with_template
        override = ~own_codes & (rng.random(n) < 0.05)
        account = np.where(own_codes, rng.integers(0, len(ACCOUNTS), n), 5).astype(np.int8)
        account[override] = 4
        self.line_account = account
        del override
        # consolidating clients keep one tax type per invoice: their lines name it
        consolidated = np.repeat(self.cl_consolidated[self.inv_client], counts)
        tax = np.where(own_codes, rng.choice(3, n, p=[0.8, 0.1, 0.1]), 3).astype(np.int8)
        tax[consolidated] = 0
        self.line_tax = tax
        del own_codes, consolidated
        self.line_quantity = rng.integers(0, len(QUANTITIES), n).astype(np.int8)

    def invoice_frame(self, invoices: np.ndarray) -> pl.DataFrame:
        """The text rows of the given invoices (indices, ascending), before any defect."""
        p, local = self.inv_p[invoices], self.inv_local[invoices]
        pid = self.pid.gather(p)
        day = self.inv_day[invoices].astype(np.int64)
        issue = pl.Series(np.datetime64(FIRST_DAY, "D") + day)
        due = pl.Series(np.datetime64(FIRST_DAY, "D") + day + self.inv_due[invoices].astype(np.int64))
        updated = pl.Series(
            (
                np.datetime64(FIRST_DAY, "s")
                + day.astype("timedelta64[D]")
                + self.inv_updated[invoices].astype(np.int64)
            ).astype("datetime64[ms]")
        )
        return _frame(
            "invoices",
            practice_id=pid,
            invoice_id=_num("INV", local + 1, 7),
            client_id=_num("C", self.inv_client_local[invoices], 5),
            invoice_number=pid + "-" + pl.Series(local + 1001).cast(pl.Utf8),
            issue_date=issue.dt.to_string("%Y-%m-%d"),
            due_date=due.dt.to_string("%Y-%m-%d"),
            currency=_pick(["GBP", "EUR", "USD"], self.inv_currency[invoices]),
            reference=_null_where(
                _num("PO-", self.inv_reference[invoices], 6), self.inv_no_reference[invoices]
            ),
            status=_pick(["approved", "draft", "void"], self.inv_status[invoices]),
            updated_at=updated.dt.to_string("%Y-%m-%dT%H:%M:%SZ"),
        )

    def line_frame(self, invoices: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        """The text rows of the given invoices' lines (indices, ascending), before any defect, and each
        row's index in the whole lines table."""
        counts = self.counts[invoices]
        inv = np.repeat(invoices, counts)
        within = _within(counts)
        rows = self.line_start[inv] + within
        position = np.where(self.reversed[inv], self.counts[inv] - within, within + 1)
        p = self.inv_p[inv]
        kind = self.line_kind[rows]
        template = self.line_template[rows].astype(np.int64)
        month = pl.Series(np.datetime64(FIRST_DAY, "D") + self.inv_day[inv].astype(np.int64)).dt.to_string(
            "%b %Y"
        )
        service_name = _pick(SERVICES, (template - 1) % len(SERVICES))
        adhoc_name = _pick(ADHOC, self.line_adhoc[rows])
        description = pl.select(
            pl.when(pl.lit(pl.Series(kind == 2)))
            .then(pl.lit(adhoc_name))
            .when(pl.lit(pl.Series(kind == 1)))
            .then(pl.concat_str([pl.lit(service_name), pl.lit(" alignment fee "), pl.lit(month)]))
            .otherwise(pl.concat_str([pl.lit(service_name), pl.lit(" "), pl.lit(month)]))
        ).to_series()
        four_places = self.line_four_places[rows]
        scaled = self.line_scaled[rows].astype(np.int64)
        whole, frac = np.abs(scaled) // 10_000, np.abs(scaled) % 10_000
        frac_text = pl.Series(frac).cast(pl.Utf8).str.zfill(4)
        frac_text = pl.select(
            pl.when(pl.lit(pl.Series(four_places)))
            .then(pl.lit(frac_text))
            .otherwise(pl.lit(frac_text).str.slice(0, 2))
        ).to_series()
        sign = _pick(["", "-"], scaled < 0)
        unit_amount = sign + pl.Series(whole).cast(pl.Utf8) + "." + frac_text
        frame = _frame(
            "invoice_lines",
            practice_id=self.pid.gather(p),
            invoice_id=_num("INV", self.inv_local[inv] + 1, 7),
            line_id=_num("L", rows - self.practice_line_start[p] + 1, 9),
            position=pl.Series(position).cast(pl.Utf8),
            line_type=_pick(["service", "alignment_fee", "adhoc"], kind),
            service_template_id=_null_where(_num("S", template, 3), ~self.line_with_template[rows]),
            description=description,
            quantity=_pick(QUANTITIES, self.line_quantity[rows]),
            unit_amount=unit_amount,
            account_code=_pick([*ACCOUNTS, "230", None], self.line_account[rows]),
            tax_type=_pick([*TAXES, None], self.line_tax[rows]),
        )
        return frame, rows


# Defects -------------------------------------------------------------------------------------------------

SPECIAL_CATEGORIES = [  # id, name, status
    ("TC8", "Projects", "Actve"),  # INVALID_VALUE: status does not parse
    ("TC9", "Legacy", "ARCHIVED"),
]
SPECIAL_OPTIONS = [  # id, category, name, status
    ("O2-99", "TC2", "Former Team", "ARCHIVED"),
    ("O2-98", "TC2", LONG_OPTION, "ACTIVE"),
    ("O9-01", "TC9", "Legacy Office", "ACTIVE"),
    ("O8-01", "TC8", "Project Apollo", "ACTIVE"),
    ("O1-98", "TC1", "Partner Emeritus", "ACTIVE"),
    ("O1-98", "TC1", "Partner Emeritus (copy)", "ACTIVE"),  # DUPLICATE_KEY
]
SPECIAL_TEAM = [("T900", None, "O2-01")]  # INVALID_VALUE: no name
SPECIAL_TEMPLATES = [  # id, name, option, account, tax
    ("S901", "Partner Review", "O1-01", "200", "OUTPUT2"),  # same category as the client's option
    ("S902", "Legacy Service", "O2-GONE", "200", "OUTPUT2"),  # unknown option
    ("S903", "Former Team Work", "O2-99", "200", "OUTPUT2"),  # archived option
    ("S904", "Legacy Office Work", "O9-01", "200", "OUTPUT2"),  # active option, archived category
    ("S905", "Disbursements (no account)", None, None, "OUTPUT2"),
    ("S906", "Disbursements (no tax)", None, "200", None),
    ("S907", "Project Work", "O8-01", "200", "OUTPUT2"),  # option of a category that does not parse
    ("S908", None, "O2-01", "200", "OUTPUT2"),  # template without a name
    ("S909", "Transaction Services", "O2-98", "200", "OUTPUT2"),  # option name over 100 characters
]
SPECIAL_CLIENTS = [  # id, name, contact, owner, option, consolidate
    ("C9001", "Departed Owner Clients Ltd", "7f3a9001-0000-4000-8000-00000000c001", "T-LEFT", "O1-01", "false"),
    ("C9002", "Departed Owner Consolidated Ltd", "7f3a9002-0000-4000-8000-00000000c002", "T-LEFT", "O1-01", "true"),
    ("C9003", "Nameless Owner Ltd", "7F3A9003-0000-4000-8000-00000000C003", "T900", "O1-01", "false"),
    ("C9004", "Emeritus Holdings Ltd", "7f3a9004-0000-4000-8000-00000000c004", "T001", "O1-98", "false"),
    ("C9005", "Undecided Ltd", "7f3a9005-0000-4000-8000-00000000c005", "T001", "O1-01", "maybe"),
    ("C9006", LONG_CLIENT, None, "T001", "O1-01", "false"),  # contact name over 255 characters
    ("C9007", "Foreign Partner Ltd", "7f3a9007-0000-4000-8000-00000000c007", "T001", "O1-GONE", "false"),  # unknown slot-1 option
    ("C9008", "Legacy Contact Ltd", "c-1029", "T001", "O1-01", "false"),  # a ContactID that is not a GUID
]  # fmt: skip

# kind -> (which invoices qualify, variants). `held`: whether the defect must hold its invoice.
DEFECTS: dict[str, tuple[str, list[str], bool]] = {
    "SAME_CATEGORY": ("plain_with_option", ["template:S901"], True),
    "SAME_CATEGORY_consolidated": ("consolidated_with_option", ["template:S901"], False),
    "CONSOLIDATION_TAX_MISMATCH": ("consolidated_multi", ["last_line_tax"], True),
    "UNKNOWN_OPTION": ("plain", ["template:S902", "client:C9007"], True),
    "UNKNOWN_OPTION_consolidated": ("consolidated", ["template:S902"], False),
    "ARCHIVED_OPTION": ("plain", ["template:S903", "template:S904"], True),
    "INVALID_VALUE": (
        "plain",
        [
            "line:quantity=1,5",
            "line:unit_amount=12.34567",
            "invoice:currency=XYZ",
            "invoice:issue_date=2023-02-30",
            "line:line_type=servce",
            "invoice:status=aproved",
            "invoice:updated_at=yesterday",
            "line:position=first",
            "invoice:due_date=",
            "line:description=LONG",
            "template:S907",
            "template:S908",
            "template:S909",
            "owner_client:C9003",
            "client:C9005",
            "client:C9006",
            "client:C9008",
            "unknown_practice",
        ],
        True,
    ),
    "UNKNOWN_CLIENT": ("plain", ["invoice:client_id=C-GONE", "other_practice_client"], True),
    "UNKNOWN_SERVICE": ("plain", ["template:", "template:S-GONE", "other_practice_template"], True),
    "UNKNOWN_TEAM_MEMBER": ("plain", ["owner_client:C9001"], True),
    "UNKNOWN_TEAM_MEMBER_consolidated": ("any", ["owner_client_consolidated:C9002"], False),
    "MISSING_ACCOUNT_CODE": ("plain", ["adhoc_without:account_code", "template_without:S905"], True),
    "MISSING_TAX_TYPE": ("plain", ["adhoc_without:tax_type", "template_without:S906"], True),
    "DUPLICATE_KEY": ("any", ["duplicate_line", "duplicate_invoice", "client:C9004"], True),
    "EMPTY_INVOICE": ("any", ["no_lines"], True),
}


class Edits:
    """Cell edits by row index of the whole table (the last edit of a cell wins). `finish` settles them;
    `apply` then writes them into any run of the table's rows."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, str], list[tuple[np.ndarray, list]]] = {}
        self.final: dict[tuple[str, str], tuple[np.ndarray, pl.Series]] = {}

    def set(self, table: str, column: str, rows, values) -> None:
        rows = np.atleast_1d(np.asarray(rows, dtype=np.int64))
        if not isinstance(values, list | np.ndarray | pl.Series):
            values = [values] * len(rows)
        self.cells.setdefault((table, column), []).append((rows, list(values)))

    def finish(self) -> None:
        for key, edits in self.cells.items():
            rows = np.concatenate([r for r, _ in edits])
            values = [v for _, vs in edits for v in vs]
            last = len(rows) - 1 - np.unique(rows[::-1], return_index=True)[1]  # ascending by row
            self.final[key] = (rows[last], pl.Series([values[i] for i in last], dtype=pl.Utf8))

    def apply(self, table: str, frame: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
        """`frame` holds rows `rows` (ascending indices into the whole table)."""
        columns = {}
        for (name, column), (edited, values) in self.final.items():
            if name != table or not len(rows):
                continue
            at = np.searchsorted(rows, edited)
            hit = at < len(rows)
            hit[hit] = rows[at[hit]] == edited[hit]
            if hit.any():
                columns[column] = frame[column].scatter(at[hit], values.filter(pl.Series(hit)))
        return frame.with_columns(**columns) if columns else frame


def _all_lines(book: Book, invoices: np.ndarray) -> np.ndarray:
    counts = book.counts[invoices]
    return np.repeat(book.line_start[invoices], counts) + _within(counts)


def _invoice_keys(book: Book, invoices: np.ndarray) -> list[str]:
    """`practice_id/invoice_id` of the given invoices, as generated (before any defect)."""
    pid = book.pid.gather(book.inv_p[invoices])
    return list(pid + "/" + _num("INV", book.inv_local[invoices] + 1, 7))


def _empty(table: str) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.Utf8 for c in COLUMNS[table]})


class Generated:
    """A generated source: the reference tables whole (at most a few hundred thousand rows), and the rows
    of invoices and invoice_lines made a run of invoices at a time from the Book's compact draws, with the
    defects' edits applied, in file order: every invoice in turn, then the repeated rows and orphan lines."""

    def __init__(self, book: Book, edits: Edits, empty_invoice: np.ndarray) -> None:
        self.book, self.edits, self.empty_invoice = book, edits, empty_invoice
        self.reference: dict[str, pl.DataFrame] = {}
        self.tail: dict[str, pl.DataFrame] = {}
        self.defects: dict = {}

    def invoices_at(self, invoices: np.ndarray) -> pl.DataFrame:
        """Edited invoice rows, in the order (and with the repeats) asked for."""
        unique = np.unique(invoices)
        frame = self.edits.apply("invoices", self.book.invoice_frame(unique), unique)
        return frame[np.searchsorted(unique, invoices)]

    def lines_at(self, rows: np.ndarray) -> pl.DataFrame:
        """Edited line rows (indices into the whole lines table, before empty invoices lose their lines),
        in the order and with the repeats asked for."""
        invoices = np.unique(np.searchsorted(self.book.line_start, rows, side="right") - 1)
        frame, at = self.book.line_frame(invoices)
        frame = self.edits.apply("invoice_lines", frame, at)
        return frame[np.searchsorted(at, rows)]

    def chunks(self, chunk_lines: int = 1_000_000) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """(invoices, invoice_lines) rows in file order, about `chunk_lines` lines at a time (whole
        invoices), the repeated rows and orphan lines last."""
        book = self.book
        ends = np.cumsum(book.counts)
        targets = np.arange(1, -(-book.n_lines // chunk_lines) + 1) * chunk_lines
        bounds = np.unique(np.r_[0, np.minimum(np.searchsorted(ends, targets) + 1, book.n_inv)])
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
            invoices = np.arange(start, stop)
            frame = self.edits.apply("invoices", book.invoice_frame(invoices), invoices)
            lines, rows = book.line_frame(invoices)
            lines = self.edits.apply("invoice_lines", lines, rows)
            empty = self.empty_invoice[start:stop]
            if empty.any():
                lines = lines.filter(pl.Series(~np.repeat(empty, book.counts[start:stop])))
            yield frame, lines
        yield self.tail["invoices"], self.tail["invoice_lines"]

    def rows(self) -> dict[str, int]:
        book = self.book
        kept = book.n_lines - int(book.counts[self.empty_invoice].sum())
        return {
            **{t: f.height for t, f in self.reference.items()},
            "invoices": book.n_inv + self.tail["invoices"].height,
            "invoice_lines": kept + self.tail["invoice_lines"].height,
        }

    def manifest(self, seed: int) -> dict:
        book = self.book
        return {
            "version": GENERATOR_VERSION,
            "seed": seed,
            "lines": book.n_lines,
            "practices": book.P,
            "xero_practices": int(book.is_xero.sum()),
            "defect_practices": book.pid.gather(book.defect_practices).to_list(),
            "rows": self.rows(),
            "defects": self.defects,
        }


def _apply_defects(book: Book, rng: np.random.Generator) -> Generated:
    defect_practices = book.defect_practices
    in_defect = np.isin(book.inv_p, defect_practices)
    consolidated = book.cl_consolidated[book.inv_client]
    with_option = book.cl_has_option[book.inv_client]
    base = in_defect & book.inv_approved
    eligible = {
        "any": base,
        "plain": base & ~consolidated,
        "plain_with_option": base & ~consolidated & with_option,
        "consolidated": base & consolidated,
        "consolidated_with_option": base & consolidated & with_option,
        "consolidated_multi": base & consolidated & (book.counts >= 2),
    }
    per_kind = max(2, round(book.n_inv * 0.0002))
    taken = np.zeros(book.n_inv, dtype=bool)
    edits = Edits()
    chosen: dict[str, dict[str, list[str]]] = {}
    duplicate_lines, duplicate_invoices, empty = [], [], []
    for kind, (where, variants, held) in DEFECTS.items():
        pool = np.flatnonzero(eligible[where] & ~taken)
        count = min(len(pool), max(per_kind, len(variants)))
        picks = np.sort(rng.choice(pool, count, replace=False)) if count else np.array([], dtype=np.int64)
        taken[picks] = True
        for i, variant in enumerate(variants):
            invoices = picks[i :: len(variants)]
            if len(invoices) == 0:
                continue
            first = book.line_start[invoices]
            action, _, arg = variant.partition(":")
            if action == "template":
                edits.set("invoice_lines", "line_type", first, "service")
                edits.set("invoice_lines", "service_template_id", first, arg or None)
            elif action == "template_without":
                column = "account_code" if arg == "S905" else "tax_type"
                edits.set("invoice_lines", "line_type", first, "service")
                edits.set("invoice_lines", "service_template_id", first, arg)
                edits.set("invoice_lines", column, first, None)
            elif action == "adhoc_without":
                edits.set("invoice_lines", "line_type", first, "adhoc")
                edits.set("invoice_lines", "service_template_id", first, None)
                edits.set("invoice_lines", "account_code", first, None if arg == "account_code" else "200")
                edits.set("invoice_lines", "tax_type", first, None if arg == "tax_type" else "OUTPUT2")
            elif action == "last_line_tax":
                edits.set("invoice_lines", "tax_type", first + book.counts[invoices] - 1, "EXEMPTOUTPUT")
            elif action in ("line", "invoice"):
                column, _, value = arg.partition("=")
                value = LONG_DESCRIPTION if value == "LONG" else (value or None)
                rows = first if action == "line" else invoices
                edits.set("invoice_lines" if action == "line" else "invoices", column, rows, value)
            elif action == "client":
                edits.set("invoices", "client_id", invoices, arg)
            elif action in ("owner_client", "owner_client_consolidated"):
                edits.set("invoices", "client_id", invoices, arg)
                if action == "owner_client_consolidated":
                    edits.set("invoice_lines", "tax_type", _all_lines(book, invoices), "OUTPUT2")
                edits.set("invoice_lines", "line_type", first, "adhoc")
                edits.set("invoice_lines", "service_template_id", first, None)
                edits.set("invoice_lines", "account_code", first, "200")
                edits.set("invoice_lines", "tax_type", first, "OUTPUT2")
            elif action == "other_practice_client":  # an id other (bigger) practices have
                edits.set(
                    "invoices", "client_id", invoices, list(_num("C", book.n_cl[book.inv_p[invoices]] + 1, 5))
                )
            elif action == "other_practice_template":
                edits.set("invoice_lines", "line_type", first, "service")
                ids = _num("S", book.n_st[book.inv_p[invoices]] + 1, 3)
                edits.set("invoice_lines", "service_template_id", first, list(ids))
            elif action == "unknown_practice":
                moved = [f"INV-MOVED-{j}" for j in range(len(invoices))]
                lines = _all_lines(book, invoices)
                edits.set("invoices", "practice_id", invoices, "P9999")
                edits.set("invoices", "invoice_id", invoices, moved)
                edits.set("invoice_lines", "practice_id", lines, "P9999")
                edits.set("invoice_lines", "invoice_id", lines, list(np.repeat(moved, book.counts[invoices])))
            elif action == "duplicate_line":
                duplicate_lines.append(first)
            elif action == "duplicate_invoice":
                duplicate_invoices.append(invoices)
            elif action == "no_lines":
                empty.append(invoices)
            else:
                raise ValueError(f"unknown defect {variant}")
            keys = _invoice_keys(book, invoices)
            if action == "unknown_practice":
                keys = [f"P9999/{i}" for i in moved]
            chosen.setdefault(kind, {})[variant] = keys
        chosen.setdefault(kind, {})["_held"] = held  # type: ignore[assignment]
    edits.finish()
    # orphan lines: copies of a few lines, on invoices their practice does not have
    in_defect_lines = np.repeat(in_defect, book.counts)
    orphan_rows = rng.choice(np.flatnonzero(in_defect_lines), per_kind)
    del in_defect_lines
    empty_invoice = np.zeros(book.n_inv, dtype=bool)
    if empty:
        empty_invoice[np.concatenate(empty)] = True
    generated = Generated(book, edits, empty_invoice)
    tails_invoices = (
        [
            generated.invoices_at(np.concatenate(duplicate_invoices)).with_columns(
                reference=pl.lit("DUPLICATE ROW")
            )
        ]
        if duplicate_invoices
        else []
    )
    tails_lines = (
        [generated.lines_at(np.concatenate(duplicate_lines)).with_columns(quantity=pl.lit("2"))]
        if duplicate_lines
        else []
    )
    orphans = generated.lines_at(np.sort(orphan_rows)).with_columns(
        invoice_id=pl.format("INV-GONE-{}", pl.int_range(pl.len())),
        line_id=pl.format("L-ORPHAN-{}", pl.int_range(pl.len())),
    )
    chosen["ORPHAN_LINE"] = {
        "orphan": [f"{p}/{i}" for p, i in orphans.select("practice_id", "invoice_id").iter_rows()]
    }
    generated.tail = {
        "invoices": pl.concat(tails_invoices) if tails_invoices else _empty("invoices"),
        "invoice_lines": pl.concat([*tails_lines, orphans]),
    }

    special = book.pid.gather(defect_practices).to_frame("practice_id")

    def rows(table: str, names: list[str], values: list[tuple]) -> pl.DataFrame:
        literal = pl.DataFrame(values, schema={n: pl.Utf8 for n in names}, orient="row")
        return special.join(literal, how="cross").select(COLUMNS[table])

    generated.reference = {
        "practices": book.practices,
        "tracking_categories": pl.concat(
            [
                book.categories,
                rows("tracking_categories", ["tracking_category_id", "name", "status"], SPECIAL_CATEGORIES),
            ]
        ),
        "tracking_options": pl.concat(
            [
                book.options,
                rows(
                    "tracking_options",
                    ["tracking_option_id", "tracking_category_id", "name", "status"],
                    SPECIAL_OPTIONS,
                ),
            ]
        ),
        "team_members": pl.concat(
            [book.team, rows("team_members", ["team_member_id", "name", "tracking_option_id"], SPECIAL_TEAM)]
        ),
        "service_templates": pl.concat(
            [
                book.templates,
                rows(
                    "service_templates",
                    ["service_template_id", "name", "tracking_option_id", "account_code", "tax_type"],
                    SPECIAL_TEMPLATES,
                ),
            ]
        ),
        "clients": pl.concat(
            [
                book.clients,
                rows(
                    "clients",
                    [
                        "client_id",
                        "name",
                        "xero_contact_id",
                        "owner_team_member_id",
                        "tracking_option_id",
                        "consolidate_lines",
                    ],
                    SPECIAL_CLIENTS,
                ),
            ]
        ),
    }
    generated.defects = chosen
    return generated


def plan(n_lines: int, seed: int = DEFAULT_SEED) -> Generated:
    """Every draw for a source of `n_lines` lines (compact arrays, ~20 bytes a line), no big table yet."""
    rng = np.random.default_rng(seed)
    return _apply_defects(Book(n_lines, rng), rng)


def generate(n_lines: int, seed: int = DEFAULT_SEED) -> tuple[dict[str, pl.DataFrame], dict]:
    """Every source table (text columns, contract order) in memory, and a manifest of what was generated.
    For small sources (tests); `ensure_source` streams big ones to disk."""
    if n_lines <= 0:
        return {t: _empty(t) for t in COLUMNS}, _empty_manifest(seed)
    generated = plan(n_lines, seed)
    invoices, lines = zip(*generated.chunks(), strict=True)
    tables = {**generated.reference, "invoices": pl.concat(invoices), "invoice_lines": pl.concat(lines)}
    return tables, generated.manifest(seed)


def _empty_manifest(seed: int) -> dict:
    return {"lines": 0, "seed": seed, "version": GENERATOR_VERSION, "rows": dict.fromkeys(COLUMNS, 0)}


def write_source(tables: dict[str, pl.DataFrame], folder: Path, manifest: dict) -> Path:
    """Write `<table>.parquet` files and manifest.json into `folder` (replaced atomically by rename)."""
    folder = Path(folder)
    work = folder.with_name(folder.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for table, frame in tables.items():
        frame.select(COLUMNS[table]).write_parquet(work / f"{table}.parquet", statistics=False)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    _replace(work, folder)
    return folder


def _replace(work: Path, folder: Path) -> None:
    if folder.is_symlink():
        folder.unlink()  # a link to a source elsewhere: replace the link, never what it points to
    shutil.rmtree(folder, ignore_errors=True)
    work.rename(folder)


# Typed sources -------------------------------------------------------------------------------------------

TYPED_VERSION = 2  # 2: decimals stored as INT64, as the Parquet spec has it for precision <= 18
# The contract's natural types (CONTRACT.md §2, as a PostgreSQL source holds them); every other column text.
TYPED: dict[str, dict[str, pl.DataType]] = {
    "clients": {"consolidate_lines": pl.Boolean()},
    "invoices": {"issue_date": pl.Date(), "due_date": pl.Date(), "updated_at": pl.Datetime("us", "UTC")},
    "invoice_lines": {
        "position": pl.Int32(),
        "quantity": pl.Decimal(18, 4),
        "unit_amount": pl.Decimal(18, 4),
    },
}
ARROW_TYPES = {
    pl.Boolean(): pa.bool_(),
    pl.Date(): pa.date32(),
    pl.Datetime("us", "UTC"): pa.timestamp("us", tz="UTC"),
    pl.Int32(): pa.int32(),
    pl.Decimal(18, 4): pa.decimal128(18, 4),
}
# Defects whose text value no typed column can hold, and what the typed source has in its place (null).
# "held": the invoice is still held with INVALID_VALUE, for a required value that is missing (the detail
# differs); "not carried": the typed source has no such defect (a null consolidate_lines means false).
TYPED_DEFECTS = {
    "line:quantity=1,5": ("invoice_lines.quantity", "held"),
    "line:unit_amount=12.34567": ("invoice_lines.unit_amount", "held"),
    "invoice:issue_date=2023-02-30": ("invoices.issue_date", "held"),
    "invoice:updated_at=yesterday": ("invoices.updated_at", "held"),
    "line:position=first": ("invoice_lines.position", "held"),
    "client:C9005": ("clients.consolidate_lines", "not carried"),
}
UNTYPABLE = {"1,5", "12.34567", "2023-02-30", "yesterday", "first", "maybe"}
TRUE, FALSE = ["true", "t", "yes", "y", "1"], ["false", "f", "no", "n", "0"]


def _typed(column: str, dtype: pl.DataType) -> pl.Expr:
    """A text column as its type, parsed as the contract parses text (a value that does not parse: null)."""
    text = pl.col(column).str.strip_chars()
    if dtype == pl.Date:
        return text.str.to_date("%Y-%m-%d", strict=False)
    if isinstance(dtype, pl.Datetime):
        return text.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC", strict=False)
    if dtype == pl.Int32:
        whole = text.str.contains(r"^[+-]?[0-9]{1,9}(\.0*)?$")
        return pl.when(whole).then(text.str.replace(r"\.0*$", "")).cast(pl.Int32, strict=False)
    if isinstance(dtype, pl.Decimal):  # a plain cast would round a fifth decimal place away
        return (
            pl.when(text.str.contains(r"^[+-]?[0-9]{1,14}(\.[0-9]{0,4})?$"))
            .then(text)
            .cast(dtype, strict=False)
        )
    if dtype == pl.Boolean:
        lowered = text.str.to_lowercase()
        return pl.when(lowered.is_in(TRUE)).then(True).when(lowered.is_in(FALSE)).then(False)
    raise ValueError(f"no typed form for {dtype}")


def to_typed(table: str, frame: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
    """The frame with the contract's natural types, and per column the text values that became null."""
    columns = TYPED.get(table, {})
    if not columns:
        return frame, {}
    typed = frame.with_columns(_typed(c, d).alias(c) for c, d in columns.items())
    lost: dict[str, dict[str, int]] = {}
    for column in columns:
        gone = frame[column].filter(typed[column].is_null() & (frame[column].str.strip_chars() != ""))
        if gone.len():
            counts = gone.value_counts()
            lost[f"{table}.{column}"] = dict(
                zip(counts[column].to_list(), counts["count"].to_list(), strict=True)
            )
            unexpected = set(lost[f"{table}.{column}"]) - UNTYPABLE
            if unexpected:
                raise ValueError(f"{table}.{column}: {sorted(unexpected)[:5]} do not fit {columns[column]}")
    return typed, lost


def typed_manifest(manifest: dict, lost: dict[str, dict[str, int]], text_folder: str) -> dict:
    """The text source's manifest, with what the typed source holds instead of each untypable defect."""
    defects = {kind: dict(variants) for kind, variants in manifest.get("defects", {}).items()}
    not_carried: dict[str, dict[str, list[str]]] = {}
    held_as_missing: dict[str, str] = {}
    for kind, variants in defects.items():
        for variant in list(variants):
            column, outcome = TYPED_DEFECTS.get(variant, (None, None))
            if outcome == "not carried":
                not_carried.setdefault(kind, {})[variant] = variants.pop(variant)
            elif outcome == "held":
                held_as_missing[variant] = column
    columns = {f"{t}.{c}": str(d) for t, cs in TYPED.items() for c, d in cs.items()}
    return {
        **manifest,
        "defects": defects,
        "typed": {
            "version": TYPED_VERSION,
            "same_rows_as": text_folder,
            "columns": columns,
            "null_instead_of": lost,
            "defects_held_as_missing_value": held_as_missing,
            "defects_not_carried": not_carried,
        },
    }


# Writing a source a chunk at a time ----------------------------------------------------------------------

ROW_GROUP = 131_072
CHUNK_LINES = 1_000_000


class _Sink:
    """One source folder being written: a streaming Parquet writer per table, in `<folder>.partial` until
    `close` renames it into place."""

    def __init__(self, folder: Path, typed: bool) -> None:
        self.folder, self.typed = Path(folder), typed
        self.work = self.folder.with_name(self.folder.name + ".partial")
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.rows: dict[str, int] = dict.fromkeys(COLUMNS, 0)
        self.lost: dict[str, dict[str, int]] = {}

    def schema(self, table: str) -> pa.Schema:
        types = TYPED.get(table, {}) if self.typed else {}
        return pa.schema(
            [(c, ARROW_TYPES[types[c]] if c in types else pa.large_string()) for c in COLUMNS[table]]
        )

    def write(self, table: str, frame: pl.DataFrame) -> None:
        if self.typed:
            frame, lost = to_typed(table, frame)
            for column, values in lost.items():
                for value, count in values.items():
                    seen = self.lost.setdefault(column, {})
                    seen[value] = seen.get(value, 0) + count
        writer = self.writers.get(table)
        if writer is None:
            writer = self.writers[table] = pq.ParquetWriter(
                self.work / f"{table}.parquet",
                self.schema(table),
                compression="zstd",
                write_statistics=False,
                store_decimal_as_integer=True,  # Decimal(18, 4) as INT64, as DuckDB and Spark write it
            )
        writer.write_table(
            frame.select(COLUMNS[table]).to_arrow().cast(writer.schema), row_group_size=ROW_GROUP
        )
        self.rows[table] += frame.height

    def close(self, manifest: dict) -> Path:
        for table in COLUMNS:
            if table not in self.writers:
                self.write(table, _empty(table))
            self.writers[table].close()
        if manifest["rows"] != self.rows:
            raise RuntimeError(f"{self.folder}: wrote {self.rows}, the manifest says {manifest['rows']}")
        if self.typed:
            manifest = typed_manifest(manifest, self.lost, self.folder.name.removesuffix("-typed"))
        (self.work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _replace(self.work, self.folder)
        return self.folder


def write_generated(
    n_lines: int,
    seed: int,
    text: Path | None = None,
    typed: Path | None = None,
    chunk_lines: int = CHUNK_LINES,
) -> None:
    """Generate a source and write it as text (`text`), typed (`typed`) or both, in one pass: the same
    rows in each, never a whole big table in memory."""
    sinks = [_Sink(folder, kind) for folder, kind in ((text, False), (typed, True)) if folder]
    try:
        if n_lines <= 0:
            manifest = _empty_manifest(seed)
        else:
            generated = plan(n_lines, seed)
            for table, frame in generated.reference.items():
                for sink in sinks:
                    sink.write(table, frame)
            for invoices, lines in generated.chunks(chunk_lines):
                for sink in sinks:
                    sink.write("invoices", invoices)
                    sink.write("invoice_lines", lines)
                del invoices, lines
            manifest = generated.manifest(seed)
        for sink in sinks:
            sink.close(manifest)
    finally:
        for sink in sinks:
            for writer in sink.writers.values():
                with suppress(Exception):
                    writer.close()
            shutil.rmtree(sink.work, ignore_errors=True)


def read_manifest(folder: Path) -> dict | None:
    path = Path(folder) / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _current(folder: Path, seed: int, typed: bool) -> bool:
    manifest = read_manifest(folder)
    return bool(
        manifest
        and manifest.get("seed") == seed
        and manifest.get("version") == GENERATOR_VERSION
        and (not typed or (manifest.get("typed") or {}).get("version") == TYPED_VERSION)
    )


def ensure_source(
    size: str,
    seed: int = DEFAULT_SEED,
    root: Path = DATA,
    force: bool = False,
    typed: bool = False,
    chunk_lines: int = CHUNK_LINES,
) -> Path:
    """bench/data/<size>/ (typed: bench/data/<size>-typed/), generated unless it is already there for this
    seed and generator version. A typed source is written in one pass with the text one when that is
    missing too, so that the two hold the same rows."""
    text_folder, typed_folder = Path(root) / size, Path(root) / f"{size}-typed"
    text = force or not _current(text_folder, seed, False)
    write_typed = typed and (force or not _current(typed_folder, seed, True))
    if text or write_typed:
        write_generated(
            size_lines(size),
            seed,
            text=text_folder if text else None,
            typed=typed_folder if write_typed else None,
            chunk_lines=chunk_lines,
        )
    return typed_folder if typed else text_folder


# The nightly: 10,000 invoices changed since the backfill -------------------------------------------------


def make_nightly(source: Path, changed: int, seed: int, full: Path, delta: Path) -> tuple[Path, Path]:
    """Two sources for a nightly run after a backfill of `source`:

    `full`: the whole source again, with `changed` invoices changed since (updated_at after every earlier
    one; 60% of them with a line description revised, 20% with a new reference, 20% drafts approved or
    approved invoices with a revised line); `delta`: the same reference tables with only those invoices and
    their lines, so that a run on an empty warehouse does the same work without the history.
    """
    rng = np.random.default_rng(seed + 1)
    invoices = pl.read_parquet(Path(source) / "invoices.parquet")
    lines = pl.read_parquet(Path(source) / "invoice_lines.parquet")
    latest = invoices.select(
        pl.col("updated_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", strict=False).max()
    ).item()
    first_copy = invoices.with_row_index("_i").unique(["practice_id", "invoice_id"], keep="first")["_i"]
    picked = np.sort(rng.choice(first_copy.to_numpy(), min(changed, len(first_copy)), replace=False))
    how = rng.choice(3, len(picked), p=[0.6, 0.2, 0.2])
    marks = pl.DataFrame(
        {
            "_i": pl.Series(picked, dtype=pl.UInt32),
            "_how": how,
            "_at": pl.Series(
                (np.datetime64(latest, "s") + 86400 + np.arange(len(picked))).astype("datetime64[ms]")
            ),
        }
    )
    invoices = (
        invoices.with_row_index("_i")
        .join(marks, on="_i", how="left")
        .with_columns(
            updated_at=pl.when(pl.col("_at").is_not_null())
            .then(pl.col("_at").dt.to_string("%Y-%m-%dT%H:%M:%SZ"))
            .otherwise(pl.col("updated_at")),
            reference=pl.when(pl.col("_how") == 1).then(pl.lit("REVISED")).otherwise(pl.col("reference")),
            status=pl.when((pl.col("_how") == 2) & (pl.col("status") == "draft"))
            .then(pl.lit("approved"))
            .otherwise(pl.col("status")),
        )
    )
    revised = invoices.filter(pl.col("_how").is_in([0, 2])).select("practice_id", "invoice_id").unique()
    changed_keys = invoices.filter(pl.col("_how").is_not_null()).select("practice_id", "invoice_id").unique()
    invoices = invoices.drop("_i", "_how", "_at")
    lines = (
        lines.join(revised.with_columns(_rev=pl.lit(True)), on=["practice_id", "invoice_id"], how="left")
        .with_columns(
            description=pl.when(pl.col("_rev"))
            .then(pl.col("description") + " (revised)")
            .otherwise(pl.col("description"))
        )
        .drop("_rev")
    )
    manifest = dict(read_manifest(source) or {})
    manifest.update({"nightly_of": str(source), "changed_invoices": changed_keys.height})
    for target, only_changed in ((full, False), (delta, True)):
        tables = {
            t: pl.read_parquet(Path(source) / f"{t}.parquet")
            for t in COLUMNS
            if t not in ("invoices", "invoice_lines")
        }
        tables["invoices"] = (
            invoices.join(changed_keys, on=["practice_id", "invoice_id"], how="semi")
            if only_changed
            else invoices
        )
        tables["invoice_lines"] = (
            lines.join(changed_keys, on=["practice_id", "invoice_id"], how="semi") if only_changed else lines
        )
        manifest["rows"] = {t: f.height for t, f in tables.items()}
        write_source(tables, target, manifest)
    return full, delta


def ensure_nightly(
    size: str, seed: int = DEFAULT_SEED, changed: int = 10_000, root: Path = DATA
) -> tuple[Path, Path]:
    source = ensure_source(size, seed, root)
    full, delta = Path(root) / f"{size}-nightly", Path(root) / f"{size}-nightly-only"
    want = {"seed": seed, "version": GENERATOR_VERSION}
    ok = all(
        (m := read_manifest(f)) and all(m.get(k) == v for k, v in want.items()) and m.get("changed_invoices")
        for f in (full, delta)
    )
    if not ok:
        make_nightly(source, changed, seed, full, delta)
    return full, delta


def _peak_rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="+", help="sizes such as 10k, 1M, 10M (0 for an empty source)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--root", type=Path, default=DATA)
    parser.add_argument("--force", action="store_true", help="regenerate even when the folder is there")
    parser.add_argument(
        "--typed",
        action="store_true",
        help="write <size>-typed/ (the contract's natural types), with <size>/ in the same pass if missing",
    )
    parser.add_argument(
        "--chunk-lines", type=int, default=CHUNK_LINES, help="lines built and written at a time (default 1M)"
    )
    parser.add_argument(
        "--nightly", type=int, help="also the two nightly sources with this many invoices changed"
    )
    args = parser.parse_args(argv)
    for size in args.sizes:
        if args.nightly:
            full, delta = ensure_nightly(size, args.seed, args.nightly, args.root)
            print(f"{full}, {delta}")
            continue
        started = time.perf_counter()
        folder = ensure_source(
            size, args.seed, args.root, args.force, typed=args.typed, chunk_lines=args.chunk_lines
        )
        rows = (read_manifest(folder) or {}).get("rows", {})
        print(
            f"{folder}: {rows} ({time.perf_counter() - started:.1f}s; "
            f"this process's peak RSS so far {_peak_rss_mib():,.0f} MiB)"
        )


if __name__ == "__main__":
    main()
