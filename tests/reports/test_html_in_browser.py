"""The HTML report in a real browser: headless Chromium, offline, no console error, something on screen."""

from __future__ import annotations

from flows.reports.html import HTML_NAME
from tests.reports.browser import distinct_colours, load_page


def test_report_renders_in_headless_chromium_without_errors(report, chromium, tmp_path):
    page = report[1] / "reports" / HTML_NAME
    loaded = load_page(chromium, page)
    assert loaded.errors == []
    assert [level for level, _ in loaded.console] == []
    assert loaded.remote_requests == []
    assert loaded.requests == [page.resolve().as_uri()]  # the page itself and nothing else
    (tmp_path / "report.png").write_bytes(loaded.screenshot)
    assert distinct_colours(loaded.screenshot) > 50  # text, charts and tables, not a blank page


def test_the_browser_check_sees_console_errors_and_remote_loads(chromium, tmp_path):
    """The harness itself: a page with an error, an exception and a remote image must not pass."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>bad</title></head><body><p>x</p>'
        '<img src="http://127.0.0.1:9/pixel.png">'
        '<script>console.error("boom"); missing();</script></body></html>'
    )
    loaded = load_page(chromium, bad)
    text = "\n".join(loaded.errors)
    assert "console.error: boom" in text
    assert "missing is not defined" in text
    assert loaded.remote_requests == ["http://127.0.0.1:9/pixel.png"]


def test_a_blank_page_counts_as_blank(chromium, tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>b</title></head><body></body></html>'
    )
    loaded = load_page(chromium, blank, settle=0.1)
    assert loaded.errors == []
    assert distinct_colours(loaded.screenshot) == 1
