"""How a training step's throughput is predicted, how a run is laid out, and how whole-run hours
follow from both:

    whole-run tokens/s per accelerator = step tokens/s per accelerator × goodput
    GPU-hours = tokens ÷ (that rate × 3600)

Per-step planners (llm-analysis, Calculon) model the step but not the run; the whole-run model
(llmplan.efficiency) learns the run but not the step. This module does both.

**Step model.** From public per-step benchmark tables (data/throughput/: MosaicML llm-foundry,
NVIDIA Megatron-Bridge, your own CSVs), the model-FLOPs utilisation of a step against the peak
of the precision it runs in (BF16 or FP8):

    log10(step MFU / layout factor) = b0 + b_size·log10(N_active/1e9) + b_moe·log10(N_total/N_active)
        + b_moe_size·log10(N_total/N_active)·log10(N_active/1e9)
        + b_moe_domain·log10(N_total/N_active)·log10(NVLink domain/8) + b_fp8·[FP8]
        + b_peak·log10(BF16 peak/312 TFLOP/s) + b_seq·log2(seq/4096) + b_tp·log2(TP)
        + b_gpus·log10(GPUs) + u_accelerator + v_source + ε

The layout factor is physics, not fitted: the 1F1B pipeline bubble m/(m + PP − 1) for m
micro-batches per step (Narayanan et al. 2021) times the recompute cost (full recompute does
8·N·D hardware FLOPs for 6·N·D model FLOPs: 0.75; selective ≈ 0.97, Korthikanti et al. 2022).
u and v are random intercepts per accelerator and per source (a framework release: a new team's
stack is a new source, so that spread is in every interval); ε is Student-t (ν = 4). It is the
same REML + t machinery as llmplan.efficiency (efficiency.fit with cls=StepModel).

**Layout.** For each plan row, every candidate (TP ≤ 8 within a node, PP, EP for MoE, ZeRO
stage, recompute) that divides the cluster and fits memory (llmplan.memory.layout_bytes) is
scored by its predicted total throughput — the learned TP term, the layout factor and the
accelerators the global batch can keep busy — and the best is kept, vectorised over rows ×
candidates.

**Global batch.** DeepSeek LLM (Bi et al. 2024, arXiv 2401.02954) fitted the optimal batch
against compute: B_opt = 0.2920 · C^0.3271 tokens; or the scenario's own value. Data parallelism
cannot exceed B ÷ (micro-batch × sequence): accelerators beyond tp·pp·that bound idle, so
`max_useful_gpus` caps the speed-up (the wall days stop shortening, the bill does not).

**Goodput, and why the chain is anchored on whole runs.** Whole runs (restarts, evaluation,
stalls, idle reservations, and each team's stack) reach a fraction of their step rate. Fitted
directly — goodput = a public run's achieved tokens/s ÷ the step model's p50 for it — the chain
backtests worse than the whole-run model (bench/backtest.py prints both): benchmarks cover
2023–26 NVIDIA stacks, while the whole runs span V100 to H100 and their own stacks, and public
MoE benchmarks (NeMo, dropless, 10–18 % of peak) are far below DeepSeek's own MoE runs. So plans
use goodput as the whole-run model (llmplan.efficiency) implies it for the same run as a dense
BF16 model of its active size: goodput = whole-run utilisation ÷ the step MFU of that reference.
A dense BF16 plan then gets the validated whole-run prediction (capped at its own step rate: goodput
≤ 1); precision and MoE shape change it by the step model's ratio plan ÷ reference — the only
data that has them. The layout decides what fits and how many accelerators the batch keeps busy; its per-step
costs are already in the whole runs' level. The band combines the whole-run model's half-width
(run, family, accelerator and coefficient spread) with the ratio's coefficient uncertainty.
"""

import numpy as np
import polars as pl

from llmplan import memory
from llmplan.efficiency import EfficiencyModel, fit

STEP_TERMS = ("Intercept", "x_size", "x_moe", "x_moe_size", "x_moe_domain", "x_fp8", "x_peak", "x_seq", "x_tp", "x_gpus")
GOODPUT_TERMS = ("Intercept", "x_cluster", "x_year")
RECOMPUTE_EFF = {"none": 1.0, "selective": 0.97, "full": 0.75}
BATCH_LAW = (0.2920, 0.3271)             # DeepSeek LLM 2024: B_opt = 0.2920 · C^0.3271 (tokens, C in FLOP)
TP_CHOICES = (1, 2, 4, 8)
PP_CHOICES = (1, 2, 4, 8, 16, 32)
ZERO_CHOICES = (1, 3)
RECOMPUTE_CHOICES = ("none", "selective", "full")
DEFAULT_EXPERTS = 64
# A step cannot reach its peak: no extrapolation (a size, an accelerator far from the tables) may
# pass this. The tables' highest per-step MFU is 0.62 (0.77 before the full-recompute factor).
MAX_MFU = 0.75
A100_PEAK = 312e12


def default_seq_len(year: pl.Expr) -> pl.Expr:
    """Sequence length of a public run that does not state it: 2,048 through 2022, 4,096 in
    2023, 8,192 from 2024 (the usual context of each generation: GPT-3/OPT/BLOOM, LLaMA 2, Llama 3)."""
    return pl.when(year <= 2022).then(2048).when(year == 2023).then(4096).otherwise(8192)


def global_batch_tokens(compute: np.ndarray, seq_len: int, override: float | None = None) -> np.ndarray:
    """Tokens per optimizer step: the scenario's value, else DeepSeek LLM's B_opt(C); a whole
    number of sequences, at least one."""
    c = np.asarray(compute, float)
    b = np.full_like(c, float(override)) if override else BATCH_LAW[0] * c ** BATCH_LAW[1]
    return np.maximum(np.round(b / seq_len), 1.0) * seq_len


class StepModel(EfficiencyModel):
    """Per-step MFU against the precision's peak (the module docstring); fitted by efficiency.fit
    on the log scale, so an effect (FP8, MoE, sequence) is one factor whatever the stack's level —
    what the chain's plan ÷ reference ratio needs. A prediction is capped at MAX_MFU."""
    fixed_terms = STEP_TERMS

    @staticmethod
    def from_y(y):
        return np.minimum(10 ** np.asarray(y, float), MAX_MFU)

    def design(self, frame: pl.DataFrame, terms: list[str] | None = None) -> np.ndarray:
        moe = (pl.col("params") / pl.coalesce("active_params", "params")).log10()
        d = frame.select(
            pl.lit(1.0).alias("Intercept"),
            (pl.coalesce("active_params", "params").log10() - 9.0).alias("x_size"),
            moe.alias("x_moe"),
            (moe * (pl.coalesce("active_params", "params").log10() - 9.0)).alias("x_moe_size"),
            (moe * (pl.col("nvlink_domain").fill_null(8).cast(pl.Float64) / 8.0).log10()).alias("x_moe_domain"),
            (pl.col("precision") == "fp8").cast(pl.Float64).alias("x_fp8"),
            (pl.col("peak_bf16_flops") / A100_PEAK).log10().alias("x_peak"),
            (pl.col("seq_len").cast(pl.Float64) / 4096.0).log(2).alias("x_seq"),
            pl.col("tp").cast(pl.Float64).log(2).alias("x_tp"),
            pl.col("gpu_count").cast(pl.Float64).log10().alias("x_gpus"),
        )
        return d.select(terms or self.terms).to_numpy()


class GoodputModel(EfficiencyModel):
    """log10(whole-run rate ÷ step rate) on cluster size and year, accelerator and family effects."""
    fixed_terms = GOODPUT_TERMS


# -- the per-step table -----------------------------------------------------------------

def step_fit_table(steps: pl.DataFrame) -> pl.DataFrame:
    """Rows the step model fits: one per benchmark row, response = step MFU ÷ layout factor."""
    return steps.filter(pl.col("fit_exclusion_reason").is_null()).select(
        pl.concat_str("source_group", pl.lit(":"), pl.col("source_line").cast(pl.Utf8), pl.lit(":"), "model").alias("run_key"),
        framework(pl.col("source_group")).alias("family"), "accelerator", "params", "active_params", "precision", "peak_bf16_flops",
        "peak_flops", "nvlink_domain", "seq_len", "tp", "gpu_count", "tokens_per_s_per_gpu", "layout_eff",
        (pl.col("step_mfu") / pl.col("layout_eff")).alias("utilization"),
    )


def fit_step(steps: pl.DataFrame, start: tuple | None = None) -> StepModel:
    return fit(step_fit_table(steps), cls=StepModel, start=start)


def framework(source_group: pl.Expr) -> pl.Expr:
    """'megatron-bridge 25.11' → 'megatron-bridge': one team's stack across its releases (the
    step model's family; a release is a source, the unit the backtest leaves out)."""
    return source_group.str.replace(r"\s+v?[\d.]+$", "")


def predict_rate(model: StepModel, frame: pl.DataFrame, known_family: bool = False,
                 family_spread: bool = True) -> pl.DataFrame:
    """step_mfu_p10/p50/p90 and tokens/s per accelerator p10/p50/p90 for rows with params,
    active_params, precision, accelerator, peak_flops (the precision's), peak_bf16_flops,
    nvlink_domain, seq_len, tp, gpu_count and layout_eff; plus the log10 half-width of the band."""
    f = frame.with_columns(pl.lit(1.0).alias("_tf")).rename({"_tf": "training_flop"}) if "training_flop" not in frame.columns \
        else frame
    p = model.predict(f, known_family=known_family, family_spread=family_spread)
    per_token = 6.0 * pl.coalesce("active_params", "params")
    out = p.with_columns(*[(pl.col(f"utilization_{q}") * pl.col("layout_eff")).alias(f"step_mfu_{q}") for q in ("p10", "p50", "p90")])
    return out.with_columns(
        *[(pl.col(f"step_mfu_{q}") * pl.col("peak_flops") / per_token).alias(f"step_tokens_per_s_{q}") for q in ("p10", "p50", "p90")],
        (pl.col("utilization_p90") / pl.col("utilization_p50")).log10().alias("step_half_width"),   # on the rate's log scale
    ).drop("utilization_p10", "utilization_p50", "utilization_p90", "gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90",
           *([] if "training_flop" in frame.columns else ["training_flop"]))


# -- layout search ----------------------------------------------------------------------

def _candidates(moe: bool) -> dict[str, np.ndarray]:
    grid = np.array(np.meshgrid(TP_CHOICES, PP_CHOICES, ZERO_CHOICES, range(len(RECOMPUTE_CHOICES)), indexing="ij")).reshape(4, -1)
    return {"tp": grid[0].astype(float), "pp": grid[1].astype(float), "zero": grid[2], "rc": np.array(RECOMPUTE_CHOICES)[grid[3]]}


def choose_layout(rows: pl.DataFrame, b_tp: float, seq_len: int, micro_batch: int, vocab: int = 32000,
                  fp32_grads: bool = True, flash_attention: bool = True, experts: int = DEFAULT_EXPERTS) -> pl.DataFrame:
    """For each row (params, active_params, memory_bytes, cluster_gpus, global_batch_tokens): the
    (tp, pp, ep, dp, zero_stage, recompute) that fits memory and maximises predicted throughput
    on the cluster (a pipeline gets at least as many micro-batches as stages; ties go to the
    layout with fewer busy accelerators). Adds those columns and layout_eff (bubble × recompute), useful_gpus (the
    accelerators the batch keeps busy), max_useful_gpus, memory_per_gpu (bytes) and
    layout_fits. A row where nothing fits keeps the least-memory candidate, layout_fits false."""
    c = _candidates(False)
    n = rows.height
    g = rows["cluster_gpus"].to_numpy().astype(float)[:, None]
    n_total = rows["params"].to_numpy()[:, None]
    n_active = rows["active_params"].fill_null(rows["params"]).to_numpy()[:, None]
    mem = rows["memory_bytes"].to_numpy()[:, None] * memory.USABLE_FRACTION
    gbt = rows["global_batch_tokens"].to_numpy()[:, None]
    tp, pp, zero, rc = (c[k][None, :] for k in ("tp", "pp", "zero", "rc"))
    mp = tp * pp
    divides = np.mod(g, mp) == 0
    dp = np.maximum(np.floor(g / mp), 1.0)
    dp_max = np.maximum(np.floor(gbt / (micro_batch * seq_len)), 1.0)
    dp_used = np.minimum(dp, dp_max)
    moe = n_total > n_active * 1.0001
    ep = np.where(moe, np.minimum(np.minimum(dp, float(experts)), 64.0), 1.0)
    ep = 2.0 ** np.floor(np.log2(ep))                   # a power of two dividing the data-parallel ranks
    need = memory.layout_bytes(n_total, n_active, tp, pp, ep, dp, zero, rc, seq_len, micro_batch, vocab, fp32_grads,
                               flash_attention)
    m = gbt / (micro_batch * seq_len * dp_used)         # micro-batches per step per pipeline
    bubble = m / (m + pp - 1.0)
    rc_eff = np.vectorize(RECOMPUTE_EFF.get)(rc).astype(float)
    eff = bubble * rc_eff
    useful = mp * dp_used
    # A pipeline needs at least as many micro-batches as stages (else most of each step is bubble:
    # no one runs that); among equally fast layouts the one with fewer busy accelerators wins.
    feasible = divides & (mp <= g) & (need <= mem) & ((pp == 1) | (m >= pp))
    score = np.log10(eff) + b_tp * np.log2(tp) + np.log10(useful) - 1e-9 * np.log10(useful)
    score = np.where(feasible, score, -np.inf)
    fallback = np.where(divides & (mp <= g), need, np.inf)
    best = np.where(np.isfinite(score).any(axis=1), np.argmax(score, axis=1), np.argmin(fallback, axis=1))
    r = np.arange(n)
    pick = lambda a: np.broadcast_to(a, (n, tp.shape[1]))[r, best]  # noqa: E731
    return rows.with_columns(
        pl.Series("tp", pick(tp).astype(np.int64)), pl.Series("pp", pick(pp).astype(np.int64)),
        pl.Series("ep", pick(ep).astype(np.int64)), pl.Series("dp", pick(dp).astype(np.int64)),
        pl.Series("zero_stage", pick(zero).astype(np.int64)), pl.Series("recompute", pick(rc).astype(str)),
        pl.Series("layout_eff", pick(eff)), pl.Series("useful_gpus", pick(useful)),
        pl.Series("max_useful_gpus", (pick(mp) * pick(dp_max)).astype(np.int64)),
        pl.Series("memory_per_gpu", pick(need)), pl.Series("layout_fits", np.isfinite(score).any(axis=1)),
    )


def min_gpus_for_memory(rows: pl.DataFrame, seq_len: int, micro_batch: int, vocab: int = 32000, fp32_grads: bool = True,
                        flash_attention: bool = True) -> np.ndarray:
    """The fewest accelerators any layout fits on: per candidate (tp, pp, recompute) with ZeRO-3,
    the data-parallel ranks the sharded states need (as memory.memory_plan), minimised; -1 if none."""
    c = _candidates(False)
    n_total = rows["params"].to_numpy()[:, None]
    n_active = rows["active_params"].fill_null(rows["params"]).to_numpy()[:, None]
    mem = rows["memory_bytes"].to_numpy()[:, None] * memory.USABLE_FRACTION
    tp, pp, rc = c["tp"][None, :], c["pp"][None, :], c["rc"][None, :]
    one = memory.layout_bytes(n_total, n_active, tp, pp, 1.0, 1.0, 3, rc, seq_len, micro_batch, vocab, fp32_grads, flash_attention)
    big = memory.layout_bytes(n_total, n_active, tp, pp, 1.0, 1e12, 3, rc, seq_len, micro_batch, vocab, fp32_grads, flash_attention)
    shard = one - big                                   # bytes that divide by the data-parallel ranks
    with np.errstate(divide="ignore", invalid="ignore"):
        dp = np.where(mem > big, np.ceil(np.where(shard > 0, shard / (mem - big), 1.0)), np.inf)
    count = np.min(tp * pp * np.maximum(dp, 1.0), axis=1)
    return np.where(np.isfinite(count), count, -1).astype(np.int64)


# -- goodput ----------------------------------------------------------------------------

def run_frame(runs: pl.DataFrame, acc: pl.DataFrame, seq_len: pl.Expr | None = None) -> pl.DataFrame:
    """Whole runs as rows the layout search and the step model take: precision (bf16 unless the
    run says fp8), default sequence length by year, global batch from the batch law, cluster =
    the run's accelerator count."""
    a = acc.select("accelerator", pl.col("peak_flops").alias("peak_bf16_flops"), "peak_fp8_flops", "memory_bytes", "nvlink_domain")
    f = runs.join(a, on="accelerator", how="left").with_columns(
        pl.coalesce(pl.col("precision").replace({"fp16": "bf16"}) if "precision" in runs.columns else None,
                    pl.lit("bf16")).alias("precision"),
        (seq_len if seq_len is not None else default_seq_len(pl.col("year"))).alias("seq_len"),
        pl.col("gpu_count").alias("cluster_gpus"),
    )
    f = f.with_columns(pl.when(pl.col("precision") == "fp8").then(pl.coalesce("peak_fp8_flops", "peak_bf16_flops"))
                       .otherwise(pl.col("peak_bf16_flops")).alias("peak_flops"))
    return f


def with_layout_and_rate(frame: pl.DataFrame, step: StepModel, micro_batch: int = 1, vocab: int = 32000) -> pl.DataFrame:
    """Rows with cluster_gpus, seq_len (one value or per row), training_flop …: global batch,
    layout and step rate (the cluster's busy accelerators as gpu_count)."""
    parts = []
    for (s,), part in frame.group_by("seq_len", maintain_order=True):     # a few sequence lengths, not rows
        gbt = part["global_batch_tokens"].to_numpy() if "global_batch_tokens" in part.columns else \
            global_batch_tokens(part["training_flop"].to_numpy(), int(s))
        part = part.with_columns(pl.Series("global_batch_tokens", gbt))
        parts.append(choose_layout(part, step.beta.get("x_tp", 0.0), int(s), micro_batch, vocab))
    laid = pl.concat(parts, how="vertical_relaxed")
    # The stack's own offset is left to goodput (measured against this same population mean).
    return predict_rate(step, laid.with_columns(pl.col("useful_gpus").alias("gpu_count")), family_spread=False)


# A run that does not state its accelerator count is laid out on this many: the step model
# barely depends on the count (its x_gpus coefficient is ≈ 0), the layout search needs one.
IMPUTED_CLUSTER = 1024


def goodput_table(runs: pl.DataFrame, step: StepModel, acc: pl.DataFrame) -> pl.DataFrame:
    """Whole runs (a fit_table() of llmplan.efficiency, per_step = 0, joined with their tokens,
    active parameters and precision) with the planned layout, the step model's rate, and
    goodput = achieved tokens/s per accelerator ÷ step p50 (in `utilization`, for fit()).
    gpu_count stays as the run stated it (missing: the goodput model's centre)."""
    r = run_frame(runs, acc).with_columns(pl.col("gpu_count").alias("_stated"),
                                          pl.coalesce("gpu_count", pl.lit(float(IMPUTED_CLUSTER))).alias("cluster_gpus"))
    r = with_layout_and_rate(r, step)
    achieved = pl.col("tokens") / (pl.col("gpu_hours") * 3600.0)
    return r.with_columns(achieved.alias("achieved_tokens_per_s"),
                          (achieved / pl.col("step_tokens_per_s_p50")).alias("utilization"),
                          pl.col("_stated").alias("gpu_count")).drop("_stated")


def fit_goodput(table: pl.DataFrame) -> GoodputModel:
    return fit(table.select("run_key", "family", "accelerator", "year", "gpu_count", "params", "peak_flops", "utilization"),
               cls=GoodputModel)


def combine(rate: pl.DataFrame, goodput: GoodputModel) -> pl.DataFrame:
    """Whole-run tokens/s per accelerator p10/p50/p90 = step × goodput, the log half-widths in
    quadrature; GPU-hours for `tokens` from them (p90 hours from the p10 rate)."""
    g = goodput.predict(rate if "training_flop" in rate.columns else rate.with_columns(pl.lit(1.0).alias("training_flop")))
    gp50 = g["utilization_p50"].to_numpy()
    hw_g = np.log10(g["utilization_p90"].to_numpy() / gp50)
    hw = np.sqrt(rate["step_half_width"].to_numpy() ** 2 + hw_g ** 2)
    mid = np.log10(rate["step_tokens_per_s_p50"].to_numpy() * gp50)
    out = rate.with_columns(pl.Series("goodput_p50", gp50), pl.Series("goodput_half_width", hw_g),
                            pl.Series("tokens_per_s_per_gpu_p10", 10 ** (mid - hw)),
                            pl.Series("tokens_per_s_per_gpu_p50", 10 ** mid),
                            pl.Series("tokens_per_s_per_gpu_p90", 10 ** (mid + hw)))
    return out.with_columns(
        (pl.col("tokens") / (pl.col("tokens_per_s_per_gpu_p90") * 3600.0)).alias("gpu_hours_p10"),
        (pl.col("tokens") / (pl.col("tokens_per_s_per_gpu_p50") * 3600.0)).alias("gpu_hours_p50"),
        (pl.col("tokens") / (pl.col("tokens_per_s_per_gpu_p10") * 3600.0)).alias("gpu_hours_p90"),
    )


def rule_rate(frame: pl.DataFrame, mfu: float = 0.40, of_precision: bool = False) -> pl.Series:
    """The shortcut: tokens/s per accelerator at 40 % of the BF16 peak (or of the precision's)."""
    peak = frame["peak_flops"] if of_precision else frame["peak_bf16_flops"]
    return mfu * peak / (6.0 * frame["active_params"].fill_null(frame["params"]))



# -- backtests --------------------------------------------------------------------------

def step_backtest(steps: pl.DataFrame, full: StepModel | None = None) -> pl.DataFrame:
    """The step model on benchmark rows it never saw: (a) leave one framework release out, the
    framework's own effect kept from its other releases; (b) leave one model out; (c) leave one
    framework out — a stack the fit has never seen, as a team's own is. Beside each p50, the
    shortcuts '40 % of the BF16 peak' and '40 % of the precision's peak'. `full`: the step model
    fitted on every row; each refit starts from where it ended (llmplan.efficiency.fit's `start`)."""
    sb = steps.filter(pl.col("fit_exclusion_reason").is_null()).with_columns(framework(pl.col("source_group")).alias("family"))
    releases = sb.group_by("family").agg(pl.col("source_group").n_unique().alias("n"))
    several = set(releases.filter(pl.col("n") >= 2)["family"].to_list())   # a release out of one is a framework out
    jobs = []                                             # (split, known family?, training rows, rows to predict)
    for split, unit, known in (("per step: leave one release out", "source_group", True),
                               ("per step: leave one model out", "model", True),
                               ("per step: leave one framework out", "family", False)):
        for held in sb[unit].unique().sort().to_list():
            train, test = sb.filter(pl.col(unit) != held), sb.filter(pl.col(unit) == held)
            if train.height < 10 or (unit == "source_group" and test["family"][0] not in several):
                continue
            jobs.append((split, known, train, test))
    start = full.fit_state if full is not None else None
    parts = []
    for split, known, train, test in jobs:
        p = predict_rate(fit_step(train, start), test, known_family=known)
        parts.append(p.select(
            pl.lit(split).alias("split"), "source_group", "model", "accelerator", "precision",
            pl.col("tokens_per_s_per_gpu").alias("actual"), pl.col("step_tokens_per_s_p10").alias("pred_p10"),
            pl.col("step_tokens_per_s_p50").alias("pred_p50"), pl.col("step_tokens_per_s_p90").alias("pred_p90"),
            rule_rate(p).alias("rule_bf16"), rule_rate(p, of_precision=True).alias("rule_precision")))
    bt = pl.concat(parts)
    return bt.with_columns(
        (pl.col("pred_p50") / pl.col("actual")).log10().abs().alias("abs_log10_err"),
        (pl.col("rule_bf16") / pl.col("actual")).log10().abs().alias("rule_bf16_abs_log10_err"),
        (pl.col("rule_precision") / pl.col("actual")).log10().abs().alias("rule_precision_abs_log10_err"),
        pl.col("actual").is_between(pl.col("pred_p10"), pl.col("pred_p90")).alias("inside_p10_p90"))


def step_backtest_summary(bt: pl.DataFrame) -> pl.DataFrame:
    """Per split: llmplan's step model, and the two 40 % shortcuts, in fits.backtest_summary's shape."""
    aggs = []
    for method, col, cov in (("llmplan step model", "abs_log10_err", True), ("40% of BF16 peak", "rule_bf16_abs_log10_err", False),
                             ("40% of the precision's peak", "rule_precision_abs_log10_err", False)):
        aggs.append(bt.group_by("split").agg(
            pl.lit(method).alias("method"), pl.len().cast(pl.Int64).alias("n"), pl.col(col).median().alias("median_abs_log10_err"),
            ((10 ** pl.col(col) - 1) * 100).median().alias("median_abs_pct_err"),
            (pl.col("inside_p10_p90").mean() if cov else pl.lit(None, pl.Float64)).alias("coverage_p10_p90")))
    return pl.concat(aggs).sort("split", "method")


def chain_backtest(goodput: pl.DataFrame, time_split_years: tuple[int, ...] = (2023, 2024)) -> pl.DataFrame:
    """Whole-run hours from step × goodput on runs never seen (the whole-run model's splits:
    leave one family out; fit before year Y, predict Y and later), in fits.backtests' shape. The
    step model is fitted on every benchmark (they are not whole runs); goodput on the training runs."""
    from llmplan.efficiency import rule_of_thumb_gpu_hours

    def score(test: pl.DataFrame, model: GoodputModel, split: str) -> pl.DataFrame:
        p = combine(test.drop("utilization"), model)
        return p.select(
            pl.lit(split).alias("split"), "run_key", pl.col("run_key").alias("model"), "family", "year", "accelerator",
            pl.col("gpu_hours").alias("actual_gpu_hours"), pl.col("gpu_hours_p10").alias("pred_p10"),
            pl.col("gpu_hours_p50").alias("pred_p50"), pl.col("gpu_hours_p90").alias("pred_p90"),
            rule_of_thumb_gpu_hours(pl.col("training_flop"), pl.col("peak_bf16_flops")).alias("rule_gpu_hours"),
        ).with_columns(
            (pl.col("pred_p50") / pl.col("actual_gpu_hours")).log10().abs().alias("abs_log10_err"),
            (pl.col("rule_gpu_hours") / pl.col("actual_gpu_hours")).log10().abs().alias("rule_abs_log10_err"),
            pl.col("actual_gpu_hours").is_between(pl.col("pred_p10"), pl.col("pred_p90")).alias("inside_p10_p90"))

    parts = []
    for fam in sorted(goodput["family"].unique().to_list()):
        train, test = goodput.filter(pl.col("family") != fam), goodput.filter(pl.col("family") == fam)
        parts.append(score(test, fit_goodput(train), "leave-one-family-out"))
    for year in time_split_years:
        train, test = goodput.filter(pl.col("year") < year), goodput.filter(pl.col("year") >= year)
        if train.height >= 8 and test.height >= 5:
            parts.append(score(test, fit_goodput(train), f"time split (fit < {year}, predict ≥ {year})"))
    return pl.concat(parts)


# -- the chain used by plans ------------------------------------------------------------

class Chain:
    """whole-run tokens/s per accelerator = step(plan) × goodput, goodput = whole-run model ÷
    step(reference): see the module docstring. predict() takes plan rows and adds the layout,
    step_mfu_p50, goodput_p50, tokens_per_s_per_gpu_p10/p50/p90, utilization_p10/p50/p90
    (whole-run, 6·N_active·D against the BF16 peak), gpu_hours_p10/p50/p90 (work on the busy
    accelerators), useful_gpus and max_useful_gpus."""

    def __init__(self, whole: EfficiencyModel, step: StepModel):
        self.whole, self.step = whole, step
        self.year_range = whole.year_range

    def predict(self, grid: pl.DataFrame, seq_len: int = 4096, micro_batch: int = 1, precision: str = "bf16",
                global_batch: float | None = None, vocab: int = 32000, fp32_grads: bool = True,
                flash_attention: bool = True, experts: int = DEFAULT_EXPERTS) -> pl.DataFrame:
        if grid.height == 0:
            return grid
        g = grid.with_columns(
            pl.col("peak_flops").alias("peak_bf16_flops"), pl.lit(precision).alias("precision"), pl.lit(seq_len).alias("seq_len"),
            (pl.col("active_params") if "active_params" in grid.columns else pl.lit(None, pl.Float64)).alias("active_params"))
        if precision == "fp8":
            g = g.with_columns(pl.col("peak_fp8_flops").alias("peak_flops"))
        g = g.with_columns(pl.Series("global_batch_tokens", global_batch_tokens(g["training_flop"].to_numpy(), seq_len, global_batch)))
        g = choose_layout(g, self.step.beta.get("x_tp", 0.0), seq_len, micro_batch, vocab, fp32_grads, flash_attention, experts)
        # The reference the whole-run model describes: a dense BF16 model of the active size on the same
        # sequence, layout and cluster (whole runs do not record those, so they stay the plan's).
        ref = g.with_columns(pl.coalesce("active_params", "params").alias("params"), pl.lit(None, pl.Float64).alias("active_params"),
                             pl.lit("bf16").alias("precision"), pl.col("peak_bf16_flops").alias("peak_flops"),
                             pl.col("useful_gpus").alias("gpu_count"))
        plan = g.with_columns(pl.col("useful_gpus").alias("gpu_count"))
        Xp, Xr = self.step.design(plan), self.step.design(ref)
        b = np.array([self.step.beta[t] for t in self.step.terms])
        u = plan.select("accelerator").join(pl.DataFrame({"accelerator": list(self.step.groups),
                                                          "_u": [v[0] for v in self.step.groups.values()]},
                                                         schema={"accelerator": pl.Utf8, "_u": pl.Float64}),
                                            on="accelerator", how="left", maintain_order="left")["_u"].fill_null(0.0).to_numpy()
        mfu_plan = self.step.from_y(Xp @ b + u)
        mfu_ref = self.step.from_y(Xr @ b + u)
        peak_plan, peak_ref = plan["peak_flops"].to_numpy(), plan["peak_bf16_flops"].to_numpy()
        ratio = (mfu_plan * peak_plan) / (mfu_ref * peak_ref)          # the plan's step rate ÷ the reference's
        d = Xp - Xr
        ratio_hw = 1.2815515655446004 * np.sqrt(np.einsum("ij,jk,ik->i", d, self.step.cov, d))
        whole = self.whole.predict(plan.with_columns(pl.col("useful_gpus").cast(pl.Float64).alias("gpu_count"),
                                                     pl.col("peak_bf16_flops").alias("peak_flops")))
        # A whole run cannot beat its own steps: where the whole-run model is more optimistic than the
        # step model (small models on huge clusters, where neither has data), goodput is capped at 1.
        w50 = np.minimum(whole["utilization_p50"].to_numpy(), mfu_ref)
        whole_hw = np.log10(whole["utilization_p90"].to_numpy() / whole["utilization_p50"].to_numpy())
        hw = np.sqrt(whole_hw ** 2 + ratio_hw ** 2)
        per_token = 6.0 * plan["active_params"].fill_null(plan["params"]).to_numpy()
        mid = np.log10(w50 * ratio * peak_ref / per_token)               # whole-run tokens/s per accelerator
        out = plan.with_columns(
            pl.Series("step_mfu_p50", mfu_plan), pl.Series("goodput_p50", w50 / mfu_ref),
            pl.Series("tokens_per_s_per_gpu_p10", 10 ** (mid - hw)), pl.Series("tokens_per_s_per_gpu_p50", 10 ** mid),
            pl.Series("tokens_per_s_per_gpu_p90", 10 ** (mid + hw)),
            pl.col("peak_bf16_flops").alias("peak_flops"), pl.col("cluster_gpus").cast(pl.Float64).alias("gpu_count"))
        util = lambda q: pl.col(f"tokens_per_s_per_gpu_{q}") * 6.0 * pl.coalesce("active_params", "params") / pl.col("peak_flops")  # noqa: E731
        hours = lambda q: pl.col("training_flop") / (6.0 * pl.coalesce("active_params", "params") * pl.col(f"tokens_per_s_per_gpu_{q}") * 3600.0)  # noqa: E731
        return out.with_columns(
            util("p10").alias("utilization_p10"), util("p50").alias("utilization_p50"), util("p90").alias("utilization_p90"),
            hours("p90").alias("gpu_hours_p10"), hours("p50").alias("gpu_hours_p50"), hours("p10").alias("gpu_hours_p90"))


def chain_backtest_runs(whole_bt: pl.DataFrame, runs: pl.DataFrame, step: StepModel, acc: pl.DataFrame) -> pl.DataFrame:
    """The chain on the whole-run model's held-out predictions (llmplan.efficiency.backtest): each
    run's predicted hours scaled by the step ratio for its own precision and MoE shape (dense BF16
    runs keep the whole-run prediction). Same shape as fits.backtests."""
    info = runs.select("run_key", "params", "active_params", "tokens", "precision", "gpu_count", "training_flop")
    f = run_frame(whole_bt.join(info, on="run_key", how="left"), acc)
    f = f.with_columns(pl.coalesce("gpu_count", pl.lit(float(IMPUTED_CLUSTER))).alias("cluster_gpus"))
    plan = f.with_columns(pl.Series("global_batch_tokens", global_batch_tokens(f["training_flop"].to_numpy(), 4096)),
                          pl.col("cluster_gpus").alias("gpu_count"), pl.lit(1, pl.Int64).alias("tp"))
    ref = plan.with_columns(pl.coalesce("active_params", "params").alias("params"), pl.lit(None, pl.Float64).alias("active_params"),
                            pl.lit("bf16").alias("precision"), pl.col("peak_bf16_flops").alias("peak_flops"))
    b = np.array([step.beta[t] for t in step.terms])
    mfu_p, mfu_r = step.from_y(step.design(plan) @ b), step.from_y(step.design(ref) @ b)
    ratio = (mfu_p * plan["peak_flops"].to_numpy()) / (mfu_r * plan["peak_bf16_flops"].to_numpy())
    out = whole_bt.with_columns(*[(pl.col(c) / pl.Series(ratio)).alias(c) for c in ("pred_p10", "pred_p50", "pred_p90")])
    return out.with_columns(
        (pl.col("pred_p50") / pl.col("actual_gpu_hours")).log10().abs().alias("abs_log10_err"),
        pl.col("actual_gpu_hours").is_between(pl.col("pred_p10"), pl.col("pred_p90")).alias("inside_p10_p90"))


# -- `llmplan predict --per-step` -------------------------------------------------------

def check_rows(frame: pl.DataFrame, path: str) -> list:
    """Problems a per-step or whole-run row can have beyond its types: more active than total
    parameters, FP8 on an accelerator without an FP8 peak, a layout that does not divide the cluster."""
    from llmplan.errors import Problem

    problems = []
    for r in frame.iter_rows(named=True):
        line = r["source_line"]
        if r.get("active_params_b") is not None and r["active_params_b"] > r["params_b"]:
            problems.append(Problem(path, line, "active_params_b", f"{r['active_params_b']:g} active parameters (billions) exceed "
                                    f"the {r['params_b']:g} total; expected active ≤ params_b"))
        if r.get("precision") == "fp8" and r.get("peak_fp8_flops") is None:
            problems.append(Problem(path, line, "precision", f"fp8 on {r['accelerator']}, which has no FP8 peak in the accelerator "
                                    "table; expected bf16 (or add peak_dense_fp8_tflops to data/accelerators/)"))
        mp = (r.get("tp") or 1) * (r.get("pp") or 1)
        if r.get("gpu_count") and (r.get("tp") or r.get("pp")) and r["gpu_count"] % mp:
            problems.append(Problem(path, line, "tp", f"tp × pp = {mp} does not divide the {r['gpu_count']} accelerators; "
                                    "expected a layout whose tensor × pipeline ranks divide gpu_count"))
    return problems


def predict_steps(frame: pl.DataFrame, step: StepModel, framework: str | None = None, micro_batch: int = 1) -> pl.DataFrame:
    """Per row: tokens/s per accelerator p10/p50/p90 and step MFU p50 for the row's layout, or
    llmplan's own (the search of choose_layout) where tp/pp are missing. A new stack by default
    (the between-framework spread is in the band); `framework` names one the fit knows."""
    f = frame.with_columns(
        (pl.col("params_b") * 1e9).alias("params"),
        (pl.col("active_params_b") * 1e9 if "active_params_b" in frame.columns else pl.lit(None, pl.Float64)).alias("active_params"),
        pl.col("gpu_count").alias("cluster_gpus"))
    f = f.with_columns((pl.coalesce("active_params", "params") * 6.0 * 1e12).alias("training_flop"))   # only sets the batch law's C
    parts = []
    for (s,), part in f.group_by("seq_len", maintain_order=True):
        gbt = global_batch_tokens(part["training_flop"].to_numpy(), int(s))
        if "global_batch" in part.columns:
            gbt = np.where(part["global_batch"].is_null().to_numpy(), gbt, part["global_batch"].fill_null(0).to_numpy())
        part = part.with_columns(pl.Series("global_batch_tokens", gbt))
        own = choose_layout(part, step.beta.get("x_tp", 0.0), int(s), micro_batch)
        parts.append(own)
    f = pl.concat(parts, how="vertical_relaxed")
    given = [c for c in ("tp", "pp", "ep") if c in frame.columns]
    if given:
        g = frame.select("source_line", *[pl.col(c).alias(f"_{c}") for c in given])
        f = f.join(g, on="source_line", how="left").with_columns(
            *[pl.coalesce(f"_{c}", c).alias(c) for c in given]).drop(*[f"_{c}" for c in given])
        dp = pl.col("gpu_count") / (pl.col("tp") * pl.col("pp"))
        m = pl.col("global_batch_tokens") / (micro_batch * pl.col("seq_len") * dp)
        f = f.with_columns(dp.cast(pl.Int64).alias("dp"),
                           pl.when(pl.col("pp") > 1).then(m / (m + pl.col("pp") - 1)).otherwise(1.0).alias("layout_eff"))
    f = f.with_columns(pl.lit(framework).cast(pl.Utf8).alias("family"))
    return predict_rate(step, f, known_family=framework is not None)
