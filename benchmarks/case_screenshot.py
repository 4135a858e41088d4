"""Screenshot a case report in Debian's Chromium for the docs (``docs/figures/case-<domain>.png``).

    .venv/bin/python benchmarks/case_screenshot.py cases/finance/report.html docs/figures/case-finance.png

The top of the page (summary and key figures) at 1200 px wide, 1,600 px high.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright import sync_api

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def screenshot(report: str, out: str, height: int = 1600) -> None:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": height})
        page.goto(Path(report).resolve().as_uri())
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=out, full_page=False)
        browser.close()


if __name__ == "__main__":
    screenshot(sys.argv[1], sys.argv[2])
