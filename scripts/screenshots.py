"""Screenshots of a report for the README and the docs: the top of the page (the answer), the
what-if control in use (another target, accelerator and cluster chosen) and, when there are runs
in progress, the burn-down chart. Headless Chromium,
offline, like the report test.

    .venv/bin/python scripts/screenshots.py reports/<run-id>/index.html [--out docs] [--prefix report]
"""

import argparse
from pathlib import Path

from llmplan.browser import page, wait_for_charts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    ap.add_argument("--prefix", default="report")
    ap.add_argument("--target", default="70B")
    ap.add_argument("--accelerator", default="B200")
    ap.add_argument("--cluster", default="1024")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    with page(1400, 1000) as pg:
        pg.goto(a.report.resolve().as_uri())
        wait_for_charts(pg)
        top = a.out / f"{a.prefix}-top.png"
        pg.screenshot(path=str(top))
        pg.select_option("#chart-whatif select[name=sel_target]", a.target)
        pg.select_option("#chart-whatif select[name=sel_acc]", a.accelerator)
        pg.select_option("#chart-whatif select[name=sel_cluster]", a.cluster)
        pg.wait_for_timeout(300)
        whatif = a.out / f"{a.prefix}-whatif.png"
        pg.locator("#whatif").screenshot(path=str(whatif))
        shots = [top, whatif]
        if pg.locator("#burndown").count():           # runs in progress: the burn-down chart
            shots.append(a.out / f"{a.prefix}-burndown.png")
            pg.locator("#burndown").screenshot(path=str(shots[-1]))
    print("\n".join(map(str, shots)) + f"\nreport size: {a.report.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
