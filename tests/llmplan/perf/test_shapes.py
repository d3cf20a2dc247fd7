"""Shapes: parameter counts from published configurations, the size rule, overrides and checks."""

import numpy as np
import pytest

from llmplan.perf.shapes import (PUBLIC_CONFIGS, PUBLISHED_SIZES, SHAPE_KEYS, H_COEF, H_EXP, L_COEF, L_EXP_ACTIVE,
                                 L_EXP_TOTAL, check_layout,
                                 check_shape, complete_shape, params_from_shape, public_shape, shape_from_size)


def test_llama3_parameter_counts_by_hand():
    # Meta-Llama-3-8B config.json (via Lightning-AI/litgpt@26857050 litgpt/config.py): 32 layers, hidden 4096,
    # intermediate 14336, 32 heads, 8 KV heads, head_dim 128, vocab 128256, untied embeddings.
    embed = 2 * 128256 * 4096
    attn = 2 * 4096 * 4096 + 2 * 4096 * 8 * 128
    mlp = 3 * 4096 * 14336
    total_8b = embed + 32 * (attn + mlp)
    assert total_8b == pytest.approx(8.03e9, rel=2e-3)   # Meta's model card: 8.03B
    t, a = params_from_shape(public_shape("Llama-3-8B"))
    assert t == a == pytest.approx(total_8b, rel=1e-4)   # norms (0.27M) are the only thing left out
    # Meta-Llama-3-70B: 80 layers, hidden 8192, intermediate 28672, 64 heads, 8 KV heads.
    total_70b = 2 * 128256 * 8192 + 80 * (2 * 8192 * 8192 + 2 * 8192 * 1024 + 3 * 8192 * 28672)
    assert total_70b == pytest.approx(70.6e9, rel=2e-3)
    assert params_from_shape(public_shape("Llama-3-70B"))[0] == pytest.approx(total_70b, rel=1e-9)


@pytest.mark.parametrize("name", sorted(set(PUBLISHED_SIZES) - {"DeepSeek-V2", "DeepSeek-V3"}))
def test_public_configs_reproduce_published_sizes(name):
    total, active = params_from_shape(public_shape(name))
    want_t, want_a = PUBLISHED_SIZES[name]
    assert total / 1e9 == pytest.approx(want_t, rel=0.02)
    assert active / 1e9 == pytest.approx(want_a, rel=0.03)


def test_deepseek_mla_approximation_stays_close():
    # Multi-head latent attention is approximated by GQA; the total barely moves, the active count
    # loses MLA's extra ~70M attention parameters per layer (61·70M ≈ 4.3B of 37B).
    total, active = params_from_shape(public_shape("DeepSeek-V3"))
    assert total / 671e9 == pytest.approx(1.0, abs=0.02)
    assert active / 37e9 == pytest.approx(1.0, abs=0.12)


def test_hidden_rule_is_the_stated_fit_of_the_dense_configs():
    names = [n for n, r in PUBLIC_CONFIGS.items() if r[6] == 1]
    assert len(names) == 14
    n = np.array([params_from_shape(public_shape(x))[0] for x in names])
    h = np.array([PUBLIC_CONFIGS[x][1] for x in names], float)
    slope, intercept = np.polyfit(np.log(n), np.log(h), 1)
    assert slope == pytest.approx(H_EXP, abs=1e-3)
    assert np.exp(intercept) == pytest.approx(H_COEF, rel=1e-2)


def test_rule_errors_on_public_dense_configs_are_bounded():
    for name, row in PUBLIC_CONFIGS.items():
        if row[6] != 1:
            continue
        total, _ = params_from_shape(public_shape(name))
        s = shape_from_size(total, vocab=row[5])
        assert abs(np.log(s["hidden"] / row[1])) < np.log(1.25), name
        assert abs(np.log(s["layers"] / row[0])) < np.log(1.35), name
        assert params_from_shape(s)[0] == pytest.approx(total, rel=0.01), name


@pytest.mark.parametrize("n,a", [(1e9, None), (3e9, None), (8e9, None), (70e9, None), (405e9, None), (2e12, None),
                                 (46.7e9, 12.9e9), (235e9, 22e9), (671e9, 37e9), (1e12, 32e9), (30.5e9, 3.3e9)])
def test_rule_reproduces_the_requested_size(n, a):
    s = shape_from_size(n, a)
    total, active = params_from_shape(s)
    assert total == pytest.approx(n, rel=0.03)
    assert active == pytest.approx(a or n, rel=0.03)
    assert check_shape(s, n, a) is None
    assert np.mod(s["hidden"], 128) == 0 and np.mod(s["ffn"], 256) == 0
    assert np.mod(s["heads"], s["kv_heads"]) == 0
    if a is None:
        assert s["experts"] == 1 and s["top_k"] == 1 and s["moe_ffn"] == 0
        assert s["ffn"] / s["hidden"] == pytest.approx(3.5, rel=0.25)
    else:
        assert s["experts"] >= 64 and s["top_k"] == 8


def test_rule_broadcasts_over_rows():
    n = np.array([1e9, 8e9, 70e9, 235e9])
    a = np.array([np.nan, np.nan, np.nan, 22e9])
    s = shape_from_size(n, a)
    assert set(SHAPE_KEYS) <= set(s)
    assert all(np.shape(s[k]) == (4,) for k in SHAPE_KEYS)
    total, active = params_from_shape(s)
    np.testing.assert_allclose(total, n, rtol=0.03)
    np.testing.assert_allclose(active, np.where(np.isnan(a), n, a), rtol=0.03)
    assert list(s["experts"][:3]) == [1, 1, 1] and s["experts"][3] > 1
    # Published rows mix: a dense row (experts 1), Mixtral's 8/2, and an MoE row with nothing stated.
    s = complete_shape(np.array([8.03e9, 46.7e9, 235e9]), np.array([8.03e9, 12.9e9, 22e9]),
                       {"experts": np.array([1.0, 8.0, np.nan]), "top_k": np.array([1.0, 2.0, np.nan])})
    assert list(s["experts"][:2]) == [1, 8] and s["experts"][2] >= 64
    assert list(s["top_k"]) == [1, 2, 8]
    total, active = params_from_shape(s)
    np.testing.assert_allclose(total, [8.03e9, 46.7e9, 235e9], rtol=0.03)
    np.testing.assert_allclose(active, [8.03e9, 12.9e9, 22e9], rtol=0.03)


def test_overrides_are_kept_and_nan_means_the_rule():
    over = {"layers": np.array([32.0, np.nan]), "hidden": np.array([4096.0, np.nan]), "ffn": np.array([14336.0, np.nan]),
            "heads": 32.0, "kv_heads": 8.0, "vocab": 128256.0}
    s = complete_shape(np.array([8.03e9, 70e9]), None, over)
    assert s["layers"][0] == 32 and s["hidden"][0] == 4096 and s["ffn"][0] == 14336
    assert s["heads"][1] == 32 and s["vocab"][1] == 128256        # given scalars apply to every row
    assert s["hidden"][1] == shape_from_size(70e9)["hidden"]
    # MoE with explicit experts and top_k: the counts still match.
    s = complete_shape(235e9, 22e9, {"experts": 128.0, "top_k": 8.0, "vocab": 151936.0})
    assert (s["experts"], s["top_k"]) == (128, 8)
    total, active = params_from_shape(s)
    assert total == pytest.approx(235e9, rel=0.02) and active == pytest.approx(22e9, rel=0.02)


def test_check_shape_names_the_contradiction():
    llama8 = public_shape("Llama-3-8B")
    msg = check_shape(llama8, 70e9, where="--layers/--hidden")
    assert msg.startswith("--layers/--hidden:") and "8.03B" in msg and "70B" in msg
    assert check_shape(llama8, 8.03e9) is None
    bad = dict(llama8, heads=np.asarray(30.0))
    assert "heads do not divide the hidden size 4096" in check_shape(bad, 8.03e9)
    bad = dict(llama8, kv_heads=np.asarray(5.0))
    assert "5 KV heads do not divide the 32 attention heads" in check_shape(bad, 8.03e9)
    moe = public_shape("Mixtral-8x7B")
    assert check_shape(moe, 46.7e9, 12.9e9) is None
    assert "active" in check_shape(moe, 46.7e9, 30e9)


def test_check_layout_rules():
    llama8 = public_shape("Llama-3-8B")
    assert check_layout(llama8, np.array([1, 2, 4, 8]), 1) is None
    assert "tensor parallel 3 does not divide the 32 attention heads" in check_layout(llama8, np.array([1, 3]), 1)
    assert check_layout(llama8, 16, 1) is None            # 8 KV heads divide TP 16: each is replicated twice
    qwen = public_shape("Qwen3-235B-A22B")                  # 64 heads, 4 KV heads, 128 experts
    assert check_layout(qwen, 8, np.array([1, 8, 64, 128])) is None
    assert "expert parallel 256" in check_layout(qwen, 8, 256)
    assert "expert parallel 48" in check_layout(qwen, 1, 48)
    assert "expert parallel 2 must divide the 1 experts" in check_layout(llama8, 1, 2)
    odd = dict(llama8, heads=np.asarray(24.0), kv_heads=np.asarray(6.0))
    assert "neither divides" in check_layout(odd, 4, 1)


def test_head_dim_and_tied_embeddings():
    # Qwen3-235B-A22B: 64 heads of 128 on a 4096 model; without head_dim a shape would assume 4096/64 = 64.
    q = public_shape("Qwen3-235B-A22B")
    no_hd = {k: v for k, v in q.items() if k != "head_dim"}
    assert params_from_shape(q)[0] - params_from_shape(no_hd)[0] == pytest.approx(94 * 2 * 4096 * 64 * 64 + 94 * 2 * 4096 * 4 * 64)
    # complete_shape: head_dim is hidden ÷ the given heads, else 128.
    s = complete_shape(1.24e9, None, {"hidden": 2048.0, "heads": 32.0, "kv_heads": 8.0, "layers": 16.0, "vocab": 128256.0,
                                      "tied_embeddings": 1.0})
    assert s["head_dim"] == 64
    # Llama 3.2 1B (litgpt@26857050: 16 layers, 2048, ffn 8192, 32 heads, 8 KV heads, tied embeddings): 1.24B.
    assert s["ffn"] == 8192
    assert params_from_shape(s)[0] == pytest.approx(128256 * 2048 + 16 * (2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192),
                                                    rel=1e-9)
    assert shape_from_size(8e9)["head_dim"] == 128


# --- The MoE rule (module docstring): depth rule, hidden from the non-expert active count, moe_ffn from N − A ---

MOE_NAMES = sorted(n for n, r in PUBLIC_CONFIGS.items() if r[6] > 1)
# The stated bands: every public MoE configuration's own sizes give a shape whose layers are within a factor
# 2 and hidden size within a factor 1.6 of the real ones (the depth rule's residual RMS is 0.23 in ln L).
LAYER_FACTOR, HIDDEN_FACTOR = 2.0, 1.6


def _moe_overrides(name):
    r = PUBLIC_CONFIGS[name]
    over = {"experts": float(r[6]), "top_k": float(r[7]), "vocab": float(r[5])}
    if len(r) > 13:
        over.update({k: float(v) for k, v in r[13].items()})
    return over


def test_the_moe_configs_are_the_ones_listed():
    assert {"Mixtral-8x7B", "Mixtral-8x22B", "Qwen3-30B-A3B", "Qwen3-235B-A22B", "DeepSeek-V2", "DeepSeek-V3",
            "Llama-4-Scout", "Llama-4-Maverick", "Phi-3.5-MoE", "gpt-oss-20b", "gpt-oss-120b", "Grok-1"} <= set(MOE_NAMES)
    # Hand counts from the configs: Llama 4 Maverick (NeMo Llama4Experts128Config) — embeddings 2·202048·5120,
    # 48 layers of GQA attention (40 heads of 128, 8 KV heads), 24 dense MLPs of 16384 and 24 MoE layers of
    # 128 routed + 1 shared expert of 8192 with a 5120 × 128 router.
    attn = 2 * 5120 * 5120 + 2 * 5120 * 8 * 128
    expert = 3 * 5120 * 8192
    total = 2 * 202048 * 5120 + 48 * attn + 24 * 3 * 5120 * 16384 + 24 * (129 * expert + 5120 * 128)
    active = 2 * 202048 * 5120 + 48 * attn + 24 * 3 * 5120 * 16384 + 24 * (2 * expert + 5120 * 128)
    t, a = params_from_shape(public_shape("Llama-4-Maverick"))
    assert (t, a) == (pytest.approx(total, rel=1e-12), pytest.approx(active, rel=1e-12))
    assert total / 1e9 == pytest.approx(400, rel=0.01) and active / 1e9 == pytest.approx(17, rel=0.02)
    # Phi-3.5-MoE (PhimoeConfig defaults): 32 layers, 4096, 32 heads / 8 KV, 16 experts of 6400, top-2, vocab 32064.
    t, a = params_from_shape(public_shape("Phi-3.5-MoE"))
    per_layer = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 4096 * 16
    assert t == pytest.approx(2 * 32064 * 4096 + 32 * (per_layer + 16 * 3 * 4096 * 6400), rel=1e-12)
    assert a == pytest.approx(2 * 32064 * 4096 + 32 * (per_layer + 2 * 3 * 4096 * 6400), rel=1e-12)
    # Grok-1: tied embeddings count once.
    assert params_from_shape(public_shape("Grok-1"))[0] == pytest.approx(
        131072 * 6144 + 64 * (2 * 6144 * 6144 + 2 * 6144 * 1024 + 8 * 3 * 6144 * 32768 + 6144 * 8), rel=1e-12)


def test_depth_rule_is_the_stated_fit_of_the_moe_configs():
    # Recompute the least-squares fit of ln L on (1, ln A, ln N) over the MoE configurations' own counts.
    counts = np.array([[float(x) for x in params_from_shape(public_shape(n))] for n in MOE_NAMES])
    layers = np.array([PUBLIC_CONFIGS[n][0] for n in MOE_NAMES], float)
    X = np.column_stack([np.ones(len(MOE_NAMES)), np.log(counts[:, 1]), np.log(counts[:, 0])])
    coef, *_ = np.linalg.lstsq(X, np.log(layers), rcond=None)
    assert np.exp(coef[0]) == pytest.approx(L_COEF, rel=1e-3)
    assert coef[1] == pytest.approx(L_EXP_ACTIVE, abs=1e-4)
    assert coef[2] == pytest.approx(L_EXP_TOTAL, abs=1e-4)


@pytest.mark.parametrize("name", MOE_NAMES)
def test_moe_rule_on_each_public_config(name):
    r = PUBLIC_CONFIGS[name]
    total, active = (float(x) for x in params_from_shape(public_shape(name)))
    s = complete_shape(total, active, _moe_overrides(name))
    t, a = params_from_shape(s)
    assert t == pytest.approx(total, rel=0.02) and a == pytest.approx(active, rel=0.02)
    assert 1 / LAYER_FACTOR <= s["layers"] / r[0] <= LAYER_FACTOR, (name, s["layers"], r[0])
    assert 1 / HIDDEN_FACTOR <= s["hidden"] / r[1] <= HIDDEN_FACTOR, (name, s["hidden"], r[1])
    assert (s["experts"], s["top_k"]) == (r[6], r[7])
    assert np.mod(s["moe_ffn"], 16) == 0 and s["heads"] * s["head_dim"] == s["hidden"]
    assert check_shape(s, total, active) is None


def test_moe_rule_for_deepseek_v3_sizes_is_a_sane_shape():
    # The release's 671B total, 37B active, 256 experts, top-8 (config_671B.json: 61 layers of 7168).
    s = complete_shape(671e9, 37e9, {"experts": 256.0, "top_k": 8.0})
    assert 40 <= s["layers"] <= 100 and 6144 <= s["hidden"] <= 9216
    assert s["shared_experts"] == 1                      # fine-grained: one shared expert, as DeepSeek-V3
    t, a = params_from_shape(s)
    assert t == pytest.approx(671e9, rel=0.02) and a == pytest.approx(37e9, rel=0.02)
    # The identity the rule rests on: each routed expert over all MoE layers is (N − A)/(E − k) parameters.
    per_expert = 3 * s["hidden"] * s["moe_ffn"] * (s["layers"] - s["dense_layers"])
    assert per_expert == pytest.approx((671e9 - 37e9) / (256 - 8), rel=0.02)


def test_shared_expert_convention_and_overrides():
    assert complete_shape(46.7e9, 12.9e9, {"experts": 8.0, "top_k": 2.0})["shared_experts"] == 0     # Mixtral
    assert complete_shape(109e9, 17e9, {"experts": 16.0, "top_k": 1.0})["shared_experts"] == 1      # Llama 4: top-1
    assert complete_shape(235e9, 22e9, {"experts": 128.0, "top_k": 8.0})["shared_experts"] == 1
    # Given expert width, shared experts and dense layers are kept, and the counts still hold.
    over = {"experts": 256.0, "top_k": 8.0, "moe_ffn": 2048.0, "shared_experts": 2.0, "dense_layers": 3.0}
    s = complete_shape(671e9, 37e9, over)
    assert (s["moe_ffn"], s["shared_experts"], s["dense_layers"]) == (2048, 2, 3)
    t, a = params_from_shape(s)
    assert t == pytest.approx(671e9, rel=0.03) and a == pytest.approx(37e9, rel=0.03)
    s = complete_shape(235e9, 22e9, {"experts": 128.0, "top_k": 8.0, "shared_experts": 0.0})
    assert s["shared_experts"] == 0
    assert params_from_shape(s)[1] == pytest.approx(22e9, rel=0.02)
    # A user's layers and hidden size: moe_ffn still takes the total, the active count follows the shape.
    s = complete_shape(671e9, 37e9, {"layers": 61.0, "hidden": 7168.0, "experts": 256.0, "top_k": 8.0})
    assert (s["layers"], s["hidden"]) == (61, 7168)
    assert params_from_shape(s)[0] == pytest.approx(671e9, rel=0.02)
