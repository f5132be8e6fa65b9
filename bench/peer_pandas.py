"""The pandas peer: the same per-line result as peer_duckdb.sql, written the way a pandas user would.

Vectorised throughout (merges, masks, groupby), no row loops. Money is exact: quantities and unit amounts
are parsed into integers of ten-thousandths, line amounts are integer cents (rounded half away from zero),
with Python's Decimal only for the rare product that would not fit in 64 bits.

Input: one DataFrame per table, every column text plus `_row` (the 1-based data row), in file order.
Output: one row per line of every approved invoice (or invoice whose status does not parse), plus one row
with a null line_id per such invoice without lines; slots, `line_amount_cents`, invoice_state, hold_codes.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd

INVOICE = ["practice_id", "invoice_id"]
CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BYR
    BZD CAD CDF CHF CLF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EEK EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF
    KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LVL LYD MAD MDL MGA MKD MMK MNT MOP MRO MRU MUR MVR MWK
    MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD
    SCR SDG SEK SGD SHP SKK SLE SLL SOS SRD STD STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH
    UGX USD UYU UZS VEF VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZMK ZWD
    """.split()
)
STATUSES = ("ACTIVE", "ARCHIVED", "DELETED")

# The contract's tables (§2): kind of each column. key/text are required text; optional may be empty.
SPEC: dict[str, dict[str, object]] = {
    "practices": {
        "practice_id": "key",
        "name": "text",
        "ledger": ("lower", ("xero", "quickbooks", "sage", "freeagent", "none")),
    },
    "tracking_categories": {
        "practice_id": "key",
        "tracking_category_id": "key",
        "name": "name",
        "status": ("upper", STATUSES),
    },
    "tracking_options": {
        "practice_id": "key",
        "tracking_option_id": "key",
        "tracking_category_id": "text",
        "name": "name",
        "status": ("upper", STATUSES),
    },
    "team_members": {
        "practice_id": "key",
        "team_member_id": "key",
        "name": "text",
        "tracking_option_id": "optional",
    },
    "service_templates": {
        "practice_id": "key",
        "service_template_id": "key",
        "name": "text",
        "tracking_option_id": "optional",
        "account_code": "optional",
        "tax_type": "optional",
    },
    "clients": {
        "practice_id": "key",
        "client_id": "key",
        "name": "name",
        "xero_contact_id": "guid",
        "owner_team_member_id": "optional",
        "tracking_option_id": "optional",
        "consolidate_lines": "bool",
    },
    "invoices": {
        "practice_id": "key",
        "invoice_id": "key",
        "client_id": "text",
        "invoice_number": "text",
        "issue_date": "date",
        "due_date": "date",
        "currency": "currency",
        "reference": "optional",
        "status": ("lower", ("draft", "approved", "void")),
        "updated_at": "timestamp",
    },
    "invoice_lines": {
        "practice_id": "key",
        "invoice_id": "key",
        "line_id": "key",
        "position": "int",
        "line_type": ("lower", ("service", "alignment_fee", "adhoc")),
        "service_template_id": "optional",
        "description": "text",
        "quantity": "decimal",
        "unit_amount": "decimal",
        "account_code": "optional",
        "tax_type": "optional",
    },
}
KEYS = {
    "practices": ["practice_id"],
    "tracking_categories": ["practice_id", "tracking_category_id"],
    "tracking_options": ["practice_id", "tracking_option_id"],
    "team_members": ["practice_id", "team_member_id"],
    "service_templates": ["practice_id", "service_template_id"],
    "clients": ["practice_id", "client_id"],
    "invoices": ["practice_id", "invoice_id"],
    "invoice_lines": ["practice_id", "invoice_id", "line_id"],
}
# The key a table's problems are held against (a line's problem holds its invoice).
PROBLEM_KEY = {t: k[-1] for t, k in KEYS.items()} | {"invoice_lines": "invoice_id"}
DECIMAL = r"[+-]?\d{1,14}(?:\.\d{0,4})?"
WHOLE = r"[+-]?\d{1,9}(?:\.0*)?"  # 3 and 3.0, never 3.5
DAY = r"^(\d{4}-\d{2}-\d{2})(?:[T ]00:00(?::00(?:\.0*)?)?Z?)?$"  # a date, or a date at midnight
FORMULA = r"^[=+\-@\t\r]"  # a name a spreadsheet would run as a formula: Xero matches names exactly
GUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"  # a Xero ContactID
MAX_LINE_AMOUNT = 10**12 * 10**8  # quantity x unit amount, in units of 1e-8
TRUE, FALSE = ("true", "t", "yes", "y", "1"), ("false", "f", "no", "n", "0")


# 1. Parse -------------------------------------------------------------------------------------------------


def _true(flags: pd.Series) -> pd.Series:
    """True where True; False where False or missing (after a left merge)."""
    return flags.astype("boolean").fillna(False).astype(bool)


def _missing(raw: pd.Series) -> pd.Series:
    return raw.isna() | (raw.str.strip() == "")


def _decimal(raw: pd.Series) -> pd.Series:
    """Text -> Int64 ten-thousandths (<NA> when it does not parse)."""
    text = raw.str.strip()
    ok = text.str.fullmatch(DECIMAL).fillna(False).astype(bool)
    parts = text.where(ok).str.extract(r"^([+-]?)(\d+)(?:\.(\d*))?$")
    whole = parts[1].astype("Int64")
    frac = parts[2].fillna("").str.ljust(4, "0").where(ok).astype("Int64")
    sign = pd.Series(np.where(parts[0] == "-", -1, 1), index=raw.index)
    return sign * (whole * 10_000 + frac)


def _parse(raw: pd.Series, kind) -> pd.Series:
    text = raw.str.strip()
    if isinstance(kind, tuple):
        case, values = kind
        canon = text.str.lower() if case == "lower" else text.str.upper()
        return canon.where(canon.isin(values))
    if kind == "currency":
        upper = text.str.upper()
        return upper.where(upper.isin(CURRENCIES))
    if kind == "date":
        day = pd.to_datetime(text.str.extract(DAY)[0], format="%Y-%m-%d", errors="coerce")
        return day.where((day >= "1900-01-01") & (day <= "2099-12-31"))
    if kind == "timestamp":
        moment = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        return moment.where(
            (moment >= pd.Timestamp("1900-01-01", tz="UTC")) & (moment < pd.Timestamp("2100-01-01", tz="UTC"))
        )
    if kind == "int":
        ok = text.str.fullmatch(WHOLE).fillna(False).astype(bool)
        return pd.to_numeric(text.where(ok).str.replace(r"\.0*$", "", regex=True)).astype("Int64")
    if kind == "decimal":
        return _decimal(raw)
    if kind == "guid":
        return text.where(text.str.fullmatch(GUID).fillna(False).astype(bool))
    if kind == "bool":
        lower = text.str.lower()
        return pd.Series(
            np.select([lower.isin(TRUE), lower.isin(FALSE)], [True, False], None), index=raw.index
        )
    raise ValueError(kind)


def check(table: str, raw: pd.DataFrame) -> pd.DataFrame:
    """Typed columns, `bad` (a value that does not parse, or a required one missing) and `dup` (repeated key)."""
    out = raw.copy(deep=False)
    bad = pd.Series(False, index=raw.index)
    for column, kind in SPEC[table].items():
        if kind in ("key", "text", "name", "optional"):
            blank = _missing(raw[column])
            out[column] = raw[column].where(~blank)  # a blank field is null
            if kind != "optional":
                bad |= blank
            if kind == "name":
                bad |= raw[column].str.contains(FORMULA).fillna(False).astype(bool)
        else:
            typed = _parse(raw[column], kind)
            optional = kind in ("bool", "guid")  # left out: null, no problem
            bad |= (~_missing(raw[column]) & typed.isna()) if optional else typed.isna()
            out[column] = typed
    if table == "invoice_lines":  # a line amount Xero could not take (and a total that could overflow)
        rough = out["quantity"].astype("float64").abs() * out["unit_amount"].astype("float64").abs()
        near = (rough >= MAX_LINE_AMOUNT * 0.99).fillna(False).astype(bool)
        if near.any():  # exact integers for the few near or over the limit
            exact = out.loc[near, "quantity"].astype(object) * out.loc[near, "unit_amount"].astype(object)
            bad[near] |= (exact.abs() >= MAX_LINE_AMOUNT).astype(bool)
    keys = KEYS[table]
    identified = out[keys].notna().all(axis=1)
    out["bad"] = bad
    out["dup"] = out.duplicated(keys, keep=False) & identified
    out["identified"] = identified
    if table == "invoices":  # a repeated invoice any copy of which is exported: kept, status unknown
        exportable = (out["status"] == "approved") | out["status"].isna()
        any_exportable = exportable.groupby([out["practice_id"], out["invoice_id"]], dropna=False).transform(
            "any"
        )
        out["status"] = out["status"].where(~(out["dup"] & any_exportable))
    return out


def first_rows(checked: pd.DataFrame, table: str) -> pd.DataFrame:
    """The first row of each key (rows come in file order); rows missing a key part are left out."""
    return checked[checked["identified"]].drop_duplicates(KEYS[table], keep="first")


def problems(checked: pd.DataFrame, table: str) -> pd.DataFrame:
    """(practice_id, key) -> invalid, duplicate: the keys whose rows do not parse or repeat."""
    key = PROBLEM_KEY[table]
    rows = checked[(checked["bad"] | checked["dup"]) & checked["practice_id"].notna() & checked[key].notna()]
    by = list(dict.fromkeys(["practice_id", key]))
    found = rows.groupby(by, as_index=False).agg(invalid=("bad", "any"), duplicate=("dup", "any"))
    return found.assign(key=found[key])[["practice_id", "key", "invalid", "duplicate"]]


def _flag(frame: pd.DataFrame, found: pd.DataFrame, on: pd.Series | str, prefix: str) -> pd.DataFrame:
    """Left-join a problems table on (practice_id, `on`); adds <prefix>_invalid and <prefix>_duplicate."""
    keyed = found.rename(
        columns={"key": "_key", "invalid": f"{prefix}_invalid", "duplicate": f"{prefix}_duplicate"}
    )
    left = frame.assign(_key=frame[on] if isinstance(on, str) else on)
    merged = left.merge(keyed, on=["practice_id", "_key"], how="left", validate="m:1").drop(columns="_key")
    for column in (f"{prefix}_invalid", f"{prefix}_duplicate"):
        merged[column] = _true(merged[column])
    merged.index = frame.index
    return merged


# 2. Resolve -----------------------------------------------------------------------------------------------


def _line_amount_cents(quantity: pd.Series, unit_amount: pd.Series) -> pd.Series:
    """round(quantity × unit_amount, 2), half away from zero, as Int64 cents; <NA> beyond decimal(18, 2)."""
    fits = ((quantity.abs() < 3_000_000_000) & (unit_amount.abs() < 3_000_000_000)).fillna(True).astype(bool)
    product = quantity.where(fits) * unit_amount.where(fits)  # in units of 1e-8
    size = (product.abs() + 500_000) // 1_000_000
    cents = size.where(product >= 0, -size)
    big = ~fits & quantity.notna() & unit_amount.notna()
    if big.any():  # rare: exact decimals for the products that would overflow 64 bits
        exact = [
            (Decimal(int(q)) * Decimal(int(u)) / Decimal(10**6)).quantize(Decimal(1), ROUND_HALF_UP)
            for q, u in zip(quantity[big], unit_amount[big], strict=True)
        ]
        cents = cents.astype(object)
        cents[big] = [int(c) if abs(c) < 10**18 else pd.NA for c in exact]
    return cents.astype("Int64")


def resolve(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    checked = {t: check(t, raw[t]) for t in SPEC}
    one = {t: first_rows(checked[t], t) for t in SPEC}
    found = {t: problems(checked[t], t) for t in SPEC}

    invoices = one["invoices"]
    candidates = invoices.loc[
        (invoices["status"] == "approved") | invoices["status"].isna(),
        ["practice_id", "invoice_id", "client_id", "invoice_number"],
    ]
    practices = one["practices"][["practice_id", "ledger"]].assign(practice_found=True)
    clients = one["clients"][
        [
            "practice_id",
            "client_id",
            "name",
            "xero_contact_id",
            "owner_team_member_id",
            "tracking_option_id",
            "consolidate_lines",
        ]
    ].rename(columns={"name": "client_name", "tracking_option_id": "client_option_id"})
    team = one["team_members"][["practice_id", "team_member_id", "tracking_option_id"]].rename(
        columns={"team_member_id": "owner_team_member_id", "tracking_option_id": "owner_option_id"}
    )
    templates = one["service_templates"][
        ["practice_id", "service_template_id", "tracking_option_id", "account_code", "tax_type"]
    ].rename(
        columns={
            "tracking_option_id": "template_option_id",
            "account_code": "template_account",
            "tax_type": "template_tax",
        }
    )
    names = (
        one["tracking_options"][
            ["practice_id", "tracking_option_id", "tracking_category_id", "name", "status"]
        ]
        .rename(columns={"name": "option_name", "status": "option_status"})
        .merge(
            one["tracking_categories"][["practice_id", "tracking_category_id", "name", "status"]].rename(
                columns={"name": "category_name", "status": "category_status"}
            ),
            on=["practice_id", "tracking_category_id"],
            how="left",
            validate="m:1",
        )
    )

    # heads: one row per invoice to resolve
    heads = candidates.merge(practices, on="practice_id", how="left", validate="m:1").merge(
        clients, on=["practice_id", "client_id"], how="left", validate="m:1", indicator="_client"
    )
    heads["practice_found"] = _true(heads["practice_found"])
    heads["client_found"] = heads["_client"] == "both"
    heads["is_xero"] = heads["ledger"] == "xero"
    heads["not_xero"] = heads["ledger"].notna() & (heads["ledger"] != "xero")
    heads["consolidated"] = heads["is_xero"] & _true(heads["consolidate_lines"])
    heads = heads.drop(columns=["_client", "consolidate_lines"])

    lines = one["invoice_lines"][
        [
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
        ]
    ].merge(heads, on=INVOICE, how="inner", validate="m:1")
    lines = lines.merge(
        team, on=["practice_id", "owner_team_member_id"], how="left", validate="m:1", indicator="_owner"
    )
    lines["owner_found"] = lines.pop("_owner") == "both"
    lines = lines.merge(
        templates, on=["practice_id", "service_template_id"], how="left", validate="m:1", indicator="_tpl"
    )
    lines["template_found"] = lines.pop("_tpl") == "both"
    lines["account_code"] = lines["account_code"].fillna(lines.pop("template_account"))
    lines["tax_type"] = lines["tax_type"].fillna(lines.pop("template_tax"))

    # R6: the first line of a consolidated invoice (lowest position, then line_id) is the one sent
    merged_lines = lines[lines["consolidated"]].sort_values(
        ["practice_id", "invoice_id", "position", "line_id"], na_position="last"
    )
    first = merged_lines.index[~merged_lines.duplicated(INVOICE, keep="first")]
    lines["sends_line"] = ~lines["consolidated"] | lines.index.isin(first)

    # R1 slot 1: the client's option. R2-R4 slot 2. R7: nothing outside Xero.
    xero = lines["is_xero"]
    lines["slot1_id"] = lines["client_option_id"].where(xero)
    from_service = xero & (lines["line_type"] == "service") & lines["template_option_id"].notna()
    from_owner = xero & lines["line_type"].notna() & ~from_service & lines["owner_option_id"].notna()
    lines["tracking1_source"] = pd.Series(
        np.where(lines["slot1_id"].notna(), "client", None), index=lines.index, dtype="str"
    )
    lines["tracking2_source"] = pd.Series(
        np.select([from_service, from_owner], ["service", "owner"], None), index=lines.index, dtype="str"
    )
    lines["slot2_id"] = lines["template_option_id"].where(
        from_service, lines["owner_option_id"].where(from_owner)
    )
    for slot in (1, 2):
        lines = lines.merge(
            names.rename(
                columns={
                    "tracking_option_id": f"slot{slot}_id",
                    "tracking_category_id": f"category{slot}_id",
                    "option_name": f"tracking{slot}_option",
                    "category_name": f"tracking{slot}_category",
                    "option_status": f"option{slot}_status",
                    "category_status": f"category{slot}_status",
                }
            ),
            on=["practice_id", f"slot{slot}_id"],
            how="left",
            validate="m:1",
            indicator=f"_o{slot}",
        )
        lines[f"option{slot}_found"] = lines.pop(f"_o{slot}") == "both"
    lines["from_owner"] = lines["line_type"].notna() & ~(
        (lines["line_type"] == "service") & lines["template_option_id"].notna()
    )
    lines["sends1"] = xero & lines["sends_line"] & lines["slot1_id"].notna()
    lines["sends2"] = xero & ~lines["consolidated"] & lines["slot2_id"].notna()

    # 3. Checks on each line
    consolidated = lines["consolidated"]
    lines["same_category"] = (lines["category1_id"] == lines["category2_id"]).fillna(False) & ~consolidated
    unknown, archived = pd.Series(False, index=lines.index), pd.Series(False, index=lines.index)
    over_limit = pd.Series(False, index=lines.index)
    for slot in (1, 2):
        sends, found_ = lines[f"sends{slot}"], lines[f"option{slot}_found"]
        unknown |= sends & (~found_ | lines[f"tracking{slot}_category"].isna())
        inactive = (lines[f"option{slot}_status"] != "ACTIVE") & lines[f"option{slot}_status"].notna()
        inactive |= (lines[f"category{slot}_status"] != "ACTIVE") & lines[f"category{slot}_status"].notna()
        archived |= sends & found_ & lines[f"tracking{slot}_category"].notna() & inactive
        over_limit |= sends & (
            (lines[f"tracking{slot}_category"].str.len() > 100).fillna(False)
            | (lines[f"tracking{slot}_option"].str.len() > 100).fillna(False)
        )
    lines["unknown_option"], lines["archived_option"] = unknown, archived
    template_id = lines["service_template_id"]
    lines["unknown_service"] = ((lines["line_type"] == "service") & template_id.isna()) | (
        template_id.notna() & ~lines["template_found"]
    )
    lines["unknown_team_member"] = (
        ~consolidated
        & lines["from_owner"]
        & lines["owner_team_member_id"].notna()
        & ~lines["owner_found"]
        & lines["client_found"]
    )
    # an unknown or missing template is UNKNOWN_SERVICE alone: what it would give is not known
    lookable = lines["template_found"] | (template_id.isna() & (lines["line_type"] != "service"))
    lines["missing_account_code"] = lines["sends_line"] & lookable & lines["account_code"].isna()
    lines["missing_tax_type"] = (lines["sends_line"] | consolidated) & lookable & lines["tax_type"].isna()
    over_limit |= (lines["invoice_number"].str.len() > 255).fillna(False)
    over_limit |= lines["xero_contact_id"].isna() & (lines["client_name"].str.len() > 255).fillna(False)
    over_limit |= (lines["description"].str.len() > 4000).fillna(False)
    over_limit &= xero & lines["sends_line"]
    # problems of the rows each line depends on: its template, the owner and options and categories it sends
    owner_used = xero & ~consolidated & lines["from_owner"]
    lines = _flag(lines, found["service_templates"], "service_template_id", "tpl")
    lines = _flag(lines, found["team_members"], lines["owner_team_member_id"].where(owner_used), "own")
    lines = _flag(lines, found["tracking_options"], lines["slot1_id"].where(lines["sends1"]), "opt1")
    lines = _flag(lines, found["tracking_options"], lines["slot2_id"].where(lines["sends2"]), "opt2")
    lines = _flag(lines, found["tracking_categories"], lines["category1_id"].where(lines["sends1"]), "cat1")
    lines = _flag(lines, found["tracking_categories"], lines["category2_id"].where(lines["sends2"]), "cat2")
    sources = ("tpl", "own", "opt1", "opt2", "cat1", "cat2")
    lines["invalid_value"] = over_limit | np.logical_or.reduce([lines[f"{s}_invalid"] for s in sources])
    lines["duplicate_key"] = np.logical_or.reduce([lines[f"{s}_duplicate"] for s in sources])
    lines["line_amount_cents"] = _line_amount_cents(lines["quantity"], lines["unit_amount"])

    flags = [
        "same_category",
        "unknown_option",
        "archived_option",
        "unknown_service",
        "unknown_team_member",
        "missing_account_code",
        "missing_tax_type",
        "invalid_value",
        "duplicate_key",
    ]
    per_invoice = lines.groupby(INVOICE, as_index=False).agg(
        line_count=("line_id", "size"), **{f: (f, "any") for f in flags}
    )
    taxes = (
        lines[consolidated & lines["tax_type"].notna()].groupby(INVOICE, as_index=False)["tax_type"].nunique()
    )
    taxes["tax_mismatch"] = taxes.pop("tax_type") > 1
    # one consolidated amount too large for its one line's unit amount, decimal(18, 4)
    totals = (
        lines[consolidated]
        .groupby(INVOICE, as_index=False)
        .agg(
            total=("line_amount_cents", "sum"),
            amounts=("line_amount_cents", "count"),
            lines=("line_amount_cents", "size"),
        )
    )  # each line is under 10^14 cents, so an int64 sum is exact below 92,000 lines per invoice
    totals["total_overflow"] = (totals["amounts"] == totals["lines"]) & (totals["total"].abs() >= 10**16)
    taxes = taxes.merge(totals[[*INVOICE, "total_overflow"]], on=INVOICE, how="outer")

    # 4. Hold or not (R9), per invoice
    heads = heads.merge(per_invoice, on=INVOICE, how="left", validate="1:1").merge(
        taxes, on=INVOICE, how="left", validate="1:1"
    )
    for flag in [*flags, "tax_mismatch", "total_overflow"]:
        heads[flag] = _true(heads[flag])
    heads = _flag(heads, found["invoices"], "invoice_id", "inv")
    heads = _flag(heads, found["invoice_lines"], "invoice_id", "lin")
    heads = _flag(heads, found["practices"], "practice_id", "prc")
    heads = _flag(heads, found["clients"], "client_id", "cli")
    owners = ("inv", "lin", "prc", "cli")
    codes = {
        "ARCHIVED_OPTION": heads["archived_option"],
        "CONSOLIDATION_TAX_MISMATCH": heads["tax_mismatch"],
        "DUPLICATE_KEY": heads["duplicate_key"]
        | np.logical_or.reduce([heads[f"{o}_duplicate"] for o in owners]),
        "EMPTY_INVOICE": heads["is_xero"] & heads["line_count"].fillna(0).eq(0),
        "INVALID_VALUE": ~heads["practice_found"]
        | heads["invalid_value"]
        | heads["total_overflow"]
        | np.logical_or.reduce([heads[f"{o}_invalid"] for o in owners]),
        "MISSING_ACCOUNT_CODE": heads["missing_account_code"],
        "MISSING_TAX_TYPE": heads["missing_tax_type"],
        "SAME_CATEGORY": heads["same_category"],
        "UNKNOWN_CLIENT": heads["is_xero"] & ~heads["client_found"] & heads["client_id"].notna(),
        "UNKNOWN_OPTION": heads["unknown_option"],
        "UNKNOWN_SERVICE": heads["unknown_service"],
        "UNKNOWN_TEAM_MEMBER": heads["unknown_team_member"],
    }
    text = pd.Series("", index=heads.index, dtype="str")
    for code in sorted(codes):
        text = text + pd.Series(np.where(codes[code], code + ",", ""), index=heads.index, dtype="str")
    text = text.str.rstrip(",").where(~heads["not_xero"], "")
    state = np.select([heads["not_xero"], text != ""], ["not_xero", "held"], "ready")
    states = heads[INVOICE].assign(
        invoice_state=pd.Series(state, index=heads.index, dtype="str"), hold_codes=text
    )

    out = lines[
        [
            "practice_id",
            "invoice_id",
            "line_id",
            "tracking1_category",
            "tracking1_option",
            "tracking1_source",
            "tracking2_category",
            "tracking2_option",
            "tracking2_source",
            "line_amount_cents",
        ]
    ]
    return states.merge(out, on=INVOICE, how="left", validate="1:m")


# Loading --------------------------------------------------------------------------------------------------


def read_source(folder: Path) -> dict[str, pd.DataFrame]:
    """Every table as text columns (pandas' own string dtype) with `_row`, from Parquet or CSV."""
    frames = {}
    for table, spec in SPEC.items():
        parquet, csv = Path(folder) / f"{table}.parquet", Path(folder) / f"{table}.csv"
        if parquet.is_file():
            frame = pd.read_parquet(parquet, columns=list(spec))
        else:
            frame = pd.read_csv(csv, dtype="str", keep_default_na=False, na_values=[""], encoding="utf-8-sig")
            frame = frame[list(spec)]
        frame = frame.astype("str") if not all(frame.dtypes == "str") else frame
        frame["_row"] = np.arange(1, len(frame) + 1)
        frames[table] = frame
    return frames
