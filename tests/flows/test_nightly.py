"""The nightly_refresh flow against a real DuckDB file: idempotency, all-or-nothing on bad input."""

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flows.nightly import nightly_refresh
from tests.helpers import file_sha, row_counts, table_contents


def _run(tmp_path: Path, data: Path, **kw):
    return nightly_refresh(warehouse=str(tmp_path / "w.duckdb"), data_dir=str(data), reports_dir=str(tmp_path / "reports"), **kw)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    import shutil

    from tests.conftest import DATA

    tmp = tmp_path_factory.mktemp("nightly")
    data = tmp / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock"))
    result = _run(tmp, data)
    return tmp, data, result


def test_run_fills_every_layer(first_run):
    tmp, data, result = first_run
    assert result["status"] == "succeeded"
    counts = row_counts(tmp / "w.duckdb")
    for t in ("raw.training_runs", "raw.epoch_models", "raw.throughput_benchmarks", "raw.accelerators",
              "raw.corpus_published", "core.training_runs", "core.throughput", "core.accelerators",
              "fits.efficiency", "fits.backtests", "fits.scaling_law", "plans.plans", "plans.plan_languages",
              "meta.pipeline_runs", "tracking.progress", "tracking.forecasts"):
        assert counts[t] > 0, t
    with duckdb.connect(str(tmp / "w.duckdb"), read_only=True) as con:
        prov = con.execute("SELECT count(*) FROM raw.training_runs WHERE source_file IS NULL OR source_line IS NULL "
                           "OR length(file_sha256) <> 64 OR loaded_at IS NULL").fetchone()[0]
        assert prov == 0
        run = con.execute("SELECT status, input_hashes, code_version, parameters FROM meta.pipeline_runs").fetchone()
        # every input is hashed, keyed by its path inside the data folder: each CSV (kind folders,
        # aliases), the scenario file, and what users add through the warehouse (scans, fits)
        inputs = {f.relative_to(data).as_posix() for f in data.rglob("*.csv")} | {"targets.toml"} | \
            {"warehouse:raw.corpus_measurements", "warehouse:user scaling law"} | \
            {f.relative_to(data).as_posix() for f in (data / "runs_in_progress").rglob("*") if f.is_file()}
        assert run[0] == "succeeded" and set(json.loads(run[1])) == inputs
        assert run[2] and json.loads(run[3])["targets"]
        assert con.execute("SELECT count(*) FROM latest_plans").fetchone()[0] == counts["plans.plans"]
    assert Path(result["report_path"]).exists()
    index = (tmp / "reports" / "index.html").read_text(encoding="utf-8")
    assert f'href="{result["pipeline_run_id"]}/index.html"' in index and "GPU-days p50" in index


def test_second_run_on_same_inputs_adds_only_a_run_record(first_run):
    tmp, data, _ = first_run
    before = row_counts(tmp / "w.duckdb")
    raw_before = table_contents(tmp / "w.duckdb")["raw.training_runs"]
    result = _run(tmp, data)
    after = row_counts(tmp / "w.duckdb")
    assert result["status"] == "reused"
    assert after["meta.pipeline_runs"] == before["meta.pipeline_runs"] + 1
    assert {k: v for k, v in after.items() if k != "meta.pipeline_runs"} == \
           {k: v for k, v in before.items() if k != "meta.pipeline_runs"}
    assert table_contents(tmp / "w.duckdb")["raw.training_runs"] == raw_before   # loaded_at kept too


BAD = {
    "missing column": lambda b: b.replace(b",tokens_b,", b",tokenz_b,", 1),
    "non-numeric": lambda b: b.replace(b"Llama 2 13B,Meta,2023,13,", b"Llama 2 13B,Meta,2023,thirteen,", 1),
    "negative": lambda b: b.replace(b"Llama 2 13B,Meta,2023,13,", b"Llama 2 13B,Meta,2023,-13,", 1),
    "unknown accelerator": lambda b: b.replace(b"2000,A100-80GB,,368640", b"2000,Z9000,,368640", 1),
    "duplicate run key": lambda b: b.replace(b"Llama 2 13B,", b"Llama 2 7B,", 1),
    "bad utf-8": lambda b: b.replace(b"Llama 2 13B", b"Llama 2 \xff13B", 1),
    "empty file": lambda b: b"",
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_fails_the_run_and_leaves_the_warehouse_unchanged(first_run, tmp_path, case):
    import shutil

    from llmplan.errors import InputError

    tmp, data, _ = first_run
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(tmp / "w.duckdb", wh)
    bad = tmp_path / "data"
    shutil.copytree(data, bad)
    f = bad / "training_runs" / "training_runs_through_2023.csv"
    f.write_bytes(BAD[case](f.read_bytes()))
    before_sha, before = file_sha(wh), table_contents(wh)
    with pytest.raises(InputError) as exc:
        nightly_refresh(warehouse=str(wh), data_dir=str(bad), reports_dir=str(tmp_path / "reports"))
    assert str(f) in str(exc.value)
    assert file_sha(wh) == before_sha
    assert table_contents(wh) == before
    assert not list(tmp_path.glob("w.duckdb.tmp*"))
    log = tmp_path / "w.duckdb.failed-runs.jsonl"
    assert log.exists() and str(f) in log.read_text()


def test_warehouse_opens_in_the_duckdb_cli(first_run):
    tmp, _, _ = first_run
    cli = Path(sys.executable).with_name("duckdb")
    out = subprocess.run([str(cli), "-readonly", "-csv", str(tmp / "w.duckdb"),
                          "-c", "SELECT count(*) AS n FROM core.training_runs; SELECT count(*) AS p FROM latest_plans;"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[0] == "n" and int(lines[1]) > 50 and lines[2] == "p" and int(lines[3]) > 0


def test_run_report_lang_ja_writes_a_japanese_report(first_run, tmp_path):
    """`llmplan run --report-lang ja` overrides the scenario's language (default en); the run is
    computed (a different scenario), and its report is Japanese."""
    from typer.testing import CliRunner

    from llmplan.cli import app

    tmp, data, result = first_run
    assert '<html lang="en">' in Path(result["report_path"]).read_text(encoding="utf-8")
    wh = tmp_path / "w.duckdb"
    import shutil

    shutil.copyfile(tmp / "w.duckdb", wh)
    r = CliRunner().invoke(app, ["run", "--data", str(data), "--warehouse", str(wh), "--reports", str(tmp_path / "reports"),
                                 "--report-lang", "ja", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["status"] == "succeeded"
    page = Path(out["report_path"]).read_text(encoding="utf-8")
    assert '<html lang="ja">' in page and "<h2>結論</h2>" in page
    bad = CliRunner().invoke(app, ["run", "--report-lang", "fr"])
    assert bad.exit_code != 0 and "expected en or ja" in bad.output


def test_runs_in_progress_are_tracked_each_on_its_own(first_run, tmp_path):
    """Nightly: each run in data/runs_in_progress/ gets a forecast row and its log in tracking.*,
    as of the pipeline run, and a Prefect artifact whose first line is the verdict; a run whose p50
    misses its deadline says so first and logs a warning; a deadline already passed reads as such;
    a run whose log goes backwards is an error for that run only. The example's log ends on
    2026-11-18, so as of today it is stale and the deadlines are set from today."""
    import shutil
    from datetime import datetime, timedelta, timezone

    today = datetime.now(timezone.utc)

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    tmp, data, _ = first_run
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(tmp / "w.duckdb", wh)
    d = tmp_path / "data"
    shutil.copytree(data, d)
    example = d / "runs_in_progress" / "simulated-example-7b"
    passed = d / "runs_in_progress" / "passed-run"
    shutil.copytree(example, passed)                                # its deadline, 2026-11-27, has passed
    late = d / "runs_in_progress" / "late-run"
    shutil.copytree(example, late)
    # 5.8e11 tokens left at 1.2M tokens/s ≈ 134 h: a deadline a day away is missed, one 60 days away is not
    for run, days in ((late, 1), (example, 60)):
        dl = (today + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
        (run / "run.toml").write_text((run / "run.toml").read_text().replace("deadline = 2026-11-27T00:00:00Z", f"deadline = {dl}"))
    broken = d / "runs_in_progress" / "broken-run"
    shutil.copytree(example, broken)
    lines = (broken / "progress.jsonl").read_text().splitlines()
    lines[100], lines[101] = lines[101], lines[100]               # line 102 is earlier than line 101
    (broken / "progress.jsonl").write_text("\n".join(lines) + "\n")
    result = nightly_refresh(warehouse=str(wh), data_dir=str(d), reports_dir=str(tmp_path / "reports"))
    assert result["status"] == "succeeded"
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT run_name, error, on_track, summary, log_lines FROM tracking.forecasts WHERE pipeline_run_id = ?",
            [result["results_run_id"]]).fetchall()}
        progress = dict(con.execute("SELECT run_name, count(*) FROM tracking.progress GROUP BY 1").fetchall())
        flow_run_id = con.execute("SELECT prefect_flow_run_id FROM meta.pipeline_runs WHERE pipeline_run_id = ?",
                                  [result["pipeline_run_id"]]).fetchone()[0]
    n_lines = len(lines)
    assert rows["simulated-example-7b"][0] is None and rows["simulated-example-7b"][1] is True
    assert rows["late-run"][1] is False and "MISSES ITS DEADLINE" in rows["late-run"][2]
    assert f"{broken / 'progress.jsonl'}, line 102, column 'time'" in rows["broken-run"][0]
    assert progress == {"simulated-example-7b": n_lines, "late-run": n_lines, "passed-run": n_lines}   # not the broken run's
    assert rows["passed-run"][1] is False and rows["passed-run"][2].startswith("passed-run: DEADLINE PASSED")
    assert "the log is stale" in rows["simulated-example-7b"][2] and f"(as of {today:%Y-%m-%d}" in rows["simulated-example-7b"][2]
    with get_client(sync_client=True) as client:
        arts = {a.key: a.data for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["llmplan-track-late-run", "llmplan-track-broken-run",
                                                                       "llmplan-track-simulated-example-7b"]),
                                           flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))}   # this run's versions
        import time

        from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

        def warned():
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            return any(lg.level == 30 and lg.message.startswith("late-run: MISSES ITS DEADLINE") for lg in logs)
        # Prefect ships run logs to its API in batches, in the background: wait for the batch.
        for _ in range(60):
            if warned():
                break
            time.sleep(0.5)
        assert warned()                                                                            # a warning
    assert arts["llmplan-track-late-run"].startswith("**late-run: MISSES ITS DEADLINE")
    assert arts["llmplan-track-simulated-example-7b"].startswith("**simulated-example-7b: on track")
    assert arts["llmplan-track-broken-run"].startswith("**broken-run: cannot be tracked")
    page = Path(result["report_path"]).read_text(encoding="utf-8")
    assert 'id="chart-burndown"' in page and "late-run: MISSES ITS DEADLINE (p50)" in page
