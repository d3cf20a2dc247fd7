-- meta.pipeline_runs: one row per successful pipeline run. A failed run leaves the warehouse
-- untouched (it is built in a copy and renamed into place), so failures are logged beside the
-- file in <warehouse>.failed-runs.jsonl and in Prefect.
CREATE TABLE IF NOT EXISTS meta.pipeline_runs (
    pipeline_run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,             -- 'succeeded' | 'reused' (inputs unchanged: results_run_id answers)
    input_hashes VARCHAR,                -- JSON {file: sha256}
    code_version VARCHAR, parameters VARCHAR, fingerprint VARCHAR,
    results_run_id VARCHAR,              -- the run whose fits/plans answer for this one
    report_path VARCHAR, prefect_flow_run_id VARCHAR, summary VARCHAR
);

-- meta.stage_runs: which run computed a stage from which inputs. A later run whose stage inputs
-- hash the same (rows, code version) copies that run's rows instead of recomputing
-- (llmplan.pipeline.fit): the same rule the run applies as a whole, per stage.
CREATE TABLE IF NOT EXISTS meta.stage_runs (
    stage VARCHAR NOT NULL, input_hash VARCHAR NOT NULL, pipeline_run_id VARCHAR NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL
);
