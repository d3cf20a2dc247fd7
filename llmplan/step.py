"""How GPU-hours are predicted: a step's time from first principles, divided by goodput.

    whole-run tokens/s per accelerator = step tokens/s (llmplan.perf.model, on the layout of
        llmplan.perf.layout) × whole-run multiplier × goodput (llmplan.goodput)
    GPU-hours = tokens ÷ (that rate × 3600)

**Step.** FLOPs counted per layer of the model's shape (llmplan.perf.shapes: from its size by a
stated rule, or given), compute at learned fractions of the precision's peak, communication per
parallel dimension over its link, the pipeline bubble (p − 1)/(v·m); a handful of efficiencies
and a framework multiplier learned from every shipped per-step row (data/throughput/). A plan is
a new stack (the between-framework spread in its band) unless it names a framework the fit
knows (`--framework`) or brings its own measured rows (`--measured`), which calibrate that stack.

**Goodput.** Interruptions per GPU-hour from public reports, restart and checkpoint costs with
the Young/Daly interval (llmplan.goodput): it depends on the accelerator count, the checkpoint's
size and the storage, not on the step.

**Whole-run multiplier.** What public whole runs lose beyond step × goodput is mostly their own
stacks' step efficiency (older frameworks and kernels): llmplan.goodput.fit_residual splits the
log ratio achieved ÷ (step × physics goodput) into a step side — a level, a trend in year (before
2024), a term in active size, a family random effect — and a goodput residual anchored on runs
that publish their effective training time. Plans take the 2024 level at their own size; the runs' scatter around it (family and run) is the
whole-run band (it replaces the per-step framework and row spread, which it contains). Public
runs are computed at what they published (run_frame: sequence, batch, accelerators, shape).

**Global batch.** DeepSeek LLM (Bi et al. 2024, arXiv 2401.02954): B_opt = 0.2920 · C^0.3271
tokens, or the scenario's value. Data parallelism cannot exceed B ÷ (micro-batch × sequence):
accelerators beyond t·p·c·that bound idle (`max_useful_gpus`).
"""

import math

import numpy as np
import polars as pl

from llmplan import goodput as gp
from llmplan.efficiency import EfficiencyModel, rule_of_thumb_gpu_hours
from llmplan.perf import layout as playout
from llmplan.perf import model as pmodel
from llmplan.perf import shapes as pshapes

Z90 = pmodel.Z90
BATCH_LAW = (0.2920, 0.3271)             # DeepSeek LLM 2024: B_opt = 0.2920 · C^0.3271 (tokens, C in FLOP)
IMPUTED_CLUSTER = 1024                   # a public run that does not state its accelerator count


def default_seq_len(year: pl.Expr) -> pl.Expr:
    """Sequence length of a public run that does not state it: 2,048 through 2022, 4,096 in
    2023, 8,192 from 2024 (the usual context of each generation: GPT-3/OPT/BLOOM, LLaMA 2, Llama 3)."""
    return pl.when(year <= 2022).then(2048).when(year == 2023).then(4096).otherwise(8192)


def global_batch_tokens(compute: np.ndarray, seq_len, override: float | None = None) -> np.ndarray:
    """Tokens per optimizer step: the scenario's value, else DeepSeek LLM's B_opt(C); a whole
    number of sequences, at least one."""
    c = np.asarray(compute, float)
    s = np.asarray(seq_len, float)
    b = np.full_like(c, float(override)) if override else BATCH_LAW[0] * c ** BATCH_LAW[1]
    return np.maximum(np.round(b / s), 1.0) * s


def framework(source_group: pl.Expr) -> pl.Expr:
    """'megatron-bridge 25.11' → 'megatron-bridge': one team's stack across its releases."""
    return source_group.str.replace(r"\s+v?[\d.]+.*$", "")


# -- the per-step rows --------------------------------------------------------------------

def accelerator_columns(acc: pl.DataFrame) -> pl.DataFrame:
    """What the step physics needs from core.accelerators, renamed for joining."""
    cols = {"peak_flops": "peak_bf16_flops", "peak_fp8_flops": "peak_fp8_flops", "memory_bytes": "memory_bytes",
            "hbm_bandwidth_bytes_s": "hbm_bytes_per_s", "nvlink_bytes_per_s": "nvlink_bytes_per_s",
            "nvlink_domain": "nvlink_domain", "scaleout_bytes_per_s": "scaleout_bytes_per_s"}
    return acc.select("accelerator", *[(pl.col(k) if k in acc.columns else pl.lit(None, pl.Float64)).alias(v)
                                       for k, v in cols.items()])


def step_rows(steps: pl.DataFrame, acc: pl.DataFrame | None = None) -> pl.DataFrame:
    """core.step_benchmarks rows the step physics fits: usable rows with their framework and the
    accelerator's interconnect (joined when `acc` is given and the rows lack it)."""
    f = steps.filter(pl.col("fit_exclusion_reason").is_null() & pl.col("tokens_per_s_per_gpu").is_not_null())
    if "framework" not in f.columns:
        f = f.with_columns(framework(pl.col("source_group")).alias("framework"))
    f = f.with_columns(pl.coalesce("framework", framework(pl.col("source_group"))).alias("framework"))
    if acc is not None:
        a = accelerator_columns(acc)
        f = f.drop([c for c in a.columns if c != "accelerator" and c in f.columns]).join(a, on="accelerator", how="left")
    if "zero_stage" not in f.columns:
        f = f.with_columns(pl.when(pl.col("fsdp").fill_null(0) > 0).then(3).otherwise(1).alias("zero_stage"))
    return f.filter(pl.col("peak_bf16_flops").is_not_null())


def fit_step(steps: pl.DataFrame, acc: pl.DataFrame | None = None, start=None) -> pmodel.StepPhysics:
    return pmodel.fit(step_rows(steps, acc), start=start)


def rule_rate(frame: pl.DataFrame, mfu: float = 0.40, of_precision: bool = False) -> np.ndarray:
    """The shortcut: tokens/s per accelerator at 40 % of the BF16 peak (or of the precision's) on 6·N."""
    peak16 = frame["peak_bf16_flops"].to_numpy()
    peak = np.where((frame["precision"] == "fp8").to_numpy(), frame["peak_fp8_flops"].fill_null(float("nan")).to_numpy(), peak16) \
        if of_precision else peak16
    return mfu * peak / (6.0 * frame["active_params"].fill_null(frame["params"]).to_numpy())


RESIDUAL_FIELDS = ("level", "sd", "step_level", "step_slope", "step_slope_se", "step_sd", "reference_year", "n",
                   "step_size", "step_family_sd")


def physics_frame(model: pmodel.StepPhysics, residual: "gp.Residual", run_id: str) -> pl.DataFrame:
    """fits.step_physics rows: the step model's and the whole-run residual's (kind 'residual')."""
    res = pl.DataFrame([{"kind": "residual", "name": k, "estimate": float(getattr(residual, k)), "natural": None,
                         "std_error": None, "n": residual.n} for k in RESIDUAL_FIELDS],
                       schema={"kind": pl.Utf8, "name": pl.Utf8, "estimate": pl.Float64, "natural": pl.Float64,
                               "std_error": pl.Float64, "n": pl.Int64})
    return pl.concat([model.to_frame(run_id), res.with_columns(pl.lit(run_id).alias("pipeline_run_id"))], how="vertical_relaxed")


def physics_from_frame(f: pl.DataFrame) -> tuple[pmodel.StepPhysics, "gp.Residual"]:
    r = {row["name"]: row["estimate"] for row in f.filter(pl.col("kind") == "residual").iter_rows(named=True)}
    res = gp.Residual(**{k: (int(r[k]) if k in ("reference_year", "n") else r[k]) for k in RESIDUAL_FIELDS if k in r})
    return pmodel.StepPhysics.from_frame(f), res


# -- per-step backtests -------------------------------------------------------------------

PIPELINE_SPLITS = ("source_group", "framework")          # leave one model out (≈ 80 refits) is bench/backtest.py's


def step_backtest(steps: pl.DataFrame, acc: pl.DataFrame | None = None, full: pmodel.StepPhysics | None = None,
                  units: tuple[str, ...] = ("source_group", "model", "framework"), every_measured_row: bool = False) -> pl.DataFrame:
    """The step physics on rows it never saw: leave one framework release out (the framework's
    effect kept from its other releases), leave one model out, leave one framework out (a stack the
    fit never saw: its effect unknown, the between-framework spread in the band), and leave one
    framework out with ONE of its rows measured (the first by source line: `--measured` with one
    row; the refit's stack spreads come from the other frameworks only). `every_measured_row` adds
    each row of the held-out framework in turn as the measured one, predicting the others (rows
    weighted 1/n so each framework weighs as in the first-row split: `weight`). Beside each p50
    the shortcuts '40 % of the BF16 peak' and '40 % of the precision's peak'."""
    rows = step_rows(steps, acc)
    releases = rows.group_by("framework").agg(pl.col("source_group").n_unique().alias("n"))
    several = set(releases.filter(pl.col("n") >= 2)["framework"].to_list())
    start = full
    parts = []

    def score(test, p, split):
        y = test["tokens_per_s_per_gpu"].to_numpy()
        return test.select("framework", "source_group", "model", "accelerator", "precision", "source_line").with_columns(
            pl.lit(split).alias("split"), pl.Series("actual", y),
            pl.Series("pred_p10", p["tokens_per_s_per_gpu_p10"].to_numpy()), pl.Series("pred_p50", p["tokens_per_s_per_gpu_p50"].to_numpy()),
            pl.Series("pred_p90", p["tokens_per_s_per_gpu_p90"].to_numpy()),
            pl.Series("rule_bf16", rule_rate(test)), pl.Series("rule_precision", rule_rate(test, of_precision=True)))

    for split, unit in (("per step: leave one release out", "source_group"), ("per step: leave one model out", "model"),
                        ("per step: leave one framework out", "framework")):
        if unit not in units:
            continue
        for held in rows[unit].unique().sort().to_list():
            train, test = rows.filter(pl.col(unit) != held), rows.filter(pl.col(unit) == held)
            if train.height < 10 or (unit == "source_group" and test["framework"][0] not in several):
                continue
            m = pmodel.fit(train, start=start, stack_spread=unit == "framework")
            parts.append(score(test, m.predict(test, known_framework=unit != "framework"), split))
            if unit == "framework" and test.height >= 2:
                first = test.sort("source_line").head(1)
                rest = test.sort("source_line").slice(1)
                mine = m.calibrate(first.with_columns(pl.lit("measured").alias("framework")), "measured")
                p = mine.predict(rest.with_columns(pl.lit("measured").alias("framework")))
                parts.append(score(rest, p, MEASURED_SPLIT))
                if every_measured_row:
                    parts.append(_every_row_measured(m, test, score))
    bt = pl.concat(parts, how="diagonal_relaxed")
    bt = bt.with_columns(pl.col("weight").fill_null(1.0) if "weight" in bt.columns else pl.lit(1.0).alias("weight"))
    return bt.with_columns(
        (pl.col("pred_p50") / pl.col("actual")).log10().abs().alias("abs_log10_err"),
        (pl.col("rule_bf16") / pl.col("actual")).log10().abs().alias("rule_bf16_abs_log10_err"),
        (pl.col("rule_precision") / pl.col("actual")).log10().abs().alias("rule_precision_abs_log10_err"),
        pl.col("actual").is_between(pl.col("pred_p10"), pl.col("pred_p90")).alias("inside_p10_p90"))


MEASURED_SPLIT = "per step: leave one framework out, one row measured"
EVERY_MEASURED_SPLIT = "per step: leave one framework out, one row measured (each row in turn)"


def _every_row_measured(m: pmodel.StepPhysics, test: pl.DataFrame, score) -> pl.DataFrame:
    """Each row of a held-out framework calibrates the stack alone (exactly as `calibrate` with
    that one row: same residual, same posterior) and predicts every other row; pairs i ≠ j,
    weighted 1/n. Vectorised: one prediction of the rows as a new stack, then per measured row i
    the offset u_i and its sd replace the unknown stack's 0 ± τ_framework."""
    base = m.predict(test, known_framework=False)
    lb = np.log10(base["tokens_per_s_per_gpu_p50"].to_numpy())
    var = (base["step_half_width"].to_numpy() / Z90) ** 2 - m.tau_framework ** 2
    r = np.log10(test["tokens_per_s_per_gpu"].to_numpy()) - lb
    if m.row_df > 0:
        u, sd = pmodel.stack_posterior(r[:, None], np.ones(1), m.tau_stack, m.row_scale, m.row_df)
    else:
        k = m.sigma ** 2 / max(m.tau_framework ** 2, 1e-12)
        u, sd = r / (1 + k), np.full(r.shape, math.sqrt(m.sigma ** 2 / (1 + k)))
    n = test.height
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    mid, hw = lb[j] + u[i], Z90 * np.sqrt(var[j] + sd[i] ** 2)
    p = pl.DataFrame({"tokens_per_s_per_gpu_p10": 10 ** (mid - hw), "tokens_per_s_per_gpu_p50": 10 ** mid,
                      "tokens_per_s_per_gpu_p90": 10 ** (mid + hw)})
    return score(test[j], p, EVERY_MEASURED_SPLIT).with_columns(
        pl.Series("measured_line", test["source_line"].to_numpy()[i]), pl.lit(1.0 / n).alias("weight"))


def step_backtest_summary(bt: pl.DataFrame) -> pl.DataFrame:
    """Per split: llmplan's step model and the two 40 % shortcuts, in fits.backtest_summary's shape."""
    aggs = []
    for method, col, cov in (("llmplan step model", "abs_log10_err", True), ("40% of BF16 peak", "rule_bf16_abs_log10_err", False),
                             ("40% of the precision's peak", "rule_precision_abs_log10_err", False)):
        aggs.append(bt.filter(pl.col(col).is_not_null() & pl.col(col).is_finite()).group_by("split").agg(
            pl.lit(method).alias("method"), pl.len().cast(pl.Int64).alias("n"), pl.col(col).median().alias("median_abs_log10_err"),
            ((10 ** pl.col(col) - 1) * 100).median().alias("median_abs_pct_err"),
            (pl.col("inside_p10_p90").mean() if cov else pl.lit(None, pl.Float64)).alias("coverage_p10_p90")))
    return pl.concat(aggs).sort("split", "method")


def fp8_pairs(steps: pl.DataFrame, model: pmodel.StepPhysics, acc: pl.DataFrame | None = None) -> pl.DataFrame:
    """Same-layout BF16/FP8 pairs (same source, model, accelerator, count, sequence, layout and
    batch): the measured FP8 ÷ BF16 speed-up beside the model's."""
    rows = step_rows(steps, acc)
    p = model.predict(rows).with_columns(pl.col("tokens_per_s_per_gpu_p50").alias("pred"))
    keys = ["source_group", "model", "accelerator", "gpu_count", "seq_len", "tp", "pp", "cp", "ep", "global_batch_tokens"]
    a = p.filter(pl.col("precision") == "bf16").group_by(keys).agg(pl.col("tokens_per_s_per_gpu").mean().alias("bf16"),
                                                                   pl.col("pred").mean().alias("pred_bf16"))
    b = p.filter(pl.col("precision") == "fp8").group_by(keys).agg(pl.col("tokens_per_s_per_gpu").mean().alias("fp8"),
                                                                  pl.col("pred").mean().alias("pred_fp8"))
    return a.join(b, on=keys).with_columns((pl.col("fp8") / pl.col("bf16")).alias("actual_ratio"),
                                           (pl.col("pred_fp8") / pl.col("pred_bf16")).alias("pred_ratio")).with_columns(
        (pl.col("pred_ratio") / pl.col("actual_ratio")).log10().abs().alias("abs_log10_err")).sort(keys)


# -- the chain plans use ------------------------------------------------------------------

class Chain:
    """whole-run tokens/s per accelerator = step × whole-run multiplier × goodput (module
    docstring). predict() takes plan rows (params, active_params, tokens, training_flop,
    accelerator columns, cluster_gpus) and adds the shape, the layout, step and goodput columns,
    tokens_per_s_per_gpu_p10/p50/p90 (per busy accelerator), utilization_p10/p50/p90 (whole-run
    6·N_active·D against the BF16 peak) and gpu_hours_p10/p50/p90 (work on the busy accelerators)."""

    def __init__(self, whole: EfficiencyModel, step: pmodel.StepPhysics, residual: "gp.Residual | None" = None):
        self.whole, self.step = whole, step
        self.residual = residual or gp.Residual()
        self.year_range = whole.year_range

    def predict(self, grid: pl.DataFrame, seq_len: int = 4096, micro_batch: int | None = None, precision: str = "bf16",
                global_batch: float | None = None, vocab: int | None = None, fp32_grads: bool = True,
                flash_attention: bool = True, experts: int | None = None, top_k: int | None = None,
                shape: dict | None = None, framework: str | None = None, layout: dict | None = None,
                storage_gbps: float | None = None, restart_minutes: float | None = None,
                pp_schedule: str | None = None) -> pl.DataFrame:
        if grid.height == 0:
            return grid
        g = grid.with_columns(pl.lit(pp_schedule, pl.Utf8).alias("pp_schedule")).with_columns(
            pl.lit(precision).alias("precision"), pl.lit(seq_len).cast(pl.Int64).alias("seq_len"),
            (pl.col("active_params") if "active_params" in grid.columns else pl.lit(None, pl.Float64)).alias("active_params"),
            pl.col("cluster_gpus").cast(pl.Float64).alias("gpu_count"), pl.lit(framework).cast(pl.Utf8).alias("framework"))
        if "peak_bf16_flops" not in g.columns:
            g = g.with_columns(pl.col("peak_flops").alias("peak_bf16_flops"))
        g = g.with_columns(pl.col("active_params").fill_null(pl.col("params")).alias("active_params"))
        given = dict(shape or {})
        if vocab:
            given.setdefault("vocab", vocab)
        if experts and (g["params"] > g["active_params"] * 1.0001).any():
            given.setdefault("experts", experts)
        if top_k:
            given.setdefault("top_k", top_k)
        g = g.with_columns(*[pl.lit(float(v)).alias(k) for k, v in given.items() if v is not None])
        g = g.with_columns(pl.Series("global_batch_tokens", global_batch_tokens(g["training_flop"].to_numpy(), seq_len, global_batch)))
        fixed = dict(layout or {})
        if micro_batch:
            fixed.setdefault("micro_batch", micro_batch)
        out = playout.search(g, self.step, fp32_grads, flash_attention, known_framework=framework is not None, fixed=fixed)
        return self._whole_run(out, storage_gbps, restart_minutes)

    def _whole_run(self, out: pl.DataFrame, storage_gbps: float | None, restart_minutes: float | None) -> pl.DataFrame:
        """Step rate (over the cluster) → whole-run rate per busy accelerator, hours and band."""
        res = self.residual
        busy = out["useful_gpus"].to_numpy().astype(float)
        cluster = out["gpu_count"].to_numpy().astype(float)
        step_busy = out["tokens_per_s_per_gpu_p50"].to_numpy() * cluster / busy
        # A plan is a run of today's stack (the reference year) at its own size and busy accelerators.
        mult = res.step_multiplier(np.full(out.height, float(res.reference_year)), out["active_params"].to_numpy())
        per_token = 6.0 * out["active_params"].to_numpy()
        tokens = out["tokens"] if "tokens" in out.columns else out["training_flop"] / pl.Series(per_token)
        # Hours the steps alone take on the busy accelerators: goodput turns them into wall hours
        # and counts the interruptions in them.
        good = gp.goodput(busy, out["params"].to_numpy(), train_hours=tokens.to_numpy() / (step_busy * mult * busy * 3600.0),
                          storage_bytes_per_s=(storage_gbps or gp.STORAGE_GBPS) * 1e9,
                          restart_hours=(restart_minutes or gp.RESTART_MINUTES) / 60.0,
                          residual_log10=res.level, residual_sd=res.sd)
        g50 = good["goodput_p50"].to_numpy()
        # Band: the step's coefficient uncertainty, the whole runs' scatter around step × goodput
        # (it contains the between-stack spread), and goodput's own spread.
        coef = out["step_half_width"].to_numpy() ** 2 - (Z90 ** 2) * (self.step.tau_framework ** 2 + self.step.sigma ** 2)
        hw_g = np.log10(np.maximum(good["goodput_p50"].to_numpy(), 1e-9) / np.maximum(good["goodput_p10"].to_numpy(), 1e-9))
        whole_sd = res.step_sd if res.n else math.hypot(self.step.tau_framework, self.step.sigma)
        hw = np.sqrt(np.clip(coef, 0, None) + (Z90 * whole_sd) ** 2 + hw_g ** 2)
        mid = np.log10(step_busy * mult * g50)
        o = out.with_columns(
            pl.Series("step_tokens_per_s_per_gpu_p50", step_busy), pl.Series("whole_run_multiplier", mult),
            *[good[c].alias(c) for c in ("goodput_p10", "goodput_p50", "goodput_p90", "goodput_physics", "goodput_residual",
                                         "checkpoint_overhead", "interruption_loss", "checkpoint_interval_hours", "mtbf_hours",
                                         "interruptions_expected", "hours_lost_interruptions")],
            pl.Series("tokens_per_s_per_gpu_p10", 10 ** (mid - hw)), pl.Series("tokens_per_s_per_gpu_p50", 10 ** mid),
            pl.Series("tokens_per_s_per_gpu_p90", 10 ** (mid + hw)), pl.Series("rate_half_width", hw),
            pl.col("peak_bf16_flops").alias("peak_flops"))
        util = lambda q: pl.col(f"tokens_per_s_per_gpu_{q}") * 6.0 * pl.col("active_params") / pl.col("peak_bf16_flops")  # noqa: E731
        hours = lambda q: pl.Series(tokens) / (pl.col(f"tokens_per_s_per_gpu_{q}") * 3600.0)  # noqa: E731
        return o.with_columns(util("p10").alias("utilization_p10"), util("p50").alias("utilization_p50"),
                              util("p90").alias("utilization_p90"),
                              hours("p90").alias("gpu_hours_p10"), hours("p50").alias("gpu_hours_p50"), hours("p10").alias("gpu_hours_p90"))


def min_gpus_for_memory(rows: pl.DataFrame, fp32_grads: bool = True, flash_attention: bool = True) -> np.ndarray:
    """The fewest accelerators any layout fits on (ZeRO-3, full recompute, micro-batch 1, over
    TP ≤ the NVLink domain, PP, CP and EP): model states that shard over data-parallel ranks need
    ⌈sharded ÷ (memory − the rest)⌉ of them; -1 if no layout fits at any count."""
    from llmplan.perf import memory as pmem

    cand = playout.candidates(bool((rows["params"] > rows["active_params"].fill_null(rows["params"]) * 1.0001).any()),
                              bool((rows["seq_len"] >= 16384).any())).filter(
        (pl.col("zero_stage") == 3) & (pl.col("recompute") == "full") & (pl.col("micro_batch") == 1) & (pl.col("vp") == 1))
    sh = pmodel.shape_frame(rows)
    n, k = rows.height, cand.height
    S = {key: np.asarray(v, float)[:, None] * np.ones((1, k)) for key, v in sh.items()}
    c = {col: cand[col].to_numpy()[None, :] for col in ("tp", "pp", "cp", "ep")}
    seq = rows["seq_len"].to_numpy().astype(float)[:, None]
    one = np.ones((n, k))
    args = lambda dp: (S, seq, one, c["tp"] * one, c["pp"] * one, one, dp, c["cp"] * one, c["ep"] * one,  # noqa: E731
                       np.full((n, k), 3), np.full((n, k), "full"), fp32_grads, flash_attention)
    at1 = pmem.layout_bytes(*args(np.maximum(c["ep"] / c["cp"], 1.0) * one))["total"]
    big = pmem.layout_bytes(*args(np.full((n, k), 1e12)))["total"]
    mem = rows["memory_bytes"].to_numpy()[:, None] * playout.USABLE_FRACTION
    dp1 = np.maximum(c["ep"] / c["cp"], 1.0) * one
    shard = (at1 - big) * dp1
    ok = (mem > big) & (c["tp"] <= rows["nvlink_domain"].fill_null(8).to_numpy()[:, None]) \
        & (np.mod(S["heads"], c["tp"]) == 0) & (S["layers"] >= c["pp"]) & (c["ep"] <= S["experts"])
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = np.where(ok, np.maximum(np.ceil(np.where(shard > 0, shard / (mem - big), 1.0)), dp1), np.inf)
    count = np.min(c["tp"] * c["pp"] * c["cp"] * dp, axis=1)
    return np.where(np.isfinite(count), count, -1).astype(np.int64)


# -- whole runs through the chain -----------------------------------------------------------

def run_frame(runs: pl.DataFrame, acc: pl.DataFrame, shapes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Public whole runs as plan-like rows, at what each run published where it did: precision
    (bf16 unless fp8), sequence length (`seq_len`, else the year's usual context), tokens per
    optimizer step (`global_batch_tokens`, else the batch law), accelerator count (else
    IMPUTED_CLUSTER) and shape (`shape_model`, a row of core.model_shapes given as `shapes`, else
    the shape rule). The layout is still searched, as for a plan — the multiplier learned on these
    runs corrects the step model at the layout plans assume — except what the run published of it:
    its TP, PP, EP and ZeRO stage (run_tp, …: pin_tp, … for llmplan.perf.layout.search) and its
    pipeline schedule (pp_schedule: DualPipe, ZB-H1, plain 1F1B) are fixed, the rest searched."""
    a = accelerator_columns(acc)
    f = runs.drop([c for c in a.columns if c != "accelerator" and c in runs.columns]).join(a, on="accelerator", how="left")
    f = f.filter(pl.col("peak_bf16_flops").is_not_null() & pl.col("params").is_not_null() & pl.col("tokens").is_not_null())
    opt = lambda c, t: (pl.col(c) if c in f.columns else pl.lit(None)).cast(t)  # noqa: E731
    f = f.with_columns(
        pl.coalesce(pl.col("precision").replace({"fp16": "bf16"}) if "precision" in f.columns else None, pl.lit("bf16")).alias("precision"),
        pl.coalesce(opt("seq_len", pl.Int64), default_seq_len(pl.col("year"))).cast(pl.Int64).alias("seq_len"),
        pl.col("active_params").fill_null(pl.col("params")).alias("active_params"),
        pl.coalesce("gpu_count", pl.lit(float(IMPUTED_CLUSTER))).cast(pl.Float64).alias("gpu_count"),
        pl.lit(None, pl.Utf8).alias("framework"),
        *[opt(f"run_{k}", pl.Int64).alias(f"pin_{k}") for k in playout.PINS], opt("pp_schedule", pl.Utf8).alias("pp_schedule"))
    f = f.with_columns(pl.when(pl.col("precision") == "fp8").then(pl.col("precision")).otherwise(pl.lit("bf16")).alias("precision"))
    law = global_batch_tokens((6.0 * f["active_params"] * f["tokens"]).to_numpy(), f["seq_len"].to_numpy())
    given = f["global_batch_tokens"].cast(pl.Float64).fill_null(float("nan")).to_numpy() if "global_batch_tokens" in f.columns \
        else np.full(f.height, np.nan)
    f = f.with_columns(pl.Series("global_batch_tokens", np.where(np.isnan(given), law, given)))
    if shapes is not None and shapes.height and "shape_model" in f.columns:
        from llmplan.shapes import STEP_SHAPE_COLUMNS

        cols = [c for c in STEP_SHAPE_COLUMNS if c in shapes.columns]
        sh = shapes.unique("model", keep="first").select(pl.col("model").alias("shape_model"), *cols)
        f = f.drop([c for c in cols if c in f.columns]).join(sh, on="shape_model", how="left")
    return f


def runs_with_step(runs: pl.DataFrame, step: pmodel.StepPhysics, acc: pl.DataFrame,
                   shapes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Each public run laid out by the search on its own cluster (run_frame: at its published
    sequence, batch, count and shape where known), with the step model's rate per busy
    accelerator (step_tokens_per_s_p50) — what llmplan.goodput.fit_residual compares with the
    rate the run achieved."""
    f = run_frame(runs, acc, shapes)
    parts = [playout.search(part, step, known_framework=False) for _, part in f.group_by("seq_len", maintain_order=True)]
    out = pl.concat(parts, how="diagonal_relaxed")
    return out.with_columns((pl.col("tokens_per_s_per_gpu_p50") * pl.col("gpu_count") / pl.col("useful_gpus"))
                            .alias("step_tokens_per_s_p50"))


def chain_backtest(laid: pl.DataFrame, time_split_years: tuple[int, ...] = (2023, 2024)) -> pl.DataFrame:
    """Whole-run hours from step × multiplier × goodput on runs never seen: leave one family out;
    fit before year Y, predict Y and later. The step model is fitted on every per-step row (they
    are not whole runs); the whole-run multiplier (llmplan.goodput.fit_residual) on the training
    runs only. Same shape as fits.backtests."""
    usable = laid.filter(pl.col("gpu_hours").is_not_null() & pl.col("step_tokens_per_s_p50").is_not_null()
                         & pl.col("fit_exclusion_reason").is_null() if "fit_exclusion_reason" in laid.columns else pl.lit(True))

    full = gp.fit_residual(usable).fit_state          # each refit starts where the fit on every run ended

    def score(train: pl.DataFrame, test: pl.DataFrame, split: str) -> pl.DataFrame:
        res = gp.fit_residual(train, start=full)
        good = gp.goodput(test["useful_gpus"].to_numpy().astype(float), test["params"].to_numpy(),
                          residual_log10=res.level, residual_sd=res.sd)
        mult = res.step_multiplier(test["year"].to_numpy(), test["active_params"].to_numpy())
        mid = np.log10(test["step_tokens_per_s_p50"].to_numpy() * mult * good["goodput_p50"].to_numpy())
        hw = Z90 * math.hypot(res.step_sd, res.sd)
        hours = lambda m: test["tokens"].to_numpy() / (10 ** m * 3600.0)  # noqa: E731
        return test.select(
            pl.lit(split).alias("split"), "run_key", pl.col("run_key").alias("model"), "family", "year", "accelerator",
            pl.col("gpu_hours").alias("actual_gpu_hours"), pl.Series("pred_p10", hours(mid + hw)),
            pl.Series("pred_p50", hours(mid)), pl.Series("pred_p90", hours(mid - hw)),
            rule_of_thumb_gpu_hours(pl.col("training_flop"), pl.col("peak_bf16_flops")).alias("rule_gpu_hours"),
        ).with_columns(
            (pl.col("pred_p50") / pl.col("actual_gpu_hours")).log10().abs().alias("abs_log10_err"),
            (pl.col("rule_gpu_hours") / pl.col("actual_gpu_hours")).log10().abs().alias("rule_abs_log10_err"),
            pl.col("actual_gpu_hours").is_between(pl.col("pred_p10"), pl.col("pred_p90")).alias("inside_p10_p90"))

    parts = []
    for fam in sorted(usable["family"].drop_nulls().unique().to_list()):
        train, test = usable.filter(pl.col("family") != fam), usable.filter(pl.col("family") == fam)
        parts.append(score(train, test, "leave-one-family-out"))
    for year in time_split_years:
        train, test = usable.filter(pl.col("year") < year), usable.filter(pl.col("year") >= year)
        if train.height >= 8 and test.height >= 5:
            parts.append(score(train, test, f"time split (fit < {year}, predict ≥ {year})"))
    return pl.concat(parts)


# -- `llmplan predict --per-step` and measured rows ----------------------------------------

def check_rows(frame: pl.DataFrame, path: str) -> list:
    """Problems a per-step, measured or whole-run row can have beyond its types: more active than
    total parameters, FP8 on an accelerator without an FP8 peak, a layout that does not divide the
    cluster, TP that does not divide the heads, EP above the experts, a shape far from the size."""
    from llmplan.errors import Problem

    problems = []
    sh = None
    if frame.height:
        f = frame.with_columns((pl.col("params_b") * 1e9).alias("params"),
                               ((pl.col("active_params_b") if "active_params_b" in frame.columns else pl.lit(None, pl.Float64))
                                .fill_null(pl.col("params_b")) * 1e9).alias("active_params"))
        sh = pmodel.shape_frame(f)
        total, active = pshapes.params_from_shape(sh)
    for i, r in enumerate(frame.iter_rows(named=True)):     # errors are worded per row; no arithmetic here
        line = r["source_line"]
        if r.get("active_params_b") is not None and r["active_params_b"] > r["params_b"]:
            problems.append(Problem(path, line, "active_params_b", f"{r['active_params_b']:g} active parameters (billions) exceed "
                                    f"the {r['params_b']:g} total; expected active ≤ params_b"))
        if r.get("precision") == "fp8" and r.get("peak_fp8_flops") is None:
            problems.append(Problem(path, line, "precision", f"fp8 on {r['accelerator']}, which has no FP8 peak in the accelerator "
                                    "table; expected bf16 (or add peak_dense_fp8_tflops to data/accelerators/)"))
        mp = (r.get("tp") or 1) * (r.get("pp") or 1) * (r.get("cp") or 1)
        if r.get("gpu_count") and (r.get("tp") or r.get("pp")) and r["gpu_count"] % mp:
            problems.append(Problem(path, line, "tp", f"tp × pp × cp = {mp} does not divide the {r['gpu_count']} accelerators; "
                                    "expected a layout whose tensor × pipeline × context ranks divide gpu_count"))
        if sh is None:
            continue
        heads, experts = sh["heads"][i], sh["experts"][i]
        if r.get("tp") and heads % r["tp"]:
            problems.append(Problem(path, line, "tp", f"tp = {r['tp']} does not divide the {heads:g} attention heads; "
                                    "expected a tensor-parallel size that divides heads"))
        if r.get("ep") and r["ep"] > 1 and (r["ep"] > experts or experts % r["ep"]):
            problems.append(Problem(path, line, "ep", f"ep = {r['ep']} with {experts:g} experts; expected an expert-parallel "
                                    "size that divides the experts (a dense model takes ep = 1)"))
        stated = r["params_b"] * 1e9
        if any(r.get(k) is not None for k in ("layers", "hidden", "ffn")) and abs(total[i] / stated - 1.0) > 0.25:
            problems.append(Problem(path, line, "layers", f"the shape (layers {sh['layers'][i]:g}, hidden {sh['hidden'][i]:g}, "
                                    f"ffn {sh['ffn'][i]:g}, vocab {sh['vocab'][i]:g}) has {total[i] / 1e9:.3g}B parameters, "
                                    f"far from params_b = {r['params_b']:g}; expected a shape within 25 % of the size"))
    return problems


def per_step_frame(frame: pl.DataFrame, acc: pl.DataFrame) -> pl.DataFrame:
    """Rows of a per-step or measured CSV (params_b, active_params_b, gpu_type → accelerator,
    gpu_count, precision, seq_len, global_batch (tokens), layout columns, shape columns) in the
    step physics' column names, with the accelerator's specs."""
    a = accelerator_columns(acc)
    f = frame.drop([c for c in a.columns if c != "accelerator" and c in frame.columns]).join(a, on="accelerator", how="left")
    opt = lambda c, d=None: (pl.col(c) if c in f.columns else pl.lit(d))  # noqa: E731
    return f.with_columns(
        (pl.col("params_b") * 1e9).alias("params"),
        (opt("active_params_b").cast(pl.Float64).fill_null(pl.col("params_b")) * 1e9).alias("active_params"),
        pl.col("gpu_count").cast(pl.Float64), pl.col("seq_len").cast(pl.Int64),
        opt("precision", "bf16").fill_null("bf16").alias("precision"),
        opt("framework").cast(pl.Utf8).alias("framework"))


LAYOUT_DEFAULTS = (("pp", 1), ("vp", 1), ("cp", 1), ("ep", 1), ("micro_batch", 1), ("zero_stage", 1), ("recompute", "none"))


def with_batch(f: pl.DataFrame) -> pl.DataFrame:
    """global_batch_tokens: the row's global_batch (tokens) or the batch law at a nominal 1T-token run."""
    law = global_batch_tokens((6.0 * f["active_params"] * 1e12).to_numpy(), f["seq_len"].to_numpy())
    given = f["global_batch"].cast(pl.Float64).to_numpy() if "global_batch" in f.columns else np.full(f.height, np.nan)
    return f.with_columns(pl.Series("global_batch_tokens", np.where(np.isnan(given), law, given)))


def laid_rows(f: pl.DataFrame) -> pl.DataFrame:
    """Rows that state their layout (tp at least): the rest of it defaulted (LAYOUT_DEFAULTS), the
    global batch, data-parallel ranks and the shape columns — what StepPhysics.predict takes."""
    f = f if "global_batch_tokens" in f.columns else with_batch(f)
    f = f.with_columns(*[(pl.col(c).fill_null(d) if c in f.columns else pl.lit(d)).alias(c) for c, d in LAYOUT_DEFAULTS])
    sh = pmodel.shape_frame(f)
    f = f.with_columns(*[pl.Series(k, np.asarray(v, float)) for k, v in sh.items()])
    seqs = (pl.col("global_batch_tokens") / (pl.col("seq_len") * pl.col("micro_batch"))).floor().clip(1)
    dp = (pl.col("gpu_count") / (pl.col("tp") * pl.col("pp") * pl.col("cp"))).floor()
    return f.with_columns(pl.min_horizontal(dp, seqs).cast(pl.Int64).alias("dp"))


def predict_steps(frame: pl.DataFrame, step: pmodel.StepPhysics, framework: str | None = None) -> pl.DataFrame:
    """Per row: tokens/s per accelerator p10/p50/p90, step MFU and HFU p50, the shape and the
    layout — the row's own where tp is given, else llmplan's search. A new stack by default;
    `framework` names one the fit knows or one calibrated from measured rows."""
    f = with_batch(frame.with_columns(pl.lit(framework).cast(pl.Utf8).alias("framework")))
    known = framework is not None
    given = f.filter(pl.col("tp").is_not_null()) if "tp" in f.columns else f.head(0)
    own = f.filter(pl.col("tp").is_null()) if "tp" in f.columns else f
    parts = []
    if given.height:
        parts.append(step.predict(laid_rows(given), known_framework=known))
    if own.height:
        parts.append(playout.search(own.drop([c for c, _ in LAYOUT_DEFAULTS if c in own.columns] + (["tp"] if "tp" in own.columns else [])),
                                    step, known_framework=known).with_columns(pl.col("dp").cast(pl.Int64)))
    return pl.concat(parts, how="diagonal_relaxed").sort("source_line")
