"""The HTML report: one self-contained page per pipeline run (Vega, Vega-Lite and vega-embed
inlined once; no network), plus reports/index.html listing every run, newest first.

It answers first (a card per headline target: tokens, text per language, GPU-days per
accelerator with p10–p90, days on each cluster, cost, memory, loss), then lets a reader ask
"what if" offline: Vega-Lite parameters bound to drop-downs filter data embedded in the page
(every target × policy × accelerator × cluster), so another choice redraws the chart and its
numbers with no server. Words come from llmplan.i18n (English or Japanese).

Everything from input files is escaped: tables go through html.escape, chart specs are JSON
with '<' written as \\u003c (so a model named '</script>' cannot close the script), Vega draws
text as SVG text and vega-embed's tooltip handler sanitises HTML.
"""

import functools
import html
import json
import math
import string
from datetime import datetime, timezone
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl

from llmplan import config
from llmplan.evidence import with_caveats
from llmplan.headline import card_rows
from llmplan.i18n import FONT_FAMILY, fmt_days, fmt_gpus, text, value_expr
from llmplan.scaling import Law
from llmplan.tracking import fmt_chance
from llmplan.units import fmt_bytes, fmt_count, fmt_params, fmt_sci, fmt_usd

alt.data_transformers.disable_max_rows()


def _spec_dict(chart: alt.TopLevelMixin) -> dict:
    """The chart's Vega-Lite spec, with a font family that draws Japanese (llmplan.i18n.FONT_FAMILY)."""
    d = chart.to_dict()
    d.setdefault("config", {})["font"] = FONT_FAMILY
    return d


def _spec_json(chart: alt.TopLevelMixin) -> str:
    return json.dumps(_spec_dict(chart)).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _select(name: str, options: list, default, label: str) -> alt.Parameter:
    return alt.param(name=name, value=default, bind=alt.binding_select(options=options, name=label))


# Axis labels for counts of parameters or tokens: 10M, 1B, 1T (not 1e+12, not SI's G).
PARAMS_LABEL = ("datum.value >= 1e12 ? format(datum.value / 1e12, '~g') + 'T' : datum.value >= 1e9 ? "
                "format(datum.value / 1e9, '~g') + 'B' : datum.value >= 1e6 ? format(datum.value / 1e6, '~g') + 'M' : "
                "format(datum.value, '~g')")


# Tick values (in days) people read as durations: 1 and 10 seconds; 1, 10 and 30 minutes; 1, 3 and 12 hours; 1, 3, 10, 30, 100, 365 days…
DURATION_TICKS = [1 / 86400, 10 / 86400, 1 / 1440, 10 / 1440, 30 / 1440, 1 / 24, 3 / 24, 12 / 24, 1, 3, 10, 30, 100, 365, 1000, 3650]


def _duration_label(lang: str) -> str:
    """Axis labels for a value in days: minutes, hours or days in the report's language."""
    sec, m, h, d = (text(lang, k, x="").strip() for k in ("u_sec_short", "u_min_short", "u_hour_short", "u_day_short"))
    return (f"datum.value < 0.999/1440 ? format(datum.value * 86400, '.2~r') + ' {sec}' : datum.value < 0.999/24 ? format(datum.value * 1440, '.2~r') + ' {m}' : datum.value < 0.999 ? "
            f"format(datum.value * 24, '.2~r') + ' {h}' : format(datum.value, ',.4~r') + ' {d}'")


def _target_label(x: pl.Expr) -> pl.Expr:
    return x.map_elements(fmt_params, return_dtype=pl.Utf8)


def _worded(expr: pl.Expr, f) -> pl.Expr:
    """A number worded for people (fmt_* from llmplan.units / llmplan.i18n), nulls kept."""
    return expr.map_elements(f, return_dtype=pl.Utf8, skip_nulls=True).fill_null("–")


def _text_expr(lang: str, key: str, **exprs: pl.Expr) -> pl.Expr:
    """A catalogue sentence filled column-wise: placeholders may come in any order per language."""
    template = text(lang, key)
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f]
    return pl.format(template.format(**{n: "{}" for n in names}), *(exprs[n] for n in names))


def _text_per_language(langs: pl.DataFrame) -> pl.DataFrame:
    return langs.group_by("target_params", "policy").agg(
        pl.format("{} {}", "language", _worded(pl.col("bytes_p50"), fmt_bytes)).sort_by("language").str.join(", ").alias("_text"))


def _worded_plans(plans: pl.DataFrame, langs: pl.DataFrame, lang: str) -> pl.DataFrame:
    """Every plan row with its answers already worded (vectorised; one expression per column)."""
    days = functools.partial(fmt_days, lang)
    has_layout = "tp" in plans.columns
    layout = (pl.when(pl.col("tp").is_not_null()).then(pl.concat_str(
        pl.format("TP {} × PP {} × DP {}", "tp", "pp", "dp"),
        pl.when(pl.col("ep").fill_null(1) > 1).then(pl.format(", EP {}", "ep")).otherwise(pl.lit("")),
        pl.format(", ZeRO-{}", "zero_stage"))).otherwise(pl.lit("–"))) if has_layout else pl.lit("–")
    useful = _worded(pl.col("useful_gpus"), functools.partial(fmt_gpus, lang)) if "useful_gpus" in plans.columns else pl.lit("–")
    idle = pl.when(pl.col("useful_gpus") < pl.col("cluster_gpus")) if "useful_gpus" in plans.columns else pl.when(pl.lit(False))
    finite_loss = pl.col("predicted_loss").is_not_null() & pl.col("predicted_loss").is_finite()
    return plans.join(_text_per_language(langs), on=["target_params", "policy"], how="left").with_columns(
        _target_label(pl.col("target_params")).alias("target"),
        pl.col("cluster_gpus").cast(pl.Int64).alias("cluster"),
        _worded(pl.col("tokens"), fmt_sci).alias("w_tokens"),
        pl.format("{} ({}–{})", _worded(pl.col("gpu_days_p50"), fmt_count), _worded(pl.col("gpu_hours_p10") / 24, fmt_count),
                  _worded(pl.col("gpu_hours_p90") / 24, fmt_count)).alias("w_gpu_days"),
        pl.format("{} ({}–{})", _worded(pl.col("wall_days_p50"), days), _worded(pl.col("wall_days_p10"), days),
                  _worded(pl.col("wall_days_p90"), days)).alias("w_days"),
        _worded(pl.col("wall_days_p50"), days).alias("w_days_p50"),
        pl.concat_str(_worded(pl.col("wall_days_p50"), days), idle.then(pl.lit(" †")).otherwise(pl.lit(""))).alias("w_days_p50_mark"),
        pl.when(pl.col("cost_usd_p50").is_null()).then(pl.lit(text(lang, "no_price")))
        .otherwise(_worded(pl.col("cost_usd_p50"), fmt_usd)).alias("w_cost"),
        pl.concat_str(pl.col("memory_per_gpu_gib").round(1).cast(pl.Utf8), pl.lit(" GiB"),
                      pl.when(pl.col("fits_in_memory")).then(pl.lit("")).otherwise(pl.lit(" — " + text(lang, "memory_never")))
                      ).alias("w_memory"),
        pl.when(pl.col("min_gpus_for_memory").is_null()).then(pl.lit(text(lang, "memory_never"))).otherwise(
            _text_expr(lang, "memory_fits", n=pl.col("min_gpus_for_memory"), c=pl.col("cluster_gpus"),
                       gib=pl.col("memory_per_gpu_gib").round(0).cast(pl.Int64))).alias("w_memory_card"),
        layout.alias("w_layout"), useful.alias("w_useful"),
        pl.when(finite_loss).then(pl.col("predicted_loss").round(3).cast(pl.Utf8)).otherwise(pl.lit("–")).alias("w_loss"),
        pl.when(finite_loss).then(pl.concat_str(
            pl.col("predicted_loss").round(3).cast(pl.Utf8),
            pl.when(pl.col("predicted_loss_p10").is_not_null()).then(
                pl.format(" (p10–p90 {}–{})", pl.col("predicted_loss_p10").round(3), pl.col("predicted_loss_p90").round(3)))
            .otherwise(pl.lit("")) if "predicted_loss_p10" in plans.columns else pl.lit(""),
            pl.format(" · {}", "loss_law") if "loss_law" in plans.columns else pl.lit("")))
        .otherwise(pl.lit("–")).alias("w_loss_range"),
        pl.col("_text").fill_null("–").alias("w_text"),
    )


# -- the answer first ---------------------------------------------------------------------

def answer_cards(plans: pl.DataFrame, langs: pl.DataFrame, targets: list[float], policy: str, lang: str,
                 evidence: dict | None = None) -> str:
    """One card per headline target: the seed questions in words and units. Per accelerator:
    GPU-days on its cheapest cluster (the layout changes with the cluster, so GPU-days do too),
    then days and cost on each planned cluster, and what memory needs."""
    w = _worded_plans(plans.filter(pl.col("target_params").is_in(targets) & (pl.col("policy") == policy)), langs, lang)
    clusters = sorted(w["cluster"].unique().to_list())
    w = w.with_columns(
        pl.when(pl.col("fits_in_memory")).then(pl.format("{} · {}", "w_days_p50_mark", "w_cost"))
        .otherwise(pl.lit(text(lang, "not_fit"))).alias("w_cell"))
    # the cluster each accelerator's row shows: llmplan.headline.card_rows, the same rows as the
    # Prefect headline artifact (a target that fits nowhere says so instead of GPU-days)
    cheapest = card_rows(w, targets, policy).select(
        "target_params", "accelerator", "w_memory_card",
        pl.when(pl.col("fits_in_memory")).then(pl.col("w_gpu_days")).otherwise(pl.lit(text(lang, "not_fit"))).alias("w_gpu_days"))
    caveats = (with_caveats(card_rows(plans, targets, policy), evidence, lang).select("target_params", "accelerator", "caveats")
               if evidence else None)
    per_cluster = w.pivot(on="cluster", index=["target_params", "accelerator"], values="w_cell", sort_columns=True)
    per_acc = cheapest.join(per_cluster, on=["target_params", "accelerator"]).sort("accelerator")
    idle = w.group_by("target_params").agg(pl.col("w_days_p50_mark").str.ends_with("†").any().alias("idle"))
    cols = {text(lang, "col_acc"): lambda r: r["accelerator"], text(lang, "col_gpu_days"): lambda r: r["w_gpu_days"]}
    for c in clusters:
        cols[text(lang, "col_days", n=f"{c:,}")] = (lambda c: lambda r: r.get(str(c)) or "–")(c)
    cols[text(lang, "col_memory")] = lambda r: r["w_memory_card"]
    active = pl.col("active_params") if "active_params" in w.columns else pl.lit(None, pl.Float64)
    head = w.with_columns(pl.when(active.is_not_null() & (active < pl.col("params"))).then(
        _text_expr(lang, "card_params_moe", total=_target_label(pl.col("params")), active=_target_label(active)))
        .otherwise(_target_label(pl.col("params"))).alias("w_params")).group_by("target_params").agg(
        pl.col("params", "w_params", "w_tokens", "w_text", "w_loss_range").first())
    cards = []
    for t in targets:                                   # one card per headline target (a handful)
        h = head.filter(pl.col("target_params") == t)
        if h.height == 0:
            continue
        first = h.row(0, named=True)
        note = idle.filter(pl.col("target_params") == t)["idle"].any()
        cards.append(
            f'<div class="card" data-target="{t:g}"><h3>{html.escape(fmt_params(t))}</h3><dl>'
            f"<dt>{html.escape(text(lang, 'card_params'))}</dt><dd>{html.escape(first['w_params'])}</dd>"
            f"<dt>{html.escape(text(lang, 'card_tokens', policy=policy))}</dt><dd>{html.escape(first['w_tokens'])}</dd>"
            f"<dt>{html.escape(text(lang, 'card_text'))}</dt><dd>{html.escape(first['w_text'])}</dd>"
            f"<dt>{html.escape(text(lang, 'card_loss'))}</dt><dd>{html.escape(first['w_loss_range'])}</dd></dl>"
            f"{_table(per_acc.filter(pl.col('target_params') == t), cols)}"
            + (f'<p class="note">{html.escape(text(lang, "idle_note"))}</p>' if note else "")
            + _caveat_notes(caveats, t) + "</div>")
    return "".join(cards)


def _caveat_notes(caveats: pl.DataFrame | None, target: float) -> str:
    """A card's caveats (llmplan.evidence), each sentence once (an accelerator's names it)."""
    if caveats is None:
        return ""
    c = caveats.filter(pl.col("target_params") == target).explode("caveats").drop_nulls("caveats")["caveats"]
    return "".join(f'<p class="note caveat">⚠ {html.escape(x)}</p>' for x in c.unique(maintain_order=True).to_list())


WHATIF_COLUMNS = ("wi_tokens", "wi_gpu_days", "wi_days", "wi_cost", "wi_memory", "wi_layout", "wi_useful", "wi_loss", "wi_text")


def whatif_frame(plans: pl.DataFrame, langs: pl.DataFrame, lang: str) -> pl.DataFrame:
    """Every (target, policy, accelerator, cluster) with its answers already worded; columns
    keep their short keys (wi_*) — the chart looks the words up once, which keeps the file small."""
    w = _worded_plans(plans, langs, lang)
    return w.select("target", "policy", "accelerator", "cluster",
                    *(pl.col("w_" + k.removeprefix("wi_")).alias(k) for k in WHATIF_COLUMNS))


def _data(df: pl.DataFrame) -> pl.DataFrame:
    """Chart data as embedded: floats to 4 significant figures (no chart needs more, and the
    page stays small)."""
    return df.with_columns(pl.col(pl.Float64, pl.Float32).round_sig_figs(4))


def _controls(plans: pl.DataFrame, lang: str, which=("target", "policy", "accelerator", "cluster"), target=None):
    targets = [fmt_params(t) for t in sorted(plans["target_params"].unique().to_list())]
    policies = plans["policy"].unique(maintain_order=True).to_list()
    accs = sorted(plans["accelerator"].unique().to_list())
    clusters = sorted(int(c) for c in plans["cluster_gpus"].unique().to_list())
    default_t = fmt_params(target) if target else targets[len(targets) // 2]
    default_a = "H100-80GB" if "H100-80GB" in accs else accs[0]
    default_c = min(clusters, key=lambda c: abs(math.log(c / 256)))
    made = {"target": _select("sel_target", targets, default_t, text(lang, "sel_target")),
            "policy": _select("sel_policy", policies, policies[0], text(lang, "sel_policy")),
            "accelerator": _select("sel_acc", accs, default_a, text(lang, "sel_acc")),
            "cluster": _select("sel_cluster", clusters, default_c, text(lang, "sel_cluster"))}
    return {k: made[k] for k in which}


def chart_whatif(plans: pl.DataFrame, langs: pl.DataFrame, lang: str, target=None) -> alt.Chart:
    """The numbers for one chosen (target, policy, accelerator, cluster), as text."""
    df = whatif_frame(plans, langs, lang)
    c = _controls(plans, lang, target=target)
    labels = [text(lang, k) for k in WHATIF_COLUMNS]
    words = alt.LookupData(alt.InlineData(values=[{"key": k, "label": text(lang, k)} for k in WHATIF_COLUMNS]),
                           key="key", fields=["label"])
    return alt.Chart(df).mark_text(align="left", fontSize=14, dx=4).encode(
        y=alt.Y("label:N", sort=labels, title=None, axis=alt.Axis(labelFontSize=13, labelLimit=360, domain=False, ticks=False)),
        x=alt.value(0), text="value:N",
    ).transform_filter(
        (alt.datum.target == c["target"]) & (alt.datum.policy == c["policy"]) & (alt.datum.accelerator == c["accelerator"])
        & (alt.datum.cluster == c["cluster"])
    ).transform_fold(list(WHATIF_COLUMNS), as_=["key", "value"]).transform_lookup(lookup="key", from_=words).add_params(
        *c.values()).properties(width=620, height=32 * len(labels), title=text(lang, "whatif"))


def chart_seed(runs: pl.DataFrame, plans: pl.DataFrame, lang: str) -> alt.LayerChart:
    """GPU-days against parameters: public runs (hover for the model) and the plan's band."""
    c = _controls(plans, lang, which=("policy", "accelerator", "cluster"))
    pts = alt.Chart(_data(runs.select("model", "org", "year", "accelerator", "params", "tokens",
                                      (pl.col("tokens") / pl.col("params")).alias("tokens_per_param"),
                                      (pl.col("gpu_hours") / 24).alias("gpu_days"), "source"))).mark_circle(size=60, opacity=0.75).encode(
        x=alt.X("params:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_params"), axis=alt.Axis(labelExpr=PARAMS_LABEL)),
        y=alt.Y("gpu_days:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_gpu_days")),
        color=alt.Color("accelerator:N", title=text(lang, "ax_accelerator")),
        tooltip=["model:N", "org:N", "year:Q", "accelerator:N", alt.Tooltip("gpu_days:Q", format=",.0f"),
                 alt.Tooltip("tokens:Q", format=".3s"), alt.Tooltip("tokens_per_param:Q", format=",.0f"), "source:N"])
    band = plans.select("policy", "accelerator", pl.col("cluster_gpus").cast(pl.Int64).alias("cluster"), "params",
                        (pl.col("gpu_hours_p10") / 24).alias("lo"), "gpu_days_p50", (pl.col("gpu_hours_p90") / 24).alias("hi"))
    flt = (alt.datum.policy == c["policy"]) & (alt.datum.accelerator == c["accelerator"]) & (alt.datum.cluster == c["cluster"])
    b = alt.Chart(_data(band)).transform_filter(flt)
    area = b.mark_area(opacity=0.18, color="black").encode(x="params:Q", y="lo:Q", y2="hi:Q")
    line = b.mark_line(color="black").encode(x="params:Q", y="gpu_days_p50:Q",
                                             tooltip=[alt.Tooltip("params:Q", format=".3s"), alt.Tooltip("gpu_days_p50:Q", format=",.0f")])
    return alt.layer(area, line, pts).add_params(*c.values()).properties(width=640, height=400, title=text(lang, "seed"))


def chart_days_vs_cluster(plans: pl.DataFrame, lang: str, target=None) -> alt.LayerChart:
    """Wall-clock days against cluster size for the chosen target and policy, one line per
    accelerator. Clusters too small to hold the model are left out (no one could run them);
    hollow points are clusters the global batch cannot keep busy, and a dashed rule marks
    the useful-cluster limit where the plans know it."""
    c = _controls(plans, lang, which=("target", "policy"), target=target)
    useful = pl.col("useful_gpus") if "useful_gpus" in plans.columns else pl.col("cluster_gpus").cast(pl.Float64)
    df = plans.filter(pl.col("fits_in_memory")).select(
        _target_label(pl.col("target_params")).alias("target"), "policy", "accelerator",
        pl.col("cluster_gpus").cast(pl.Int64).alias("cluster"), "wall_days_p10", "wall_days_p50", "wall_days_p90",
        "cost_usd_p50", useful.alias("useful"),
        pl.when(useful < pl.col("cluster_gpus")).then(pl.lit(text(lang, "idle"))).otherwise(pl.lit(text(lang, "busy"))).alias("batch"))
    limit = (df.filter(pl.col("batch") == text(lang, "idle")).group_by("target", "policy", "accelerator")
             .agg(pl.col("useful").max().alias("limit")))
    flt = (alt.datum.target == c["target"]) & (alt.datum.policy == c["policy"])
    base = alt.Chart(_data(df)).transform_filter(flt)
    lo_c, hi_c = float(df["cluster"].min()), float(df["cluster"].max())       # a fixed domain: every choice on one axis
    x = alt.X("cluster:Q", scale=alt.Scale(type="log", domain=[lo_c / 1.5, hi_c * 1.5], nice=False), title=text(lang, "ax_cluster"))
    y = alt.Y("wall_days_p50:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_wall_days"),
              axis=alt.Axis(labelExpr=_duration_label(lang), values=DURATION_TICKS))
    band = base.mark_area(opacity=0.12).encode(x=x, y="wall_days_p10:Q", y2="wall_days_p90:Q",
                                               fill=alt.Fill("accelerator:N", legend=None))   # fill: keeps the legend solid
    line = base.mark_line().encode(x=x, y=y, color=alt.Color("accelerator:N", title=text(lang, "ax_accelerator")))
    pts = base.mark_point(size=60).encode(
        x=x, y=y, color=alt.Color("accelerator:N", title=text(lang, "ax_accelerator")),
        fill=alt.condition(alt.datum.batch == text(lang, "busy"), "accelerator:N", alt.value("white"), legend=None),
        tooltip=["target:N", "accelerator:N", "cluster:Q", alt.Tooltip("wall_days_p50:Q", format=",.2f"),
                 alt.Tooltip("wall_days_p90:Q", format=",.2f"), alt.Tooltip("cost_usd_p50:Q", format="$,.0f"),
                 alt.Tooltip("useful:Q", format=",.0f"), "batch:N"])
    layers = [band, line, pts]
    if limit.height:
        layers.append(alt.Chart(limit.with_columns(pl.lit(text(lang, "useful_limit")).alias("what"))).transform_filter(flt)
                      .mark_rule(strokeDash=[5, 4]).encode(
                          x="limit:Q", color="accelerator:N",
                          tooltip=["what:N", "accelerator:N", alt.Tooltip("limit:Q", format=",.0f")]))
    return alt.layer(*layers).add_params(*c.values()).properties(width=640, height=380, title=text(lang, "days"))


# -- runs in progress -----------------------------------------------------------------------

def _iso(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def tracked_cards(tracked: pl.DataFrame, lang: str) -> str:
    """One line per run in progress: the verdict (on track / misses its deadline), then its figures."""
    when = lambda x: x.strftime("%Y-%m-%d %H:%M UTC") if x is not None else "–"   # noqa: E731
    out = []
    for r in tracked.iter_rows(named=True):         # runs in progress: a handful
        if r.get("error"):
            out.append(f'<div class="card bad"><h3>{html.escape(r["run_name"])}</h3><p>{html.escape(text(lang, "track_error"))}</p>'
                       f"<pre>{html.escape(r['error'])}</pre></div>")
            continue
        late = r["on_track"] is False
        verdict = (text(lang, "track_passed") if r.get("deadline_passed") else text(lang, "track_late") if late
                   else text(lang, "track_ok") if r["on_track"] else text(lang, "track_no_deadline"))
        age = r.get("log_age_hours") or 0.0
        age_text = f"{age * 60:.0f} min" if age < 1 else f"{age:.1f} h" if age < 48 else f"{age / 24:.1f} d"
        items = [
            (text(lang, "track_as_of"), when(r.get("forecast_at"))
             + (" · ⚠ " + text(lang, "track_stale", age=age_text) if r.get("log_stale") else "")),
            (text(lang, "track_tokens"), f"{fmt_count(r['tokens_done'])} / {fmt_count(r['planned_tokens'])} ({r['fraction_done']:.1%})"),
            (text(lang, "track_eta"), f"{when(r['eta_p50'])} ({when(r['eta_p10'])} – {when(r['eta_p90'])})"),
            (text(lang, "track_deadline"), when(r["deadline"]) + ("" if r["p_on_time"] is None else
                                                                 " · " + text(lang, "track_chance", p=fmt_chance(r["p_on_time"])))),
            (text(lang, "track_rates"), f"{fmt_count(r['tokens_per_s_running'] or 0)} · {fmt_count(r['tokens_per_s_effective'] or 0)}"),
            (text(lang, "track_goodput"), ("–" if r["goodput_so_far"] is None else f"{r['goodput_so_far']:.0%}")
             + " · " + text(lang, "track_stalls", n=r["stalls"], h=f"{r['stall_hours']:.1f}")),
            (text(lang, "track_cost"), f"{fmt_count(r['gpu_hours_so_far'])} → {fmt_count(r['gpu_hours_end_p50'])} GPU-h · "
                                       f"{fmt_usd(r['cost_usd_so_far']) if r['cost_usd_so_far'] is not None else '–'} → "
                                       f"{fmt_usd(r['cost_usd_end_p50']) if r['cost_usd_end_p50'] is not None else '–'}"),
            (text(lang, "track_loss"), ("–" if r["loss_observed"] is None else f"{r['loss_observed']:.3f}") + " · "
             + ("–" if r["loss_predicted_now"] is None else f"{r['loss_predicted_now']:.3f}")),
            (text(lang, "track_interruptions"), "–" if r.get("interruptions_expected_left") is None else
             f"{r['interruptions_expected_left']:.1f} · {r['interruption_hours_prior']:.2f} h"),
            (text(lang, "track_prior"), text(lang, "track_prior_value", w=f"{r['prior_weight']:.0%}",
                                              days=fmt_days(lang, r["plan_wall_days_p50"]))),
            (text(lang, "track_log"), f"{r['log_file']} · {r['log_lines']:,} · {text(lang, 'track_bad', n=r['bad_lines'])}"),
        ]
        dl = "".join(f"<dt>{html.escape(a)}</dt><dd>{html.escape(b)}</dd>" for a, b in items)
        pot = "" if r["p_on_time"] is None else f"{r['p_on_time']:.6f}"
        out.append(f'<div class="card{" bad" if late else ""}" data-run="{html.escape(r["run_name"])}" '
                   f'data-on-track="{r["on_track"]}" data-p-on-time="{pot}" data-eta-p50="{when(r["eta_p50"])}" '
                   f'data-forecast-at="{when(r.get("forecast_at"))}" data-stale="{bool(r.get("log_stale"))}" '
                   f'data-deadline-passed="{bool(r.get("deadline_passed"))}">'
                   f'<h3>{html.escape(r["run_name"])}: {html.escape(verdict)}</h3><dl>{dl}</dl></div>')
    return "".join(out)


def _run_select(runs: list[str], lang: str) -> alt.Parameter:
    return _select("sel_run", runs, runs[0], text(lang, "sel_run"))


def chart_burndown(tracked: pl.DataFrame, progress: pl.DataFrame, lang: str) -> alt.LayerChart:
    """Tokens over time for the chosen run: the log, the plan's line from the start, the
    forecast band (p10–p90) and p50 from the last line to the planned tokens, the deadline."""
    ok = tracked.filter(pl.col("error").is_null())
    runs = ok["run_name"].to_list()
    sel = _run_select(runs, lang)
    actual = progress.select("run_name", _iso("time").alias("time"), "tokens", pl.lit(text(lang, "track_actual")).alias("series"))
    plan_end = (pl.col("start").cast(pl.Datetime("us", "UTC"))
                + pl.duration(microseconds=(pl.col("planned_tokens") / pl.col("plan_tokens_per_s") * 1e6).cast(pl.Int64)))
    plan = pl.concat([
        ok.select("run_name", _iso("start").alias("time"), pl.lit(0.0).alias("tokens")),
        ok.select("run_name", plan_end.dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("time"), pl.col("planned_tokens").alias("tokens")),
    ]).with_columns(pl.lit(text(lang, "track_plan")).alias("series"))
    p50 = pl.concat([ok.select("run_name", _iso("as_of").alias("time"), pl.col("tokens_done").alias("tokens")),
                     ok.select("run_name", _iso("eta_p50").alias("time"), pl.col("planned_tokens").alias("tokens"))]
                    ).with_columns(pl.lit(text(lang, "track_forecast")).alias("series"))
    lines = pl.concat([actual, plan, p50])
    band = pl.concat([ok.select("run_name", _iso("as_of").alias("lo"), _iso("as_of").alias("hi"), pl.col("tokens_done").alias("tokens")),
                      ok.select("run_name", _iso("eta_p10").alias("lo"), _iso("eta_p90").alias("hi"), pl.col("planned_tokens").alias("tokens"))])
    dl = ok.filter(pl.col("deadline").is_not_null()).select("run_name", _iso("deadline").alias("deadline"),
                                                            pl.lit(text(lang, "track_deadline")).alias("what"))
    flt = alt.datum.run_name == sel
    x = alt.X("time:T", scale=alt.Scale(type="utc"), title=text(lang, "ax_time_utc"),
              axis=alt.Axis(format="%m-%d", tickCount={"interval": "day", "step": 1}))
    y = alt.Y("tokens:Q", title=text(lang, "ax_tokens_done"), axis=alt.Axis(labelExpr=PARAMS_LABEL))
    colours = alt.Color("series:N", title=None, scale=alt.Scale(
        domain=[text(lang, "track_actual"), text(lang, "track_plan"), text(lang, "track_forecast")],
        range=["#1f77b4", "#7f7f7f", "#d62728"]))
    layers = [
        alt.Chart(_data(band)).transform_filter(flt).mark_area(opacity=0.18, color="#d62728", orient="horizontal").encode(
            x=alt.X("lo:T", scale=alt.Scale(type="utc")), x2="hi:T", y=alt.Y("tokens:Q", stack=None),
            tooltip=[alt.Tooltip("lo:T", title="p10", format="%Y-%m-%d %H:%M"), alt.Tooltip("hi:T", title="p90", format="%Y-%m-%d %H:%M")]),
        alt.Chart(_data(lines)).transform_filter(flt).mark_line().encode(
            x=x, y=y, color=colours, strokeDash=alt.condition(alt.datum.series == text(lang, "track_actual"), alt.value([1, 0]), alt.value([6, 4])),
            tooltip=["series:N", alt.Tooltip("time:T", format="%Y-%m-%d %H:%M UTC"), alt.Tooltip("tokens:Q", format=".4s")]),
    ]
    if dl.height:
        layers.append(alt.Chart(dl).transform_filter(flt).mark_rule(color="#444", strokeDash=[2, 2]).encode(
            x="deadline:T", tooltip=["what:N", alt.Tooltip("deadline:T", format="%Y-%m-%d %H:%M UTC")]))
    return alt.layer(*layers).add_params(sel).properties(width=640, height=340, title=text(lang, "burndown"))


def chart_eta_history(eta: pl.DataFrame, lang: str) -> alt.LayerChart:
    """The forecast finish (p50 with p10–p90) as of each pipeline run that read a new log line."""
    runs = eta["run_name"].unique(maintain_order=True).to_list()
    sel = _run_select(runs, lang)
    df = eta.select("run_name", _iso("as_of").alias("as_of"), _iso("eta_p10").alias("p10"), _iso("eta_p50").alias("p50"),
                    _iso("eta_p90").alias("p90"), _iso("deadline").alias("deadline"))
    base = alt.Chart(df).transform_filter(alt.datum.run_name == sel)
    day = alt.Axis(format="%m-%d", tickCount={"interval": "day", "step": 1})
    x = alt.X("as_of:T", scale=alt.Scale(type="utc"), title=text(lang, "ax_as_of"), axis=day)
    eta_y = alt.Y("p10:T", scale=alt.Scale(type="utc"), stack=None, title=text(lang, "ax_eta"), axis=day)
    layers = [base.mark_area(opacity=0.2, color="#d62728").encode(x=x, y=eta_y, y2="p90:T"),
              base.mark_errorbar(color="#d62728").encode(x=x, y=eta_y, y2="p90:T"),
              base.mark_line(point=alt.OverlayMarkDef(color="#d62728"), color="#d62728").encode(
                  x=x, y=alt.Y("p50:T", scale=alt.Scale(type="utc"), title=text(lang, "ax_eta"), axis=day),
                  tooltip=[alt.Tooltip("as_of:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("p10:T", format="%Y-%m-%d %H:%M"),
                           alt.Tooltip("p50:T", format="%Y-%m-%d %H:%M"), alt.Tooltip("p90:T", format="%Y-%m-%d %H:%M")])]
    if df["deadline"].is_not_null().any():
        layers.append(base.transform_filter(alt.datum.deadline != None).mark_rule(color="#444", strokeDash=[2, 2])  # noqa: E711
                      .encode(y="deadline:T"))
    return alt.layer(*layers).add_params(sel).properties(width=640, height=260, title=text(lang, "eta_history"))


def chart_loss_curve(progress: pl.DataFrame, lang: str) -> alt.Chart:
    """Observed training loss against tokens, beside the plan's scaling law at the same tokens."""
    runs = progress["run_name"].unique(maintain_order=True).to_list()
    sel = _run_select(runs, lang)
    df = pl.concat([
        progress.filter(pl.col("loss").is_not_null()).select("run_name", "tokens", "loss", pl.lit(text(lang, "loss_observed")).alias("series")),
        progress.filter(pl.col("predicted_loss").is_not_null()).select(
            "run_name", "tokens", pl.col("predicted_loss").alias("loss"), pl.lit(text(lang, "loss_law")).alias("series")),
    ])
    return alt.Chart(_data(df)).transform_filter(alt.datum.run_name == sel).mark_line().encode(
        x=alt.X("tokens:Q", title=text(lang, "ax_tokens_done"), axis=alt.Axis(labelExpr=PARAMS_LABEL)),
        y=alt.Y("loss:Q", scale=alt.Scale(zero=False), title=text(lang, "ax_loss")),
        color=alt.Color("series:N", title=None),
        strokeDash=alt.condition(alt.datum.series == text(lang, "loss_law"), alt.value([6, 4]), alt.value([1, 0])),
        tooltip=["series:N", alt.Tooltip("tokens:Q", format=".4s"), alt.Tooltip("loss:Q", format=".3f")],
    ).add_params(sel).properties(width=640, height=300, title=text(lang, "loss_curve"))


def chart_gpu_hours(runs: pl.DataFrame, band: pl.DataFrame, lang: str = "en") -> alt.Chart:
    pts = alt.Chart(_data(runs.select("model", "org", "year", "accelerator", "training_flop", "gpu_hours", "utilization", "source"))).mark_circle(size=60, opacity=0.8).encode(
        x=alt.X("training_flop:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_compute")),
        y=alt.Y("gpu_hours:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_gpu_hours")),
        color=alt.Color("accelerator:N", title=text(lang, "ax_accelerator")),
        tooltip=["model:N", "org:N", "year:Q", "accelerator:N", alt.Tooltip("gpu_hours:Q", format=",.0f"),
                 alt.Tooltip("utilization:Q", format=".0%"), "source:N"])
    b = alt.Chart(_data(band.select("training_flop", "gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90")))
    area = b.mark_area(opacity=0.15, color="gray").encode(x="training_flop:Q", y="gpu_hours_p10:Q", y2="gpu_hours_p90:Q")
    line = b.mark_line(color="black").encode(x="training_flop:Q", y="gpu_hours_p50:Q")
    return (area + line + pts).properties(width=640, height=380, title=text(lang, "gpu_hours"))


def chart_utilization(runs: pl.DataFrame, tp: pl.DataFrame, lang: str = "en") -> alt.Chart:
    from llmplan.accelerators import generation

    whole = runs.select("accelerator", "utilization", "model", pl.lit(text(lang, "whole_run")).alias("measure"))
    # Like with like: MosaicML's own MFU counts attention FLOPs; mfu_6n is the same step's 6·N·D
    # utilisation, the count the whole-run figures use.
    step = tp.filter(pl.col("fit_exclusion_reason").is_null()).select(
        "accelerator", pl.col("mfu_6n").alias("utilization"), "model", pl.lit(text(lang, "per_step")).alias("measure"))
    df = pl.concat([whole, step]).with_columns(generation(pl.col("accelerator")).alias("generation")).to_pandas()
    return alt.Chart(df).mark_tick(thickness=2, size=18).encode(
        y=alt.Y("generation:N", title=text(lang, "ax_generation"), sort="ascending"),
        x=alt.X("utilization:Q", title=text(lang, "ax_util"), axis=alt.Axis(format="%")),
        color=alt.Color("measure:N", title=text(lang, "ax_measure")),
        tooltip=["model:N", "accelerator:N", "generation:N", alt.Tooltip("utilization:Q", format=".1%"), "measure:N"],
    ).properties(width=640, height=260, title=text(lang, "utilization"))


def chart_backtest(bt: pl.DataFrame, lang: str = "en") -> alt.Chart:
    if "method" in bt.columns and bt["method"].is_not_null().any():   # what plans use: step × goodput when fitted
        plans = "step × goodput" if (bt["method"] == "step × goodput").any() else "whole-run model"
        bt = bt.filter(pl.col("method") == plans)
    df = pl.concat([
        bt.select("model", "split", "actual_gpu_hours", pl.col("pred_p50").alias("predicted"), pl.lit("llmplan p50").alias("method")),
        bt.select("model", "split", "actual_gpu_hours", pl.col("rule_gpu_hours").alias("predicted"), pl.lit("6ND/(peak×0.40)").alias("method")),
    ]).with_columns(value_expr(lang, pl.col("split")), value_expr(lang, pl.col("method"))).to_pandas()
    lo, hi = float(bt["actual_gpu_hours"].min()) / 2, float(bt["actual_gpu_hours"].max()) * 2
    diag = alt.Chart(pl.DataFrame({"x": [lo, hi], "y": [lo, hi]}).to_pandas()).mark_line(strokeDash=[4, 4], color="gray").encode(x="x:Q", y="y:Q")
    pts = alt.Chart(df).mark_point(filled=True, size=50).encode(
        x=alt.X("actual_gpu_hours:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_actual")),
        y=alt.Y("predicted:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_predicted")),
        color=alt.Color("method:N", title=text(lang, "ax_method")), shape=alt.Shape("split:N", title=text(lang, "ax_split")),
        tooltip=["model:N", "split:N", "method:N", alt.Tooltip("actual_gpu_hours:Q", format=",.0f"), alt.Tooltip("predicted:Q", format=",.0f")])
    return (diag + pts).properties(width=640, height=380, title=text(lang, "backtest"))


def chart_bytes_per_token(bpt: pl.DataFrame, langs: pl.DataFrame, lang: str = "en") -> alt.Chart:
    """Measured and published (UTF-8 text only) ratios, and — as diamonds — the one each
    language's plans use (plans.plan_languages)."""
    df = bpt.with_columns(pl.concat_str("language", pl.lit(" · "), "tokenizer").alias("row"), value_expr(lang, pl.col("kind")))
    used = (langs.group_by("language").agg(pl.col("bytes_per_token").first(), pl.col("bytes_per_token_kind").first(),
                                           pl.col("bytes_per_token_source").first() if "bytes_per_token_source" in langs.columns
                                           else pl.lit(None, pl.Utf8).alias("bytes_per_token_source"))
            .with_columns(pl.concat_str("language", pl.lit(" · "), pl.lit(text(lang, "used_by_plans"))).alias("row")))
    base = alt.Chart(df)
    y = alt.Y("row:N", title=text(lang, "ax_lang_tok"))
    rule = base.mark_rule().encode(y=y, x=alt.X("lo:Q", title=text(lang, "ax_bpt")), x2="hi:Q",
                                   color=alt.Color("kind:N", title=text(lang, "ax_source")))
    pt = base.mark_point(filled=True, size=70).encode(
        y="row:N", x="bytes_per_token:Q", color=alt.Color("kind:N", title=text(lang, "ax_source")),
        tooltip=["language:N", "tokenizer:N", "kind:N", alt.Tooltip("bytes_per_token:Q", format=".2f"), "source:N"])
    dia = alt.Chart(used).mark_point(shape="diamond", filled=True, size=140, color="crimson").encode(
        y="row:N", x="bytes_per_token:Q",
        tooltip=["language:N", alt.Tooltip("bytes_per_token:Q", format=".2f"), "bytes_per_token_kind:N", "bytes_per_token_source:N"])
    return (rule + pt + dia).properties(width=640, height=max(140, 24 * (df.height + used.height)), title=text(lang, "bpt"))


def chart_scaling(law: Law, targets: pl.DataFrame, lang: str = "en") -> alt.Chart:
    """The loss over (N, D) with its colour scale spanning the plotted range (2nd–98th
    percentile of the grid, clamped), the compute-optimal frontier and the planned points."""
    cells, (n_lo, n_hi), (d_lo, d_hi) = 60, (7, 12), (9, 14)      # log10 ranges of N and D
    i, j = (a.ravel() for a in np.meshgrid(np.arange(cells), np.arange(cells)))
    n_c = 10 ** (n_lo + (i + 0.5) * (n_hi - n_lo) / cells)            # each cell's (log) centre
    d_c = 10 ** (d_lo + (j + 0.5) * (d_hi - d_lo) / cells)
    loss = law.loss(n_c, d_c)
    lo, hi = (float(v) for v in np.percentile(loss[np.isfinite(loss)], [2, 98]))
    # Only the cell index and its loss are embedded; the page computes the edges (keeps the file small).
    grid = pl.DataFrame({"i": i, "j": j, "loss": loss})
    step_n, step_d = (n_hi - n_lo) / cells, (d_hi - d_lo) / cells
    heat = alt.Chart(_data(grid)).transform_calculate(
        n0=f"pow(10, {n_lo} + datum.i * {step_n})", n1=f"pow(10, {n_lo} + (datum.i + 1) * {step_n})",
        d0=f"pow(10, {d_lo} + datum.j * {step_d})", d1=f"pow(10, {d_lo} + (datum.j + 1) * {step_d})",
        params=f"pow(10, {n_lo} + (datum.i + 0.5) * {step_n})", tokens=f"pow(10, {d_lo} + (datum.j + 0.5) * {step_d})",
    ).mark_rect().encode(     # explicit cell edges: no gaps, no overlap
        x=alt.X("n0:Q", scale=alt.Scale(type="log", domain=[1e7, 1e12], nice=False), title=text(lang, "ax_params"),
                axis=alt.Axis(labelExpr=PARAMS_LABEL)),
        x2="n1:Q",
        y=alt.Y("d0:Q", scale=alt.Scale(type="log", domain=[1e9, 1e14], nice=False), title=text(lang, "ax_tokens"),
                axis=alt.Axis(labelExpr=PARAMS_LABEL)),
        y2="d1:Q",
        color=alt.Color("loss:Q", scale=alt.Scale(scheme="viridis", reverse=True, domain=[lo, hi], clamp=True),
                        title=text(lang, "ax_loss")),
        tooltip=[alt.Tooltip("params:Q", format=".2s"), alt.Tooltip("tokens:Q", format=".2s"), alt.Tooltip("loss:Q", format=".3f")])
    c = np.geomspace(1e18, 1e27, 40)
    n_opt, d_opt = law.optimal(c)
    keep = (n_opt >= 1e7) & (n_opt <= 1e12) & (d_opt >= 1e9) & (d_opt <= 1e14)
    frontier = alt.Chart(pl.DataFrame({"params": n_opt[keep], "tokens": d_opt[keep], "compute": c[keep]})).mark_line(
        color="white", strokeWidth=2).encode(x="params:Q", y="tokens:Q", tooltip=[alt.Tooltip("compute:Q", format=".2e")])
    marks = alt.Chart(targets).mark_point(color="red", filled=True, size=60, clip=True).encode(
        x="params:Q", y="tokens:Q", shape=alt.Shape("policy:N", title=text(lang, "ax_policy")),
        tooltip=["policy:N", alt.Tooltip("params:Q", format=".3s"), alt.Tooltip("tokens:Q", format=".3s"),
                 alt.Tooltip("predicted_loss:Q", format=".3f")])
    return (heat + frontier + marks).properties(width=560, height=400, title=f"{text(lang, 'scaling')} — {law.name}")


def chart_mixture(langs: pl.DataFrame, lang: str = "en") -> alt.Chart:
    df = langs.filter(pl.col("policy") == langs["policy"][0]).with_columns(
        pl.col("target_params").map_elements(fmt_params, return_dtype=pl.Utf8).alias("target"),
        (pl.col("effective_tokens") / pl.col("tokens")).alias("effective_share")).to_pandas()
    ep = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("target_params:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_params")),
        y=alt.Y("epochs:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_epochs")),
        color=alt.Color("language:N", title=text(lang, "ax_language")),
        tooltip=["target:N", "language:N", alt.Tooltip("tokens:Q", format=".3s"), alt.Tooltip("unique_tokens:Q", format=".3s"),
                 alt.Tooltip("epochs:Q", format=".2f"), alt.Tooltip("effective_share:Q", format=".0%")])
    four = alt.Chart(pl.DataFrame({"y": [4.0]}).to_pandas()).mark_rule(strokeDash=[4, 4], color="red").encode(y="y:Q")
    eff = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("target_params:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_params")),
        y=alt.Y("effective_share:Q", title=text(lang, "ax_effective"), axis=alt.Axis(format="%")),
        color=alt.Color("language:N", title=text(lang, "ax_language")))
    return alt.hconcat((ep + four).properties(width=420, height=300, title=text(lang, "epochs_title")),
                       eff.properties(width=420, height=300, title=text(lang, "effective_title")))


def chart_history(history: pl.DataFrame, lang: str = "en") -> alt.Chart:
    """p50 GPU-days of the headline target per accelerator, run after run (main.plan_history)."""
    df = history.with_columns(pl.col("finished_at").cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%SZ").alias("finished"))
    subtitle = f"{fmt_params(df['target_params'][0])} · {df['policy'][0]}" if df.height else ""
    return alt.Chart(df).mark_line(point=True, interpolate="step-after").encode(
        x=alt.X("finished:T", scale=alt.Scale(type="utc"), title=text(lang, "ax_run"), axis=alt.Axis(format="%Y-%m-%d %H:%M", labelAngle=-30)),
        y=alt.Y("gpu_days_p50:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_gpu_days")),
        color=alt.Color("accelerator:N", title=text(lang, "ax_accelerator")),
        tooltip=["pipeline_run_id:N", "accelerator:N", alt.Tooltip("gpu_days_p50:Q", format=",.0f"),
                 alt.Tooltip("finished:T", format="%Y-%m-%d %H:%M UTC"),
                 alt.Tooltip("why:N", title=text(lang, "why"))] if "why" in history.columns else
                ["pipeline_run_id:N", "accelerator:N", alt.Tooltip("gpu_days_p50:Q", format=",.0f")],
    ).properties(width=640, height=300, title=alt.TitleParams(text(lang, "history"), subtitle=subtitle))


def chart_changes(changes: pl.DataFrame, lang: str = "en") -> alt.Chart:
    df = changes.with_columns(pl.col("target_params").map_elements(fmt_params, return_dtype=pl.Utf8).alias("target")).to_pandas()
    base = alt.Chart(df)
    rule = base.mark_rule().encode(y=alt.Y("target:N", sort=None, title=text(lang, "ax_target")),
                                   x=alt.X("old:Q", scale=alt.Scale(type="log"), title=text(lang, "ax_gpu_days")), x2="new:Q")
    old = base.mark_point().encode(y=alt.Y("target:N", sort=None), x="old:Q",
                                   tooltip=["target:N", "accelerator:N", alt.Tooltip("old:Q", format=",.0f"), alt.Tooltip("new:Q", format=",.0f")])
    new = base.mark_point(filled=True).encode(y=alt.Y("target:N", sort=None), x="new:Q",
                                              color=alt.Color("accelerator:N", title=text(lang, "ax_accelerator")))
    return (rule + old + new).properties(width=640, height=max(120, 20 * len(df)), title=text(lang, "changes"))


def changes_notes(data: dict, lang: str) -> str:
    """Beside the GPU-days that moved: "only the report language changed" when that is all that
    differs, and each language whose bytes/token moved (a corpus scan moves the GB of text)."""
    out = ""
    only = data.get("lang_only")
    if only:
        out += f'<p class="note">{html.escape(text(lang, "changes_lang_only", old=only[0], new=only[1]))}</p>'
    bpt = data.get("bpt_changes")
    if bpt is not None and bpt.height:
        out += f"<h3>{html.escape(text(lang, 'changes_bpt'))}</h3>" + _table(bpt, {
            text(lang, "t_language"): lambda r: r["language"],
            text(lang, "t_bpt_change"): lambda r: f"{r['old']:.3g} → {r['new']:.3g}",
            text(lang, "t_bpt_source"): lambda r: r["new_source"] or ""})
    return out


def _table(df: pl.DataFrame, formats: dict) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in formats)
    rows = []
    for r in df.iter_rows(named=True):
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(f(r)))}</td>" for f in formats.values()) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def backtest_verdict(summary: pl.DataFrame, lang: str = "en") -> str:
    """One line per split and llmplan method: its median |log10 error|, the best simple rule's on
    the same split, and the share of actual values inside p10–p90 — the numbers a reader weighs,
    not verdicts against the project's internal targets."""
    from llmplan.i18n import value

    items = []
    for split in summary["split"].unique(maintain_order=True).to_list():      # a handful of splits
        s = summary.filter(pl.col("split") == split)
        rules = s.filter(~pl.col("method").str.starts_with("llmplan")).sort("median_abs_log10_err")
        rule = (text(lang, "v_rule", rule=value(lang, rules["method"][0]), err=f"{rules['median_abs_log10_err'][0]:.3f}")
                if rules.height else "")
        for own in s.filter(pl.col("method").str.starts_with("llmplan")).iter_rows(named=True):
            cov = own["coverage_p10_p90"]
            items.append("<li>" + html.escape(text(lang, "v_line", split=value(lang, split), method=value(lang, own["method"]),
                                                   err=f"{own['median_abs_log10_err']:.3f}", rule=rule,
                                                   cov="–" if cov is None else f"{cov:.0%}"), quote=False) + "</li>")
    return f"<p>{html.escape(text(lang, 'v_how'), quote=False)}</p><ul>{''.join(items)}</ul>"


def plan_table(plans: pl.DataFrame, langs: pl.DataFrame, lang: str = "en") -> str:
    """Two tables: per (target, policy) the tokens, compute, bytes, loss and GPU-days per
    accelerator; then wall-clock days per (target, accelerator) on each cluster size."""
    w = _worded_plans(plans, langs, lang)
    mem = pl.when(pl.col("min_gpus_for_memory").is_null()).then(pl.lit(text(lang, "memory_never"))).otherwise(
        _text_expr(lang, "t_min_mem", n=pl.col("min_gpus_for_memory")))
    per_acc = w.group_by("target_params", "policy", "accelerator").agg(
        pl.format("{} · {} · {}", "w_gpu_days", "w_cost", mem).first().alias("cell"))
    accs = sorted(plans["accelerator"].unique().to_list())
    wide = per_acc.pivot(on="accelerator", index=["target_params", "policy"], values="cell")
    base = (w.group_by("target_params", "policy").agg(
        pl.col("params", "w_tokens", "training_flop", "w_loss", "w_text").first())
        .join(wide, on=["target_params", "policy"]).sort("target_params", "policy"))
    cols = {
        text(lang, "t_target"): lambda r: fmt_params(r["target_params"]), text(lang, "t_policy"): lambda r: r["policy"],
        text(lang, "t_trained"): lambda r: fmt_params(r["params"]), text(lang, "t_tokens"): lambda r: r["w_tokens"],
        text(lang, "t_compute"): lambda r: fmt_sci(r["training_flop"], "FLOP"), text(lang, "t_bytes"): lambda r: r["w_text"],
        text(lang, "t_loss"): lambda r: r["w_loss"],
    }
    for a in accs:
        cols[text(lang, "t_acc_cell", acc=a)] = (lambda a: lambda r: r.get(a) or "–")(a)
    first = _table(base, cols)
    policy = plans["policy"][0]
    days = (w.filter(pl.col("policy") == policy)
            .pivot(on="cluster_gpus", index=["target_params", "accelerator"], values="w_days_p50_mark", sort_columns=True)
            .sort("target_params", "accelerator"))
    clusters = [c for c in days.columns if c not in ("target_params", "accelerator")]
    dcols = {text(lang, "t_target"): lambda r: fmt_params(r["target_params"]), text(lang, "t_acc"): lambda r: r["accelerator"]}
    for c in clusters:
        dcols[text(lang, "t_cluster_col", n=f"{int(c):,}")] = (lambda c: lambda r: r[c] or "–")(c)
    return (first + f"<h3>{html.escape(text(lang, 't_days_heading', policy=policy))}</h3>" + _table(days, dcols)
            + f'<p class="note">{html.escape(text(lang, "idle_note"))}</p>')


def key_figures(data: dict, lang: str) -> list[tuple[str, str, str]]:
    """The numbers above the answer: runs in the fit, backtest error, the headline plan."""
    k = data["kpis"]
    bt = k["backtest"]
    if (bt["method"] == "llmplan step × goodput").any():          # the method the plans use
        bt = bt.filter(pl.col("method") == "llmplan step × goodput")
    from llmplan.i18n import value

    out = [(text(lang, "kpi_runs"), str(k["runs_in_fit"]), ""),
           (text(lang, "kpi_backtest"), " · ".join(f"{e:.3f}" for e in bt["median_abs_log10_err"]),
            f"{value(lang, bt['method'][0])}: " + " · ".join(value(lang, x) for x in bt["split"].to_list()) if bt.height else "")]
    if k.get("headline"):
        # the headline target's tokens and GB of text come before its GPU-days (the first screen
        # answers "how much data" first)
        h = k["headline"]
        text_bytes = k.get("headline_bytes")
        out.insert(0, (text(lang, "kpi_headline", target=fmt_params(h["target_params"]), policy=h["policy"], acc=h["accelerator"]),
                       text(lang, "kpi_headline_text", tokens=fmt_sci(h["tokens"]), text=fmt_bytes(text_bytes) if text_bytes else "–",
                            days=fmt_count(h["gpu_days_p50"]), cost=fmt_usd(h["cost_usd_p50"])), "; ".join(h.get("caveats") or [])))
    return out


CSS = "body{font-family:" + FONT_FAMILY + """;margin:2em;max-width:1400px;color:#222}
h1{margin-bottom:0}.sub{color:#666}section{margin:2em 0}p.how{color:#444;max-width:60em}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.kpi{display:inline-block;margin:0 2em 1em 0;vertical-align:top}.kpi b{display:block;font-size:1.4em}.kpi small{display:block;color:#666;max-width:28em}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;max-width:100%}
.card h3{margin:.2em 0}.card dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:.4em 0}
.card.bad{border-color:#c00;background:#fff6f6}.card dt{color:#555}.card dd{margin:0;font-weight:600}.vega-bind{margin:.2em .8em .2em 0;display:inline-block}
.vega-bind-name{font-weight:600}.note{color:#555;font-size:12px;margin:.3em 0}"""


def render(run_id: str, data: dict, bundle: str | None = None, lang: str = "en") -> tuple[str, alt.TopLevelMixin]:
    """The report page and its headline chart. `data` comes from llmplan.pipeline.report_data()."""
    bundle = bundle or vega_bundle()
    plans, langs = data["plans"], data["languages"]
    headline = data.get("headline_targets") or []
    policy = data.get("policy") or plans["policy"][0]
    sections: list[tuple[str, str, str, alt.TopLevelMixin | None, str]] = []
    sections.append(("answer", text(lang, "answer"), text(lang, "answer_how"), None,
                     f'<div class="cards">{answer_cards(plans, langs, headline, policy, lang, data.get("evidence"))}</div>'))
    tracked = data.get("tracked")
    if tracked is not None and tracked.height:
        sections.append(("tracking", text(lang, "tracking"), text(lang, "tracking_how"), None,
                         f'<div class="cards">{tracked_cards(tracked, lang)}</div>'))
        if tracked["error"].is_null().any():
            sections.append(("burndown", text(lang, "burndown"), text(lang, "burndown_how"),
                             chart_burndown(tracked, data["progress"], lang), ""))
            if data["eta_history"].height:
                sections.append(("eta_history", text(lang, "eta_history"), text(lang, "eta_history_how"),
                                 chart_eta_history(data["eta_history"], lang), ""))
            if data["progress"]["loss"].is_not_null().any():
                sections.append(("loss_curve", text(lang, "loss_curve"), text(lang, "loss_curve_how"),
                                 chart_loss_curve(data["progress"], lang), ""))
    first = headline[len(headline) // 2] if headline else None
    sections.append(("whatif", text(lang, "whatif"), text(lang, "whatif_how"), chart_whatif(plans, langs, lang, first), ""))
    runs = data["runs"]
    sections.append(("seed", text(lang, "seed"), text(lang, "seed_how"), chart_seed(runs, plans, lang), ""))
    sections.append(("days", text(lang, "days"), text(lang, "days_how"), chart_days_vs_cluster(plans, lang, first), ""))
    t = functools.partial(text, lang)
    from llmplan.i18n import value

    runs_html = f"<details><summary>{html.escape(t('runs_in_fit'))}</summary>" + _table(runs.sort("training_flop"), {
        t("t_model"): lambda r: r["model"], t("t_org"): lambda r: r["org"] or "", t("t_year"): lambda r: r["year"],
        t("t_acc"): lambda r: r["accelerator"], t("t_gpus"): lambda r: fmt_count(r["gpu_count"]) if r["gpu_count"] else "–",
        t("t_compute"): lambda r: fmt_sci(r["training_flop"], "FLOP"), t("t_gpu_hours"): lambda r: fmt_count(r["gpu_hours"]),
        t("t_util"): lambda r: f"{r['utilization']:.0%}",
        t("t_weight"): lambda r: "–" if r.get("fit_weight") is None else f"{r['fit_weight']:.2f}",
        t("t_source"): lambda r: r["source"] or ""}) + "</details>"
    sections.append(("gpu_hours", text(lang, "gpu_hours"), text(lang, "gpu_hours_how"), chart_gpu_hours(runs, data["band"], lang), runs_html))
    sections.append(("utilization", text(lang, "utilization"), text(lang, "utilization_how"),
                     chart_utilization(runs, data["throughput"], lang), ""))
    bt_html = _table(data["backtest_summary"], {
        t("t_split"): lambda r: value(lang, r["split"]), t("t_method"): lambda r: value(lang, r["method"]), t("t_n"): lambda r: r["n"],
        t("t_err_log"): lambda r: f"{r['median_abs_log10_err']:.3f}",
        t("t_err_pct"): lambda r: f"{r['median_abs_pct_err']:.0f}%",
        t("t_inside"): lambda r: "–" if r["coverage_p10_p90"] is None else f"{r['coverage_p10_p90']:.0%}"})
    bt_html += backtest_verdict(data["backtest_summary"], lang)
    sections.append(("backtest", text(lang, "backtest"), text(lang, "backtest_how"), chart_backtest(data["backtests"], lang), bt_html))
    if data["bytes_per_token"].height or langs.height:
        sections.append(("bpt", text(lang, "bpt"), text(lang, "bpt_how"), chart_bytes_per_token(data["bytes_per_token"], langs, lang), ""))
    sections.append(("plans", text(lang, "plans"), text(lang, "plans_how"), None,
                     f"<details><summary>{html.escape(text(lang, 'plans_open'))}</summary>{plan_table(plans, langs, lang)}</details>"))
    sections.append(("scaling", text(lang, "scaling"), text(lang, "scaling_how"), chart_scaling(data["law"], data["targets"], lang), ""))
    sections.append(("mixture", text(lang, "mixture"), text(lang, "mixture_how"), chart_mixture(langs, lang), ""))
    history = data.get("history")
    if history is not None and history.height:
        sections.append(("history", text(lang, "history"), text(lang, "history_how"), chart_history(history, lang), ""))
    link = changes_notes(data, lang) + '<p><a href="#history">→ ' + html.escape(text(lang, "history")) + "</a></p>"
    if data["changes"].height:
        sections.append(("changes", text(lang, "changes"), text(lang, "changes_how"), chart_changes(data["changes"], lang), link))
    else:
        sections.append(("changes", text(lang, "changes"), text(lang, "changes_same" if data.get("previous_run") else "changes_none"),
                         None, link))

    body, scripts = [], []
    for key, title, sentence, chart, extra in sections:
        div = f'<div id="chart-{key}" class="chart" role="img" aria-label="{html.escape(title)}"></div>' if chart is not None else ""
        body.append(f'<section id="{key}"><h2>{html.escape(title)}</h2><p class="how">{html.escape(sentence)}</p>{div}{extra}</section>')
        if chart is not None:
            scripts.append(f'vegaEmbed("#chart-{key}", {_spec_json(chart)}, {{"actions": false, "renderer": "svg"}}).catch(e => console.error(e));')
    kpis = "".join(f'<div class="kpi"><span>{html.escape(a)}</span><b>{html.escape(b)}</b><small>{html.escape(c)}</small></div>'
                   for a, b, c in key_figures(data, lang))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(text(lang, "title"))} {html.escape(run_id)}</title>
<style>{CSS}</style>
<script type="text/javascript">{bundle}</script></head>
<body><h1>{html.escape(text(lang, "title"))}</h1><p class="sub">{text(lang, "sub", run=html.escape(run_id), when=now)}</p>
{kpis}
{''.join(body)}
<script type="text/javascript">
{chr(10).join(scripts)}
</script></body></html>"""
    return page, chart_gpu_hours(runs, data["band"], lang)


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


def vega_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (vl-convert builds it in ~1 s): made once per
    vl-convert and Vega-Lite version and kept in llmplan's cache."""
    import vl_convert as vlc
    from altair.utils._importers import vl_version_for_vl_convert

    vl = vl_version_for_vl_convert()
    return config.cached(f"vega-bundle-{vlc.__version__}-{vl}.js",
                         lambda: vlc.javascript_bundle(vl_version=vl).encode("utf-8")).decode("utf-8")


def headline_png(chart: alt.TopLevelMixin, path: Path) -> Path:
    """The headline chart as PNG, rendered once per distinct spec (and vl-convert version)."""
    import hashlib

    import vl_convert as vlc

    spec = _spec_dict(chart)
    key = hashlib.sha256((vlc.__version__ + json.dumps(spec, sort_keys=True)).encode()).hexdigest()[:24]
    Path(path).write_bytes(config.cached(f"png/{key}.png", lambda: vlc.vegalite_to_png(spec, scale=1.5)))
    return Path(path)
