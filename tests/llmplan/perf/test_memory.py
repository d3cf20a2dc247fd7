"""Per-GPU memory: the ZeRO paper's bytes per parameter, Korthikanti's activation table, MoE states by hand."""

import numpy as np
import pytest

from llmplan.perf.memory import GIB, layout_bytes, state_bytes_per_param
from llmplan.perf.shapes import params_from_shape, public_shape

GPT3 = {"layers": 96, "hidden": 12288, "ffn": 32768, "heads": 96, "kv_heads": 96, "vocab": 51200, "experts": 1,
        "top_k": 1, "moe_ffn": 0, "shared_experts": 0, "dense_layers": 0}


def _layout(shape, **kw):
    args = dict(seq_len=2048, micro_batch=1, tp=1, pp=1, vp=1, dp=1, cp=1, ep=1, zero=1, recompute="none")
    args.update(kw)
    return layout_bytes(shape, **args)


def test_zero_paper_figure1_bytes():
    # Rajbhandari et al. 2020, Figure 1: Ψ = 7.5B parameters, N_d = 64, K = 12 (fp16 weights and grads):
    # baseline (2 + 2 + K)Ψ = 120 GB; P_os (2 + 2)Ψ + KΨ/N_d = 31.4 GB; P_os+g 2Ψ + (2 + K)Ψ/N_d = 16.6 GB;
    # P_os+g+p (2 + 2 + K)Ψ/N_d = 1.9 GB.
    psi, nd = 7.5e9, 64
    want = [120e9, 31.4e9, 16.6e9, 1.875e9]
    for zero, w in zip(range(4), want):
        rep, shard = state_bytes_per_param(zero, fp32_grads=False)
        assert psi * (rep + shard / nd) == pytest.approx(w, abs=0.05e9), zero   # the paper rounds to 0.1 GB
    # Megatron's distributed optimizer keeps fp32 main grads: 2 + 4 replicated, 12 sharded = 18 B/param unsharded.
    assert state_bytes_per_param(1, fp32_grads=True) == (6.0, 12.0)
    assert sum(state_bytes_per_param(np.array([0, 1, 2, 3]))[0]) == 18 + 6 + 2 + 0


def test_dense_states_through_the_layout():
    s = public_shape("Llama-3-8B")
    total, _ = params_from_shape(s)
    r = _layout(s, dp=np.array([1, 8, 64]), zero=1)
    np.testing.assert_allclose(r["states"], total * (6 + 12 / np.array([1, 8, 64])))
    # ZeRO-3 over 64 ranks, bf16 grads: 16Ψ/64 plus one gathered transformer block (bf16 weights + grads).
    block = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336
    r = _layout(s, dp=64, zero=3)
    r16 = layout_bytes(s, 2048, 1, 1, 1, 1, 64, 1, 1, 3, "none", fp32_grads=False)
    assert r16["states"] == pytest.approx(16 * total / 64 + 4 * block)
    assert r["states"] == pytest.approx(18 * total / 64 + 4 * block)
    # TP 4 × PP 2: the first stage holds 16 layers / 4 and one embedding table / 4.
    r = _layout(s, tp=4, pp=2, dp=1, zero=0)
    layer = block
    assert r["states"] == pytest.approx(18 * (16 * layer + 128256 * 4096) / 4)


def test_korthikanti_table2_by_hand():
    # Korthikanti et al. 2022, Table 2, tensor + sequence parallel: sbh/t · (34 + 5as/h) bytes per layer;
    # selective recompute keeps 34; full recompute keeps the layer input 2sbh/t. GPT-3 175B, s 2048, b 1, t 8:
    # sbh/t = 2048·12288/8 = 3,145,728; 5as/h = 5·96·2048/12288 = 80.
    sbh_t = 2048 * 12288 / 8
    r = _layout(GPT3, tp=8, flash_attention=False)
    assert r["activations"] == pytest.approx(96 * sbh_t * (34 + 80))
    r = _layout(GPT3, tp=8, recompute="selective", flash_attention=False)
    assert r["activations"] == pytest.approx(96 * sbh_t * 34)
    r = _layout(GPT3, tp=8, recompute="none", flash_attention=True)
    assert r["activations"] == pytest.approx(96 * sbh_t * 34)
    r = _layout(GPT3, tp=8, recompute="full", flash_attention=True)
    assert r["activations"] == pytest.approx(96 * 2 * sbh_t + 34 * sbh_t)
    # The fp32 logits on the last stage: s·b·V·4/t.
    assert r["logits"] == pytest.approx(2048 * 51200 * 4 / 8)
    # 1F1B: the first stage keeps p micro-batches of L/p layers = L layers; interleaved ×(1 + (p−1)/(p·v)).
    pp = _layout(GPT3, tp=8, pp=8, vp=np.array([1, 3]), recompute="selective")
    np.testing.assert_allclose(pp["activations"], 96 * sbh_t * 34 * np.array([1, 1 + 7 / 24]))
    # Context parallel 4 divides every sequence-proportional term by 4.
    cp = _layout(GPT3, tp=8, cp=4, recompute="selective")
    assert cp["activations"] == pytest.approx(96 * sbh_t * 34 / 4)
    assert cp["logits"] == pytest.approx(2048 * 51200 * 4 / 8 / 4)


def test_swiglu_width_generalises_the_34():
    # Llama 3 8B, s 8192, b 1, TP 1, FlashAttention: 15 + 3 + 6·14336/4096 = 39 sbh per layer, 32 layers.
    r = _layout(public_shape("Llama-3-8B"), seq_len=8192)
    assert r["activations"] == pytest.approx(32 * 8192 * 4096 * (18 + 6 * 14336 / 4096))
    assert 18 + 6 * 14336 / 4096 == 39


def test_real_vocabulary_in_the_logits():
    a = _layout(public_shape("Llama-2-7b"), seq_len=4096)["logits"]
    b = _layout(public_shape("Llama-3-8B"), seq_len=4096)["logits"]
    assert a == 4096 * 32000 * 4 and b == 4096 * 128256 * 4


def test_moe_expert_states_are_sharded_exactly_once():
    # Qwen3-235B-A22B (litgpt@26857050 copy of its config.json): 94 layers, hidden 4096, 64 heads × 128, 4 KV
    # heads, 128 experts of 1536, vocab 151936. On 64 H100: TP 1, PP 4, DP 16, EP 8, distributed optimizer.
    attn = 2 * 4096 * 64 * 128 + 2 * 4096 * 4 * 128
    router = 4096 * 128
    routed = 94 * 128 * 3 * 4096 * 1536
    first_stage_dense = 94 * (attn + router) / 4 + 151936 * 4096          # its layers' attention + the embedding
    expert_local = routed / (8 * 4)                                      # split over EP 8 and PP 4
    edp = 16 // 8                                                        # expert-data-parallel group: DP / EP
    want = first_stage_dense * (6 + 12 / 16) + expert_local * (6 + 12 / edp)
    r = layout_bytes(public_shape("Qwen3-235B-A22B"), 4096, 1, tp=1, pp=4, vp=1, dp=16, cp=1, ep=8, zero=1,
                     recompute="full")
    assert r["states"] == pytest.approx(want, rel=1e-9)
    assert 85 < r["states"] / GIB < 100                                   # ≈ 93.8 GiB: over an 80 GiB H100
    wrong = first_stage_dense * (6 + 12 / 16) + expert_local * (6 + 12 / 16)  # experts ÷ EP and again ÷ all DP
    assert r["states"] > wrong * 1.4


def test_moe_activations_by_hand():
    # Mixtral-8x7B, s 4096, b 1, TP 1, no recompute: attention + norms keep 15·sbh (Korthikanti's 34 less its
    # MLP's 19), the MLP input and dropout mask 3·sbh, and each of the top-2 copies of a token 4h (dispatched
    # input, expert output) + 6·14336 (SwiGLU gate, up, product).
    s, h = 4096, 4096
    per_layer = 18 * s * h + s * 2 * (4 * h + 6 * 14336)
    r = _layout(public_shape("Mixtral-8x7B"), seq_len=4096, ep=8, dp=8)
    assert r["activations"] == pytest.approx(32 * per_layer)


def test_total_is_the_fuller_end_stage_and_broadcasts():
    s = public_shape("Llama-3-70B")
    tp = np.array([1, 2, 4, 8])[:, None]
    pp = np.array([1, 2, 4])[None, :]
    r = layout_bytes(s, 8192, 1, tp, pp, 1, 8, 1, 1, 1, "full")
    for key in ("states", "activations", "logits", "total"):
        assert r[key].shape == (4, 3)
    assert np.all(r["total"] >= r["states"] + r["activations"])          # at least the first stage
    # PP 2 with full recompute: the last stage (one micro-batch of 40 layers + logits) can be the fuller one only
    # if the logits outweigh 40 layers' inputs; here they do not, so the total is the first stage's.
    np.testing.assert_allclose(r["total"][:, 1], (r["states"] + r["activations"])[:, 1])
    # PP 1: one stage holds everything.
    np.testing.assert_allclose(r["total"][:, 0], (r["states"] + r["activations"] + r["logits"])[:, 0])
    assert np.all(np.diff(r["total"], axis=0) < 0) and np.all(np.diff(r["total"], axis=1) < 0)
