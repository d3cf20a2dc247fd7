"""Goodput from interruptions and checkpoints (llmplan.goodput): the physics against hand
arithmetic from the Llama 3 paper's numbers, the Young/Daly interval against a numerical optimum,
the default rate against its data file, the residual split against simulated runs with a known
answer, and the plan columns and options through the CLI."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import optimize, stats

from llmplan import goodput as gp

DATA = Path(__file__).resolve().parents[2] / "data"

# Llama 3 (Dubey et al. 2024, §3.3.4): 419 unexpected interruptions in 54 days on 16,384 H100.
LLAMA3_RATE = 419 / (16384 * 54 * 24)                 # per GPU-hour = 1.973e-5
# Llama 3 §3.3.1: Tectonic sustains 2 TB/s for the 16K-GPU cluster = 2,048 nodes of 8.
LLAMA3_NODE_BW = 2e12 / 2048                          # bytes/s per node
RESTART_H = 11 / 60


def by_hand(gpus: int, params: float, rate: float, node_bw: float, restart_h: float) -> dict:
    """The goodput formula written out: MTBF = 1/(rate·GPUs); δ = 14 B/param ÷ (bandwidth × nodes);
    τ = √(2δ·MTBF); goodput = 1 − δ/τ − (R + τ/2)/MTBF."""
    mtbf = 1 / (rate * gpus)
    nodes = math.ceil(gpus / 8)
    delta = 14 * params / (node_bw * nodes) / 3600
    tau = math.sqrt(2 * delta * mtbf)
    return {"mtbf": mtbf, "delta": delta, "tau": tau, "goodput": 1 - delta / tau - (restart_h + tau / 2) / mtbf}


def test_10b_on_20_h100_loses_almost_nothing():
    h = by_hand(20, 10e9, LLAMA3_RATE, LLAMA3_NODE_BW, RESTART_H)
    # 20 GPUs: one interruption every 1/(20 × 1.973e-5) = 2,534 h; 140 GB over 3 nodes at 0.98 GB/s = 48 s
    assert h["mtbf"] == pytest.approx(2534, rel=1e-3) and h["delta"] * 3600 == pytest.approx(47.6, rel=0.01)
    row = gp.goodput(20, 10e9, storage_bytes_per_s=LLAMA3_NODE_BW, restart_hours=RESTART_H,
                     rate_per_gpu_hour=LLAMA3_RATE).row(0, named=True)
    assert row["mtbf_hours"] == pytest.approx(h["mtbf"]) and row["checkpoint_interval_hours"] == pytest.approx(h["tau"])
    assert row["goodput_physics"] == pytest.approx(h["goodput"]) and row["goodput_physics"] >= 0.85
    # with the shipped defaults (a combined rate, 1 GB/s a node) too
    assert gp.goodput(20, 10e9)["goodput_p50"][0] >= 0.85


def test_405b_on_16384_h100_matches_llama3():
    h = by_hand(16384, 405e9, LLAMA3_RATE, LLAMA3_NODE_BW, RESTART_H)
    assert h["mtbf"] == pytest.approx(54 * 24 / 419, rel=1e-9)        # one every 3.09 h, as Meta reports
    row = gp.goodput(16384, 405e9, storage_bytes_per_s=LLAMA3_NODE_BW, restart_hours=RESTART_H,
                     rate_per_gpu_hour=LLAMA3_RATE).row(0, named=True)
    assert row["goodput_physics"] == pytest.approx(h["goodput"])
    assert 0.85 <= row["goodput_physics"] <= 0.95 and row["goodput_physics"] > 0.90     # Llama 3: "> 90 %"
    assert 0.85 <= gp.goodput(16384, 405e9)["goodput_p50"][0] <= 0.95                    # the shipped defaults


def test_the_checkpoint_interval_is_the_numerical_optimum():
    """Young 1974: time lost per hour δ/τ + τ/(2·MTBF) is least at τ = √(2δ·MTBF)."""
    for gpus, params in ((64, 7e9), (16384, 405e9), (1024, 70e9)):
        row = gp.goodput(gpus, params).row(0, named=True)
        d, m = row["checkpoint_write_hours"], row["mtbf_hours"]
        best = optimize.minimize_scalar(lambda t: d / t + t / (2 * m), bounds=(1e-6, 1e4), method="bounded",
                                        options={"xatol": 1e-10})
        assert row["checkpoint_interval_hours"] == pytest.approx(best.x, rel=1e-3)


def test_interruptions_over_a_run_and_their_cost():
    wall = 500.0
    row = gp.goodput(128, 7e9, wall_hours=wall).row(0, named=True)
    n = wall * 128 * gp.RATE_PER_GPU_HOUR
    assert row["interruptions_expected"] == pytest.approx(n)
    assert row["hours_lost_interruptions"] == pytest.approx(n * (gp.RESTART_MINUTES / 60 + row["checkpoint_interval_hours"] / 2))
    # from the steps' hours instead: wall = train hours ÷ goodput
    row2 = gp.goodput(128, 7e9, train_hours=wall).row(0, named=True)
    assert row2["wall_hours"] == pytest.approx(wall / row2["goodput_p50"])


def test_vectorised_rows_equal_one_at_a_time():
    gpus, params = np.array([8, 64, 512, 4096]), np.array([1e9, 7e9, 70e9, 405e9])
    many = gp.goodput(gpus, params, wall_hours=np.array([10.0, 100.0, 1000.0, 2000.0]))
    for i in range(4):
        one = gp.goodput(int(gpus[i]), float(params[i]), wall_hours=float(many["wall_hours"][i]))
        assert many.row(i, named=True) == pytest.approx(one.row(0, named=True))
    assert (np.diff(many["goodput_p50"].to_numpy()) < 0).all()          # more GPUs and parameters lose more


def test_the_default_rate_is_the_geometric_mean_of_the_data_file():
    rows = list(csv.DictReader((DATA / "reliability" / "interruptions.csv").open(encoding="utf-8")))
    llama = next(r for r in rows if r["system"].startswith("Llama 3"))
    assert float(llama["rate_per_gpu_hour"]) == pytest.approx(LLAMA3_RATE, rel=1e-3)
    assert int(llama["interruptions"]) == 419 and int(llama["gpus"]) == 16384 and float(llama["days"]) == 54
    used = np.array([float(r["rate_per_gpu_hour"]) for r in rows if r["used_in_default"] == "true"])
    assert len(used) >= 4 and all(r["source"] for r in rows)
    assert gp.RATE_PER_GPU_HOUR == pytest.approx(stats.gmean(used), rel=0.01)
    assert gp.RATE_LOG10_SD == pytest.approx(np.std(np.log10(used), ddof=1), abs=0.01)
    # the RSC-1 row's own check: 6.5 failures per 1,000 node-days → a 2,048-node job fails every 1.8 h
    rsc1 = next(r for r in rows if r["system"].startswith("Meta RSC-1"))
    assert 1 / (float(rsc1["rate_per_gpu_hour"]) * 16384) == pytest.approx(1.8, abs=0.05)


def test_the_residual_split_recovers_a_known_step_trend():
    """Simulated public runs: achieved = step × physics goodput × 10^(published level) × a step-side
    factor 10^(a + b·min(year − 2024, 0) + c·(log10 active − 10) + family effect) × run noise.
    The fit must find a, b and c, the family spread, and leave the goodput
    residual at the published runs' level."""
    rng = np.random.default_rng(3)
    n, n_fam = 240, 40
    fam = rng.integers(0, n_fam, n)
    fam_effect = rng.normal(0, 0.10, n_fam)
    years = rng.integers(2018, 2026, n)
    gpus = rng.choice([64, 256, 1024, 4096], n).astype(float)
    params = 10 ** rng.uniform(9, 11.5, n)
    active = params * np.where(rng.random(n) < 0.2, 0.1, 1.0)          # some MoE runs
    phys = gp.goodput(gpus, params)["goodput_physics"].to_numpy()
    level, _ = gp.published_residual()
    a, b, c = -0.15, 0.12, 0.06
    step = 10 ** rng.uniform(2, 4, n)
    x = a + b * np.minimum(years - 2024, 0) + c * (np.log10(active) - 10) + fam_effect[fam] + rng.normal(0, 0.05, n)
    achieved = step * phys * 10 ** (level + x)
    tokens = 10 ** rng.uniform(11, 13, n)
    runs = pl.DataFrame({"run_key": [f"r{i}" for i in range(n)], "family": [f"f{k}" for k in fam], "year": years,
                         "accelerator": "H100-80GB", "gpu_count": gpus, "params": params, "active_params": active,
                         "tokens": tokens, "gpu_hours": tokens / (achieved * 3600), "step_tokens_per_s_p50": step})
    res = gp.fit_residual(runs)
    assert res.step_level == pytest.approx(a, abs=0.04) and res.step_slope == pytest.approx(b, abs=0.01)
    assert res.step_size == pytest.approx(c, abs=0.02)
    assert res.step_family_sd == pytest.approx(0.10, rel=0.35)
    # a new run of a new family: family and run spread together, √(0.10² + 0.05²) = 0.112
    assert res.step_sd == pytest.approx(math.hypot(0.10, 0.05), rel=0.3)
    assert res.level == level and res.n == n
    t = res.table
    # per run: achieved = step × multiplier × physics × residual × what is left (≈ 1)
    recon = t["step_tokens_per_s_p50"] * t["step_multiplier"] * t["goodput_physics"] * t["goodput_residual"] * t["left_over"]
    assert np.allclose(recon.to_numpy(), t["achieved_tokens_per_s"].to_numpy())


def test_published_level_is_llama3_over_its_physics():
    """0.90 (Llama 3's > 90 %) ÷ physics for 16,384 GPUs and 405B, at most 1; spread from Gemini's 85–97 %."""
    level, sd = gp.published_residual()
    phys = gp.goodput(16384, 405e9)["goodput_physics"][0]
    assert 10 ** level == pytest.approx(min(0.90 / phys, 1.0))
    assert sd == pytest.approx(math.log10(0.97 / 0.85) / (2 * 1.2815515655446004))


def test_plan_goodput_adds_the_columns_and_uses_the_scenario():
    from llmplan.scenario import Scenario

    plans = pl.DataFrame({"params": [10e9, 405e9], "cluster_gpus": [20, 16384], "useful_gpus": [20.0, 16384.0],
                          "wall_days_p50": [10.0, 54.0]})
    slow = gp.plan_goodput(plans, Scenario(storage_gbps=0.1, restart_minutes=60))
    fast = gp.plan_goodput(plans, Scenario())
    for c in gp.PLAN_COLUMNS:
        assert c in fast.columns
    assert (slow["goodput_p50"] < fast["goodput_p50"]).all()
    assert (slow["checkpoint_interval_hours"] > fast["checkpoint_interval_hours"]).all()   # τ ∝ √δ
    assert fast["interruptions_expected"][1] == pytest.approx(54 * 24 * 16384 * gp.RATE_PER_GPU_HOUR)


@pytest.mark.parametrize("field,value", [("storage_gbps", 0.0), ("restart_minutes", -1.0)])
def test_scenario_rejects_non_positive_storage_and_restart(field, value):
    from pydantic import ValidationError

    from llmplan.scenario import CLI_OPTIONS, Scenario, explain

    with pytest.raises(ValidationError) as e:
        Scenario(**{field: value})
    msg = explain(e.value, CLI_OPTIONS)
    assert msg.startswith("--storage-gbps" if field == "storage_gbps" else "--restart-minutes") and "greater than 0" in msg


def test_cli_plan_prints_goodput_and_rejects_bad_options(built_warehouse):
    from typer.testing import CliRunner

    from llmplan.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["plan", "--params", "10B", "--gpu", "H100", "--gpus", "20", "--json", "--warehouse", str(built_warehouse)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    for k in ("goodput_p50", "interruptions_expected", "hours_lost_interruptions", "checkpoint_overhead", "goodput_residual",
              "checkpoint_interval_hours"):
        assert out[k] is not None
    assert out["goodput_p50"] >= 0.85
    # the expected interruptions are the plan's wall hours × GPUs × the rate
    assert out["interruptions_expected"] == pytest.approx(out["wall_days_p50"] * 24 * out["useful_gpus"] * gp.RATE_PER_GPU_HOUR)
    slower = json.loads(runner.invoke(app, ["plan", "--params", "10B", "--gpus", "20", "--json", "--storage-gbps", "0.01",
                                            "--restart-minutes", "120", "--warehouse", str(built_warehouse)]).stdout)
    assert slower["goodput_p50"] < out["goodput_p50"] and slower["storage_gbps"] == 0.01
    table = runner.invoke(app, ["plan", "--params", "10B", "--gpus", "20", "--warehouse", str(built_warehouse)])
    assert "interruptions expected" in " ".join(table.output.split())
    for opt in ("--storage-gbps", "--restart-minutes"):
        bad = runner.invoke(app, ["plan", "--params", "10B", "--gpus", "20", opt, "0", "--warehouse", str(built_warehouse)])
        assert bad.exit_code == 1 and f"{opt} must be greater than 0" in bad.output and "Traceback" not in bad.output
