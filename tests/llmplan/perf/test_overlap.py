"""Data-parallel overlap: what the compute beside a collective cannot hide is exposed, worked by hand."""

import numpy as np
import polars as pl
import pytest

from llmplan.perf.model import PRIORS, dp_exposed, raw_times, step_seconds


def _rt(**kw):
    base = dict(zero3=np.array([True]), fwd_share=np.array([1 / 3]), layer_passes=np.array([100.0]), m=np.array([2.0]),
                fsdp_ag_layer=np.array([0.0]), fsdp_rs_layer=np.array([0.0]), dp_rs_step=np.array([0.0]),
                dp_ag_step=np.array([0.0]))
    base.update({k: np.atleast_1d(np.asarray(v, float) if k != "zero3" else np.asarray(v)) for k, v in kw.items()})
    return base


def test_fsdp_exposure_per_layer_worked():
    # 12 s of compute over 50 layers × 2 micro-batches = 100 layer passes: 0.12 s a pass, forward ⅓ = 0.04 s,
    # backward 0.08 s. Each layer's all-gather takes 0.05 s, its reduce-scatter 0.05 s.
    # Forward: max(0, 0.05 − 0.04) = 0.01 exposed, 0.04 hidden. Backward: AG + RS = 0.10 against 0.08:
    # 0.02 exposed, 0.08 hidden. Per pass 0.03 exposed, 0.12 hidden; × 100 passes = 3.0 s + x · 12.0 s.
    rt = _rt(fsdp_ag_layer=0.05, fsdp_rs_layer=0.05)
    fsdp, once = dp_exposed(rt, np.array([12.0]), 0.1)
    assert fsdp[0] == pytest.approx(3.0 + 0.1 * 12.0)
    assert once[0] == 0
    # A whole-step floor would have said max(0, 100 × 0.15 − 12) = 3.0 too here, but the per-layer sum differs
    # when the collectives are lopsided: all-gathers of 0.02 s and reduce-scatters of 0.09 s hide nothing of the
    # backward's excess (0.11 − 0.08 = 0.03 a pass) although the forward has 0.02 s to spare: 3.0 s exposed, not 1.0.
    rt = _rt(fsdp_ag_layer=0.02, fsdp_rs_layer=0.09)
    fsdp, _ = dp_exposed(rt, np.array([12.0]), 0.0)
    assert fsdp[0] == pytest.approx(100 * (0.0 + 0.03))
    assert 100 * (2 * 0.02 + 0.09) - 12.0 == pytest.approx(1.0)
    # Full recompute: the forward is ¼ of a pass (the backward re-runs it): 0.03 s forward, 0.09 s backward;
    # 0.05 − 0.03 = 0.02 and 0.10 − 0.09 = 0.01 exposed a pass: 3.0 s.
    rt = _rt(fsdp_ag_layer=0.05, fsdp_rs_layer=0.05, fwd_share=0.25)
    fsdp, _ = dp_exposed(rt, np.array([12.0]), 0.0)
    assert fsdp[0] == pytest.approx(3.0)


def test_distributed_optimizer_hides_behind_one_micro_batch():
    # ZeRO-1, 12 s of compute in 4 micro-batches: the last one's backward is 12 × ⅔ ÷ 4 = 2.0 s, the first one's
    # forward 1.0 s. A 0.5 s reduce-scatter and 0.1 s all-gather hide entirely (x = 0.1 of them still costs: 0.06 s);
    # a 3.0 s reduce-scatter exposes 1.0 s, and 2.0 + 0.1 hidden cost 0.21 s.
    rt = _rt(zero3=False, m=4.0, dp_rs_step=np.array([0.5, 3.0]), dp_ag_step=np.array([0.1, 0.1]))
    fsdp, once = dp_exposed(rt, np.array([12.0, 12.0]), 0.1)
    np.testing.assert_allclose(fsdp, 0.0)
    np.testing.assert_allclose(once, [0.1 * 0.6, 1.0 + 0.1 * 2.1])


def _row(**kw):
    row = dict(params=405e9, active_params=405e9, precision="bf16", seq_len=8192, global_batch_tokens=8192 * 8192.0,
               gpu_count=16384.0, tp=4, pp=1, vp=1, cp=1, ep=1, micro_batch=1, zero_stage=3, recompute="full",
               peak_bf16_flops=989e12, peak_fp8_flops=1979e12, hbm_bytes_per_s=3.35e12, nvlink_bytes_per_s=450e9,
               nvlink_domain=8.0, scaleout_bytes_per_s=50e9, layers=126.0, hidden=16384.0, ffn=53248.0, heads=128.0,
               kv_heads=8.0, vocab=128256.0)
    row.update(kw)
    return pl.DataFrame([row])


def test_fsdp_over_thousands_of_ranks_pays_the_ring_latency():
    # 405B, TP 4 on 16,384 H100 (4,096 FSDP ranks, two a node) against the same per-GPU work sharded over 64
    # ranks as hybrid sharding (fsdp_group 64): the per-layer gathers pay 35.6 ms of latency instead of
    # 8.4 + 32 × 3.4 + 31 × 14 µs = 0.55 ms, so the full-scale FSDP step exposes seconds the hybrid one does not.
    eta = {k: v[0] for k, v in PRIORS.items()}
    full = step_seconds(raw_times(_row()), eta)
    hybrid = step_seconds(raw_times(_row(fsdp_group=64.0)), eta)
    assert full["compute"][0] == pytest.approx(hybrid["compute"][0])
    assert full["dp_exposed"][0] > hybrid["dp_exposed"][0] + 1.0
    # The difference is at least the latency that no compute can hide: per pass the forward is ¼ of the
    # pass's compute; every pass's gather beyond it is exposed.
    rt = raw_times(_row())
    fwd = full["compute"][0] * 0.25 / rt["layer_passes"][0]
    assert rt["fsdp_ag_layer"][0] > 35.6e-3 > fwd
