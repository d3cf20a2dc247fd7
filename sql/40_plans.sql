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
    memory_per_gpu_gb DOUBLE, min_gpus_for_memory BIGINT, fits_in_memory BOOLEAN,
    checkpoint_gb DOUBLE, predicted_loss DOUBLE, loss_law VARCHAR,
    max_epochs DOUBLE, meets_deadline BOOLEAN, within_budget BOOLEAN, warnings VARCHAR
);

-- Per (run, target size, policy, language): the data the plan needs.
CREATE TABLE IF NOT EXISTS plans.plan_languages (
    pipeline_run_id VARCHAR NOT NULL, target_params DOUBLE NOT NULL, policy VARCHAR NOT NULL,
    "language" VARCHAR NOT NULL, share DOUBLE, tokens DOUBLE,
    bytes_p10 DOUBLE, bytes_p50 DOUBLE, bytes_p90 DOUBLE, bytes_per_token DOUBLE,
    bytes_per_token_kind VARCHAR, unique_tokens DOUBLE, epochs DOUBLE, effective_tokens DOUBLE,
    warning VARCHAR
);
