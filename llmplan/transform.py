"""raw → core: typed, unit-normalised frames (Polars). Pure functions of the ingested frames.

Training runs come from two places: the curated file (data/training_runs/) and Epoch AI's
notable-models CSV (data/epoch/). They are merged into one row per run; when both describe the
same model the curated row is kept (it cites the primary source, or names the compilation it
quotes) and the Epoch row is recorded in `merge_note`. Every row the efficiency fit cannot use
carries a `fit_exclusion_reason` instead of being dropped.
"""


import polars as pl

from llmplan.accelerators import alias_table, normalise
from llmplan.flops import training_flop

# Epoch's `Training dataset size` is in tokens for most language rows of this snapshot and in
# words for some older ones; 0.75 words per token is Epoch's own conversion ("2 trillion tokens
# ~= 1.5 trillion words"). Which one a row uses is decided from the row (epoch_tokens()).
TOKENS_PER_WORD = 4.0 / 3.0
# The two readings of a size differ by 4/3, so a band of ×/÷ √(4/3) ≈ 1.155 around Epoch's own
# compute-implied tokens C/(6·N) can hold only one of them: inside it the compute column decides.
UNIT_BAND = TOKENS_PER_WORD ** 0.5
MIN_PARAMS = 1e8          # smaller Epoch rows are research models, not pretraining-scale runs
UTIL_RANGE = (0.02, 0.80)   # outside this, a row's fields contradict each other (mixed units, MoE totals …)
# llmplan plans text-only pretraining: rows whose Domain also lists vision, images, robotics or
# games train on other data with other pipelines.
NOT_TEXT_ONLY = r"(?i)vision|image|multimodal|robotics|games|video|audio|speech"


# A family is one team's codebase: runs that share it share a way of training and of counting
# hours, so the efficiency fit treats them as one group. Names alone over-merge (OpenAI's GPT-3
# and EleutherAI's GPT-NeoX both start with "gpt"), so the key is name stem @ organisation, and
# these joins record teams that trained differently named models with one codebase:
CODEBASE_JOINS = {
    # Pythia and GPT-NeoX-20B: both trained by EleutherAI with its gpt-neox library (Pythia README).
    "pythia@eleutherai": "gpt-neox@eleutherai", "gpt@eleutherai": "gpt-neox@eleutherai",
    # Megatron-Turing NLG: Microsoft and NVIDIA, trained with NVIDIA's Megatron-LM (+ DeepSpeed).
    "megatron@microsoft": "megatron@nvidia",
}


def family_of(model: pl.Expr, org: pl.Expr | None = None) -> pl.Expr:
    """'Llama 2 70B' by Meta → 'llama@meta'; GPT-3 by OpenAI → 'gpt@openai', GPT-NeoX-20B by
    EleutherAI → 'gpt-neox@eleutherai' (CODEBASE_JOINS). Stem = the leading letters of the name
    (the whole name when it does not start with a letter); organisation = the first word of the
    first organisation listed ('Google Research,Google Brain' → 'google')."""
    stem = pl.coalesce(model.str.to_lowercase().str.extract(r"^([a-z]+)", 1), model.str.to_lowercase())
    if org is None:
        return stem
    org_key = org.str.to_lowercase().str.extract(r"^\s*([a-z0-9]+)", 1)
    key = pl.when(org_key.is_null()).then(stem).otherwise(pl.concat_str(stem, pl.lit("@"), org_key))
    return key.replace(CODEBASE_JOINS)


def epoch_tokens(size: pl.Expr, epochs: pl.Expr, compute: pl.Expr, params: pl.Expr,
                 notes: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(tokens, rule) for an Epoch row: is `Training dataset size` tokens or words? In order:
    1. the notes carry Epoch's unit marker, "[tokens]" or "[words]";
    2. the notes state the size in tokens (AlexaTM: "… mC4 tokens = 1319000000000 tokens");
    3. Epoch's own compute column: size × epochs is within ×/÷ √(4/3) of C/(6·N) read as tokens,
       or read as words (× 4/3) — the band holds at most one reading;
    4. the notes speak only of words — weak: Epoch converted many such rows to tokens and kept
       the old note (LaMDA's "1.56T words" sits beside 2.08e12 = 1.56T × 4/3);
    5. otherwise tokens, the usual unit of this snapshot.
    Words become tokens × 4/3; the rule used is kept in `tokens_rule`."""
    n = (notes.fill_null("")).str.to_lowercase()
    seen = size * epochs.fill_null(1.0)
    ratio = seen / (compute / (6.0 * params))
    inside = lambda r: (r >= 1.0 / UNIT_BAND) & (r < UNIT_BAND)  # noqa: E731
    rule = (
        pl.when(n.str.contains(r"\[tokens?\]")).then(pl.lit("marker:tokens"))
        .when(n.str.contains(r"\[words?\]")).then(pl.lit("marker:words"))
        .when(n.str.contains("token")).then(pl.lit("notes:tokens"))
        .when(inside(ratio)).then(pl.lit("compute:tokens"))
        .when(inside(ratio * TOKENS_PER_WORD)).then(pl.lit("compute:words"))
        .when(n.str.contains("word")).then(pl.lit("notes:words"))
        .otherwise(pl.lit("default:tokens"))
    )
    tokens = pl.when(rule.str.ends_with(":words")).then(seen * TOKENS_PER_WORD).otherwise(seen)
    return tokens, rule


def accelerators(acc: pl.DataFrame) -> pl.DataFrame:
    return acc.select(
        "accelerator", "vendor",
        (pl.col("peak_dense_bf16_tflops") * 1e12).alias("peak_flops"),
        (pl.col("peak_dense_fp8_tflops") * 1e12).alias("peak_fp8_flops"),
        (pl.col("memory_gb") * 2.0 ** 30).alias("memory_bytes"),     # an "80 GB" accelerator has 80 GiB
        (pl.col("hbm_bandwidth_tbs") * 1e12).alias("hbm_bandwidth_bytes_s"),
        pl.col("on_demand_usd_per_hour_median").alias("usd_per_hour"),
        "price_note", "notes",
        (pl.col("nvlink_domain") if "nvlink_domain" in acc.columns else pl.lit(None, pl.Int64)).alias("nvlink_domain"),
        "source_file", "source_line",
        # Datasheets print scale-up bandwidth with both directions summed: one direction is half.
        (_opt(acc, "nvlink_bandwidth_gbs", pl.Float64) * 1e9 / 2.0).alias("nvlink_bytes_per_s"),
        (_opt(acc, "scaleout_gbits_per_gpu", pl.Float64) * 1e9 / 8.0).alias("scaleout_bytes_per_s"),
        _opt(acc, "interconnect_source", pl.Utf8).alias("interconnect_source"),
    )


def _opt(frame: pl.DataFrame, column: str, dtype) -> pl.Expr:
    """An optional input column, NULL when the file predates it."""
    return pl.col(column) if column in frame.columns else pl.lit(None, dtype)


def aliases(acc: pl.DataFrame, al: pl.DataFrame) -> pl.DataFrame:
    return alias_table(acc, al.select("alias", "accelerator", "flag"))


def _with_efficiency(runs: pl.DataFrame, acc: pl.DataFrame) -> pl.DataFrame:
    peaks = acc.select("accelerator", "peak_flops")
    return (
        runs.join(peaks, on="accelerator", how="left")
        .with_columns(training_flop(pl.col("params"), pl.col("active_params"), pl.col("tokens")).alias("training_flop"))
        .with_columns(
            (pl.col("training_flop") / (pl.col("gpu_hours") * 3600.0)).alias("achieved_flops_per_gpu"),
        )
        .with_columns((pl.col("achieved_flops_per_gpu") / pl.col("peak_flops")).alias("utilization"))
    )


# What a curated run published of its configuration (data/training_runs/, optional columns).
RUN_CONFIG_COLUMNS = {"seq_len": pl.Int64, "global_batch_tokens": pl.Float64, "shape_model": pl.Utf8, "config_source": pl.Utf8,
                      "run_tp": pl.Int64, "run_pp": pl.Int64, "run_ep": pl.Int64, "run_zero_stage": pl.Int64,
                      "pp_schedule": pl.Utf8, "layout_source": pl.Utf8}


def curated_runs(tr: pl.DataFrame, acc: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    runs = normalise(tr, "gpu_type", table).select(
        "model", family_of(pl.col("model"), pl.col("org")).alias("family"), "org", pl.col("year").cast(pl.Int32),
        (pl.col("params_b") * 1e9).alias("params"), (pl.col("active_params_b") * 1e9).alias("active_params"),
        (pl.col("tokens_b") * 1e9).alias("tokens"), pl.lit("curated:tokens").alias("tokens_rule"),
        pl.col("gpu_type").alias("accelerator_raw"), "accelerator", "accelerator_flag",
        pl.col("gpu_count").cast(pl.Float64),
        pl.coalesce(pl.col("gpu_hours"), pl.col("gpu_count") * pl.col("wall_days") * 24.0).alias("gpu_hours"),
        "wall_days",
        pl.lit("curated").alias("origin"),
        pl.when(pl.col("notes").str.contains(r"(?i)^\s*\[primary")).then(pl.lit("primary"))
        .when(pl.col("notes").str.contains(r"(?i)^\s*\[secondary")).then(pl.lit("secondary"))
        .otherwise(pl.lit("unstated")).alias("source_quality"),
        "source", pl.col("notes").alias("_notes"),
        (pl.col("precision") if "precision" in tr.columns else pl.lit(None, pl.Utf8)).alias("precision"),
        *[(pl.col(c) if c in tr.columns else pl.lit(None, t)).cast(t).alias(c) for c, t in RUN_CONFIG_COLUMNS.items()],
        "source_file", "source_line",
    )
    runs = _with_efficiency(runs, acc)
    reason = (
        pl.when(pl.col("accelerator").is_null()).then(pl.lit("accelerator has no specs in the accelerator table"))
        .when(pl.col("tokens").is_null()).then(pl.lit("missing tokens"))
        .when(pl.col("gpu_hours").is_null()).then(pl.lit("missing GPU-hours"))
        .when(pl.col("_notes").str.contains(r"(?i)continual pretraining|not from scratch")).then(pl.lit("continual pretraining, not from scratch"))
        .otherwise(None)
    )
    return runs.with_columns(reason.alias("fit_exclusion_reason"), pl.lit(None, pl.Utf8).alias("merge_note")).drop("_notes")


def epoch_runs(ep: pl.DataFrame, acc: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    size_text = pl.col("training_dataset_size_total").str.strip_chars()
    size = size_text.cast(pl.Float64, strict=False)
    tokens, rule = epoch_tokens(size, pl.col("epochs"), pl.col("training_compute_flop"), pl.col("parameters"),
                                pl.col("dataset_size_notes"))
    runs = normalise(ep, "training_hardware", table).select(
        "model", family_of(pl.col("model"), pl.col("organization")).alias("family"), pl.col("organization").alias("org"),
        pl.col("publication_date").str.slice(0, 4).cast(pl.Int32, strict=False).alias("year"),
        pl.col("parameters").alias("params"), pl.lit(None, pl.Float64).alias("active_params"),
        tokens.alias("tokens"), pl.when(size.is_not_null()).then(rule).alias("tokens_rule"),
        pl.col("training_hardware").alias("accelerator_raw"), "accelerator", "accelerator_flag",
        "accelerator_known",
        pl.col("hardware_quantity").alias("gpu_count"),
        (pl.col("training_time_hours") * pl.col("hardware_quantity")).alias("gpu_hours"),
        (pl.col("training_time_hours") / 24.0).alias("wall_days"),
        pl.lit("epoch").alias("origin"), pl.lit("epoch").alias("source_quality"),
        pl.concat_str(pl.lit("Epoch AI Notable AI Models: "), pl.col("reference").fill_null(""), pl.lit(" "),
                      pl.col("link").fill_null("")).alias("source"),
        "domain", "base_model", "confidence", pl.col("training_dataset_size_total").alias("_size_text"),
        size.alias("_size"), "source_file", "source_line",
    )
    runs = _with_efficiency(runs, acc)
    reason = (
        pl.when(~pl.col("domain").fill_null("").str.contains("Language")).then(pl.lit("not a language model (Domain)"))
        .when(pl.col("domain").str.contains(NOT_TEXT_ONLY)).then(pl.lit("multimodal model (Domain beyond Language)"))
        .when(pl.col("base_model").is_not_null()).then(pl.lit("fine-tune of a base model"))
        .when(pl.col("params").is_null()).then(pl.lit("missing parameters"))
        .when(pl.col("_size_text").is_null()).then(pl.lit("missing dataset size"))
        .when(pl.col("_size").is_null()).then(pl.lit("dataset size lists several values"))
        .when(pl.col("gpu_hours").is_null()).then(pl.lit("missing training time or hardware quantity"))
        .when(pl.col("accelerator_raw").is_null()).then(pl.lit("missing training hardware"))
        .when(~pl.col("accelerator_known")).then(pl.lit("hardware not in the accelerator table"))
        .when(pl.col("accelerator").is_null()).then(pl.lit("accelerator has no specs in the accelerator table"))
        .when(pl.col("params") < MIN_PARAMS).then(pl.lit("below 100M parameters"))
        .when(pl.col("confidence") == "Speculative").then(pl.lit("speculative estimate (Epoch confidence)"))
        .when(~pl.col("utilization").is_between(*UTIL_RANGE)).then(pl.lit("implied utilisation outside 2–80% (fields disagree)"))
        .otherwise(None)
    )
    return runs.with_columns(reason.alias("fit_exclusion_reason"), pl.lit(None, pl.Utf8).alias("merge_note")).drop(
        "domain", "base_model", "confidence", "_size_text", "_size", "accelerator_known"
    )


def _name_key(model: pl.Expr) -> pl.Expr:
    return model.str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")


def merge_runs(curated: pl.DataFrame, epoch: pl.DataFrame) -> pl.DataFrame:
    """One row per run. Same model = one name key a prefix of the other, parameters within 10%
    and year within one; the curated row wins and notes the Epoch line it absorbed."""
    c = curated.with_columns(_name_key(pl.col("model")).alias("_ck"), pl.int_range(pl.len()).alias("_ci"))
    e = epoch.with_columns(_name_key(pl.col("model")).alias("_ek"), pl.int_range(pl.len()).alias("_ei"))
    pairs = (
        c.select("_ci", "_ck", pl.col("params").alias("_cp"), pl.col("year").alias("_cy"))
        .join(e.select("_ei", "_ek", pl.col("params").alias("_ep"), pl.col("year").alias("_ey"),
                       pl.col("model").alias("_em"), pl.col("source_line").alias("_el")), how="cross")
        .filter(
            (pl.col("_ck").str.starts_with(pl.col("_ek")) | pl.col("_ek").str.starts_with(pl.col("_ck")))
            & ((pl.col("_cp") / pl.col("_ep")).log().abs() < 0.1)
            & ((pl.col("_cy") - pl.col("_ey")).abs() <= 1)
        )
    )
    notes = pairs.group_by("_ci").agg(
        pl.concat_str(pl.lit("also in Epoch AI as "), pl.col("_em"), pl.lit(" (line "), pl.col("_el").cast(pl.Utf8),
                      pl.lit(")")).str.join("; ").alias("_note")
    )
    c = c.join(notes, on="_ci", how="left").with_columns(
        pl.when(pl.col("_note").is_not_null())
        .then(pl.concat_str(pl.col("_note"), pl.lit("; curated row kept ("), pl.col("source_quality"), pl.lit(" source)")))
        .otherwise(pl.col("merge_note")).alias("merge_note")
    )
    e = e.filter(~pl.col("_ei").is_in(pairs["_ei"].implode()))
    runs = pl.concat([c.drop("_ck", "_ci", "_note"), e.drop("_ek", "_ei")], how="diagonal_relaxed")
    # Run key: the model name, made unique where two sources keep different runs of one name.
    runs = runs.with_columns(pl.col("model").alias("run_key"))
    runs = runs.with_columns(
        pl.when(pl.col("run_key").is_duplicated())
        .then(pl.concat_str(pl.col("run_key"), pl.lit(" ["), pl.col("origin"), pl.lit(":"), pl.col("source_line").cast(pl.Utf8), pl.lit("]")))
        .otherwise(pl.col("run_key")).alias("run_key")
    )
    return runs.with_columns(pl.lit(None, pl.Float64).alias("attention_flop"))


def throughput(tp: pl.DataFrame, acc: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    peaks = acc.select("accelerator", "peak_flops")
    t = normalise(tp, "gpu", table).join(peaks, on="accelerator", how="left")
    return t.select(
        "model", pl.col("num_params").alias("params"), pl.col("seq_len").cast(pl.Int32),
        pl.col("n_gpus").cast(pl.Int32), "accelerator", "precision", "peak_flops",
        pl.col("throughput_tokens_s_gpu").alias("tokens_per_s_gpu"),
        (pl.col("mfu") / 100.0).alias("mfu"), (pl.col("hfu") / 100.0).alias("hfu"),
        (pl.col("throughput_tokens_s_gpu") * 6.0 * pl.col("num_params") / pl.col("peak_flops")).alias("mfu_6n"),
        # MosaicML's MFU counts attention too (12·L·s·d per token): the table itself gives that term.
        (pl.col("mfu") / 100.0 * pl.col("peak_flops") / pl.col("throughput_tokens_s_gpu") - 6.0 * pl.col("num_params"))
        .alias("attention_flop_per_token"),
        (pl.col("activation_checkpointing").str.to_lowercase() == "true").alias("activation_checkpointing"),
        pl.when(pl.col("precision").fill_null("").str.contains("fp8"))
        .then(pl.lit("FP8 step: MFU is not comparable with the BF16 peak"))
        .otherwise(None).alias("fit_exclusion_reason"),
        "source_file", "source_line",
        _opt(tp, "framework", pl.Utf8).fill_null("llm-foundry").alias("framework"),
    )


def step_benchmarks(sb: pl.DataFrame | None, tp: pl.DataFrame | None, acc: pl.DataFrame, table: pl.DataFrame,
                    shapes: pl.DataFrame | None = None) -> pl.DataFrame:
    """Every per-step benchmark row in one shape (llmplan.step fits it): llmplan's own format
    (data/throughput/*.csv with tokens_per_s_per_gpu) and MosaicML's llm-foundry tables (FSDP,
    no tensor or pipeline parallelism; activation checkpointing = full recompute). step_mfu =
    tokens/s/GPU × 6·N_active ÷ the peak of the precision the step ran in."""
    parts = []
    if sb is not None and sb.height:
        parts.append(normalise(sb, "gpu_type", table).select(
            pl.coalesce("source_group", pl.col("source_file").str.extract(r"([^/]+)\.csv$", 1)).alias("source_group"),
            "source", "model", (pl.col("params_b") * 1e9).alias("params"),
            (pl.coalesce("active_params_b", "params_b") * 1e9).alias("active_params"),
            "accelerator", pl.col("gpu_count").cast(pl.Float64), "precision", pl.col("seq_len").cast(pl.Int64),
            "global_batch_tokens", pl.col("micro_batch").fill_null(1).cast(pl.Int64), pl.col("tp").cast(pl.Int64),
            pl.col("pp").cast(pl.Int64), pl.col("cp").fill_null(1).cast(pl.Int64), pl.col("ep").fill_null(1).cast(pl.Int64),
            pl.col("fsdp").fill_null(0).cast(pl.Int64), pl.lit("none").alias("recompute"), "tokens_per_s_per_gpu",
            "source_file", "source_line",
            # A user's own CSV without a framework column: its source_group (else file name) names the stack.
            pl.coalesce(_opt(sb, "framework", pl.Utf8), "source_group",
                        pl.col("source_file").str.extract(r"([^/]+)\.csv$", 1)).alias("framework"),
            # No pipeline → one stage; a pipeline without a stated VP stays NULL.
            pl.when(pl.col("pp") == 1).then(pl.coalesce("vp", pl.lit(1, pl.Int64))).otherwise(pl.col("vp"))
            .cast(pl.Int64).alias("vp"),
            pl.coalesce(_opt(sb, "zero_stage", pl.Int64), pl.when(pl.col("fsdp") == 1).then(pl.lit(3, pl.Int64)))
            .cast(pl.Int64).alias("zero_stage"),
            _opt(sb, "global_batch", pl.Float64).alias("global_batch"),
            _opt(sb, "model_tflops_per_gpu", pl.Float64).alias("model_tflops_per_gpu"),
            _opt(sb, "mfu", pl.Float64).alias("published_mfu")))
    if tp is not None and tp.height:
        parts.append(normalise(tp, "gpu", table).select(
            pl.lit("llm-foundry").alias("source_group"),
            pl.concat_str(pl.lit("MosaicML llm-foundry benchmark tables: "), pl.col("section").fill_null("")).alias("source"),
            "model", pl.col("num_params").alias("params"), pl.col("num_params").alias("active_params"), "accelerator",
            pl.col("n_gpus").cast(pl.Float64).alias("gpu_count"),
            pl.when(pl.col("precision").fill_null("").str.contains("fp8")).then(pl.lit("fp8")).otherwise(pl.lit("bf16")).alias("precision"),
            pl.col("seq_len").cast(pl.Int64), pl.col("global_batch_tokens"),
            pl.col("micro_batch_size").fill_null(1).cast(pl.Int64).alias("micro_batch"),
            pl.lit(1, pl.Int64).alias("tp"), pl.lit(1, pl.Int64).alias("pp"), pl.lit(1, pl.Int64).alias("cp"),
            pl.lit(1, pl.Int64).alias("ep"), pl.lit(1, pl.Int64).alias("fsdp"),
            pl.when(pl.col("activation_checkpointing").str.to_lowercase() == "true").then(pl.lit("full"))
            .otherwise(pl.lit("none")).alias("recompute"),
            pl.col("throughput_tokens_s_gpu").alias("tokens_per_s_per_gpu"), "source_file", "source_line",
            _opt(tp, "framework", pl.Utf8).fill_null("llm-foundry").alias("framework"),
            pl.lit(1, pl.Int64).alias("vp"),
            # PyTorch FSDP: FULL_SHARD shards weights, gradients and optimizer states (ZeRO-3);
            # SHARD_GRAD_OP keeps weights whole between forward and backward (ZeRO-2).
            pl.when(pl.col("sharding_strategy") == "FULL_SHARD").then(pl.lit(3, pl.Int64))
            .when(pl.col("sharding_strategy") == "SHARD_GRAD_OP").then(pl.lit(2, pl.Int64)).alias("zero_stage"),
            pl.col("global_batch_size").alias("global_batch"),
            pl.col("model_tflop").alias("model_tflops_per_gpu"),
            (pl.col("mfu") / 100.0).alias("published_mfu")))
    if not parts:
        return None
    a = acc.select("accelerator", pl.col("peak_flops").alias("peak_bf16_flops"), "peak_fp8_flops", "nvlink_domain")
    f = pl.concat(parts, how="vertical_relaxed").join(a, on="accelerator", how="left")
    from llmplan.shapes import with_shapes
    f = with_shapes(f, shapes)
    f = f.with_columns(pl.when(pl.col("precision") == "fp8").then(pl.col("peak_fp8_flops")).otherwise(pl.col("peak_bf16_flops"))
                       .alias("peak_flops"))
    dp = pl.col("gpu_count") / (pl.col("tp") * pl.col("pp") * pl.col("cp"))
    m = pl.col("global_batch_tokens") / (pl.col("micro_batch") * pl.col("seq_len") * dp)
    bubble = pl.when(pl.col("pp") > 1).then(m / (m + pl.col("pp") - 1)).otherwise(1.0).fill_null(1.0)
    rc = pl.col("recompute").replace_strict({"none": 1.0, "selective": 0.97, "full": 0.75}, return_dtype=pl.Float64)
    return f.with_columns(
        (pl.col("tokens_per_s_per_gpu") * 6.0 * pl.col("active_params") / pl.col("peak_flops")).alias("step_mfu"),
        (bubble * rc).alias("layout_eff"),
        pl.when(pl.col("accelerator").is_null()).then(pl.lit("accelerator has no specs in the accelerator table"))
        .when(pl.col("peak_flops").is_null()).then(pl.lit("no FP8 peak for this accelerator in the accelerator table"))
        .when(pl.col("model").str.to_lowercase().str.contains("tokendrop"))
        .then(pl.lit("token-dropping MoE: another training algorithm than dropless MoE"))
        .otherwise(None).alias("fit_exclusion_reason"),
    )


_LANG = [(r"(?i)^japanese", "ja"), (r"(?i)^(mostly )?english", "en"), (r"(?i)^code", "code")]


def language_code(raw: pl.Expr) -> pl.Expr:
    expr = pl.lit("mixed")
    for pattern, code in reversed(_LANG):
        expr = pl.when(raw.str.contains(pattern) & ~raw.str.contains(r"(?i)\+ *(english|japanese)")).then(pl.lit(code)).otherwise(expr)
    return expr


def corpus_published(cp: pl.DataFrame) -> pl.DataFrame:
    """Published corpus sizes. A bytes/token ratio only where the size is the UTF-8 text itself:
    a compressed download (SlimPajama, Dolma, FineWeb) or a cache (OpenWebText's arrow files)
    gives 1.4–6 'bytes'/token that say nothing of the text."""
    kind = (pl.col("size_kind") if "size_kind" in cp.columns else pl.lit(None, pl.Utf8)).fill_null("unknown")
    family = pl.col("tokenizer_family") if "tokenizer_family" in cp.columns else pl.lit(None, pl.Utf8)
    return cp.select(
        "corpus", language_code(pl.col("language").fill_null("")).alias("language"), pl.col("language").alias("language_raw"),
        (pl.col("bytes_gb") * 1e9).alias("bytes"), (pl.col("tokens_b") * 1e9).alias("tokens"),
        kind.alias("size_kind"),
        pl.when(kind == "utf8_text").then(pl.col("bytes_gb") / pl.col("tokens_b")).alias("bytes_per_token"),
        "tokenizer", family.alias("tokenizer_family"), "source", "source_file", "source_line",
    )


def unmapped(runs: pl.DataFrame) -> pl.DataFrame:
    return (
        runs.filter(pl.col("fit_exclusion_reason") == "hardware not in the accelerator table")
        .group_by("origin", pl.col("accelerator_raw").alias("name")).agg(pl.len().cast(pl.Int64).alias("n_rows"))
        .sort("n_rows", descending=True)
    )


def build_core(data: dict) -> dict[str, pl.DataFrame]:
    """All core.* frames from the ingested data (see llmplan.ingest.read_all)."""
    acc = accelerators(data["accelerators"].typed)
    table = aliases(data["accelerators"].typed, data["accelerator_aliases"].typed)
    cur = curated_runs(data["training_runs"].typed, acc, table)
    ep = epoch_runs(data["epoch"].typed, acc, table) if data["epoch"].typed.height else cur.clear()
    runs = merge_runs(cur, ep)
    from llmplan.shapes import core_shapes
    ms = data["model_shapes"].typed if "model_shapes" in data else None
    shapes = core_shapes(ms) if ms is not None and ms.height else None
    return {
        "core.accelerators": acc,
        "core.accelerator_aliases": table,
        "core.training_runs": runs,
        "core.throughput": throughput(data["throughput"].typed, acc, table) if data["throughput"].typed.height else None,
        "core.step_benchmarks": step_benchmarks(data["step_benchmarks"].typed, data["throughput"].typed, acc, table, shapes),
        "core.model_shapes": shapes,
        "core.corpus_published": corpus_published(data["corpus_published"].typed) if data["corpus_published"].typed.height else None,
        "core.unmapped_accelerators": unmapped(runs),
    }
