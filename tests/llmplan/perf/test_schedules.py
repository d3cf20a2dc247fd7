"""Pipeline schedules (DeepSeek-V3 Table 2) and published layouts: the bubbles by hand from the
papers' formulas, DualPipe's overlapped all-to-all, and the layout search pinned to what a run
published."""

import numpy as np
import polars as pl
import pytest

from llmplan import step
from llmplan.ingest import read_all
from llmplan.perf import layout as playout
from llmplan.perf import model as pm
from llmplan.transform import build_core
from tests.conftest import DATA

H800 = {"accelerator": "H800", "peak_bf16_flops": 989e12, "peak_fp8_flops": 1979e12, "hbm_bytes_per_s": 3.35e12,
        "nvlink_bytes_per_s": 200e9, "nvlink_domain": 8, "scaleout_bytes_per_s": 50e9, "memory_bytes": 80 * 2**30}
# A small MoE (DeepSeek-style: many fine experts, top-k routing) so that EP and its all-to-all exist.
MOE = {"params": 16e9, "active_params": 2.8e9, "layers": 28, "hidden": 2048, "ffn": 10944, "heads": 16, "kv_heads": 16,
       "vocab": 102400, "experts": 64, "top_k": 6, "moe_ffn": 1408, "shared_experts": 2}


def _rows(**kw):
    base = {**MOE, "precision": "bf16", "seq_len": 4096, "global_batch_tokens": 4096 * 512, "gpu_count": 64.0,
            "tp": 1, "pp": 4, "vp": 1, "cp": 1, "ep": 8, "zero_stage": 1, "micro_batch": 1, "recompute": "none",
            "framework": None, "pp_schedule": None, **H800}
    base.update(kw)
    return pl.DataFrame([base], schema_overrides={"framework": pl.Utf8, "pp_schedule": pl.Utf8})


def test_bubbles_follow_deepseek_v3_table2_and_zero_bubble():
    """DeepSeek-V3 Table 2 (arXiv 2412.19437 §3.2.1), F a chunk's forward, B its full backward, W its
    weight-gradient part, F&B an overlapped forward-backward pair: 1F1B (PP−1)(F+B), ZB1P (PP−1)(F+B−2W),
    DualPipe (PP/2−1)(F&B+B−3W). A stage's busy time is m·(F+B). Without recompute the backward is
    twice the forward and the weight gradient one GEMM per forward GEMM: F = 1, B = 2, W = 1. PP 16,
    m = 32 micro-batches: busy 32·3 = 96; 1F1B 15·3 = 45; ZB1P 15·(3 − 2) = 15 (Qi et al. 2023: ZB-H1
    is a third of 1F1B); DualPipe with F&B = F + B = 3 of compute: 7·(3 + 2 − 3) = 14. With full
    recompute the backward re-runs the forward: F = 1, B = 3, W = 1, busy 32·4 = 128: 1F1B 15·4 = 60,
    ZB1P 15·(4 − 2) = 30, DualPipe 7·(4 + 3 − 3) = 28. Megatron's interleaved 1F1B with v = 2:
    (p − 1)/(v·m) = 15/64. One stage: no bubble whatever the schedule."""
    sched = np.array(["1f1b", "zero-bubble", "dualpipe", ""])
    none = pm.pipeline_bubble(16, np.array([1, 1, 1, 2]), 32, sched, 1.0 / 3.0)
    assert none == pytest.approx([45 / 96, 15 / 96, 14 / 96, 15 / 64])
    full = pm.pipeline_bubble(16, np.array([1, 1, 1, 2]), 32, sched, 0.25)
    assert full == pytest.approx([60 / 128, 30 / 128, 28 / 128, 15 / 64])
    assert pm.pipeline_bubble(1, 1, 32, sched, 1.0 / 3.0) == pytest.approx([0, 0, 0, 0])


def test_raw_times_take_the_rows_schedule():
    """The row's pp_schedule picks the bubble: PP 4 on 64 GPUs is DP 16, 512 sequences → m = 32;
    zero-bubble (3)(1 − 2/3)/32 = 1/32, DualPipe (4/2 − 1)(2 − 4/3)/32 = (2/3)/32, null the generic
    (4 − 1)/(1·32)."""
    assert pm.raw_times(_rows(pp_schedule="zero-bubble"))["bubble"][0] == pytest.approx(1 / 32)
    assert pm.raw_times(_rows(pp_schedule="dualpipe"))["bubble"][0] == pytest.approx((2 / 3) / 32)
    assert pm.raw_times(_rows())["bubble"][0] == pytest.approx(3 / 32)


def test_dualpipe_hides_the_all_to_all_behind_compute_on_112_of_132_sms():
    """DeepSeek-V3 §3.2.1/§3.2.2/§3.5.1: the all-to-all and PP communication hide behind compute while
    20 of the H800's 132 SMs run the communication kernels, so compute takes 132/112 as long and the
    all-to-all costs only what exceeds it. Same row, generic schedule vs DualPipe: compute × 132/112;
    with the raw all-to-all set to half the slowed compute nothing is exposed; at 1.5× the slowed
    compute, half of it shows, and the p2p beyond it shows in full."""
    eta = pm._to_natural(pm.PRIOR_Z)
    plain = pm.step_seconds(pm.raw_times(_rows()), eta)
    rt = pm.raw_times(_rows(pp_schedule="dualpipe"))
    dual = pm.step_seconds(rt, eta)
    slowed = plain["compute"][0] * 132 / 112
    assert dual["compute"][0] == pytest.approx(slowed)
    assert plain["ep_exposed"][0] > 0                          # the generic schedule pays a learned share x_ep
    for ep, pp, want_ep, want_pp in ((0.5, 0.1, 0.0, 0.0), (1.5, 0.2, 0.5, 0.2)):
        r = dict(rt, ep=np.array([ep * slowed]), pp=np.array([pp * slowed]))
        got = pm.step_seconds(r, eta)
        assert got["ep_exposed"][0] == pytest.approx(want_ep * slowed)
        assert got["pp_exposed"][0] == pytest.approx(want_pp * slowed)


def test_the_search_keeps_a_rows_published_layout(core):
    """pin_* columns fix a row's TP, PP, EP and ZeRO stage even where the choice lists lack the value
    (BLOOM's PP 12: bigscience tr11-176B-ml.slurm, TP_SIZE=4, PP_SIZE=12); the rest is searched. A
    named schedule runs without virtual stages, and DualPipe needs an even PP: with PP free on a
    DualPipe row the search never returns an odd one; the best pinned layout is the fastest of the
    candidates that match the pins (brute force over them)."""
    sm = step.fit_step(core["core.step_benchmarks"], core["core.accelerators"])
    free = _rows(gpu_count=192.0, global_batch_tokens=4096 * 768).drop("tp", "pp", "vp", "cp", "ep", "zero_stage", "micro_batch", "recompute")
    pinned = free.with_columns(pl.lit(12).alias("pin_pp"), pl.lit(1).alias("pin_tp"), pl.lit(4).alias("pin_ep"),
                               pl.lit(3).alias("pin_zero_stage"), pl.lit("1f1b").alias("pp_schedule"))
    got = playout.search(pinned, sm).row(0, named=True)
    assert (got["tp"], got["pp"], got["ep"], got["zero_stage"], got["vp"]) == (1, 12, 4, 3, 1)
    best = min(pm.step_seconds(pm.raw_times(pinned.with_columns(
        pl.lit(12).alias("pp"), pl.lit(1).alias("tp"), pl.lit(4).alias("ep"), pl.lit(3).alias("zero_stage"), pl.lit(1).alias("vp"),
        pl.lit(1).alias("cp"), pl.lit(mb).alias("micro_batch"), pl.lit(rc).alias("recompute"),
        pl.lit(float(min(16, 768 // mb))).alias("dp"))), sm.eta)["step"][0]
        for mb in playout.MB_CHOICES for rc in playout.RECOMPUTE_CHOICES)
    mine = pm.step_seconds(pm.raw_times(pinned.with_columns(*[pl.lit(got[k]).alias(k) for k in pm.LAYOUT_COLUMNS])), sm.eta)["step"][0]
    assert got["layout_fits"] and mine == pytest.approx(best, rel=1e-9)
    dual = playout.search(free.with_columns(pl.lit("dualpipe").alias("pp_schedule")), sm).row(0, named=True)
    assert dual["pp"] % 2 == 0 and dual["vp"] == 1


@pytest.fixture(scope="module")
def core():
    return build_core(read_all(DATA))


def test_deepseek_runs_are_laid_out_as_their_reports_say(core):
    """DeepSeek-V3 report §3.2: 16-way PP, 64-way EP, ZeRO-1 DP, no TP, DualPipe; DeepSeek-V2 report
    §3.1.3: 16-way zero-bubble PP, 8-way EP, ZeRO-1, no TP. The chain lays them out at exactly that
    (DP the rest: 2,048 / 16 = 128 for V3), and a run that published nothing is searched."""
    runs = core["core.training_runs"].filter(pl.col("fit_exclusion_reason").is_null())
    sm = step.fit_step(core["core.step_benchmarks"], core["core.accelerators"])
    laid = step.runs_with_step(runs.filter(pl.col("run_key").is_in(["DeepSeek-V3", "DeepSeek-V2", "Phi-4"])), sm,
                               core["core.accelerators"], core["core.model_shapes"])
    v3 = laid.filter(pl.col("run_key") == "DeepSeek-V3").row(0, named=True)
    assert (v3["tp"], v3["pp"], v3["ep"], v3["zero_stage"], v3["dp"], v3["pp_schedule"]) == (1, 16, 64, 1, 128, "dualpipe")
    v2 = laid.filter(pl.col("run_key") == "DeepSeek-V2").row(0, named=True)
    assert (v2["tp"], v2["pp"], v2["ep"], v2["zero_stage"], v2["pp_schedule"]) == (1, 16, 8, 1, "zero-bubble")
    assert v3["layout_fits"] and v2["layout_fits"]
    phi = laid.filter(pl.col("run_key") == "Phi-4").row(0, named=True)
    assert phi["pin_tp"] is None and phi["pp_schedule"] is None
