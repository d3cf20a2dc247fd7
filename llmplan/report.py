"""The HTML report: one self-contained page per pipeline run (Vega, Vega-Lite and vega-embed
inlined once; no network), plus reports/index.html listing every run, newest first.

Everything from input files is escaped: tables go through html.escape, chart specs are JSON
with '<' written as \\u003c (so a model named '</script>' cannot close the script), Vega draws
text as SVG text and vega-embed's tooltip handler sanitises HTML.
"""

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from llmplan.scaling import Law
from llmplan.units import fmt_bytes, fmt_count, fmt_days, fmt_params, fmt_sci, fmt_usd

alt.data_transformers.disable_max_rows()


def _spec_json(chart: alt.TopLevelMixin) -> str:
    return json.dumps(chart.to_dict()).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def chart_gpu_hours(runs: pl.DataFrame, band: pl.DataFrame) -> alt.Chart:
    pts = alt.Chart(runs.to_pandas()).mark_circle(size=60, opacity=0.8).encode(
        x=alt.X("training_flop:Q", scale=alt.Scale(type="log"), title="training compute, 6·N·D (FLOP)"),
        y=alt.Y("gpu_hours:Q", scale=alt.Scale(type="log"), title="GPU-hours (accelerator-hours)"),
        color=alt.Color("accelerator:N", title="accelerator"),
        tooltip=["model:N", "org:N", "year:Q", "accelerator:N", alt.Tooltip("gpu_hours:Q", format=",.0f"),
                 alt.Tooltip("utilization:Q", format=".0%"), "source:N"])
    b = alt.Chart(band.to_pandas())
    area = b.mark_area(opacity=0.15, color="gray").encode(x="training_flop:Q", y="gpu_hours_p10:Q", y2="gpu_hours_p90:Q")
    line = b.mark_line(color="black").encode(x="training_flop:Q", y="gpu_hours_p50:Q")
    return (area + line + pts).properties(width=640, height=380, title="GPU-hours vs training compute (A100-80GB band)")


def chart_utilization(runs: pl.DataFrame, tp: pl.DataFrame) -> alt.Chart:
    from llmplan.accelerators import generation

    whole = runs.select("accelerator", "utilization", "model", pl.lit("whole run").alias("measure"))
    # Like with like: MosaicML's own MFU counts attention FLOPs; mfu_6n is the same step's 6·N·D
    # utilisation, the count the whole-run figures use.
    step = tp.filter(pl.col("fit_exclusion_reason").is_null()).select(
        "accelerator", pl.col("mfu_6n").alias("utilization"), "model", pl.lit("per step, 6·N·D (MosaicML)").alias("measure"))
    df = pl.concat([whole, step]).with_columns(generation(pl.col("accelerator")).alias("generation")).to_pandas()
    return alt.Chart(df).mark_tick(thickness=2, size=18).encode(
        y=alt.Y("generation:N", title="accelerator generation", sort="ascending"),
        x=alt.X("utilization:Q", title="utilisation of dense BF16 peak (FP16 for V100)", axis=alt.Axis(format="%")),
        color=alt.Color("measure:N", title="measured as"),
        tooltip=["model:N", "accelerator:N", "generation:N", alt.Tooltip("utilization:Q", format=".1%"), "measure:N"],
    ).properties(width=640, height=260, title="6·N·D utilisation of peak: whole runs and single steps")


def chart_backtest(bt: pl.DataFrame) -> alt.Chart:
    if "method" in bt.columns and bt["method"].is_not_null().any():   # what plans use: step × goodput when fitted
        plans = "step × goodput" if (bt["method"] == "step × goodput").any() else "whole-run model"
        bt = bt.filter(pl.col("method") == plans)
    df = pl.concat([
        bt.select("model", "split", "actual_gpu_hours", pl.col("pred_p50").alias("predicted"), pl.lit("llmplan p50").alias("method")),
        bt.select("model", "split", "actual_gpu_hours", pl.col("rule_gpu_hours").alias("predicted"), pl.lit("6ND/(peak×0.40)").alias("method")),
    ]).to_pandas()
    lo, hi = float(bt["actual_gpu_hours"].min()) / 2, float(bt["actual_gpu_hours"].max()) * 2
    diag = alt.Chart(pl.DataFrame({"x": [lo, hi], "y": [lo, hi]}).to_pandas()).mark_line(strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    pts = alt.Chart(df).mark_point(filled=True, size=50).encode(
        x=alt.X("actual_gpu_hours:Q", scale=alt.Scale(type="log"), title="actual GPU-hours"),
        y=alt.Y("predicted:Q", scale=alt.Scale(type="log"), title="predicted GPU-hours"),
        color=alt.Color("method:N"), shape=alt.Shape("split:N"),
        tooltip=["model:N", "split:N", "method:N", alt.Tooltip("actual_gpu_hours:Q", format=",.0f"), alt.Tooltip("predicted:Q", format=",.0f")])
    return (diag + pts).properties(width=640, height=380, title="Backtest: predicted vs actual GPU-hours on held-out runs")


def chart_bytes_per_token(bpt: pl.DataFrame) -> alt.Chart:
    df = bpt.with_columns(pl.concat_str("language", pl.lit(" · "), "tokenizer").alias("row")).to_pandas()
    base = alt.Chart(df)
    rule = base.mark_rule().encode(y=alt.Y("row:N", title="language · tokenizer"), x=alt.X("lo:Q", title="UTF-8 bytes per token"), x2="hi:Q", color="kind:N")
    pt = base.mark_point(filled=True, size=70).encode(
        y="row:N", x="bytes_per_token:Q", color=alt.Color("kind:N", title="source"),
        tooltip=["language:N", "tokenizer:N", "kind:N", alt.Tooltip("bytes_per_token:Q", format=".2f"), "source:N"])
    return (rule + pt).properties(width=640, height=max(120, 22 * len(df)), title="Bytes per token by language and tokenizer")


def chart_days_vs_cluster(plans: pl.DataFrame) -> alt.Chart:
    df = plans.filter(pl.col("policy") == plans["policy"][0]).with_columns(
        pl.col("target_params").map_elements(fmt_params, return_dtype=pl.Utf8).alias("target")).to_pandas()
    days = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("cluster_gpus:Q", scale=alt.Scale(type="log"), title="cluster size (accelerators)"),
        y=alt.Y("wall_days_p50:Q", scale=alt.Scale(type="log"), title="wall-clock days (p50)"),
        color=alt.Color("accelerator:N"), detail="target:N",
        tooltip=["target:N", "accelerator:N", "cluster_gpus:Q", alt.Tooltip("wall_days_p50:Q", format=",.1f"),
                 alt.Tooltip("wall_days_p90:Q", format=",.1f"), alt.Tooltip("cost_usd_p50:Q", format="$,.0f")],
    ).properties(width=420, height=320, title=f"Days vs cluster size ({df['policy'][0]} tokens)")
    cost = alt.Chart(df).mark_point(filled=True).encode(
        x=alt.X("wall_days_p50:Q", scale=alt.Scale(type="log"), title="wall-clock days (p50)"),
        y=alt.Y("cost_usd_p50:Q", scale=alt.Scale(type="log"), title="cost p50 (USD)"),
        color="accelerator:N", shape=alt.Shape("target:N"),
        tooltip=["target:N", "accelerator:N", "cluster_gpus:Q", alt.Tooltip("cost_usd_p50:Q", format="$,.0f")],
    ).properties(width=420, height=320, title="Cost vs days")
    return alt.hconcat(days, cost)


def chart_scaling(law: Law, targets: pl.DataFrame) -> alt.Chart:
    ns = np.geomspace(1e7, 1e12, 60)
    ds = np.geomspace(1e9, 1e14, 60)
    N, D = np.meshgrid(ns, ds)
    grid = pl.DataFrame({"params": N.ravel(), "tokens": D.ravel(), "loss": law.loss(N.ravel(), D.ravel())})
    heat = alt.Chart(grid.to_pandas()).mark_rect().encode(
        x=alt.X("params:Q", scale=alt.Scale(type="log"), bin=False, title="parameters N"),
        y=alt.Y("tokens:Q", scale=alt.Scale(type="log"), title="training tokens D"),
        color=alt.Color("loss:Q", scale=alt.Scale(scheme="viridis", reverse=True), title="loss"),
        tooltip=[alt.Tooltip("params:Q", format=".2s"), alt.Tooltip("tokens:Q", format=".2s"), alt.Tooltip("loss:Q", format=".3f")])
    c = np.geomspace(1e18, 1e27, 40)
    n_opt, d_opt = law.optimal(c)
    frontier = alt.Chart(pl.DataFrame({"params": n_opt, "tokens": d_opt, "compute": c}).to_pandas()).mark_line(color="white", strokeWidth=2).encode(
        x="params:Q", y="tokens:Q", tooltip=[alt.Tooltip("compute:Q", format=".2e")])
    marks = alt.Chart(targets.to_pandas()).mark_point(color="red", filled=True, size=60).encode(
        x="params:Q", y="tokens:Q", shape="policy:N", tooltip=["policy:N", alt.Tooltip("params:Q", format=".3s"), alt.Tooltip("tokens:Q", format=".3s"), alt.Tooltip("predicted_loss:Q", format=".3f")])
    return (heat + frontier + marks).properties(width=560, height=400, title=f"Loss over (N, D) — {law.name}: compute-optimal frontier and targets")


def chart_mixture(langs: pl.DataFrame) -> alt.Chart:
    df = langs.filter(pl.col("policy") == langs["policy"][0]).with_columns(
        pl.col("target_params").map_elements(fmt_params, return_dtype=pl.Utf8).alias("target"),
        (pl.col("effective_tokens") / pl.col("tokens")).alias("effective_share")).to_pandas()
    ep = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("target_params:Q", scale=alt.Scale(type="log"), title="target parameters"),
        y=alt.Y("epochs:Q", scale=alt.Scale(type="log"), title="epochs over unique tokens"),
        color="language:N",
        tooltip=["target:N", "language:N", alt.Tooltip("tokens:Q", format=".3s"), alt.Tooltip("unique_tokens:Q", format=".3s"),
                 alt.Tooltip("epochs:Q", format=".2f"), alt.Tooltip("effective_share:Q", format=".0%")])
    four = alt.Chart(pl.DataFrame({"y": [4.0]}).to_pandas()).mark_rule(strokeDash=[4, 4], color="red").encode(y="y:Q")
    eff = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("target_params:Q", scale=alt.Scale(type="log"), title="target parameters"),
        y=alt.Y("effective_share:Q", title="effective / nominal tokens", axis=alt.Axis(format="%")), color="language:N")
    return alt.hconcat((ep + four).properties(width=420, height=300, title="Epochs per language (dashed: 4 epochs)"),
                       eff.properties(width=420, height=300, title="Effective-data penalty (Muennighoff et al. 2023)"))


def chart_changes(changes: pl.DataFrame) -> alt.Chart:
    df = changes.with_columns(pl.col("target_params").map_elements(fmt_params, return_dtype=pl.Utf8).alias("target")).to_pandas()
    base = alt.Chart(df)
    rule = base.mark_rule().encode(y=alt.Y("target:N", sort=None, title="target"), x=alt.X("old:Q", scale=alt.Scale(type="log"), title="p50 GPU-days"), x2="new:Q")
    old = base.mark_point().encode(y=alt.Y("target:N", sort=None), x="old:Q", tooltip=["target:N", "accelerator:N", alt.Tooltip("old:Q", format=",.0f"), alt.Tooltip("new:Q", format=",.0f")])
    new = base.mark_point(filled=True).encode(y=alt.Y("target:N", sort=None), x="new:Q", color="accelerator:N")
    return (rule + old + new).properties(width=640, height=max(120, 20 * len(df)), title="What changed since the previous run (hollow: old, filled: new)")


SENTENCES = {
    "gpu_hours": "Each dot is a public training run; the line and band are llmplan's p50 and p10–p90 for an A100-80GB run on 256 GPUs — a dot above the band took longer than the model expects.",
    "utilization": "Both measures count 6·N·D model FLOPs against the dense peak: whole runs (÷ all paid accelerator time) sit well below single steps, because restarts, evaluation and failures are in the whole run.",
    "backtest": "Points on the dashed diagonal are perfect predictions of runs the model never saw; compare llmplan's p50 with the 40%-MFU rule.",
    "bpt": "Ratios measured on your corpus (llmplan corpus scan) beside published corpus sizes; a wider bar is a less certain ratio.",
    "plans": "Plan grid for the target sizes: GPU-days per accelerator with p10–p90, wall-clock days on each cluster, cost, memory and loss.",
    "days": "Left: more accelerators finish sooner but utilisation drops with cluster size. Right: what the speed costs.",
    "scaling": "Colour is predicted loss; the white line is the compute-optimal frontier; red marks are the planned (N, D).",
    "mixture": "Epochs above 4 (dashed) mean repeated data worth much less; the right panel shows how much of the nominal tokens still count.",
    "changes": "Each line joins the previous run's p50 GPU-days (hollow) with this run's (filled).",
}


def _table(df: pl.DataFrame, formats: dict) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in formats)
    rows = []
    for r in df.iter_rows(named=True):
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(f(r)))}</td>" for f in formats.values()) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


TARGET_LOG10_ERR, TARGET_COVERAGE, STEP_COVERAGE = 0.10, (0.75, 0.90), (0.70, 0.90)


def backtest_verdict(summary: pl.DataFrame) -> str:
    """One line per split and llmplan method against llmplan's own targets (whole runs: median
    |log10 error| ≤ 0.10, below the rule's, 75–90 % of actual values inside p10–p90; per step:
    ≤ 0.10 and 70–90 % inside), so a reader sees where not to trust it."""
    items = []
    for split in summary["split"].unique(maintain_order=True).to_list():
        s = summary.filter(pl.col("split") == split)
        rules = s.filter(~pl.col("method").str.starts_with("llmplan"))
        rule_err = rules["median_abs_log10_err"].min() if rules.height else None
        per_step = split.startswith("per step")
        lo, hi = STEP_COVERAGE if per_step else TARGET_COVERAGE
        for own in s.filter(pl.col("method").str.starts_with("llmplan")).iter_rows(named=True):
            err, cov = own["median_abs_log10_err"], own["coverage_p10_p90"]
            ok = err <= TARGET_LOG10_ERR and (per_step or rule_err is None or err < rule_err) and cov is not None and lo <= cov <= hi
            vs = f" ({err / rule_err:.2f}× the best rule's)" if rule_err else ""
            items.append(f"<li>{html.escape(split)}, {html.escape(own['method'])}: {'meets' if ok else 'misses'} the target — "
                         f"error {err:.3f}{vs}, {cov:.0%} inside p10–p90</li>")
    return ("<p>Targets: whole runs, median |log10 error| ≤ 0.10 and below the rule's with 75–90 % of actual values inside "
            f"p10–p90; per step, ≤ 0.10 with 70–90 % inside.</p><ul>{''.join(items)}</ul>")


def plan_table(plans: pl.DataFrame, langs: pl.DataFrame) -> str:
    """Two tables: per (target, policy) the tokens, compute, bytes, loss and GPU-days per
    accelerator; then wall-clock days per (target, accelerator) on each cluster size."""
    bytes_per = langs.group_by("target_params", "policy").agg(
        pl.format("{}: {}", "language", pl.col("bytes_p50").map_elements(fmt_bytes, return_dtype=pl.Utf8)).str.join(", ").alias("bytes"))
    per_acc = plans.group_by("target_params", "policy", "accelerator").agg(
        pl.col("gpu_hours_p10").first(), pl.col("gpu_days_p50").first(), pl.col("gpu_hours_p90").first(),
        pl.col("cost_usd_p50").first(), pl.col("min_gpus_for_memory").first())
    per_acc = per_acc.with_columns(pl.struct(pl.all()).map_elements(
        lambda r: f"{fmt_count(r['gpu_days_p50'])} ({fmt_count(r['gpu_hours_p10'] / 24)}–{fmt_count(r['gpu_hours_p90'] / 24)})"
                  f" · {fmt_usd(r['cost_usd_p50'])} · mem ≥ {r['min_gpus_for_memory'] if r['min_gpus_for_memory'] is not None else '∞'}",
        return_dtype=pl.Utf8).alias("cell"))
    accs = sorted(plans["accelerator"].unique().to_list())
    wide = per_acc.pivot(on="accelerator", index=["target_params", "policy"], values="cell")
    base = (plans.group_by("target_params", "policy").agg(pl.col("params").first(), pl.col("tokens").first(),
                                                           pl.col("training_flop").first(), pl.col("predicted_loss").first())
            .join(bytes_per, on=["target_params", "policy"]).join(wide, on=["target_params", "policy"]).sort("target_params", "policy"))
    cols = {
        "target": lambda r: fmt_params(r["target_params"]), "policy": lambda r: r["policy"],
        "trained params": lambda r: fmt_params(r["params"]), "tokens": lambda r: fmt_sci(r["tokens"]),
        "compute": lambda r: fmt_sci(r["training_flop"], "FLOP"), "bytes per language (p50)": lambda r: r["bytes"],
        "predicted loss": lambda r: f"{r['predicted_loss']:.3f}" if r["predicted_loss"] is not None and math.isfinite(r["predicted_loss"]) else "–",
    }
    for a in accs:
        cols[f"{a}: GPU-days p50 (p10–p90) · cost p50 · min accelerators (memory)"] = (lambda a: lambda r: r.get(a) or "–")(a)
    first = _table(base, cols)
    policy = plans["policy"][0]
    days = (plans.filter(pl.col("policy") == policy)
            .with_columns(pl.col("wall_days_p50").map_elements(fmt_days, return_dtype=pl.Utf8).alias("d"))
            .pivot(on="cluster_gpus", index=["target_params", "accelerator"], values="d", sort_columns=True)
            .sort("target_params", "accelerator"))
    clusters = [c for c in days.columns if c not in ("target_params", "accelerator")]
    dcols = {"target": lambda r: fmt_params(r["target_params"]), "accelerator": lambda r: r["accelerator"]}
    for c in clusters:
        dcols[f"{c} accelerators"] = (lambda c: lambda r: r[c] or "–")(c)
    return first + f"<h3>Wall-clock days (p50) by cluster size — {html.escape(policy)} tokens</h3>" + _table(days, dcols)


CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
h1{margin-bottom:0}.sub{color:#666}section{margin:2em 0}p.how{color:#444;max-width:60em}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.kpi{display:inline-block;margin:0 2em 1em 0}.kpi b{display:block;font-size:1.4em}"""


def render(run_id: str, data: dict, bundle: str | None = None) -> tuple[str, alt.TopLevelMixin]:
    """The report page and its headline chart. `data` comes from llmplan.pipeline.report_data()."""
    import vl_convert as vlc
    from altair.utils._importers import vl_version_for_vl_convert

    bundle = bundle or vlc.javascript_bundle(vl_version=vl_version_for_vl_convert())
    sections: list[tuple[str, str, str, alt.TopLevelMixin | None, str]] = []
    runs = data["runs"]
    runs_html = "<details><summary>Training runs in the fit</summary>" + _table(runs.sort("training_flop"), {
        "model": lambda r: r["model"], "org": lambda r: r["org"] or "", "year": lambda r: r["year"],
        "accelerator": lambda r: r["accelerator"], "GPUs": lambda r: fmt_count(r["gpu_count"]) if r["gpu_count"] else "–",
        "compute": lambda r: fmt_sci(r["training_flop"], "FLOP"), "GPU-hours": lambda r: fmt_count(r["gpu_hours"]),
        "whole-run utilisation": lambda r: f"{r['utilization']:.0%}",
        "weight in the fit": lambda r: "–" if r.get("fit_weight") is None else f"{r['fit_weight']:.2f}",
        "source": lambda r: r["source"] or ""}) + "</details>"
    sections.append(("gpu_hours", "1. GPU-hours vs training compute", SENTENCES["gpu_hours"], chart_gpu_hours(runs, data["band"]), runs_html))
    sections.append(("utilization", "2. Utilisation by accelerator", SENTENCES["utilization"], chart_utilization(runs, data["throughput"]), ""))
    bt_html = _table(data["backtest_summary"], {
        "split": lambda r: r["split"], "method": lambda r: r["method"], "runs": lambda r: r["n"],
        "median |log10 error|": lambda r: f"{r['median_abs_log10_err']:.3f}",
        "median |% error|": lambda r: f"{r['median_abs_pct_err']:.0f}%",
        "inside p10–p90": lambda r: "–" if r["coverage_p10_p90"] is None else f"{r['coverage_p10_p90']:.0%}"})
    bt_html += backtest_verdict(data["backtest_summary"])
    sections.append(("backtest", "3. Backtest", SENTENCES["backtest"], chart_backtest(data["backtests"]), bt_html))
    if data["bytes_per_token"].height:
        sections.append(("bpt", "4. Bytes per token", SENTENCES["bpt"], chart_bytes_per_token(data["bytes_per_token"]), ""))
    sections.append(("plans", "5. Plans for the target sizes", SENTENCES["plans"], None, plan_table(data["plans"], data["languages"])))
    sections.append(("days", "6. Days vs cluster size, and cost", SENTENCES["days"], chart_days_vs_cluster(data["plans"]), ""))
    sections.append(("scaling", "7. Scaling law", SENTENCES["scaling"], chart_scaling(data["law"], data["targets"]), ""))
    sections.append(("mixture", "8. Data mixture", SENTENCES["mixture"], chart_mixture(data["languages"]), ""))
    if data["changes"].height:
        sections.append(("changes", "9. What changed since the previous run", SENTENCES["changes"], chart_changes(data["changes"]), ""))
    else:
        sections.append(("changes", "9. What changed since the previous run", "No previous run with plans to compare against.", None, ""))

    body, scripts = [], []
    for key, title, sentence, chart, extra in sections:
        div = f'<div id="chart-{key}" class="chart"></div>' if chart is not None else ""
        body.append(f'<section id="{key}"><h2>{html.escape(title)}</h2><p class="how">{html.escape(sentence)}</p>{div}{extra}</section>')
        if chart is not None:
            scripts.append(f'vegaEmbed("#chart-{key}", {_spec_json(chart)}, {{"actions": false, "renderer": "svg"}}).catch(e => console.error(e));')
    k = data["kpis"]
    kpis = "".join(f'<div class="kpi"><span>{html.escape(a)}</span><b>{html.escape(b)}</b></div>' for a, b in k)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>llmplan report {html.escape(run_id)}</title>
<style>{CSS}</style>
<script type="text/javascript">{bundle}</script></head>
<body><h1>llmplan report</h1><p class="sub">pipeline run {html.escape(run_id)} · generated {now} · <a href="../index.html">all runs</a></p>
{kpis}
{''.join(body)}
<script type="text/javascript">
{chr(10).join(scripts)}
</script></body></html>"""
    return page, sections[0][3]


def write_index(reports_dir: Path, runs: list[dict]) -> Path:
    """reports/index.html: every run, newest first, with its headline numbers."""
    rows = "".join(
        f'<tr><td><a href="{html.escape(r["pipeline_run_id"])}/index.html">{html.escape(r["pipeline_run_id"])}</a></td>'
        f'<td>{html.escape(str(r.get("finished_at", "")))}</td><td>{html.escape(r.get("headline", ""))}</td></tr>'
        for r in runs)
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>llmplan reports</title><style>{CSS}</style></head>
<body><h1>llmplan reports</h1><table><thead><tr><th>run</th><th>finished</th><th>headline</th></tr></thead><tbody>{rows}</tbody></table></body></html>"""
    out = Path(reports_dir) / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out


def headline_png(chart: alt.TopLevelMixin, path: Path) -> Path:
    import vl_convert as vlc

    png = vlc.vegalite_to_png(chart.to_dict(), scale=1.5)
    Path(path).write_bytes(png)
    return Path(path)
