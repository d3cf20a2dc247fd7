"""The groups the step physics used to miss (issue 19's tail), each checked against an independent
source: DeepSeek-V3's multi-head latent attention against its published 671B / 37B, Grok-1's FLOPs
per token against the MFU NVIDIA printed beside its throughput, the dense NeMo rows' FLOP count
against NVIDIA's own model-TFLOP/s column, the per-expert MoE term and the MoE activation bytes
written out by hand, and the per-step layouts against their own batch."""

import csv

import numpy as np
import polars as pl
import pytest

from llmplan.perf import model as pm
from llmplan.perf.flops import flops_per_token, model_flops_per_token
from llmplan.perf.model import elementwise_bytes_per_token, shape_frame
from llmplan.perf.shapes import attention_core_width, attention_params, params_from_shape
from tests.conftest import DATA

# deepseek-ai/DeepSeek-V3@9b4e9788 inference/configs/config_671B.json
DSV3 = {"layers": 61, "hidden": 7168, "ffn": 18432, "heads": 128, "kv_heads": 128, "head_dim": 192, "vocab": 129280,
        "experts": 256, "top_k": 8, "moe_ffn": 2048, "shared_experts": 1, "dense_layers": 3,
        "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "v_head_dim": 128}


def _shape(d):
    return {k: np.asarray(float(v)) for k, v in d.items()}


def test_mla_attention_parameters_by_hand():
    # DeepSeek-V2 paper §2.1.2 with V3's sizes: W_DQ 7168·1536, W_UQ 1536·128·192, W_DKV + W_KR 7168·(512 + 64),
    # W_UK + W_UV 512·128·(128 + 128), W_O 128·128·7168.
    want = 7168 * 1536 + 1536 * 128 * 192 + 7168 * 576 + 512 * 128 * 256 + 128 * 128 * 7168
    assert float(attention_params(_shape(DSV3))) == want
    assert want == 187_105_280


def test_deepseek_v3_published_shape_counts_its_published_sizes():
    """671B total and 37B active (DeepSeek-V3 technical report, abstract), now from the published shape
    itself rather than a GQA stand-in (which counted 702.6B / 69.1B from the same columns)."""
    total, active = params_from_shape(_shape(DSV3))
    assert float(total) / 671e9 == pytest.approx(1.0, abs=0.01)
    assert float(active) / 37e9 == pytest.approx(1.0, abs=0.02)


def test_mla_attention_core_runs_qk_over_192_and_av_over_128():
    # per token forward: QKᵀ 2·s·128·192, A·V 2·s·128·128 → 4·s·h_q with h_q = 128·(192 + 128)/2 = 20,480
    assert float(attention_core_width(_shape(DSV3))) == 20480.0
    f = flops_per_token(_shape(DSV3), 4096)
    assert float(f["attention"]) == pytest.approx(3 * 61 * (2 * 4096 * 128 * 192 + 2 * 4096 * 128 * 128), rel=1e-12)


def test_grok1_flops_per_token_match_nvidias_published_mfu():
    """dgxc-benchmarking@35a9aecc8d5b grok1/README_314b.md: 786.6 tokens/s/GPU at MFU 0.415 of the 989 TFLOP/s
    BF16 peak = 5.218e11 FLOPs per token. Grok-1's released shape (xai-org/grok-1 run.py: 64 layers,
    hidden 6144, 48 query / 8 KV heads of 128, 8 experts top-2 of width 32768, vocab 131072, tied) at
    s = 8192 with the causal attention count gives the same to 0.5 %: 83.8B active parameters, not the
    78.5B of xAI's '25 % active'."""
    grok = _shape({"layers": 64, "hidden": 6144, "ffn": 32768, "heads": 48, "kv_heads": 8, "head_dim": 128,
                   "vocab": 131072, "experts": 8, "top_k": 2, "moe_ffn": 32768, "shared_experts": 0,
                   "dense_layers": 0, "tied_embeddings": 1})
    nvidia = 0.415 * 989e12 / 786.6
    ours = float(model_flops_per_token(grok, 8192, causal=True))
    assert ours / nvidia == pytest.approx(1.0, abs=0.005)
    assert float(params_from_shape(grok)[1]) / 1e9 == pytest.approx(83.76, abs=0.01)


def test_dense_nemo_rows_count_the_flops_nvidia_prints():
    """Every dense row of the NeMo/MaxText/Paxml file that prints model TFLOP/s per GPU: that column ÷
    tokens/s/GPU is NVIDIA's FLOPs per token; flops.py's count (full attention square, the published
    shape) must agree within 2 %."""
    shapes = {r["model"]: r for r in csv.DictReader(open(DATA / "throughput/model_shapes.csv", encoding="utf-8"))}
    rows = [r for r in csv.DictReader(open(DATA / "throughput/perstep_nemo_maxtext_paxml.csv", encoding="utf-8"))
            if r["model_tflops_per_gpu"] and r["model"] in shapes and int(shapes[r["model"]]["experts"] or 0) <= 1]
    assert len(rows) >= 20
    frame = pl.DataFrame([{k: (float(shapes[r["model"]][k]) if shapes[r["model"]][k] else None)
                           for k in ("layers", "hidden", "ffn", "heads", "kv_heads", "head_dim", "vocab", "experts")}
                          | {"tied_embeddings": 1.0 if shapes[r["model"]]["tied_embeddings"] == "true" else 0.0,
                             "mlp": shapes[r["model"]]["mlp"], "params": float(r["params_b"]) * 1e9, "active_params": None}
                          for r in rows])
    ours = model_flops_per_token(shape_frame(frame), np.array([float(r["seq_len"]) for r in rows]))
    nvidia = np.array([float(r["model_tflops_per_gpu"]) * 1e12 / float(r["tokens_per_s_per_gpu"]) for r in rows])
    assert np.max(np.abs(ours / nvidia - 1.0)) < 0.02


def _row(**kw):
    base = {"params": 30.5e9, "active_params": 3.3e9, "precision": "fp8", "seq_len": 4096, "global_batch_tokens": 2097152.0,
            "gpu_count": 8.0, "tp": 1, "pp": 1, "cp": 1, "ep": 8, "vp": 1, "micro_batch": 1, "recompute": "none",
            "zero_stage": 1, "layers": 48, "hidden": 2048, "ffn": 6144, "heads": 32, "kv_heads": 4, "head_dim": 128,
            "vocab": 151936, "experts": 128, "top_k": 8, "moe_ffn": 768, "shared_experts": 0, "dense_layers": 0,
            "peak_bf16_flops": 2.25e15, "peak_fp8_flops": 4.5e15, "hbm_bytes_per_s": 8e12, "nvlink_bytes_per_s": 1.8e12,
            "nvlink_domain": 8, "scaleout_bytes_per_s": 50e9}
    return pl.DataFrame([{**base, **kw}])


def test_expert_passes_count_local_experts_per_moe_layer_pass():
    """Qwen3-30B-A3B (48 MoE layers, 128 experts) on 8 GPUs, EP 8, 2M-token batches of 4,096-token
    sequences: 512 sequences over DP 8 = 64 micro-batches of one sequence, 16 experts held per GPU, 15
    beyond the one a dense MLP's launches already match → 48 × 64 × 15 = 46,080 extra expert passes a
    step; micro-batch 4 quarters them, EP 64 (a 64-GPU cluster) leaves 2 experts a GPU (1 extra), EP =
    experts none; full recompute re-runs each forward (× 4/3)."""
    assert pm.raw_times(_row())["expert_passes"][0] == 48 * 64 * 15
    assert pm.raw_times(_row(micro_batch=4))["expert_passes"][0] == 48 * 16 * 15
    assert pm.raw_times(_row(gpu_count=64.0, ep=64, global_batch_tokens=2097152.0 * 8))["expert_passes"][0] == 48 * 64 * 1
    assert pm.raw_times(_row(gpu_count=128.0, ep=128, global_batch_tokens=2097152.0 * 16))["expert_passes"][0] == 0.0
    assert pm.raw_times(_row(recompute="full"))["expert_passes"][0] == pytest.approx(48 * 64 * 15 * 4 / 3)
    dense = _row(params=8.03e9, active_params=8.03e9, experts=0, top_k=None, moe_ffn=None, ep=1, hidden=4096, ffn=14336,
                 layers=32, kv_heads=8, vocab=128256)
    assert pm.raw_times(dense)["expert_passes"][0] == 0.0


def test_t_expert_adds_its_seconds_to_the_compute():
    rt = pm.raw_times(_row())
    eta = pm._to_natural(pm.PRIOR_Z)
    base = pm.step_seconds(rt, {**eta, "t_expert": 0.0})["compute"][0]
    with_term = pm.step_seconds(rt, {**eta, "t_expert": 3e-4})["compute"][0]
    assert with_term - base == pytest.approx(3e-4 * 48 * 64 * 15, rel=1e-9)


def test_elementwise_bytes_by_hand():
    """2 × the bytes a token's stored activations take, per tensor (Korthikanti et al. 2022 §4.1 written
    out for SwiGLU and grouped-query attention, no dropout). Llama 3 8B (h 4,096, 32 heads × 128, 8 KV
    heads, f 14,336), per layer: norms 4h, QKV input 2h, Q 2h, projection input 2h, K and V 4·8·128 = h,
    MLP input 2h, gate and up 4f, fc2 input 2f = 13h + 6f (34h: Korthikanti's 34 without the dropout
    masks 2h, K and V at a quarter); FP8 caches the four linear inputs at 1 byte: 4h + h + 2h + h + h + h
    + 4f + f = 10h + 5f. Qwen3-30B-A3B-like (h 2,048, 32 heads × 64, 4 KV heads, 8 of 128 experts of
    768): 4h + 2h + 2h + 2h + 4·4·64 + MLP input 2h + 8 routed copies × (dispatched input 2h + 6·768)."""
    h, f = 4096, 14336
    llama = {"layers": 32, "hidden": h, "ffn": f, "heads": 32, "kv_heads": 8, "vocab": 128256, "experts": 1,
             "top_k": 1, "moe_ffn": 0, "shared_experts": 0, "dense_layers": 0}
    assert float(elementwise_bytes_per_token(_shape(llama))) == 32 * 2 * (13 * h + 6 * f)
    assert float(elementwise_bytes_per_token(_shape(llama), fp8=True)) == 32 * 2 * (10 * h + 5 * f)
    # Korthikanti's multi-head count with dropout masks (the previous rule) moved 2 × (18h + 6f): 8 % more here.
    assert 2 * (18 * h + 6 * f) / (2 * (13 * h + 6 * f)) == pytest.approx(1.147, abs=1e-3)
    hq = 2048
    qwen = {**llama, "layers": 48, "hidden": hq, "ffn": 6144, "kv_heads": 4, "experts": 128, "top_k": 8, "moe_ffn": 768}
    per_layer = 4 * hq + 2 * hq + 2 * hq + 2 * hq + 4 * 4 * 64 + 2 * hq + 8 * (2 * hq + 6 * 768)
    assert float(elementwise_bytes_per_token(_shape(qwen))) == 48 * 2 * per_layer
    # Per row: a BF16 and an FP8 row of one shape differ by the FP8 caches only.
    both = elementwise_bytes_per_token(_shape(llama), fp8=np.array([False, True]))
    np.testing.assert_allclose(both, [32 * 2 * (13 * h + 6 * f), 32 * 2 * (10 * h + 5 * f)])


def test_elementwise_traffic_is_the_memory_models_activations():
    """One count of a layer's tensors for time and memory: with no parallelism, no recompute and
    FlashAttention, the activations layout_bytes keeps for a micro-batch of s tokens are s × half the
    element-wise bytes per token."""
    from llmplan.perf.memory import layout_bytes
    from llmplan.perf.shapes import public_shape
    for name in ("Llama-3-70B", "Mixtral-8x7B"):
        s = public_shape(name)
        for fp8 in (False, True):
            r = layout_bytes(s, 4096, 1, 1, 1, 1, 1, 1, 1, 1, "none", fp8=fp8)
            assert float(r["activations"]) == pytest.approx(4096 * float(elementwise_bytes_per_token(s, fp8=fp8)) / 2)


def test_expert_gemms_run_at_the_width_of_their_narrower_side():
    """An expert's matrices are h × moe_ffn: Qwen3-30B-A3B's 2048 × 768 run at η(768), Grok-1's 6144 × 32768
    at TP 4 at η(6144)."""
    assert pm.raw_times(_row())["width_expert"][0] == 768.0
    grok = _row(hidden=6144, moe_ffn=32768, experts=8, top_k=2, tp=4, heads=48, kv_heads=8, layers=64, params=314e9,
                active_params=83.8e9, vocab=131072, gpu_count=32.0)
    assert pm.raw_times(grok)["width_expert"][0] == 6144.0


def test_every_per_step_layout_fits_its_own_batch():
    """A step of B sequences in micro-batches of b keeps at most B/b data-parallel replicas busy, so
    GPUs ÷ (TP·PP·CP) replicas need B ≥ replicas × b. NeMo@19fadb67b09b's long-sequence B200 table broke
    this (1,024 GPUs, batch 4, TP 4 × CP 16); its GPU counts now come from NeMo@14d427f575ee."""
    for name in ("perstep_nemo_maxtext_paxml.csv", "megatron_bridge_performance_summary.csv"):
        for r in csv.DictReader(open(DATA / "throughput" / name, encoding="utf-8")):
            seqs = float(r["global_batch_tokens"]) / float(r["seq_len"])
            replicas = float(r["gpu_count"]) / (float(r["tp"]) * float(r["pp"]) * float(r["cp"] or 1))
            assert seqs >= replicas * float(r["micro_batch"] or 1) - 1e-9, (name, r["model"], r["gpu_count"], r["seq_len"])


def test_a_step_model_persisted_before_t_expert_asks_for_a_refit():
    from llmplan.errors import LlmplanError
    n = len(pm.TERMS)
    m = pm.StepPhysics(pm.PRIOR_Z.copy(), np.eye(n) * 0.01, {"nemo": (0.0, 0.03, 10)}, {"H100-80GB": (0.0, 0.03, 10)},
                       0.03, 0.03, 0.05, 10)
    frame = m.to_frame("run")
    assert pm.StepPhysics.from_frame(frame).z == pytest.approx(m.z)
    old = frame.filter(~pl.col("name").str.contains("t_expert"))
    with pytest.raises(LlmplanError, match="t_expert"):
        pm.StepPhysics.from_frame(old)


def test_attention_core_runs_at_eta_attn_times_d_over_d_plus_half():
    """The attention core at η_attn · d/(d + d½), d the per-head width of the core. Qwen3-30B-A3B on 8
    B200 (32 heads × 128, 48 layers, 4,096-token sequences, 2,097,152 tokens a step over 8 GPUs):
    causal FLOPs ½ · 12 · 48 · 4096 · 32 · 128 a token × 262,144 tokens a GPU ÷ 2.25 PFLOP/s BF16, at
    η_attn 0.4 and d½ 36: × (128 + 36)/(0.4 · 128). Halving the head width (64) halves the FLOPs but
    not the softmax's exponentials: (64 + 36)/64 ÷ (128 + 36)/128 = 1.22× the seconds per FLOP."""
    eta = {**pm._to_natural(pm.PRIOR_Z), "eta_attn": 0.4, "attn_half_dim": 36.0}
    attention = lambda rt: pm.step_seconds(rt, eta)["compute"][0] - pm.step_seconds(rt, {**eta, "eta_attn": 1e30})["compute"][0]  # noqa: E731
    flops = 0.5 * 12 * 48 * 4096 * 32 * 128
    t128 = attention(pm.raw_times(_row()))
    assert t128 == pytest.approx(flops * 262144 / 2.25e15 * (128 + 36) / (0.4 * 128), rel=1e-9)
    t64 = attention(pm.raw_times(_row(head_dim=64)))
    assert (t64 / (flops / 2)) / (t128 / flops) == pytest.approx((100 / 64) / (164 / 128), rel=1e-9)
    # The prior's centre is the H100's exponential-vs-matmul balance over forward + backward: 14·d GEMM FLOPs
    # per 2 exponentials (Shah et al. 2024: 989 TFLOP/s BF16, 3.9 T exponentials/s).
    assert pm.PRIORS["attn_half_dim"][0] == pytest.approx(989 / 3.9 * 2 / 14, rel=2e-3)


def test_mla_core_width_per_head_sets_the_softmax_balance():
    """Under MLA a score costs 2·192 (QKᵀ) + 2·128 (A·V) forward FLOPs: per head the core is (192 + 128)/2
    = 160 wide, the d of η_attn · d/(d + d½)."""
    row = _row(params=671e9, active_params=37e9, layers=61, hidden=7168, ffn=18432, heads=128, kv_heads=128, head_dim=192,
               vocab=129280, experts=256, top_k=8, moe_ffn=2048, shared_experts=1, dense_layers=3, q_lora_rank=1536,
               kv_lora_rank=512, qk_rope_head_dim=64, v_head_dim=128, gpu_count=64.0, ep=64)
    assert pm.raw_times(row)["attn_dim"][0] == 160.0
