-- Views for people (applied last). Names are part of the interface: keep them.

CREATE OR REPLACE VIEW main.latest_run AS
SELECT * FROM meta.pipeline_runs ORDER BY finished_at DESC, pipeline_run_id DESC LIMIT 1;

-- Plans answering for the most recent successful run.
CREATE OR REPLACE VIEW main.latest_plans AS
SELECT p.* FROM plans.plans p
JOIN main.latest_run r ON p.pipeline_run_id = r.results_run_id;

-- p50 GPU-days per target across runs (one line per run that computed plans).
CREATE OR REPLACE VIEW main.plan_history AS
SELECT r.pipeline_run_id, r.finished_at, p.target_params, p.policy, p.accelerator,
       min(p.gpu_days_p50) AS gpu_days_p50, min(p.training_flop) AS training_flop
FROM meta.pipeline_runs r
JOIN plans.plans p ON p.pipeline_run_id = r.pipeline_run_id
GROUP BY ALL
ORDER BY p.target_params, p.policy, p.accelerator, r.finished_at;

-- Training runs with their implied whole-run utilisation (model FLOP / (GPU-hours × peak)).
CREATE OR REPLACE VIEW main.runs_with_efficiency AS
SELECT model, family, org, "year", params, tokens, accelerator, gpu_count, gpu_hours, wall_days,
       training_flop, utilization, origin, source_quality, fit_exclusion_reason, "source"
FROM core.training_runs
WHERE utilization IS NOT NULL
ORDER BY "year", model;
