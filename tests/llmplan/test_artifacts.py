"""What the Prefect UI shows, built without Prefect (llmplan.artifacts)."""

import json

import polars as pl

from llmplan import artifacts


def _meta(run, hashes, code="0.1.0+a", params=None):
    return {"pipeline_run_id": run, "input_hashes": json.dumps(hashes), "code_version": code,
            "parameters": json.dumps(params or {"targets": ["7B"]})}


def test_what_changed_names_data_code_and_parameters():
    a = _meta("r1", {"/d/runs.csv": "x", "/d/acc.csv": "y"})
    assert artifacts.changed_inputs(a, a) == []
    b = _meta("r2", {"/d/runs.csv": "z", "/d/acc.csv": "y", "/d/mine.csv": "w"}, code="0.1.0+b",
              params={"targets": ["7B", "70B"]})
    why = artifacts.changed_inputs(a, b)
    assert why[0] == "data: mine.csv (new), runs.csv"
    assert why[1] == "code: 0.1.0+a → 0.1.0+b"
    assert why[2] == "parameters: targets ['7B'] → ['7B', '70B']"


def test_what_changed_markdown_compares_the_last_two_planned_runs():
    hist = pl.DataFrame({"pipeline_run_id": ["r1", "r2"], "target_params": [7e9, 7e9], "policy": ["chinchilla"] * 2,
                         "accelerator": ["H100-80GB"] * 2, "gpu_days_p50": [300.0, 330.0]})
    runs = pl.DataFrame([_meta("r1", {"a": "1"}), _meta("r2", {"a": "2"})])
    md = artifacts.what_changed_markdown(hist, runs, "r3", "reused", "r2")
    assert md.startswith("Inputs, code and parameters unchanged: run r3 reuses the results of r2.")
    assert "- data: a" in md and "| 7B | chinchilla | H100-80GB | 300 → 330 |" in md


def test_headline_table_says_no_price_in_words():
    head = pl.DataFrame({"target_params": [1e10], "policy": ["chinchilla"], "accelerator": ["B200"],
                         "gpu_days_p50": [1.0], "cost_usd_p50": [None], "largest_cluster": [8],
                         "wall_days_on_largest": [0.125]}, schema_overrides={"cost_usd_p50": pl.Float64})
    row = artifacts.headline_table(head)[0]
    assert row["cost_p50"] == "no price" and row["params"] == "10B"


def test_report_link_uses_the_report_server_when_one_serves_the_folder(tmp_path):
    report = tmp_path / "reports" / "r1" / "index.html"
    assert artifacts.report_link(str(report), tmp_path / "reports", "http://127.0.0.1:8765/") == \
        "http://127.0.0.1:8765/r1/index.html"
    assert artifacts.report_link(str(report), tmp_path / "reports", None) == report.resolve().as_uri()
