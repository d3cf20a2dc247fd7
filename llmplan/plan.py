"""Resource plans: for each target size × token policy × accelerator × cluster size, the tokens,
compute, GPU-hours (p10/p50/p90 from llmplan.efficiency), days, cost, data per language, memory
and expected loss. Vectorised: the grid is a Polars frame built by cross joins, formulas run on
whole columns.
"""

import math

import numpy as np
import polars as pl

from llmplan import memory
from llmplan.efficiency import EfficiencyModel
from llmplan.errors import LlmplanError
from llmplan.flops import training_flop
from llmplan.scaling import Law, effective_tokens, loss_quantiles
from llmplan.scenario import Scenario
from llmplan.units import fmt_params, parse_size

CHINCHILLA_TOKENS_PER_PARAM = 20.0
EPOCH_WARNING = 4.0   # Muennighoff et al. 2023: ~4 epochs cost little, beyond that they do

# Used only when neither a measurement nor a published ratio exists for a language (docs/methods.md:
# a 32k SentencePiece vocabulary gives ≈3.0 bytes/token on Japanese prose, 3.4–3.7 on English).
DEFAULT_BYTES_PER_TOKEN = {"ja": (3.0, 2.6, 3.4), "en": (3.5, 3.4, 3.7), "code": (3.1, 2.8, 3.5)}
DEFAULT_SOURCE = ("default: rule of thumb for a 32k SentencePiece vocabulary (docs/methods.md); measure yours with "
                  "`llmplan corpus scan`")


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
    out = pl.concat(parts, how="vertical_relaxed")
    # Mixture of experts: FLOPs on the active parameters, memory on all of them. Token policies and
    # the loss law stay on the total (a dense law; MoE loss is between the two).
    return out.with_columns((pl.col("params") * sc.active_fraction if sc.active_fraction else pl.lit(None, pl.Float64))
                            .alias("active_params"))


# Corpora differ in content even where tokenizer and language match: a published ratio is used
# with at least ±10 % around it.
PUBLISHED_SPREAD = 0.10


def bytes_per_token_table(sc: Scenario, bpt: pl.DataFrame | None) -> pl.DataFrame:
    """Per language of the mixture, the bytes/token a plan uses, chosen by a fixed order:
    measured with the scenario's tokenizer > published with it > measured with a tokenizer of the
    same family > published, same family > measured, other family > published, other family >
    the default; ties → more sources, then the larger corpus (tokens), then tokenizer name. Published ratios are UTF-8 text sizes
    only (fits.bytes_per_token). `bytes_per_token_source` says which row and why, in words."""
    from llmplan.tokenizers import family

    langs = pl.DataFrame({"language": list(sc.mixture), "share": list(sc.mixture.values())})
    fam = family(sc.tokenizer)
    cols = ["language", "bytes_per_token", "lo", "hi", "bytes_per_token_kind", "bytes_per_token_source", "_rank", "_sm", "_bytes"]
    choices, priors = [], []
    if bpt is not None and bpt.height:
        b = bpt if "tokenizer_family" in bpt.columns else bpt.with_columns(pl.lit(None, pl.Utf8).alias("tokenizer_family"))
        b = b if "log_sd" in b.columns else b.with_columns(pl.lit(None, pl.Float64).alias("log_sd"))
        same_tok = pl.col("tokenizer") == sc.tokenizer
        same_fam = pl.col("tokenizer_family").fill_null("") == (fam or "\x00")
        measured = pl.col("kind") == "measured"
        rank = (pl.when(measured & same_tok).then(0).when(same_tok).then(1).when(measured & same_fam).then(2)
                .when(same_fam).then(3).when(measured).then(4).otherwise(5))
        relation = (pl.when(same_tok).then(pl.lit("the scenario's tokenizer"))
                    .when(same_fam).then(pl.lit(f"same family as {sc.tokenizer} ({fam})"))
                    .otherwise(pl.lit(f"not {sc.tokenizer}'s family ({fam or 'unknown'})")))
        cand = b.filter(pl.col("kind").is_in(["measured", "published"]) & pl.col("bytes_per_token").is_not_null()).with_columns(
            rank.alias("_rank"),
            pl.when(measured).then(pl.col("lo")).otherwise(pl.min_horizontal("lo", pl.col("bytes_per_token") * (1 - PUBLISHED_SPREAD))).alias("lo"),
            pl.when(measured).then(pl.col("hi")).otherwise(pl.max_horizontal("hi", pl.col("bytes_per_token") * (1 + PUBLISHED_SPREAD))).alias("hi"),
            pl.col("kind").alias("bytes_per_token_kind"), pl.col("log_sd").alias("_sm"), pl.col("bytes").alias("_bytes"),
            pl.format("{}: {} — tokenizer {}, {}", "kind", pl.col("source").fill_null("?"), "tokenizer", relation)
            .alias("bytes_per_token_source"),
        ).sort(["language", "_rank", "n_sources", "tokens", "tokenizer"], descending=[False, False, True, True, False],
               nulls_last=True)
        choices.append(cand.unique("language", keep="first", maintain_order=True).select(cols))
        # the prior a measurement is weighed against: the best published row (or the default)
        priors.append(cand.filter(pl.col("kind") == "published").unique("language", keep="first", maintain_order=True)
                      .select(cols))
    default = pl.DataFrame(
        [{"language": k, "bytes_per_token": v[0], "lo": v[1], "hi": v[2], "bytes_per_token_kind": "default",
          "bytes_per_token_source": DEFAULT_SOURCE, "_rank": 6} for k, v in DEFAULT_BYTES_PER_TOKEN.items()],
        schema={c: (pl.Int32 if c == "_rank" else pl.Float64 if c in ("bytes_per_token", "lo", "hi", "_sm", "_bytes")
                    else pl.Utf8) for c in cols})
    choices.append(default)
    priors.append(default)
    table = pl.concat([c.cast({"_rank": pl.Int32}) for c in choices], how="vertical_relaxed").sort("language", "_rank").unique(
        "language", keep="first", maintain_order=True)
    prior = pl.concat([c.cast({"_rank": pl.Int32}) for c in priors], how="vertical_relaxed").sort("language", "_rank").unique(
        "language", keep="first", maintain_order=True)
    table = weigh_measured(table, prior)
    out = langs.join(table, on="language", how="left")
    # A language with nothing at all: a wide band around the middle of the defaults, marked.
    return out.with_columns(
        pl.col("bytes_per_token").fill_null(3.5), pl.col("lo").fill_null(2.5), pl.col("hi").fill_null(4.5),
        pl.col("bytes_per_token_kind").fill_null("default"), pl.col("bytes_per_token_weight").fill_null(0.0),
        pl.col("bytes_per_token_source").fill_null("default: no measurement, published ratio or rule of thumb for this "
                                                   "language; 3.5 (2.5–4.5) bytes/token"))


Z95 = 1.959963984540054


def weigh_measured(table: pl.DataFrame, prior: pl.DataFrame) -> pl.DataFrame:
    """A chosen measured ratio combined with its prior — the best published row for the language
    (else the rule of thumb) — by precision on the log scale: w = σp² / (σp² + σm²), log r =
    w·log m + (1 − w)·log p, σ = σp·σm / √(σp² + σm²); lo/hi the 95 % band around r. σp is the
    published band (at least ±10 %, or the spread among published corpora) as a 95 % interval;
    σm is the measurement's `log_sd` (fits.bytes_per_token: the ratio's between-document spread,
    at least llmplan.corpus.DISPERSION/tokens), so a 1 kB scan barely moves a plan and a large scan
    decides it. The weight is said in `bytes_per_token_source` and kept in `bytes_per_token_weight`.
    Both frames: one row per language with the columns of bytes_per_token_table's candidates."""
    from llmplan.units import fmt_bytes

    prior = prior.select(
        "language", pl.col("bytes_per_token").alias("_p"),
        (pl.max_horizontal("hi", pl.col("bytes_per_token") * (1 + PUBLISHED_SPREAD))
         / pl.min_horizontal("lo", pl.col("bytes_per_token") * (1 - PUBLISHED_SPREAD))).log().truediv(2 * Z95).alias("_sp"),
        pl.col("bytes_per_token_source").alias("_psrc"))
    # a language with no published ratio and no rule of thumb: the wide band of the last resort
    t = table.join(prior, on="language", how="left").with_columns(
        pl.col("_p").fill_null(3.5), pl.col("_sp").fill_null(math.log(4.5 / 2.5) / (2 * Z95)),
        pl.col("_psrc").fill_null("default: no published ratio for this language, 3.5 (2.5–4.5)"))
    measured = (pl.col("bytes_per_token_kind") == "measured") & pl.col("_p").is_not_null()
    sm = pl.coalesce("_sm", (pl.col("hi") / pl.col("lo")).log() / (2 * Z95))
    w = pl.when(sm > 0).then(pl.col("_sp") ** 2 / (pl.col("_sp") ** 2 + sm ** 2)).otherwise(1.0)
    t = t.with_columns(w.alias("_w"), sm.alias("_sm"))
    logr = pl.col("_w") * pl.col("bytes_per_token").log() + (1 - pl.col("_w")) * pl.col("_p").log()
    sd = (pl.col("_w") * pl.col("_sm") ** 2).sqrt()          # = σp·σm/√(σp²+σm²)
    size = pl.col("_bytes").map_elements(fmt_bytes, return_dtype=pl.Utf8)
    words = pl.format("measured {} (±{} %, {}) weighted {} % with {} {} (±{} %) → {} (measured: {}; prior: {})",
                      pl.col("bytes_per_token").round(3), ((Z95 * pl.col("_sm")).exp().sub(1) * 100).round(1),
                      size.fill_null("size unknown"), (pl.col("_w") * 100).round(0).cast(pl.Int64),
                      pl.col("_psrc").str.split(":").list.first(), pl.col("_p").round(3),
                      ((Z95 * pl.col("_sp")).exp().sub(1) * 100).round(0).cast(pl.Int64),
                      logr.exp().round(3), pl.col("bytes_per_token_source").str.strip_prefix("measured: "), pl.col("_psrc"))
    return t.with_columns(
        pl.when(measured).then(logr.exp()).otherwise("bytes_per_token").alias("bytes_per_token"),
        pl.when(measured).then((logr - Z95 * sd).exp()).otherwise("lo").alias("lo"),
        pl.when(measured).then((logr + Z95 * sd).exp()).otherwise("hi").alias("hi"),
        pl.when(measured).then(words).otherwise("bytes_per_token_source").alias("bytes_per_token_source"),
        pl.when(measured).then("_w").otherwise(pl.when(pl.col("bytes_per_token_kind") == "measured").then(1.0).otherwise(0.0))
        .alias("bytes_per_token_weight"),
    ).drop("_p", "_sp", "_psrc", "_sm", "_bytes", "_w", "_rank")


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
        "bytes_per_token", "bytes_per_token_kind", "bytes_per_token_source", "bytes_per_token_weight", "unique_tokens",
        "epochs", "effective_tokens",
        pl.when(pl.col("epochs") > EPOCH_WARNING)
        .then(pl.format("{} epochs over the unique {} tokens: past 4 the repeated data is worth much less",
                        pl.col("epochs").round(1), pl.col("language")))
        .otherwise(None).alias("warning"))


def _grid(st: pl.DataFrame, accelerators: pl.DataFrame, sc: Scenario, model, year: int | None,
          clusters: pl.DataFrame) -> pl.DataFrame:
    """Plan rows (targets × accelerators × cluster sizes) with GPU-hours p10/p50/p90 (the work,
    on the accelerators the batch keeps busy), the layout and the busy count. `model` is the
    step × goodput chain (llmplan.step.Chain) or, for a warehouse without a step fit, the
    whole-run model alone."""
    from llmplan.step import Chain

    prices = pl.DataFrame({"accelerator": list(sc.price_usd_per_hour), "_override": list(sc.price_usd_per_hour.values())},
                          schema={"accelerator": pl.Utf8, "_override": pl.Float64})
    cols = [c for c in ("peak_fp8_flops", "nvlink_domain", "hbm_bandwidth_bytes_s", "nvlink_bytes_per_s", "scaleout_bytes_per_s")
            if c in accelerators.columns]
    acc = accelerators.join(prices, on="accelerator", how="left").select(
        "accelerator", "peak_flops", *cols, "memory_bytes", pl.coalesce("_override", "usd_per_hour").alias("usd_per_hour"))
    if sc.precision == "fp8":
        missing = acc.filter(pl.col("peak_fp8_flops").is_null())["accelerator"].to_list() if "peak_fp8_flops" in acc.columns \
            else acc["accelerator"].to_list()
        if missing:
            raise LlmplanError(f"precision fp8: {', '.join(missing)} has no FP8 peak in the accelerator table "
                               "(data/accelerators/*.csv, column peak_dense_fp8_tflops); plan it in bf16")
    grid = st.join(acc, how="cross").join(clusters, how="cross").with_columns(
        training_flop(pl.col("params"), pl.col("active_params"), pl.col("tokens")).alias("training_flop"),
        pl.col("cluster_gpus").cast(pl.Float64).alias("gpu_count"),
        pl.lit(year or model.year_range[1]).alias("year"),
    )
    if isinstance(model, Chain):
        from llmplan.step import accelerator_columns

        spec = accelerator_columns(accelerators).drop("memory_bytes")
        grid = grid.drop([c for c in spec.columns if c != "accelerator" and c in grid.columns]).join(spec, on="accelerator", how="left")
        return model.predict(grid, seq_len=sc.seq_len, micro_batch=sc.micro_batch, precision=sc.precision,
                             global_batch=parse_size(sc.global_batch_tokens) if sc.global_batch_tokens else None,
                             vocab=sc.vocab_size, fp32_grads=sc.fp32_grads, flash_attention=sc.flash_attention,
                             experts=sc.experts, top_k=sc.top_k, shape=sc.shape(), framework=sc.framework,
                             storage_gbps=sc.storage_gbps, restart_minutes=sc.restart_minutes, pp_schedule=sc.pp_schedule)
    return model.predict(grid).with_columns(pl.col("gpu_count").alias("useful_gpus"))


def build_plans(sc: Scenario, model: EfficiencyModel, accelerators: pl.DataFrame, law: Law,
                bpt: pl.DataFrame | None, year: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(plans, plan_languages) for the scenario. `accelerators` = core.accelerators rows to plan for."""
    st = sizes_and_tokens(sc, law)
    langs = language_rows(st, sc, bytes_per_token_table(sc, bpt))
    data = langs.group_by("target_params", "policy").agg(
        pl.col("effective_tokens").sum().alias("effective_tokens"), pl.col("epochs").max().alias("max_epochs"),
        pl.col("warning").drop_nulls().str.join("; ").alias("data_warning"))
    st = st.join(data, on=["target_params", "policy"], how="left")
    n, d = st["params"].to_numpy(), st["effective_tokens"].fill_null(st["tokens"]).to_numpy()
    lo, hi = loss_quantiles(law, n, d)
    band = [pl.lit(None, pl.Float64).alias(c) for c in ("predicted_loss_p10", "predicted_loss_p90")] if lo is None else \
        [pl.Series("predicted_loss_p10", lo, dtype=pl.Float64), pl.Series("predicted_loss_p90", hi, dtype=pl.Float64)]
    st = st.with_columns(pl.Series("predicted_loss", law.loss(n, d)), *band)

    clusters = pl.DataFrame({"cluster_gpus": sc.cluster_sizes}, schema={"cluster_gpus": pl.Int64})
    grid = _grid(st, accelerators, sc, model, year, clusters)
    if "layout_fits" in grid.columns:                  # memory of the chosen layout (llmplan.perf.layout.search)
        from llmplan.step import min_gpus_for_memory

        need = min_gpus_for_memory(grid, sc.fp32_grads, sc.flash_attention)
        grid = grid.with_columns(pl.Series("memory_per_gpu_gib", grid["memory_per_gpu"].to_numpy() / memory.GIB),
                                 pl.Series("min_gpus_for_memory", need).replace(-1, None))
    else:
        per_gpu, need = memory.memory_plan(grid["params"].to_numpy(), grid["cluster_gpus"].to_numpy(), grid["memory_bytes"].to_numpy(),
                                           sc.zero_stage, sc.seq_len, sc.micro_batch or 1, sc.fp32_grads, sc.vocab_size or 128256,
                                           sc.flash_attention)
        grid = grid.with_columns(
            pl.Series("memory_per_gpu_gib", per_gpu / memory.GIB),
            pl.Series("min_gpus_for_memory", np.where(np.isfinite(need), need, -1).astype(np.int64)).replace(-1, None),
            pl.lit(None, pl.Boolean).alias("layout_fits"))
    grid = grid.with_columns(pl.Series("checkpoint_gib", memory.checkpoint_bytes(grid["params"].to_numpy()) / memory.GIB))
    # Wall time on the accelerators the batch keeps busy; the bill on every accelerator rented.
    busy = pl.col("useful_gpus") * 24.0
    billed = pl.col("cluster_gpus") / pl.col("useful_gpus")
    q = sc.confidence
    plans = grid.with_columns(
        (pl.col("gpu_hours_p50") / 24.0).alias("gpu_days_p50"),
        (pl.col("gpu_hours_p10") / busy).alias("wall_days_p10"),
        (pl.col("gpu_hours_p50") / busy).alias("wall_days_p50"),
        (pl.col("gpu_hours_p90") / busy).alias("wall_days_p90"),
        (pl.col("gpu_hours_p50") * billed).alias("billed_gpu_hours_p50"),
        (pl.col("gpu_hours_p10") * billed * pl.col("usd_per_hour")).alias("cost_usd_p10"),
        (pl.col("gpu_hours_p50") * billed * pl.col("usd_per_hour")).alias("cost_usd_p50"),
        (pl.col("gpu_hours_p90") * billed * pl.col("usd_per_hour")).alias("cost_usd_p90"),
        (pl.col("layout_fits").fill_null(True) & pl.col("min_gpus_for_memory").is_not_null()
         & (pl.col("min_gpus_for_memory") <= pl.col("cluster_gpus"))).alias("fits_in_memory"),
        pl.lit(law.name).alias("loss_law"), pl.lit(sc.precision).alias("precision"),
    ).with_columns(
        (pl.col(f"wall_days_{q}") <= sc.deadline_days).alias("meets_deadline") if sc.deadline_days else pl.lit(None, pl.Boolean).alias("meets_deadline"),
        (pl.col(f"cost_usd_{q}") <= sc.budget_usd).alias("within_budget") if sc.budget_usd else pl.lit(None, pl.Boolean).alias("within_budget"),
    )
    # Goodput (llmplan.goodput) and its parts come from the chain; a warehouse without a step fit
    # still shows them beside the whole-run model's hours.
    from llmplan.goodput import plan_goodput

    if "goodput_p50" not in plans.columns:             # the whole-run model alone: goodput for information
        plans = plan_goodput(plans, sc)
    plans = plans.with_columns(
        pl.concat_str([
            pl.when(~pl.col("fits_in_memory")).then(
                pl.when(pl.col("min_gpus_for_memory").is_null()).then(pl.lit("does not fit in this accelerator's memory at any count (reduce micro-batch or add tensor parallelism)"))
                .otherwise(pl.lit("needs ≥ ") + pl.col("min_gpus_for_memory").cast(pl.Utf8) + pl.lit(" accelerators for memory"))),
            pl.col("data_warning").replace("", None),
            pl.when(pl.col("usd_per_hour").is_null()).then(pl.lit("no price for this accelerator: set price_usd_per_hour")),
            pl.when(pl.col("useful_gpus") < pl.col("cluster_gpus")).then(pl.format(
                "the global batch keeps only {} of {} accelerators busy (max_useful_gpus): more do not shorten the run",
                pl.col("useful_gpus").cast(pl.Int64), "cluster_gpus")) if "useful_gpus" in grid.columns else pl.lit(None, pl.Utf8),
            pl.when(pl.col("meets_deadline") == False).then(pl.lit(f"misses the deadline at {q}")),  # noqa: E712
            pl.when(pl.col("within_budget") == False).then(pl.lit(f"over budget at {q}")),  # noqa: E712
        ], separator="; ", ignore_nulls=True).replace("", None).alias("warnings"),
    )
    return plans, langs


MAX_ACCELERATORS = 10_000_000


def fewest_accelerators(sc: Scenario, model: EfficiencyModel, accelerators: pl.DataFrame, law: Law, days: float,
                        quantile: str = "p50", year: int | None = None) -> int:
    """The fewest accelerators on which the scenario's (single) target finishes within `days` at
    `quantile` (p50, or p90 for a safe answer) and fits in memory. Wall days fall with the count
    (utilisation drops far slower than 1/count), so the boundary is found by narrowing an integer
    range, evaluating 64 counts at once per step."""
    st = sizes_and_tokens(sc, law).head(1)

    def grid(counts: np.ndarray) -> pl.DataFrame:
        return _grid(st, accelerators, sc, model, year, pl.DataFrame({"cluster_gpus": counts.astype(np.int64)}))

    def meets(counts: np.ndarray) -> np.ndarray:
        g = grid(counts)
        ok = (g[f"gpu_hours_{quantile}"] / (g["useful_gpus"] * 24.0)).to_numpy() <= days
        return ok & g["layout_fits"].fill_null(True).to_numpy() if "layout_fits" in g.columns else ok

    hi = 1
    while not meets(np.array([hi]))[0]:
        if hi >= MAX_ACCELERATORS:
            g = grid(np.array([hi])).row(0, named=True)
            why = (f"; the global batch keeps at most {g['max_useful_gpus']:,} accelerators busy (set a larger "
                   "global_batch_tokens to use more)") if g.get("max_useful_gpus") and g["max_useful_gpus"] < hi else ""
            raise LlmplanError(f"no cluster of up to {MAX_ACCELERATORS:,} accelerators finishes in {days:g} days at {quantile}{why}")
        hi = min(hi * 4, MAX_ACCELERATORS)
    lo = max(hi // 4, 1) - 1                                   # lo fails (0 stands for "none")
    while hi - lo > 1:
        counts = np.unique(np.linspace(lo + 1, hi, min(64, hi - lo)).round().astype(np.int64))
        ok = meets(counts)
        first = counts[np.argmax(ok)]                          # the last count is hi, which meets
        hi, lo = int(first), int(counts[np.argmax(ok) - 1]) if np.argmax(ok) > 0 else lo
    g = grid(np.array([hi])).row(0, named=True)
    if "layout_fits" in g:                                     # the chain's layout search decided memory
        return hi
    _, need = memory.memory_plan(st["params"].to_numpy(), np.array([hi]), accelerators["memory_bytes"].to_numpy()[:1],
                                 sc.zero_stage, sc.seq_len, sc.micro_batch or 1, sc.fp32_grads, sc.vocab_size or 128256, sc.flash_attention)
    if not np.isfinite(need[0]):
        raise LlmplanError(f"{fmt_params(float(st['params'][0]))} parameters do not fit in {accelerators['accelerator'][0]} "
                           "memory at any count with this micro-batch and sequence length")
    return max(hi, int(need[0]))


def _loss_interval(law: Law, n: float, compute: dict) -> tuple[float, float, float, str]:
    """Loss p10/p50/p90 for N parameters trained on whatever compute the run gets: the compute's
    spread (log-normal through its p10 and p90) crossed with the law's bootstrap draws when the
    law has them. Deterministic: compute on 201 equal-probability nodes."""
    from scipy.special import ndtri

    z = ndtri((np.arange(201) + 0.5) / 201)
    sigma = (np.log(compute["p90"]) - np.log(compute["p10"])) / (2 * 1.2815515655446004)
    d = np.exp(np.log(compute["p50"]) + z * sigma) / (6.0 * n)
    draws = law.draws if law.draws is not None and len(law.draws) else np.array([[law.E, law.A, law.B, law.alpha, law.beta]])
    E, A, B, al, be = (draws[:, i][None, :] for i in range(5))
    loss = (E + A / n ** al + B / d[:, None] ** be).ravel()
    what = "compute spread and the fitted law's bootstrap draws" if len(draws) > 1 else \
        "compute spread only (published constants come without joint draws)"
    return float(np.percentile(loss, 10)), float(law.loss(n, compute["p50"] / (6.0 * n))), float(np.percentile(loss, 90)), what


def inverse_plan(model: EfficiencyModel, accelerator_row: pl.DataFrame, gpus: int, law: Law,
                 days: float | None = None, budget_usd: float | None = None, year: int | None = None,
                 sc: Scenario | None = None, bpt: pl.DataFrame | None = None) -> dict:
    """'We have G accelerators for T days and/or $X': both limits hold (the run stops at whichever
    comes first). The compute budget (p10/p50/p90), the compute-optimal N and D under the law,
    the loss with its interval, and the same memory and data checks as a forward plan of that N
    and D (fits in memory on G, epochs over the unique tokens, bytes of text per language)."""
    acc = accelerator_row.row(0, named=True)
    sc = sc or Scenario()
    price = acc["usd_per_hour"]
    if days is None and budget_usd is None:
        raise LlmplanError("give the days available, a budget, or both")
    if budget_usd is not None and not price:
        raise LlmplanError(f"{acc['accelerator']} has no price in the accelerator table: give a price to use a budget")
    budget_days = budget_usd / (price * gpus * 24.0) if budget_usd is not None else None
    limits = {k: v for k, v in (("days", days), ("budget", budget_days)) if v is not None}
    limited_by = min(limits, key=limits.get)
    run_days = limits[limited_by]
    gpu_hours = gpus * run_days * 24.0
    # Utilisation depends (weakly) on model size: three fixed-point passes on the size. The work is
    # done by the accelerators the batch keeps busy (useful_gpus ≤ gpus).
    n_guess = 7e9
    for _ in range(3):
        d_guess = float(law.optimal(6.0 * n_guess * 20 * n_guess)[1]) if n_guess else 1e12
        st = pl.DataFrame({"target_params": [n_guess], "policy": ["fixed"], "params": [n_guess], "tokens": [d_guess],
                           "active_params": [n_guess * sc.active_fraction if sc.active_fraction else None]},
                          schema_overrides={"active_params": pl.Float64})
        u = _grid(st, accelerator_row, sc, model, year, pl.DataFrame({"cluster_gpus": [gpus]}, schema={"cluster_gpus": pl.Int64})
                  ).row(0, named=True)
        busy = u["useful_gpus"] / gpus
        compute = {q: gpu_hours * busy * 3600.0 * acc["peak_flops"] * u[f"utilization_{q}"] for q in ("p10", "p50", "p90")}
        n_guess = float(law.optimal(compute["p50"])[0])
    n_opt = {q: float(law.optimal(c)[0]) for q, c in compute.items()}
    d_opt = {q: float(law.optimal(c)[1]) for q, c in compute.items()}
    loss_lo, loss_mid, loss_hi, loss_what = _loss_interval(law, n_opt["p50"], compute)
    out = {
        "accelerator": acc["accelerator"], "gpus": gpus, "days": run_days, "days_available": days,
        "budget_usd": budget_usd, "limited_by": limited_by, "gpu_hours": gpu_hours,
        "cost_usd": gpu_hours * price if price else None,
        "compute_flop_p10": compute["p10"], "compute_flop_p50": compute["p50"], "compute_flop_p90": compute["p90"],
        "params_opt_p10": n_opt["p10"], "params_opt_p50": n_opt["p50"], "params_opt_p90": n_opt["p90"],
        "tokens_opt_p10": d_opt["p10"], "tokens_opt_p50": d_opt["p50"], "tokens_opt_p90": d_opt["p90"],
        "predicted_loss_p10": loss_lo, "predicted_loss_p50": loss_mid, "predicted_loss_p90": loss_hi,
        "loss_interval": loss_what, "law": law.name,
    }
    # The forward plan of the chosen (N, D) on these G accelerators: memory and data checks.
    check = sc.model_copy(update={"targets": [f"{n_opt['p50']:.6g}"], "policies": ["fixed"],
                                  "fixed_tokens": f"{d_opt['p50']:.6g}", "cluster_sizes": [gpus],
                                  "accelerators": [acc["accelerator"]], "deadline_days": None, "budget_usd": None})
    plans, langs = build_plans(check, model, accelerator_row, law, bpt, year)
    r = plans.row(0, named=True)
    out.update({k: r[k] for k in ("memory_per_gpu_gib", "min_gpus_for_memory", "fits_in_memory", "checkpoint_gib",
                                  "max_epochs", "warnings")})
    rows = list(langs.iter_rows(named=True))
    out["tokens_per_language"] = {x["language"]: x["tokens"] for x in rows}
    out["bytes_per_language"] = {x["language"]: x["bytes_p50"] for x in rows}
    out["bytes_per_token_source"] = {x["language"]: x["bytes_per_token_source"] for x in rows}
    return out
