"""Resource plans: for each target size × token policy × accelerator × cluster size, the tokens,
compute, GPU-hours (p10/p50/p90 from llmplan.efficiency), days, cost, data per language, memory
and expected loss. Vectorised: the grid is a Polars frame built by cross joins, formulas run on
whole columns.
"""

import numpy as np
import polars as pl

from llmplan import memory
from llmplan.efficiency import EfficiencyModel
from llmplan.flops import training_flop
from llmplan.scaling import Law, effective_tokens
from llmplan.scenario import Scenario
from llmplan.units import parse_size

CHINCHILLA_TOKENS_PER_PARAM = 20.0
EPOCH_WARNING = 4.0   # Muennighoff et al. 2023: ~4 epochs cost little, beyond that they do

# Used only when neither a measurement nor a published ratio exists for a language (DESIGN.md:
# a 32k SentencePiece vocabulary gives ≈3.0 bytes/token on Japanese prose, 3.4–3.7 on English).
DEFAULT_BYTES_PER_TOKEN = {"ja": (3.0, 2.6, 3.4), "en": (3.5, 3.4, 3.7), "code": (3.1, 2.8, 3.5)}


def policy_tokens(params: pl.Expr, policy: str, sc: Scenario, law: Law) -> tuple[pl.Expr, pl.Expr]:
    """(trained params, tokens) for a policy, as expressions over target params."""
    if policy == "chinchilla":
        return params, params * CHINCHILLA_TOKENS_PER_PARAM
    if policy == "overtrain":
        return params, params * CHINCHILLA_TOKENS_PER_PARAM * sc.overtrain_factor
    if policy == "fixed":
        return params, pl.lit(parse_size(sc.fixed_tokens))
    if policy == "compute-optimal":
        # D such that N is the law's compute-optimal size: C/6 = (N/G)^((α+β)/β), D = C/(6N).
        a, b = law.alpha, law.beta
        c6 = (params / law.G()).pow((a + b) / b)
        return params, c6 / params
    raise ValueError(policy)


def inference_aware(target: np.ndarray, law: Law, inference_tokens: float) -> tuple[np.ndarray, np.ndarray]:
    """Sardana et al. 2023: at the loss of the chinchilla model of each target size, the (N, D)
    minimising 6·N·D + 2·N·D_inference — a 1-D search over N (vectorised over targets)."""
    target = np.asarray(target, float)
    loss = law.loss(target, CHINCHILLA_TOKENS_PER_PARAM * target)
    grid = np.geomspace(0.05, 1.0, 400)[None, :] * target[:, None]
    d = law.tokens_for_loss(grid, loss[:, None])
    cost = 6.0 * grid * d + 2.0 * grid * inference_tokens
    best = np.nanargmin(np.where(np.isfinite(cost), cost, np.inf), axis=1)
    rows = np.arange(len(target))
    return grid[rows, best], d[rows, best]


def sizes_and_tokens(sc: Scenario, law: Law) -> pl.DataFrame:
    targets = pl.DataFrame({"target_params": sc.target_params()})
    parts = []
    for policy in dict.fromkeys(sc.policies):     # a handful of policies, not plan rows
        if policy == "inference-aware":
            n, d = inference_aware(targets["target_params"].to_numpy(), law, parse_size(sc.inference_tokens))
            parts.append(targets.with_columns(pl.lit(policy).alias("policy"), pl.Series("params", n), pl.Series("tokens", d)))
        else:
            n, d = policy_tokens(pl.col("target_params"), policy, sc, law)
            parts.append(targets.with_columns(pl.lit(policy).alias("policy"), n.alias("params"), d.alias("tokens")))
    return pl.concat(parts, how="vertical_relaxed")


def bytes_per_token_table(sc: Scenario, bpt: pl.DataFrame | None) -> pl.DataFrame:
    """Per language of the mixture: the ratio to use (measured for the tokenizer > published > default)."""
    langs = pl.DataFrame({"language": list(sc.mixture), "share": list(sc.mixture.values())})
    choices = []
    if bpt is not None and bpt.height:
        rank = {"measured": 0, "published": 1}
        cand = bpt.filter(
            ((pl.col("kind") == "measured") & (pl.col("tokenizer") == sc.tokenizer)) | (pl.col("kind") == "published")
        ).with_columns(pl.col("kind").replace_strict(rank, default=9).alias("_r")).sort("_r").unique("language", keep="first")
        choices.append(cand.select("language", "bytes_per_token", "lo", "hi", pl.col("kind").alias("bytes_per_token_kind")))
    default = pl.DataFrame(
        [{"language": k, "bytes_per_token": v[0], "lo": v[1], "hi": v[2], "bytes_per_token_kind": "default"}
         for k, v in DEFAULT_BYTES_PER_TOKEN.items()])
    choices.append(default)
    table = pl.concat(choices, how="vertical_relaxed").unique("language", keep="first", maintain_order=True)
    out = langs.join(table, on="language", how="left")
    # A language with nothing at all: the median default, marked.
    return out.with_columns(
        pl.col("bytes_per_token").fill_null(3.5), pl.col("lo").fill_null(2.5), pl.col("hi").fill_null(4.5),
        pl.col("bytes_per_token_kind").fill_null("default"))


def language_rows(st: pl.DataFrame, sc: Scenario, bpt_table: pl.DataFrame) -> pl.DataFrame:
    uniq = pl.DataFrame({"language": list(sc.unique_tokens), "unique_tokens": [parse_size(v) for v in sc.unique_tokens.values()]},
                        schema={"language": pl.Utf8, "unique_tokens": pl.Float64})
    rows = st.join(bpt_table, how="cross").join(uniq, on="language", how="left").with_columns(
        (pl.col("tokens") * pl.col("share")).alias("lang_tokens"))
    eff = effective_tokens(rows["lang_tokens"].to_numpy(), rows["unique_tokens"].fill_null(float("nan")).to_numpy())
    rows = rows.with_columns(pl.Series("effective_tokens", eff)).with_columns(
        (pl.col("lang_tokens") / pl.col("unique_tokens")).alias("epochs"))
    return rows.select(
        "target_params", "policy", "language", "share", pl.col("lang_tokens").alias("tokens"),
        (pl.col("lang_tokens") * pl.col("lo")).alias("bytes_p10"),
        (pl.col("lang_tokens") * pl.col("bytes_per_token")).alias("bytes_p50"),
        (pl.col("lang_tokens") * pl.col("hi")).alias("bytes_p90"),
        "bytes_per_token", "bytes_per_token_kind", "unique_tokens", "epochs", "effective_tokens",
        pl.when(pl.col("epochs") > EPOCH_WARNING)
        .then(pl.format("{} epochs over the unique {} tokens: past 4 the repeated data is worth much less",
                        pl.col("epochs").round(1), pl.col("language")))
        .otherwise(None).alias("warning"))


def build_plans(sc: Scenario, model: EfficiencyModel, accelerators: pl.DataFrame, law: Law,
                bpt: pl.DataFrame | None, year: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(plans, plan_languages) for the scenario. `accelerators` = core.accelerators rows to plan for."""
    st = sizes_and_tokens(sc, law)
    langs = language_rows(st, sc, bytes_per_token_table(sc, bpt))
    data = langs.group_by("target_params", "policy").agg(
        pl.col("effective_tokens").sum().alias("effective_tokens"), pl.col("epochs").max().alias("max_epochs"),
        pl.col("warning").drop_nulls().str.join("; ").alias("data_warning"))
    st = st.join(data, on=["target_params", "policy"], how="left")
    st = st.with_columns(pl.Series("predicted_loss", law.loss(st["params"].to_numpy(), st["effective_tokens"].fill_null(st["tokens"]).to_numpy())))

    prices = pl.DataFrame({"accelerator": list(sc.price_usd_per_hour), "_override": list(sc.price_usd_per_hour.values())},
                          schema={"accelerator": pl.Utf8, "_override": pl.Float64})
    acc = accelerators.join(prices, on="accelerator", how="left").select(
        "accelerator", "peak_flops", "memory_bytes", pl.coalesce("_override", "usd_per_hour").alias("usd_per_hour"))
    clusters = pl.DataFrame({"cluster_gpus": sc.cluster_sizes}, schema={"cluster_gpus": pl.Int64})
    grid = st.join(acc, how="cross").join(clusters, how="cross").with_columns(
        training_flop(pl.col("params"), None, pl.col("tokens")).alias("training_flop"),
        pl.col("cluster_gpus").cast(pl.Float64).alias("gpu_count"),
        pl.lit(year or model.year_range[1]).alias("year"),
    )
    grid = model.predict(grid)
    per_gpu, need = memory.memory_plan(grid["params"].to_numpy(), grid["cluster_gpus"].to_numpy(), grid["memory_bytes"].to_numpy(),
                                       sc.zero_stage, sc.seq_len, sc.micro_batch, sc.fp32_grads)
    grid = grid.with_columns(
        pl.Series("memory_per_gpu_gb", per_gpu / 1e9),
        pl.Series("min_gpus_for_memory", np.where(np.isfinite(need), need, -1).astype(np.int64)).replace(-1, None),
        pl.Series("checkpoint_gb", memory.checkpoint_bytes(grid["params"].to_numpy()) / 1e9),
    )
    days = pl.col("cluster_gpus") * 24.0
    plans = grid.with_columns(
        (pl.col("gpu_hours_p50") / 24.0).alias("gpu_days_p50"),
        (pl.col("gpu_hours_p10") / days).alias("wall_days_p10"),
        (pl.col("gpu_hours_p50") / days).alias("wall_days_p50"),
        (pl.col("gpu_hours_p90") / days).alias("wall_days_p90"),
        (pl.col("gpu_hours_p10") * pl.col("usd_per_hour")).alias("cost_usd_p10"),
        (pl.col("gpu_hours_p50") * pl.col("usd_per_hour")).alias("cost_usd_p50"),
        (pl.col("gpu_hours_p90") * pl.col("usd_per_hour")).alias("cost_usd_p90"),
        (pl.col("min_gpus_for_memory").is_not_null() & (pl.col("min_gpus_for_memory") <= pl.col("cluster_gpus"))).alias("fits_in_memory"),
        pl.lit(law.name).alias("loss_law"),
    ).with_columns(
        (pl.col("wall_days_p50") <= sc.deadline_days).alias("meets_deadline") if sc.deadline_days else pl.lit(None, pl.Boolean).alias("meets_deadline"),
        (pl.col("cost_usd_p50") <= sc.budget_usd).alias("within_budget") if sc.budget_usd else pl.lit(None, pl.Boolean).alias("within_budget"),
    ).with_columns(
        pl.concat_str([
            pl.when(~pl.col("fits_in_memory")).then(
                pl.when(pl.col("min_gpus_for_memory").is_null()).then(pl.lit("does not fit in this accelerator's memory at any count (reduce micro-batch or add tensor parallelism)"))
                .otherwise(pl.lit("needs ≥ ") + pl.col("min_gpus_for_memory").cast(pl.Utf8) + pl.lit(" accelerators for memory"))),
            pl.col("data_warning").replace("", None),
            pl.when(pl.col("usd_per_hour").is_null()).then(pl.lit("no price for this accelerator: set price_usd_per_hour")),
            pl.when(pl.col("meets_deadline") == False).then(pl.lit("misses the deadline")),  # noqa: E712
            pl.when(pl.col("within_budget") == False).then(pl.lit("over budget")),  # noqa: E712
        ], separator="; ", ignore_nulls=True).replace("", None).alias("warnings"),
    )
    return plans, langs


def inverse_plan(model: EfficiencyModel, accelerator_row: pl.DataFrame, gpus: int, law: Law,
                 days: float | None = None, budget_usd: float | None = None, year: int | None = None,
                 languages: pl.DataFrame | None = None) -> dict:
    """'We have G accelerators for T days (or $X)': the compute budget (p10/p50/p90), the
    compute-optimal N and D under the law with the expected loss, and — given a
    bytes_per_token_table() — the tokens and bytes of text per language."""
    acc = accelerator_row.row(0, named=True)
    if days is None:
        if budget_usd is None or not acc["usd_per_hour"]:
            raise ValueError("give days, or a budget with a priced accelerator")
        days = budget_usd / (acc["usd_per_hour"] * gpus * 24.0)
    gpu_hours = gpus * days * 24.0
    # Utilisation depends (weakly) on model size: two fixed-point passes on the size.
    n_guess = 7e9
    for _ in range(3):
        f = pl.DataFrame({"params": [n_guess], "gpu_count": [float(gpus)], "year": [year or model.year_range[1]],
                          "accelerator": [acc["accelerator"]], "peak_flops": [acc["peak_flops"]], "training_flop": [1.0]})
        u = model.predict(f).row(0, named=True)
        compute = {q: gpu_hours * 3600.0 * acc["peak_flops"] * u[f"utilization_{q}"] for q in ("p10", "p50", "p90")}
        n_guess = float(law.optimal(compute["p50"])[0])
    n_opt = {q: float(law.optimal(c)[0]) for q, c in compute.items()}
    d_opt = {q: float(law.optimal(c)[1]) for q, c in compute.items()}
    out = {
        "accelerator": acc["accelerator"], "gpus": gpus, "days": days, "gpu_hours": gpu_hours,
        "cost_usd": gpu_hours * acc["usd_per_hour"] if acc["usd_per_hour"] else None,
        "compute_flop_p10": compute["p10"], "compute_flop_p50": compute["p50"], "compute_flop_p90": compute["p90"],
        "params_opt_p10": n_opt["p10"], "params_opt_p50": n_opt["p50"], "params_opt_p90": n_opt["p90"],
        "tokens_opt_p10": d_opt["p10"], "tokens_opt_p50": d_opt["p50"], "tokens_opt_p90": d_opt["p90"],
        "predicted_loss_p50": float(law.loss(n_opt["p50"], d_opt["p50"])), "law": law.name,
    }
    if languages is not None:
        rows = list(languages.iter_rows(named=True))
        out["tokens_per_language"] = {r["language"]: r["share"] * d_opt["p50"] for r in rows}
        out["bytes_per_language"] = {r["language"]: r["share"] * d_opt["p50"] * r["bytes_per_token"] for r in rows}
        out["bytes_per_token_source"] = {r["language"]: r["bytes_per_token_kind"] for r in rows}
    return out
