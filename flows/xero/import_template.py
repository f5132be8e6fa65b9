"""What Xero's sales-invoice importer needs of a practice's CSV files, beyond the template's header.

Xero's importer reads `*InvoiceDate` and `*DueDate` in the organisation's regional format (DD/MM/YYYY for
UK, AU and NZ organisations, MM/DD/YYYY for US ones) and `*TaxType` as the tax rate's display name as the
organisation shows it (`20% (VAT on Income)`), not the API's code (`OUTPUT2`), which is what the JSON
bodies carry. So each practice has:

- a date format for its CSV files (default DD/MM/YYYY, `TRACKLINE_CSV_DATE_FORMAT`), and
- a map of tax type code -> display name: read from its own Xero organisation (`GET /TaxRates`) when the
  practice has a connection (contract section 6); else from the mapping the practice gives in the CSV
  settings file (`TRACKLINE_XERO_CSV_SETTINGS`, default data/xero_csv.json), over Xero's standard names for
  its region (UK, AU or NZ; default UK, `TRACKLINE_CSV_TAX_REGION`).

A code that has no name for the practice: that practice's CSV files are not written (Xero would refuse or
mis-tax every such line), with one warning naming the code. Its JSON bodies are written as ever.

The settings file, keyed by practice_id (every member optional):

    {"harbour": {"date_format": "DD/MM/YYYY", "region": "UK",
                 "tax_rates": {"OUTPUT2": "20% (VAT on Income)", "TAX001": "Books (0%)"}}}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

# The template's date formats, as Xero names them, and as strftime writes them.
DATE_FORMATS = {"DD/MM/YYYY": "%d/%m/%Y", "MM/DD/YYYY": "%m/%d/%Y"}
REGIONS = ("UK", "AU", "NZ")

# Xero's standard tax rates of a new organisation, code -> display name, per region (current rates only).
# UK: Xero Central, "Default tax rates in Xero" (https://help.xero.com/uk/Tax-SetDefaults) lists the names;
#     their codes as in "How your default tax rate works" (https://eswap.global/help/how-your-default-tax-rate-works/,
#     the GB table) and Zynk's GET /TaxRates export (https://docs.zynk.com/workflow/documentation/xero/export-tax-rates.html:
#     OUTPUT2 "20% (VAT on Income)", INPUT2 "20% (VAT on Expenses)", NONE "No VAT").
# AU and NZ: the AU and NZ tables of the same eswap page and of TradeGecko's "Xero Default Tax Rate"
#     (https://support.tradegecko.com/hc/en-us/articles/202544653-Xero-Default-Tax-Rate), and OData Link's
#     "Xero Accounting Field: TaxTypes" (https://help.odatalink.com/index.php?title=Xero_Accounting_Field%3A_TaxTypes).
#     NZ's 12.5% OUTPUT/INPUT rates are pre-2010 and left out.
STANDARD_TAX_RATE_NAMES: dict[str, dict[str, str]] = {
    "UK": {
        "OUTPUT2": "20% (VAT on Income)",
        "INPUT2": "20% (VAT on Expenses)",
        "RROUTPUT": "5% (VAT on Income)",
        "RRINPUT": "5% (VAT on Expenses)",
        "ZERORATEDOUTPUT": "Zero Rated Income",
        "ZERORATEDINPUT": "Zero Rated Expenses",
        "EXEMPTOUTPUT": "Exempt Income",
        "EXEMPTINPUT": "Exempt Expenses",
        "NONE": "No VAT",
        "CAPEXOUTPUT2": "20% (VAT on Capital Sales)",
        "CAPEXINPUT2": "20% (VAT on Capital Purchases)",
        "GSTONIMPORTS": "VAT on Imports",
        "ECZROUTPUT": "Zero Rated EC Goods Income",
        "ECZROUTPUTSERVICES": "Zero Rated EC Services",
        "ECZRINPUT": "Zero Rated EC Expenses",
    },
    "AU": {
        "OUTPUT": "GST on Income",
        "INPUT": "GST on Expenses",
        "EXEMPTOUTPUT": "GST Free Income",
        "EXEMPTEXPENSES": "GST Free Expenses",
        "EXEMPTEXPORT": "GST Free Exports",
        "EXEMPTCAPITAL": "GST Free Capital",
        "CAPEXINPUT": "GST on Capital",
        "GSTONIMPORTS": "GST on Imports",
        "GSTONCAPIMPORTS": "GST on Capital Imports",
        "INPUTTAXED": "Input Taxed",
        "BASEXCLUDED": "BAS Excluded",
    },
    "NZ": {
        "OUTPUT2": "15% GST on Income",
        "INPUT2": "15% GST on Expenses",
        "ZERORATED": "Zero Rated",
        "GSTONIMPORTS": "GST on Imports",
        "NONE": "No GST",
    },
}


class CsvSettingsError(Exception):
    """The CSV settings file cannot be used: the run stops, in one line, before anything changes."""


@dataclass(frozen=True)
class PracticeTemplate:
    """How one practice's CSV files write dates and tax types, and where its tax names came from."""

    date_format: str  # a key of DATE_FORMATS
    tax_names: Mapping[str, str]
    named_by: (
        str  # "its Xero organisation (GET /TaxRates)", "data/xero_csv.json and Xero's standard UK rates"
    )

    @property
    def strftime(self) -> str:
        return DATE_FORMATS[self.date_format]


@dataclass(frozen=True)
class CsvTemplates:
    """Every practice's template; a practice not listed gets `default`."""

    default: PracticeTemplate
    by_practice: Mapping[str, PracticeTemplate] = field(default_factory=dict)

    def of(self, practice_id: str) -> PracticeTemplate:
        return self.by_practice.get(practice_id, self.default)

    def tax_names(self, practice_ids: Iterable[str]) -> pl.DataFrame:
        """practice_id, tax_type, tax_name of the given practices (to join on lines)."""
        rows = [(p, code, name) for p in set(practice_ids) for code, name in self.of(p).tax_names.items()]
        return pl.DataFrame(
            rows, schema={"practice_id": pl.Utf8, "tax_type": pl.Utf8, "tax_name": pl.Utf8}, orient="row"
        )

    def date_formats(self, practice_ids: Iterable[str]) -> dict[str, list[str]]:
        """strftime format -> the given practices that use it."""
        out: dict[str, list[str]] = {}
        for p in sorted(set(practice_ids)):
            out.setdefault(self.of(p).strftime, []).append(p)
        return out


def standard_templates(date_format: str = "DD/MM/YYYY", region: str = "UK") -> CsvTemplates:
    """Every practice on the given date format and Xero's standard names of the region."""
    return CsvTemplates(
        PracticeTemplate(date_format, STANDARD_TAX_RATE_NAMES[region], f"Xero's standard {region} tax rates")
    )


def read_csv_settings(path: Path) -> dict[str, dict]:
    """The CSV settings file, checked; {} when there is none."""
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise CsvSettingsError(
            f"{path}: not a JSON object of CSV settings ({type(problem).__name__})"
        ) from None
    if not isinstance(document, dict):
        raise CsvSettingsError(f"{path}: not a JSON object keyed by practice_id")
    for practice_id, entry in document.items():
        where = f"{path}: practice {practice_id!r}"
        if not isinstance(entry, dict):
            raise CsvSettingsError(f"{where}: not an object of date_format, region, tax_rates")
        unknown = sorted(set(entry) - {"date_format", "region", "tax_rates"})
        if unknown:
            raise CsvSettingsError(f"{where}: unknown member {unknown[0]!r} (date_format, region, tax_rates)")
        if "date_format" in entry and entry["date_format"] not in DATE_FORMATS:
            raise CsvSettingsError(
                f"{where}: date_format {entry['date_format']!r} is not one of {', '.join(DATE_FORMATS)}"
            )
        if "region" in entry and entry["region"] not in REGIONS:
            raise CsvSettingsError(f"{where}: region {entry['region']!r} is not one of {', '.join(REGIONS)}")
        rates = entry.get("tax_rates", {})
        if not isinstance(rates, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and k and v.strip() for k, v in rates.items()
        ):
            raise CsvSettingsError(f"{where}: tax_rates must map each tax type code to its display name")
    return document


def csv_templates(
    path: Path,
    entries: Mapping[str, dict],
    practice_ids: Iterable[str],
    default_date_format: str,
    default_region: str,
    from_xero: Mapping[str, Mapping[str, str]],
) -> CsvTemplates:
    """Each practice's template: its date format (the file's, else the default), and its tax names: its
    Xero organisation's when read (`from_xero`), else the file's mapping over its region's standard names."""
    default = standard_templates(default_date_format, default_region).default
    by_practice = {}
    for practice_id in set(practice_ids):
        entry = entries.get(practice_id, {})
        date_format = entry.get("date_format", default_date_format)
        if practice_id in from_xero:
            names, said = dict(from_xero[practice_id]), "its Xero organisation (GET /TaxRates)"
        else:
            region = entry.get("region", default_region)
            names = {**STANDARD_TAX_RATE_NAMES[region], **entry.get("tax_rates", {})}
            said = f"Xero's standard {region} tax rates"
            if entry.get("tax_rates"):
                said = f"{path} and {said}"
        by_practice[practice_id] = PracticeTemplate(date_format, names, said)
    return CsvTemplates(default, by_practice)


def tax_names_of(document: object) -> dict[str, str]:
    """code -> display name of a GET /TaxRates answer ({"TaxRates": [{"TaxType", "Name", "Status"}...]}),
    deleted rates left out."""
    rates = document.get("TaxRates") if isinstance(document, dict) else None
    names = {}
    for rate in rates if isinstance(rates, list) else []:
        if not isinstance(rate, dict) or rate.get("Status") == "DELETED":
            continue
        code, name = rate.get("TaxType"), rate.get("Name")
        if isinstance(code, str) and isinstance(name, str) and code and name.strip():
            names[code] = name
    return names


def tax_rates_from_xero(settings, practice_ids: Iterable[str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """code -> display name from each given practice's own Xero organisation, for the practices with a
    connection; and a warning per practice whose organisation could not be read (its CSV files then use
    the settings file and the standard names). No connections file: nothing to read, no warning."""
    from flows.xero.api import Limits, XeroSetupError, load_connections

    path = settings.xero_connections
    if not path.exists():
        return {}, []
    try:
        connections = load_connections(path)
    except XeroSetupError as problem:
        return {}, [f"tax rate names not read from Xero: {problem}"]
    wanted = sorted(p for p in set(practice_ids) if p in connections)
    if not wanted:
        return {}, []
    limits = Limits(
        per_minute=settings.xero_requests_per_minute,
        in_flight=settings.xero_in_flight,
        app_per_minute=settings.xero_app_requests_per_minute,
        minute_seconds=settings.xero_minute_seconds,
        attempts=min(settings.xero_attempts, 3),
        retry_wait_seconds=settings.xero_retry_wait_seconds,
        retry_wait_max_seconds=settings.xero_retry_wait_max_seconds,
        timeout_seconds=min(settings.xero_timeout_seconds, 30.0),
    )
    return asyncio.run(_read_tax_rates(settings, path, connections, wanted, limits))


async def _read_tax_rates(settings, path, connections, wanted, limits):
    from flows.xero.api import DayLimitReached, Xero, XeroAuthError, XeroUnavailable

    xero = Xero(settings.xero_api_url, settings.xero_token_url, path, connections, limits, lambda _: None)
    names: dict[str, dict[str, str]] = {}
    warnings: list[str] = []

    async def read(practice_id: str) -> None:
        try:
            response = await xero.organisation(practice_id).call("GET", "/TaxRates", purpose="tax rates")
        except (XeroAuthError, XeroUnavailable, DayLimitReached) as problem:
            warnings.append(
                f"practice {practice_id}: tax rate names not read from Xero ({problem}); "
                "its CSV files use the CSV settings file and Xero's standard names"
            )
            return
        if response.status_code != 200:
            warnings.append(
                f"practice {practice_id}: Xero answered GET /TaxRates with status {response.status_code}; "
                "its CSV files use the CSV settings file and Xero's standard names"
            )
            return
        try:
            names[practice_id] = tax_names_of(response.json())
        except ValueError:
            warnings.append(f"practice {practice_id}: Xero's GET /TaxRates answer is not JSON")

    try:
        await asyncio.gather(*(read(p) for p in wanted))
    finally:
        await xero.close()
    return names, sorted(warnings)
