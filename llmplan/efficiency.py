"""How GPU-hours are predicted: a model of whole-run utilisation learned from real runs.

    GPU-hours = training FLOP / (utilisation × peak FLOP/s × 3600)

Utilisation here is *whole-run*: model FLOPs (6·N·D) divided by everything the run paid for
(restarts, evaluation, failures, idle nodes included), measured against the accelerator's dense
BF16 peak (FP16 for V100). It is learned, not assumed:

    log10(utilisation) = b0 + b_size·log10(N / 1e9) + b_cluster·(log10(GPUs) − centre)
                         + b_year·(year − 2022) + b_peak·log10(peak / 312 TFLOP/s)
                         + b_step·[per-step benchmark] + u_accelerator + ε

* u_accelerator is a random intercept per accelerator (REML, see fit()): partial pooling,
  so an accelerator with two runs is pulled towards the global estimate and one with forty
  keeps its own. An accelerator that never appears in the data (B200, MI300X …) gets u = 0
  and the full between-accelerator variance added to its interval; its prediction comes from
  its specs through b_peak (newer, faster chips reach a smaller fraction of a higher peak).
* The MosaicML throughput rows are per-step measurements (no restarts, no evaluation); they
  enter as medians per (accelerator, model) with the per-step indicator, which absorbs the
  step-vs-whole-run gap. Predictions for planning are always whole-run (indicator 0).
* A missing GPU count is set to the centre (no information), not guessed.
* Prediction intervals: Student-t with the model's residual degrees of freedom on the
  variance of a *new run* = fixed-effect uncertainty + accelerator-effect uncertainty
  + residual variance; p10/p90 are its 10th/90th percentiles.
* Year is clamped to the range seen in the fit: the model does not extrapolate a trend.
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

A100_PEAK = 312e12
RULE_MFU = 0.40
# Eight-odd accelerators cannot pin the between-accelerator variance down (REML often puts it
# at zero); an accelerator never seen still differs from the spec-based line. Floor: 0.05 log10
# (≈ ±12 %) per accelerator, a prior-like bound chosen before looking at any backtest.
SIGMA2_GROUP_FLOOR = 0.05 ** 2
FIXED = ["Intercept", "x_size", "x_cluster", "x_year", "x_peak", "per_step"]


def _t_ppf(q: float, df: int) -> float:
    """Student-t quantile (scipy.special, not scipy.stats: a what-if must start fast)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


@dataclass
class EfficiencyModel:
    beta: dict[str, float]
    cov: np.ndarray
    groups: dict[str, tuple[float, float, int]]   # accelerator -> (BLUP, posterior sd, n)
    sigma2: float
    sigma2_group: float
    df: int
    centre_cluster: float
    year_range: tuple[int, int]
    n_obs: int
    terms: list[str] = field(default_factory=lambda: list(FIXED))
    t90: float = 0.0      # Student-t 90th percentile at df, stored so predicting needs no SciPy

    def __post_init__(self):
        if not self.t90:
            self.t90 = _t_ppf(0.9, self.df)

    # -- persistence (fits.efficiency rows) ---------------------------------------------
    def to_frame(self, run_id: str) -> pl.DataFrame:
        se = np.sqrt(np.diag(self.cov))
        t = _t_ppf(0.975, self.df)
        rows = [dict(kind="fixed", name=k, estimate=self.beta[k], std_error=float(se[i]),
                     ci_lo=self.beta[k] - t * se[i], ci_hi=self.beta[k] + t * se[i], n=self.n_obs)
                for i, k in enumerate(self.terms)]
        rows += [dict(kind="cov", name=f"{a}|{b}", estimate=float(self.cov[i, j]), std_error=None, ci_lo=None, ci_hi=None, n=None)
                 for i, a in enumerate(self.terms) for j, b in enumerate(self.terms)]
        rows += [dict(kind="group", name=g, estimate=u, std_error=sd, ci_lo=u - 1.96 * sd, ci_hi=u + 1.96 * sd, n=n)
                 for g, (u, sd, n) in self.groups.items()]
        rows += [dict(kind="variance", name="sigma2_resid", estimate=self.sigma2, std_error=None, ci_lo=None, ci_hi=None, n=self.df),
                 dict(kind="variance", name="sigma2_group", estimate=self.sigma2_group, std_error=None, ci_lo=None, ci_hi=None, n=len(self.groups)),
                 dict(kind="stat", name="t90", estimate=self.t90, std_error=None, ci_lo=None, ci_hi=None, n=self.df),
                 dict(kind="stat", name="centre_cluster", estimate=self.centre_cluster, std_error=None, ci_lo=None, ci_hi=None, n=None),
                 dict(kind="stat", name="year_min", estimate=float(self.year_range[0]), std_error=None, ci_lo=None, ci_hi=None, n=None),
                 dict(kind="stat", name="year_max", estimate=float(self.year_range[1]), std_error=None, ci_lo=None, ci_hi=None, n=None)]
        return pl.DataFrame(rows, schema={"kind": pl.Utf8, "name": pl.Utf8, "estimate": pl.Float64, "std_error": pl.Float64,
                                          "ci_lo": pl.Float64, "ci_hi": pl.Float64, "n": pl.Int64}).with_columns(
            pl.lit(run_id).alias("pipeline_run_id"))

    @classmethod
    def from_frame(cls, f: pl.DataFrame) -> "EfficiencyModel":
        fixed = f.filter(pl.col("kind") == "fixed")
        terms = fixed["name"].to_list()
        beta = dict(zip(terms, fixed["estimate"].to_list()))
        covd = {r["name"]: r["estimate"] for r in f.filter(pl.col("kind") == "cov").iter_rows(named=True)}
        cov = np.array([[covd[f"{a}|{b}"] for b in terms] for a in terms])
        groups = {r["name"]: (r["estimate"], r["std_error"], r["n"]) for r in f.filter(pl.col("kind") == "group").iter_rows(named=True)}
        v = {r["name"]: r for r in f.filter(pl.col("kind").is_in(["variance", "stat"])).iter_rows(named=True)}
        return cls(beta=beta, cov=cov, groups=groups, sigma2=v["sigma2_resid"]["estimate"],
                   sigma2_group=v["sigma2_group"]["estimate"], df=int(v["sigma2_resid"]["n"]),
                   centre_cluster=v["centre_cluster"]["estimate"],
                   year_range=(int(v["year_min"]["estimate"]), int(v["year_max"]["estimate"])),
                   n_obs=int(fixed["n"][0]), terms=terms, t90=v["t90"]["estimate"] if "t90" in v else 0.0)

    # -- prediction ---------------------------------------------------------------------
    def design(self, frame: pl.DataFrame) -> np.ndarray:
        d = frame.select(
            pl.lit(1.0).alias("Intercept"),
            (pl.col("params").log10() - 9.0).alias("x_size"),
            (pl.col("gpu_count").cast(pl.Float64).log10() - self.centre_cluster).fill_null(0.0).fill_nan(0.0).alias("x_cluster"),
            (pl.col("year").cast(pl.Float64).fill_null(float(self.year_range[1]))
             .clip(*map(float, self.year_range)) - 2022.0).alias("x_year"),
            (pl.col("peak_flops") / A100_PEAK).log10().alias("x_peak"),
            pl.col("per_step").cast(pl.Float64).alias("per_step") if "per_step" in frame.columns else pl.lit(0.0).alias("per_step"),
        )
        return d.select(self.terms).to_numpy()

    def predict(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add utilization_p10/p50/p90 and gpu_hours_p10/p50/p90 to a frame with columns
        params, gpu_count, year, accelerator, peak_flops, training_flop."""
        if frame.height == 0:
            return frame.with_columns(*[pl.lit(None, pl.Float64).alias(c) for c in
                                        ("utilization_p10", "utilization_p50", "utilization_p90", "gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90")])
        X = self.design(frame)
        b = np.array([self.beta[t] for t in self.terms])
        groups = pl.DataFrame({"accelerator": list(self.groups), "_u": [g[0] for g in self.groups.values()],
                               "_uvar": [g[1] ** 2 for g in self.groups.values()]},
                              schema={"accelerator": pl.Utf8, "_u": pl.Float64, "_uvar": pl.Float64})
        g = frame.select("accelerator").join(groups, on="accelerator", how="left", maintain_order="left")
        u = g["_u"].fill_null(0.0).to_numpy()
        u_var = g["_uvar"].fill_null(self.sigma2_group).to_numpy()   # unseen: the full between-accelerator variance
        mean = X @ b + u
        var = np.einsum("ij,jk,ik->i", X, self.cov, X) + u_var + self.sigma2
        t = self.t90
        sd = np.sqrt(var)
        lo, hi = mean - t * sd, mean + t * sd
        out = frame.with_columns(
            pl.Series("utilization_p10", 10 ** lo), pl.Series("utilization_p50", 10 ** mean), pl.Series("utilization_p90", 10 ** hi),
        )
        hours = pl.col("training_flop") / (pl.col("peak_flops") * 3600.0)
        # Low utilisation → many GPU-hours: p90 hours come from p10 utilisation.
        return out.with_columns(
            (hours / pl.col("utilization_p90")).alias("gpu_hours_p10"),
            (hours / pl.col("utilization_p50")).alias("gpu_hours_p50"),
            (hours / pl.col("utilization_p10")).alias("gpu_hours_p90"),
        )


def rule_of_thumb_gpu_hours(training_flop: pl.Expr, peak_flops: pl.Expr) -> pl.Expr:
    """The shortcut llmplan replaces: 6·N·D ÷ (peak × 40%)."""
    return training_flop / (peak_flops * RULE_MFU * 3600.0)


def fit_table(runs: pl.DataFrame, throughput: pl.DataFrame | None) -> pl.DataFrame:
    """Rows the fit sees: usable whole-run rows, plus per-step medians per (accelerator, model)."""
    whole = runs.filter(pl.col("fit_exclusion_reason").is_null() & pl.col("utilization").is_not_null()).select(
        "run_key", "family", "year", "params", "gpu_count", "accelerator", "peak_flops", "utilization", "training_flop",
        "gpu_hours", pl.lit(0).alias("per_step"))
    if throughput is None or throughput.height == 0:
        return whole
    steps = (
        throughput.filter(pl.col("fit_exclusion_reason").is_null())
        .group_by("accelerator", "model")
        .agg(pl.col("params").first(), pl.col("peak_flops").first(), pl.col("n_gpus").median().alias("gpu_count"),
             pl.col("mfu_6n").median().alias("utilization"))
        .select(pl.concat_str(pl.lit("step:"), "accelerator", pl.lit(":"), "model").alias("run_key"),
                pl.lit("mpt-benchmark").alias("family"), pl.lit(2023).cast(pl.Int32).alias("year"), "params",
                pl.col("gpu_count").cast(pl.Float64), "accelerator", "peak_flops", "utilization",
                pl.lit(None, pl.Float64).alias("training_flop"), pl.lit(None, pl.Float64).alias("gpu_hours"),
                pl.lit(1).alias("per_step"))
    )
    return pl.concat([whole.with_columns(pl.col("gpu_count").cast(pl.Float64), pl.col("year").cast(pl.Int32)), steps],
                     how="vertical_relaxed").sort("run_key")


def _reml(X: np.ndarray, y: np.ndarray, Z: np.ndarray, lam: float):
    """GLS with V = σ²(I + λ·ZZ') and the REML criterion profiled over σ² (returns -2ℓ)."""
    n, p = X.shape
    H = np.eye(n) + lam * (Z @ Z.T)
    Hi = np.linalg.inv(H)
    XtHiX = X.T @ Hi @ X
    XtHiX_inv = np.linalg.pinv(XtHiX)
    beta = XtHiX_inv @ X.T @ Hi @ y
    r = y - X @ beta
    q = float(r @ Hi @ r)
    dof = max(n - p, 1)
    crit = dof * math.log(q / dof) + np.linalg.slogdet(H)[1] + np.linalg.slogdet(XtHiX)[1]
    return crit, beta, XtHiX_inv, q / dof, Hi @ r


def fit(table: pl.DataFrame) -> EfficiencyModel:
    """Fit the random-intercept model on a fit_table() by REML.

    Why not statsmodels MixedLM: with eight-odd accelerators it often lands on a singular
    random-effect covariance (σ²_g = 0) and then fails on leave-one-family-out subsets. The
    model is small enough to fit exactly: GLS for each variance ratio λ = σ²_g/σ², λ chosen by
    the REML criterion (scipy, bounded 1-D search)."""
    from scipy.optimize import minimize_scalar

    gc = table["gpu_count"].drop_nulls()
    centre = float(np.median(np.log10(gc.to_numpy()))) if gc.len() else 0.0
    yr = table["year"].drop_nulls()
    year_range = (int(yr.min()), int(yr.max()))
    probe = EfficiencyModel(beta={}, cov=np.zeros((0, 0)), groups={}, sigma2=0, sigma2_group=0, df=1,
                            centre_cluster=centre, year_range=year_range, n_obs=0)
    Xall = probe.design(table)
    keep = [i for i, t in enumerate(FIXED) if t == "Intercept" or Xall[:, i].std() > 0]
    terms = [FIXED[i] for i in keep]
    X = Xall[:, keep]
    y = np.log10(table["utilization"].to_numpy())
    g = table["accelerator"].to_list()
    levels = sorted(set(g))
    Z = np.array([[1.0 if gi == lv else 0.0 for lv in levels] for gi in g])
    if len(levels) >= 2:
        opt = minimize_scalar(lambda ll: _reml(X, y, Z, math.exp(ll))[0], bounds=(-9.0, 4.0), method="bounded")
        lam_hat = math.exp(opt.x)
    else:
        lam_hat = 0.0
    _, beta_v, XtHiX_inv, sigma2, Hir = _reml(X, y, Z, lam_hat)
    sigma2_g_hat = lam_hat * sigma2
    sigma2_g = max(sigma2_g_hat, SIGMA2_GROUP_FLOOR)
    u_all = lam_hat * (Z.T @ Hir)                    # BLUPs: shrunk group means of residuals
    groups = {}
    for j, lv in enumerate(levels):
        n = int(Z[:, j].sum())
        post_var = (sigma2_g * sigma2) / (sigma2 + n * sigma2_g)
        groups[lv] = (float(u_all[j]), math.sqrt(post_var), n)
    return EfficiencyModel(beta=dict(zip(terms, map(float, beta_v))), cov=sigma2 * XtHiX_inv, groups=groups,
                           sigma2=float(sigma2), sigma2_group=float(sigma2_g), df=max(len(y) - len(terms) - 1, 1),
                           centre_cluster=centre, year_range=year_range, n_obs=len(y), terms=terms)


def utilization_by_accelerator(model: EfficiencyModel, accelerators: pl.DataFrame, run_id: str,
                               ref_params: float = 7e9, ref_gpus: int = 256) -> pl.DataFrame:
    """Predicted whole-run utilisation per accelerator for a reference run (7B on 256 GPUs)."""
    f = accelerators.select("accelerator", "peak_flops").with_columns(
        pl.lit(ref_params).alias("params"), pl.lit(float(ref_gpus)).alias("gpu_count"),
        pl.lit(model.year_range[1]).alias("year"), pl.lit(1.0).alias("training_flop"))
    p = model.predict(f)
    return p.select(
        pl.lit(run_id).alias("pipeline_run_id"), "accelerator",
        pl.col("accelerator").map_elements(lambda a: model.groups.get(a, (0, 0, 0))[2], return_dtype=pl.Int64).alias("n_runs"),
        pl.col("accelerator").is_in(list(model.groups)).alias("seen_in_fit"),
        "utilization_p10", "utilization_p50", "utilization_p90")


# -- backtests ---------------------------------------------------------------------------

def _score(test: pl.DataFrame, model: EfficiencyModel, split: str) -> pl.DataFrame:
    p = model.predict(test)
    return p.select(
        pl.lit(split).alias("split"), "run_key", pl.col("run_key").alias("model"), "family", "year", "accelerator",
        pl.col("gpu_hours").alias("actual_gpu_hours"),
        pl.col("gpu_hours_p10").alias("pred_p10"), pl.col("gpu_hours_p50").alias("pred_p50"), pl.col("gpu_hours_p90").alias("pred_p90"),
        rule_of_thumb_gpu_hours(pl.col("training_flop"), pl.col("peak_flops")).alias("rule_gpu_hours"),
    ).with_columns(
        (pl.col("pred_p50") / pl.col("actual_gpu_hours")).log10().abs().alias("abs_log10_err"),
        (pl.col("rule_gpu_hours") / pl.col("actual_gpu_hours")).log10().abs().alias("rule_abs_log10_err"),
        pl.col("actual_gpu_hours").is_between(pl.col("pred_p10"), pl.col("pred_p90")).alias("inside_p10_p90"),
    )


def backtest(table: pl.DataFrame, time_split_year: int = 2023) -> pl.DataFrame:
    """(a) leave-one-model-family-out; (b) fit on runs published before `time_split_year`,
    predict the later ones (per-step benchmark rows, published in 2023, are left out of (b))."""
    whole = table.filter(pl.col("per_step") == 0)
    parts = []
    for fam in sorted(whole["family"].unique().to_list()):
        train = table.filter(pl.col("family") != fam)
        test = whole.filter(pl.col("family") == fam)
        parts.append(_score(test, fit(train), "leave-one-family-out"))
    train = whole.filter(pl.col("year") < time_split_year)
    test = whole.filter(pl.col("year") >= time_split_year)
    if train.height >= 8 and test.height:
        parts.append(_score(test, fit(train), f"time split (fit < {time_split_year}, predict ≥ {time_split_year})"))
    return pl.concat(parts)


def backtest_summary(bt: pl.DataFrame) -> pl.DataFrame:
    model = bt.group_by("split").agg(
        pl.lit("llmplan").alias("method"), pl.len().cast(pl.Int64).alias("n"),
        pl.col("abs_log10_err").median().alias("median_abs_log10_err"),
        ((pl.col("pred_p50") / pl.col("actual_gpu_hours") - 1).abs() * 100).median().alias("median_abs_pct_err"),
        pl.col("inside_p10_p90").mean().alias("coverage_p10_p90"))
    rule = bt.group_by("split").agg(
        pl.lit("6ND/(peak×0.40)").alias("method"), pl.len().cast(pl.Int64).alias("n"),
        pl.col("rule_abs_log10_err").median().alias("median_abs_log10_err"),
        ((pl.col("rule_gpu_hours") / pl.col("actual_gpu_hours") - 1).abs() * 100).median().alias("median_abs_pct_err"),
        pl.lit(None, pl.Float64).alias("coverage_p10_p90"))
    return pl.concat([model, rule]).sort("split", "method", descending=[False, True])
