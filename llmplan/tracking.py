"""Will the run we started finish on time? A forecast from the run's own progress log with the
plan and the goodput model (llmplan.goodput) as the prior.

What the log shows (`observe`): the run's *running* rate r (tokens/s over intervals where it
progressed normally), its stalls (intervals slower than half of r: restarts, hangs, queue time;
each costs D = its length − the time its tokens would have taken at r), and its *effective* rate
= tokens done ÷ time since the start, stalls included. Goodput so far = running time ÷ elapsed.
The time since the log's last line is not a stall: under STALE_INTERVALS logging intervals it is
nothing (the run is taken to be running; the forecast counts from the last line); beyond that the
log is *stale*: the forecast says so and how old it is, and treats the run as stopped since its
last line (the forecast counts from the moment it is made).

The forecast (`forecast`) simulates the rest of the run (4,000 draws, vectorised):
- running time left = tokens left ÷ r, r log-normal: the log's rate (its standard error by batch
  means) combined by precision with the plan's step rate (the plan's spread), widened by how much
  the rest of the run's own average varies (se² × T_run ÷ T_left);
- the prior is pseudo-data: the public rate (llmplan.goodput: r interruptions per GPU-hour, λ0 = r ×
  the run's GPUs per running hour) counts as E0 = PRIOR_GPU_HOURS GPU-hours of this run's own
  history, in which it would have seen a0 = r·E0 interruptions of d0 hours each. d0 = restart + half
  the checkpoint interval (llmplan.goodput; run.toml `stall_hours_prior` overrides). Stated in
  GPU-hours, the prior is equally sure of the per-GPU rate on 8 or 16,384 GPUs; it weighs
  H0 = E0 / GPUs running hours of this run;
- interruptions arrive at λ per running hour, λ ~ Gamma(a0 + n, H0 + T_run) (conjugate to the
  Poisson count of n stalls in T_run running hours): a run with frequent stalls learns that at
  once (a0 ≪ 1), a steady one stays near the public rate until its own steady hours outweigh H0;
- a stall's length is drawn from what the run has shown (a Dirichlet-process posterior with the
  same pseudo-data): with probability a0 / (a0 + n) from the prior, exponential of mean d0, else
  one of the run's own n stall lengths. The prior's stall thus weighs as a0 stalls, as in the rate
  (it used to weigh as one whole stall, pulling a run's 4–6 h stalls towards d0 ≈ 1 h), and the
  lengths keep the spread the run shows instead of an exponential's long tail.
So the plan dominates at the start (before the first interval the forecast *is* the plan) and the
run's own history once it has some; `prior_weight` = H0 / (H0 + T_run) says how much.
`forecast_run` is the one function every view calls (nightly row, report card, artifact, CLI).
Checked on simulated runs with known finishes (tests/llmplan/test_tracking.py).
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from llmplan.efficiency import Z90
from llmplan.progress import RunSpec

STALL_RATE_FRACTION = 0.5                            # an interval slower than half the running rate is a stall
STALE_INTERVALS = 3.0                                # a last line older than 3 logging intervals: the log is stale
# E0: the public rate weighs as 1,000 GPU-hours of the run's own history (a0 = r·E0 ≈ 0.03 interruptions:
# about five node-days, in which the public rate expects no interruption) — a weak prior by design,
# because a log's stalls include hangs, data stalls and restarts the public hardware rates do not count.
PRIOR_GPU_HOURS = 1000.0
EMPIRICAL_EXACT_MAX = 2_000_000                      # resampled future stalls summed exactly up to this many (else CLT)
DRAWS = 4000


@dataclass
class Prior:
    """The plan's answer for this run and the goodput model's interruption prior."""
    rate: float                 # whole-run tokens/s for the whole cluster, p50 (the plan)
    log_sd: float               # σ of ln(rate)
    goodput: float              # the goodput model's p50 for this run (llmplan.goodput)
    running_rate: float         # the step model's tokens/s (no stalls), p50
    interruptions_per_hour: float = 0.0    # λ0: public interruptions per GPU-hour × the run's GPUs
    stall_hours: float = 0.5               # d0: restart + half the checkpoint interval
    predicted_loss: float | None = None
    loss_law: str | None = None
    usd_per_hour: float | None = None
    plan_wall_days_p50: float | None = None


@dataclass
class Observed:
    start: datetime
    as_of: datetime                     # the ETA counts from here: the last line, or the moment if the log is stale
    tokens_done: float
    lines: int
    elapsed_h: float
    running_h: float
    running_rate: float | None          # tokens/s while running
    effective_rate: float | None        # tokens/s including stalls
    running_log_se: float
    stalls: int
    stall_h: float
    longest_stall_h: float
    log_age_h: float = 0.0              # the moment − the log's last line
    loss_last: float | None = None
    last_line_at: datetime | None = None
    stale: bool = False
    moment: datetime | None = None      # when the forecast is made
    stall_lengths_h: tuple = ()         # each stall's cost D (hours), in log order


def observe(log: pl.DataFrame, spec: RunSpec, now: datetime | None = None) -> Observed:
    """Rates and stalls from a progress log (sorted, monotone; llmplan.progress.read_log) at the
    moment `now` (default: the log's last line)."""
    if log.height == 0:
        start = spec.start or now or datetime.now(timezone.utc)
        return Observed(start, now or start, 0.0, 0, 0.0, 0.0, None, None, math.inf, 0, 0.0, 0.0, moment=now or start)
    first_time = log["time"][0]
    start = spec.start or first_time
    t = (log.select((pl.col("time") - pl.lit(start)).dt.total_microseconds())
         .to_series().to_numpy().astype(float) / 1e6)
    k = log["tokens"].to_numpy().astype(float)
    base = 0.0                                         # tokens done before the log's first interval
    if spec.start is not None and t[0] > 0:            # from the start to the first line is an interval too
        t, k = np.concatenate([[0.0], t]), np.concatenate([[0.0], k])
    elif spec.start is None:
        base = float(k[0])                             # no start given: the log's first line is the origin
    dt, dk = np.diff(t), np.diff(k)
    ok = dt > 0
    dt, dk = dt[ok], dk[ok]
    last_t = float(t[-1])
    as_of = start + timedelta(seconds=last_t)
    done = float(k[-1])
    log_age_h = 0.0
    if now is not None and now > as_of:
        log_age_h = (now - as_of).total_seconds() / 3600
    loss = log["loss"].drop_nulls()
    loss_last = float(np.median(loss.tail(5).to_numpy())) if loss.len() else None
    if dt.size == 0:
        return Observed(start, as_of, done, log.height, last_t / 3600, 0.0, None, (done - base) / last_t if last_t > 0 else None,
                        math.inf, 0, 0.0, 0.0, log_age_h, loss_last, as_of, False, now or as_of)
    rates = dk / dt
    med = float(np.median(rates[rates > 0])) if np.any(rates > 0) else 0.0
    run_mask = rates >= STALL_RATE_FRACTION * med
    r = float(dk[run_mask].sum() / dt[run_mask].sum()) if med > 0 else 0.0
    # Stall cost: an interval's length beyond what its tokens take at the running rate.
    d = np.where(run_mask, 0.0, dt - (dk / r if r > 0 else 0.0)) / 3600
    typical_dt = float(np.median(dt))
    last_line_at = as_of
    # The time since the last line is not a stall: a few logging intervals are nothing; beyond that the
    # log is stale and the run is taken as stopped since its last line (elapsed time runs on to now).
    stale = bool(log_age_h * 3600 > STALE_INTERVALS * typical_dt)
    if stale:
        as_of = now
    stalls = d[d > 0]
    elapsed = (as_of - start).total_seconds()
    run_h = (done - base) / r / 3600 if r > 0 else 0.0
    # se of ln(running rate) by batch means over up to 10 consecutive blocks of running intervals
    rr_t, rr_k = dt[run_mask], dk[run_mask]
    blocks = min(10, rr_t.size // 3)
    if blocks >= 3:
        idx = np.array_split(np.arange(rr_t.size), blocks)
        lr = np.log([rr_k[i].sum() / rr_t[i].sum() for i in idx])
        se = float(np.std(lr, ddof=1) / math.sqrt(blocks))
    else:
        se = 0.25                                           # a handful of lines: the rate is barely known
    return Observed(start, as_of, done, log.height, elapsed / 3600, run_h, r if r > 0 else None,
                    (done - base) / elapsed if elapsed > 0 else None, se, int(stalls.size), float(stalls.sum()),
                    float(stalls.max()) if stalls.size else 0.0, log_age_h, loss_last, last_line_at, stale, now or last_line_at,
                    tuple(float(x) for x in stalls))


def forecast(obs: Observed, spec: RunSpec, prior: Prior, seed: int = 0) -> dict:
    """ETA p10/p50/p90 (UTC), on_track, probability of meeting the deadline, GPU-hours and cost
    so far and at the end, how much the prior still counts, and the expected interruptions left."""
    planned = spec.n_tokens()
    left = max(planned - obs.tokens_done, 0.0)
    price = spec.usd_per_gpu_hour if spec.usd_per_gpu_hour is not None else prior.usd_per_hour
    rng = np.random.default_rng(seed)
    d0 = spec.stall_hours_prior or prior.stall_hours
    lam0 = max(prior.interruptions_per_hour, 1e-12)
    h0 = PRIOR_GPU_HOURS / max(float(spec.gpus), 1.0)   # H0: E0 GPU-hours as running hours of this run
    a0 = lam0 * h0                                       # = r·E0 pseudo-interruptions: Gamma(a0, H0) on λ has mean λ0
    interruptions = np.zeros(DRAWS)
    if left <= 0:
        hours, w_prior = np.zeros(DRAWS), 0.0
    elif obs.running_rate is None:                      # no interval yet: the plan itself
        hours = left / np.exp(rng.normal(math.log(prior.rate), max(prior.log_sd, 1e-3), DRAWS)) / 3600
        interruptions = lam0 * hours
        w_prior = 1.0
    else:
        # running rate: the log's (batch-means se), combined by precision with the plan's step rate
        s_d, s_0 = max(obs.running_log_se, 1e-4), max(prior.log_sd, 1e-3)
        w_d = s_0 ** 2 / (s_0 ** 2 + s_d ** 2)
        mu = w_d * math.log(obs.running_rate) + (1 - w_d) * math.log(prior.running_rate)
        # the rest of the run averages its own intervals too: their mean rate varies by se·√(T_run / T_left)
        # (batch means: se² × T_run is the long-run variance per hour)
        t_left = left / obs.running_rate / 3600
        future_var = s_d ** 2 * obs.running_h / max(t_left, 1e-9) if math.isfinite(obs.running_log_se) else 0.0
        rate = np.exp(rng.normal(mu, math.sqrt(1.0 / (1 / s_d ** 2 + 1 / s_0 ** 2) + future_var), DRAWS))
        left_run_h = left / rate / 3600
        # interruptions per running hour: Gamma(a0 + n, H0 + T_run) — the public rate as E0 GPU-hours of this
        # run's own; the run's stalls and hours take over as they accrue
        lam = rng.gamma(a0 + obs.stalls, 1.0 / (h0 + obs.running_h), DRAWS)
        n_future = rng.poisson(lam * left_run_h)
        interruptions = n_future.astype(float)
        stall_h = future_stall_hours(rng, n_future, np.asarray(obs.stall_lengths_h, float), a0, d0)
        hours = left_run_h + stall_h
        w_prior = h0 / (h0 + obs.running_h)
    q10, q50, q90 = (float(x) for x in np.quantile(hours, [0.1, 0.5, 0.9]))
    eta = {f"eta_{n}": (obs.as_of + timedelta(hours=h)).astimezone(timezone.utc) for n, h in (("p10", q10), ("p50", q50), ("p90", q90))}
    deadline = spec.deadline
    moment = obs.moment or obs.as_of
    finished = left <= 0
    passed = deadline is not None and not finished and moment > deadline
    p_on_time = None
    if deadline is not None:
        p_on_time = 0.0 if passed else float(np.mean(hours <= (deadline - obs.as_of).total_seconds() / 3600))
    gpu_h_so_far = spec.gpus * obs.elapsed_h
    return {
        "run": spec.name, "forecast_at": moment, "as_of": obs.as_of, "last_line_at": obs.last_line_at, "start": obs.start,
        "deadline": deadline, "deadline_passed": passed if deadline is not None else None,
        "planned_tokens": planned, "tokens_done": obs.tokens_done, "fraction_done": obs.tokens_done / planned if planned else None,
        "tokens_per_s_running": obs.running_rate, "tokens_per_s_effective": obs.effective_rate,
        "goodput_so_far": (obs.running_h / obs.elapsed_h) if obs.elapsed_h > 0 and obs.running_rate else None,
        "stalls": obs.stalls, "stall_hours": obs.stall_h, "longest_stall_hours": obs.longest_stall_h,
        "log_lines": obs.lines, "log_age_hours": obs.log_age_h, "log_stale": obs.stale,
        **eta, "hours_left_p10": q10, "hours_left_p50": q50, "hours_left_p90": q90,
        "on_track": None if deadline is None else bool(not passed and eta["eta_p50"] <= deadline),
        "p_on_time": p_on_time,
        "interruptions_expected_left": float(np.mean(interruptions)),
        "interruption_hours_prior": d0,
        "interruptions_per_hour_prior": lam0,
        "gpu_hours_so_far": gpu_h_so_far, "gpu_hours_end_p50": spec.gpus * (obs.elapsed_h + q50),
        "cost_usd_so_far": gpu_h_so_far * price if price is not None else None,
        "cost_usd_end_p50": spec.gpus * (obs.elapsed_h + q50) * price if price is not None else None,
        "usd_per_gpu_hour": price,
        "prior_weight": w_prior, "plan_tokens_per_s": prior.rate, "plan_goodput": prior.goodput,
        "plan_wall_days_p50": prior.plan_wall_days_p50,
        "loss_observed": obs.loss_last,
    }


def future_stall_hours(rng: np.random.Generator, n_future: np.ndarray, seen: np.ndarray, a0: float, d0: float) -> np.ndarray:
    """Total hours of n_future[i] future stalls per draw, each from the Dirichlet-process posterior:
    with probability a0 / (a0 + n) the prior's exponential of mean d0, else one of the run's own n
    stall lengths `seen` (resampled). The prior's share is a sum of exponentials (Gamma); the
    resampled share is summed exactly, or by the central limit theorem past EMPIRICAL_EXACT_MAX."""
    n = seen.size
    from_prior = rng.binomial(n_future, a0 / (a0 + n)) if n else n_future
    total = np.where(from_prior > 0, rng.gamma(np.maximum(from_prior, 1), d0), 0.0)
    own = n_future - from_prior
    if n == 0 or not own.any():
        return total
    if own.sum() <= EMPIRICAL_EXACT_MAX:
        idx = np.repeat(np.arange(own.size), own)
        return total + np.bincount(idx, seen[rng.integers(0, n, idx.size)], minlength=own.size)
    return total + np.maximum(own * seen.mean() + np.sqrt(own * seen.var()) * rng.standard_normal(own.size), 0.0)


def predicted_loss_at(law, n_params: float, tokens: float) -> float | None:
    """The plan's scaling law at the tokens seen so far (a fully trained model of that many
    tokens: mid-run losses under a decaying schedule sit a little above it)."""
    if law is None or tokens <= 0:
        return None
    return float(law.loss(np.array([n_params]), np.array([tokens]))[0])


def burn_down(obs: Observed, fc: dict, prior: Prior, planned: float) -> pl.DataFrame:
    """Planned vs forecast token curves for the report: the plan's line from the start, and
    from as_of the p10/p50/p90 lines to the planned tokens (the log itself is tracking.progress)."""
    plan_end = obs.start + timedelta(seconds=planned / prior.rate)
    rows = [{"series": "plan p50", "time": obs.start, "tokens": 0.0}, {"series": "plan p50", "time": plan_end, "tokens": planned}]
    for q in ("p10", "p50", "p90"):
        rows += [{"series": f"forecast {q}", "time": obs.as_of, "tokens": obs.tokens_done},
                 {"series": f"forecast {q}", "time": fc[f"eta_{q}"], "tokens": planned}]
    return pl.DataFrame(rows, schema={"series": pl.Utf8, "time": pl.Datetime("us", "UTC"), "tokens": pl.Float64})


def as_record(fc: dict) -> dict:
    """JSON-friendly (ISO 8601 UTC times)."""
    return {k: (v.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else v) for k, v in fc.items()}


def fmt_chance(p: float) -> str:
    """A probability for people: '>99 %' rather than a rounded certainty."""
    return ">99%" if p > 0.99 else "<1%" if p < 0.01 else f"{p:.0%}"


def summary_line(fc: dict) -> str:
    """The first line everywhere (artifact, report card, CLI): the verdict in words, when the
    forecast is from, and whether the log is stale."""
    fmt = "%Y-%m-%d %H:%M UTC"
    eta = fc["eta_p50"].strftime(fmt)
    at = f" (as of {fc['forecast_at'].strftime(fmt)})" if fc.get("forecast_at") else ""
    stale = (f"; the log is stale: its last line is {_age(fc['log_age_hours'])} old, so the run is taken as stopped "
             "since then" if fc.get("log_stale") else "")
    if fc["deadline"] is None:
        return f"{fc['run']}: {fc['fraction_done']:.0%} done, p50 finish {eta} (no deadline set){at}{stale}"
    dl = fc["deadline"].strftime(fmt)
    if fc.get("deadline_passed"):
        ago = (fc["forecast_at"] - fc["deadline"]).total_seconds() / 3600
        return (f"{fc['run']}: DEADLINE PASSED — {dl} was {_age(ago)} ago with {fc['fraction_done']:.0%} done; "
                f"p50 finish {eta}{at}{stale}")
    if fc["on_track"]:
        return (f"{fc['run']}: on track — p50 finish {eta}, before the deadline {dl} "
                f"({fmt_chance(fc['p_on_time'])} chance to make it){at}{stale}")
    late = (fc["eta_p50"] - fc["deadline"]).total_seconds() / 86400
    return (f"{fc['run']}: MISSES ITS DEADLINE — p50 finish {eta} is {late:.1f} days after {dl} "
            f"({fmt_chance(fc['p_on_time'])} chance to make it){at}{stale}")


def _age(hours: float) -> str:
    return f"{hours * 60:.0f} minutes" if hours < 1 else f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"


def prior_from_plan(row: dict, spec: RunSpec | None = None) -> Prior:
    """A plan row (llmplan.plan.build_plans for this run's size, tokens, accelerator and
    cluster) → the prior: its effective rate and spread, the running (step) rate its hours assume,
    and the goodput model's interruption rate and stall length for the run's GPUs."""
    from llmplan import goodput as gp

    secs = row["wall_days_p50"] * 86400
    rate = row["tokens"] / secs
    sd = math.log(row["wall_days_p90"] / row["wall_days_p10"]) / (2 * Z90) if row.get("wall_days_p10") else 0.3
    ratio = row.get("goodput_p50") or 0.8   # the share of wall time the plan's steps run (llmplan.goodput)
    gpus = spec.gpus if spec is not None else row.get("useful_gpus") or row["cluster_gpus"]
    lam, d0, _ = gp.stall_prior(float(gpus), float(row["params"]),
                                storage_bytes_per_s=(spec.storage_gbps if spec else gp.STORAGE_GBPS) * 1e9,
                                restart_hours=(spec.restart_minutes if spec else gp.RESTART_MINUTES) / 60.0)
    return Prior(rate=rate, log_sd=sd, goodput=float(row.get("goodput_p50") or 1.0), running_rate=rate / float(ratio),
                 interruptions_per_hour=lam, stall_hours=d0,
                 predicted_loss=row.get("predicted_loss"), loss_law=row.get("loss_law"),
                 usd_per_hour=row.get("usd_per_hour"), plan_wall_days_p50=row["wall_days_p50"])


def plan_prior(spec: RunSpec, model, acc_row: pl.DataFrame, law) -> Prior:
    """The plan llmplan makes for this run (its size, tokens, accelerator, cluster, precision):
    the public-run model's answer, used as the prior."""
    from llmplan.plan import build_plans
    from llmplan.scenario import Scenario

    fraction = spec.n_active() / spec.n_params() if spec.active_params else None
    sc = Scenario(targets=[spec.params], accelerators=[acc_row["accelerator"][0]], cluster_sizes=[spec.gpus],
                  policies=["fixed"], fixed_tokens=spec.tokens, precision=spec.precision, active_fraction=fraction,
                  seq_len=spec.seq_len, mixture={"en": 1.0}, storage_gbps=spec.storage_gbps, restart_minutes=spec.restart_minutes)
    if spec.usd_per_gpu_hour is not None:
        acc_row = acc_row.with_columns(pl.lit(spec.usd_per_gpu_hour).alias("usd_per_hour"))
    plans, _ = build_plans(sc, model, acc_row, law, None)
    return prior_from_plan(plans.row(0, named=True), spec)


def forecast_run(spec: RunSpec, log: pl.DataFrame, prior: Prior, moment: datetime) -> tuple[Observed, dict]:
    """THE forecast of a run at a moment: every view (the nightly tracking.forecasts row, the
    report card and the Prefect artifact that render it, `llmplan track`) comes from this call.
    The log's start must precede the deadline (run.toml's own check covers an explicit start)."""
    obs = observe(log, spec, moment)
    if spec.deadline is not None and spec.deadline <= obs.start:
        from llmplan.errors import LlmplanError

        raise LlmplanError(f"run {spec.name!r}: deadline {spec.deadline:%Y-%m-%dT%H:%M:%SZ} is not after the run's start "
                           f"{obs.start:%Y-%m-%dT%H:%M:%SZ} (the log's first line); expected a deadline after the start")
    fc = forecast(obs, spec, prior)
    fc["summary"] = summary_line(fc)
    return obs, fc
