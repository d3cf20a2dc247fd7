"""Per-step throughput, layout, global batch and the step × goodput chain (llmplan.step)."""

import math

import numpy as np
import polars as pl
import pytest

from llmplan import memory, step
from llmplan.ingest import read_all
from llmplan.transform import build_core
from tests.conftest import DATA


@pytest.fixture(scope="module")
def core():
    return build_core(read_all(DATA))


@pytest.fixture(scope="module")
def step_model(core):
    return step.fit_step(core["core.step_benchmarks"])


def test_step_rows_carry_mfu_against_the_precisions_peak(core):
    """Megatron-Bridge 26.02, DeepSeekV3 on 256 GB200 in MXFP8: 3,955 tokens/s per GPU × 6 × 37e9
    active parameters ÷ GB200's dense FP8 peak 5,000 TFLOP/s; pipeline of 4 stages with
    4096·4096/(1·4096·64) = 64 micro-batches per step → bubble 64/(64+3)."""
    sb = core["core.step_benchmarks"]
    r = sb.filter((pl.col("model") == "DeepSeekV3") & (pl.col("accelerator") == "GB200")
                  & (pl.col("source_group") == "megatron-bridge 26.02")).row(0, named=True)
    assert r["step_mfu"] == pytest.approx(3955 * 6 * 37e9 / 5000e12)
    dp = 256 / (1 * 4 * 1)
    m = 4096 * 4096 / (1 * 4096 * dp)
    assert r["layout_eff"] == pytest.approx(m / (m + 4 - 1))
    mosaic = sb.filter(pl.col("source_group") == "llm-foundry")
    assert mosaic.height == 216 and (mosaic["recompute"] == "full").any()
    assert sb.filter(pl.col("model").str.contains("tokendrop"))["fit_exclusion_reason"].is_not_null().all()


def test_global_batch_follows_deepseek_llm():
    """Bi et al. 2024: B_opt = 0.2920 · C^0.3271 tokens; for C = 1.2e22 that is 0.2920 · e^(0.3271 · ln 1.2e22)
    ≈ 4.87M tokens, a whole number of 4,096-token sequences."""
    b = step.global_batch_tokens(np.array([1.2e22]), 4096)[0]
    expected = 0.2920 * math.exp(0.3271 * math.log(1.2e22))
    assert b % 4096 == 0 and abs(b - expected) <= 2048
    assert step.global_batch_tokens(np.array([1.2e22]), 4096, override=8e6)[0] == round(8e6 / 4096) * 4096


def test_layout_is_the_fastest_candidate_that_fits():
    """Brute force in plain Python over every candidate (TP, PP, ZeRO, recompute): keep those that
    divide 64 accelerators and fit 90 % of 80 GiB (memory.layout_bytes), score each by bubble ×
    recompute × 10^(b_tp·log2 TP) × busy accelerators, and compare with the vectorised search."""
    b_tp, gbt, s = -0.05, 4e6, 4096
    rows = pl.DataFrame({"params": [70e9], "active_params": [None], "memory_bytes": [80 * 2**30], "cluster_gpus": [64],
                         "global_batch_tokens": [gbt]}, schema_overrides={"active_params": pl.Float64})
    r = step.choose_layout(rows, b_tp, s, 1).row(0, named=True)
    best, best_score = None, -math.inf
    for tp in step.TP_CHOICES:
        for pp in step.PP_CHOICES:
            if 64 % (tp * pp):
                continue
            dp = 64 // (tp * pp)
            busy_dp = min(dp, math.floor(gbt / s))
            m = gbt / (s * busy_dp)
            for zero in step.ZERO_CHOICES:
                for rc in step.RECOMPUTE_CHOICES:
                    if memory.layout_bytes(70e9, 70e9, tp, pp, 1, dp, zero, rc, s, 1) > 0.9 * 80 * 2**30:
                        continue
                    score = (m / (m + pp - 1)) * step.RECOMPUTE_EFF[rc] * 10 ** (b_tp * math.log2(tp)) * tp * pp * busy_dp
                    if score > best_score + 1e-12:
                        best, best_score = (tp, pp, zero, rc), score
    assert (r["tp"], r["pp"], r["zero_stage"], r["recompute"]) == best
    assert r["layout_fits"] and r["tp"] * r["pp"] * r["dp"] == 64 and r["memory_per_gpu"] <= 0.9 * 80 * 2**30


def test_a_cluster_beyond_the_batch_is_flagged_and_not_faster(core, step_model):
    """125M tokens-optimal: C = 6 · 125e6 · 2.5e9, B = 0.2920 · C^0.3271 ≈ 279k tokens = 68 sequences of
    4,096: data parallelism stops at 68, so at most tp · pp · 68 accelerators are busy."""
    from llmplan.efficiency import fit, fit_table
    from llmplan.plan import build_plans
    from llmplan.scaling import BESIROGLU_2024
    from llmplan.scenario import Scenario

    whole = fit(fit_table(core["core.training_runs"], core["core.throughput"]))
    chain = step.Chain(whole, step_model)
    acc = core["core.accelerators"].filter(pl.col("accelerator") == "H100-80GB")
    sc = Scenario(targets=["125M"], accelerators=["H100-80GB"], cluster_sizes=[4096, 8192], policies=["chinchilla"],
                  mixture={"en": 1.0})
    plans, _ = build_plans(sc, chain, acc, BESIROGLU_2024, None)
    a, b = plans.sort("cluster_gpus").rows(named=True)
    seqs = round(0.2920 * (6 * 125e6 * 2.5e9) ** 0.3271 / 4096)
    assert a["max_useful_gpus"] == a["tp"] * a["pp"] * seqs and a["useful_gpus"] == a["max_useful_gpus"]
    assert "keeps only" in a["warnings"]
    assert a["wall_days_p50"] == pytest.approx(b["wall_days_p50"])             # twice the cluster, no faster …
    assert b["cost_usd_p50"] == pytest.approx(2 * a["cost_usd_p50"])            # … and twice the bill
    assert a["wall_days_p50"] == pytest.approx(a["gpu_hours_p50"] / (a["useful_gpus"] * 24))


def test_a_dense_bf16_plan_keeps_the_whole_run_prediction_and_fp8_or_moe_change_it(core, step_model):
    from llmplan.efficiency import fit, fit_table
    from llmplan.plan import build_plans
    from llmplan.scaling import BESIROGLU_2024
    from llmplan.scenario import Scenario

    whole = fit(fit_table(core["core.training_runs"], core["core.throughput"]))
    chain = step.Chain(whole, step_model)
    acc = core["core.accelerators"].filter(pl.col("accelerator") == "H100-80GB")
    sc = Scenario(targets=["10B"], accelerators=["H100-80GB"], cluster_sizes=[64], policies=["chinchilla"], mixture={"en": 1.0})
    dense = build_plans(sc, chain, acc, BESIROGLU_2024, None)[0].row(0, named=True)
    alone = build_plans(sc, whole, acc, BESIROGLU_2024, None)[0].row(0, named=True)
    assert dense["gpu_hours_p50"] == pytest.approx(alone["gpu_hours_p50"], rel=1e-9)
    assert 0 < dense["goodput_p50"] <= 1 and dense["step_mfu_p50"] <= step.MAX_MFU
    fp8 = build_plans(sc.model_copy(update={"precision": "fp8"}), chain, acc, BESIROGLU_2024, None)[0].row(0, named=True)
    b = step_model.beta
    # FP8: the step ratio is 10^b_fp8 × (FP8 peak ÷ BF16 peak)
    assert dense["gpu_hours_p50"] / fp8["gpu_hours_p50"] == pytest.approx(10 ** b["x_fp8"] * 1979 / 989, rel=1e-6)
    moe = build_plans(sc.model_copy(update={"targets": ["80B"], "active_fraction": 0.125}), chain, acc, BESIROGLU_2024,
                      None)[0].row(0, named=True)
    assert moe["training_flop"] == pytest.approx(6 * 10e9 * 20 * 80e9)            # FLOPs on the 10B active …
    assert moe["memory_per_gpu_gib"] > dense["memory_per_gpu_gib"]                  # … memory on all 80B
    assert moe["ep"] > 1


def test_fp8_needs_the_accelerators_fp8_peak(core, step_model):
    from llmplan.efficiency import fit, fit_table
    from llmplan.errors import LlmplanError
    from llmplan.plan import build_plans
    from llmplan.scaling import BESIROGLU_2024
    from llmplan.scenario import Scenario

    whole = fit(fit_table(core["core.training_runs"], core["core.throughput"]))
    acc = core["core.accelerators"].filter(pl.col("accelerator") == "A100-80GB")
    sc = Scenario(targets=["7B"], accelerators=["A100-80GB"], cluster_sizes=[8], precision="fp8", mixture={"en": 1.0})
    with pytest.raises(LlmplanError, match="A100-80GB has no FP8 peak"):
        build_plans(sc, step.Chain(whole, step_model), acc, BESIROGLU_2024, None)


def test_step_backtest_holds_out_releases_models_and_frameworks(core):
    bt = step.step_backtest(core["core.step_benchmarks"])
    assert set(bt["split"]) == {"per step: leave one release out", "per step: leave one model out",
                                "per step: leave one framework out"}
    # a framework with one release is never "left out by release" (that would be the framework split)
    assert "llm-foundry" not in bt.filter(pl.col("split") == "per step: leave one release out")["source_group"].to_list()
    r = bt.row(0, named=True)
    assert r["abs_log10_err"] == pytest.approx(abs(math.log10(r["pred_p50"] / r["actual"])))
    assert r["pred_p10"] <= r["pred_p50"] <= r["pred_p90"]
