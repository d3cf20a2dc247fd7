"""The command line against a real warehouse file (built without Prefect)."""

import json

import pytest
from typer.testing import CliRunner

from llmplan.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, list(args))


def test_help_has_examples():
    for cmd in ("run", "sql", "predict", "plan", "fit-scaling", "serve", "corpus scan", "track"):
        r = _run(*cmd.split(), "--help")
        assert r.exit_code == 0 and "Example" in r.output, cmd


def test_sql_formats(built_warehouse):
    r = _run("sql", "SELECT count(*) AS n FROM core.training_runs", "--format", "json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)[0]["n"] > 50
    r = _run("sql", "SELECT count_if(true) AS n, sum(1) AS s, 0.5::DECIMAL(4,2) AS d", "--format", "json", "--warehouse", str(built_warehouse))
    assert json.loads(r.output) == [{"n": 1, "s": 1, "d": 0.5}]     # HUGEINT/DECIMAL stay numbers
    r = _run("sql", "SELECT 1 AS a", "--format", "csv", "--warehouse", str(built_warehouse))
    assert r.output.splitlines() == ["a", "1"]
    # CSV cannot hold nested values: they are written as JSON text, not a traceback
    r = _run("sql", "SELECT [1, 2] AS l, {'k': 'v'} AS s", "--format", "csv", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0 and r.output.splitlines() == ["l,s", '"[1, 2]","{""k"": ""v""}"']


def test_runs_view_shows_each_fitted_runs_weight(built_warehouse):
    """Every run the efficiency fit used has its t weight in runs_with_efficiency; excluded runs
    have none; the weights are in (0, (ν+1)/ν] and the most down-weighted is an outlier (< 0.5)."""
    q = ("SELECT count(fit_weight) AS weighted, count_if(fit_exclusion_reason IS NULL) AS fitted, "
         "count_if(fit_weight IS NOT NULL AND fit_exclusion_reason IS NOT NULL) AS stray, "
         "min(fit_weight) AS lo, max(fit_weight) AS hi FROM runs_with_efficiency")
    r = _run("sql", q, "--format", "json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    row = json.loads(r.output)[0]
    assert row["weighted"] == row["fitted"] > 50 and row["stray"] == 0
    assert 0 < row["lo"] < 0.5 and row["hi"] <= 1.25


def test_sql_is_read_only(built_warehouse):
    r = _run("sql", "DELETE FROM core.training_runs", "--warehouse", str(built_warehouse))
    assert r.exit_code == 1 and "read-only" in r.output.lower()


def test_predict_json_keys_and_values(built_warehouse, tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("model,params_b,active_params_b,tokens_b,gpu_type,gpu_count\n"
                 "ten,10,,200,H100,20\nmoe,47,13,1000,NVIDIA A100 SXM4 80 GB,\n")
    r = _run("predict", "--runs", str(f), "--json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [set(x) for x in rows] == [{"model", "training_flop", "gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90", "wall_days_p50"}] * 2
    assert rows[0]["training_flop"] == pytest.approx(1.2e22)
    assert rows[0]["wall_days_p50"] == pytest.approx(rows[0]["gpu_hours_p50"] / 20 / 24)
    assert rows[1]["training_flop"] == pytest.approx(6 * 13e9 * 1e12) and rows[1]["wall_days_p50"] is None
    assert rows[0]["gpu_hours_p10"] < rows[0]["gpu_hours_p50"] < rows[0]["gpu_hours_p90"]


def test_predict_errors(built_warehouse, tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("model,params_b,tokens_b,gpu_type\nx,10,200,Z9000\n")
    r = _run("predict", "--runs", str(f), "--warehouse", str(built_warehouse))
    assert r.exit_code == 1 and "line 2" in r.output and "H100-80GB" in r.output
    f.write_text("model,params_b,tokens_b,gpu_type\nx,10,,H100\n")
    r = _run("predict", "--runs", str(f), "--warehouse", str(built_warehouse))
    assert r.exit_code == 1 and "line 2" in r.output and "tokens_b" in r.output
    assert "written" not in r.output                        # predict never writes, so it says nothing of it
    f.write_text("model,params_b,tokens_b,gpu_type\nx,10,200,H100\n")
    r = _run("predict", "--runs", str(f), "--warehouse", str(tmp_path / "none.duckdb"))
    assert r.exit_code == 1 and "llmplan run" in r.output


def test_predict_without_a_fit_says_how_to_make_one(tmp_path):
    from llmplan.warehouse import ensure

    ensure(tmp_path / "empty.duckdb")
    f = tmp_path / "runs.csv"
    f.write_text("model,params_b,tokens_b,gpu_type\nx,10,200,H100\n")
    r = _run("predict", "--runs", str(f), "--warehouse", str(tmp_path / "empty.duckdb"))
    assert r.exit_code == 1 and "llmplan run" in r.output


def test_plan_json_keys(built_warehouse):
    r = _run("plan", "--params", "10B", "--gpu", "H100-80GB", "--gpus", "20", "--mix", "ja=0.4,en=0.4,code=0.2",
             "--json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    for k in ("tokens", "training_flop", "gpu_hours_p10", "gpu_hours_p50", "gpu_hours_p90", "wall_days_p50",
              "cost_usd_p50", "min_gpus_for_memory", "memory_per_gpu_gib", "checkpoint_gib", "bytes_per_language",
              "bytes_per_token_source", "predicted_loss_p10", "predicted_loss_p90"):
        assert k in out
    assert set(out["bytes_per_language"]) == {"ja", "en", "code"}
    assert out["tokens"] == pytest.approx(2e11)
    assert out["checkpoint_gib"] == pytest.approx(14 * 1e10 / 2**30)
    # which row each language's bytes/token came from, in words (no scan here: published or default)
    assert out["bytes_per_token_source"]["ja"].startswith("default")
    assert out["bytes_per_token_source"]["en"].startswith("published: LLaMA-1")


def test_plan_days_gives_the_cluster_and_inverse_plan(built_warehouse):
    wh = str(built_warehouse)
    for q in ("p50", "p90"):
        r = _run("plan", "--params", "7B", "--gpu", "A100", "--days", "30", "--confidence", q, "--json", "--warehouse", wh)
        out = json.loads(r.output)
        assert r.exit_code == 0 and out[f"wall_days_{q}"] <= 30 and out["cluster_chosen_for_days"]
        fewer = json.loads(_run("plan", "--params", "7B", "--gpu", "A100", "--gpus", str(out["cluster_gpus"] - 1),
                                "--json", "--warehouse", wh).output)
        assert fewer[f"wall_days_{q}"] > 30                       # one fewer accelerator misses the deadline
    r = _run("plan", "--gpu", "H100", "--gpus", "20", "--days", "15", "--json", "--warehouse", wh)
    out = json.loads(r.output)
    assert r.exit_code == 0 and out["params_opt_p10"] < out["params_opt_p50"] < out["params_opt_p90"]
    # both limits hold: $20,000 buys 20000 / (4.40 · 20 · 24) = 9.47 days of 20 H100s, not 15
    r = _run("plan", "--gpu", "H100", "--gpus", "20", "--days", "15", "--budget-usd", "20000", "--json", "--warehouse", wh)
    out = json.loads(r.output)
    assert out["cost_usd"] == pytest.approx(20000) and out["days"] == pytest.approx(9.47, abs=0.01)
    assert out["limited_by"] == "budget"


def test_plan_errors(built_warehouse):
    wh = str(built_warehouse)
    r = _run("plan", "--params", "10X", "--warehouse", wh)
    assert r.exit_code == 1 and "10X" in r.output
    r = _run("plan", "--gpu", "H100", "--warehouse", wh)
    assert r.exit_code == 1 and "--gpus" in r.output
    # every validation error is one plain sentence naming the option: no pydantic text, no link
    for args, words in ((["--gpus", "0"], "'--gpus'"), (["--gpus", "-4"], "'--gpus'"),
                        (["--mix", "ja=0.6,en=0.5"], "--mix: mixture shares must sum to 1, got 1.1"),
                        (["--unique", "ja=lots"], "--unique value for 'ja'"), (["--confidence", "p99"], "--confidence"),
                        (["--pp-schedule", "gpipe"], "--pp-schedule must be 1f1b, zero-bubble or dualpipe")):
        r = _run("plan", "--params", "7B", *args, "--warehouse", wh)
        assert r.exit_code != 0 and words in r.output, (args, r.output)
        assert "pydantic" not in r.output and "http" not in r.output and "Traceback" not in r.output


def test_help_states_the_default_cluster():
    assert "default 8" in " ".join(_run("plan", "--help").output.split())


def test_fit_scaling_stores_and_is_used(built_warehouse, tmp_path):
    import shutil

    import duckdb
    import numpy as np

    from llmplan.scaling import BESIROGLU_2024

    wh = tmp_path / "w.duckdb"
    shutil.copyfile(built_warehouse, wh)
    rng = np.random.default_rng(3)
    n = np.exp(rng.uniform(np.log(3e7), np.log(3e9), 30))
    d = np.exp(rng.uniform(np.log(1e9), np.log(3e11), 30))
    loss = BESIROGLU_2024.loss(n, d) * np.exp(rng.normal(0, 0.003, 30))
    f = tmp_path / "losses.csv"
    f.write_text("params,tokens,loss\n" + "".join(f"{a},{b},{c}\n" for a, b, c in zip(n, d, loss)))
    r = _run("fit-scaling", "--losses", str(f), "--json", "--bootstrap", "40", "--warehouse", str(wh))
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) == {"E", "A", "B", "alpha", "beta", "n_points", "E_ci", "A_ci", "B_ci", "alpha_ci", "beta_ci",
                        "warnings"}
    assert out["n_points"] == 30 and out["E_ci"][0] <= out["E"] <= out["E_ci"][1]
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM fits.scaling_law WHERE name = 'user'").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM fits.scaling_law_draws").fetchone()[0] == 40
    r = _run("plan", "--params", "1B", "--gpu", "H100", "--gpus", "8", "--json", "--warehouse", str(wh))
    plan = json.loads(r.output)
    assert plan["loss_law"] == "user"
    assert plan["predicted_loss_p10"] < plan["predicted_loss"] < plan["predicted_loss_p90"]   # the law's own uncertainty
    r = _run("plan", "--gpu", "H100", "--gpus", "20", "--days", "15", "--law", "user", "--json", "--warehouse", str(wh))
    assert "bootstrap" in json.loads(r.output)["loss_interval"]


def test_fit_scaling_refuses_a_law_the_runs_cannot_identify(built_warehouse, tmp_path):
    """Six runs at D = 20·N: refused with the reason in words; nothing stored, plans keep their law."""
    import shutil

    import numpy as np

    from llmplan.scaling import BESIROGLU_2024
    from tests.helpers import file_sha

    wh = tmp_path / "w.duckdb"
    shutil.copyfile(built_warehouse, wh)
    before = file_sha(wh)
    n = np.array([5e7, 1e8, 2e8, 4e8, 8e8, 1.6e9])
    f = tmp_path / "sweep.csv"
    f.write_text("params,tokens,loss\n" + "".join(f"{a},{20 * a},{BESIROGLU_2024.loss(a, 20 * a)}\n" for a in n))
    r = _run("fit-scaling", "--losses", str(f), "--bootstrap", "40", "--warehouse", str(wh))
    assert r.exit_code == 1 and "cannot identify" in r.output and "tokens per parameter" in r.output
    assert "Traceback" not in r.output
    assert file_sha(wh) == before
    r = _run("plan", "--params", "1B", "--gpu", "H100", "--gpus", "8", "--json", "--warehouse", str(wh))
    assert json.loads(r.output)["loss_law"] == "besiroglu2024"


def test_fit_scaling_refuses_bad_input_and_writes_nothing(built_warehouse, tmp_path):
    import shutil

    from tests.helpers import file_sha

    wh = tmp_path / "w.duckdb"
    shutil.copyfile(built_warehouse, wh)
    before = file_sha(wh)
    f = tmp_path / "losses.csv"
    f.write_text("params,tokens,loss\n1e8,1e9,3.1\n2e8,2e9,2.9\n3e8,3e9,2.8\n")
    r = _run("fit-scaling", "--losses", str(f), "--warehouse", str(wh))
    assert r.exit_code == 1 and "at least 5" in r.output
    f.write_text("params,tokens,loss\n1e8,1e9,3.1\n2e8,-2e9,2.9\n")
    r = _run("fit-scaling", "--losses", str(f), "--warehouse", str(wh))
    assert r.exit_code == 1 and "line 3" in r.output and "tokens" in r.output
    assert file_sha(wh) == before


def test_plan_reports_its_layout_batch_precision_and_moe(built_warehouse):
    wh = str(built_warehouse)
    out = json.loads(_run("plan", "--params", "10B", "--gpu", "H100", "--gpus", "64", "--json", "--warehouse", wh).output)
    for k in ("tp", "pp", "ep", "dp", "zero_stage", "recompute", "global_batch_tokens", "step_mfu_p50", "goodput_p50",
              "max_useful_gpus"):
        assert out[k] is not None, k
    assert out["tp"] * out["pp"] * out["dp"] == 64 and out["precision"] == "bf16"
    moe = json.loads(_run("plan", "--params", "671B", "--active-params", "37B", "--tokens", "14.8T", "--gpu", "H100",
                          "--gpus", "2048", "--precision", "fp8", "--json", "--warehouse", wh).output)
    assert moe["training_flop"] == pytest.approx(6 * 37e9 * 14.8e12) and moe["precision"] == "fp8"
    # the layout covers the cluster (or the part the batch keeps busy) and EP divides the experts it printed
    assert moe["tp"] * moe["pp"] * moe["cp"] * moe["dp"] <= 2048 and moe["experts"] % moe["ep"] == 0 and moe["experts"] > 1
    assert moe["fits_in_memory"] and moe["layers"] > 0 and moe["top_k"] >= 1
    r = _run("plan", "--params", "7B", "--gpu", "A100", "--gpus", "8", "--precision", "fp8", "--warehouse", wh)
    assert r.exit_code == 1 and "no FP8 peak" in r.output
    r = _run("plan", "--params", "7B", "--active-params", "8B", "--gpu", "H100", "--gpus", "8", "--warehouse", wh)
    assert r.exit_code == 1 and "exceeds --params" in r.output


def test_plan_runs_the_pipeline_schedule_a_team_names(built_warehouse):
    """--pp-schedule dualpipe: the plan's layout runs DualPipe (an even PP without virtual stages,
    DeepSeek-V3 §3.2.1) and says so; the default keeps the generic schedule (no name)."""
    wh = str(built_warehouse)
    args = ("plan", "--params", "671B", "--active-params", "37B", "--tokens", "14.8T", "--gpu", "H100", "--gpus", "2048",
            "--json", "--warehouse", wh)
    dual = json.loads(_run(*args[:-3], "--pp-schedule", "dualpipe", *args[-3:]).output)
    assert dual["pp_schedule"] == "dualpipe" and dual["pp"] % 2 == 0 and dual["vp"] == 1
    assert json.loads(_run(*args).output)["pp_schedule"] is None


def test_predict_per_step_with_given_and_own_layouts(built_warehouse, tmp_path):
    f = tmp_path / "steps.csv"
    f.write_text("model,params_b,active_params_b,gpu_type,gpu_count,precision,seq_len,global_batch,tp,pp,ep\n"
                 "llama70,70.6,,H100,64,fp8,8192,1048576,4,8,\n"
                 "moe,235,22,GB200,256,fp8,4096,,,,\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [set(x) for x in rows] == [{"model", "tokens_per_s_per_gpu_p10", "tokens_per_s_per_gpu_p50", "tokens_per_s_per_gpu_p90",
                                       "step_mfu_p50", "step_hfu_p50", "mfu_6n_p50", "tp", "pp", "vp", "cp", "ep", "dp", "zero_stage",
                                       "micro_batch", "recompute", "layers", "hidden", "ffn", "heads", "kv_heads", "vocab", "experts",
                                       "top_k", "moe_ffn", "shared_experts", "dense_layers", "head_dim", "bubble_share"}] * 2
    assert (rows[0]["tp"], rows[0]["pp"], rows[0]["dp"]) == (4, 8, 2)             # the layout given
    assert rows[1]["tp"] * rows[1]["pp"] * rows[1]["dp"] == 256                     # llmplan's own
    for x in rows:
        assert x["tokens_per_s_per_gpu_p10"] < x["tokens_per_s_per_gpu_p50"] < x["tokens_per_s_per_gpu_p90"]
    # 6·N MFU = tokens/s × 6 · N_active ÷ the FP8 peak (1,979 TFLOP/s for the H100); step MFU adds the
    # full attention count 12·L·s·h per token (Megatron's convention) for the shape it printed
    r0 = rows[0]
    assert r0["mfu_6n_p50"] == pytest.approx(r0["tokens_per_s_per_gpu_p50"] * 6 * 70.6e9 / 1979e12, rel=0.03)
    attn = 12 * r0["layers"] * 8192 * r0["heads"] * (r0["hidden"] / r0["heads"])
    assert r0["step_mfu_p50"] == pytest.approx(r0["mfu_6n_p50"] + r0["tokens_per_s_per_gpu_p50"] * attn / 1979e12, rel=0.03)


def test_predict_per_step_bad_rows_name_line_and_column(built_warehouse, tmp_path):
    f = tmp_path / "steps.csv"
    f.write_text("model,params_b,active_params_b,gpu_type,gpu_count,precision,seq_len,tp,pp\n"
                 "a,10,20,H100,8,bf16,4096,1,1\n"
                 "b,10,,A100,8,fp8,4096,1,1\n"
                 "c,10,,H100,10,bf16,4096,4,1\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--warehouse", str(built_warehouse))
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and "3 problems" in out
    assert "line 2, column 'active_params_b'" in out and "line 3, column 'precision'" in out and "line 4, column 'tp'" in out
    f.write_text("model,params_b,gpu_type\nx,10,H100\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--warehouse", str(built_warehouse))
    assert r.exit_code == 1 and "missing column" in r.output and "precision" in r.output


def test_track_reads_a_log_and_forecasts_from_it(built_warehouse, tmp_path):
    """A log written here: 1e6 tokens/s, a line every 10 minutes, one 3-hour stall after line 50."""
    import json as _json
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    rows, t = [], 0.0
    for i in range(1, 101):
        t += 600 + (3 * 3600 if i == 51 else 0)
        rows.append({"time": (t0 + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ"), "step": i, "tokens": 600e6 * i})
    f = tmp_path / "progress.jsonl"
    f.write_text("".join(_json.dumps(r) + "\n" for r in rows))
    last = t0 + timedelta(seconds=t)
    r = runner.invoke(app, ["track", "--log", str(f), "--params", "1B", "--tokens", "300B", "--gpus", "8",
                            "--deadline", "2026-11-10T00:00:00Z", "--now", (last + timedelta(minutes=5)).isoformat(),
                            "--warehouse", str(built_warehouse), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["tokens_done"] == 600e6 * 100 and out["stalls"] == 1
    assert out["stall_hours"] == pytest.approx(3.0, abs=0.01)
    assert out["tokens_per_s_running"] == pytest.approx(1e6, rel=1e-3)
    # effective: tokens since the first line ÷ time since the first line (no --start given)
    assert out["tokens_per_s_effective"] == pytest.approx(600e6 * 99 / (t - 600), rel=1e-3)
    assert out["start"] == "2026-11-01T00:10:00Z" and out["eta_p50"].endswith("Z")
    left_h = (300e9 - 60e9) / 1e6 / 3600                     # 66.7 h at the running rate, before any stall
    assert left_h <= out["hours_left_p50"] <= left_h * 1.6
    assert out["on_track"] is True

    bad = runner.invoke(app, ["track", "--log", str(f), "--warehouse", str(built_warehouse)])
    assert bad.exit_code == 1 and "without a run.toml, give --params, --tokens, --gpus" in bad.output
    missing = runner.invoke(app, ["track", "--run", "nope", "--warehouse", str(built_warehouse)])
    assert missing.exit_code == 1 and "no run.toml" in missing.output


def test_predict_says_a_word_is_not_a_number(built_warehouse, tmp_path):
    f = tmp_path / "runs.csv"
    f.write_text("model,params_b,tokens_b,gpu_type\nx,seven,200,H100\n")
    r = _run("predict", "--runs", str(f), "--warehouse", str(built_warehouse))
    assert r.exit_code == 1
    assert f"{f}, line 2, column 'params_b': expected a number, got 'seven'" in r.output.replace("\n", "")
    assert "empty" not in r.output and "1 problem" in r.output


def test_help_lists_the_fixed_policy_and_points_to_the_methods_in_the_repository():
    from tests.conftest import ROOT

    r = _run("plan", "--help")
    assert r.exit_code == 0 and "fixed" in r.output
    top = _run("--help").output
    assert "docs/methods.md" in top and (ROOT / "docs" / "methods.md").is_file()
    assert "DESIGN" not in top and "shared" not in top


def test_moe_plan_says_total_and_active_and_caveats_outside_the_evidence(built_warehouse):
    import duckdb

    wh = str(built_warehouse)
    with duckdb.connect(wh, read_only=True) as con:
        # the largest public mixture-of-experts run in the warehouse (total and active), read independently
        big = con.execute("""SELECT params, active_params FROM (
                               SELECT params, active_params FROM core.training_runs UNION ALL
                               SELECT params, active_params FROM core.step_benchmarks)
                             WHERE active_params < params ORDER BY params DESC LIMIT 1""").fetchone()
        seen = {r[0] for r in con.execute("""SELECT accelerator FROM core.training_runs UNION SELECT accelerator FROM core.throughput
                                             UNION SELECT accelerator FROM core.step_benchmarks""").fetchall()}
    r = _run("plan", "--params", "671B", "--active-params", "37B", "--tokens", "14.8T", "--gpu", "H100", "--gpus", "2048",
             "--warehouse", wh)
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[0].split(None, 1)[1].startswith("671B parameters, 37B active")
    inside = json.loads(_run("plan", "--params", "671B", "--active-params", "37B", "--tokens", "14.8T", "--gpu", "H100",
                             "--gpus", "2048", "--json", "--warehouse", wh).output)
    assert big[0] * 2 >= 671e9 and big[1] * 2 >= 37e9 and "H100-80GB" in seen      # inside the evidence
    assert inside["caveats"] == []
    total = 2.5 * big[0]                                              # past twice the largest MoE run
    far = json.loads(_run("plan", "--params", f"{total:.6g}", "--active-params", "37B", "--tokens", "2T", "--gpu", "H100",
                          "--gpus", "4096", "--json", "--warehouse", wh).output)
    assert len(far["caveats"]) == 1 and "mixture-of-experts" in far["caveats"][0]
    unseen = next(a for a in ("MI300X", "H200", "TPUv5p") if a not in seen)
    r = _run("plan", "--params", "7B", "--gpu", unseen, "--gpus", "64", "--warehouse", wh)
    assert r.exit_code == 0 and f"no training run or benchmark on {unseen}" in r.output.replace("\n", " ").replace("  ", " ")
    dense = json.loads(_run("plan", "--params", "7B", "--gpu", unseen, "--gpus", "64", "--json", "--warehouse", wh).output)
    assert dense["caveats"] == [f"no training run or benchmark on {unseen} in the warehouse: its plan comes from its "
                                "specifications alone"]


def test_measured_rows_calibrate_a_new_stack(built_warehouse, tmp_path):
    """One measured row 30 % above the model's own p50 for that configuration moves the prediction
    up (by its posterior weight, llmplan.perf.model.StepPhysics.calibrate) and only up; a measured CSV
    without throughput or with an accelerator the table lacks is one sentence per row, nothing else."""
    cfg = "model,params_b,gpu_type,gpu_count,precision,seq_len,global_batch,tp,pp\nllama70,70.6,H100,64,bf16,8192,1048576,4,8\n"
    f = tmp_path / "steps.csv"
    f.write_text(cfg)
    base = json.loads(_run("predict", "--per-step", "--runs", str(f), "--json", "--warehouse", str(built_warehouse)).output)[0]
    m = tmp_path / "ours.csv"
    m.write_text(cfg.replace("tp,pp\n", "tp,pp,tokens_per_s_per_gpu\n").rstrip("\n") + f",{base['tokens_per_s_per_gpu_p50'] * 1.3}\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--measured", str(m), "--json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    cal = json.loads(r.output)[0]
    assert base["tokens_per_s_per_gpu_p50"] < cal["tokens_per_s_per_gpu_p50"] < 1.3 * base["tokens_per_s_per_gpu_p50"]
    plan = json.loads(_run("plan", "--params", "70B", "--gpu", "H100", "--gpus", "64", "--measured", str(m), "--json",
                           "--warehouse", str(built_warehouse)).output)
    assert plan["framework"] == "measured"
    m.write_text(cfg.replace("tp,pp\n", "tp,pp,tokens_per_s_per_gpu\n").rstrip("\n") + ",\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--measured", str(m), "--warehouse", str(built_warehouse))
    assert r.exit_code == 1 and "line 2" in r.output and "tokens_per_s_per_gpu" in r.output
    m.write_text(cfg.replace("tp,pp\n", "tp,pp,tokens_per_s_per_gpu\n").replace("H100", "Z9000").rstrip("\n") + ",5000\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--measured", str(m), "--warehouse", str(built_warehouse))
    assert r.exit_code == 1 and "line 2" in r.output and "gpu_type" in r.output and "Traceback" not in r.output


def test_plan_shape_options_and_a_named_shape(built_warehouse):
    """--shape NAME takes every column of that row of data/throughput/model_shapes.csv (DeepSeekV3: 61 layers of
    7,168, 256 experts of 2,048 + 1 shared, 3 dense layers, MLA head_dim 128 + 64), the shape options override it,
    and the plan prints the shape it used."""
    wh = str(built_warehouse)
    ds = ("--params", "671B", "--active-params", "37B", "--tokens", "14.8T", "--gpu", "H100", "--gpus", "2048",
          "--precision", "fp8", "--json", "--warehouse", wh)
    r = _run("plan", *ds, "--shape", "deepseek v3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["layers"], out["hidden"], out["ffn"], out["heads"], out["vocab"], out["experts"], out["top_k"]) == \
        (61, 7168, 18432, 128, 129280, 256, 8)
    assert (out["moe_ffn"], out["shared_experts"], out["dense_layers"], out["head_dim"]) == (2048, 1, 3, 192)
    assert out["shape_source"] == "--shape deepseek v3"
    r = _run("plan", *ds, "--shape", "DeepSeek-V3", "--layers", "60", "--dense-layers", "1")
    out = json.loads(r.output)
    assert (out["layers"], out["dense_layers"], out["moe_ffn"]) == (60, 1, 2048)
    # The MoE options without a named shape: kept, the rest solved so the counts hold.
    r = _run("plan", *ds, "--experts", "256", "--top-k", "8", "--moe-ffn", "2048", "--shared-experts", "2",
             "--dense-layers", "3")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["moe_ffn"], out["shared_experts"], out["dense_layers"], out["experts"]) == (2048, 2, 3, 256)
    # The table says which expert width, shared experts and dense layers it used.
    r = _run("plan", *ds[:-3], "--warehouse", wh, "--shape", "DeepSeek-V3")
    assert "expert ffn 2048, 1 shared, 3 dense layers" in " ".join(r.output.split())


def test_plan_shape_errors_are_one_sentence(built_warehouse):
    wh = str(built_warehouse)
    r = _run("plan", "--params", "671B", "--active-params", "37B", "--shape", "DeepSek V3", "--warehouse", wh)
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and "--shape 'DeepSek V3' is not a shape" in out and "DeepSeek-V3" in out
    r = _run("plan", "--params", "10B", "--shape", "DeepSeek-V3", "--warehouse", wh)
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and out.startswith("error: --shape DeepSeek-V3: the shape") and "stated 10B" in out
    r = _run("plan", "--params", "7B", "--shared-experts", "-1", "--warehouse", wh)
    assert r.exit_code != 0 and "--shared-experts" in r.output


def test_predict_per_step_named_shape_column(built_warehouse, tmp_path):
    f = tmp_path / "steps.csv"
    f.write_text("model,params_b,active_params_b,gpu_type,gpu_count,precision,seq_len,shape,layers,shared_experts\n"
                 "q,235,22,H100,256,bf16,4096,Qwen3-235B-A22B,,\n"
                 "q2,235,22,H100,256,bf16,4096,qwen3 235b a22b,90,1\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--json", "--warehouse", str(built_warehouse))
    assert r.exit_code == 0, r.output
    a, b = json.loads(r.output)
    # model_shapes.csv, Qwen3_235B_a22B: 94 layers of 4096, 64 heads of 128, 4 KV heads, 128 experts of 1536, top-8.
    assert (a["layers"], a["hidden"], a["heads"], a["kv_heads"], a["experts"], a["top_k"], a["moe_ffn"], a["shared_experts"]) == \
        (94, 4096, 64, 4, 128, 8, 1536, 0)
    assert (b["layers"], b["shared_experts"], b["moe_ffn"]) == (90, 1, 1536)        # the row's own columns win
    f.write_text("model,params_b,active_params_b,gpu_type,gpu_count,precision,seq_len,shape\n"
                 "q,235,22,H100,256,bf16,4096,Qwen 9\n")
    r = _run("predict", "--per-step", "--runs", str(f), "--warehouse", str(built_warehouse))
    out = " ".join(r.output.split())
    assert r.exit_code == 1 and "line 2, column 'shape'" in out and "'Qwen 9' is not a shape" in out
