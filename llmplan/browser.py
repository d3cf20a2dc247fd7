"""Headless Chromium for reading a report as a person would: Debian's /usr/bin/chromium driven
by Playwright (no browser download), launched offline. One place for the flags, shared by the
report tests and scripts/screenshots.py."""

import shutil
from contextlib import contextmanager

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright gives each launch a fresh profile; these stop Chromium's own background fetches.
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

# JavaScript that resolves when every chart div holds a drawn SVG/canvas.
ALL_CHARTS_DRAWN = """n => [...document.querySelectorAll('div.chart')].filter(d => {
    const s = d.querySelector('svg, canvas'); if (!s) return false;
    const r = s.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length === n"""


@contextmanager
def page(width: int = 1400, height: int = 1000):
    """A Playwright page in headless Chromium; closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()


def wait_for_charts(pg, timeout_ms: int = 60_000) -> int:
    n = pg.locator("div.chart").count()
    pg.wait_for_function(ALL_CHARTS_DRAWN, arg=n, timeout=timeout_ms)
    return n
