"""Per-GPU memory: the ZeRO paper's bytes per parameter, Korthikanti's activation table, MoE states by hand."""

import numpy as np
import pytest

from llmplan.perf.memory import GIB, first_stage_layers, layout_bytes, state_bytes_per_param
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
    # GPT-3 trains with dropout (its masks are in the 34), multi-head attention (K and V at h).
    sbh_t = 2048 * 12288 / 8
    r = _layout(GPT3, tp=8, flash_attention=False, dropout=True)
    assert r["activations"] == pytest.approx(96 * sbh_t * (34 + 80))
    # Selective recompute (Megatron-Core: core_attn, layernorm, moe_act) drops the scores and also the norms'
    # outputs (QKV and fc1 inputs, 2 + 2); a dense MLP keeps its product.
    r = _layout(GPT3, tp=8, recompute="selective", flash_attention=False, dropout=True)
    assert r["activations"] == pytest.approx(96 * sbh_t * (34 - 2 - 2))
    r = _layout(GPT3, tp=8, recompute="none", flash_attention=True, dropout=True)
    assert r["activations"] == pytest.approx(96 * sbh_t * 34)
    r = _layout(GPT3, tp=8, recompute="full", flash_attention=True, dropout=True)
    assert r["activations"] == pytest.approx(96 * 2 * sbh_t + 34 * sbh_t)
    # The fp32 logits on the last stage: s·b·V·4/t.
    assert r["logits"] == pytest.approx(2048 * 51200 * 4 / 8)
    # 1F1B: the first stage keeps p micro-batches of L/p layers = L layers; interleaved ×(1 + (p−1)/(p·v)).
    pp = _layout(GPT3, tp=8, pp=8, vp=np.array([1, 3]), recompute="none", dropout=True)
    np.testing.assert_allclose(pp["activations"], 96 * sbh_t * 34 * np.array([1, 1 + 7 / 24]))
    # Context parallel 4 divides every sequence-proportional term by 4.
    cp = _layout(GPT3, tp=8, cp=4, recompute="none", dropout=True)
    assert cp["activations"] == pytest.approx(96 * sbh_t * 34 / 4)
    assert cp["logits"] == pytest.approx(2048 * 51200 * 4 / 8 / 4)


def test_swiglu_width_generalises_the_34():
    # Korthikanti's 34 per tensor: norms 4 + QKV input 2 + Q 2 + K, V 4 + projection input 2 + MLP input 2 +
    # dropout masks 2 = 18, and the 4h GeLU MLP's 16 = SwiGLU's 6f/h at f = 8h/3. Llama 3 8B (GQA: K and V
    # 8 × 128 = 1,024 wide, h/4; no dropout), s 8192, b 1, TP 1, FlashAttention:
    # 4 + 2 + 2 + 4/4 + 2 + 2 + 6·14336/4096 = 13 + 21 = 34 sbh per layer, 32 layers.
    r = _layout(public_shape("Llama-3-8B"), seq_len=8192)
    assert r["activations"] == pytest.approx(32 * 8192 * 4096 * 34)
    # With dropout and K, V at full width it would be Korthikanti's 18 + 21 = 39.
    mha = dict(public_shape("Llama-3-8B"), kv_heads=32)
    r = _layout(mha, seq_len=8192, dropout=True)
    assert r["activations"] == pytest.approx(32 * 8192 * 4096 * 39)


def test_llama3_405b_by_hand():
    # Llama 3.1 405B (126 layers, h 16,384, f 53,248, 128 heads × 128, 8 KV heads, vocab 128,256) at 8K, TP 8
    # with sequence parallelism, FlashAttention, no dropout: per token and layer on one rank
    # (12·16384 + 6·53248)/8 + 4·128·8/8 = (196,608 + 319,488)/8 + 512 = 65,024 bytes — against
    # Korthikanti's (34 − 16 + 6·3.25)·16384/8 = 76,800 with dropout and full-width K and V (15 % more).
    s405 = {"layers": 126, "hidden": 16384, "ffn": 53248, "heads": 128, "kv_heads": 8, "head_dim": 128,
            "vocab": 128256, "experts": 1, "top_k": 1, "moe_ffn": 0, "shared_experts": 0, "dense_layers": 0}
    per_layer = 8192 * 65024
    # Llama 3's published layout (§3.3.2): PP 16 with the 16M-token batch over DP 128: m = 2048/128 = 16
    # micro-batches = p, so Megatron's interleaved schedule runs every forward first: 16 × 8 chunks of
    # 126/128 layers, exactly L = 126 layers' worth (62.5 GiB), not L·(1 + 15/128) (69.8 GiB).
    r = layout_bytes(s405, 8192, 1, 8, 16, 8, 128, 1, 1, 1, "none", n_micro=16)
    assert r["activations"] == pytest.approx(126 * per_layer)
    assert 62 < r["activations"] / GIB < 63
    r = layout_bytes(s405, 8192, 1, 8, 16, 8, 128, 1, 1, 1, "none", n_micro=32)
    assert r["activations"] == pytest.approx(126 * per_layer * (1 + 15 / 128))
    # Full recompute keeps each layer's input, 2·s·h/t, for the same 126 layers plus one layer's working set.
    r = layout_bytes(s405, 8192, 1, 8, 16, 8, 128, 1, 1, 1, "full", n_micro=16)
    assert r["activations"] == pytest.approx(126 * 8192 * 2 * 16384 / 8 + per_layer)


def test_in_flight_micro_batches_follow_megatrons_schedules():
    # NVIDIA/Megatron-LM schedules.py: without interleaving rank 0 runs p − 1 warm-up forwards, so min(p, m)
    # micro-batches are in flight; with v chunks, 2(p−1) + (v−1)p warm-ups + 1 = v·p + p − 1 chunks, capped
    # at the m·v chunks of the step, and all m·v when m = p. In layers (L = 32, p = 4): chunks × L/(p·v).
    L, p = 32.0, 4.0
    assert first_stage_layers(L, p, 1, 16) == pytest.approx(32)            # 4 micro-batches × 8 layers
    assert first_stage_layers(L, p, 1, 2) == pytest.approx(16)             # only 2 micro-batches exist
    assert first_stage_layers(L, p, 2, 4) == pytest.approx(4 * 2 * 4)      # m = p: all 8 chunks of 4 layers
    assert first_stage_layers(L, p, 2, 8) == pytest.approx((2 * 4 + 4 - 1) * 4)   # 11 chunks of 4 layers
    assert first_stage_layers(L, p, 2, None) == pytest.approx(L * (1 + 3 / 8))    # Korthikanti §4.2.3


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
    # Mixtral-8x7B, s 4096, b 1, TP 1, no recompute, no dropout: norms 4h, QKV input 2h, Q and projection
    # input 4h, K and V 4·8·128 = h (GQA), the MLP input 2h, and each of the top-2 copies of a token its
    # dispatched input 2h + 6·14336 (SwiGLU gate, up, product); no expert output (Megatron-Core applies the
    # routing probability inside the activation, so the combine's backward does not need it).
    s, h = 4096, 4096
    per_layer = (4 + 2 + 4 + 1 + 2) * s * h + s * 2 * (2 * h + 6 * 14336)
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


def test_fp8_caches_linear_inputs_and_moe_copies_stay_whole_under_tp():
    # Llama 3 8B per token and layer, TP 1: norms 4h, QKV input h (FP8), Q 2h, projection input h (FP8), K and V h
    # (GQA), fc1 input h (FP8), gate and up 4f, fc2 input f (FP8) = 12h + 5f; BF16 16h·... = 34h (above).
    h, f = 4096, 14336
    r = _layout(public_shape("Llama-3-8B"), seq_len=8192, fp8=True)
    assert r["activations"] == pytest.approx(32 * 8192 * (4 * h + h + 2 * h + h + h + h + 4 * f + f))
    # Mixtral-8x7B at TP 2 (BF16): the two routed copies' dispatched inputs (2h each) are whole on each rank
    # (all-gathered over TP by Megatron-Core's dispatcher); the rest is halved. Per token:
    # (norms 4h + QKV in 2h + Q and proj in 4h + MLP input 2h + 2 × 6 · 14336)/2 + K, V 4·8·128/2 + 2 × 2h.
    s, hm = 4096, 4096
    per_token = (12 * hm + 2 * 6 * 14336) / 2 + 4 * 8 * 128 / 2 + 2 * 2 * hm
    r = _layout(public_shape("Mixtral-8x7B"), seq_len=4096, tp=2, ep=8, dp=8)
    assert r["activations"] == pytest.approx(32 * s * per_token)
