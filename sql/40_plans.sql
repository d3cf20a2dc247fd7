-- plans.*: one row per (run, target size, token policy, accelerator, cluster size).

CREATE TABLE IF NOT EXISTS plans.plans (
    pipeline_run_id VARCHAR NOT NULL, target_params DOUBLE NOT NULL, policy VARCHAR NOT NULL,
    accelerator VARCHAR NOT NULL, cluster_gpus BIGINT NOT NULL,
    params DOUBLE,                  -- trained parameters (differs from the target for inference-aware)
    tokens DOUBLE, training_flop DOUBLE,
    gpu_hours_p10 DOUBLE, gpu_hours_p50 DOUBLE, gpu_hours_p90 DOUBLE,
    gpu_days_p50 DOUBLE,
    wall_days_p10 DOUBLE, wall_days_p50 DOUBLE, wall_days_p90 DOUBLE,
    cost_usd_p10 DOUBLE, cost_usd_p50 DOUBLE, cost_usd_p90 DOUBLE, usd_per_hour DOUBLE,
    memory_per_gpu_gib DOUBLE,      -- GiB (2^30 bytes), the unit accelerator memory is sold in
    min_gpus_for_memory BIGINT, fits_in_memory BOOLEAN,
    checkpoint_gib DOUBLE, predicted_loss DOUBLE,
    predicted_loss_p10 DOUBLE, predicted_loss_p90 DOUBLE,   -- over a fitted law's bootstrap draws (NULL for published laws)
    loss_law VARCHAR,
    max_epochs DOUBLE, meets_deadline BOOLEAN, within_budget BOOLEAN, warnings VARCHAR,
    -- how the run is laid out and fed (llmplan/step.py)
    active_params DOUBLE,           -- MoE: FLOPs on these; memory on params
    "precision" VARCHAR, tp BIGINT, pp BIGINT, ep BIGINT, dp BIGINT, zero_stage BIGINT, recompute VARCHAR,
    global_batch_tokens DOUBLE, useful_gpus DOUBLE, max_useful_gpus BIGINT,
    step_mfu_p50 DOUBLE,            -- per-step MFU against the precision's peak
    goodput_p50 DOUBLE,             -- whole-run rate ÷ step rate
    tokens_per_s_per_gpu_p50 DOUBLE, billed_gpu_hours_p50 DOUBLE,
    -- goodput from interruptions and checkpoints (llmplan/goodput.py)
    goodput_p10 DOUBLE, goodput_p90 DOUBLE, goodput_physics DOUBLE,
    goodput_residual DOUBLE,        -- learned factor beyond interruptions and checkpoints (1 = none)
    interruptions_expected DOUBLE, hours_lost_interruptions DOUBLE,
    checkpoint_overhead DOUBLE,     -- δ/τ: share of time writing checkpoints
    checkpoint_interval_hours DOUBLE, mtbf_hours DOUBLE,
    -- the step physics (llmplan/perf): layout beyond tp/pp/ep/dp, step time, HFU, the whole-run
    -- multiplier, the framework assumed (NULL = a new stack) and the model shape used
    vp BIGINT, cp BIGINT, micro_batch BIGINT, step_seconds_p50 DOUBLE, step_hfu_p50 DOUBLE,
    step_tokens_per_s_per_gpu_p50 DOUBLE, whole_run_multiplier DOUBLE, framework VARCHAR,
    layers DOUBLE, hidden DOUBLE, ffn DOUBLE, heads DOUBLE, kv_heads DOUBLE, vocab DOUBLE, experts DOUBLE, top_k DOUBLE
);

-- Per (run, target size, policy, language): the data the plan needs.
CREATE TABLE IF NOT EXISTS plans.plan_languages (
    pipeline_run_id VARCHAR NOT NULL, target_params DOUBLE NOT NULL, policy VARCHAR NOT NULL,
    "language" VARCHAR NOT NULL, share DOUBLE, tokens DOUBLE,
    bytes_p10 DOUBLE, bytes_p50 DOUBLE, bytes_p90 DOUBLE, bytes_per_token DOUBLE,
    bytes_per_token_kind VARCHAR,
    bytes_per_token_source VARCHAR,     -- which measured/published row (or the default) and why, in words
    unique_tokens DOUBLE, epochs DOUBLE, effective_tokens DOUBLE,
    warning VARCHAR
);

-- Columns added after a warehouse was first created (CREATE TABLE IF NOT EXISTS leaves old tables as they are).
ALTER TABLE plans.plan_languages ADD COLUMN IF NOT EXISTS bytes_per_token_source VARCHAR;
-- the measured ratio's weight against its published prior (0: not measured, 1: the measurement alone)
ALTER TABLE plans.plan_languages ADD COLUMN IF NOT EXISTS bytes_per_token_weight DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS memory_per_gpu_gib DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS checkpoint_gib DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS predicted_loss_p10 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS predicted_loss_p90 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS active_params DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS "precision" VARCHAR;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS tp BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS pp BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS ep BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS dp BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS zero_stage BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS recompute VARCHAR;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS global_batch_tokens DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS useful_gpus DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS max_useful_gpus BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS step_mfu_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS goodput_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS tokens_per_s_per_gpu_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS billed_gpu_hours_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS goodput_p10 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS goodput_p90 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS goodput_physics DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS goodput_residual DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS interruptions_expected DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS hours_lost_interruptions DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS checkpoint_overhead DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS checkpoint_interval_hours DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS mtbf_hours DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS vp BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS cp BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS micro_batch BIGINT;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS step_seconds_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS step_hfu_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS step_tokens_per_s_per_gpu_p50 DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS whole_run_multiplier DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS framework VARCHAR;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS layers DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS hidden DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS ffn DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS heads DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS kv_heads DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS vocab DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS experts DOUBLE;
ALTER TABLE plans.plans ADD COLUMN IF NOT EXISTS top_k DOUBLE;
