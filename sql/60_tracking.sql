-- tracking.*: training runs in progress (data/runs_in_progress/<run>/), followed against their plan
-- (llmplan/tracking.py). Written by the nightly refresh's track stage.
CREATE SCHEMA IF NOT EXISTS tracking;

-- The latest log of each run as read (good lines only; bad lines are counted in forecasts).
-- Replaced run by run when its log changes; pipeline_run_id says which run read it.
CREATE TABLE IF NOT EXISTS tracking.progress (
    run_name VARCHAR NOT NULL, log_file VARCHAR, log_sha256 VARCHAR, pipeline_run_id VARCHAR,
    line BIGINT, "time" TIMESTAMPTZ NOT NULL, step BIGINT, tokens DOUBLE NOT NULL, loss DOUBLE,
    predicted_loss DOUBLE               -- the plan's scaling law at these tokens (llmplan.tracking.predicted_loss_at)
);

-- One row per run per pipeline run: the forecast as of the pipeline run (forecast_at), so the ETA's
-- history night by night is a query away. `error` is set (and the numbers empty) when the
-- run's log or run.toml could not be used; other runs are tracked regardless.
CREATE TABLE IF NOT EXISTS tracking.forecasts (
    pipeline_run_id VARCHAR NOT NULL, run_name VARCHAR NOT NULL, error VARCHAR,
    log_file VARCHAR, log_kind VARCHAR, log_lines BIGINT, bad_lines BIGINT, bad_lines_named VARCHAR,
    params DOUBLE, active_params DOUBLE, accelerator VARCHAR, gpus BIGINT,
    "start" TIMESTAMPTZ, as_of TIMESTAMPTZ, deadline TIMESTAMPTZ,
    planned_tokens DOUBLE, tokens_done DOUBLE, fraction_done DOUBLE,
    tokens_per_s_running DOUBLE,        -- while progressing normally
    tokens_per_s_effective DOUBLE,      -- tokens done ÷ time since the start (stalls and restarts included)
    goodput_so_far DOUBLE,              -- running time ÷ elapsed time
    stalls BIGINT, stall_hours DOUBLE, longest_stall_hours DOUBLE, log_age_hours DOUBLE,
    eta_p10 TIMESTAMPTZ, eta_p50 TIMESTAMPTZ, eta_p90 TIMESTAMPTZ,
    hours_left_p10 DOUBLE, hours_left_p50 DOUBLE, hours_left_p90 DOUBLE,
    on_track BOOLEAN,                   -- eta_p50 ≤ deadline (NULL without a deadline)
    p_on_time DOUBLE,                   -- share of forecast draws finishing by the deadline
    gpu_hours_so_far DOUBLE, gpu_hours_end_p50 DOUBLE, cost_usd_so_far DOUBLE, cost_usd_end_p50 DOUBLE,
    usd_per_gpu_hour DOUBLE,
    prior_weight DOUBLE,                -- how much the public-run plan still counts (1 at the start → 0)
    plan_tokens_per_s DOUBLE, plan_goodput DOUBLE, plan_wall_days_p50 DOUBLE,
    loss_observed DOUBLE, loss_predicted_now DOUBLE, loss_predicted_end DOUBLE, loss_law VARCHAR,
    summary VARCHAR,                    -- the artifact's first line (the report card's too)
    forecast_at TIMESTAMPTZ,            -- the moment of the forecast (the pipeline run's start)
    last_line_at TIMESTAMPTZ,           -- the log's last line; as_of = this, or forecast_at when the log is stale
    log_stale BOOLEAN,                  -- last line older than 3 logging intervals: run taken as stopped since then
    deadline_passed BOOLEAN,            -- forecast_at after the deadline with tokens still to go
    interruptions_expected_left DOUBLE, -- mean of the forecast draws (llmplan.goodput prior, updated by the log)
    interruptions_per_hour_prior DOUBLE, interruption_hours_prior DOUBLE
);
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS forecast_at TIMESTAMPTZ;
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS last_line_at TIMESTAMPTZ;
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS log_stale BOOLEAN;
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS deadline_passed BOOLEAN;
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS interruptions_expected_left DOUBLE;
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS interruptions_per_hour_prior DOUBLE;
ALTER TABLE tracking.forecasts ADD COLUMN IF NOT EXISTS interruption_hours_prior DOUBLE;
