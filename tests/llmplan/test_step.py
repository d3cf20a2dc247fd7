"""The step physics (llmplan.perf.model), the layout search (llmplan.perf.layout) and the chain
plans use (llmplan.step): expected numbers come from hand arithmetic, a brute-force loop over
candidates, or a simulation with known efficiencies."""

import math

import numpy as np
import polars as pl
import pytest

from llmplan import step
from llmplan.efficiency import fit as fit_whole
from llmplan.efficiency import fit_table
from llmplan.ingest import read_all
from llmplan.perf import layout as playout
from llmplan.perf import memory as pmem
from llmplan.perf import model as pm
from llmplan.transform import build_core
from tests.conftest import DATA

H100 = {"accelerator": "H100-80GB", "peak_bf16_flops": 989e12, "peak_fp8_flops": 1979e12, "hbm_bytes_per_s": 3.35e12,
        "nvlink_bytes_per_s": 450e9, "nvlink_domain": 8, "scaleout_bytes_per_s": 50e9, "memory_bytes": 80 * 2**30}
LLAMA3_8B = {"layers": 32, "hidden": 4096, "ffn": 14336, "heads": 32, "kv_heads": 8, "vocab": 128256}


@pytest.fixture(scope="module")
def core():
    return build_core(read_all(DATA))


@pytest.fixture(scope="module")
def step_model(core):
    return step.fit_step(core["core.step_benchmarks"], core["core.accelerators"])


def _rows(n=1, **kw):
    base = {"params": 8.03e9, "active_params": 8.03e9, "precision": "bf16", "seq_len": 8192, "global_batch_tokens": 8192 * 128,
            "gpu_count": 8.0, "tp": 1, "pp": 1, "vp": 1, "cp": 1, "ep": 1, "zero_stage": 1, "micro_batch": 1,
            "recompute": "none", "framework": None, **H100, **LLAMA3_8B}
    base.update(kw)
    return pl.DataFrame([base] * n, schema_overrides={"framework": pl.Utf8})


def test_global_batch_follows_deepseek_llm():
    """Bi et al. 2024: B_opt = 0.2920 · C^0.3271 tokens; for C = 1.2e22 that is 0.2920 · e^(0.3271 · ln 1.2e22)
    ≈ 4.87M tokens, a whole number of 4,096-token sequences."""
    b = step.global_batch_tokens(np.array([1.2e22]), 4096)[0]
    expected = 0.2920 * math.exp(0.3271 * math.log(1.2e22))
    assert b % 4096 == 0 and abs(b - expected) <= 2048
    assert step.global_batch_tokens(np.array([1.2e22]), 4096, override=8e6)[0] == round(8e6 / 4096) * 4096


def test_compute_time_of_a_llama3_8b_step_by_hand():
    """Llama 3 8B on 8 H100, 128 sequences of 8,192 tokens, no parallelism but DP 8, efficiencies 1:
    the linear layers per token 6·(32·(2·4096² + 2·4096·1024 + 3·4096·14336)) FLOPs at the BF16 peak,
    the logits 6·128256·4096, attention 12·32·8192·4096 halved by the causal skip; each accelerator
    does 1/8 of the 1,048,576 tokens."""
    rt = pm.raw_times(_rows())
    tokens = 8192 * 128 / 8
    linear = 6 * 32 * (2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 14336)
    assert rt["dense"][0] == pytest.approx(linear * tokens / 989e12, rel=1e-3)
    assert rt["logits"][0] == pytest.approx(6 * 128256 * 4096 * tokens / 989e12, rel=1e-6)
    assert rt["attn"][0] == pytest.approx(0.5 * 12 * 32 * 8192 * 4096 * tokens / 989e12, rel=1e-6)
    # MFU's convention: the full 12·L·s·h attention count beside 6·N (Megatron, torchtitan).
    assert rt["model_flops_per_token"][0] == pytest.approx(linear + 6 * 128256 * 4096 + 12 * 32 * 8192 * 4096, rel=1e-3)


def test_bubble_and_fp8_follow_their_formulas():
    """A pipeline of p = 4 stages, v = 2 virtual, m = 256/(2·1)... micro-batches: bubble (p − 1)/(v·m)
    of the busy time. FP8 halves the linear layers' time (the FP8 peak is 2× BF16) and caches their
    inputs in 1 byte, so the element-wise traffic of Llama 3 8B's layers goes from 13h + 6f to
    10h + 5f bytes a token (h 4,096, f 14,336: the QKV, projection and fc1 inputs 2h → h each, the
    fc2 input 2f → f); logits and attention stay BF16: compute (dense·989/1979 + logits + attention +
    memory·(10h + 5f)/(13h + 6f)) against (dense + logits + attention + memory)."""
    r = _rows(gpu_count=16.0, pp=4, vp=2, global_batch_tokens=8192 * 256)
    rt = pm.raw_times(r)
    dp = 16 / 4
    m = 256 / (dp * 1)
    assert rt["bubble"][0] == pytest.approx(3 / (2 * m))
    eta = pm._to_natural(pm.PRIOR_Z)
    eta["eta_gemm_fp8"] = eta["eta_gemm_bf16"]
    b16 = pm.step_seconds(rt, eta)["compute"][0]
    r8 = pm.raw_times(r.with_columns(pl.lit("fp8").alias("precision")))
    b8 = pm.step_seconds(r8, eta)["compute"][0]
    size = rt["width"][0] / (rt["width"][0] + eta["gemm_half_width"])
    g = eta["eta_gemm_bf16"] * size
    dense, mem = rt["dense"][0] / g, rt["mem"][0] / eta["eta_mem"]
    rest = b16 - dense - mem
    h, f = 4096, 14336
    assert b8 == pytest.approx(dense * 989 / 1979 + rest + mem * (10 * h + 5 * f) / (13 * h + 6 * f), rel=1e-9)  # H100: 989 BF16, 1,979 FP8
    assert 1.0 < b16 / b8 < 2.0                              # Amdahl: less than the peak's 2×


def test_the_fit_recovers_known_efficiencies_from_simulated_steps():
    """Simulate 300 steps from chosen efficiencies and two framework multipliers (±0.05 in log10)
    over varied sizes, layouts and precisions, with 2 % noise; the fit must find η_gemm (BF16 and FP8)
    within 10 % and the frameworks' difference within 0.02."""
    rng = np.random.default_rng(7)
    truth = {**pm._to_natural(pm.PRIOR_Z), "eta_gemm_bf16": 0.7, "eta_gemm_fp8": 0.55, "eta_attn": 0.4, "x_tp": 0.6}
    rows = []
    for i in range(300):
        tp = int(rng.choice([1, 2, 4, 8]))
        pp = int(rng.choice([1, 2, 4]))
        rows.append({"params": 70.6e9, "active_params": 70.6e9, "layers": 80, "hidden": 8192, "ffn": 28672, "heads": 64,
                     "kv_heads": 8, "vocab": 128256} if i % 2 else {"params": 8.03e9, "active_params": 8.03e9, **LLAMA3_8B})
        rows[-1].update({"precision": "fp8" if rng.random() < 0.5 else "bf16", "seq_len": int(rng.choice([4096, 8192])),
                         "gpu_count": float(tp * pp * 8), "tp": tp, "pp": pp, "vp": 1, "cp": 1, "ep": 1, "zero_stage": 1,
                         "micro_batch": 1, "recompute": "none", "global_batch_tokens": 8192.0 * 512,
                         "framework": "a" if i % 3 else "b", "source_group": f"s{i}", "model": f"m{i}", **H100})
    f = pl.DataFrame(rows)
    y = pm.log10_rate(pm.raw_times(f), truth) + np.where(f["framework"] == "a", 0.05, -0.05) + rng.normal(0, 0.0087, f.height)
    fitted = pm.fit(f.with_columns(pl.Series("tokens_per_s_per_gpu", 10 ** y)))
    assert fitted.eta["eta_gemm_bf16"] == pytest.approx(0.7, rel=0.10)
    assert fitted.eta["eta_gemm_fp8"] == pytest.approx(0.55, rel=0.10)
    fa, fb = fitted.frameworks["a"][0], fitted.frameworks["b"][0]
    assert fa - fb == pytest.approx(0.10, abs=0.02)


def test_one_measured_row_moves_the_stack_by_its_posterior_mean(step_model):
    """A new stack's effect u ~ N(0, τ²) and a measured row's residual r − u ~ Student-t(ν, s): one row
    20 % faster than the model says moves the stack to E[u | r] = ∫u·φ(u/τ)·t_ν((r − u)/s) du ÷ ∫φ·t_ν,
    integrated here by scipy.integrate.quad with the fit's τ_stack, s and ν; the prediction moves by
    10^E[u|r], strictly between nothing and the full 20 %, and the accelerator's effect is untouched."""
    from scipy import integrate, stats
    r = _rows().with_columns(pl.lit("mine").alias("framework"))
    base = step_model.predict(r.with_columns(pl.lit(None, pl.Utf8).alias("framework")), known_framework=False)
    acc_off = step_model.accelerators["H100-80GB"][0]
    p50 = base["tokens_per_s_per_gpu_p50"][0]
    measured = r.with_columns(pl.lit(p50 * 1.2).alias("tokens_per_s_per_gpu"))
    cal = step_model.calibrate(measured, "mine")
    tau, sc, df, res = step_model.tau_stack, step_model.row_scale, step_model.row_df, math.log10(1.2)
    assert tau > 0 and sc > 0 and df >= 1
    dens = lambda u: stats.norm.pdf(u, 0, tau) * stats.t.pdf((res - u) / sc, df)   # noqa: E731
    expected = integrate.quad(lambda u: u * dens(u), -1, 1, points=[0, res])[0] / integrate.quad(dens, -1, 1, points=[0, res])[0]
    assert cal.frameworks["mine"][0] == pytest.approx(expected, abs=2e-4)
    after = cal.predict(r)["tokens_per_s_per_gpu_p50"][0]
    assert after == pytest.approx(p50 * 10 ** cal.frameworks["mine"][0], rel=1e-9)
    assert p50 < after < 1.2 * p50
    assert acc_off == step_model.accelerators["H100-80GB"][0]


def test_stack_posterior_is_the_normal_mean_when_the_tails_are_thin():
    """With ν → ∞ the Student-t is a normal, and n rows of mean r̄ give the conjugate result
    E[u] = n·r̄ ÷ (n + s²/τ²), sd = s ÷ √(n + s²/τ²); with ν = 2 a row ten times further out moves the
    stack less than a near one (the t likelihood lets an odd row go), which the normal never does."""
    r = np.array([0.08, 0.02, 0.05])
    mean, sd = pm.stack_posterior(r, np.ones(3), 0.04, 0.06, 1e7)
    k = 0.06 ** 2 / 0.04 ** 2
    assert float(mean) == pytest.approx(3 * r.mean() / (3 + k), abs=1e-4)
    assert float(sd) == pytest.approx(0.06 / math.sqrt(3 + k), abs=1e-4)
    near, far = pm.stack_posterior(np.array([[0.08], [0.8]]), np.ones(1), 0.04, 0.06, 2.0)[0]
    assert 0 < far < near < 0.08


def test_stack_spreads_recover_a_simulated_new_stack():
    """Eight frameworks with known offsets ±0.06 (log10; four each way) over the same mix of layouts
    and precisions, rows scattered Student-t (ν = 3, scale 0.03) about them. Left out, a framework
    meets a model whose zero is the other seven's mean, ∓0.06/7, so its offset as seen is
    0.06·(1 + 1/7) = 0.0686 either way: τ_stack near that; the rows' scatter a t of scale near 0.03
    with heavy tails (ν well below a normal's)."""
    rng = np.random.default_rng(11)
    truth = {**pm._to_natural(pm.PRIOR_Z), "eta_gemm_bf16": 0.7, "eta_gemm_fp8": 0.55}
    rows = []
    for i in range(320):
        tp, pp = int(rng.choice([1, 2, 4, 8])), int(rng.choice([1, 2, 4]))
        rows.append({"params": 8.03e9, "active_params": 8.03e9, **LLAMA3_8B, "precision": "fp8" if (i // 8) % 2 else "bf16",
                     "seq_len": 8192, "gpu_count": float(tp * pp * 8), "tp": tp, "pp": pp, "vp": 1, "cp": 1, "ep": 1,
                     "zero_stage": 1, "micro_batch": 1, "recompute": "none", "global_batch_tokens": 8192.0 * 512,
                     "framework": f"f{i % 8}", "source_group": f"s{i}", "model": f"m{i}", **H100})
    f = pl.DataFrame(rows)
    offset = np.where(np.arange(320) % 8 < 4, 0.06, -0.06)
    y = pm.log10_rate(pm.raw_times(f), truth) + offset + 0.03 * rng.standard_t(3, 320)
    m = pm.fit(f.with_columns(pl.Series("tokens_per_s_per_gpu", 10 ** y)))
    assert m.tau_stack == pytest.approx(0.06 * 8 / 7, rel=0.15)
    assert m.row_scale == pytest.approx(0.03, rel=0.3)
    assert m.row_df < 8


def test_the_search_picks_the_fastest_layout_that_fits(step_model):
    """Brute force in a plain loop over every candidate for Llama 3 70B on 64 H100: keep those that
    divide the cluster, keep TP within the NVLink domain and dividing the heads, give each pipeline at
    least as many micro-batches as stages, and fit 90 % of 80 GiB (perf.memory.layout_bytes); the
    search's step time must be the loop's minimum."""
    rows = _rows(params=70.6e9, active_params=70.6e9, layers=80, hidden=8192, ffn=28672, heads=64, kv_heads=8,
                 gpu_count=64.0, global_batch_tokens=8192 * 512).drop("tp", "pp", "vp", "cp", "ep", "zero_stage", "micro_batch",
                                                                     "recompute")
    got = playout.search(rows, step_model).row(0, named=True)
    best, chosen = math.inf, None
    for c in playout.candidates(False, False).iter_rows(named=True):
        tp, pp, cp = c["tp"], c["pp"], c["cp"]
        if 64 % (tp * pp * cp) or tp > 8 or 64 % tp or 80 < pp * c["vp"]:
            continue
        dp = min(64 // (tp * pp * cp), 512 // c["micro_batch"])
        m = 512 / (c["micro_batch"] * dp)
        if pp > 1 and m < pp:
            continue
        r = rows.with_columns(*[pl.lit(v).alias(k) for k, v in c.items()], pl.lit(float(dp)).alias("dp"))
        shape = pm.shape_frame(r)
        mem = pmem.layout_bytes(shape, 8192.0, float(c["micro_batch"]), float(tp), float(pp), float(c["vp"]), float(dp),
                                float(cp), 1.0, c["zero_stage"], c["recompute"])["total"]
        if np.asarray(mem).item() > 0.9 * 80 * 2**30:
            continue
        t = pm.step_seconds(pm.raw_times(r, shape), step_model.eta)["step"][0]
        if t < best:
            best, chosen = t, c
    # The search's p50 carries the accelerator's learned multiplier; the physics' step is the loop's.
    mine = pm.step_seconds(pm.raw_times(rows.with_columns(*[pl.lit(got[k]).alias(k) for k in chosen], pl.lit(float(got["dp"])).alias("dp"))),
                           step_model.eta)["step"][0]
    assert got["layout_fits"] and mine == pytest.approx(best, rel=1e-9)
    assert got["tp"] <= 8 and 64 % got["tp"] == 0


def test_a_cluster_beyond_the_batch_keeps_only_what_the_batch_can_use(step_model):
    """64 sequences of 4,096 tokens, one per micro-batch: at most 64 data-parallel ranks busy per
    model replica; on 4,096 accelerators most idle, and max_useful_gpus says how many can work."""
    rows = _rows(gpu_count=4096.0, global_batch_tokens=4096 * 64, seq_len=4096).drop(
        "tp", "pp", "vp", "cp", "ep", "zero_stage", "micro_batch", "recompute")
    r = playout.search(rows, step_model).row(0, named=True)
    assert r["useful_gpus"] < 4096
    assert r["useful_gpus"] <= r["tp"] * r["pp"] * r["cp"] * 64
    assert r["max_useful_gpus"] == r["tp"] * r["pp"] * r["cp"] * (64 // r["micro_batch"])


def test_plans_change_with_precision_sequence_and_shape(core, step_model):
    """What the regression could not do: FP8 shortens a 10B plan on H100 (its linear layers run at the
    FP8 peak), 8K sequences lengthen it (attention grows with s), and a user's shape is the one used."""
    from llmplan.plan import build_plans
    from llmplan.scaling import BESIROGLU_2024
    from llmplan.scenario import Scenario

    whole = fit_whole(fit_table(core["core.training_runs"], core["core.throughput"]))
    chain = step.Chain(whole, step_model)
    acc = core["core.accelerators"].filter(pl.col("accelerator") == "H100-80GB")
    sc = Scenario(targets=["10B"], accelerators=["H100-80GB"], cluster_sizes=[20], policies=["chinchilla"], mixture={"en": 1.0})
    hours = {}
    for name, upd in (("bf16", {}), ("fp8", {"precision": "fp8"}), ("8k", {"seq_len": 8192}),
                      ("shape", {"layers": 40, "hidden": 4096, "heads": 32, "kv_heads": 8})):
        p, _ = build_plans(sc.model_copy(update=upd), chain, acc, BESIROGLU_2024, None)
        hours[name] = p.row(0, named=True)
    assert hours["fp8"]["gpu_hours_p50"] < hours["bf16"]["gpu_hours_p50"]
    assert hours["8k"]["gpu_hours_p50"] > hours["bf16"]["gpu_hours_p50"]
    assert hours["shape"]["layers"] == 40 and hours["shape"]["hidden"] == 4096
    for r in hours.values():
        assert r["gpu_hours_p10"] < r["gpu_hours_p50"] < r["gpu_hours_p90"]
        assert 0 < r["goodput_p50"] <= 1


def test_bad_per_step_rows_name_their_column():
    """TP that does not divide the heads, EP above the experts, a shape far from the size."""
    f = pl.DataFrame({"source_line": [2, 3, 4], "params_b": [8.03, 47.0, 70.0], "active_params_b": [None, 13.0, None],
                      "gpu_count": [8, 64, 64], "tp": [3, 1, 1], "pp": [1, 1, 1], "ep": [1, 16, 1],
                      "layers": [None, None, 10], "hidden": [None, None, 1024], "ffn": [None, None, 4096], "experts": [None, 8, None],
                      "precision": ["bf16", "bf16", "bf16"], "accelerator": ["H100-80GB"] * 3, "peak_fp8_flops": [1979e12] * 3})
    problems = step.check_rows(f, "configs.csv")
    text = [str(p) for p in problems]
    assert any("configs.csv" in t and "line 2" in t and "tp" in t and "heads" in t for t in text), text
    assert any("line 3" in t and "ep" in t and "experts" in t for t in text), text
    assert any("line 4" in t and "layers" in t and "far from params_b" in t for t in text), text


def test_every_measured_row_in_turn_is_the_calibrated_product_path(core, step_model):
    """The backtest's 'each row in turn' split is computed in one vectorised pass; where its measured
    row is the first by source line it must give what `calibrate` + `predict` give in the first-row
    split (p10, p50, p90 of every other row), and each framework's pairs must weigh n − 1 rows in all,
    as in the first-row split."""
    bt = step.step_backtest(core["core.step_benchmarks"], core["core.accelerators"], full=step_model, units=("framework",),
                            every_measured_row=True)
    first = bt.filter(pl.col("split") == step.MEASURED_SPLIT)
    every = bt.filter(pl.col("split") == step.EVERY_MEASURED_SPLIT)
    lead = bt.filter(pl.col("split") == "per step: leave one framework out").group_by("framework").agg(
        pl.col("source_line").min().alias("measured_line"), pl.len().alias("n"))
    same = every.join(lead, on=["framework", "measured_line"]).sort("framework", "source_line")
    assert same.height == first.height > 0
    for c in ("pred_p10", "pred_p50", "pred_p90"):
        np.testing.assert_allclose(same[c].to_numpy(), first.sort("framework", "source_line")[c].to_numpy(), rtol=1e-9)
    w = every.group_by("framework").agg(pl.col("weight").sum()).join(lead, on="framework")
    np.testing.assert_allclose(w["weight"].to_numpy(), (w["n"] - 1).to_numpy(), rtol=1e-9)


def test_public_runs_are_computed_at_what_they_published(core):
    """run_frame takes a run's published sequence, batch, accelerator count and shape where its row
    has them: DeepSeek-V3 (report §3.1: 2,048 H800; §4.2: 4K sequences, 15,360 of them per step) gets
    the shape of model_shapes.csv's DeepSeekV3 row (its config.json: 61 layers, hidden 7,168, 256
    experts); a row without them keeps the year's context and the batch law."""
    runs = core["core.training_runs"].filter(pl.col("fit_exclusion_reason").is_null())
    f = step.run_frame(runs, core["core.accelerators"], core["core.model_shapes"])
    v3 = f.filter(pl.col("run_key") == "DeepSeek-V3").row(0, named=True)
    assert (v3["gpu_count"], v3["seq_len"], v3["global_batch_tokens"]) == (2048, 4096, 15360 * 4096)
    assert (v3["layers"], v3["hidden"], v3["experts"], v3["top_k"]) == (61, 7168, 256, 8)
    other = f.filter(pl.col("run_key") == "Phi-4").row(0, named=True)      # states none of them
    assert other["seq_len"] == 8192 and other["layers"] is None
    assert other["global_batch_tokens"] == pytest.approx(
        step.global_batch_tokens(np.array([6 * other["active_params"] * other["tokens"]]), 8192)[0])
