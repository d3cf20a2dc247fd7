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
-- fit_weight: the run's Student-t weight in the latest efficiency fit (1 ≈ typical; near 0.2 the
-- fit treats the record as an outlier); NULL when the run was excluded from the fit.
SELECT r.model, r.family, r.org, r."year", r.params, r.tokens, r.accelerator, r.gpu_count, r.gpu_hours,
       r.wall_days, r.training_flop, r.utilization, w.estimate AS fit_weight, r.origin, r.source_quality,
       r.fit_exclusion_reason, r."source"
FROM core.training_runs r
LEFT JOIN (SELECT name, estimate FROM fits.efficiency
           WHERE kind = 'weight' AND pipeline_run_id = (SELECT results_run_id FROM main.latest_run)) w
       ON w.name = r.run_key
WHERE r.utilization IS NOT NULL
ORDER BY r."year", r.model;
