"""FLOPs per token from published configurations, by hand, and Narayanan et al.'s closed form."""

import numpy as np
import pytest

from llmplan.perf.flops import (flops_per_token, hardware_flops_per_token, model_flops_per_token,
                                six_n_flops_per_token)
from llmplan.perf.shapes import params_from_shape, public_shape


def _llama(L, h, ffn, heads, kv, V=128256):
    # Forward + backward = 3 × forward; forward = 2 FLOPs per weight per token for every matmul.
    qkvo = 2 * h * heads * 128 + 2 * h * kv * 128
    mlp = 3 * h * ffn
    return {"dense_gemm": 6 * L * (qkvo + mlp), "logits": 6 * V * h, "attention": 12 * L * 8192 * heads * 128}


@pytest.mark.parametrize("name,cfg", [
    # Meta-Llama-3-8B / -70B config.json (Lightning-AI/litgpt@26857050 litgpt/config.py cites each one).
    ("Llama-3-8B", (32, 4096, 14336, 32, 8)),
    ("Llama-3-70B", (80, 8192, 28672, 64, 8)),
])
def test_llama3_flops_per_token_by_hand(name, cfg):
    want = _llama(*cfg)
    got = flops_per_token(public_shape(name), 8192)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert got["expert_gemm"] == 0
    assert got["total"] == pytest.approx(sum(want.values()), rel=1e-12)


def test_llama3_8b_numbers():
    # Written out: 8B at s = 8192. QKV+O per layer 2·4096² + 2·4096·1024 = 41,943,040; MLP 3·4096·14336 =
    # 176,160,768; ×32 layers ×6 = 41.876 GFLOP; logits 6·128256·4096 = 3.152 GFLOP; attention
    # 12·32·8192·4096 = 12.885 GFLOP; total 57.913 GFLOP per token (vs 6N = 48.18 GFLOP).
    f = flops_per_token(public_shape("Llama-3-8B"), 8192)
    assert f["dense_gemm"] / 1e9 == pytest.approx(41.876, abs=1e-3)
    assert f["logits"] / 1e9 == pytest.approx(3.152, abs=1e-3)
    assert f["attention"] / 1e9 == pytest.approx(12.885, abs=1e-3)
    assert f["total"] / 1e9 == pytest.approx(57.913, abs=1e-3)
    assert model_flops_per_token(public_shape("Llama-3-8B"), 8192, causal=True) / 1e9 == pytest.approx(
        57.913 - 12.885 / 2, abs=1e-3)


def test_gemm_flops_are_six_times_the_active_parameters_but_the_input_embedding():
    for name in ("Llama-3-70B", "Mixtral-8x7B", "Qwen3-235B-A22B", "DeepSeek-V3"):
        s = public_shape(name)
        f = flops_per_token(s, 4096)
        _, active = params_from_shape(s)
        gemm = f["dense_gemm"] + f["expert_gemm"] + f["logits"]
        assert gemm == pytest.approx(six_n_flops_per_token(active) - 6 * s["vocab"] * s["hidden"], rel=1e-12)


def test_full_recompute_matches_narayanan_closed_form():
    # Narayanan et al. 2021, eq. (3): a GPT step with full recompute costs 96·B·s·L·h²·(1 + s/(6h) + V/(16·L·h))
    # FLOPs. Their MLP is 4h wide with two matrices (8h²), which SwiGLU matches at ffn = 8h/3; attention is MHA.
    # GPT-3 175B: L 96, h 12288, 96 heads, s 2048, V 51200.
    L, h, s, V = 96, 12288, 2048, 51200
    shape = {"layers": L, "hidden": h, "ffn": 8 * h // 3, "heads": 96, "kv_heads": 96, "vocab": V, "experts": 1,
             "top_k": 1, "moe_ffn": 0, "shared_experts": 0, "dense_layers": 0}
    per_seq = 96 * s * L * h ** 2 * (1 + s / (6 * h) + V / (16 * L * h))
    assert hardware_flops_per_token(shape, s, "full") * s == pytest.approx(per_seq, rel=1e-12)
    # Without recompute: 72·B·s·L·h²·(1 + s/(6h) + V/(12·L·h)) (the same paper, before the 4/3 factor).
    assert model_flops_per_token(shape, s) * s == pytest.approx(72 * s * L * h ** 2 * (1 + s / (6 * h) + V / (12 * L * h)),
                                                                rel=1e-12)


def test_selective_recompute_adds_the_attention_forward_and_broadcasts():
    s = public_shape("Llama-3-70B")
    f = flops_per_token(s, np.array([4096.0, 8192.0]))
    hw = hardware_flops_per_token(s, np.array([4096.0, 8192.0]), np.array([["none"], ["selective"], ["full"]]))
    assert hw.shape == (3, 2)
    np.testing.assert_allclose(hw[0], f["total"])
    np.testing.assert_allclose(hw[1], f["total"] + f["attention"] / 3)
    np.testing.assert_allclose(hw[2], f["total"] + (f["dense_gemm"] + f["attention"]) / 3)
    # Doubling the sequence doubles the attention term only.
    assert f["attention"][1] == pytest.approx(2 * f["attention"][0])
    assert f["dense_gemm"][1] == pytest.approx(f["dense_gemm"][0])
    with pytest.raises(ValueError, match="recompute must be one of"):
        hardware_flops_per_token(s, 4096, "some")


def test_moe_expert_flops_by_hand():
    # Mixtral-8x7B: 32 layers, hidden 4096, 8 experts of width 14336, top-2, router 4096·8.
    f = flops_per_token(public_shape("Mixtral-8x7B"), 4096)
    assert f["expert_gemm"] == pytest.approx(6 * 32 * (2 * 3 * 4096 * 14336 + 4096 * 8), rel=1e-12)
    # DeepSeek-V3: 58 MoE layers with 8 routed + 1 shared expert of 2048, router 7168·256; 3 dense MLPs of 18432.
    f = flops_per_token(public_shape("DeepSeek-V3"), 4096)
    assert f["expert_gemm"] == pytest.approx(6 * 58 * (9 * 3 * 7168 * 2048 + 7168 * 256), rel=1e-12)
    attn = 2 * 7168 * 56 * 128 + 2 * 7168 * 8 * 128
    assert f["dense_gemm"] == pytest.approx(6 * (61 * attn + 3 * 3 * 7168 * 18432), rel=1e-12)
