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
    hist = pl.DataFrame({"pipeline_run_id": ["r1", "r2", "r1", "r2"], "target_params": [7e9, 7e9, 1e10, 1e10],
                         "policy": ["chinchilla"] * 4, "accelerator": ["H100-80GB"] * 4,
                         "gpu_days_p50": [300.0, 330.0, 0.2311, 0.2313]})
    runs = pl.DataFrame([_meta("r1", {"a": "1"}), _meta("r2", {"a": "2"})])
    md = artifacts.what_changed_markdown(hist, runs, "r3", "reused", "r2")
    assert md.startswith("Inputs, code and parameters unchanged: run r3 reuses the results of r2.")
    assert "- data: a" in md and "| 7B | chinchilla | H100-80GB | 300 → 330 |" in md
    # 0.2311 → 0.2313 reads "0.231 → 0.231" to three figures: not a change, not listed
    assert "0.231" not in md and "1 p50 GPU-days moved" in md


def test_what_changed_shows_bytes_per_token_and_when_only_the_report_language_changed():
    hist = pl.DataFrame({"pipeline_run_id": ["r1", "r2"], "target_params": [7e9, 7e9], "policy": ["chinchilla"] * 2,
                         "accelerator": ["H100-80GB"] * 2, "gpu_days_p50": [300.0, 300.0]})
    # a corpus scan moved English from 3.39 to 1.14 bytes/token: 3× the GB of text, same GPU-days
    langs = pl.DataFrame({"pipeline_run_id": ["r1", "r1", "r2", "r2"], "language": ["en", "ja"] * 2,
                          "bytes_per_token": [3.39, 3.0, 1.14, 3.0],
                          "bytes_per_token_source": ["published: x", "default", "measured: llmplan corpus scan (1 file)", "default"]})
    scan = pl.DataFrame([_meta("r1", {"a": "1", "warehouse:raw.corpus_measurements": "x"}),
                         _meta("r2", {"a": "1", "warehouse:raw.corpus_measurements": "y"})])
    md = artifacts.what_changed_markdown(hist, scan, "r2", "succeeded", "r2", langs)
    assert "| en | 3.39 → 1.14 | measured: llmplan corpus scan (1 file) |" in md
    assert "| ja |" not in md and "No p50 GPU-days moved." in md and "Only the report language" not in md
    # only report_lang differs (the scenario file changes with it): said in words, nothing listed
    lang = pl.DataFrame([_meta("r1", {"a": "1", "/d/targets.toml": "t1"}, params={"report_lang": "en", "targets": ["7B"]}),
                         _meta("r2", {"a": "1", "/d/targets.toml": "t2"}, params={"report_lang": "ja", "targets": ["7B"]})])
    md = artifacts.what_changed_markdown(hist, lang, "r2", "succeeded", "r2", langs.filter(pl.col("language") == "ja"))
    assert "Only the report language changed (en → ja): the plans are the same." in md and "|---|---|---|---|" not in md
    both = pl.DataFrame([_meta("r1", {"a": "1"}, params={"report_lang": "en", "targets": ["7B"]}),
                         _meta("r2", {"a": "2"}, params={"report_lang": "ja", "targets": ["7B"]})])
    assert "Only the report language" not in artifacts.what_changed_markdown(hist, both, "r2", "succeeded", "r2")


def _card(**kw):
    row = {"target_params": 7e10, "policy": "chinchilla", "accelerator": "B200", "params": 7e10, "active_params": None,
           "tokens": 1.4e12, "cluster_gpus": 8, "gpu_days_p50": 9000.0, "wall_days_p50": 1125.0, "cost_usd_p50": None,
           "fits_in_memory": True, "min_gpus_for_memory": 8, "memory_per_gpu_gib": 120.0, "headline": False, "caveats": [],
           "languages": [{"language": "en", "tokens": 1.4e12, "bytes_p50": 4.7e12, "bytes_per_token": 3.39}]}
    row.update(kw)
    return row


def test_headline_table_words_prices_fit_and_durations():
    rows = pl.DataFrame([_card(), _card(accelerator="H100-80GB", memory_per_gpu_gib=152.0, fits_in_memory=False,
                                        min_gpus_for_memory=20, cost_usd_p50=1e6),
                         _card(accelerator="H200", wall_days_p50=1 / 1440, cost_usd_p50=10.0, headline=True,
                               caveats=["no training run or benchmark on H200"])])
    a, b, c = artifacts.headline_table(rows)
    assert a["cost_p50"] == "no price" and a["params"] == "70B" and a["text"] == "en 4.7 TB"
    # 152 GiB per accelerator on 8 does not fit: no GPU-days, days or cost as if it did
    assert b["gpu_days_p50"] == "does not fit" and b["days_p50"] == "–" and b["cost_p50"] == "–"
    assert b["memory"].startswith("does not fit: 152 GiB per accelerator on 8; needs ≥ 20")
    assert c["days_p50"] == "1 minute" and c["headline"] == "★" and c["caveats"] == "no training run or benchmark on H200"
    moe = artifacts.headline_table(pl.DataFrame([_card(target_params=6.71e11, params=6.71e11, active_params=3.7e10)]))[0]
    assert moe["params"] == "671B (37B active)"


def test_durations_use_the_singular_for_one():
    from llmplan.units import fmt_days

    assert fmt_days(1 / 1440) == "1 minute" and fmt_days(2 / 1440) == "2 minutes"
    assert fmt_days(1 / 24) == "1 hour" and fmt_days(1 / 86400) == "1 second" and fmt_days(3 / 86400) == "3 seconds"


def test_report_link_uses_the_report_server_when_one_serves_the_folder(tmp_path):
    report = tmp_path / "reports" / "r1" / "index.html"
    assert artifacts.report_link(str(report), tmp_path / "reports", "http://127.0.0.1:8765/") == \
        "http://127.0.0.1:8765/r1/index.html"
    assert artifacts.report_link(str(report), tmp_path / "reports", None) == report.resolve().as_uri()
