"""nightly_refresh: ingest → fit → plan → report, as one all-or-nothing warehouse run.

Thin by design: each task opens the staging copy of the warehouse by path (never receives a
connection) and calls a stage in llmplan.pipeline. The staging copy replaces the real file only
when every stage succeeded (llmplan.warehouse.Staging).
"""
# No `from __future__ import annotations` here: Prefect resolves pydantic parameters at deploy time.

import hashlib
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run

from llmplan import config, pipeline
from llmplan.scenario import Scenario, load_scenario
from llmplan.warehouse import Staging, connect_readonly, writer_lock


@task(name="ingest")
def ingest_task(staging_path: str, data_dir: str) -> dict:
    with duckdb.connect(staging_path) as con:
        return pipeline.ingest(con, Path(data_dir))


@task(name="check-cache")
def cache_task(staging_path: str, input_hashes: dict, scenario: Scenario) -> tuple[str, str | None, dict]:
    """The run's fingerprint over every input — data files, corpus measurements and scaling fits
    held in the warehouse, code, parameters — and the run whose results answer for it, if any."""
    with duckdb.connect(staging_path) as con:
        hashes = {**input_hashes, **pipeline.warehouse_inputs(con)}
        fp = pipeline.fingerprint(hashes, scenario)
        return fp, pipeline.previous_result(con, fp), hashes


@task(name="fit")
def fit_task(staging_path: str, run_id: str) -> dict:
    with duckdb.connect(staging_path) as con:
        return pipeline.fit(con, run_id)


@task(name="plan")
def plan_task(staging_path: str, run_id: str, scenario: Scenario) -> dict:
    with duckdb.connect(staging_path) as con:
        return pipeline.plan(con, run_id, scenario)


@task(name="track")
def track_task(staging_path: str, run_id: str, data_dir: str, moment: datetime | None = None) -> list[dict]:
    """Runs in progress (data/runs_in_progress/) against their plans: forecasts into tracking.*."""
    with duckdb.connect(staging_path) as con:
        return pipeline.track(con, run_id, Path(data_dir), moment or datetime.now(timezone.utc))   # as of the pipeline run


@task(name="report")
def report_task(staging_path: str, run_id: str, scenario: Scenario, reports_dir: str, input_hashes: dict) -> str:
    with duckdb.connect(staging_path) as con:
        return str(pipeline.write_report(con, run_id, scenario, Path(reports_dir), input_hashes))


@task(name="publish", retries=3, retry_delay_seconds=[2, 10, 30])
def publish_task(path: Path, run_id: str, report_path: str, reports_dir: Path, status: str, scenario: Scenario) -> dict:
    """Prefect artifacts with stable keys (the UI keeps their history) + reports/index.html.
    Retried with backoff: it reads the committed warehouse and talks to the Prefect API, both of
    which can fail for a moment (an external writer holding the file, an API restart)."""
    from llmplan import artifacts, warehouse

    with connect_readonly(path) as con:
        results = con.execute("SELECT results_run_id FROM meta.pipeline_runs WHERE pipeline_run_id = ?", [run_id]).fetchone()[0]
        head = pipeline.headline_plans(con, results, scenario)      # the report's answer cards, the same rows
        hist = warehouse.query(con, "SELECT * FROM main.plan_history")
        langs = warehouse.query(con, "SELECT * FROM plans.plan_languages WHERE pipeline_run_id IN "
                                     "(SELECT pipeline_run_id FROM main.plan_history)")
        runs = warehouse.query(con, "SELECT * FROM meta.pipeline_runs")
        pipeline.write_index(con, reports_dir)
        tracked = warehouse.query(con, "SELECT * FROM tracking.forecasts WHERE pipeline_run_id = ?", [results])
    create_table_artifact(key="llmplan-headline-plan", table=artifacts.headline_table(head),
                          description=f"Headline plan, run {run_id}")
    create_markdown_artifact(key="llmplan-what-changed",
                             markdown=artifacts.what_changed_markdown(hist, runs, run_id, status, results, langs))
    link = artifacts.report_link(report_path, reports_dir, os.environ.get("LLMPLAN_REPORTS_URL"))
    create_link_artifact(key="llmplan-report", link=link, link_text=f"llmplan report {results}")
    for r in tracked.iter_rows(named=True):           # one artifact per run in progress, its verdict first
        create_markdown_artifact(key=artifacts.track_key(r["run_name"]), markdown=artifacts.track_markdown(r),
                                 description=f"Run in progress {r['run_name']}, as of pipeline run {results}")
    return {"report_url": link}


@flow(name="nightly_refresh", log_prints=True)
def nightly_refresh(scenario: Scenario | None = None, warehouse: str | None = None, data_dir: str | None = None,
                    reports_dir: str | None = None) -> dict:
    """Refresh the warehouse from data/, fit the efficiency model, plan the targets, publish the report.

    scenario: targets, accelerators, clusters, policies, mixture… (empty = data/targets.toml).
    """
    log = get_run_logger()
    data = config.data_dir(data_dir)
    targets_file = data / "targets.toml"
    sc = scenario or load_scenario(targets_file)
    path = config.warehouse_path(warehouse)
    reports = config.reports_dir(reports_dir)
    started = datetime.now(timezone.utc)
    run_id = pipeline.new_run_id(started)
    with writer_lock(path):
        st = Staging(path).begin()
        report_dir = reports / run_id
        try:
            tmp = str(st.tmp)
            ing = ingest_task(tmp, str(data))
            if scenario is None:
                ing["input_hashes"][targets_file.name] = hashlib.sha256(targets_file.read_bytes()).hexdigest()
            fp, reuse, hashes = cache_task(tmp, ing["input_hashes"], sc)
            summary = {"ingest": {k: v for k, v in ing.items() if k != "input_hashes"}}
            if reuse:
                status, results = "reused", reuse
                with duckdb.connect(tmp) as con:
                    report_path = con.execute("SELECT report_path FROM meta.pipeline_runs WHERE pipeline_run_id = ?", [reuse]).fetchone()[0]
                log.info("inputs, code and parameters unchanged: reusing the results of run %s", reuse)
            else:
                status, results = "succeeded", run_id
                summary["fit"] = fit_task(tmp, run_id)
                summary["plan"] = plan_task(tmp, run_id, sc)
                tracked = track_task(tmp, run_id, str(data), started)
                summary["tracked_runs"] = len(tracked)
                for r in tracked:
                    if r.get("error") or r.get("on_track") is False:
                        log.warning(r["summary"])
                report_path = report_task(tmp, run_id, sc, str(reports), hashes)
            with duckdb.connect(tmp) as con:
                summary["headline"] = pipeline.headline(con, results, sc.policies[0])
                pipeline.record_run(con, run_id, started, status, hashes, sc, fp, results, report_path,
                                    str(flow_run.get_id() or ""), summary)
            st.commit()
        except BaseException as e:
            st.abort()
            if report_dir.exists():
                shutil.rmtree(report_dir, ignore_errors=True)
            pipeline.log_failure(path, run_id, started, e, {"scenario": sc.model_dump()})
            raise
    pub = publish_task(path, run_id, report_path, reports, status, sc)
    print(f"run {run_id} {status}; report: {report_path}")
    return {"pipeline_run_id": run_id, "status": status, "results_run_id": results, "report_path": report_path,
            "warehouse": str(path), "headline": summary["headline"], "ingest": summary["ingest"], **pub}
