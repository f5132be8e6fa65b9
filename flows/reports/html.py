"""`trackline report`: every view of sql/reports/ (flows.reports.views) as CSV and Parquet, and one HTML page.

`write_reports(warehouse, out)` never writes to the warehouse and never needs the views to be there (an old
warehouse, or one published before a view changed, still gets today's report). How it reads:

- an in-memory DuckDB connection ATTACHes the warehouse READ_ONLY, so it neither takes a write lock nor
  blocks an analyst's or another reader's read-only connection;
- for each base table of the warehouse it creates, in memory, a pass-through view of the same name
  (`create view line_tracking as select * from warehouse.main.line_tracking`);
- it then runs the files of sql/reports/ unchanged in memory: their views bind to those pass-throughs, and
  their COMMENTs (used as the report's glossary) stay in memory too.

So the report is always built from the SQL in this repository against whatever the file holds, and the
file is opened once: a run that publishes a new warehouse meanwhile (an atomic rename, see flows.run.publish)
does not change what this report reads. Money stays DECIMAL in the CSV and Parquet files (written by
DuckDB's COPY straight from the views); charts convert to float only to draw.
"""

from __future__ import annotations

import html
import io
import os
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from flows.reports.views import reading, view_names

HTML_NAME = "tracking_report.html"
NO_OPTION = "(none)"
# Palette for options (matplotlib's tab10 then tab20's lighter half); empty slots are grey.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
]  # fmt: skip
EMPTY_COLOUR = "#c7c7c7"
OTHER_COLOUR = "#7f7f7f"
OTHER = object()  # the key of the "N other options" series (never equal to an option name)
MAX_SERIES = 12  # options drawn one by one in the monthly chart, "other options" included
SOURCE_COLOURS = {"service": "#1f77b4", "owner": "#ff7f0e", "none": EMPTY_COLOUR}


def write_reports(warehouse: Path, out: Path) -> list[Path]:
    """Write out/reports/<view>.csv and .parquet for every view, then out/reports/tracking_report.html.

    Returns the paths written, the HTML last. Each file is written beside its final name and renamed
    into place, so a reader never sees half a file. The warehouse is only ever read (see the module).
    """
    folder = out / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with reading(warehouse) as con:
        for view in view_names():
            for fmt in ("csv", "parquet"):
                target = folder / f"{view}.{fmt}"
                partial = folder / f".{view}.{fmt}.partial"
                options = "format csv, header" if fmt == "csv" else "format parquet"
                literal = str(partial).replace("'", "''")
                con.execute(f"copy (select * from {view} order by all) to '{literal}' ({options})")
                os.replace(partial, target)
                written.append(target)
        page = render_html(con, warehouse)
    target = folder / HTML_NAME
    partial = folder / f".{HTML_NAME}.partial"
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, target)
    written.append(target)
    return written


# ---------------------------------------------------------------------------------------------------------
# The HTML page: one file, inline CSS and inline SVG, no script, nothing fetched.


def e(value: object) -> str:
    """Escape any text that comes from the data (option names carry <, &, quotes)."""
    return html.escape("" if value is None else str(value), quote=True)


def money(value: Decimal | int | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def month_label(month: date) -> str:
    return month.strftime("%b %Y")


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence = ()) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _months(first: date, last: date) -> list[date]:
    months, current = [], first.replace(day=1)
    while current <= last:
        months.append(current)
        current = date(current.year + (current.month == 12), current.month % 12 + 1, 1)
    return months


def _colours(options: list[str | None]) -> dict[str | None, str]:
    named = [o for o in options if o is not None]
    colours: dict[str | None, str] = {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(named)}
    colours[None] = EMPTY_COLOUR
    return colours


def _label(text: str | None, limit: int = 36) -> str:
    """A matplotlib label: cut to `limit` characters, mathtext off ($ escaped); the SVG writer escapes it."""
    text = NO_OPTION if text is None else text
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _svg(figure, chart_id: str) -> str:
    """The figure as inline SVG: no XML prolog, no namespace URLs, ids unique within the page."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "trackline"}):
        figure.savefig(
            buffer, format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )  # fmt: skip
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{chart_id}-\1"', svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{chart_id}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{chart_id}-\1)", svg)
    svg = svg.replace("<svg ", f'<svg role="img" class="chart" id="{chart_id}" ', 1)
    return svg


def _figure(width: float, height: float, bottom: float):
    """A figure with fixed margins: room for rotated month labels below and a legend on the right.

    Fixed rather than constrained layout: the page has two charts per practice and currency, and laying
    each out twice doubles the time `trackline report` takes; labels are cut to fit (see `_label`).
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    figure.subplots_adjust(left=0.085, right=0.79, bottom=bottom, top=0.93, wspace=0.22)
    return figure


def _style_axes(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _month_ticks(ax, months: list[date]) -> None:
    step = max(1, -(-len(months) // 12))
    ax.set_xticks(range(0, len(months), step))
    ax.set_xticklabels([month_label(m) for m in months[::step]], rotation=45, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(months) - 0.4)


def net_by_month_chart(
    rows: list[dict], months: list[date], options: list[str | None], currency: str, chart_id: str
) -> str:
    """Bars of net amount per month, stacked by slot-1 option (credits stack below zero).

    `options` come largest first; past MAX_SERIES the smallest are drawn together as "N other options"
    (the matrix below the chart still names every one).
    """
    from matplotlib.ticker import FuncFormatter

    named = [o for o in options if o is not None]
    shown = named if len(named) <= MAX_SERIES else named[: MAX_SERIES - 1]
    other = len(named) - len(shown)
    series: list[tuple[object, str, str]] = [
        (o, _label(o), c) for o, c in _colours(shown).items() if o is not None
    ]
    if other:
        series.append((OTHER, f"{other} other options", OTHER_COLOUR))
    if None in options:
        series.append((None, _label(None), EMPTY_COLOUR))
    amounts: dict[tuple[object, date], float] = defaultdict(float)
    for row in rows:
        option = row["tracking1_option"]
        key = option if option is None or option in shown else OTHER
        amounts[(key, row["month"])] += float(row["net_amount"])
    figure = _figure(11, 4.2, bottom=0.2)
    ax = figure.add_subplot()
    positive, negative = [0.0] * len(months), [0.0] * len(months)
    for key, label, colour in series:
        values = [amounts.get((key, m), 0.0) for m in months]
        bottoms = [positive[i] if v >= 0 else negative[i] for i, v in enumerate(values)]
        ax.bar(range(len(months)), values, bottom=bottoms, color=colour, label=label, width=0.8)
        for i, v in enumerate(values):
            if v >= 0:
                positive[i] += v
            else:
                negative[i] += v
    _style_axes(ax)
    _month_ticks(ax, months)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_ylabel(f"net amount ({_label(currency)})")
    ax.margins(y=0.08)
    if any(negative):
        ax.axhline(0, color="#555555", linewidth=0.8)
    ax.legend(title="slot 1", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    return _svg(figure, chart_id)


def coverage_chart(rows: list[dict], months: list[date], chart_id: str) -> str:
    """Left: slot 1 filled (share of lines and of amount). Right: where slot 2 came from (share of amount).

    Months without ready invoices stay empty (no point, no bar) rather than drawn as zero.
    """
    from matplotlib.ticker import PercentFormatter

    by_month = {row["month"]: row for row in rows}
    x = list(range(len(months)))

    def series(column: str) -> list[float]:
        values = []
        for m in months:
            value = by_month.get(m, {}).get(column)
            values.append(float("nan") if value is None else float(value))
        return values

    figure = _figure(11, 3.4, bottom=0.25)
    left, right = figure.subplots(1, 2)
    left.plot(x, series("slot1_filled_amount_share"), marker="o", markersize=3, label="share of amount")
    left.plot(
        x, series("slot1_filled_line_share"), marker="s", markersize=3, linestyle="--", label="share of lines"
    )
    left.set_title("slot 1 filled", fontsize=10)
    left.legend(frameon=False, fontsize=8, loc="lower left")
    bottom = [0.0] * len(months)
    for source, label in (
        ("service", "from the service"),
        ("owner", "from the owner"),
        ("none", "none sent"),
    ):
        values = [0.0 if v != v else v for v in series(f"slot2_{source}_amount_share")]
        right.bar(x, values, bottom=bottom, width=0.8, color=SOURCE_COLOURS[source], label=label)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    right.set_title("slot 2 source (share of amount)", fontsize=10)
    right.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    for ax in (left, right):
        _style_axes(ax)
        _month_ticks(ax, months)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return _svg(figure, chart_id)


def matrix_table(rows: list[dict], currency: str) -> str:
    """Slot 1 down, slot 2 across, net amount in each cell, shaded by size; totals on both edges."""
    cells: dict[tuple[str | None, str | None], Decimal] = defaultdict(Decimal)
    for row in rows:
        cells[(row["tracking1_option"], row["tracking2_option"])] += row["net_amount"]

    def ordered(index: int) -> list[str | None]:
        totals: dict[str | None, Decimal] = defaultdict(Decimal)
        for key, value in cells.items():
            totals[key[index]] += value
        return sorted(totals, key=lambda o: (o is None, -totals[o], o or ""))

    slot1, slot2 = ordered(0), ordered(1)
    largest = max((abs(v) for v in cells.values()), default=Decimal(0)) or Decimal(1)
    head = "".join(f'<th scope="col">{e(NO_OPTION if o is None else o)}</th>' for o in slot2)
    body = []
    for option1 in slot1:
        tds = []
        for option2 in slot2:
            value = cells.get((option1, option2))
            if value is None:
                tds.append('<td class="num empty"></td>')
                continue
            alpha = float(abs(value) / largest) * 0.55 + 0.05
            tds.append(
                f'<td class="num" style="background: rgba(31, 119, 180, {alpha:.2f})">{money(value)}</td>'
            )
        total = sum((cells.get((option1, o), Decimal(0)) for o in slot2), Decimal(0))
        label = e(NO_OPTION if option1 is None else option1)
        body.append(
            f'<tr><th scope="row">{label}</th>{"".join(tds)}<td class="num total">{money(total)}</td></tr>'
        )
    column_totals = "".join(
        f'<td class="num total">{money(sum((cells.get((o1, o2), Decimal(0)) for o1 in slot1), Decimal(0)))}'
        "</td>"
        for o2 in slot2
    )
    grand = sum(cells.values(), Decimal(0))
    return (
        '<div class="scroll"><table class="matrix">'
        f"<caption>Net amount ({e(currency)}), slot 1 down, slot 2 across</caption>"
        f'<thead><tr><th scope="col">slot 1 \\ slot 2</th>{head}<th scope="col">total</th></tr></thead>'
        f"<tbody>{''.join(body)}</tbody>"
        f'<tfoot><tr><th scope="row">total</th>{column_totals}'
        f'<td class="num total">{money(grand)}</td></tr></tfoot>'
        "</table></div>"
    )


def _table(columns: list[tuple[str, str, str]], rows: list[dict], caption: str = "", empty: str = "") -> str:
    """A plain table; columns are (key, heading, kind), kind one of text | id | detail | num | money | share.

    `id` cells never wrap (invoice numbers, dates, codes); `detail` cells wrap in a wide column.
    """
    if not rows:
        return f'<p class="empty-note">{e(empty)}</p>'
    formats = {
        "money": money,
        "share": share,
        "num": lambda v: "" if v is None else f"{v:,}",
        "text": e,
        "detail": e,
        "id": e,
    }
    head = "".join(f'<th scope="col" class="{kind}">{e(title)}</th>' for _, title, kind in columns)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{kind}">{formats[kind](row[key])}</td>' for key, _, kind in columns)
        + "</tr>"
        for row in rows
    )
    caption_html = f"<caption>{e(caption)}</caption>" if caption else ""
    table = f"<table>{caption_html}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _practice_names(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    tables = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    if "raw_practices" not in tables:
        return {}
    return dict(con.execute("select practice_id, min(name) from raw_practices group by all").fetchall())


def _headline(con: duckdb.DuckDBPyConnection) -> list[dict]:
    return _rows(
        con,
        """
        with sent as (
            select practice_id, currency, count(*) as ready_invoices, sum(total) as net_amount
            from xero_invoices join invoice_tracking using (practice_id, invoice_id)
            where invoice_state = 'ready' group by all
        ), batched as (
            select practice_id, currency, count(*) filter (where batch_id is null) as unbatched
            from xero_invoices join invoice_tracking using (practice_id, invoice_id)
            where invoice_state = 'ready' group by all
        ), coverage as (
            select practice_id, currency, sum(lines) as lines,
                   sum(slot1_filled_lines) / sum(lines) as slot1_line_share,
                   sum(slot1_filled_amount_share * absolute_amount) / nullif(sum(absolute_amount), 0)
                       as slot1_amount_share,
                   sum((slot2_service_amount_share + slot2_owner_amount_share) * absolute_amount)
                       / nullif(sum(absolute_amount), 0) as slot2_amount_share,
                   sum(slot2_owner_amount_share * absolute_amount) / nullif(sum(absolute_amount), 0)
                       as slot2_owner_share
            from tracking_coverage group by all
        ), held as (
            select practice_id, currency, count(*) as held_invoices, sum(amount) as held_amount
            from held_invoices group by all
        ), keys as (
            select practice_id, currency from sent union select practice_id, currency from held
        )
        select keys.practice_id, keys.currency,
               coalesce(sent.ready_invoices, 0) as ready_invoices, coalesce(sent.net_amount, 0) as net_amount,
               coalesce(batched.unbatched, 0) as unbatched, coverage.lines,
               coverage.slot1_line_share, coverage.slot1_amount_share, coverage.slot2_amount_share,
               coverage.slot2_owner_share,
               coalesce(held.held_invoices, 0) as held_invoices, coalesce(held.held_amount, 0) as held_amount
        from keys
        left join sent using (practice_id, currency)
        left join batched using (practice_id, currency)
        left join coverage using (practice_id, currency)
        left join held
            on held.practice_id = keys.practice_id and held.currency is not distinct from keys.currency
        order by keys.practice_id, ready_invoices desc, keys.currency
        """,
    )


def _latest_run(con: duckdb.DuckDBPyConnection) -> dict | None:
    runs = _rows(con, "select * from runs order by finished_at desc nulls last, run_id desc limit 1")
    return runs[0] if runs else None


def _cards(con: duckdb.DuckDBPyConnection, headline: list[dict]) -> str:
    states = dict(con.execute("select invoice_state, count(*) from invoice_tracking group by all").fetchall())
    open_count = con.execute("select count(*) from exceptions").fetchone()[0]
    oldest = con.execute("select max(oldest_age_days) from exception_summary").fetchone()[0]
    practices = len({row["practice_id"] for row in headline})
    cards = [
        ("practices on Xero", f"{practices:,}"),
        ("invoices ready for Xero", f"{states.get('ready', 0):,}"),
        ("invoices held", f"{states.get('held', 0):,}"),
        ("invoices not on Xero", f"{states.get('not_xero', 0):,}"),
        ("open exceptions", f"{open_count:,}"),
        ("oldest open (days)", "–" if oldest is None else f"{oldest:,}"),
    ]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="figure">{e(v)}</div><div class="caption">{e(k)}</div></div>'
        for k, v in cards
    ) + "</div>"  # fmt: skip


def _practice_section(
    con: duckdb.DuckDBPyConnection, practice_id: str, currency: str, name: str, number: int
) -> str:
    params = [practice_id, currency]
    summary = _rows(
        con,
        """select month, tracking1_option, tracking2_option, sum(net_amount) as net_amount
           from tracking_summary where practice_id = ? and currency = ? group by all""",
        params,
    )
    if not summary:
        return ""
    coverage = _rows(
        con, "select * from tracking_coverage where practice_id = ? and currency = ? order by month", params
    )
    fallback = _rows(
        con,
        """select * from slot2_fallback_by_service where practice_id = ? and currency = ?
           order by fallback_share + none_share desc, lines desc, service_template_id""",
        params,
    )
    category = con.execute(
        """select string_agg(distinct tracking1_category, ', ' order by tracking1_category),
                  string_agg(distinct tracking2_category, ', ' order by tracking2_category)
           from tracking_summary where practice_id = ? and currency = ?""",
        params,
    ).fetchone()
    months = _months(min(r["month"] for r in summary), max(r["month"] for r in summary))
    totals: dict[str | None, Decimal] = defaultdict(Decimal)
    for row in summary:
        totals[row["tracking1_option"]] += row["net_amount"]
    options = sorted(totals, key=lambda o: (o is None, -totals[o], o or ""))
    fallback_table = _table(
        [
            ("service_name", "service", "text"),
            ("service_template_id", "template", "text"),
            ("lines", "lines", "num"),
            ("net_amount", f"net amount ({currency})", "money"),
            ("fallback_share", "slot 2 from owner", "share"),
            ("none_share", "no slot 2", "share"),
        ],
        fallback,
        empty="No service lines.",
    )
    slot1_names = category[0] or "none sent"
    slot2_names = category[1] or "none sent"
    return f"""
<section class="practice" id="practice-{number}">
  <h2>{e(name)} <span class="muted">({e(practice_id)}) · {e(currency)}</span></h2>
  <p class="muted">Slot 1 category: {e(slot1_names)}. Slot 2 category: {e(slot2_names)}.
  Ready invoices as sent to Xero, {e(month_label(months[0]))} to {e(month_label(months[-1]))}.</p>
  <h3>Net amount by month, by slot-1 option</h3>
  {net_by_month_chart(summary, months, options, currency, f"net-{number}")}
  <h3>Slot 1 × slot 2</h3>
  {matrix_table(summary, currency)}
  <h3>Coverage over time</h3>
  {coverage_chart(coverage, months, f"coverage-{number}")}
  <h3>Slot-2 fallback by service</h3>
  {fallback_table}
</section>"""


def _glossary(con: duckdb.DuckDBPyConnection) -> str:
    views = dict(
        con.execute("select view_name, comment from duckdb_views() where database_name = 'memory'").fetchall()
    )
    items = "".join(
        f'<dt><code>{e(name)}</code> <span class="muted">{e(name)}.csv · {e(name)}.parquet</span></dt>'
        f"<dd>{e(views.get(name))}</dd>"
        for name in view_names()
    )
    return f"<dl>{items}</dl>"


# Nothing may load from anywhere: the page is one file that works offline (and no script runs).
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f;
       margin: 0; background: #f6f7f9; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 40px 0 6px; padding-top: 12px; border-top: 2px solid #e3e6ea; }
h3 { font-size: 1.02rem; margin: 26px 0 8px; color: #333; }
.muted { color: #6b7280; font-weight: normal; }
nav a { margin-right: 14px; color: #1f5f99; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(160px, 1fr)); gap: 12px;
         margin: 18px 0; }
.card { border: 1px solid #e3e6ea; border-radius: 8px; padding: 12px 14px; background: #fbfcfd; }
.card .figure { font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .caption { color: #6b7280; font-size: 0.85rem; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.86rem; }
caption { text-align: left; color: #6b7280; padding-bottom: 4px; }
th, td { padding: 5px 9px; border-bottom: 1px solid #e8eaed; text-align: left; vertical-align: top; }
thead th { background: #f1f3f5; font-weight: 600; }
td.num, td.money, td.share { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num, th.money, th.share { text-align: right; }
.scroll { overflow-x: auto; }
tbody tr:nth-child(even) td { background-color: #fafbfc; }
table.matrix td { min-width: 80px; }
table.matrix td.total, table.matrix tfoot td { font-weight: 600; background: #f1f3f5; }
td.empty { background: #fff; }
td.id { white-space: nowrap; }
td.detail { min-width: 280px; max-width: 520px; overflow-wrap: anywhere; }
table.matrix thead th { text-align: right; }
table.matrix thead th:first-child { text-align: left; }
svg.chart { display: block; max-width: 100%; height: auto; }
.empty-note { color: #6b7280; font-style: italic; }
dt { margin-top: 10px; }
dd { margin: 2px 0 0 18px; color: #333; }
footer { margin-top: 40px; color: #6b7280; font-size: 0.85rem; }
"""


def _in_xero_section(con: duckdb.DuckDBPyConnection) -> str:
    """What `trackline verify` last found in Xero, and the open retrack plan (views xero_verify_status and
    retrack_plan_moves)."""
    checks = _rows(
        con,
        """select *, strftime(last_checked_at at time zone 'UTC', '%Y-%m-%d %H:%M UTC') as last_checked,
                  strftime(oldest_check_at at time zone 'UTC', '%Y-%m-%d %H:%M UTC') as oldest_check
           from xero_verify_status order by practice_id""",
    )
    checks_table = _table(
        [
            ("practice_id", "practice", "text"),
            ("invoices_in_xero", "invoices in Xero", "num"),
            ("invoices_checked", "read back", "num"),
            ("invoices_to_check", "waiting for a check", "num"),
            ("last_checked", "last check", "id"),
            ("oldest_check", "oldest check", "id"),
            ("lines_dropped", "lines Xero dropped", "num"),
        ],
        checks,
        empty="Nothing has been sent to Xero from this warehouse.",
    )
    moves = _rows(
        con,
        """select *, from_option || ' → ' || to_option as move from retrack_plan_moves
           order by practice_id, category, amount desc, from_option, to_option""",
    )
    moves_table = _table(
        [
            ("practice_id", "practice", "text"),
            ("category", "category", "text"),
            ("move", "move", "text"),
            ("currency", "currency", "id"),
            ("invoices", "invoices", "num"),
            ("lines", "lines", "num"),
            ("amount", "amount", "money"),
            ("blocked_lines", "blocked by Xero", "num"),
        ],
        moves,
        empty="The retrack plan is empty: every invoice in Xero carries the tracking resolved now.",
    )
    return f"""<section id="in-xero">
  <h2>In Xero: last check and open retrack plan</h2>
  <p class="muted">What <code>trackline verify</code> read back (a line whose tracking Xero did not keep is
  XERO_TRACKING_DROPPED), and the invoices already in Xero whose tracking has changed since
  (<code>trackline retrack --apply</code> updates them; every line is in retrack_plan.csv).</p>
  {checks_table}
  {moves_table}
</section>
"""


def render_html(con: duckdb.DuckDBPyConnection, warehouse: Path) -> str:
    """The whole report as one HTML document (see the module docstring for what it reads)."""
    names = _practice_names(con)
    headline = _headline(con)
    run = _latest_run(con)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if run:
        finished = (
            run["finished_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if run["finished_at"] else ""
        )
        run_line = (
            f"Latest run {e(run['run_id'])} ({e(run['flow'])}, {e(run['scope'])}), finished {e(finished)}."
        )
    else:
        run_line = "No run recorded in this warehouse."
    headline_table = _table(
        [
            ("practice", "practice", "text"),
            ("currency", "currency", "text"),
            ("ready_invoices", "ready invoices", "num"),
            ("net_amount", "net amount sent", "money"),
            ("unbatched", "not batched yet", "num"),
            ("slot1_amount_share", "slot 1 filled (amount)", "share"),
            ("slot2_amount_share", "slot 2 filled (amount)", "share"),
            ("slot2_owner_share", "slot 2 from owner (amount)", "share"),
            ("held_invoices", "held invoices", "num"),
            ("held_amount", "money held", "money"),
        ],
        [row | {"practice": f"{names.get(row['practice_id'], row['practice_id'])}"} for row in headline],
        empty="No invoices in this warehouse yet.",
    )
    sections, links = [], []
    pairs = [(r["practice_id"], r["currency"]) for r in headline if r["ready_invoices"]]
    for number, (practice_id, currency) in enumerate(pairs, start=1):
        name = names.get(practice_id, practice_id)
        section = _practice_section(con, practice_id, currency, name, number)
        if section:
            sections.append(section)
            links.append(f'<a href="#practice-{number}">{e(name)} · {e(currency)}</a>')
    exceptions = _rows(
        con,
        """select * from exception_summary
           order by severity, amount_held desc, invoices desc, practice_id, code""",
    )
    exceptions_table = _table(
        [
            ("practice_id", "practice", "text"),
            ("code", "code", "id"),
            ("severity", "severity", "text"),
            ("currency", "currency", "text"),
            ("exceptions", "exceptions", "num"),
            ("invoices", "invoices", "num"),
            ("invoices_held", "invoices held", "num"),
            ("amount_held", "money held", "money"),
            ("oldest_age_days", "oldest (days)", "num"),
            ("oldest_detail", "oldest detail", "detail"),
        ],
        exceptions,
        empty="No open exceptions.",
    )
    held = _rows(con, "select * from held_invoices order by amount desc, practice_id, invoice_id limit 50")
    held_count = con.execute("select count(*) from held_invoices").fetchone()[0]
    held_table = _table(
        [
            ("practice_id", "practice", "text"),
            ("invoice_number", "invoice", "id"),
            ("client_id", "client", "id"),
            ("issue_date", "issued", "id"),
            ("currency", "currency", "id"),
            ("amount", "amount", "money"),
            ("hold_codes", "codes", "text"),
            ("age_days", "held (days)", "num"),
            ("fix", "what to do", "detail"),
            ("first_error", "first error to fix", "detail"),
        ],
        held,
        caption=f"The {len(held)} largest of {held_count} held invoices (all are in held_invoices.csv)."
        if held_count > len(held)
        else "",
        empty="No invoice is held.",
    )
    in_xero = _in_xero_section(con)
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<link rel="icon" href="data:,">
<title>trackline tracking report</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header>
  <h1>Tracking report</h1>
  <p class="muted">Warehouse {e(warehouse.name)} · generated {e(generated)}. {run_line}
  Amounts are net of tax and never added across currencies.</p>
  <nav><a href="#headline">Headline</a>{"".join(links)}<a href="#in-xero">In Xero</a><a href="#exceptions">Open exceptions</a>
  <a href="#held">Held invoices</a><a href="#glossary">What the figures mean</a></nav>
</header>
<section id="headline">
  <h2>Headline</h2>
  {_cards(con, headline)}
  {headline_table}
</section>
{"".join(sections)}
{in_xero}
<section id="exceptions">
  <h2>Open exceptions</h2>
  <p class="muted">By practice and code. An error holds its invoice until a run finds it fixed;
  an invoice held for two codes counts under both.</p>
  {exceptions_table}
</section>
<section id="held">
  <h2>Held invoices</h2>
  {held_table}
</section>
<section id="glossary">
  <h2>What the figures mean</h2>
  <p class="muted">Each view is in the warehouse (query it read-only) and beside this page as CSV and
  Parquet.</p>
  {_glossary(con)}
</section>
<footer>trackline · this page is self-contained: it loads nothing and runs no script.</footer>
</main>
</body>
</html>
"""
