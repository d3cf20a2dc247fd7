"""Goodput: the share of a run's wall time its steps make progress, from first principles.

A synchronous job stops when any of its accelerators does, so interruptions arrive at
λ = rate per GPU-hour × GPUs (MTBF = 1/λ). Each costs a restart R plus, on average, half a
checkpoint interval of lost work; writing a checkpoint takes δ = checkpoint bytes ÷ storage
write bandwidth and happens every τ = √(2·δ·MTBF) (Young 1974; Daly 2006, first order). So

    goodput (physics) = 1 − δ/τ − (R + τ/2)/MTBF                  (clipped to [0, 1])

and what public whole runs lose beyond that (evaluation, data stalls, rollbacks after loss
spikes) is a learned residual with its spread (`fit_residual`), never assumed.

Sources (docs/methods.md "Goodput"; the rates with their arithmetic in
data/reliability/interruptions.csv):
- interruptions per GPU-hour: the geometric mean of the four public rates checked against their
  sources (Llama 3 §3.3.4: 419 unexpected interruptions ÷ (16,384 H100 × 54 d × 24 h) = 1.97×10⁻⁵;
  OPT-175B §2.5: 35 manual + 70 automatic restarts in 2 months on 992 A100 = 7.35×10⁻⁵; BLOOM, the
  Hugging Face blog: 1–2 GPU failures a week on 384 A100 = 2.33×10⁻⁵; Meta RSC-1, Kokolis et al.
  2024: 6.50 per 1,000 node-days = 3.39×10⁻⁵) = 3.27×10⁻⁵, spread σ(log10) = 0.25 (RSC-2's 2.34 is
  listed but not used: it was found only in secondary notes, not in the paper);
- restart R = 11 min: the median automatic-retry interval on a 504-GPU B200 cluster (arXiv
  2605.09370, abstract: 11 min, IQR 10–11), inside Llama 3's bound (> 90 % effective time with 419 interruptions in 1,296 h:
  R + τ/2 ≤ 0.10 × 1,296 h ÷ 419 = 18.6 min);
- storage write bandwidth 1.0 GB/s per 8-accelerator node: Llama 3 §3.3.1, Tectonic sustains
  2 TB/s for 16K GPUs = 2,048 nodes → 0.98 GB/s a node (peak 7 TB/s); a job's bandwidth is that ×
  its nodes (each node writes its own shard);
- checkpoint bytes: llmplan.memory.checkpoint_bytes (14 B/param: bf16 weights, fp32 master, two
  Adam moments).
"""

import math
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from llmplan import memory

RATE_PER_GPU_HOUR = 3.27e-5          # geometric mean of data/reliability/interruptions.csv (used rows)
RATE_LOG10_SD = 0.25                 # their spread (sample σ of log10 rate)
RESTART_MINUTES = 11.0               # arXiv 2605.09370 (abstract) median auto-retry interval; ≤ Llama 3's 18.6 min bound
STORAGE_GBPS = 1.0                   # GB/s per 8-accelerator node: Llama 3 §3.3.1, 2 TB/s ÷ 2,048 nodes
GPUS_PER_NODE = 8
Z90 = 1.2815515655446004
IMPUTED_GPUS = 1024                  # a public run that does not state its accelerator count
REFERENCE_YEAR = 2024                # the step benchmarks' stacks (2023–26): the step-side multiplier is 1 here

# Whole runs that publish their own effective training time (wall time spent on useful steps):
# the only data that separates goodput from step speed. Llama 3 405B: "> 90 %" on 16,384 H100
# (Dubey et al. 2024, §3.3.4); Gemini 1.0: 85 % → 97 % (Gemini Team 2023, §3; TPU counts not given,
# so only its range is used, as the spread).
PUBLISHED_GOODPUT = {"gpus": 16384, "params": 405e9, "goodput": 0.90}
PUBLISHED_RANGE = (0.85, 0.97)
# the residual's log10 spread: half of Gemini's published range's log10 width ÷ z90 (= 0.022)
RESIDUAL_SD = math.log10(PUBLISHED_RANGE[1] / PUBLISHED_RANGE[0]) / (2 * Z90)


def _arr(x, n: int | None = None) -> np.ndarray:
    a = np.atleast_1d(np.asarray(x, float))
    return np.broadcast_to(a, (n,)).copy() if n is not None and a.size == 1 else a


def _physics(gpus, params, storage_gbps, restart_h, rate):
    """(mtbf_h, delta_h, tau_h, overhead, loss, goodput) for arrays that broadcast."""
    lam = rate * gpus                                               # interruptions per job-hour
    mtbf = 1.0 / lam
    nodes = np.maximum(np.ceil(gpus / GPUS_PER_NODE), 1.0)
    delta = memory.checkpoint_bytes(params) / (storage_gbps * 1e9 * nodes) / 3600.0
    tau = np.sqrt(2.0 * delta * mtbf)
    overhead = delta / tau
    loss = (restart_h + tau / 2.0) / mtbf
    return mtbf, delta, tau, overhead, loss, np.clip(1.0 - overhead - loss, 0.0, 1.0)


def goodput(gpus, params, train_hours=None, storage_bytes_per_s=None, restart_hours=None,
            rate_per_gpu_hour=RATE_PER_GPU_HOUR, residual_log10=0.0, residual_sd=RESIDUAL_SD,
            rate_log10_sd=RATE_LOG10_SD, wall_hours=None) -> pl.DataFrame:
    """Goodput and its parts, one row per element (numpy-broadcast over every argument).

    gpus: accelerators in the job; params: total parameters (the checkpoint); storage_bytes_per_s:
    write bandwidth per 8-accelerator node (default 1 GB/s); restart_hours: R (default 11 min);
    train_hours: hours the steps alone take (wall = train_hours ÷ goodput_p50) or wall_hours: the
    run's wall hours — either gives interruptions_expected and hours_lost_interruptions.
    residual_log10/residual_sd: the learned residual (fit_residual) on the log10 scale.
    p10/p90 combine the spread of the public rates (rate_log10_sd) and the residual's spread."""
    g = _arr(gpus).astype(float)
    n = max(g.size, np.atleast_1d(params).size, np.atleast_1d(residual_log10).size)
    g, p = _arr(gpus, n).astype(float), _arr(params, n)
    bw = _arr(STORAGE_GBPS * 1e9 if storage_bytes_per_s is None else storage_bytes_per_s, n) / 1e9
    r = _arr(RESTART_MINUTES / 60.0 if restart_hours is None else restart_hours, n)
    rate = _arr(rate_per_gpu_hour, n)
    res, res_sd = _arr(residual_log10, n), _arr(residual_sd, n)
    mtbf, delta, tau, overhead, loss, phys = _physics(g, p, bw, r, rate)
    # The public rates' spread: physics goodput at the rate's p90 and p10 (goodput falls with the rate).
    lo = _physics(g, p, bw, r, rate * 10 ** (Z90 * rate_log10_sd))[-1]
    hi = _physics(g, p, bw, r, rate * 10 ** (-Z90 * rate_log10_sd))[-1]
    # Each side on its own (physics is not symmetric in the rate), the residual's spread in quadrature.
    with np.errstate(divide="ignore", invalid="ignore"):
        d_lo = np.log10(np.maximum(phys, 1e-12) / np.maximum(lo, 1e-12))
        d_hi = np.log10(np.maximum(hi, 1e-12) / np.maximum(phys, 1e-12))
    g50 = np.clip(phys * 10 ** res, 0.0, 1.0)
    p10 = g50 * 10 ** -np.sqrt(d_lo ** 2 + (Z90 * res_sd) ** 2)
    p90 = g50 * 10 ** np.sqrt(d_hi ** 2 + (Z90 * res_sd) ** 2)
    out = {
        "gpus": g, "params": p, "mtbf_hours": mtbf, "checkpoint_write_hours": delta, "checkpoint_interval_hours": tau,
        "checkpoint_overhead": overhead, "interruption_loss": loss, "goodput_physics": phys, "goodput_residual": 10 ** res,
        "goodput_p10": np.clip(p10, 0.0, 1.0), "goodput_p50": g50, "goodput_p90": np.clip(p90, 0.0, 1.0),
    }
    wall = None
    if wall_hours is not None:
        wall = _arr(wall_hours, n)
    elif train_hours is not None:
        with np.errstate(divide="ignore"):
            wall = _arr(train_hours, n) / np.maximum(g50, 1e-9)
    if wall is not None:
        out["wall_hours"] = wall
        out["interruptions_expected"] = wall / mtbf
        out["hours_lost_interruptions"] = wall / mtbf * (r + tau / 2.0)
    return pl.DataFrame(out)


def stall_prior(gpus: float, params: float, storage_bytes_per_s: float | None = None, restart_hours: float | None = None,
                rate_per_gpu_hour: float = RATE_PER_GPU_HOUR) -> tuple[float, float, float]:
    """For a run in progress (llmplan.tracking): (interruptions per job-hour, mean hours one costs =
    R + τ/2, checkpoint overhead δ/τ) from this model."""
    row = goodput(gpus, params, storage_bytes_per_s=storage_bytes_per_s, restart_hours=restart_hours,
                  rate_per_gpu_hour=rate_per_gpu_hour).row(0, named=True)
    r = RESTART_MINUTES / 60.0 if restart_hours is None else restart_hours
    return 1.0 / row["mtbf_hours"], r + row["checkpoint_interval_hours"] / 2.0, row["checkpoint_overhead"]


# -- the learned residual ----------------------------------------------------------------



@dataclass
class Residual:
    """log10(achieved ÷ (step × physics goodput)) of public whole runs, split in two.

    Whole runs alone cannot tell a slow step from lost wall time (only their product is seen), so
    the split uses the one kind of run that can: those that publish their effective training time.
    - goodput side: `level` = log10(published goodput ÷ physics goodput) for Llama 3 405B (0.90 ÷
      the physics here for 16,384 GPUs and 405B), at most 0 (a residual only loses), with spread
      `sd` from Gemini's published 85–97 % range (half its log10 width ÷ z90);
    - step side: everything else, what the step model misses on whole runs (StepSide):
      `step_level` + `step_slope`·min(year − 2024, 0) + `step_size`·log10(active / 10¹⁰), plus a
      random effect per family and a Student-t run scatter (ν = 4), fitted by REML with
      llmplan.efficiency's machinery; `step_sd` is the normal-equivalent spread of a new run of a
      new family (family + run, at p10/p90). Year: older frameworks and kernels. Size: the step
      physics prices every GEMM at the same learned efficiency, so small models (narrow GEMMs,
      short steps whose fixed per-step costs the tuned benchmarks hide) fall further below it.
    The split leaves the product (step × multiplier × goodput), and so every backtest, unchanged.
    `table` has the per-run split."""
    level: float = 0.0
    sd: float = RESIDUAL_SD
    step_level: float = 0.0
    step_slope: float = 0.0
    step_slope_se: float = 0.0
    step_sd: float = 0.0
    reference_year: int = REFERENCE_YEAR
    n: int = 0
    step_size: float = 0.0
    step_family_sd: float = 0.0
    table: pl.DataFrame | None = field(default=None, repr=False)
    fit_state: tuple | None = field(default=None, repr=False, compare=False)   # in memory only (backtest refits)

    def step_multiplier(self, year, active_params=None) -> np.ndarray:
        """The step-side factor for runs of `year` with `active_params` (the level at 2024 and
        10B, a trend in year before 2024, the size term where given)."""
        y = np.asarray(year, float)
        x = self.step_level + self.step_slope * np.minimum(y - self.reference_year, 0.0)
        if active_params is not None:
            x = x + self.step_size * (np.log10(np.asarray(active_params, float)) - SIZE_CENTRE)
        return 10 ** x


SIZE_CENTRE = 10.0         # log10 active parameters the step-side level refers to (10B)
STEP_NU = 4.0              # t d.o.f. of the runs' scatter, as in llmplan.efficiency (fixed, not tuned)


def _step_side_class():
    """llmplan.efficiency's mixed model with the step side's design (imported late: efficiency
    is heavier than this module needs for plans)."""
    from llmplan import efficiency as ef

    class StepSide(ef.EfficiencyModel):
        fixed_terms = ("Intercept", "x_year", "x_size")

        def design(self, frame, terms=None):
            d = frame.select(
                pl.lit(1.0).alias("Intercept"),
                (pl.col("year").cast(pl.Float64) - REFERENCE_YEAR).clip(None, 0.0).alias("x_year"),
                (pl.col("active_params").cast(pl.Float64).log10() - SIZE_CENTRE).alias("x_size"))
            return d.select(terms or self.terms).to_numpy()

    return StepSide


def published_residual(storage_bytes_per_s: float | None = None, restart_hours: float | None = None,
                       rate_per_gpu_hour: float = RATE_PER_GPU_HOUR) -> tuple[float, float]:
    """(level, sd) of the goodput residual from the runs that publish their goodput (see above)."""
    phys = goodput(PUBLISHED_GOODPUT["gpus"], PUBLISHED_GOODPUT["params"], storage_bytes_per_s=storage_bytes_per_s,
                   restart_hours=restart_hours, rate_per_gpu_hour=rate_per_gpu_hour)["goodput_physics"][0]
    level = min(math.log10(PUBLISHED_GOODPUT["goodput"] / phys), 0.0)
    sd = math.log10(PUBLISHED_RANGE[1] / PUBLISHED_RANGE[0]) / (2 * Z90)
    return level, sd



def residual_table(runs: pl.DataFrame, storage_bytes_per_s: float | None = None, restart_hours: float | None = None,
                   rate_per_gpu_hour: float = RATE_PER_GPU_HOUR) -> pl.DataFrame:
    """Per public run: achieved tokens/s per accelerator, the step model's, physics goodput and
    log10(achieved ÷ (step × physics)). runs: run_key, family, year, accelerator, gpu_count (null:
    1,024), params, tokens, gpu_hours, step_tokens_per_s_p50."""
    r = runs.filter(pl.col("step_tokens_per_s_p50").is_not_null() & (pl.col("step_tokens_per_s_p50") > 0)
                    & pl.col("gpu_hours").is_not_null())
    gpus = r["gpu_count"].cast(pl.Float64).fill_null(float(IMPUTED_GPUS)).to_numpy()
    phys = goodput(gpus, r["params"].to_numpy(), storage_bytes_per_s=storage_bytes_per_s, restart_hours=restart_hours,
                   rate_per_gpu_hour=rate_per_gpu_hour)["goodput_physics"].to_numpy()
    achieved = (r["tokens"] / (r["gpu_hours"] * 3600.0)).to_numpy()
    active = r["active_params"].fill_null(r["params"]) if "active_params" in r.columns else r["params"]
    return r.select("run_key", "family", "year", "accelerator", "params", "tokens", "gpu_hours",
                    "step_tokens_per_s_p50").with_columns(
        pl.Series("gpu_count", gpus), pl.Series("active_params", active.cast(pl.Float64).to_numpy()),
        pl.Series("achieved_tokens_per_s", achieved), pl.Series("goodput_physics", phys),
        pl.Series("log10_ratio", np.log10(achieved / (r["step_tokens_per_s_p50"].to_numpy() * phys))))


def fit_residual(runs: pl.DataFrame, start: tuple | None = None, **physics) -> Residual:
    """The split of log10(achieved ÷ (step × physics goodput)) into the goodput residual and the
    step side (Residual's docstring); `physics` goes to residual_table (storage_bytes_per_s,
    restart_hours, rate_per_gpu_hour); `start`: another fit's `fit_state` (a backtest's refit on a
    subset begins where the full fit ended: same optimum, fewer rounds).

    Why a family effect: runs of one codebase share a stack (eight Pythia runs are one
    observation of EleutherAI's stack, not eight), and a planned run is a new family. Why no
    accelerator effect, unlike the whole-run model: the step physics already prices the hardware
    (peaks, links, memory), and accelerator and year are nearly the same variable in public runs
    (V100 until 2021, A100 2021–23, H100 from 2024): the year trend carries the stack's era.
    Why no accelerator-count term: fitted, it comes out positive (bigger clusters closer to the
    step model), the opposite of what more ranks do to a step; public small-cluster runs are tiny
    models of small teams, so it would carry team and model size, not the cluster, into plans
    (a 10B plan on 20 GPUs at 0.55× the same plan on 1,000)."""
    from llmplan import efficiency as ef

    level, sd = published_residual(**physics)
    t = residual_table(runs, **physics)
    y = t["log10_ratio"].to_numpy() - level                       # what the step side has to explain
    if t.height < 3:
        return Residual(level=level, sd=sd, table=t, n=t.height)
    frame = t.with_columns(pl.Series("utilization", 10 ** y), pl.lit("all").alias("accelerator"),
                           pl.col("family").fill_null(pl.col("run_key")))
    m = ef.fit(frame, nu=STEP_NU, cls=_step_side_class(), start=start)
    se = dict(zip(m.terms, np.sqrt(np.diag(m.cov))))
    # a new run of a new family: family and run deviations (t, summed scale²) as a normal-equivalent σ
    spread = float(ef._quantile_factor(np.zeros(1), m.sigma2 + m.sigma2_family, m.nu)[0]) / Z90
    res = Residual(level=level, sd=sd, step_level=m.beta.get("Intercept", 0.0), step_slope=m.beta.get("x_year", 0.0),
                   step_slope_se=float(se.get("x_year", 0.0)), step_sd=spread, n=t.height,
                   step_size=m.beta.get("x_size", 0.0), step_family_sd=math.sqrt(m.sigma2_family),
                   fit_state=m.fit_state)
    mult = res.step_multiplier(t["year"].to_numpy(), t["active_params"].to_numpy())
    return Residual(**{**res.__dict__, "table": t.with_columns(
        pl.Series("step_multiplier", mult),
        pl.Series("goodput_residual", np.full(t.height, 10 ** level)),
        pl.Series("left_over", 10 ** (y - np.log10(mult))))})


# -- plans ---------------------------------------------------------------------------------

PLAN_COLUMNS = ("goodput_p50", "goodput_p10", "goodput_p90", "goodput_physics", "interruptions_expected",
                "hours_lost_interruptions", "checkpoint_overhead", "goodput_residual", "checkpoint_interval_hours",
                "mtbf_hours")


def plan_goodput(plans: pl.DataFrame, sc, residual: Residual | None = None) -> pl.DataFrame:
    """Plan rows (params, useful_gpus or cluster_gpus, wall_days_p50) → the same rows with
    goodput_p50 (p10, p90), its parts and the checkpoint interval it assumes, from the scenario's
    storage_gbps and restart_minutes. An existing goodput_p50 (the old chain's) is replaced."""
    if plans.height == 0:
        return plans.with_columns(*[pl.lit(None, pl.Float64).alias(c) for c in PLAN_COLUMNS])
    res = residual or Residual()
    gpus = (plans["useful_gpus"] if "useful_gpus" in plans.columns else plans["cluster_gpus"]).cast(pl.Float64)
    wall = plans["wall_days_p50"].to_numpy() * 24.0 if "wall_days_p50" in plans.columns else None
    g = goodput(gpus.fill_null(plans["cluster_gpus"].cast(pl.Float64)).to_numpy(), plans["params"].to_numpy(),
                storage_bytes_per_s=getattr(sc, "storage_gbps", STORAGE_GBPS) * 1e9,
                restart_hours=getattr(sc, "restart_minutes", RESTART_MINUTES) / 60.0,
                residual_log10=res.level, residual_sd=res.sd, wall_hours=wall)
    keep = [c for c in PLAN_COLUMNS if c in g.columns]
    return plans.drop([c for c in keep if c in plans.columns]).with_columns(g.select(keep))
