"""Plans: tokens by policy, the worked example, memory, data per language, sizes."""

import duckdb
import polars as pl
import pytest

from llmplan import memory, pipeline
from llmplan.errors import LlmplanError
from llmplan.plan import build_plans, inverse_plan
from llmplan.scaling import BESIROGLU_2024
from llmplan.scenario import Scenario
from llmplan.units import fmt_bytes, fmt_count, fmt_days, fmt_sci, fmt_usd, parse_size


@pytest.mark.parametrize("text, value", [("125M", 125e6), ("10B", 1e10), ("1.5T", 1.5e12), ("7e9", 7e9), ("2.5e+10", 2.5e10), (" 10b ", 1e10), ("300", 300.0)])
def test_sizes(text, value):
    assert parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["10X", "ten", "", "-5B", "0", "1e400"])
def test_malformed_sizes_are_clear_errors(bad):
    with pytest.raises(LlmplanError, match="size|positive"):
        parse_size(bad)


def test_numbers_for_people():
    assert fmt_sci(1.2e22, "FLOP") == "1.2×10²² FLOP"
    assert fmt_count(26712.3, "GPU-hours") == "26,700 GPU-hours"
    assert fmt_days(15.23) == "15.2 days"
    assert fmt_usd(117250) == "$117k"
    assert fmt_bytes(8.12e11) == "812 GB"


@pytest.fixture(scope="module")
def fitted(built_warehouse):
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        model, run_id = pipeline.load_model(con)
        acc = con.sql("SELECT * FROM core.accelerators").pl()
        bpt = con.sql(f"SELECT * FROM fits.bytes_per_token WHERE pipeline_run_id = '{run_id}'").pl()
    return model, acc, bpt


def test_worked_example_10b_chinchilla_a100_vs_h100_on_20_gpus(fitted):
    """Rule of thumb: 10B × 200B tokens ≈ 1,000 A100 GPU-days, ≈ 300 H100 GPU-days, 20 H100s ≈ 15 days."""
    model, acc, bpt = fitted
    sc = Scenario(targets=["10B"], accelerators=["A100-80GB", "H100-80GB"], cluster_sizes=[20], policies=["chinchilla"],
                  mixture={"en": 1.0})
    plans, _ = build_plans(sc, model, acc.filter(pl.col("accelerator").is_in(["A100-80GB", "H100-80GB"])), BESIROGLU_2024, bpt)
    a100 = plans.filter(pl.col("accelerator") == "A100-80GB").row(0, named=True)
    h100 = plans.filter(pl.col("accelerator") == "H100-80GB").row(0, named=True)
    assert a100["tokens"] == pytest.approx(2e11) and a100["training_flop"] == pytest.approx(1.2e22)
    # llmplan's answer comes from the fitted whole-run utilisation, not 40 % MFU:
    assert 700 < a100["gpu_days_p50"] < 2500
    assert 1.5 < a100["gpu_days_p50"] / h100["gpu_days_p50"] < 4.0
    assert 10 < h100["wall_days_p50"] < 45
    assert h100["wall_days_p10"] < h100["wall_days_p50"] < h100["wall_days_p90"]
    assert h100["cost_usd_p50"] == pytest.approx(h100["gpu_hours_p50"] * 4.40)
    assert h100["fits_in_memory"] and h100["min_gpus_for_memory"] <= 20


def test_memory_model():
    # 16 bytes/param with ZeRO-3 over n GPUs; 175B needs many 80 GB accelerators, 125M fits on one.
    per_gpu, need = memory.memory_plan([175e9, 125e6], [8, 8], [80e9, 80e9], 3, 4096, 1)
    assert need[0] >= 16 * 175e9 / (0.9 * 80e9) and need[1] == 1
    rep, shard = memory.state_bytes(1e9, 0, fp32_grads=True)
    assert rep == pytest.approx(18e9) and shard == 0
    assert memory.checkpoint_bytes(1e10) == pytest.approx(1.4e11)


def test_policies_and_data_per_language(fitted):
    model, acc, bpt = fitted
    sc = Scenario(targets=["1B", "70B"], accelerators=["H100-80GB"], cluster_sizes=[64, 1024],
                  policies=["chinchilla", "compute-optimal", "overtrain", "fixed", "inference-aware"],
                  mixture={"ja": 0.5, "en": 0.5}, unique_tokens={"ja": "50B"}, fixed_tokens="2T")
    plans, langs = build_plans(sc, model, acc.filter(pl.col("accelerator") == "H100-80GB"), BESIROGLU_2024, bpt)
    assert plans.height == 2 * 5 * 2
    tok = {(r["target_params"], r["policy"]): r["tokens"] for r in plans.iter_rows(named=True)}
    assert tok[(1e9, "chinchilla")] == pytest.approx(2e10)
    assert tok[(1e9, "overtrain")] == pytest.approx(1e11)
    assert tok[(1e9, "fixed")] == pytest.approx(2e12)
    ia = plans.filter((pl.col("policy") == "inference-aware") & (pl.col("target_params") == 7e10)).row(0, named=True)
    assert ia["params"] < 7e10 and ia["tokens"] > 20 * 7e10        # smaller model, more tokens
    ja = langs.filter((pl.col("language") == "ja") & (pl.col("target_params") == 7e10) & (pl.col("policy") == "chinchilla")).row(0, named=True)
    assert ja["tokens"] == pytest.approx(7e11) and ja["epochs"] == pytest.approx(14.0)
    assert ja["effective_tokens"] < ja["tokens"] and "epochs" in ja["warning"]
    assert ja["bytes_p10"] < ja["bytes_p50"] < ja["bytes_p90"]
    warn = plans.filter((pl.col("target_params") == 7e10) & (pl.col("policy") == "chinchilla"))["warnings"][0]
    assert "epochs" in warn


def test_inverse_plan_20_h100_for_15_days(fitted):
    model, acc, _ = fitted
    out = inverse_plan(model, acc.filter(pl.col("accelerator") == "H100-80GB"), 20, BESIROGLU_2024, days=15)
    assert out["gpu_hours"] == 20 * 15 * 24
    assert out["compute_flop_p10"] < out["compute_flop_p50"] < out["compute_flop_p90"]
    assert 6 * out["params_opt_p50"] * out["tokens_opt_p50"] == pytest.approx(out["compute_flop_p50"])
    assert 1e9 < out["params_opt_p50"] < 5e10


def test_scenario_rejects_bad_parameters():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sum to 1"):
        Scenario(mixture={"ja": 0.5, "en": 0.6})
    with pytest.raises(ValidationError):
        Scenario(targets=["10X"])
    with pytest.raises(ValidationError):
        Scenario(cluster_sizes=[0])


def test_a_bad_targets_file_names_line_and_key(tmp_path):
    from llmplan.scenario import load_scenario

    f = tmp_path / "targets.toml"
    f.write_text('targets = ["1B"]\nseq_len = 12\n\n[mixture]\nja = 0.7\nen = 0.7\n', encoding="utf-8")
    with pytest.raises(LlmplanError) as e:
        load_scenario(f)
    msg = str(e.value)
    assert f"{f}, line 2, key 'seq_len'" in msg and "greater than or equal to 128" in msg
    f.write_text('targets = ["1B"]\nseq_len = = 3\n', encoding="utf-8")
    with pytest.raises(LlmplanError, match="line 2, column"):
        load_scenario(f)
