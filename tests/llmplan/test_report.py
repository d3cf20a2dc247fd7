"""The report in a real headless Chromium: every chart renders, offline, and input text stays text."""

import shutil

import pytest

from llmplan import pipeline
from llmplan.scenario import load_scenario
from llmplan.warehouse import transaction_file

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVIL_MODEL = "<script>alert('model')</script>"
EVIL_ORG = "<img src=x onerror=alert('org')>"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from tests.conftest import DATA

    tmp = tmp_path_factory.mktemp("report")
    data = tmp / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock", "*.jsonl"))
    (data / "training_runs" / "evil.csv").write_text(
        "model,org,year,params_b,active_params_b,tokens_b,gpu_type,gpu_count,gpu_hours,wall_days,source,notes\n"
        f"\"{EVIL_MODEL}\",\"{EVIL_ORG}\",2023,7,,1000,A100-80GB,256,90000,,\"<b>bold</b> source\",[primary] test row\n",
        encoding="utf-8")
    sc = load_scenario(data / "targets.toml")
    wh = tmp / "w.duckdb"
    from llmplan.corpus import Options
    from llmplan.corpus_scan import scan

    (tmp / "ja.txt").write_text("日本語の文章を数えます。大規模言語モデルの学習計画です。\n" * 200, encoding="utf-8")
    scan([str(tmp / "ja.txt")], Options("mistral-sp-v1", lang="ja"), wh, workers=1)
    with transaction_file(wh) as con:
        pipeline.ingest(con, data)
        pipeline.fit(con, "run1")
        pipeline.plan(con, "run1", sc)
        # a previous run's plans so section 9 (what changed) has something to draw
        con.execute("INSERT INTO plans.plans SELECT * REPLACE ('run0' AS pipeline_run_id, gpu_days_p50 * 1.1 AS gpu_days_p50) "
                    "FROM plans.plans WHERE pipeline_run_id = 'run1'")
        fp = pipeline.fingerprint({}, sc)
        pipeline.record_run(con, "run0", __import__("datetime").datetime(2026, 1, 1), "succeeded", {}, sc, fp + "0", "run0", None, None, {})
        path = pipeline.write_report(con, "run1", sc, tmp / "reports")
    return path


def test_report_is_self_contained(report):
    text = report.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in text and "unpkg.com" not in text and 'src="http' not in text
    assert text.count("vegaEmbed(") >= 8
    assert (report.parent / "headline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bytes_per_token_shows_measured_beside_published(report):
    text = report.read_text(encoding="utf-8")
    spec = text[text.index('vegaEmbed("#chart-bpt"'):]
    spec = spec[: spec.index("\n")]
    assert '"measured"' in spec and '"published"' in spec and "mistral-sp-v1" in spec


def test_backtest_verdict_names_each_split_against_the_targets():
    import polars as pl

    from llmplan.report import backtest_verdict

    summary = pl.DataFrame({
        "split": ["good", "good", "wide", "wide", "worse than rule", "worse than rule"],
        "method": ["llmplan", "rule", "llmplan", "rule", "llmplan", "rule"],
        "median_abs_log10_err": [0.06, 0.12, 0.06, 0.12, 0.09, 0.08],
        "coverage_p10_p90": [0.8, None, 0.97, None, 0.8, None]})
    html = backtest_verdict(summary)
    assert "good, llmplan: meets the target — error 0.060 (0.50× the best rule's), 80% inside" in html
    assert "wide, llmplan: misses" in html and "worse than rule, llmplan: misses" in html
    steps = pl.DataFrame({"split": ["per step: x"] * 2, "method": ["llmplan step model", "40% of BF16 peak"],
                          "median_abs_log10_err": [0.05, 0.25], "coverage_p10_p90": [0.85, None]})
    assert "per step: x, llmplan step model: meets" in backtest_verdict(steps)   # per-step target: 70–90 %


def test_report_shows_each_runs_weight_in_the_fit(report):
    import re

    text = report.read_text(encoding="utf-8")
    start = text.index("Training runs in the fit")
    table = text[start:text.index("</details>", start)]
    col = re.findall(r"<th>(.*?)</th>", table).index("weight in the fit")
    rows = [re.findall(r"<td>(.*?)</td>", r) for r in table.split("</thead>")[1].split("<tr>")[1:]]
    weights = [float(r[col]) for r in rows]          # every fitted run has a number
    assert len(weights) > 50 and all(0 < w <= 1.25 for w in weights) and min(weights) < 0.5


def test_input_text_is_escaped_in_tables(report):
    text = report.read_text(encoding="utf-8")
    assert EVIL_MODEL not in text and EVIL_ORG not in text
    assert "&lt;script&gt;alert(&#x27;model&#x27;)&lt;/script&gt;" in text


@pytest.mark.slow
def test_every_chart_renders_in_headless_chromium_offline(report, tmp_path):
    from playwright.sync_api import sync_playwright

    requests, console_errors, dialogs = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])   # Playwright gives it a fresh profile
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(report.as_uri())
        n_charts = page.locator("div.chart").count()
        assert n_charts >= 8
        page.wait_for_function(
            """n => [...document.querySelectorAll('div.chart')].filter(d => {
                   const s = d.querySelector('svg, canvas'); if (!s) return false;
                   const r = s.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length === n""",
            arg=n_charts, timeout=60_000)
        sizes = page.evaluate("""[...document.querySelectorAll('div.chart')].map(d => {
            const r = d.querySelector('svg, canvas').getBoundingClientRect(); return [d.id, r.width, r.height]; })""")
        # the hostile name reached the chart as data (aria labels / tooltips), as text
        aria = page.evaluate("""[...document.querySelectorAll('#chart-gpu_hours [aria-label]')].map(e => e.getAttribute('aria-label')).join(' ')""")
        scripts = page.evaluate("document.querySelectorAll('script').length")
        table_text = page.locator("#gpu_hours table").text_content()   # inside a closed <details>
        browser.close()
    assert all(w > 0 and h > 0 for _, w, h in sizes), sizes
    assert not console_errors, console_errors
    assert [u for u in requests if not u.startswith(("file://", "data:", "blob:"))] == []
    assert dialogs == []
    assert scripts == 2                       # the inlined bundle and the embed calls, nothing injected
    assert EVIL_MODEL in table_text and EVIL_ORG in table_text
    assert EVIL_MODEL in aria


def test_utilisation_chart_compares_like_with_like(report):
    """Whole runs are 6·N·D utilisation, so the per-step points must be too: MosaicML's own MFU
    counts attention FLOPs; the chart plots tokens/s/GPU × 6N ÷ peak, recomputed here from the
    benchmark CSV's own columns."""
    import csv
    import json

    from tests.conftest import DATA

    text = report.read_text(encoding="utf-8")
    start = text.index('vegaEmbed("#chart-utilization", ') + len('vegaEmbed("#chart-utilization", ')
    spec, _ = json.JSONDecoder().raw_decode(text, start)
    rows = [r for d in spec["datasets"].values() for r in d if r.get("measure", "").startswith("per step")]
    peak = {"a100_40gb": 312e12, "a100_80gb": 312e12, "h100_80gb": 989e12}
    expected = sorted(round(float(r["Throughput (T/s/GPU)"]) * 6 * float(r["NumParams"]) / peak[r["GPU"].lower().replace("-", "_")], 6)
                      for r in csv.DictReader(open(DATA / "throughput" / "mpt_throughput_llm_foundry.csv", encoding="utf-8"))
                      if "fp8" not in (r["Precision"] or "").lower())
    assert sorted(round(r["utilization"], 6) for r in rows) == expected
