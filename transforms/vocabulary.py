"""Known value sets of the contract, as Polars enums shared by the transforms and the Pandera models."""

from __future__ import annotations

import polars as pl

LEDGERS = ("xero", "quickbooks", "sage", "freeagent", "none")
OPTION_STATUSES = ("ACTIVE", "ARCHIVED", "DELETED")
INVOICE_STATUSES = ("draft", "approved", "void")
LINE_TYPES = ("service", "alignment_fee", "adhoc")
INVOICE_STATES = ("ready", "held", "not_xero")
SLOT1_SOURCES = ("client",)
SLOT2_SOURCES = ("service", "owner")
SEVERITIES = ("error", "warning")

# Every exception code a run finds (contract §3), in the order a finance lead reads them.
RUN_CODES = (
    "SAME_CATEGORY",
    "CONSOLIDATION_TAX_MISMATCH",
    "UNKNOWN_OPTION",
    "ARCHIVED_OPTION",
    "INVALID_VALUE",
    "UNKNOWN_CLIENT",
    "UNKNOWN_SERVICE",
    "UNKNOWN_TEAM_MEMBER",
    "MISSING_ACCOUNT_CODE",
    "MISSING_TAX_TYPE",
    "DUPLICATE_KEY",
    "EMPTY_INVOICE",
    "ORPHAN_LINE",
)
# What Xero did with what was sent (contract §6), recorded by `trackline push` (and verify, retrack), never
# by a run: a run leaves these open, and they never stop an invoice being resolved or batched.
XERO_CODES = (
    "XERO_REJECTED",
    "XERO_OPTION_NOT_ACTIVE",
)
# Invoices already in Xero (contract section 6, Verify and Retrack): an invoice whose amounts or lines changed
# in the source since it was sent (found by a run, kept out of batches), a line whose tracking Xero does not
# hold as sent (found by `trackline verify`), and an update of tracking Xero refused (`trackline retrack
# --apply`). Each is closed only by what found it.
SENT_CODES = ("SENT_INVOICE_CHANGED",)
VERIFY_CODES = ("XERO_TRACKING_DROPPED",)
RETRACK_CODES = ("RETRACK_BLOCKED",)
CODES = RUN_CODES + XERO_CODES + SENT_CODES + VERIFY_CODES + RETRACK_CODES

LineType = pl.Enum(LINE_TYPES)
InvoiceState = pl.Enum(INVOICE_STATES)
Severity = pl.Enum(SEVERITIES)
Code = pl.Enum(CODES)

# Xero's limits on what it receives (contract R8, shared/xero/README.md).
MAX_TRACKING_NAME = 100
MAX_DESCRIPTION = 4000
MAX_INVOICE_NUMBER = 255
MAX_CONTACT_NAME = 255

# Money and quantities: Decimal end to end.
AMOUNT = pl.Decimal(18, 2)
QUANTITY = pl.Decimal(18, 4)
UNIT_AMOUNT = pl.Decimal(18, 4)

# Xero's CurrencyCode enum (shared/xero/invoices.schema.json): the currencies Xero accepts.
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
