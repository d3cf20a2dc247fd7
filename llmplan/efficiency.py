"""How GPU-hours are predicted: a model of whole-run utilisation learned from real runs.

    GPU-hours = training FLOP / (utilisation × peak FLOP/s × 3600)

Utilisation here is *whole-run*: model FLOPs (6·N·D) divided by everything the run paid for
(restarts, evaluation, failures, idle nodes included), measured against the accelerator's dense
BF16 peak (FP16 for V100). It is learned, not assumed:

    log10(utilisation) = b0 + b_size·log10(N / 1e9) + b_cluster·(log10(GPUs) − centre)
                         + b_year·(year − 2022) + b_peak·log10(peak / 312 TFLOP/s)
                         + b_step·[per-step benchmark] + u_accelerator + v_family + ε

* u_accelerator is a random intercept per accelerator: partial pooling, so an accelerator
  with two runs is pulled towards the global estimate and one with forty keeps its own. An
  accelerator that never appears in the data (B200, MI300X …) gets u = 0 and the full
  between-accelerator variance added to its interval; its prediction comes from its specs
  through b_peak (newer, faster chips reach a smaller fraction of a higher peak).
* v_family is a random intercept per model family (LLaMA, Pythia, Falcon …): runs of one
  family share a team, a codebase and a way of counting hours, so they are not independent
  evidence, and the run a user plans is a *new* family. Its variance is part of every
  prediction interval.
* ε is Student-t with ν = 4 degrees of freedom, not normal: public records contain gross
  errors (hours that include hyperparameter sweeps, GPUs counted per node, encoder models
  whose FLOPs 6·N·D misstates) and a normal likelihood lets one such row drag the slopes. The
  t likelihood is fitted as a scale mixture of normals (iteratively reweighted: a row far
  from the fit gets weight (ν+1)/(ν+r²/σ²) < 1); ν = 4 is the conventional robust choice
  (Lange, Little & Taylor 1989), fixed before fitting, not tuned.
* The MosaicML throughput rows are per-step measurements (no restarts, no evaluation); they
  enter as medians per (accelerator, model) with the per-step indicator, which absorbs the
  step-vs-whole-run gap. Predictions for planning are always whole-run (indicator 0).
* A missing GPU count is set to the centre (no information), not guessed.
* The family effect is t-distributed too (ν = 4): most families are a single public record,
  so a record's gross error is as much the family's deviation as the run's.
* Prediction interval for a new run of a new family: a normal part (coefficient uncertainty +
  accelerator effect uncertainty) plus the family's and the run's t deviations, taken as one t
  with their summed scale² (same variance); p10/p90 are the quantiles of that sum, tabulated
  once per ν (_quantile_factor()).
* Variance components and coefficients are fitted by REML, alternating with the t weights.
* Year is clamped to the range seen in the fit: the model does not extrapolate a trend.
"""

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from threadpoolctl import ThreadpoolController

A100_PEAK = 312e12
RULE_MFU = 0.40
# Eight-odd accelerators cannot pin the between-accelerator variance down (REML often puts it
# at zero); an accelerator never seen still differs from the spec-based line. Floor: 0.05 log10
# (≈ ±12 %) per accelerator, a prior-like bound chosen before looking at any backtest.
SIGMA2_GROUP_FLOOR = 0.05 ** 2
FIXED = ["Intercept", "x_size", "x_cluster", "x_year", "x_peak", "per_step"]
NU = 4.0          # Student-t degrees of freedom of the run scatter (see the module docstring)
Z90 = 1.2815515655446004   # standard normal 90th percentile


@functools.lru_cache(maxsize=8)
def _quantile_table(nu: float) -> tuple[np.ndarray, np.ndarray]:
    """90th percentile of a·Z + s·T (Z normal, T Student-t with ν d.o.f.), divided by
    sqrt(a² + s²), tabulated over log10(a/s). It tends to t_ν's quantile when the t part
    dominates and to the normal's when the normal part does, so clamped interpolation is exact
    enough beyond the table (|log10 ratio| > 4)."""
    from scipy.special import ndtr, stdtrit

    # Small enough to build in ~0.1 s (a what-if pays it once per process); within 1 % of the exact
    # quantile (the test compares it with 2M Monte Carlo draws).
    nodes = stdtrit(nu, (np.arange(400) + 0.5) / 400)            # equal-probability nodes of T
    log_r = np.linspace(-4.0, 4.0, 81)
    r = 10 ** log_r
    lo, hi = np.zeros_like(r), (Z90 * r + float(stdtrit(nu, 0.9))) * 1.5
    for _ in range(32):                                          # bisection, all ratios at once
        mid = (lo + hi) / 2
        cdf = ndtr((mid[:, None] - nodes[None, :]) / r[:, None]).mean(axis=1)
        lo, hi = np.where(cdf < 0.9, mid, lo), np.where(cdf < 0.9, hi, mid)
    return log_r, (lo + hi) / 2 / np.sqrt(r ** 2 + 1)


def _quantile_factor(normal_var: np.ndarray, scale2, nu: float) -> np.ndarray:
    """Half-width of the p10–p90 band: the 90th percentile of N(0, normal_var) + sqrt(scale2)·T_ν
    (scale2 a number or one per row)."""
    scale2 = np.asarray(scale2, float)
    total = np.sqrt(normal_var + scale2)
    if not math.isfinite(nu) or np.all(scale2 <= 0):
        return Z90 * total
    log_r, g = _quantile_table(float(nu))
    ratio = np.log10(np.maximum(np.sqrt(normal_var), 1e-300) / np.sqrt(np.maximum(scale2, 1e-300)))
    return np.interp(ratio, log_r, g) * total


def _t_ppf(q: float, df: int) -> float:
    """Student-t quantile (scipy.special, not scipy.stats: a what-if must start fast)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


_BLAS = ThreadpoolController()        # finds the loaded BLAS once; fit() limits its threads per call

@dataclass
class EfficiencyModel:
    fixed_terms = tuple(FIXED)                    # the design's columns (subclasses have their own)
    beta: dict[str, float]
    cov: np.ndarray
    groups: dict[str, tuple[float, float, int]]   # accelerator -> (BLUP, posterior sd, n)
    sigma2: float                                  # scale² of the t-distributed run scatter
    sigma2_group: float                            # between-accelerator variance
    df: int
    centre_cluster: float
    year_range: tuple[int, int]
    n_obs: int
    terms: list[str] = field(default_factory=lambda: list(FIXED))
    sigma2_family: float = 0.0                     # scale² of the t-distributed family deviation (a planned run is a new family)
    nu: float = math.inf                           # t d.o.f. of the run scatter (inf: normal)
    weights: dict[str, float] = field(default_factory=dict)   # run_key -> final t weight (1 = typical)
    families: dict[str, tuple[float, float, int]] = field(default_factory=dict)   # family -> (BLUP, posterior sd, n)
    # Where the fit ended (log variance ratios, t weights by run and family): a refit on a subset
    # (the backtests) starts here. In memory only; not part of the stored model.
    fit_state: tuple | None = field(default=None, repr=False, compare=False)

    def half_width(self, fixed_var: np.ndarray, accelerator_var: np.ndarray, family_var=None) -> np.ndarray:
        """log10 distance from p50 to p90 for a new run of a new family: normal uncertainty of the
        coefficients and the accelerator effect, plus the family's and the run's t-distributed
        deviations (their sum is taken as one t with the summed scale², which matches its variance).
        For a known family (family_var per row, NaN where unknown) its effect's posterior variance
        joins the normal part instead."""
        if family_var is None:
            return _quantile_factor(fixed_var + accelerator_var, self.sigma2 + self.sigma2_family, self.nu)
        known = np.isfinite(family_var)
        return _quantile_factor(fixed_var + accelerator_var + np.where(known, family_var, 0.0),
                                self.sigma2 + np.where(known, 0.0, self.sigma2_family), self.nu)

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
                 dict(kind="variance", name="sigma2_family", estimate=self.sigma2_family, std_error=None, ci_lo=None, ci_hi=None, n=None),
                 dict(kind="stat", name="nu", estimate=self.nu if math.isfinite(self.nu) else None, std_error=None, ci_lo=None, ci_hi=None, n=None),
                 dict(kind="stat", name="centre_cluster", estimate=self.centre_cluster, std_error=None, ci_lo=None, ci_hi=None, n=None),
                 dict(kind="stat", name="year_min", estimate=float(self.year_range[0]), std_error=None, ci_lo=None, ci_hi=None, n=None),
                 dict(kind="stat", name="year_max", estimate=float(self.year_range[1]), std_error=None, ci_lo=None, ci_hi=None, n=None)]
        rows += [dict(kind="weight", name=k, estimate=w, std_error=None, ci_lo=None, ci_hi=None, n=None)
                 for k, w in self.weights.items()]
        rows += [dict(kind="family", name=g, estimate=u, std_error=sd, ci_lo=u - 1.96 * sd, ci_hi=u + 1.96 * sd, n=n)
                 for g, (u, sd, n) in self.families.items()]
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
                   n_obs=int(fixed["n"][0]), terms=terms,
                   sigma2_family=v["sigma2_family"]["estimate"] if "sigma2_family" in v else 0.0,
                   nu=(v["nu"]["estimate"] or math.inf) if "nu" in v else math.inf,
                   weights={r["name"]: r["estimate"] for r in f.filter(pl.col("kind") == "weight").iter_rows(named=True)},
                   families={r["name"]: (r["estimate"], r["std_error"], r["n"])
                             for r in f.filter(pl.col("kind") == "family").iter_rows(named=True)})

    # -- the response scale (log10; a subclass may bound it) -----------------------------
    @staticmethod
    def to_y(u: np.ndarray) -> np.ndarray:
        return np.log10(u)

    @staticmethod
    def from_y(y: np.ndarray) -> np.ndarray:
        return 10 ** np.asarray(y)

    # -- prediction ---------------------------------------------------------------------
    def design(self, frame: pl.DataFrame, terms: list[str] | None = None) -> np.ndarray:
        d = frame.select(
            pl.lit(1.0).alias("Intercept"),
            (pl.col("params").log10() - 9.0).alias("x_size"),
            (pl.col("gpu_count").cast(pl.Float64).log10() - self.centre_cluster).fill_null(0.0).fill_nan(0.0).alias("x_cluster"),
            (pl.col("year").cast(pl.Float64).fill_null(float(self.year_range[1]))
             .clip(*map(float, self.year_range)) - 2022.0).alias("x_year"),
            (pl.col("peak_flops") / A100_PEAK).log10().alias("x_peak"),
            pl.col("per_step").cast(pl.Float64).alias("per_step") if "per_step" in frame.columns else pl.lit(0.0).alias("per_step"),
        )
        return d.select(terms or self.terms).to_numpy()

    def predict(self, frame: pl.DataFrame, known_family: bool = False, family_spread: bool = True) -> pl.DataFrame:
        """Add utilization_p10/p50/p90 and gpu_hours_p10/p50/p90 to a frame with columns
        params, gpu_count, year, accelerator, peak_flops, training_flop. Every row is a new family
        (a planned run is), unless known_family: then a `family` the fit knows adds its effect.
        family_spread=False leaves the between-family spread out of the band (a caller that
        carries that spread in another term, as llmplan.step's goodput does)."""
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
        fam_var = None
        if known_family and "family" in frame.columns and self.families:
            fams = pl.DataFrame({"family": list(self.families), "_v": [f[0] for f in self.families.values()],
                                 "_vvar": [f[1] ** 2 for f in self.families.values()]},
                                schema={"family": pl.Utf8, "_v": pl.Float64, "_vvar": pl.Float64})
            fj = frame.select("family").join(fams, on="family", how="left", maintain_order="left")
            mean = mean + fj["_v"].fill_null(0.0).to_numpy()
            fam_var = fj["_vvar"].fill_null(float("nan")).to_numpy()
        if not family_spread:
            fam_var = np.zeros(len(mean))
        hw = self.half_width(np.einsum("ij,jk,ik->i", X, self.cov, X), u_var, fam_var)
        lo, hi = mean - hw, mean + hw
        out = frame.with_columns(
            pl.Series("utilization_p10", self.from_y(lo)), pl.Series("utilization_p50", self.from_y(mean)),
            pl.Series("utilization_p90", self.from_y(hi)),
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


# Export variants share their parent's compute die (and so its whole-run utilisation): the whole-run
# model groups them with it. Their interconnect differs, which only the step physics uses.
SAME_COMPUTE = {"H800": "H100-80GB"}


def fit_table(runs: pl.DataFrame, throughput: pl.DataFrame | None) -> pl.DataFrame:
    """Rows the fit sees: usable whole-run rows, plus per-step medians per (accelerator, model)."""
    whole = runs.filter(pl.col("fit_exclusion_reason").is_null() & pl.col("utilization").is_not_null()).select(
        "run_key", "family", "year", "params", "gpu_count", pl.col("accelerator").replace(SAME_COMPUTE), "peak_flops", "utilization", "training_flop",
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


def _spd_inv(A: np.ndarray) -> np.ndarray:
    return _spd_inv_logdet(A)[0]


def _spd_inv_logdet(A: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse and log-determinant of a symmetric positive (semi)definite matrix: by Cholesky when
    it is definite (the usual case, several times cheaper than an SVD), by the pseudo-inverse and
    slogdet when it is singular (an exact fit, collinear terms)."""
    try:
        c = np.linalg.cholesky(A)
        ci = np.linalg.inv(c)
        return ci.T @ ci, float(2.0 * np.sum(np.log(np.diag(c))))
    except np.linalg.LinAlgError:
        return np.linalg.pinv(A), float(np.linalg.slogdet(A)[1])


def _reml(X: np.ndarray, y: np.ndarray, Zs: list[np.ndarray], lams: np.ndarray, w: np.ndarray, grad: bool = False):
    """GLS with V = σ²(W⁻¹ + Σ λ_k·Z_k Z_k') and the REML criterion profiled over σ² (returns -2ℓ).
    W holds the t weights; λ_k are the variance ratios σ²_k/σ² of the random intercepts.
    H = W⁻¹ + Z Λ Z' is never formed or inverted: with q random-effect levels (q ≪ n) the
    Woodbury identity H⁻¹ = W − W Z (Λ⁻¹ + Z'WZ)⁻¹ Z'W and |H| = |Λ|·|Λ⁻¹ + Z'WZ| / |W| cost
    O(n·q²) instead of O(n³). Returns H⁻¹r as the last-but-one item.

    grad: also the criterion's gradient in log λ_k (for L-BFGS; finite differences cost two more
    evaluations per step), returned as (crit, gradient). With A = X'H⁻¹X and r the GLS residual,
    ∂crit/∂λ_k = tr(Z_k'H⁻¹Z_k) − tr(A⁻¹ X'H⁻¹Z_k Z_k'H⁻¹X) − (n−p)·‖Z_k'H⁻¹r‖² / r'H⁻¹r
    (the last by the envelope theorem: β̂ minimises r'H⁻¹r)."""
    n, p = X.shape
    if Zs:
        Z = np.hstack(Zs) if len(Zs) > 1 else Zs[0]
        lam_diag = np.concatenate([np.full(Zk.shape[1], lam) for lam, Zk in zip(lams, Zs)])
        WZ = w[:, None] * Z
        Ki, logdet_K = _spd_inv_logdet(np.diag(1.0 / lam_diag) + Z.T @ WZ)
        logdet_H = float(np.sum(np.log(lam_diag)) + logdet_K - np.sum(np.log(w)))

        def hinv(M):
            WM = w[:, None] * M if M.ndim == 2 else w * M
            return WM - WZ @ (Ki @ (WZ.T @ M))
    else:
        logdet_H = float(-np.sum(np.log(w)))

        def hinv(M):
            return w[:, None] * M if M.ndim == 2 else w * M
    HiX = hinv(X)
    XtHiX_inv, logdet_A = _spd_inv_logdet(X.T @ HiX)
    beta = XtHiX_inv @ (HiX.T @ y)
    r = y - X @ beta
    Hir = hinv(r)
    dof = max(n - p, 1)
    q = max(float(r @ Hir), 1e-20 * dof)         # an exact fit (constant data) must not give log(0)
    crit = dof * math.log(q / dof) + logdet_H + logdet_A
    if not grad:
        return crit, beta, XtHiX_inv, q / dof, Hir, r
    HiZ = hinv(Z)
    g, j = np.empty(len(Zs)), 0
    for k, Zk in enumerate(Zs):
        m = Zk.shape[1]
        HiZk = HiZ[:, j:j + m]
        B = HiZk.T @ X
        zr = Zk.T @ Hir
        g[k] = lams[k] * (np.sum(Zk * HiZk) - np.sum((B @ XtHiX_inv) * B) - dof * float(zr @ zr) / q)
        j += m
    return crit, g


def _t_weight(dev2: np.ndarray, scale2: float, nu: float) -> np.ndarray:
    """E-step of the t likelihood: (ν+1)/(ν + d²/s²). Clipped at 1e-3 (such a row is as good as
    dropped) so an exact fit (s² → 0) cannot make the covariance singular."""
    return np.clip((nu + 1) / (nu + dev2 / max(scale2, 1e-300)), 1e-3, None)


def _gls_step(X, y, Za, Zf, wf, has_acc, has_fam, lams, w):
    """GLS for fixed variance ratios and weights: coefficients, their unscaled covariance, σ²,
    the random-effect predictions (BLUPs) and the conditional residuals."""
    Zw = [Za] * has_acc + [Zf / np.sqrt(wf)] * has_fam
    _, beta, XtHiX_inv, sigma2, Hir, r = _reml(X, y, Zw, lams, w)
    blups = [lam * (Z.T @ Hir) for lam, Z in zip(lams, Zw)]
    if has_fam:
        blups[-1] = blups[-1] / np.sqrt(wf)
    Zs = [Za] * has_acc + [Zf] * has_fam
    resid = r - sum((Z @ u for Z, u in zip(Zs, blups)), np.zeros(len(y)))
    return beta, XtHiX_inv, sigma2, blups, resid


def _indicators(values: list[str]) -> tuple[list[str], np.ndarray]:
    levels = sorted(set(values))
    index = {lv: j for j, lv in enumerate(levels)}
    Z = np.zeros((len(values), len(levels)))
    Z[np.arange(len(values)), [index[v] for v in values]] = 1.0
    return levels, Z


def fit(table: pl.DataFrame, nu: float = NU, cls: type = None, start: tuple | None = None) -> EfficiencyModel:
    """Fit the model of the module docstring on a fit_table() by REML with t weights. `cls` (an
    EfficiencyModel subclass with its own `fixed_terms` and design(); llmplan.step uses it) fits
    another response with the same machinery: log10(table.utilization) on cls.design(table), a
    random intercept per `accelerator` and per `family`.

    Why not statsmodels MixedLM: it has neither crossed random effects with a t likelihood nor
    a stable answer with eight-odd accelerators (it lands on a singular random-effect covariance
    and fails on leave-one-family-out subsets). The model is small enough to fit exactly: for
    given weights, GLS with the variance ratios (λ_accelerator, λ_family) chosen by the REML
    criterion (scipy L-BFGS-B on log λ); then the t weights from the conditional residuals;
    repeat until the weights settle (the EM algorithm for a t likelihood).

    One BLAS thread: the matrices are small (rows ≈ runs, columns ≈ terms and groups), and
    OpenBLAS's threads cost more than they give on them — the backtests' ~60 fits take half the
    time single-threaded (measured by bench/profile_run.py).

    `start`: another fit's `fit_state` (a backtest refits on a subset of the rows that model saw):
    the variance ratios and the weights of the rows both have begin where that fit ended, so the
    alternation needs a few rounds instead of many. The optimum and the stopping rule are the same."""
    with _BLAS.limit(limits=1, user_api="blas"):
        return _fit(table, nu, cls, start)


def _fit(table: pl.DataFrame, nu: float, cls: type | None, start: tuple | None) -> EfficiencyModel:
    from scipy.optimize import minimize

    cls = cls or EfficiencyModel
    gc = table["gpu_count"].drop_nulls() if "gpu_count" in table.columns else pl.Series([], dtype=pl.Float64)
    centre = float(np.median(np.log10(gc.to_numpy()))) if gc.len() else 0.0
    yr = table["year"].drop_nulls() if "year" in table.columns else pl.Series([], dtype=pl.Int32)
    year_range = (int(yr.min()), int(yr.max())) if yr.len() else (2022, 2022)
    probe = cls(beta={}, cov=np.zeros((0, 0)), groups={}, sigma2=0, sigma2_group=0, df=1,
                centre_cluster=centre, year_range=year_range, n_obs=0)
    fixed = list(cls.fixed_terms)
    Xall = probe.design(table, terms=fixed)
    keep = [i for i, t in enumerate(fixed) if t == "Intercept" or Xall[:, i].std() > 0]
    terms = [fixed[i] for i in keep]
    X = Xall[:, keep]
    y = cls.to_y(table["utilization"].to_numpy())
    levels, Za = _indicators(table["accelerator"].to_list())
    families, Zf = _indicators(table["family"].to_list())
    # A random intercept needs at least two levels, and a family effect is only separable from
    # the run scatter when some family has two runs.
    has_acc, has_fam = len(levels) >= 2, 2 <= len(families) < len(y)
    w, wf = np.ones(len(y)), np.ones(len(families))     # t weights: per run, per family
    log_lam = np.full(int(has_acc) + int(has_fam), -1.0)
    if start is not None and len(start[0]) == len(log_lam):
        log_lam = np.array(start[0], float)
        w = np.array([start[1].get(k, 1.0) for k in table["run_key"].to_list()])
        wf = np.array([start[2].get(f, 1.0) for f in families])
    # Alternate: variance ratios λ by REML for the current weights (the expensive step), then the
    # weights to convergence for those λ (cheap GLS steps); stop when λ no longer moves.
    for _ in range(50):
        Zw = [Za] * has_acc + [Zf / np.sqrt(wf)] * has_fam   # family variance σ²_f / w_f
        if Zw:
            opt = minimize(lambda ll: _reml(X, y, Zw, np.exp(ll), w, grad=True), log_lam, jac=True, method="L-BFGS-B",
                           bounds=[(-12.0, 8.0)] * len(Zw))
            settled, log_lam = bool(np.max(np.abs(opt.x - log_lam)) < 1e-3), opt.x
        else:
            settled = True
        lams = np.exp(log_lam)
        for _ in range(500):
            beta, XtHiX_inv, sigma2, blups, resid = _gls_step(X, y, Za, Zf, wf, has_acc, has_fam, lams, w)
            if not math.isfinite(nu):
                break
            w_new = _t_weight(resid ** 2, sigma2, nu)
            wf_new = _t_weight(blups[-1] ** 2, lams[-1] * sigma2, nu) if has_fam else wf
            moved = max(np.max(np.abs(w_new - w)), np.max(np.abs(wf_new - wf), initial=0.0))
            w, wf = w_new, wf_new
            if moved < 1e-5:
                break
        if settled:
            break
    beta, XtHiX_inv, sigma2, blups, _ = _gls_step(X, y, Za, Zf, wf, has_acc, has_fam, lams, w)   # final weights
    lam_acc = lams[0] if has_acc else 0.0
    lam_fam = lams[-1] if has_fam else 0.0
    sigma2_g = max(lam_acc * sigma2, SIGMA2_GROUP_FLOOR)
    # Posterior sd of each accelerator's effect, with the floored variance (conservative):
    # Var(u − û) = G − G Z'PZ G, G = σ²_g·I, P = V⁻¹ − V⁻¹X(X'V⁻¹X)⁻¹X'V⁻¹ (absolute units;
    # pinv because an exact fit makes V singular).
    V = sigma2 * np.diag(1.0 / w) + sigma2_g * (Za @ Za.T)
    if has_fam:
        V = V + lam_fam * sigma2 * ((Zf / wf) @ Zf.T)
    Vi = _spd_inv(V)
    P = Vi - Vi @ X @ _spd_inv(X.T @ Vi @ X) @ X.T @ Vi
    post_var = sigma2_g - sigma2_g ** 2 * np.einsum("ij,ik,kj->j", Za, P, Za)
    u_acc = blups[0] if has_acc else np.zeros(len(levels))
    # A run's weight in the fit: the smaller of its own and its family's (for a one-run family
    # the two are the same deviation, split between them).
    run_weight = np.minimum(w, Zf @ wf)
    groups = {lv: (float(u_acc[j]), math.sqrt(max(float(post_var[j]), 0.0)), int(Za[:, j].sum()))
              for j, lv in enumerate(levels)}
    fam_effects = {}
    if has_fam:
        Gf = lam_fam * sigma2 / wf                   # each family's (t-weighted) prior variance
        post_f = Gf - Gf ** 2 * np.einsum("ij,ik,kj->j", Zf, P, Zf)
        fam_effects = {lv: (float(blups[-1][j]), math.sqrt(max(float(post_f[j]), 0.0)), int(Zf[:, j].sum()))
                       for j, lv in enumerate(families)}
    return cls(beta=dict(zip(terms, map(float, beta))), cov=sigma2 * XtHiX_inv, groups=groups,
                           sigma2=float(sigma2), sigma2_group=float(sigma2_g), df=max(len(y) - len(terms) - 1, 1),
                           centre_cluster=centre, year_range=year_range, n_obs=len(y), terms=terms,
                           sigma2_family=float(lam_fam * sigma2), nu=nu,
                           weights=dict(zip(table["run_key"].to_list(), map(float, run_weight))), families=fam_effects,
                           fit_state=(log_lam.copy(), dict(zip(table["run_key"].to_list(), map(float, w))),
                                      dict(zip(families, map(float, wf)))))


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


TIME_SPLIT_YEARS = (2023, 2024)


def backtest(table: pl.DataFrame, time_split_years: tuple[int, ...] = TIME_SPLIT_YEARS,
             full: EfficiencyModel | None = None) -> pl.DataFrame:
    """(a) leave-one-model-family-out; (b) for each year Y, fit on runs published before Y and
    predict the runs of Y and later (per-step benchmark rows, published in 2023, are left out of
    (b)). A time split runs only with ≥ 8 runs to fit and ≥ 5 to predict. `full`: the model fitted
    on the whole table, whose end state each refit starts from (same answers, fewer rounds)."""
    whole = table.filter(pl.col("per_step") == 0)
    jobs = []                                             # (split, training rows, rows to predict)
    for fam in sorted(whole["family"].unique().to_list()):
        jobs.append(("leave-one-family-out", table.filter(pl.col("family") != fam), whole.filter(pl.col("family") == fam)))
    for year in time_split_years:
        train, test = whole.filter(pl.col("year") < year), whole.filter(pl.col("year") >= year)
        if train.height >= 8 and test.height >= 5:
            jobs.append((f"time split (fit < {year}, predict ≥ {year})", train, test))
    start = full.fit_state if full is not None else None
    return pl.concat([_score(test, fit(train, start=start), split) for split, train, test in jobs])


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
