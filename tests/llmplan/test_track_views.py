"""A run in progress through the product: `llmplan track` on the issue's steady run (the log
written here, simulated), and one verdict everywhere — the nightly tracking.forecasts row (a
real DuckDB warehouse), the report card rendered from it, the Prefect artifact's markdown and the
CLI's JSON agree for the same run at the same moment, for a fresh and a stale log."""

import json
import re
import shutil
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from llmplan.cli import app

runner = CliRunner()
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
RATE, EVERY = 1.0e6, 600.0                      # the issue: 1.0M tokens/s on 128 H100, a line every 10 minutes


def steady_log(hours: float, seed: int | None = None) -> str:
    """A line every 10 minutes for `hours` at 1.0M tokens/s (exactly, or ±1 % per interval with a
    seed), no stall."""
    n = int(round(hours * 3600 / EVERY))
    noise = 0.01 * np.random.default_rng(seed).standard_normal(n) if seed is not None else np.zeros(n)
    k = np.cumsum(RATE * EVERY * (1 + noise))
    return "".join(json.dumps({"time": (START + timedelta(seconds=EVERY * (i + 1))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                               "step": i + 1, "tokens": int(k[i])}) + "\n" for i in range(n))


def track(log, wh, deadline: datetime, now: datetime) -> dict:
    r = runner.invoke(app, ["track", "--log", str(log), "--params", "7B", "--tokens", "1T", "--gpu", "H100", "--gpus", "128",
                            "--start", START.isoformat(), "--deadline", deadline.isoformat(), "--now", now.isoformat(),
                            "--json", "--warehouse", str(wh)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_the_issue_steady_run_is_on_track(built_warehouse, tmp_path):
    """12 h at a steady 1.0M tokens/s of 1T: 1e12 − 12 × 3600 × 1e6 = 9.568e11 tokens left = 265.8 h
    at that rate with no stall; the deadline 12 days after the start leaves 276 h (3.7 % slack)."""
    f = tmp_path / "progress.jsonl"
    f.write_text(steady_log(12.0))
    now = START + timedelta(hours=12, minutes=5)
    left_h = (1e12 - 12 * 3600 * RATE) / RATE / 3600
    assert left_h == pytest.approx(265.8, abs=0.05)
    ok = track(f, built_warehouse, START + timedelta(days=12), now)
    assert 265.8 <= round(ok["hours_left_p50"], 1) <= 280 and ok["on_track"] is True and ok["p_on_time"] >= 0.7
    assert ok["stalls"] == 0 and ok["log_stale"] is False
    # 128 GPUs at the public rate: under one interruption expected in the 266 h left
    assert ok["interruptions_expected_left"] < 1.0
    early = track(f, built_warehouse, START + timedelta(days=11.4), now)          # before the no-stall finish
    assert early["p_on_time"] <= 0.1 and early["on_track"] is False


def _run_folder(data, name: str, log: str, deadline: datetime) -> None:
    d = data / "runs_in_progress" / name
    d.mkdir(parents=True)
    (d / "progress.jsonl").write_text(log)
    (d / "run.toml").write_text(f'params = "7B"\ntokens = "1T"\naccelerator = "H100-80GB"\ngpus = 128\n'
                                f'start = {START:%Y-%m-%dT%H:%M:%SZ}\ndeadline = {deadline:%Y-%m-%dT%H:%M:%SZ}\n')


def test_report_card_warehouse_row_artifact_and_cli_agree(built_warehouse, data_copy, tmp_path):
    from llmplan import pipeline
    from llmplan.artifacts import track_markdown
    from llmplan.report import tracked_cards

    shutil.rmtree(data_copy / "runs_in_progress")
    now = START + timedelta(hours=30)
    _run_folder(data_copy, "fresh", steady_log(29.7, seed=1), START + timedelta(days=12))    # last line 20 min ago
    _run_folder(data_copy, "stale", steady_log(12.0, seed=2), START + timedelta(days=12))   # last line 18 h ago
    wh = tmp_path / "w.duckdb"
    shutil.copyfile(built_warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        run_id = con.execute("SELECT max(pipeline_run_id) FROM meta.pipeline_runs").fetchone()[0]
        pipeline.track(con, run_id, data_copy, now)                       # the nightly track stage, as of `now`
        rows = pl.from_arrow(con.execute("SELECT * FROM tracking.forecasts WHERE pipeline_run_id = ? ORDER BY run_name",
                                         [run_id]).arrow())
    assert rows["run_name"].to_list() == ["fresh", "stale"]
    cards = tracked_cards(rows, "en")
    for r in rows.iter_rows(named=True):
        cli = runner.invoke(app, ["track", "--run", r["run_name"], "--data", str(data_copy), "--now", now.isoformat(),
                                  "--json", "--warehouse", str(wh)])
        assert cli.exit_code == 0, cli.output
        out = json.loads(cli.stdout)
        card = re.search(rf'<div class="card[^"]*" data-run="{r["run_name"]}"([^>]*)>(.*?)</div>', cards).groups()
        attrs = dict(re.findall(r'data-([a-z0-9-]+)="([^"]*)"', card[0]))
        # the same verdict, chance, finish and moment in all three
        assert out["summary"] == r["summary"] and out["on_track"] == r["on_track"] == (attrs["on-track"] == "True")
        assert out["p_on_time"] == pytest.approx(r["p_on_time"]) and float(attrs["p-on-time"]) == pytest.approx(r["p_on_time"], abs=1e-6)
        assert out["eta_p50"] == r["eta_p50"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert attrs["eta-p50"] == r["eta_p50"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        assert out["forecast_at"] == now.strftime("%Y-%m-%dT%H:%M:%SZ") and attrs["forecast-at"] == now.strftime("%Y-%m-%d %H:%M UTC")
        assert out["log_stale"] == r["log_stale"] == (attrs["stale"] == "True")
        assert track_markdown(r).startswith(f"**{r['summary']}**")
    fresh, stale = rows.row(0, named=True), rows.row(1, named=True)
    assert fresh["log_stale"] is False and fresh["stalls"] == 0 and fresh["log_age_hours"] == pytest.approx(20 / 60, abs=1e-3)
    assert stale["log_stale"] is True and stale["log_age_hours"] == pytest.approx(18.0, abs=0.01) and stale["stalls"] == 0
    assert "the log is stale: its last line is 18.0 hours old" in stale["summary"]
    assert "(as of 2026-11-02 06:00 UTC)" in fresh["summary"]
    assert "the log is stale" in cards and "forecast as of" in cards
