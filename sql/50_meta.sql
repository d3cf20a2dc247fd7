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
