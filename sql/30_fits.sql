-- fits.*: fitted coefficients and ratios, each with its interval, keyed by pipeline run.

CREATE TABLE IF NOT EXISTS fits.efficiency (
    pipeline_run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,      -- 'fixed' | 'cov' | 'group' | 'variance' | 'stat' | 'weight'
                                -- (weight: a fitted run's final Student-t weight, name = run_key;
                                --  well below 1 = the fit treats the run as an outlier)
    name VARCHAR NOT NULL,
    estimate DOUBLE, std_error DOUBLE, ci_lo DOUBLE, ci_hi DOUBLE, n BIGINT
);

-- The step physics (llmplan/perf/model.py): kind 'term' (a learned efficiency: estimate on its
-- transformed scale, natural = the efficiency itself), 'cov', 'framework' and 'accelerator' (log10
-- multipliers), 'spread' (tau_framework, tau_accelerator, sigma), 'residual' (the whole-run
-- multiplier and goodput residual from public runs, llmplan/goodput.py fit_residual).
CREATE TABLE IF NOT EXISTS fits.step_physics (
    pipeline_run_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, name VARCHAR NOT NULL,
    estimate DOUBLE, "natural" DOUBLE, std_error DOUBLE, n BIGINT
);

-- The step model on benchmark rows it never saw (leave one release / model / framework out).
CREATE TABLE IF NOT EXISTS fits.step_backtests (
    pipeline_run_id VARCHAR NOT NULL, split VARCHAR NOT NULL, framework VARCHAR, source_group VARCHAR, model VARCHAR,
    accelerator VARCHAR, "precision" VARCHAR,
    actual DOUBLE, pred_p10 DOUBLE, pred_p50 DOUBLE, pred_p90 DOUBLE,   -- tokens/s per accelerator
    rule_bf16 DOUBLE, rule_precision DOUBLE,                           -- 40 % of the BF16 / the precision's peak
    abs_log10_err DOUBLE, rule_bf16_abs_log10_err DOUBLE, rule_precision_abs_log10_err DOUBLE,
    inside_p10_p90 BOOLEAN
);

-- Predicted whole-run utilisation per accelerator for a reference run (report and quick reads).
CREATE TABLE IF NOT EXISTS fits.efficiency_by_accelerator (
    pipeline_run_id VARCHAR NOT NULL, accelerator VARCHAR NOT NULL, n_runs BIGINT,
    seen_in_fit BOOLEAN, utilization_p10 DOUBLE, utilization_p50 DOUBLE, utilization_p90 DOUBLE
);

CREATE TABLE IF NOT EXISTS fits.backtests (
    pipeline_run_id VARCHAR NOT NULL, split VARCHAR NOT NULL,
    method VARCHAR,                 -- 'whole-run model' (llmplan.efficiency) | 'step × goodput' (llmplan.step, what plans use)
    run_key VARCHAR, model VARCHAR,
    family VARCHAR, "year" INTEGER, accelerator VARCHAR, actual_gpu_hours DOUBLE,
    pred_p10 DOUBLE, pred_p50 DOUBLE, pred_p90 DOUBLE, rule_gpu_hours DOUBLE,
    abs_log10_err DOUBLE, rule_abs_log10_err DOUBLE, inside_p10_p90 BOOLEAN
);

CREATE TABLE IF NOT EXISTS fits.backtest_summary (
    pipeline_run_id VARCHAR NOT NULL, split VARCHAR NOT NULL, method VARCHAR NOT NULL,
    n BIGINT, median_abs_log10_err DOUBLE, median_abs_pct_err DOUBLE, coverage_p10_p90 DOUBLE
);

CREATE TABLE IF NOT EXISTS fits.bytes_per_token (
    pipeline_run_id VARCHAR NOT NULL, "language" VARCHAR NOT NULL, tokenizer VARCHAR NOT NULL,
    tokenizer_family VARCHAR,   -- sentencepiece | byte-level-bpe | bytes | NULL (unknown)
    kind VARCHAR NOT NULL,      -- 'measured' | 'published' | 'default'
    bytes_per_token DOUBLE, lo DOUBLE, hi DOUBLE, n_sources BIGINT, "bytes" DOUBLE,
    tokens DOUBLE, "source" VARCHAR
);

CREATE TABLE IF NOT EXISTS fits.scaling_law (
    pipeline_run_id VARCHAR NOT NULL, name VARCHAR NOT NULL,
    E DOUBLE, A DOUBLE, B DOUBLE, alpha DOUBLE, beta DOUBLE,
    E_lo DOUBLE, E_hi DOUBLE, A_lo DOUBLE, A_hi DOUBLE, B_lo DOUBLE, B_hi DOUBLE,
    alpha_lo DOUBLE, alpha_hi DOUBLE, beta_lo DOUBLE, beta_hi DOUBLE,
    n_points BIGINT, "source" VARCHAR, fitted_at TIMESTAMPTZ,
    fit_id VARCHAR                  -- a user fit's own id (llmplan fit-scaling), kept when a run carries it over
);

-- Bootstrap draws of a user fit (llmplan fit-scaling): loss intervals come from them.
CREATE TABLE IF NOT EXISTS fits.scaling_law_draws (
    fit_id VARCHAR NOT NULL, draw INTEGER NOT NULL, E DOUBLE, A DOUBLE, B DOUBLE, alpha DOUBLE, beta DOUBLE
);

-- Columns added after a warehouse was first created (CREATE TABLE IF NOT EXISTS leaves old tables as they are).
ALTER TABLE fits.bytes_per_token ADD COLUMN IF NOT EXISTS tokenizer_family VARCHAR;
-- measured rows: sd of log bytes/token for text beyond the scan (llmplan.corpus.spread_log_sd)
ALTER TABLE fits.bytes_per_token ADD COLUMN IF NOT EXISTS log_sd DOUBLE;
ALTER TABLE fits.scaling_law ADD COLUMN IF NOT EXISTS fit_id VARCHAR;
ALTER TABLE fits.backtests ADD COLUMN IF NOT EXISTS method VARCHAR;
ALTER TABLE fits.step_backtests ADD COLUMN IF NOT EXISTS framework VARCHAR;
