"""A real Prefect server on a free loopback port: deployments with their schedule, a run triggered
through the API with non-default parameters, rejected parameters, and a schedule left active."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.conftest import DATA, ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _req(client: httpx.Client, method: str, url: str, payload: dict | None = None) -> httpx.Response:
    """A request retried on 429/502/503, as Prefect's own client does (a busy server sheds load)."""
    for delay in (0.5, 1, 2, 4, 8, 0):
        r = client.request(method, url, json=payload)
        if r.status_code not in (429, 502, 503) or not delay:
            return r
        time.sleep(delay)
    return r


def _stop(proc: subprocess.Popen, timeout: float) -> None:
    """Ctrl-C, as a person would; kill only if it does not stop."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 120, "the Prefect server")
        yield api, env, tmp
    finally:
        _stop(proc, 30)


def test_served_deployment_runs_with_ui_parameters(server):
    api, env, tmp = server
    data = tmp / "data"
    shutil.copytree(DATA, data, ignore=shutil.ignore_patterns("warehouse.duckdb*", "*.lock"))
    wh, reports = tmp / "w.duckdb", tmp / "reports"
    home = tmp / "llmplan-home"
    senv = {**env, "PREFECT_API_URL": api, "LLMPLAN_PREFECT_HOME": str(home)}
    serve_log = open(tmp / "serve.log", "w")
    reports_port = _free_port()
    serve = subprocess.Popen([str(Path(sys.executable).with_name("llmplan")), "serve", "--cron", "0 3 * * *",
                              "--timezone", "Europe/Paris", "--reports-port", str(reports_port),
                              "--warehouse", str(wh), "--data", str(data), "--reports", str(reports)],
                             cwd=ROOT, env=senv, stdout=serve_log, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=api, timeout=30)
    try:
        def deployment():
            r = _req(client, "GET", "/deployments/name/nightly_refresh/nightly")
            return r.json() if r.status_code == 200 else None
        names = ("nightly_refresh/nightly", "corpus_stats/corpus-stats", "what_to_train/what-to-train", "track_run/track-run")
        _wait(lambda: all(client.get(f"/deployments/name/{n}").status_code == 200 for n in names), 120,
              "the four deployments")     # serve registers them one after the other
        dep = deployment()
        sched = dep["schedules"][0]
        assert sched["schedule"]["cron"] == "0 3 * * *" and sched["schedule"]["timezone"] == "Europe/Paris" and sched["active"]
        schema = dep["parameter_openapi_schema"]
        assert "scenario" in schema["properties"]      # the UI's run form
        form = next(d for d in (schema.get("definitions") or schema.get("$defs")).values() if "report_lang" in d.get("properties", {}))
        assert form["properties"]["report_lang"]["enum"] == ["en", "ja"]      # a drop-down: the report's language
        assert "headline_targets" in form["properties"]
        # … which opens filled with the scenario of targets.toml, not "None"
        from llmplan.scenario import load_scenario
        assert dep["parameters"]["scenario"]["targets"] == load_scenario(data / "targets.toml").targets

        # invalid parameters are rejected before any work starts
        bad = _req(client, "POST", f"/deployments/{dep['id']}/create_flow_run", {"parameters": {"scenario": {"seq_len": 1}}})
        assert bad.status_code in (409, 422), bad.text

        params = {"scenario": {"targets": ["1B", "3B"], "accelerators": ["H100-80GB"], "cluster_sizes": [16],
                               "policies": ["chinchilla"], "mixture": {"en": 1.0}}}
        run = _req(client, "POST", f"/deployments/{dep['id']}/create_flow_run", {"parameters": params})
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]

        def final_state():
            s = _req(client, "GET", f"/flow_runs/{run_id}").json()["state"]
            return s if s["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") else None
        _wait(lambda: final_state() is not None, 300, "the triggered flow run")
        assert final_state()["type"] == "COMPLETED", (tmp / "serve.log").read_text()[-3000:]
        # the report link artifact is an http:// URL on loopback that serves the report
        artifacts = _req(client, "POST", "/artifacts/filter", {"artifacts": {"key": {"any_": ["llmplan-report"]}}}).json()
        link = artifacts[0]["data"].split("](", 1)[1].rstrip(")")
        assert link.startswith(f"http://127.0.0.1:{reports_port}/")
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200 and "llmplan report" in page.text

        # track_run from the UI form: a run's name, then the path of its log, each publishing the verdict
        track = _req(client, "GET", "/deployments/name/track_run/track-run").json()
        log_path = data / "runs_in_progress" / "simulated-example-7b" / "progress.jsonl"
        for value in ("simulated-example-7b", str(log_path)):
            tr = _req(client, "POST", f"/deployments/{track['id']}/create_flow_run", {"parameters": {"run": value}})
            assert tr.status_code == 201, tr.text
            tr_id = tr.json()["id"]
            _wait(lambda: _req(client, "GET", f"/flow_runs/{tr_id}").json()["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"),
                  180, "the track_run flow run")
            assert _req(client, "GET", f"/flow_runs/{tr_id}").json()["state"]["type"] == "COMPLETED", \
                (tmp / "serve.log").read_text()[-3000:]
            arts = _req(client, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [tr_id]}}}).json()
            assert [a["key"] for a in arts] == ["llmplan-track-simulated-example-7b"]
            assert arts[0]["data"].startswith("**simulated-example-7b: ")

        # `llmplan run` with no PREFECT_API_URL finds the served server: its run shows in this UI
        renv = {k: v for k, v in senv.items() if k != "PREFECT_API_URL"}
        out = subprocess.run([str(Path(sys.executable).with_name("llmplan")), "run", "--warehouse", str(tmp / "w2.duckdb"),
                              "--data", str(data), "--reports", str(tmp / "reports2")],
                             cwd=ROOT, env=renv, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        assert f"using the Prefect server of `llmplan serve` at {api}" in out.stdout
        runs = _req(client, "POST", "/flow_runs/filter", {"flow_runs": {"deployment_id": {"is_null_": True}}}).json()
        assert any(r["state"]["type"] == "COMPLETED" for r in runs)

        # the shell hint serve printed works as printed
        hint = next(line.strip() for line in (tmp / "serve.log").read_text().splitlines() if "what_to_train/what-to-train" in line
                    and line.strip().startswith("PREFECT_API_URL="))
        out = subprocess.run(hint, shell=True, cwd=tmp, env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0 and "Completed" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    finally:
        _stop(serve, 60)
    with duckdb.connect(str(wh), read_only=True) as con:
        plans = con.sql("SELECT DISTINCT target_params, accelerator, cluster_gpus, policy FROM latest_plans ORDER BY 1").fetchall()
        report = con.sql("SELECT report_path FROM latest_run").fetchall()[0][0]
    assert plans == [(1e9, "H100-80GB", 16, "chinchilla"), (3e9, "H100-80GB", 16, "chinchilla")]
    assert Path(report).exists() and Path(report).is_relative_to(reports)
    # stopping the serve process did not pause the schedule
    dep = _req(client, "GET", "/deployments/name/nightly_refresh/nightly").json()
    assert dep["schedules"][0]["active"] and not dep.get("paused", False)
    assert "schedule is still active" in (tmp / "serve.log").read_text()
    assert not (home / "llmplan-server.json").exists()            # serving stopped: `llmplan run` no longer points here
