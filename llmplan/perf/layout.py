"""The parallel layout a plan assumes: the candidate that fits memory and gives the shortest
predicted step, searched over TP (within the NVLink domain), PP with virtual stages, CP, EP (MoE),
ZeRO stage (1 = Megatron's distributed optimizer, 3 = FSDP), micro-batch and recompute.

Vectorised: plan rows × candidates are one Polars frame (in chunks, to bound memory); the step
model (llmplan.perf.model) and the memory model (llmplan.perf.memory) run on whole columns and the
best candidate per row is kept. A layout must: divide the cluster (t·p·c | accelerators), keep
TP within one NVLink domain and dividing the attention heads, give each pipeline at least as many
micro-batches as stages and each virtual stage at least one layer, keep EP within the experts
and the data-parallel ranks, and fit in memory (90 % of the accelerator's; llmplan.perf.memory
with the candidate's micro-batches per step, which set what the first stage holds in flight, and
its precision, FP8 caching linear-layer inputs in 1 byte). Among equally fast
layouts the one that keeps fewer accelerators busy wins.

A row may fix part of its layout: columns pin_tp, pin_pp, pin_ep, pin_zero_stage (a published run's
layout, llmplan.step.run_frame; null: searched) keep only the candidates that match, whatever the
choice lists say; the rest is searched as usual. A row's `pp_schedule` (llmplan.perf.model.PP_SCHEDULES;
null: the generic interleaved 1F1B) sets its bubble; a named schedule runs without virtual stages,
DualPipe needs an even PP (DeepSeek-V3 §3.2.1: "pipeline stages and micro-batches be divisible by 2")
and holds two copies of its stages' model states and PP + 1 micro-batches of activations (Table 2).
"""

import numpy as np
import polars as pl

from llmplan.perf import memory as pmem
from llmplan.perf.model import StepPhysics, raw_times, shape_frame, step_seconds

USABLE_FRACTION = 0.9
TP_CHOICES = (1, 2, 4, 8, 16, 32, 64, 72)
PP_CHOICES = (1, 2, 4, 8, 16, 32)
VP_CHOICES = (1, 2, 4, 8)      # 8: what the shipped NeMo and Megatron-Bridge rows run Llama 3.1 405B with (TP 4/8 × PP 8/16)
CP_CHOICES = (1, 2, 4, 8, 16)
EP_CHOICES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ZERO_CHOICES = (1, 3)
MB_CHOICES = (1, 2)
RECOMPUTE_CHOICES = ("none", "selective", "full")
CHUNK = 150_000          # rows × candidates evaluated at once
PINS = ("tp", "pp", "ep", "zero_stage")     # layout columns a row can fix (pin_<name>)


def candidates(moe: bool, long_context: bool, extra: dict | None = None) -> pl.DataFrame:
    """Every layout worth scoring (before the per-row checks); `extra` adds values to a choice
    list (a published run's PP 12, say)."""
    extra = extra or {}
    ch = lambda k, base: sorted(set(base) | set(extra.get(k, ())))  # noqa: E731
    c = pl.DataFrame({"tp": ch("tp", TP_CHOICES)}).join(pl.DataFrame({"pp": ch("pp", PP_CHOICES)}), how="cross") \
        .join(pl.DataFrame({"vp": list(VP_CHOICES)}), how="cross") \
        .join(pl.DataFrame({"cp": list(CP_CHOICES if long_context else (1,))}), how="cross") \
        .join(pl.DataFrame({"ep": ch("ep", EP_CHOICES if moe else (1,))}), how="cross") \
        .join(pl.DataFrame({"zero_stage": ch("zero_stage", ZERO_CHOICES)}), how="cross") \
        .join(pl.DataFrame({"micro_batch": list(MB_CHOICES)}), how="cross") \
        .join(pl.DataFrame({"recompute": list(RECOMPUTE_CHOICES)}), how="cross")
    return c.filter((pl.col("pp") > 1) | (pl.col("vp") == 1)).cast({k: pl.Int64 for k in ("tp", "pp", "vp", "cp", "ep", "zero_stage", "micro_batch")})


def search(rows: pl.DataFrame, model: StepPhysics, fp32_grads: bool = True, flash_attention: bool = True,
           known_framework: bool = True, fixed: dict | None = None) -> pl.DataFrame:
    """For each row (params, active_params, shape columns, precision, seq_len, global_batch_tokens,
    gpu_count = the cluster, accelerator columns, memory_bytes, framework): the best layout and its
    prediction (llmplan.perf.model.StepPhysics.predict columns) plus memory_per_gpu (bytes),
    layout_fits, useful_gpus (accelerators the batch keeps busy) and max_useful_gpus. `fixed`
    pins layout columns (e.g. {"tp": 8}) for every row. A row where nothing fits keeps the
    least-memory candidate with layout_fits false."""
    if rows.height == 0:
        return rows
    r = rows.with_row_index("_row")
    moe = bool((r["params"] > r["active_params"].fill_null(r["params"]) * 1.0001).any()) if "active_params" in r.columns else False
    long_ctx = bool((r["seq_len"] >= 16384).any())
    pins = [k for k in PINS if f"pin_{k}" in r.columns]
    cand = candidates(moe, long_ctx, {k: r[f"pin_{k}"].drop_nulls().cast(pl.Int64).unique().to_list() for k in pins})
    if fixed:
        for k, v in fixed.items():
            if v is not None:
                cand = cand.filter(pl.col(k) == v) if k in cand.columns else cand
    # The shape once per row, joined to every candidate.
    sh = shape_frame(r)
    shape_cols = pl.DataFrame({k: np.asarray(v, float) for k, v in sh.items()})
    r = pl.concat([r.drop([c for c in shape_cols.columns if c in r.columns]), shape_cols], how="horizontal")
    r = r.drop([c for c in cand.columns if c in r.columns])
    sched = pl.col("pp_schedule").fill_null("") if "pp_schedule" in r.columns else pl.lit("")
    per_chunk = max(CHUNK // max(cand.height, 1), 1)
    best = []
    for start in range(0, r.height, per_chunk):        # chunks bound memory; the work inside is vectorised
        x = r.slice(start, per_chunk).join(cand, how="cross")
        dp = pl.col("gpu_count") / (pl.col("tp") * pl.col("pp") * pl.col("cp"))
        x = x.with_columns(dp.floor().alias("dp")).filter(
            ((pl.col("gpu_count") % (pl.col("tp") * pl.col("pp") * pl.col("cp"))) == 0)
            & (pl.col("tp") <= pl.col("nvlink_domain").fill_null(8))
            & ((pl.col("heads") % pl.col("tp")) == 0)
            & (pl.col("layers") >= pl.col("pp") * pl.col("vp"))
            & (pl.col("ep") <= pl.col("experts")) & ((pl.col("experts") % pl.col("ep")) == 0)
            & (pl.col("ep") <= pl.col("dp") * pl.col("cp")) & (((pl.col("dp") * pl.col("cp")) % pl.col("ep")) == 0)
            & pl.all_horizontal(pl.lit(True), *[pl.col(f"pin_{k}").is_null() | (pl.col(k) == pl.col(f"pin_{k}")) for k in pins])
            & ((sched == "") | (pl.col("vp") == 1)) & ((sched != "dualpipe") | ((pl.col("pp") % 2) == 0)))
        if x.height == 0:
            continue
        seqs = (pl.col("global_batch_tokens") / (pl.col("seq_len") * pl.col("micro_batch"))).floor().clip(1)
        x = x.with_columns(pl.min_horizontal("dp", seqs).alias("dp"))
        m = pl.col("global_batch_tokens") / (pl.col("seq_len") * pl.col("micro_batch") * pl.col("dp"))
        x = x.filter((pl.col("pp") == 1) | (m >= pl.col("pp")))
        if x.height == 0:
            continue
        shape = {k: x[k].to_numpy().astype(float) for k in sh}
        rt = raw_times(x, shape)
        mem = pmem.layout_bytes(shape, x["seq_len"].to_numpy().astype(float), x["micro_batch"].to_numpy().astype(float),
                                x["tp"].to_numpy().astype(float), x["pp"].to_numpy().astype(float),
                                x["vp"].to_numpy().astype(float), x["dp"].to_numpy().astype(float),
                                x["cp"].to_numpy().astype(float), x["ep"].to_numpy().astype(float),
                                x["zero_stage"].to_numpy(), x["recompute"].to_numpy().astype(str), fp32_grads, flash_attention,
                                n_micro=rt["m"], fp8=rt["fp8"])
        stp = step_seconds(rt, model.eta)["step"]
        need = mem["total"] + np.where(rt["dualpipe"], mem["states"] + mem["activations"] / x["pp"].to_numpy(), 0.0)
        fits = need <= USABLE_FRACTION * x["memory_bytes"].to_numpy()
        score = np.where(fits, -np.log(stp) - 1e-9 * np.log(rt["used"]), -np.inf)
        x = x.with_columns(pl.Series("_score", score), pl.Series("_need", need), pl.Series("_fits", fits),
                           pl.Series("useful_gpus", rt["used"]))
        best.append(x.sort("_row", "_score", "_need", descending=[False, True, False])
                    .group_by("_row", maintain_order=True).first())
    chosen = pl.concat(best, how="vertical_relaxed") if best else r.head(0).join(cand.head(0), how="cross")
    out = r.select("_row").join(chosen, on="_row", how="left")
    missing = out.filter(pl.col("tp").is_null())["_row"]
    if missing.len():                                    # no candidate divides the cluster: one-way, flagged
        one = r.filter(pl.col("_row").is_in(missing.implode())).with_columns(
            *[pl.lit(v, pl.Int64).alias(k) for k, v in (("tp", 1), ("pp", 1), ("vp", 1), ("cp", 1), ("ep", 1), ("zero_stage", 3),
                                                         ("micro_batch", 1))],
            pl.lit("full").alias("recompute"), pl.col("gpu_count").alias("dp"))
        shape = {k: one[k].to_numpy().astype(float) for k in sh}
        ones = np.ones(one.height)
        need = pmem.layout_bytes(shape, one["seq_len"].to_numpy().astype(float), ones, ones, ones, ones,
                                 one["dp"].to_numpy().astype(float), ones, ones, np.full(one.height, 3), np.full(one.height, "full"),
                                 fp32_grads, flash_attention)["total"]
        one = one.with_columns(pl.Series("_need", need), pl.lit(False).alias("_fits"), pl.lit(-np.inf).alias("_score"),
                               pl.Series("useful_gpus", raw_times(one, shape)["used"]))
        out = pl.concat([out.filter(pl.col("tp").is_not_null()), one], how="diagonal_relaxed").sort("_row")
    pred = model.predict(out, known_framework=known_framework)
    seqs = (pl.col("global_batch_tokens") / (pl.col("seq_len") * pl.col("micro_batch"))).floor().clip(1)
    return pred.with_columns(
        pl.col("dp").cast(pl.Int64), pl.col("_need").alias("memory_per_gpu"), pl.col("_fits").fill_null(False).alias("layout_fits"),
        (pl.col("tp") * pl.col("pp") * pl.col("cp") * seqs).cast(pl.Int64).alias("max_useful_gpus"),
    ).drop("_row", "_score", "_need", "_fits")
