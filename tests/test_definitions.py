"""Definitions load: every flow, deployment and SQL file is importable/applicable as shipped."""

import duckdb
import yaml

from llmplan.warehouse import apply_schema, sql_files
from tests.conftest import ROOT


def test_flows_and_deployments_load():
    from deployments.serve import deployments

    deps = deployments("15 4 * * *", "Asia/Tokyo")
    names = {(d.flow_name, d.name) for d in deps}
    assert names == {("nightly_refresh", "nightly"), ("corpus_stats", "corpus-stats"), ("what_to_train", "what-to-train"),
                     ("track_run", "track-run")}
    track = next(d for d in deps if d.name == "track-run")
    assert "run" in track._parameter_openapi_schema.properties          # the UI form: a run name or a log path
    nightly = next(d for d in deps if d.name == "nightly")
    assert nightly.schedules[0].schedule.cron == "15 4 * * *" and nightly.schedules[0].schedule.timezone == "Asia/Tokyo"
    props = nightly._parameter_openapi_schema.properties
    assert "scenario" in props
    for d in deps:
        assert d._parameter_openapi_schema.properties


def test_prefect_yaml_matches_the_flows():
    spec = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    for d in spec["deployments"]:
        path, func = d["entrypoint"].split(":")
        assert (ROOT / path).exists() and f"def {func}(" in (ROOT / path).read_text()
    assert "api" not in str(spec).lower().replace("apis", "")      # never an api.url in configuration


def test_sql_applies_twice_on_an_empty_database():
    con = duckdb.connect()
    apply_schema(con)
    apply_schema(con)                                                   # idempotent
    tables = {r[0] for r in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
    for t in ("raw.training_runs", "raw.epoch_models", "raw.throughput_benchmarks", "raw.accelerators",
              "raw.corpus_measurements", "raw.corpus_published", "core.training_runs", "core.throughput",
              "core.accelerators", "fits.efficiency", "fits.bytes_per_token", "fits.scaling_law", "fits.backtests",
              "plans.plans", "meta.pipeline_runs", "tracking.progress", "tracking.forecasts"):
        assert t in tables, t
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert {"latest_plans", "plan_history", "runs_with_efficiency"} <= views
    assert [f.name for f in sql_files()][-1] == "views.sql"
